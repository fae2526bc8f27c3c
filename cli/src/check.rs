//! `gitseal check`: a pre-commit and CI guard. It fails when a repository holds a Secret
//! manifest with plaintext data, or a file meant to be SOPS-encrypted (by a `.sops.yaml`
//! creation rule, or a `.sops.`/`.enc.` name) that is not encrypted.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::bail;
use serde_json::Value;

use crate::manifest;

/// Examples shown by `gitseal check --help`.
pub const EXAMPLES: &str = "Examples:
  gitseal check .
  gitseal check clusters/ apps/secret.yaml

In .pre-commit-config.yaml (the hook is defined in this repository's .pre-commit-hooks.yaml):
  - repo: https://github.com/gitseal/gitseal
    rev: v0.1.0
    hooks: [{id: gitseal-check}]";

/// Options of `gitseal check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to check (hidden and .gitignore'd entries are skipped).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Whether a file's text carries SOPS metadata in any store's layout.
fn sops_encrypted(text: &str, documents: Option<&[Value]>) -> bool {
    if let Some(documents) = documents {
        if documents.iter().any(|d| d.pointer("/sops/mac").is_some()) {
            return true;
        }
    }
    text.lines()
        .any(|l| l.starts_with("sops_mac=") || l.trim() == "[sops]")
}

/// The `path_regex`es of the nearest `.sops.yaml` above `file`, with its directory.
fn creation_rules(file: &Path) -> Option<(PathBuf, Vec<regex::Regex>)> {
    let absolute = std::path::absolute(file).ok()?;
    for dir in absolute.ancestors().skip(1) {
        let config = dir.join(".sops.yaml");
        if let Ok(text) = std::fs::read_to_string(&config) {
            let parsed: Value = serde_saphyr::from_str(&text).ok()?;
            let rules = parsed.get("creation_rules")?.as_array()?;
            let regexes = rules
                .iter()
                .filter_map(|r| r.get("path_regex")?.as_str())
                .filter_map(|r| regex::Regex::new(r).ok())
                .collect();
            return Some((dir.to_owned(), regexes));
        }
    }
    None
}

fn check_file(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let structured = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    );
    let documents = structured
        .then(|| manifest::parse_documents(text.as_bytes()).ok())
        .flatten();
    let mut findings = Vec::new();
    let encrypted = sops_encrypted(&text, documents.as_deref());
    for document in documents.iter().flatten() {
        let is_secret = document.get("kind").and_then(Value::as_str) == Some("Secret")
            && document.get("apiVersion").and_then(Value::as_str) == Some("v1");
        let has_data = ["data", "stringData"].iter().any(|f| {
            document
                .get(*f)
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        });
        if is_secret && has_data && !encrypted {
            let meta = |f: &str| {
                document
                    .pointer(&format!("/metadata/{f}"))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned()
            };
            findings.push(format!(
                "{}: Secret {}/{} holds plaintext data; seal it (gitseal seal) or encrypt it (sops)",
                path.display(),
                meta("namespace"),
                meta("name")
            ));
        }
    }
    if !encrypted && name != ".sops.yaml" {
        let by_name = name.contains(".sops.") || name.contains(".enc.");
        let by_rule = creation_rules(path).is_some_and(|(dir, rules)| {
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
            let relative = absolute
                .strip_prefix(&dir)
                .unwrap_or(&absolute)
                .to_string_lossy()
                .into_owned();
            rules.iter().any(|r| r.is_match(&relative))
        });
        if by_name || by_rule {
            let why = if by_rule {
                "a .sops.yaml creation rule matches it"
            } else {
                "its name says it is encrypted"
            };
            findings.push(format!(
                "{}: not SOPS-encrypted, but {why}; encrypt it (sops encrypt -i {})",
                path.display(),
                path.display()
            ));
        }
    }
    findings
}

/// Runs `gitseal check`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let files = manifest::walk(&args.paths)?;
    let findings: Vec<String> = files.iter().flat_map(|f| check_file(f)).collect();
    for finding in &findings {
        writeln!(out, "{finding}")?;
    }
    if !findings.is_empty() {
        bail!(
            "{} plaintext secret(s) found in {} file(s) checked",
            findings.len(),
            files.len()
        );
    }
    Ok(())
}
