//! The YAML store: a comment-aware reader built on `saphyr-parser` events (comments are
//! recovered from the text between events) that resolves scalars as go-yaml v3 does, and
//! an emitter that writes what sops (go-yaml v3) writes: block style, `indent` spaces,
//! go-yaml's quoting rules and literal blocks.

mod emit;
mod reader;
mod resolve;
#[cfg(test)]
mod tests;

use crate::error::SopsError;
use crate::sops::tree::Map;

pub use emit::{emit, emit_list, emit_with, format_yaml_float, string_repr};
pub(crate) use reader::parse_events;
pub use resolve::resolve_plain;

fn syntax(message: impl Into<String>) -> SopsError {
    SopsError::Syntax {
        format: "yaml",
        message: message.into(),
    }
}

/// Parses a YAML stream into documents (each must be a mapping, or empty).
pub fn parse(text: &str) -> Result<Vec<Map>, SopsError> {
    match super::fastyaml::parse(text) {
        Some(documents) => Ok(documents),
        None => parse_events(text),
    }
}

/// Parses a YAML stream with the general event reader only, never the fast line reader
/// that [`parse`] tries first. Both must read any input into the same documents; this
/// entry point lets tests and fuzz targets compare them.
pub fn parse_general(text: &str) -> Result<Vec<Map>, SopsError> {
    parse_events(text)
}
