//! `.sops.yaml`: found from the working directory upwards (or `--config`/`SOPS_CONFIG`);
//! the first creation rule whose `path_regex` matches supplies keys and options; `stores`
//! sets output indentation.

use std::path::{Path, PathBuf};

use gitseal_crypto::sops::store::Layout;
use regex::Regex;
use serde_json::Value;

use super::keys::KeyPlan;
use super::{Exit, code};

/// A loaded configuration file.
pub struct Config {
    path: PathBuf,
    value: Value,
}

/// What a matching creation rule asks for.
#[derive(Default)]
pub struct Rule {
    /// Keys to encrypt for.
    pub keys: KeyPlan,
    /// The selection option (metadata key, value).
    pub selection: Option<(String, String)>,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
}

const SELECTION: [&str; 6] = [
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
];

const UNSUPPORTED_KEYS: [&str; 7] = [
    "pgp",
    "gcp_kms",
    "azure_keyvault",
    "hc_vault_transit_uri",
    "hc_vault",
    "hckms",
    "kms",
];

impl Config {
    /// The configuration in effect: `explicit` (`--config`/`SOPS_CONFIG`), else the first
    /// `.sops.yaml` in the working directory or up to 100 parents.
    pub fn find(explicit: Option<&Path>) -> Result<Option<Self>, Exit> {
        let path = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None => {
                let mut dir = std::env::current_dir().ok();
                let mut found = None;
                for _ in 0..=100 {
                    let Some(current) = dir else { break };
                    let candidate = current.join(".sops.yaml");
                    if candidate.is_file() {
                        found = Some(candidate);
                        break;
                    }
                    if current.join(".sops.yml").is_file() {
                        eprintln!(
                            "warning: {} is ignored: sops only reads .sops.yaml",
                            current.join(".sops.yml").display()
                        );
                    }
                    dir = current.parent().map(Path::to_path_buf);
                }
                found
            }
        };
        let Some(path) = path else { return Ok(None) };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Exit::new(
                code::GENERIC,
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        let value: Value = if text.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_saphyr::from_str(&text).map_err(|e| {
                Exit::new(
                    code::GENERIC,
                    format!("invalid config file {}: {e}", path.display()),
                )
            })?
        };
        let path = std::path::absolute(&path).unwrap_or(path);
        Ok(Some(Self { path, value }))
    }

    /// Output layout from `stores:`.
    pub fn layout(&self) -> Layout {
        let indent = |store: &str| {
            self.value
                .pointer(&format!("/stores/{store}/indent"))
                .and_then(Value::as_i64)
                .and_then(|n| usize::try_from(n).ok())
        };
        Layout {
            yaml_indent: indent("yaml"),
            json_indent: indent("json"),
            json_binary_indent: indent("json_binary"),
        }
    }

    /// The first creation rule matching `file` (a path as given on the command line or by
    /// `--filename-override`).
    pub fn rule_for(&self, file: &Path) -> Result<Option<Rule>, Exit> {
        let Some(rules) = self.value.get("creation_rules").and_then(Value::as_array) else {
            return Ok(None);
        };
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let base = self.path.parent().unwrap_or(Path::new("/"));
        let relative = absolute.strip_prefix(base).unwrap_or(&absolute);
        let relative = relative.to_string_lossy();
        for rule in rules {
            if let Some(pattern) = rule.get("path_regex").and_then(Value::as_str) {
                let regex = Regex::new(pattern).map_err(|e| {
                    Exit::new(
                        code::GENERIC,
                        format!("invalid path_regex {pattern:?}: {e}"),
                    )
                })?;
                if !regex.is_match(&relative) {
                    continue;
                }
            }
            return self.rule(rule).map(Some);
        }
        Err(Exit::new(
            code::GENERIC,
            format!(
                "error loading config: no matching creation rules found in {} for {relative}",
                self.path.display()
            ),
        ))
    }

    fn rule(&self, rule: &Value) -> Result<Rule, Exit> {
        let mut selection = None;
        for key in SELECTION {
            if let Some(value) = rule
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
            {
                if selection.is_some() {
                    return Err(Exit::new(
                        code::GENERIC,
                        format!(
                            "error loading config: cannot use more than one of {}",
                            SELECTION.join(", ")
                        ),
                    ));
                }
                selection = Some((key.to_owned(), value.to_owned()));
            }
        }
        let groups = match rule.get("key_groups").and_then(Value::as_array) {
            Some(groups) => groups
                .iter()
                .map(|g| group_recipients(g, true))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![group_recipients(rule, false)?],
        };
        let threshold = rule
            .get("shamir_threshold")
            .and_then(Value::as_u64)
            .map_or(0, |n| n as usize);
        Ok(Rule {
            keys: KeyPlan { groups, threshold },
            selection,
            mac_only_encrypted: rule
                .get("mac_only_encrypted")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// The age recipients of a rule or key group (`merge:` groups spliced in); other key types
/// are refused, since gitseal cannot encrypt for them.
fn group_recipients(group: &Value, in_group: bool) -> Result<Vec<String>, Exit> {
    let mut out = Vec::new();
    for key_type in UNSUPPORTED_KEYS {
        let present = match group.get(key_type) {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(Value::Array(items)) => !items.is_empty(),
            _ => false,
        };
        if present {
            return Err(Exit::new(
                code::GENERIC,
                format!(
                    "the creation rule uses {key_type} keys: gitseal encrypts for age recipients only (decrypting files that also carry {key_type} keys works)"
                ),
            ));
        }
    }
    match group.get("age") {
        Some(Value::String(list)) => out.extend(split_list(list)),
        Some(Value::Array(items)) => {
            for item in items {
                if let Some(text) = item.as_str() {
                    out.extend(split_list(text));
                }
            }
        }
        _ => {}
    }
    if in_group && let Some(Value::Array(merged)) = group.get("merge") {
        for other in merged {
            out.extend(group_recipients(other, true)?);
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(r.clone()));
    Ok(out)
}

/// A comma-separated key list, blanks trimmed.
pub fn split_list(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
