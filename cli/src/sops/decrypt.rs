//! `decrypt` (with `--extract`) and `filestatus`.

use std::io::Write;
use std::path::Path;

use gitseal_crypto::sops::store::Format;
use gitseal_crypto::sops::tree;
use zeroize::Zeroizing;

use super::config::Config;
use super::exit::sops_failure;
use super::io::{formats, layout, read_input, write_output};
use super::open::open_with;
use super::{Exit, FileOptions, Global, code};

pub(super) fn decrypt(
    global: &Global,
    options: &FileOptions,
    file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), Exit> {
    let bytes = read_input(file)?;
    let (input, output) = formats(options, file);
    let config = Config::find(global.config.as_deref()).ok().flatten();
    let layout = layout(global, config.as_ref())?;
    let opened = open_with(&bytes, input, options.ignore_mac, false)?;
    let text = Zeroizing::new(match &options.extract {
        Some(path) => {
            let steps = tree::parse_path(path)
                .map_err(|e| sops_failure(e, code::ERROR_INVALID_TREE_PATH))?;
            let first = opened.tree.documents.first().ok_or_else(|| {
                Exit::new(
                    code::ERROR_INVALID_TREE_PATH,
                    "the file has no document".into(),
                )
            })?;
            let node = tree::lookup(first, &steps)
                .map_err(|e| sops_failure(e, code::ERROR_INVALID_TREE_PATH))?;
            gitseal_crypto::sops::store::emit_value(node, output, &layout)
                .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?
        }
        None => output
            .emit_plain(&opened.tree, &layout)
            .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?,
    });
    write_output(options, file, &text, out)
}

/// `filestatus`: `{"encrypted":true|false}`.
pub(super) fn filestatus(
    input_type: Option<&str>,
    file: &Path,
    out: &mut dyn Write,
) -> Result<(), Exit> {
    let bytes = read_input(Some(file))?;
    let format = input_type.map_or_else(|| Format::from_path(file), Format::from_name);
    let encrypted = format.parse_encrypted(&bytes).is_ok();
    writeln!(out, "{{\"encrypted\":{encrypted}}}")
        .map_err(|e| Exit::new(code::COULD_NOT_WRITE_OUTPUT, e.to_string()))
}
