//! `gitseal reseal`: re-encrypt every SealedSecret under some paths to a new certificate,
//! in place. Each value is unsealed with the old keys and sealed again, under the same
//! scope, to the new certificate; the new ciphertext replaces the old one in the file's
//! text, so comments and layout stay as they were. Files whose values are all sealed to
//! the new certificate already are not touched. Nothing is written when any file fails,
//! unless `--keep-going`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use gitseal_crypto::sealed::{Keyring, seal};
use serde_json::Value;

use crate::kubeseal::sealing_key;
use crate::manifest;
use crate::sealing::{load_recovery_keys, scope_of};

/// Examples shown by `gitseal reseal --help`.
pub const EXAMPLES: &str = "Examples:
  # After the controller renewed its key: reseal a repository to the new certificate
  gitseal reseal clusters/ apps/ --cert new-cert.pem --private-key sealing-keys-backup.yaml

  # See what would change
  gitseal reseal . --cert new-cert.pem --private-key keys.yaml --dry-run";

/// Options of `gitseal reseal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to search for SealedSecrets (`.yaml`, `.yml`, `.json`).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The certificate to reseal to.
    #[arg(long, env = "SEALED_SECRETS_CERT")]
    pub cert: String,
    /// Private keys that opened the current values: PEM, key Secrets or a `v1.List` backup
    /// (repeatable or comma-separated). Include the new key to skip values already current.
    #[arg(
        long,
        alias = "recovery-private-key",
        value_delimiter = ',',
        required = true
    )]
    pub private_key: Vec<PathBuf>,
    /// Write the files that succeed even when others fail.
    #[arg(long)]
    pub keep_going: bool,
    /// Report what would change without writing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// The new text of a file, or `None` when nothing in it changes; with the number of values
/// resealed.
fn reseal_file(
    text: &str,
    keyring: &Keyring,
    new_key_index: Option<usize>,
    key: &gitseal_crypto::sealed::PublicKey,
) -> anyhow::Result<(Option<String>, usize)> {
    let Ok(documents) = manifest::parse_documents(text.as_bytes()) else {
        return Ok((None, 0));
    };
    let mut replacements = Vec::new();
    for document in documents
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("SealedSecret"))
    {
        let meta = document
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let name = meta.get("name").and_then(Value::as_str).unwrap_or_default();
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let label = scope_of(&meta).label(namespace, name);
        let items = document
            .pointer("/spec/encryptedData")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (item, value) in items {
            let old = value.as_str().unwrap_or_default();
            let (plaintext, index) = keyring
                .unseal_indexed(&label, old, new_key_index)
                .map_err(|e| anyhow::anyhow!("{namespace}/{name} item {item:?}: {e}"))?;
            if Some(index) == new_key_index {
                continue;
            }
            replacements.push((old.to_owned(), seal(key, &label, plaintext.expose())?));
        }
    }
    if replacements.is_empty() {
        return Ok((None, 0));
    }
    let mut new = text.to_owned();
    for (old, fresh) in &replacements {
        if !new.contains(old.as_str()) {
            bail!(
                "a sealed value is split across lines; reformat the file so each value is on one line"
            );
        }
        new = new.replace(old.as_str(), fresh);
    }
    Ok((Some(new), replacements.len()))
}

/// Runs `gitseal reseal`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let key = sealing_key(&args.cert)?;
    let mut contents = Vec::new();
    for path in &args.private_key {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        contents.push((path.display().to_string(), bytes));
    }
    let keyring = load_recovery_keys(&contents)?;
    let new_key_index = keyring
        .keys()
        .iter()
        .position(|k| k.public_key().spki_der() == key.spki_der());
    let files: Vec<PathBuf> = manifest::walk(&args.paths)?
        .into_iter()
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    let progress = std::io::stderr().is_terminal();
    // Each value costs an RSA private-key operation: spread the files over every core.
    let done = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let chunk = files.len().div_ceil(workers).max(1);
    let results: Vec<anyhow::Result<(Option<String>, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                let (keyring, key, done, total) = (&keyring, &key, &done, files.len());
                scope.spawn(move || {
                    part.iter()
                        .map(|file| {
                            let result = std::fs::read_to_string(file)
                                .map_err(anyhow::Error::from)
                                .and_then(|text| reseal_file(&text, keyring, new_key_index, key));
                            let count = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            if progress {
                                eprint!("\r\x1b[2K[{count}/{total}] {}", file.display());
                            }
                            result
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a reseal worker panicked"))
            .collect()
    });
    let (mut changed, mut failures, mut values) = (Vec::new(), Vec::new(), 0);
    for (file, result) in files.iter().zip(results) {
        match result {
            Ok((Some(new), count)) => {
                values += count;
                changed.push((file.clone(), new));
            }
            Ok((None, _)) => {}
            Err(e) => failures.push(format!("{}: {e:#}", file.display())),
        }
    }
    if progress {
        eprint!("\r\x1b[2K");
    }
    for failure in &failures {
        writeln!(out, "failed: {failure}")?;
    }
    let write = !args.dry_run && (failures.is_empty() || args.keep_going);
    if write {
        for (file, new) in &changed {
            manifest::write_atomic(file, new.as_bytes())?;
        }
    }
    let verb = if write { "resealed" } else { "would reseal" };
    writeln!(
        out,
        "{verb} {values} value(s) in {} file(s); {} file(s) scanned, {} failed",
        changed.len(),
        files.len(),
        failures.len()
    )?;
    if !failures.is_empty() {
        if !args.keep_going {
            bail!(
                "nothing was written because {} file(s) failed (use --keep-going to write the others)",
                failures.len()
            );
        }
        bail!("{} file(s) failed", failures.len());
    }
    Ok(())
}
