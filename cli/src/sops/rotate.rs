//! `rotate`: a new data key for every value, with recipients added and removed.

use std::io::Write;
use std::path::Path;

use gitseal_crypto::DataKey;
use zeroize::Zeroizing;

use super::config::{self, Config};
use super::exit::sops_failure;
use super::io::{formats, layout, read_input, write_output};
use super::keys::KeyPlan;
use super::open::{Opened, open, seal};
use super::{Exit, FileOptions, Global, RotateKeys, code};

pub(super) fn rotate(
    global: &Global,
    options: &FileOptions,
    rotation: &RotateKeys,
    file: &Path,
    out: &mut dyn Write,
) -> Result<(), Exit> {
    let bytes = read_input(Some(file))?;
    let (input, output) = formats(options, Some(file));
    let config = Config::find(global.config.as_deref())?;
    let Opened {
        mut tree,
        mut metadata,
        stash,
        ..
    } = open(&bytes, input, options.ignore_mac)?;
    let mut plan = KeyPlan::of(&metadata);
    let first = plan
        .groups
        .first_mut()
        .expect("metadata has at least one key group");
    for recipient in rotation
        .add_age
        .as_deref()
        .map(config::split_list)
        .into_iter()
        .flatten()
    {
        if !first.age.contains(&recipient) {
            first.age.push(recipient);
        }
    }
    for text in rotation
        .add_kms
        .as_deref()
        .map(config::split_list)
        .into_iter()
        .flatten()
    {
        let key = config::kms_from_text(&text, options.aws_profile.as_deref().unwrap_or(""));
        if !first.kms.contains(&key) {
            first.kms.push(key);
        }
    }
    let removed_age: Vec<String> = rotation
        .rm_age
        .as_deref()
        .map(|r| config::split_list(r).collect())
        .unwrap_or_default();
    let removed_kms: Vec<String> = rotation
        .rm_kms
        .as_deref()
        .map(|r| {
            config::split_list(r)
                .map(|t| config::kms_from_text(&t, "").arn)
                .collect()
        })
        .unwrap_or_default();
    for group in &mut plan.groups {
        group.age.retain(|r| !removed_age.contains(r));
        group.kms.retain(|k| !removed_kms.contains(&k.arn));
    }
    let key = DataKey::generate();
    let (groups, threshold) = plan.wrap(&key, &metadata.key_groups)?;
    metadata.key_groups = groups;
    metadata.shamir_threshold = threshold;
    // New key: the stashed IVs are safe to reuse and keep the diff to the ciphertexts.
    seal(&mut tree, &mut metadata, &key, Some(&stash))?;
    let text = Zeroizing::new(
        output
            .emit_encrypted(&tree, &metadata, &layout(global, config.as_ref())?)
            .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?,
    );
    write_output(options, Some(file), &text, out)
}
