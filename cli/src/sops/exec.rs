//! `exec-env` and `exec-file`: run a command with the plaintext, never on disk outside a
//! private temporary directory.

use std::path::Path;

use gitseal_crypto::sops::tree::{Node, Scalar};
use zeroize::Zeroizing;

use super::config::Config;
use super::exit::sops_failure;
use super::io::{formats, layout, private_dir, read_input, write_private};
use super::open::open_with;
use super::{Exit, FileOptions, Global, code};

fn run_shell(
    command: &str,
    env: Vec<(String, Zeroizing<String>)>,
    pristine: bool,
) -> Result<(), Exit> {
    let mut child = std::process::Command::new("/bin/sh");
    child.arg("-c").arg(command);
    if pristine {
        child.env_clear();
    }
    for (key, value) in &env {
        child.env(key, value.as_str());
    }
    let status = child
        .status()
        .map_err(|e| Exit::new(code::GENERIC, format!("cannot run the command: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Exit::new(
            status.code().map_or(code::GENERIC, |c| c as u8),
            String::new(),
        ))
    }
}

pub(super) fn exec_env(
    options: &FileOptions,
    file: &Path,
    command: &str,
    pristine: bool,
) -> Result<(), Exit> {
    let bytes = read_input(Some(file))?;
    let (input, _) = formats(options, Some(file));
    let opened = open_with(&bytes, input, options.ignore_mac, false)?;
    let mut env = Vec::new();
    if let Some(doc) = opened.tree.documents.first() {
        for item in doc {
            if let gitseal_crypto::sops::tree::MapItem::Entry(key, Node::Scalar(scalar)) = item
                && !matches!(scalar, Scalar::Null)
            {
                env.push((key.clone(), Zeroizing::new(scalar.to_text())));
            }
        }
    }
    run_shell(command, env, pristine)
}

pub(super) fn exec_file(
    global: &Global,
    options: &FileOptions,
    file: &Path,
    command: &str,
    filename: &str,
) -> Result<(), Exit> {
    let bytes = read_input(Some(file))?;
    let (input, output) = formats(options, Some(file));
    let config = Config::find(global.config.as_deref()).ok().flatten();
    let opened = open_with(&bytes, input, options.ignore_mac, false)?;
    let plain = Zeroizing::new(
        output
            .emit_plain(&opened.tree, &layout(global, config.as_ref())?)
            .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?,
    );
    let dir = private_dir()?;
    let path = dir.path().join(filename);
    write_private(&path, &plain)?;
    let command = command.replace("{}", &path.to_string_lossy());
    run_shell(&command, Vec::new(), false)
}
