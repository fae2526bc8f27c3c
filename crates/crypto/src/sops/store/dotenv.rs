//! The dotenv store: `KEY=value` lines (split at the first `=`, nothing trimmed), `#`
//! comments, `\n` escapes; metadata flattened under `sops_` keys.

use crate::error::SopsError;
use crate::sops::tree::{Map, MapItem, Node, Scalar};

/// Parses dotenv text.
pub fn parse(text: &str) -> Result<Map, SopsError> {
    let mut map = Map::new();
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            map.push(MapItem::Comment(comment.to_owned()));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(SopsError::Syntax {
                format: "dotenv",
                message: format!("invalid dotenv input line {}: no '='", n + 1),
            });
        };
        map.push(MapItem::Entry(
            key.to_owned(),
            Node::Scalar(Scalar::Str(value.replace("\\n", "\n"))),
        ));
    }
    Ok(map)
}

/// Writes dotenv text; nested values cannot be written.
pub fn emit(map: &Map) -> Result<String, SopsError> {
    let mut out = String::new();
    for item in map {
        match item {
            MapItem::Comment(text) => {
                out.push('#');
                out.push_str(text);
            }
            MapItem::Entry(key, Node::Scalar(scalar)) => {
                out.push_str(key);
                out.push('=');
                out.push_str(&scalar.to_text().replace('\n', "\\n"));
            }
            MapItem::Entry(key, _) => {
                return Err(SopsError::Unsupported(format!(
                    "cannot write nested value {key:?} as dotenv: dotenv values are flat"
                )));
            }
        }
        out.push('\n');
    }
    Ok(out)
}
