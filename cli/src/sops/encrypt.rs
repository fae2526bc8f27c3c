//! `encrypt`: a new data key, wrapped for the flags' or the creation rule's keys (with
//! `--cluster`, the gitseal controller's age recipient too).
//!
//! A file holding one SopsSecret (`isindir.github.com/*`, kind `SopsSecret`) is written so
//! that its MAC still verifies after the API server re-serialises it: every mapping's
//! keys sorted ([`sort_for_the_api_server`]) and `mac_only_encrypted` on unless the
//! flags or the creation rule set it.

use std::io::Write;
use std::path::Path;

use gitseal_api::{SOPS_SECRET_KIND, SOPS_SECRETS_GROUP};
use gitseal_crypto::DataKey;
use gitseal_crypto::sops::metadata::Metadata;
use gitseal_crypto::sops::store::Format;
use gitseal_crypto::sops::tree::{self, ListItem, Map, MapItem, Node, Tree};
use gitseal_crypto::sops::walk::Selection;
use zeroize::Zeroizing;

use super::config::{self, Config};
use super::exit::sops_failure;
use super::io::{formats, layout, name_of, read_input, write_output};
use super::keys::{self, KeyPlan};
use super::open::seal;
use super::{ClusterRecipient, Exit, FileOptions, Global, code};

pub(super) fn encrypt(
    global: &Global,
    options: &FileOptions,
    cluster: Option<&ClusterRecipient>,
    file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), Exit> {
    let bytes = read_input(file)?;
    if bytes.is_empty() {
        return Err(Exit::new(
            code::FILE_EMPTY,
            "Error: cannot operate on an empty file".into(),
        ));
    }
    let (input, output) = formats(options, file);
    let mut tree = input
        .parse_plain(&bytes)
        .map_err(|e| sops_failure(e, code::COULD_NOT_READ_INPUT))?;
    if input.has_metadata(&tree) {
        return Err(Exit::new(
            code::FILE_ALREADY_ENCRYPTED,
            "The file you have provided contains a top-level entry called 'sops', or for flat file formats top-level entries starting with 'sops_'. This is reserved for SOPS metadata and the file is most likely already encrypted.".into(),
        ));
    }
    let sops_secret = is_sops_secret(input, &tree);
    if sops_secret {
        sort_for_the_api_server(&mut tree);
    }
    let config = Config::find(global.config.as_deref())?;
    let rule = match (config.as_ref(), name_of(options, file)) {
        (Some(config), Some(name)) => config.rule_for(name)?,
        (Some(config), None) => config.rule_for(Path::new("stdin"))?,
        _ => None,
    }
    .unwrap_or_default();
    let mut plan = flag_plan(options)?;
    if let Some(cluster) = cluster {
        // One more recipient given on the command line, as with --age: the creation
        // rule's keys are then not used.
        let recipient = cluster_recipient(cluster)?;
        let group = &mut plan
            .get_or_insert_with(|| KeyPlan {
                groups: vec![keys::GroupPlan::default()],
                threshold: 0,
            })
            .groups[0];
        if !group.age.contains(&recipient) {
            group.age.push(recipient);
        }
    }
    let mut plan = plan.unwrap_or_else(|| rule.keys.clone());
    if let Some(threshold) = options.shamir_secret_sharing_threshold {
        plan.threshold = threshold;
    }
    let selection = selection(global, options, &rule, input)?;
    let key = DataKey::generate();
    let (key_groups, shamir_threshold) = plan.wrap(&key, &[])?;
    let mut metadata = Metadata {
        key_groups,
        shamir_threshold,
        selection,
        // On by default for a SopsSecret: the API server rewrites its metadata.
        mac_only_encrypted: global
            .mac_only_encrypted
            .or(rule.mac_only_encrypted)
            .unwrap_or(sops_secret),
        ..Metadata::default()
    };
    seal(&mut tree, &mut metadata, &key, None)?;
    let layout = layout(global, config.as_ref())?;
    let text = Zeroizing::new(
        output
            .emit_encrypted(&tree, &metadata, &layout)
            .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?,
    );
    write_output(options, file, &text, out)
}

/// The gitseal controller's age recipient, through the API server's service proxy.
fn cluster_recipient(cluster: &ClusterRecipient) -> Result<String, Exit> {
    let fail = |e: anyhow::Error| Exit::new(code::GENERIC, format!("--cluster: {e:#}"));
    let controller = crate::cluster::Controller::connect(
        &cluster.kubeconfig,
        cluster.context.as_deref(),
        &crate::cluster::Overrides::default(),
        &cluster.controller_namespace,
        &cluster.controller_name,
    )
    .map_err(fail)?;
    controller.age_recipient().map_err(fail)
}

/// Whether `tree` (read as `input`) is one SopsSecret document.
fn is_sops_secret(input: Format, tree: &Tree) -> bool {
    if !matches!(input, Format::Yaml | Format::Json) {
        return false;
    }
    let [document] = tree.documents.as_slice() else {
        return false;
    };
    let text = |key: &str| tree::get(document, key).and_then(Node::as_str);
    text("kind") == Some(SOPS_SECRET_KIND)
        && text("apiVersion")
            .and_then(|v| v.strip_prefix(SOPS_SECRETS_GROUP))
            .is_some_and(|v| v.starts_with('/'))
}

/// Puts every mapping's keys of `tree` in byte order, as the API server returns a custom
/// resource (lists keep their order), so that the MAC, computed over the values in
/// document order, is the one the controller computes. A comment moves with the entry it
/// precedes (comments after a mapping's last entry stay at its end): the comment-regex
/// selections, which look at the comments before a value, select the same values.
fn sort_for_the_api_server(tree: &mut Tree) {
    fn sort_map(map: &mut Map) {
        let mut entries: Vec<(Vec<MapItem>, String, Node)> = Vec::new();
        let mut comments = Vec::new();
        for item in std::mem::take(map) {
            match item {
                MapItem::Comment(_) => comments.push(item),
                MapItem::Entry(key, mut value) => {
                    sort_node(&mut value);
                    entries.push((std::mem::take(&mut comments), key, value));
                }
            }
        }
        // Stable: duplicate keys keep their order.
        entries.sort_by(|a, b| a.1.cmp(&b.1));
        for (before, key, value) in entries {
            map.extend(before);
            map.push(MapItem::Entry(key, value));
        }
        map.extend(comments);
    }
    fn sort_node(node: &mut Node) {
        match node {
            Node::Map(map) => sort_map(map),
            Node::List(items) => {
                for item in items {
                    if let ListItem::Value(value) = item {
                        sort_node(value);
                    }
                }
            }
            Node::Scalar(_) => {}
        }
    }
    tree.documents.iter_mut().for_each(sort_map);
}

/// The keys named by `--age`, `--kms` (with `--aws-profile`, `--encryption-context`), as
/// one key group; `None` when no key flag is given (the creation rule decides).
pub(super) fn flag_plan(options: &FileOptions) -> Result<Option<KeyPlan>, Exit> {
    if options.pgp.is_some() {
        return Err(Exit::new(
            code::GENERIC,
            "gitseal encrypts for age recipients and AWS KMS keys; PGP keys are not supported"
                .into(),
        ));
    }
    if options.age.is_none() && options.kms.is_none() {
        return Ok(None);
    }
    let context = encryption_context(options.encryption_context.as_deref())?;
    let profile = options.aws_profile.as_deref().unwrap_or("");
    let group = keys::GroupPlan {
        age: options
            .age
            .as_deref()
            .map(|a| config::split_list(a).collect())
            .unwrap_or_default(),
        kms: options
            .kms
            .as_deref()
            .map(|k| {
                config::split_list(k)
                    .map(|text| {
                        let mut key = config::kms_from_text(&text, profile);
                        key.context = context.clone();
                        key
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok(Some(KeyPlan {
        groups: vec![group],
        threshold: 0,
    }))
}

/// `--encryption-context k1:v1,k2:v2`, sorted by key.
pub(super) fn encryption_context(text: Option<&str>) -> Result<Vec<(String, String)>, Exit> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut pairs = Vec::new();
    for pair in text.split(',') {
        let Some((k, v)) = pair
            .split_once(':')
            .filter(|(k, v)| !k.is_empty() && !v.contains(':'))
        else {
            return Err(Exit::new(
                code::ERROR_INVALID_KMS_ENCRYPTION_CONTEXT,
                format!(
                    "invalid KMS encryption context format {text:?}: expected key1:value1,key2:value2"
                ),
            ));
        };
        pairs.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    pairs.sort();
    Ok(pairs)
}

/// The selection option: flags, else the creation rule's, else `_unencrypted` (nothing
/// for the binary store, which always encrypts `data`).
pub(super) fn selection(
    global: &Global,
    options: &FileOptions,
    rule: &config::Rule,
    input: Format,
) -> Result<Selection, Exit> {
    let flags = [
        ("unencrypted_suffix", &options.unencrypted_suffix),
        ("encrypted_suffix", &options.encrypted_suffix),
        ("unencrypted_regex", &options.unencrypted_regex),
        ("encrypted_regex", &options.encrypted_regex),
        (
            "unencrypted_comment_regex",
            &global.unencrypted_comment_regex,
        ),
        ("encrypted_comment_regex", &global.encrypted_comment_regex),
    ];
    let given: Vec<(&str, &String)> = flags
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
        .collect();
    if given.len() > 1 {
        return Err(Exit::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            "Error: cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file".into(),
        ));
    }
    if input == Format::Binary {
        return Ok(Selection::All);
    }
    let chosen = match (given.first(), &rule.selection) {
        (Some((key, value)), _) => Some((key.to_string(), value.to_string())),
        (None, Some((key, value))) => Some((key.clone(), value.clone())),
        (None, None) => None,
    };
    match chosen {
        Some((key, value)) => {
            Selection::from_key(&key, &value).map_err(|e| Exit::new(code::GENERIC, e.to_string()))
        }
        None => Ok(Selection::UnencryptedSuffix("_unencrypted".into())),
    }
}
