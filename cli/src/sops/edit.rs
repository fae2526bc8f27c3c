//! `edit` (and plain `sops FILE`): the plaintext in a private file, the editor, and the
//! result sealed again with the same data key (or a new one for a new file).

use std::path::Path;

use gitseal_crypto::DataKey;
use gitseal_crypto::limits;
use gitseal_crypto::sops::metadata::Metadata;
use gitseal_crypto::sops::store::Format;
use zeroize::Zeroizing;

use super::config::Config;
use super::encrypt::{flag_plan, selection};
use super::exit::sops_failure;
use super::io::{formats, layout, private_dir, read_input, write_private};
use super::open::{Opened, open, seal};
use super::{Exit, FileOptions, Global, code};

pub(super) fn edit(global: &Global, options: &FileOptions, file: &Path) -> Result<(), Exit> {
    let (input, _) = formats(options, Some(file));
    let config = Config::find(global.config.as_deref())?;
    let layout = layout(global, config.as_ref())?;
    let existing = file.exists();
    let (plain, opened) = if existing {
        let bytes = read_input(Some(file))?;
        let opened = open(&bytes, input, options.ignore_mac)?;
        let plain = input
            .emit_plain(&opened.tree, &layout)
            .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?;
        (Zeroizing::new(plain), Some(opened))
    } else {
        (Zeroizing::new(example(input).into_bytes()), None)
    };
    let dir = private_dir()?;
    let name = file
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.path().join(name);
    write_private(&temp, &plain)?;
    let editor = std::env::var("SOPS_EDITOR")
        .or_else(|_| std::env::var("EDITOR"))
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| {
            ["vim", "nano", "vi"]
                .iter()
                .find(|e| which(e))
                .map(|e| e.to_string())
        })
        .ok_or_else(|| {
            Exit::new(
                code::NO_EDITOR_FOUND,
                "no editor found: set SOPS_EDITOR or EDITOR".into(),
            )
        })?;
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&temp)
        .status()
        .map_err(|e| {
            Exit::new(
                code::NO_EDITOR_FOUND,
                format!("cannot run editor {editor:?}: {e}"),
            )
        })?;
    if !status.success() {
        return Err(Exit::new(
            code::GENERIC,
            format!(
                "the editor exited with {status}; {} is unchanged",
                file.display()
            ),
        ));
    }
    let edited = crate::file::read(&temp, limits::SOPS_FILE).map_err(|e| {
        Exit::new(
            code::COULD_NOT_READ_INPUT,
            format!("cannot read the edited file: {e}"),
        )
    })?;
    if *edited == *plain && existing {
        return Err(Exit::new(
            code::FILE_HAS_NOT_BEEN_MODIFIED,
            "File has not changed, exiting.".into(),
        ));
    }
    let mut tree = input
        .parse_plain(&edited)
        .map_err(|e| sops_failure(e, code::COULD_NOT_READ_INPUT))?;
    if input.has_metadata(&tree) {
        return Err(Exit::new(
            code::GENERIC,
            "the edited file must not contain a top-level `sops` entry".into(),
        ));
    }
    let (mut metadata, key, stash) = match opened {
        Some(Opened {
            metadata,
            key,
            stash,
            tree: _,
        }) => (metadata, key, Some(stash)),
        None => {
            let rule = config
                .as_ref()
                .map(|c| c.rule_for(file))
                .transpose()?
                .flatten()
                .unwrap_or_default();
            let plan = flag_plan(options)?.unwrap_or_else(|| rule.keys.clone());
            let key = DataKey::generate();
            let (key_groups, shamir_threshold) = plan.wrap(&key, &[])?;
            let metadata = Metadata {
                key_groups,
                shamir_threshold,
                selection: selection(global, options, &rule, input)?,
                mac_only_encrypted: global
                    .mac_only_encrypted
                    .or(rule.mac_only_encrypted)
                    .unwrap_or(false),
                ..Metadata::default()
            };
            (metadata, key, None)
        }
    };
    seal(&mut tree, &mut metadata, &key, stash.as_ref())?;
    let text = input
        .emit_encrypted(&tree, &metadata, &layout)
        .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?;
    crate::file::write_atomic(file, &text)
        .map_err(|e| Exit::new(code::COULD_NOT_WRITE_OUTPUT, format!("{e:#}")))
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The document `edit` starts a new file from.
fn example(format: Format) -> String {
    match format {
        Format::Json | Format::Binary => {
            "{\n\t\"hello\": \"Welcome to gitseal sops! Edit this file as you please!\"\n}\n".into()
        }
        Format::Dotenv => "hello=Welcome to gitseal sops! Edit this file as you please!\n".into(),
        Format::Ini => "[hello]\nwelcome = Edit this file as you please!\n".into(),
        Format::Yaml => "hello: Welcome to gitseal sops! Edit this file as you please!\n".into(),
    }
}
