//! Reading and writing Kubernetes manifests as kubeseal does: a stream of JSON or YAML
//! documents in, pretty JSON (2-space indent) or YAML (sorted keys, `---` before each
//! document) out, files written atomically.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Map, Value};

/// Output format (`-o/--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Kubernetes' pretty JSON.
    Json,
    /// YAML with sorted keys.
    Yaml,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "yaml" => Ok(Self::Yaml),
            _ => Err(format!("unsupported output format: {text}")),
        }
    }
}

/// Parses a stream of JSON or YAML documents; empty documents are skipped.
///
/// The input may hold plaintext secrets, so an error says where the input is wrong, never
/// what it says (see [`syntax_error`]). Nesting, aliases and node counts are bounded by
/// `gitseal_crypto::limits`; callers bound the size when they read.
pub fn parse_documents(input: &[u8]) -> anyhow::Result<Vec<Value>> {
    let text = std::str::from_utf8(input).map_err(|e| {
        anyhow::anyhow!(
            "input is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        // One or more concatenated JSON documents; serde_json stops at 128 levels, which
        // is `limits::MAX_DEPTH`.
        let mut documents = Vec::new();
        for document in serde_json::Deserializer::from_str(trimmed).into_iter::<Value>() {
            documents.push(
                document.map_err(|e| {
                    syntax_error("invalid JSON input", Some((e.line(), e.column())))
                })?,
            );
        }
        return Ok(documents);
    }
    let documents: Vec<Value> = serde_saphyr::from_str_multiple_with_options(text, yaml_options())
        .map_err(|e| yaml_error(&e))?;
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
}

/// The YAML reader's options: no source snippets in errors, and the limits of
/// `gitseal_crypto::limits` (the SOPS reader applies the same ones).
fn yaml_options() -> serde_saphyr::Options {
    use gitseal_crypto::limits;
    serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: limits::MAX_DEPTH,
            max_documents: 100_000,
            max_nodes: limits::MAX_ALIAS_NODES * 4,
            max_events: limits::MAX_ALIAS_NODES * 8,
            max_total_scalar_bytes: limits::MANIFEST.bytes,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: limits::MAX_ALIAS_NODES,
        },
    }
}

/// A YAML reader error as [`syntax_error`] shows it.
fn yaml_error(error: &serde_saphyr::Error) -> anyhow::Error {
    use serde_saphyr::Error as E;
    // The cause, under the wrappers that add an alias's locations or a snippet.
    let mut cause = error;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = cause {
        cause = error;
    }
    let what = match cause {
        E::Budget { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => {
            "YAML input over the limits on nesting depth, aliases or size"
        }
        _ => "invalid YAML input",
    };
    let position = error
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| (l.line() as usize, l.column() as usize));
    syntax_error(what, position)
}

/// The one rule for errors about input that may hold secrets: say what is wrong and
/// where (line and column), never quote the input. Parser messages often quote the
/// offending text (`invalid type: string "s3cr3t"`), and a manifest line is often a
/// `password: …`.
pub fn syntax_error(what: &str, position: Option<(usize, usize)>) -> anyhow::Error {
    match position {
        Some((line, column)) => anyhow::anyhow!("{what} at line {line}, column {column}"),
        None => anyhow::anyhow!("{what}"),
    }
}

/// The fields of `ObjectMeta` in the order Go's encoding/json writes them.
const OBJECT_META_ORDER: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// `metadata` in ObjectMeta field order, with label and annotation keys sorted.
pub fn ordered_object_meta(meta: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for key in OBJECT_META_ORDER {
        if let Some(value) = meta.get(key) {
            let value = match key {
                "labels" | "annotations" => sorted(value),
                _ => value.clone(),
            };
            out.insert(key.to_owned(), value);
        }
    }
    out
}

/// A copy of `value` with every object's keys sorted.
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Renders one document in `format`.
pub fn render(value: &Value, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(value)?;
            text.push('\n');
            text
        }
        Format::Yaml => {
            // Long base64 values stay on one line, as kubeseal writes them.
            let mut options = serde_saphyr::SerializerOptions::default();
            options.prefer_block_scalars = false;
            format!(
                "---\n{}",
                serde_saphyr::to_string_with_options(&sorted(value), options)?
            )
        }
    })
}

/// Rendered documents (which may hold plaintext) joined into one buffer, allocated once
/// so that no unwiped copy of a plaintext is left behind by a growing buffer.
pub fn concat(pieces: &[zeroize::Zeroizing<String>]) -> zeroize::Zeroizing<Vec<u8>> {
    let size = pieces.iter().map(|p| p.len()).sum();
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(size));
    for piece in pieces {
        out.extend_from_slice(piece.as_bytes());
    }
    out
}

/// The output format a file name asks for: `.yaml`/`.yml` force YAML.
pub fn format_for_path(path: &Path, default: Format) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Format::Yaml,
        _ => default,
    }
}

/// The files under `paths` (files are taken as given; directories are walked, skipping
/// `.git` and whatever `.gitignore`/`.ignore` files exclude), in a stable order.
pub fn walk(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_dir() {
            files.push(path.clone());
            continue;
        }
        // Hidden files are walked too (a committed `.secrets/db.yaml` is still committed);
        // only Git's own directory is skipped.
        let walker = ignore::WalkBuilder::new(path)
            .require_git(false)
            .hidden(false)
            .filter_entry(|entry| entry.file_name() != ".git")
            .sort_by_file_path(|a, b| a.cmp(b))
            .build();
        for entry in walker {
            let entry = entry.with_context(|| format!("cannot walk {}", path.display()))?;
            if entry.file_type().is_some_and(|t| t.is_file()) {
                files.push(entry.into_path());
            }
        }
    }
    Ok(files)
}

/// A string field of an object, if present.
pub fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Fails unless `value` is an object.
pub fn expect_object<'a>(
    value: &'a mut Value,
    what: &str,
) -> anyhow::Result<&'a mut Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        _ => bail!("{what} is not an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_back_exactly_from_rendered_json() {
        // Found by the kubeseal_input fuzz target: serde_json's default float parser is not
        // exact, so 444…4 (39 digits) read from YAML, rendered as JSON and read again came
        // back one unit in the last place off. The workspace enables `float_roundtrip`.
        let docs = parse_documents(b"a: 444444444444444444444444444444444444444\n").unwrap();
        let json = render(&docs[0], Format::Json).unwrap();
        assert_eq!(parse_documents(json.as_bytes()).unwrap(), docs);
    }

    #[test]
    fn multi_document_yaml_and_json() {
        let docs = parse_documents(b"---\na: 1\n---\n---\nb: x\n").unwrap();
        assert_eq!(docs.len(), 2);
        let docs = parse_documents(b"{\"a\": 1}\n{\"b\": 2}").unwrap();
        assert_eq!(docs.len(), 2);
        assert!(parse_documents(b"a: [").is_err());
    }
}
