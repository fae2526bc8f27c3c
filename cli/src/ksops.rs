//! `gitseal ksops`, and the binary invoked as `ksops`: a drop-in for viaduct-ai's
//! kustomize-sops (ksops), the kustomize generator for SOPS-encrypted files.
//!
//! It runs the way kustomize runs ksops:
//!
//! - **legacy exec plugin**: kustomize finds the executable at
//!   `$XDG_CONFIG_HOME/kustomize/plugin/viaduct.ai/v1/ksops/ksops`, runs it with the path of
//!   (a copy of) the generator config as the only argument, in the kustomization's
//!   directory, and reads a YAML manifest stream on standard output;
//! - **KRM function** (`config.kubernetes.io/function: {exec: {path: …}}`, with
//!   `--enable-alpha-plugins --enable-exec`): without an argument it reads a
//!   `config.kubernetes.io/v1` `ResourceList` on standard input, takes the generator from
//!   its `functionConfig`, and writes the `ResourceList` back with the generated items added.
//!
//! The generator (`apiVersion: viaduct.ai/v1`, `kind: ksops`) has two lists:
//!
//! - `files`: SOPS-encrypted YAML or JSON manifests, each decrypted (the MAC verified) and
//!   emitted as its manifests;
//! - `secretFrom`: Secrets to build, each `{metadata, type, files, binaryFiles, envs}`:
//!   `files` become `stringData` entries, `binaryFiles` base64 `data` entries (both keyed by
//!   the file name, or `key=path`), and `envs` are dotenv files whose variables become
//!   `stringData` entries. The metadata is passed through, so kustomize's
//!   `kustomize.config.k8s.io/needs-hash` and `kustomize.config.k8s.io/behavior` annotations
//!   work as with ksops (kustomize reads and removes them).
//!
//! Paths are relative to the working directory, which kustomize sets to the
//! kustomization's directory in both modes (the legacy plugin's argument is a temporary
//! copy of the generator, so paths cannot be relative to it). Files are decrypted exactly
//! as `gitseal sops decrypt` decrypts them (`crate::sops::decrypt_tree`), with its key
//! sources: `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`, the default age key file
//! and AWS KMS. Up to `KSOPS_CONCURRENCY_LIMIT` files (default 20) are decrypted at once.
//!
//! Errors name the file and what failed, never a value; nothing is written to standard
//! output unless every file decrypted.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gitseal_crypto::limits;
use gitseal_crypto::sops::store::{Format, Layout, json, yaml};
use gitseal_crypto::sops::tree::{Map, MapItem, Node, Tree};
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::manifest;

/// Examples shown by `gitseal ksops --help`.
pub const EXAMPLES: &str = "\
Examples:
  # Install as kustomize's legacy exec plugin (kustomize build --enable-alpha-plugins)
  dir=${XDG_CONFIG_HOME:-$HOME/.config}/kustomize/plugin/viaduct.ai/v1/ksops
  mkdir -p \"$dir\" && ln -s \"$(command -v gitseal)\" \"$dir/ksops\"
  # Install as the KRM exec function `ksops` (kustomize build --enable-alpha-plugins --enable-exec)
  ln -s \"$(command -v gitseal)\" /usr/local/bin/ksops
  # Run by hand: a generator file (legacy), or a ResourceList on standard input (KRM)
  gitseal ksops secret-generator.yaml
  gitseal ksops < resource-list.yaml

The generator (kind: ksops, apiVersion: viaduct.ai/v1):
  files: [secret.enc.yaml]                   # SOPS-encrypted manifests, emitted decrypted
  secretFrom:
  - metadata: {name: app, annotations: {kustomize.config.k8s.io/needs-hash: \"true\"}}
    type: Opaque
    files: [config.json, tls.key=key.enc.pem] # stringData, keyed by file name or key=path
    binaryFiles: [keystore.p12]              # base64 data
    envs: [app.enc.env]                      # dotenv variables as stringData

Keys: SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, SOPS_AGE_KEY_CMD, ~/.config/sops/age/keys.txt, AWS KMS.
Paths are relative to the working directory (kustomize runs ksops in the kustomization's
directory). KSOPS_CONCURRENCY_LIMIT bounds parallel decryption (default 20).";

/// Arguments of `gitseal ksops` (and of the binary invoked as `ksops`).
#[derive(clap::Parser)]
#[command(
    name = "ksops",
    about = "kustomize generator for SOPS-encrypted files (ksops-compatible)",
    after_help = EXAMPLES
)]
pub struct Args {
    /// The generator config (legacy exec plugin). Without it, a KRM ResourceList is read
    /// on standard input and written back with the generated items.
    pub config: Option<PathBuf>,
}

/// Runs ksops: the legacy exec plugin with a config file, the KRM function without.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let output = match &args.config {
        Some(path) => legacy(path)?,
        None => {
            if std::io::stdin().is_terminal() {
                bail!(
                    "no generator given: run `ksops GENERATOR.yaml` (legacy exec plugin) or pipe a \
                     ResourceList to standard input (KRM function); see --help"
                );
            }
            let input = crate::file::read_stdin(limits::MANIFEST)
                .context("cannot read the ResourceList on standard input")?;
            krm(&input)?
        }
    };
    out.write_all(&output)?;
    Ok(out.flush()?)
}

/// The legacy exec plugin: the generator file in, a YAML manifest stream out.
fn legacy(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let bytes = crate::file::read(path, limits::MANIFEST)
        .with_context(|| format!("cannot read the generator {}", path.display()))?;
    let mut documents = manifest::parse_documents(&bytes)
        .with_context(|| format!("cannot parse the generator {}", path.display()))?;
    if documents.len() != 1 {
        bail!(
            "the generator {} holds {} documents, expected one",
            path.display(),
            documents.len()
        );
    }
    let generated = generate(&documents.remove(0))?;
    let layout = Layout {
        yaml_indent: Some(2),
        ..Layout::default()
    };
    let text = Format::Yaml
        .emit_plain(&generated, &layout)
        .map_err(|e| anyhow!("cannot write the generated manifests: {e}"))?;
    Ok(Zeroizing::new(text))
}

/// The KRM function: a ResourceList in, the same list with the generated items out. Input
/// items are passed through, except kustomize's copy of the generator itself (a `ksops`
/// object marked local-config).
fn krm(input: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut documents =
        manifest::parse_documents(input).context("cannot parse the ResourceList")?;
    if documents.len() != 1 {
        bail!(
            "standard input holds {} documents, expected one ResourceList",
            documents.len()
        );
    }
    let list = documents.remove(0);
    if manifest::text(&list, "/kind") != Some("ResourceList") {
        bail!("standard input is not a ResourceList (kind: ResourceList)");
    }
    let config = list
        .get("functionConfig")
        .filter(|c| c.is_object())
        .context("the ResourceList has no functionConfig: it should be the ksops generator")?;
    let generated = generate(config)?;
    let items = match list.get("items") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => bail!("the ResourceList's items is not a list"),
    };
    let mut pieces = vec![Zeroizing::new(String::from(
        "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n",
    ))];
    for item in items.iter().filter(|item| !is_own_config(item)) {
        let text = manifest::render(item, manifest::Format::Yaml)?;
        pieces.push(list_item(text.strip_prefix("---\n").unwrap_or(&text)));
    }
    for document in &generated.documents {
        let text = Zeroizing::new(yaml::emit(std::slice::from_ref(document), 2));
        pieces.push(list_item(&text));
    }
    if pieces.len() == 1 {
        pieces[0] = Zeroizing::new(pieces[0].replace("items:\n", "items: []\n"));
    }
    Ok(manifest::concat(&pieces))
}

/// A YAML document as an item of a block sequence: indented as a whole, so that block
/// scalars keep their meaning.
fn list_item(document: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(document.len() * 2));
    for (i, line) in document.lines().enumerate() {
        out.push_str(if i == 0 { "- " } else { "  " });
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether a ResourceList item is kustomize's copy of a ksops generator, which it adds as
/// an input item marked `config.kubernetes.io/local-config`.
fn is_own_config(item: &Value) -> bool {
    manifest::text(item, "/kind") == Some("ksops")
        && item
            .pointer("/metadata/annotations")
            .and_then(|a| a.get("config.kubernetes.io/local-config"))
            .and_then(Value::as_str)
            == Some("true")
}

/// Where a generator's path comes from, for error messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Files,
    SecretFiles,
    BinaryFiles,
    Envs,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Self::Files => "files",
            Self::SecretFiles => "secretFrom.files",
            Self::BinaryFiles => "secretFrom.binaryFiles",
            Self::Envs => "secretFrom.envs",
        }
    }
}

/// One file to decrypt: the key it is stored under (secretFrom) and its path.
struct Job {
    field: Field,
    key: String,
    path: PathBuf,
}

/// One `secretFrom` entry: the Secret's metadata and type, and its jobs' range.
struct SecretFrom {
    metadata: Map,
    kind: Option<String>,
    jobs: std::ops::Range<usize>,
}

/// Runs the generator `config` (paths relative to the working directory): the manifests
/// of `files` and the Secrets of `secretFrom`, as documents of a tree that is wiped when
/// dropped.
pub fn generate(config: &Value) -> anyhow::Result<Tree> {
    let files = config.get("files");
    let secret_from = config.get("secretFrom");
    if files.is_none() && secret_from.is_none() {
        bail!("missing the required 'files' or 'secretFrom' key in the ksops generator");
    }
    let mut jobs = Vec::new();
    for path in strings(files, "files")? {
        jobs.push(Job {
            field: Field::Files,
            key: String::new(),
            path: PathBuf::from(path),
        });
    }
    let entries = match secret_from {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(entries)) => entries.as_slice(),
        Some(_) => bail!("'secretFrom' must be a list"),
    };
    let mut secrets = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = |field: &str| format!("secretFrom[{i}].{field}");
        if !entry.is_object() {
            bail!("secretFrom[{i}] must be a mapping");
        }
        let start = jobs.len();
        for (field, name) in [
            (Field::SecretFiles, "files"),
            (Field::BinaryFiles, "binaryFiles"),
        ] {
            for item in strings(entry.get(name), &at(name))? {
                let (key, path) = key_and_path(item, &at(name))?;
                jobs.push(Job { field, key, path });
            }
        }
        for item in strings(entry.get("envs"), &at("envs"))? {
            jobs.push(Job {
                field: Field::Envs,
                key: String::new(),
                path: PathBuf::from(item),
            });
        }
        let metadata = match entry.get("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(meta @ Value::Object(_)) => json::parse(&serde_json::to_string(meta)?)
                .map_err(|_| anyhow!("{} is not valid", at("metadata")))?,
            Some(_) => bail!("{} must be a mapping", at("metadata")),
        };
        let kind = match entry.get("type") {
            None | Some(Value::Null) => None,
            Some(Value::String(kind)) => Some(kind.clone()).filter(|k| !k.is_empty()),
            Some(_) => bail!("{} must be a string", at("type")),
        };
        secrets.push(SecretFrom {
            metadata,
            kind,
            jobs: start..jobs.len(),
        });
    }

    let mut decrypted = decrypt_all(&jobs, concurrency_limit()?)?;
    let mut out = Tree::default();
    for (job, (format, tree)) in jobs.iter().zip(decrypted.iter_mut()) {
        if job.field != Field::Files {
            continue;
        }
        if !matches!(format, Format::Yaml | Format::Json) {
            bail!(
                "{}: only YAML or JSON manifests can be listed under 'files' (use secretFrom \
                 for other files)",
                job.path.display()
            );
        }
        out.documents.append(&mut tree.documents);
    }
    for secret in secrets {
        let built = build_secret(secret, &jobs, &mut decrypted)?;
        out.documents.push(built);
    }
    Ok(out)
}

/// Builds one Secret of `secretFrom` from its decrypted files (taken out of `decrypted`).
fn build_secret(
    secret: SecretFrom,
    jobs: &[Job],
    decrypted: &mut [(Format, Tree)],
) -> anyhow::Result<Map> {
    // [0]: stringData, [1]: data; inside a tree so that they are wiped on every path.
    let mut values = Tree::new(vec![Map::new(), Map::new()]);
    for index in secret.jobs {
        let job = &jobs[index];
        let (format, tree) = &decrypted[index];
        let bytes = Zeroizing::new(format.emit_plain(tree, &Layout::default()).map_err(|e| {
            anyhow!(
                "{}: cannot write the decrypted file: {e}",
                job.path.display()
            )
        })?);
        match job.field {
            Field::SecretFiles => {
                let text = std::str::from_utf8(&bytes).map_err(|_| {
                    anyhow!(
                        "{}: not UTF-8 text; list it under binaryFiles instead",
                        job.path.display()
                    )
                })?;
                put(&mut values.documents[0], &job.key, text.to_owned());
            }
            Field::BinaryFiles => {
                put(&mut values.documents[1], &job.key, STANDARD.encode(&*bytes));
            }
            Field::Envs => {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| anyhow!("{}: not UTF-8 text", job.path.display()))?;
                for (key, value) in parse_env(text)
                    .with_context(|| format!("{}: invalid dotenv file", job.path.display()))?
                {
                    check_key(&key, &job.path)?;
                    put(&mut values.documents[0], &key, value);
                }
            }
            Field::Files => unreachable!("only secretFrom jobs are in a Secret's range"),
        }
    }
    let mut map = vec![
        MapItem::Entry("apiVersion".into(), Node::str("v1")),
        MapItem::Entry("kind".into(), Node::str("Secret")),
        MapItem::Entry("metadata".into(), Node::Map(secret.metadata)),
    ];
    if let Some(kind) = secret.kind {
        map.push(MapItem::Entry("type".into(), Node::str(kind)));
    }
    for (name, index) in [("stringData", 0), ("data", 1)] {
        let mut entries = std::mem::take(&mut values.documents[index]);
        if !entries.is_empty() {
            entries.sort_by(|a, b| entry_key(a).cmp(entry_key(b)));
            map.push(MapItem::Entry(name.into(), Node::Map(entries)));
        }
    }
    Ok(map)
}

fn entry_key(item: &MapItem) -> &str {
    match item {
        MapItem::Entry(key, _) => key,
        MapItem::Comment(_) => "",
    }
}

/// Sets `key` to `value` in `map` (a later file wins, as with ksops).
fn put(map: &mut Map, key: &str, value: String) {
    let node = Node::str(value);
    match map
        .iter_mut()
        .find(|item| matches!(item, MapItem::Entry(k, _) if k == key))
    {
        Some(MapItem::Entry(_, old)) => *old = node,
        _ => map.push(MapItem::Entry(key.to_owned(), node)),
    }
}

/// A list of strings (or nothing).
fn strings<'a>(value: Option<&'a Value>, what: &str) -> anyhow::Result<Vec<&'a str>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| anyhow!("'{what}' must be a list of paths"))
            })
            .collect(),
        Some(_) => bail!("'{what}' must be a list of paths"),
    }
}

/// `key=path`, or a path keyed by its file name.
fn key_and_path(item: &str, what: &str) -> anyhow::Result<(String, PathBuf)> {
    let (key, path) = match item.split_once('=') {
        None => {
            let name = Path::new(item)
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{what}: {item:?} has no file name"))?;
            (name.to_owned(), item)
        }
        Some((_, path)) if path.contains('=') => {
            bail!("{what}: invalid entry {item:?}: expected `path` or `key=path`")
        }
        Some((key, path)) => (key.to_owned(), path),
    };
    if path.is_empty() {
        bail!("{what}: {item:?} has an empty path");
    }
    check_key(&key, Path::new(path))?;
    Ok((key, PathBuf::from(path)))
}

/// Secret keys: `[-._a-zA-Z0-9]+`, at most 253 characters (as the API server requires).
fn check_key(key: &str, path: &Path) -> anyhow::Result<()> {
    let valid = !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid {
        bail!(
            "{}: invalid Secret key {key:?}: keys consist of letters, digits, '-', '_' and '.'",
            path.display()
        );
    }
    Ok(())
}

/// `KSOPS_CONCURRENCY_LIMIT`: how many files are decrypted at once (default 20).
fn concurrency_limit() -> anyhow::Result<usize> {
    match std::env::var("KSOPS_CONCURRENCY_LIMIT") {
        Err(_) => Ok(20),
        Ok(text) if text.is_empty() => Ok(20),
        Ok(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .with_context(|| {
                format!(
                    "KSOPS_CONCURRENCY_LIMIT must be a whole number of at least 1, not {text:?}"
                )
            }),
    }
}

/// Decrypts every job's file, up to `limit` at a time; the results are in job order, and
/// the first failure in job order is the one reported.
fn decrypt_all(jobs: &[Job], limit: usize) -> anyhow::Result<Vec<(Format, Tree)>> {
    let threads = limit.min(jobs.len());
    if threads <= 1 {
        return jobs.iter().map(decrypt).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<anyhow::Result<(Format, Tree)>>> =
        std::iter::repeat_with(|| None).take(jobs.len()).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(index) else {
                            break;
                        };
                        let result = decrypt(job);
                        let failed = result.is_err();
                        done.push((index, result));
                        if failed {
                            // Others may still fail earlier in job order; stop taking more.
                            next.store(jobs.len(), Ordering::Relaxed);
                        }
                    }
                    done
                })
            })
            .collect();
        for worker in workers {
            let done = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (index, result) in done {
                results[index] = Some(result);
            }
        }
    });
    let mut out = Vec::with_capacity(jobs.len());
    for (job, result) in jobs.iter().zip(results) {
        match result {
            Some(result) => out.push(result?),
            None => bail!("{}: not decrypted", job.path.display()),
        }
    }
    Ok(out)
}

/// Reads and decrypts one file (format from its extension, MAC verified).
fn decrypt(job: &Job) -> anyhow::Result<(Format, Tree)> {
    let path = &job.path;
    let bytes = crate::file::read(path, limits::SOPS_FILE)
        .with_context(|| format!("cannot read {} (from {})", path.display(), job.field.name()))?;
    let format = Format::from_path(path);
    let tree = crate::sops::decrypt_tree(&bytes, format, false).map_err(|e| {
        anyhow!(
            "cannot decrypt {} (from {}): {e}",
            path.display(),
            job.field.name()
        )
    })?;
    Ok((format, tree))
}

/// Parses dotenv text as ksops does (godotenv): `KEY=value` lines, `export ` prefixes,
/// `#` comments, blank lines; values in double quotes (with `\n`, `\t`, `\"`, `\\`
/// escapes) or single quotes (literal), or bare (trimmed, ` #` starts a comment). Errors
/// give the line number, never the line.
pub fn parse_env(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            bail!("line {number}: expected KEY=value");
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("line {number}: empty variable name");
        }
        let value = value.trim();
        let value = if let Some(rest) = value.strip_prefix('"') {
            unquote_double(rest).with_context(|| format!("line {number}: unterminated quote"))?
        } else if let Some(rest) = value.strip_prefix('\'') {
            let end = rest
                .find('\'')
                .with_context(|| format!("line {number}: unterminated quote"))?;
            rest[..end].to_owned()
        } else {
            let end = value.find(" #").unwrap_or(value.len());
            value[..end].trim_end().to_owned()
        };
        pairs.push((key.to_owned(), value));
    }
    Ok(pairs)
}

/// The text of a double-quoted dotenv value up to its closing quote, unescaped.
fn unquote_double(rest: &str) -> Option<String> {
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            other => out.push(other),
        }
    }
    out.zeroize();
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_as_godotenv_reads_it() {
        let pairs = parse_env(
            "# comment\n\nexport A=1\nB = two words # note\nC=\"x\\ny \\\"q\\\"\"\nD='lit\\n'\nE=\nF=a=b\n",
        )
        .unwrap();
        let expected = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "x\ny \"q\""),
            ("D", "lit\\n"),
            ("E", ""),
            ("F", "a=b"),
        ];
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expected);
        let error = parse_env("GOOD=1\npassword-without-equals\n").unwrap_err();
        assert_eq!(error.to_string(), "line 2: expected KEY=value");
        assert!(parse_env("A=\"open\n").is_err());
    }

    #[test]
    fn keys_and_paths() {
        let (key, path) = key_and_path("dir/tls.crt", "files").unwrap();
        assert_eq!(
            (key.as_str(), path),
            ("tls.crt", PathBuf::from("dir/tls.crt"))
        );
        let (key, path) = key_and_path("ca.pem=certs/ca.enc.pem", "files").unwrap();
        assert_eq!(
            (key.as_str(), path),
            ("ca.pem", PathBuf::from("certs/ca.enc.pem"))
        );
        assert!(key_and_path("a=b=c", "files").is_err());
        assert!(key_and_path("bad key=x", "files").is_err());
        assert!(key_and_path("k=", "files").is_err());
    }

    #[test]
    fn generator_shape_errors_are_clear() {
        let error = |config: Value| match generate(&config) {
            Ok(_) => panic!("{config} was accepted"),
            Err(error) => error.to_string(),
        };
        let message = error(serde_json::json!({"kind": "ksops"}));
        assert!(message.contains("'files' or 'secretFrom'"), "{message}");
        let message = error(serde_json::json!({"files": "x.yaml"}));
        assert!(message.contains("list of paths"), "{message}");
        let message = error(serde_json::json!({"secretFrom": [{"metadata": "x"}]}));
        assert!(message.contains("metadata must be a mapping"), "{message}");
    }

    #[test]
    fn kustomize_copy_of_the_generator_is_not_passed_through() {
        let own = serde_json::json!({"kind": "ksops", "metadata": {"annotations": {"config.kubernetes.io/local-config": "true"}}});
        assert!(is_own_config(&own));
        assert!(!is_own_config(
            &serde_json::json!({"kind": "ConfigMap", "metadata": {"annotations": {"config.kubernetes.io/local-config": "true"}}})
        ));
    }
}
