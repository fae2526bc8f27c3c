//! `set` and `unset`: change one path, keep every other ciphertext byte-identical.

use std::path::Path;

use gitseal_crypto::limits;
use gitseal_crypto::sops::tree::{self, Node};
use zeroize::Zeroizing;

use super::config::Config;
use super::exit::sops_failure;
use super::io::{formats, layout, read_input};
use super::open::{Opened, open, seal};
use super::{Exit, FileOptions, Global, code};

/// `set FILE PATH VALUE` (or `--value-file`, `--value-stdin`).
#[allow(clippy::too_many_arguments)]
pub(super) fn set_command(
    global: &Global,
    options: &FileOptions,
    value_file: bool,
    value_stdin: bool,
    idempotent: bool,
    file: &Path,
    path: &str,
    value: Option<String>,
) -> Result<(), Exit> {
    let json = match (value_file, value_stdin, value) {
        (_, true, None) => {
            let bytes = crate::file::read_stdin(limits::SOPS_FILE).map_err(|e| {
                Exit::new(
                    code::ERROR_INVALID_SET_FORMAT,
                    format!("cannot read standard input: {e}"),
                )
            })?;
            utf8_value(bytes, "standard input")?
        }
        (true, false, Some(source)) => {
            let bytes = crate::file::read(Path::new(&source), limits::SOPS_FILE).map_err(|e| {
                Exit::new(
                    code::ERROR_INVALID_SET_FORMAT,
                    format!("cannot read {source}: {e}"),
                )
            })?;
            utf8_value(bytes, &source)?
        }
        (false, false, Some(value)) => Zeroizing::new(value),
        _ => {
            return Err(Exit::new(
                code::ERROR_INVALID_SET_FORMAT,
                "set needs a value: an argument, --value-file FILE or --value-stdin".into(),
            ));
        }
    };
    set(global, options, file, path, Some(&json), idempotent)
}

/// A value for `set` read from a file or standard input, as text.
fn utf8_value(bytes: Zeroizing<Vec<u8>>, source: &str) -> Result<Zeroizing<String>, Exit> {
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(e) => Err(Exit::new(
            code::ERROR_INVALID_SET_FORMAT,
            format!(
                "the value in {source} is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )),
    }
}

/// `--set '["a"]["b"] value'`: the path is everything up to the last `]` followed by a
/// space.
pub(super) fn split_set(text: &str) -> Result<(String, String), Exit> {
    let at = text.rfind("] ").ok_or_else(|| {
        Exit::new(
            code::ERROR_INVALID_SET_FORMAT,
            "invalid --set: expected '[\"path\"] value'".into(),
        )
    })?;
    Ok((text[..=at].to_owned(), text[at + 2..].to_owned()))
}

/// `set` (with a JSON value) and `unset` (without): change one path, keep every other
/// ciphertext byte-identical, write the file back in place.
pub(super) fn set(
    global: &Global,
    options: &FileOptions,
    file: &Path,
    path: &str,
    value: Option<&str>,
    idempotent: bool,
) -> Result<(), Exit> {
    let steps =
        tree::parse_path(path).map_err(|e| sops_failure(e, code::ERROR_INVALID_TREE_PATH))?;
    let bytes = read_input(Some(file))?;
    let (input, output) = formats(options, Some(file));
    let config = Config::find(global.config.as_deref())?;
    let Opened {
        mut tree,
        mut metadata,
        key,
        stash,
    } = open(&bytes, input, options.ignore_mac)?;
    let doc = tree
        .documents
        .first_mut()
        .ok_or_else(|| Exit::new(code::GENERIC, "the file has no document".into()))?;
    let changed = match value {
        Some(json) => {
            let node = json_value(json)?;
            // A bad path, or one that nests too deep: nothing is written.
            tree::set(doc, &steps, node)
                .map_err(|e| Exit::new(code::ERROR_INVALID_TREE_PATH, e.to_string()))?
        }
        None => match tree::unset(doc, &steps) {
            Ok(()) => true,
            Err(_) if idempotent => false,
            Err(e) => return Err(sops_failure(e, code::ERROR_INVALID_TREE_PATH)),
        },
    };
    if !changed && idempotent {
        return Ok(());
    }
    seal(&mut tree, &mut metadata, &key, Some(&stash))?;
    let text = output
        .emit_encrypted(&tree, &metadata, &layout(global, config.as_ref())?)
        .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?;
    crate::file::write_atomic(file, &text)
        .map_err(|e| Exit::new(code::COULD_NOT_WRITE_OUTPUT, format!("{e:#}")))
}

/// A JSON value as a tree node (objects keep their key order).
fn json_value(text: &str) -> Result<Node, Exit> {
    let invalid = || {
        Exit::new(
            code::ERROR_INVALID_SET_FORMAT,
            "the value is not valid JSON (strings need quotes: '\"text\"')".into(),
        )
    };
    let wrapped = Zeroizing::new(format!("{{\"v\": {text}}}"));
    let map = gitseal_crypto::sops::store::json::parse(&wrapped).map_err(|e| {
        // Positions in the wrapped text would mislead; the depth limit is worth naming.
        if e.to_string().contains("nesting deeper than") {
            Exit::new(
                code::ERROR_INVALID_SET_FORMAT,
                format!(
                    "the value nests deeper than {} levels",
                    limits::MAX_DEPTH - 1
                ),
            )
        } else {
            invalid()
        }
    })?;
    tree::get(&map, "v").cloned().ok_or_else(invalid)
}
