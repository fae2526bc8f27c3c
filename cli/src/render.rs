//! `gitseal render`: the manifests of an application directory with its secrets opened,
//! for an Argo CD Config Management Plugin (`generate: gitseal render`).
//!
//! 1. The manifests: if the directory holds a `kustomization.yaml`, `kustomization.yml` or
//!    `Kustomization`, the output of `kustomize build DIR` when a standalone `kustomize` is
//!    on `PATH` (Argo CD's repo-server image ships one), else of `kubectl kustomize DIR`;
//!    otherwise every `*.yaml`, `*.yml` and `*.json` file of the directory itself (not its
//!    subdirectories, as Argo CD's directory source; hidden files such as `.sops.yaml` are
//!    skipped), in name order.
//! 2. Offline, each resource that carries a SOPS `sops:` block is decrypted as Flux does it:
//!    the parsed object through the JSON store, so YAML layout and comments do not matter.
//!    The MAC is verified unless `--ignore-mac`: a resource that kustomize changed (a
//!    namespace, labels, a name prefix, reordered keys) no longer matches it.
//! 3. Each SealedSecret (`bitnami.com/v1alpha1`) becomes the Secret the controller would
//!    make, with the private keys of `--private-key` (the controller's key backup, PEM keys
//!    or key Secrets), by the same code as `kubeseal --recovery-unseal`. Without keys,
//!    SealedSecrets are passed through for the in-cluster controller.
//! 4. The stream is printed as YAML; nothing is printed unless every resource rendered.
//!
//! The decrypted Secrets end up in Argo CD's manifest cache (Redis); see
//! `docs/build-time-decryption.md` for that trade-off.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, anyhow, bail};
use gitseal_crypto::limits;
use gitseal_crypto::sealed::Keyring;
use gitseal_crypto::sops::store::{Format, Layout};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::{manifest, sealing};

/// Examples shown by `gitseal render --help`.
pub const EXAMPLES: &str = "\
Examples:
  # In an application directory (kustomize overlay or plain manifests)
  gitseal render --private-key sealing-keys-backup.yaml
  # A kustomize overlay that changes SOPS-encrypted resources (namespace, labels...)
  gitseal render overlays/prod --ignore-mac
  # As an Argo CD Config Management Plugin: see examples/argocd/ and
  # docs/build-time-decryption.md
  GITSEAL_PRIVATE_KEYS=/keys/sealing-keys.yaml gitseal render

SOPS keys come from the usual places: SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, SOPS_AGE_KEY_CMD,
~/.config/sops/age/keys.txt, AWS KMS.";

/// Options of `gitseal render`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The application directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Private key(s) for SealedSecrets: the controller's key backup (a List of key
    /// Secrets), key Secrets or PEM files (repeatable or comma-separated). Without one,
    /// SealedSecrets are left sealed.
    #[arg(
        long = "private-key",
        env = "GITSEAL_PRIVATE_KEYS",
        value_delimiter = ','
    )]
    pub private_keys: Vec<PathBuf>,
    /// Decrypt SOPS resources without checking their MAC (needed when kustomize changed
    /// them).
    #[arg(
        long,
        env = "GITSEAL_IGNORE_MAC",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub ignore_mac: bool,
    /// An extra argument for the kustomize build (repeatable), e.g. --enable-helm.
    #[arg(long = "kustomize-arg", allow_hyphen_values = true)]
    pub kustomize_args: Vec<String>,
}

/// Runs `gitseal render`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let keyring = if args.private_keys.is_empty() {
        None
    } else {
        Some(sealing::load_recovery_key_files(&args.private_keys)?)
    };
    let kustomized = kustomization(&args.dir).is_some();
    let documents = if kustomized {
        kustomize_build(&args.dir, &args.kustomize_args)?
    } else {
        read_directory(&args.dir)?
    };
    let mut pieces = Vec::with_capacity(documents.len());
    let mac = Mac {
        ignore: args.ignore_mac,
        kustomized,
    };
    let mut sealed = 0;
    for document in documents {
        pieces.push(render(document, keyring.as_ref(), &mac, &mut sealed)?);
    }
    if sealed > 0 {
        eprintln!(
            "note: {sealed} SealedSecret(s) left sealed (give the controller's keys with \
             --private-key to unseal them here)"
        );
    }
    out.write_all(&manifest::concat(&pieces))?;
    Ok(out.flush()?)
}

/// The kustomization file of `dir`, if it has one.
fn kustomization(dir: &Path) -> Option<PathBuf> {
    ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// `kustomize build DIR` (a standalone kustomize on PATH), else `kubectl kustomize DIR`.
fn kustomize_build(dir: &Path, extra: &[String]) -> anyhow::Result<Vec<Value>> {
    let (program, subcommand) = match on_path("kustomize") {
        Some(kustomize) => (kustomize, "build"),
        None => (PathBuf::from("kubectl"), "kustomize"),
    };
    let mut command = Command::new(&program);
    command.arg(subcommand);
    command
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let shown = format!("{} {subcommand} {}", program.display(), dir.display());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {shown} (is kustomize or kubectl installed?)"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let read = crate::file::read_from(stdout, limits::MANIFEST, 0);
    if read.is_err() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    let bytes = read.with_context(|| format!("cannot read the output of {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    manifest::parse_documents(&bytes).with_context(|| format!("the output of {shown}"))
}

/// The file `name` in a directory of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The manifests of the `*.yaml`, `*.yml` and `*.json` files of `dir`, in name order.
fn read_directory(dir: &Path) -> anyhow::Result<Vec<Value>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let manifest = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        );
        if manifest && !name.starts_with('.') && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut documents = Vec::new();
    for path in files {
        let bytes = crate::file::read(&path, limits::MANIFEST)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let parsed = manifest::parse_documents(&bytes)
            .with_context(|| format!("cannot parse {}", path.display()))?;
        for (i, document) in parsed.into_iter().enumerate() {
            if manifest::text(&document, "/kind").is_none_or(str::is_empty) {
                bail!(
                    "{}: document {} is not a Kubernetes object (it has no kind)",
                    path.display(),
                    i + 1
                );
            }
            documents.push(document);
        }
    }
    Ok(documents)
}

/// `Kind/namespace/name` of a resource, for messages.
fn describe(document: &Value) -> String {
    let kind = manifest::text(document, "/kind").unwrap_or("object");
    let name = manifest::text(document, "/metadata/name").unwrap_or("(no name)");
    match manifest::text(document, "/metadata/namespace") {
        Some(namespace) if !namespace.is_empty() => format!("{kind} {namespace}/{name}"),
        _ => format!("{kind} {name}"),
    }
}

/// How SOPS resources' MACs are treated.
struct Mac {
    /// `--ignore-mac`: not checked.
    ignore: bool,
    /// The resources went through kustomize (a mismatch gets a hint).
    kustomized: bool,
}

/// One resource as YAML (`---` first): decrypted, unsealed or as it is.
fn render(
    document: Value,
    keyring: Option<&Keyring>,
    mac: &Mac,
    sealed: &mut usize,
) -> anyhow::Result<Zeroizing<String>> {
    // A SopsSecret is the in-cluster path: the controller decrypts it, and decrypted here
    // it would land, values and all, in Argo CD's cache and diffs.
    let sops_secret = manifest::text(&document, "/kind") == Some("SopsSecret")
        && manifest::text(&document, "/apiVersion")
            .is_some_and(|v| v.starts_with("isindir.github.com/"));
    if document.get("sops").is_some_and(Value::is_object) && !sops_secret {
        return decrypt(&document, mac);
    }
    let is_sealed = manifest::text(&document, "/apiVersion") == Some("bitnami.com/v1alpha1")
        && manifest::text(&document, "/kind") == Some("SealedSecret");
    if !is_sealed {
        return Ok(Zeroizing::new(manifest::render(
            &document,
            manifest::Format::Yaml,
        )?));
    }
    let Some(keyring) = keyring else {
        *sealed += 1;
        return Ok(Zeroizing::new(manifest::render(
            &document,
            manifest::Format::Yaml,
        )?));
    };
    let what = describe(&document);
    let mut secret = sealing::unseal_sealed_secret(document, keyring)
        .with_context(|| format!("cannot unseal {what}"))?;
    // The owner is the SealedSecret in the cluster, which this Secret replaces here.
    if let Some(meta) = secret.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("ownerReferences");
        if meta.get("namespace").and_then(Value::as_str) == Some("") {
            meta.remove("namespace");
        }
    }
    let text = Zeroizing::new(manifest::render(&secret, manifest::Format::Yaml)?);
    wipe(secret);
    Ok(text)
}

/// Overwrites the strings of a value that held plaintext before it is dropped.
fn wipe(mut value: Value) {
    use zeroize::Zeroize;
    fn walk(value: &mut Value) {
        match value {
            Value::String(text) => text.zeroize(),
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
}

/// Decrypts a resource with a `sops` block through the JSON store, as Flux does.
fn decrypt(document: &Value, mac: &Mac) -> anyhow::Result<Zeroizing<String>> {
    let what = describe(document);
    let json = serde_json::to_vec(document)?;
    let tree = crate::sops::decrypt_tree(&json, Format::Json, mac.ignore).map_err(|e| {
        let mut message = format!("cannot decrypt {what}: {e}");
        if e.code == crate::sops::code::MAC_MISMATCH && mac.kustomized {
            message.push_str(
                "\nhint: kustomize re-serialises resources with sorted keys and applies its \
                 transformers (namespace, labels, prefixes), which changes what the MAC \
                 covers; use --ignore-mac (GITSEAL_IGNORE_MAC=true), or encrypt with sorted \
                 keys and --mac-only-encrypted",
            );
        }
        anyhow!(message)
    })?;
    let layout = Layout {
        yaml_indent: Some(2),
        ..Layout::default()
    };
    let bytes = Zeroizing::new(
        Format::Yaml
            .emit_plain(&tree, &layout)
            .map_err(|e| anyhow!("cannot write {what}: {e}"))?,
    );
    let text = std::str::from_utf8(&bytes).map_err(|_| anyhow!("{what}: not UTF-8"))?;
    let mut out = Zeroizing::new(String::with_capacity(text.len() + 4));
    out.push_str("---\n");
    out.push_str(text);
    Ok(out)
}
