//! `.sops.yaml`: found from the working directory upwards (or `--config`/`SOPS_CONFIG`);
//! the first creation rule whose `path_regex` matches supplies keys and options; `stores`
//! sets output indentation.

use std::path::{Path, PathBuf};

use gitseal_crypto::limits;
use gitseal_crypto::sops::store::{Layout, MAX_INDENT};
use gitseal_crypto::sops::walk::SELECTION_KEYS as SELECTION;
use regex::Regex;
use serde_json::Value;

use super::keys::{GroupPlan, KeyPlan};
use super::{Exit, code};
use gitseal_backends::kms::KmsKey;

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
    /// `mac_only_encrypted`, when the rule sets it.
    pub mac_only_encrypted: Option<bool>,
}

const UNSUPPORTED_KEYS: [&str; 6] = [
    "pgp",
    "gcp_kms",
    "azure_keyvault",
    "hc_vault_transit_uri",
    "hc_vault",
    "hckms",
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
        let bytes = crate::file::read(&path, limits::SOPS_FILE).map_err(|e| {
            Exit::new(
                code::GENERIC,
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        Self::from_bytes(path, &bytes).map(Some)
    }

    /// The configuration in `bytes`, read from the file at `path` (rules' `path_regex`
    /// match file names relative to its directory).
    pub fn from_bytes(path: PathBuf, bytes: &[u8]) -> Result<Self, Exit> {
        let value = crate::manifest::parse_documents(bytes)
            .map_err(|e| {
                Exit::new(
                    code::GENERIC,
                    format!("invalid config file {}: {e:#}", path.display()),
                )
            })?
            .into_iter()
            .next()
            .unwrap_or_else(|| Value::Object(Default::default()));
        let path = std::path::absolute(&path).unwrap_or(path);
        Ok(Self { path, value })
    }

    /// Output layout from `stores:`. A negative indent means the default (a tab for JSON);
    /// one above `MAX_INDENT` is refused, as `--indent` refuses it.
    pub fn layout(&self) -> Result<Layout, Exit> {
        let indent = |store: &str| -> Result<Option<usize>, Exit> {
            let Some(n) = self
                .value
                .pointer(&format!("/stores/{store}/indent"))
                .and_then(Value::as_i64)
            else {
                return Ok(None);
            };
            match usize::try_from(n) {
                Ok(n) if n <= MAX_INDENT => Ok(Some(n)),
                Ok(_) => Err(Exit::new(
                    code::GENERIC,
                    format!(
                        "invalid config file {}: stores.{store}.indent must be at most {MAX_INDENT}",
                        self.path.display()
                    ),
                )),
                Err(_) => Ok(None),
            }
        };
        Ok(Layout {
            yaml_indent: indent("yaml")?,
            json_indent: indent("json")?,
            json_binary_indent: indent("json_binary")?,
        })
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
                .map(|g| group_plan(g, true))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![group_plan(rule, false)?],
        };
        let threshold = rule
            .get("shamir_threshold")
            .and_then(Value::as_u64)
            .map_or(0, |n| n as usize);
        Ok(Rule {
            keys: KeyPlan { groups, threshold },
            selection,
            mac_only_encrypted: rule.get("mac_only_encrypted").and_then(Value::as_bool),
        })
    }
}

/// The keys of a rule or key group (`merge:` groups spliced in). Key types gitseal cannot
/// encrypt for are refused rather than silently left out.
fn group_plan(group: &Value, in_group: bool) -> Result<GroupPlan, Exit> {
    let mut plan = GroupPlan::default();
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
                    "the creation rule uses {key_type} keys: gitseal encrypts for age and AWS KMS keys only (decrypting files that also carry {key_type} keys works)"
                ),
            ));
        }
    }
    match group.get("age") {
        Some(Value::String(list)) => plan.age.extend(split_list(list)),
        Some(Value::Array(items)) => {
            for item in items.iter().filter_map(Value::as_str) {
                plan.age.extend(split_list(item));
            }
        }
        _ => {}
    }
    let profile = group
        .get("aws_profile")
        .and_then(Value::as_str)
        .unwrap_or("");
    match group.get("kms") {
        Some(Value::String(list)) => plan
            .kms
            .extend(split_list(list).map(|k| kms_from_text(&k, profile))),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(text) => plan
                        .kms
                        .extend(split_list(text).map(|k| kms_from_text(&k, profile))),
                    Value::Object(entry) => {
                        let text = |key: &str| {
                            entry
                                .get(key)
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned()
                        };
                        let mut context: Vec<(String, String)> = entry
                            .get("context")
                            .and_then(Value::as_object)
                            .map(|c| {
                                c.iter()
                                    .map(|(k, v)| {
                                        (
                                            k.clone(),
                                            v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        context.sort();
                        plan.kms.push(KmsKey {
                            arn: text("arn"),
                            role: text("role"),
                            context,
                            profile: text("aws_profile"),
                        });
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    if in_group && let Some(Value::Array(merged)) = group.get("merge") {
        for other in merged {
            let other = group_plan(other, true)?;
            plan.age.extend(other.age);
            plan.kms.extend(other.kms);
        }
    }
    let mut seen = std::collections::HashSet::new();
    plan.age.retain(|r| seen.insert(r.clone()));
    let mut seen = Vec::new();
    plan.kms.retain(|k| {
        let new = !seen.contains(k);
        seen.push(k.clone());
        new
    });
    Ok(plan)
}

/// A KMS key written as `arn[+role]`.
pub fn kms_from_text(text: &str, profile: &str) -> KmsKey {
    let (arn, role) = text.split_once('+').unwrap_or((text, ""));
    KmsKey {
        arn: arn.trim().to_owned(),
        role: role.trim().to_owned(),
        context: Vec::new(),
        profile: profile.to_owned(),
    }
}

/// A comma-separated key list, blanks trimmed.
pub fn split_list(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
