//! `gitseal check`: a pre-commit and CI guard. It fails when a repository holds a Secret
//! manifest with plaintext data, or a file meant to be SOPS-encrypted (by a `.sops.yaml`
//! creation rule, or a `.sops.`/`.enc.` name) that is not encrypted.
//!
//! The guard fails closed: a file it has to check but cannot read or parse completely is a
//! finding too (`cannot be checked: <reason>`), as is a `.sops.yaml` it cannot read. A
//! report names the file and the reason, never a value from the file.
//!
//! Which files are checked:
//!
//! - `.yaml`, `.yml` and `.json` files are manifests: every document is parsed (with the
//!   limits of [`gitseal_crypto::limits`]), and a `v1` Secret with a non-empty `data` or
//!   `stringData` is a finding unless its document carries SOPS metadata. Secrets inside a
//!   `List`, `SecretList` or any other `…List` with `items` are checked as well. A YAML file
//!   that is not valid YAML but holds Go template actions (`{{ … }}`, a Helm template) is
//!   checked with each action replaced by a placeholder; a Secret value made of template
//!   actions only is not plaintext.
//! - A file with `.sops.` or `.enc.` in its name, or matched by a `path_regex` of the
//!   nearest `.sops.yaml` above it, whatever its extension, must be SOPS-encrypted in the
//!   format sops picks by its extension: YAML and JSON documents with a top-level `sops`
//!   mapping holding `version`, `lastmodified` and `mac`, a dotenv file with `sops_` keys,
//!   an INI file with a `[sops]` section, anything else sops' JSON envelope for binary
//!   files. The metadata is found by parsing the file, never by searching its text.
//! - Other files are not read: binary files, templates in other languages and so on.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::bail;
use gitseal_crypto::limits::{self, SizeLimit};
use gitseal_crypto::sops::store::Format;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::{file, manifest};

/// Examples shown by `gitseal check --help`.
pub const EXAMPLES: &str = "Examples:
  gitseal check .
  gitseal check clusters/ apps/secret.yaml

Checked: .yaml/.yml/.json manifests (Secrets, also inside Lists, must not hold plaintext
data), and files that must be SOPS-encrypted (.sops./.enc. in the name, or a .sops.yaml
path_regex matches them). A file that cannot be read or parsed is reported too.

In .pre-commit-config.yaml (the hook is defined in this repository's .pre-commit-hooks.yaml):
  - repo: https://github.com/gitseal/gitseal
    rev: v0.1.0
    hooks: [{id: gitseal-check}]";

/// Options of `gitseal check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to check (.git and .gitignore'd entries are skipped).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// What stands in for a Go template action when a Helm template is checked.
const TEMPLATE_PLACEHOLDER: &str = "gitseal-template-action";

/// One problem found.
enum Finding {
    /// A plaintext Secret, or a file that should be SOPS-encrypted and is not.
    Plaintext(String),
    /// A file that could not be checked.
    Unchecked(String),
}

/// The `path_regex`es of one `.sops.yaml`, with its directory.
struct CreationRules {
    dir: PathBuf,
    regexes: Vec<regex::Regex>,
}

/// The state of one run: `.sops.yaml` files already read, and the findings so far.
#[derive(Default)]
struct Checker {
    /// By `.sops.yaml` path: its rules, or `None` when it could not be used (and was
    /// reported).
    configs: HashMap<PathBuf, Option<CreationRules>>,
    findings: Vec<Finding>,
    checked: usize,
}

impl Checker {
    /// Why `path` must be SOPS-encrypted, if it must.
    fn sops_claim(&mut self, path: &Path) -> Option<&'static str> {
        let name = path.file_name()?.to_string_lossy();
        if name == ".sops.yaml" {
            return None;
        }
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let config = absolute
            .ancestors()
            .skip(1)
            .map(|dir| dir.join(".sops.yaml"))
            .find(|config| std::fs::symlink_metadata(config).is_ok());
        if let Some(rules) = config.and_then(|config| self.creation_rules(&config)) {
            let relative = absolute
                .strip_prefix(&rules.dir)
                .unwrap_or(&absolute)
                .to_string_lossy();
            if rules.regexes.iter().any(|r| r.is_match(&relative)) {
                return Some("a .sops.yaml creation rule matches it");
            }
        }
        (name.contains(".sops.") || name.contains(".enc."))
            .then_some("its name says it is encrypted")
    }

    /// The creation rules of `config`, read once; a `.sops.yaml` that cannot be read is
    /// reported once, and then `None`.
    fn creation_rules(&mut self, config: &Path) -> Option<&CreationRules> {
        if !self.configs.contains_key(config) {
            let rules = match load_creation_rules(config) {
                Ok(rules) => Some(rules),
                Err(reason) => {
                    self.findings.push(Finding::Unchecked(format!(
                        "{}: cannot be checked: {reason}; the files below it cannot be checked \
                         against its creation rules",
                        config.display()
                    )));
                    None
                }
            };
            self.configs.insert(config.to_owned(), rules);
        }
        self.configs[config].as_ref()
    }

    fn unchecked(&mut self, path: &Path, reason: impl std::fmt::Display) {
        self.findings.push(Finding::Unchecked(format!(
            "{}: cannot be checked: {reason}",
            path.display()
        )));
    }

    /// Checks one file, if it is a candidate (see the module documentation).
    fn check_file(&mut self, path: &Path) {
        let manifest = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        );
        let claim = self.sops_claim(path);
        if !manifest && claim.is_none() {
            return;
        }
        self.checked += 1;
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            // A FIFO or device would block the read or never end.
            Ok(_) => return self.unchecked(path, "not a regular file"),
            Err(error) => return self.unchecked(path, error),
        }
        let limit = if claim.is_some() {
            limits::SOPS_FILE
        } else {
            limits::MANIFEST
        };
        let bytes = match file::read(path, limit) {
            Ok(bytes) => bytes,
            Err(error) => return self.unchecked(path, error),
        };
        let encrypted = if manifest {
            let (documents, template) = match parse(path, &bytes, limit) {
                Ok(parsed) => parsed,
                Err(reason) => return self.unchecked(path, reason),
            };
            for document in &documents {
                self.check_object(path, document, sops_metadata(document), template, None, 0);
            }
            !documents.is_empty() && documents.iter().all(sops_metadata)
        } else {
            Format::from_path(path)
                .parse_encrypted(&bytes)
                .is_ok_and(|(_, metadata)| !metadata.mac.is_empty())
        };
        if let Some(why) = claim.filter(|_| !encrypted) {
            self.findings.push(Finding::Plaintext(format!(
                "{}: not SOPS-encrypted, but {why}; encrypt it (sops encrypt -i {})",
                path.display(),
                path.display()
            )));
        }
    }

    /// Reports `value` if it is a Secret with plaintext data, and the items of a List.
    /// `kind` is the kind its List implies (`Secret` in a `SecretList`).
    fn check_object(
        &mut self,
        path: &Path,
        value: &Value,
        encrypted: bool,
        template: bool,
        kind: Option<&str>,
        depth: usize,
    ) {
        let Some(object) = value.as_object() else {
            return;
        };
        if depth > limits::MAX_DEPTH {
            return self.unchecked(path, "Lists are nested too deeply");
        }
        let kind = object.get("kind").and_then(Value::as_str).or(kind);
        if let (Some(list), Some(items)) = (
            kind.filter(|k| k.ends_with("List")),
            object.get("items").and_then(Value::as_array),
        ) {
            let implied = list.strip_suffix("List").filter(|k| !k.is_empty());
            for item in items {
                self.check_object(path, item, encrypted, template, implied, depth + 1);
            }
        }
        let api_version = object.get("apiVersion");
        let is_secret = kind == Some("Secret")
            && (api_version.is_none() || api_version.and_then(Value::as_str) == Some("v1"));
        if is_secret && !encrypted && holds_plaintext(object, template) {
            let meta = |f: &str| {
                value
                    .pointer(&format!("/metadata/{f}"))
                    .and_then(Value::as_str)
                    .map_or_else(|| "?".to_owned(), |s| s.escape_debug().to_string())
            };
            self.findings.push(Finding::Plaintext(format!(
                "{}: Secret {}/{} holds plaintext data; seal it (gitseal seal) or encrypt it (sops)",
                path.display(),
                meta("namespace"),
                meta("name")
            )));
        }
    }
}

/// Reads a `.sops.yaml`: the `path_regex` of each creation rule.
fn load_creation_rules(config: &Path) -> Result<CreationRules, String> {
    let bytes = file::read(config, limits::SOPS_FILE).map_err(|e| e.to_string())?;
    let documents = manifest::parse_documents(&bytes).map_err(|e| format!("{e:#}"))?;
    let mut regexes = Vec::new();
    let rules = documents.first().and_then(|d| d.get("creation_rules"));
    let rules = match rules {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(rules)) => rules,
        Some(_) => return Err("creation_rules is not a list".into()),
    };
    for (n, rule) in rules.iter().enumerate() {
        match rule.get("path_regex") {
            None | Some(Value::Null) => {}
            Some(Value::String(pattern)) => regexes
                .push(regex::Regex::new(pattern).map_err(|_| {
                    format!("the path_regex of creation rule {} is invalid", n + 1)
                })?),
            Some(_) => {
                return Err(format!(
                    "the path_regex of creation rule {} is not a string",
                    n + 1
                ));
            }
        }
    }
    let dir = config.parent().unwrap_or(Path::new("/")).to_owned();
    Ok(CreationRules { dir, regexes })
}

/// The documents of a manifest file, and whether Go template actions were replaced to
/// parse it.
fn parse(path: &Path, bytes: &[u8], limit: SizeLimit) -> Result<(Vec<Value>, bool), String> {
    let error = match manifest::parse_documents(bytes) {
        Ok(documents) => return Ok((documents, false)),
        Err(error) => format!("{error:#}"),
    };
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let Some(text) = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| yaml && t.contains("{{"))
    else {
        return Err(error);
    };
    let replaced = replace_template_actions(text)
        .ok_or_else(|| format!("{error} (a Go template action is not closed)"))?;
    limit
        .check(replaced.len())
        .map_err(|e| format!("{e} once its Go template actions are replaced"))?;
    manifest::parse_documents(replaced.as_bytes())
        .map(|documents| (documents, true))
        .map_err(|e| format!("{e:#} (with its Go template actions replaced)"))
}

/// `text` with each Go template action `{{ … }}` replaced by [`TEMPLATE_PLACEHOLDER`], and
/// lines left with nothing but placeholders emptied (`{{- if … }}`, `{{- end }}`). Line
/// breaks inside actions are kept, so positions in errors stay right. `None` when an
/// action is not closed.
fn replace_template_actions(text: &str) -> Option<Zeroizing<String>> {
    let actions = text.matches("{{").count();
    // Allocated once: the text may hold secrets, and a grown buffer leaves copies behind.
    let mut replaced = Zeroizing::new(String::with_capacity(
        text.len() + actions * TEMPLATE_PLACEHOLDER.len(),
    ));
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        replaced.push_str(&rest[..start]);
        let end = rest[start + 2..].find("}}")? + start + 4;
        replaced.push_str(TEMPLATE_PLACEHOLDER);
        for _ in rest[start..end].matches('\n') {
            replaced.push('\n');
        }
        rest = &rest[end..];
    }
    replaced.push_str(rest);
    let mut out = Zeroizing::new(String::with_capacity(replaced.len()));
    for line in replaced.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        if is_template_only(body) {
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    Some(out)
}

/// Whether `text` is nothing but template placeholders and blanks (and at least one).
fn is_template_only(text: &str) -> bool {
    text.contains(TEMPLATE_PLACEHOLDER) && text.replace(TEMPLATE_PLACEHOLDER, "").trim().is_empty()
}

/// Whether a Secret's `data` or `stringData` holds a value: anything but an absent, null or
/// empty field, or (in a template) values made of template actions only.
fn holds_plaintext(secret: &Map<String, Value>, template: bool) -> bool {
    let templated = |value: &Value| template && value.as_str().is_some_and(is_template_only);
    ["data", "stringData"]
        .iter()
        .any(|field| match secret.get(*field) {
            None | Some(Value::Null) => false,
            Some(Value::Object(items)) => items.values().any(|v| !templated(v)),
            Some(other) => !templated(other),
        })
}

/// Whether a document carries SOPS metadata: a top-level `sops` mapping with the fields
/// sops always writes.
fn sops_metadata(document: &Value) -> bool {
    let Some(sops) = document.get("sops").and_then(Value::as_object) else {
        return false;
    };
    let present = |key: &str| match sops.get(key) {
        Some(Value::String(text)) => !text.is_empty(),
        Some(Value::Number(_)) => key == "version",
        _ => false,
    };
    present("mac") && present("lastmodified") && present("version")
}

/// Runs `gitseal check`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let files = manifest::walk(&args.paths)?;
    let mut checker = Checker::default();
    for file in &files {
        checker.check_file(file);
    }
    let (mut plaintext, mut unchecked) = (0, 0);
    for finding in &checker.findings {
        let line = match finding {
            Finding::Plaintext(line) => {
                plaintext += 1;
                line
            }
            Finding::Unchecked(line) => {
                unchecked += 1;
                line
            }
        };
        writeln!(out, "{line}")?;
    }
    let checked = checker.checked;
    match (plaintext, unchecked) {
        (0, 0) => Ok(()),
        (_, 0) => bail!("{plaintext} plaintext secret(s) found in {checked} file(s) checked"),
        _ => bail!(
            "{plaintext} plaintext secret(s) found and {unchecked} file(s) that cannot be \
             checked, of {checked} file(s) to check"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_actions_are_replaced_keeping_lines() {
        let text = "{{- if .Values.on }}\nkind: Secret\ndata:\n  a: {{ .Values.a | b64enc }}\n  \
                    b: x{{ .B }}\n{{/* a\ncomment */}}\n{{- end }}\n";
        let replaced = replace_template_actions(text).unwrap();
        let p = TEMPLATE_PLACEHOLDER;
        assert_eq!(
            *replaced,
            format!("\nkind: Secret\ndata:\n  a: {p}\n  b: x{p}\n\n\n\n")
        );
        let documents = manifest::parse_documents(replaced.as_bytes()).unwrap();
        let secret = documents[0].as_object().unwrap();
        assert!(holds_plaintext(secret, true), "b is partly literal");
        assert!(replace_template_actions("a: {{ .X").is_none());
        let only_actions = format!("data: {{a: {p}, b: \" {p} \"}}\n");
        let documents = manifest::parse_documents(only_actions.as_bytes()).unwrap();
        let secret = documents[0].as_object().unwrap();
        assert!(!holds_plaintext(secret, true));
        assert!(holds_plaintext(secret, false));
    }

    #[test]
    fn sops_metadata_needs_its_fields() {
        let doc = |sops: &str| -> Value { serde_json::from_str(sops).unwrap() };
        assert!(sops_metadata(&doc(
            r#"{"sops": {"mac": "ENC[x]", "lastmodified": "2024-01-01T00:00:00Z", "version": "3.9.0"}}"#
        )));
        assert!(!sops_metadata(&doc(r#"{"sops": {"mac": "ENC[x]"}}"#)));
        assert!(!sops_metadata(&doc(r#"{"sops": "[sops]"}"#)));
        assert!(!sops_metadata(&doc(r#"{"data": {"sops": {}}}"#)));
    }
}
