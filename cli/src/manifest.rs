//! Reading and writing Kubernetes manifests as kubeseal does: a stream of JSON or YAML
//! documents in, pretty JSON (2-space indent) or YAML (sorted keys, `---` before each
//! document) out, files written atomically.

use std::io::Write;
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
pub fn parse_documents(input: &[u8]) -> anyhow::Result<Vec<Value>> {
    let text = std::str::from_utf8(input).context("input is not UTF-8")?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        // One or more concatenated JSON documents.
        let mut documents = Vec::new();
        for document in serde_json::Deserializer::from_str(trimmed).into_iter::<Value>() {
            documents.push(document.context("invalid JSON input")?);
        }
        return Ok(documents);
    }
    let documents: Vec<Value> = serde_saphyr::from_str_multiple(text)
        .map_err(|e| anyhow::anyhow!("invalid YAML input: {e}"))?;
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
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

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced,
/// then renamed over the target, so readers never see a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().context("output path has no file name")?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// The output format a file name asks for: `.yaml`/`.yml` force YAML.
pub fn format_for_path(path: &Path, default: Format) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Format::Yaml,
        _ => default,
    }
}

/// The files under `paths` (files are taken as given; directories are walked, skipping
/// hidden entries and whatever `.gitignore`/`.ignore` files exclude), in a stable order.
pub fn walk(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_dir() {
            files.push(path.clone());
            continue;
        }
        let walker = ignore::WalkBuilder::new(path)
            .require_git(false)
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
    fn multi_document_yaml_and_json() {
        let docs = parse_documents(b"---\na: 1\n---\n---\nb: x\n").unwrap();
        assert_eq!(docs.len(), 2);
        let docs = parse_documents(b"{\"a\": 1}\n{\"b\": 2}").unwrap();
        assert_eq!(docs.len(), 2);
        assert!(parse_documents(b"a: [").is_err());
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = std::env::temp_dir().join(format!("gitseal-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.yaml");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
