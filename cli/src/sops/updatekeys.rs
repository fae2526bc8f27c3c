//! `updatekeys`: re-wrap the data key for the keys the creation rule now lists.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use gitseal_crypto::sops::store::{Format, Layout};

use super::config::Config;
use super::exit::sops_failure;
use super::io::{layout, read_input};
use super::keys::{self, KeyPlan};
use super::{Exit, Global, code};

/// `updatekeys [-y] FILE...`: needs a `.sops.yaml`.
pub(super) fn updatekeys(
    global: &Global,
    input_type: Option<&str>,
    files: &[PathBuf],
    yes: bool,
) -> Result<(), Exit> {
    let config = Config::find(global.config.as_deref())?.ok_or_else(|| {
        Exit::new(
            code::GENERIC,
            "updatekeys needs a .sops.yaml with creation rules".into(),
        )
    })?;
    let layout = layout(global, Some(&config))?;
    for file in files {
        updatekeys_file(&config, &layout, input_type, file, yes)?;
    }
    Ok(())
}

fn updatekeys_file(
    config: &Config,
    layout: &Layout,
    input_type: Option<&str>,
    file: &Path,
    yes: bool,
) -> Result<(), Exit> {
    let rule = config.rule_for(file)?.unwrap_or_default();
    let bytes = read_input(Some(file))?;
    let format = input_type.map_or_else(|| Format::from_path(file), Format::from_name);
    let (tree, mut metadata) = format
        .parse_encrypted(&bytes)
        .map_err(|e| sops_failure(e, code::GENERIC))?;
    let current = KeyPlan::of(&metadata);
    if current.groups == rule.keys.groups && current.threshold == rule.keys.threshold {
        eprintln!("{}: already up to date", file.display());
        return Ok(());
    }
    let before: Vec<String> = current
        .groups
        .iter()
        .flat_map(keys::GroupPlan::names)
        .collect();
    let after: Vec<String> = rule
        .keys
        .groups
        .iter()
        .flat_map(keys::GroupPlan::names)
        .collect();
    eprintln!("The following changes will be made to the file's key groups:");
    for recipient in after.iter().filter(|r| !before.contains(r)) {
        eprintln!("+++ {recipient}");
    }
    for recipient in before.iter().filter(|r| !after.contains(r)) {
        eprintln!("--- {recipient}");
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Exit::new(
                code::GENERIC,
                "updatekeys: pass -y to apply the changes without a terminal".into(),
            ));
        }
        eprint!("Is this okay? (y/n):");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !answer.trim().eq_ignore_ascii_case("y") {
            eprintln!("Changes not applied.");
            return Ok(());
        }
    }
    let identities = keys::load_identities()?;
    let key = keys::data_key(&metadata, identities)?;
    let (groups, threshold) = rule.keys.wrap(&key, &[])?;
    metadata.key_groups = groups;
    metadata.shamir_threshold = threshold;
    let text = format
        .emit_encrypted(&tree, &metadata, layout)
        .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?;
    crate::file::write_atomic(file, &text)
        .map_err(|e| Exit::new(code::COULD_NOT_WRITE_OUTPUT, format!("{e:#}")))?;
    eprintln!(
        "File {} synced with new keys; run `sops rotate -i` to stop removed keys from reading new values",
        file.display()
    );
    Ok(())
}
