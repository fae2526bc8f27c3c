//! `gitseal reseal`: re-encrypt every SealedSecret under some paths to a new certificate,
//! in place. Each value is unsealed with the old keys and sealed again, under the same
//! scope, to the new certificate; the new ciphertext replaces the old one in the file's
//! text, so comments and layout stay as they were. Files whose values are all sealed to
//! the new certificate already are not touched. Files that are not valid YAML or JSON
//! (templates, say) are skipped and listed.
//!
//! All or nothing: nothing is written when any file fails, and every file to rewrite is
//! checked to be writable before the first is written, unless `--keep-going`. Should a
//! write fail all the same, the files written and those not written are listed.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::bail;
use gitseal_crypto::limits;
use gitseal_crypto::sealed::{Keyring, seal};
use serde_json::Value;

use crate::kubeseal::sealing_key;
use crate::sealing::{load_recovery_key_files, scope_of};
use crate::{file, manifest};

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

/// What resealing one file amounts to.
enum Outcome {
    /// Nothing to change.
    Unchanged,
    /// Not a manifest gitseal can read (the reason); not touched.
    Skipped(String),
    /// The new text, and the number of values resealed.
    Changed(String, usize),
}

/// Reseals the SealedSecrets in a file's `text`.
fn reseal_file(
    text: &str,
    keyring: &Keyring,
    new_key_index: Option<usize>,
    key: &gitseal_crypto::sealed::PublicKey,
) -> anyhow::Result<Outcome> {
    let documents = match manifest::parse_documents(text.as_bytes()) {
        Ok(documents) => documents,
        Err(error) => return Ok(Outcome::Skipped(format!("{error:#}"))),
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
        return Ok(Outcome::Unchanged);
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
    Ok(Outcome::Changed(new, replacements.len()))
}

/// Reads a file to reseal and reseals it.
fn reseal_path(
    path: &Path,
    keyring: &Keyring,
    new_key_index: Option<usize>,
    key: &gitseal_crypto::sealed::PublicKey,
) -> anyhow::Result<Outcome> {
    let bytes = file::read(path, limits::MANIFEST)?;
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(Outcome::Skipped("not UTF-8".into()));
    };
    reseal_file(text, keyring, new_key_index, key)
}

/// A file to rewrite.
struct Change {
    path: PathBuf,
    text: String,
    values: usize,
}

/// What writing the changed files did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Written {
    files: usize,
    values: usize,
    failed: usize,
}

/// How many files are written at once: the writes wait on the disk, not on the CPU, and
/// the file system commits the syncs of concurrent writes together.
const WRITERS: usize = 8;

/// Writes `changes` with `write`, `writers` at a time; without `keep_going` no file is
/// started after a failure. When some file is not written, every file is listed, in order,
/// as `written:` or `not written:`, so that nobody has to guess what a failed run changed.
fn write_changes(
    changes: &[&Change],
    keep_going: bool,
    writers: usize,
    out: &mut dyn Write,
    write: impl Fn(&Path, &[u8]) -> anyhow::Result<()> + Sync,
) -> std::io::Result<Written> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (next, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
    let mut outcomes: Vec<(usize, anyhow::Result<()>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..writers.clamp(1, changes.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut outcomes = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(change) = changes.get(i) else { break };
                        let result = write(&change.path, change.text.as_bytes());
                        if result.is_err() && !keep_going {
                            stop.store(true, Ordering::Relaxed);
                        }
                        outcomes.push((i, result));
                    }
                    outcomes
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a writer panicked"))
            .collect()
    });
    outcomes.sort_by_key(|(i, _)| *i);
    let mut result = Written::default();
    let mut done = vec![false; changes.len()];
    for (i, outcome) in outcomes {
        match outcome {
            Ok(()) => {
                done[i] = true;
                result.files += 1;
                result.values += changes[i].values;
            }
            Err(error) => {
                writeln!(out, "failed: {error:#}")?;
                result.failed += 1;
            }
        }
    }
    if result.files < changes.len() {
        for (change, done) in changes.iter().zip(&done) {
            let label = if *done { "written" } else { "not written" };
            writeln!(out, "{label}: {}", change.path.display())?;
        }
    }
    Ok(result)
}

/// Runs `gitseal reseal`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let key = sealing_key(&args.cert)?;
    let keyring = load_recovery_key_files(&args.private_key)?;
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
    let results: Vec<anyhow::Result<Outcome>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                let (keyring, key, done, total) = (&keyring, &key, &done, files.len());
                scope.spawn(move || {
                    part.iter()
                        .map(|file| {
                            let result = reseal_path(file, keyring, new_key_index, key);
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
    let (mut changed, mut failures, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for (file, result) in files.iter().zip(results) {
        match result {
            Ok(Outcome::Changed(text, values)) => changed.push(Change {
                path: file.clone(),
                text,
                values,
            }),
            Ok(Outcome::Unchanged) => {}
            Ok(Outcome::Skipped(reason)) => skipped.push(format!("{}: {reason}", file.display())),
            Err(e) => failures.push(format!("{}: {e:#}", file.display())),
        }
    }
    if progress {
        eprint!("\r\x1b[2K");
    }
    for skip in &skipped {
        writeln!(out, "skipped (not a manifest): {skip}")?;
    }
    for failure in &failures {
        writeln!(out, "failed: {failure}")?;
    }
    let scanned = files.len();
    let summary = |out: &mut dyn Write, verb: &str, values: usize, files: usize, failed: usize| {
        writeln!(
            out,
            "{verb} {values} value(s) in {files} file(s); {scanned} file(s) scanned, {failed} failed"
        )
    };
    let all_values = changed.iter().map(|c| c.values).sum();
    if args.dry_run || (!failures.is_empty() && !args.keep_going) {
        summary(
            out,
            "would reseal",
            all_values,
            changed.len(),
            failures.len(),
        )?;
        if !failures.is_empty() {
            let hint = if args.dry_run {
                ""
            } else {
                " (use --keep-going to write the others)"
            };
            bail!(
                "nothing was written because {} file(s) failed{hint}",
                failures.len()
            );
        }
        return Ok(());
    }
    // Every target is checked before the first write, so that one that cannot be written
    // stops the run before it has changed anything.
    let mut writable = Vec::new();
    let mut unwritable = Vec::new();
    for change in &changed {
        match file::check_writable(&change.path) {
            Ok(()) => writable.push(change),
            Err(error) => {
                writeln!(out, "failed: {error:#}")?;
                unwritable.push(change);
            }
        }
    }
    if !unwritable.is_empty() && !args.keep_going {
        let failed = failures.len() + unwritable.len();
        summary(out, "would reseal", all_values, changed.len(), failed)?;
        bail!(
            "nothing was written because {} file(s) cannot be written (use --keep-going to write the others)",
            unwritable.len()
        );
    }
    for change in &unwritable {
        writeln!(out, "not written: {}", change.path.display())?;
    }
    let written = write_changes(&writable, args.keep_going, WRITERS, out, file::write_atomic)?;
    let failed = failures.len() + unwritable.len() + written.failed;
    summary(out, "resealed", written.values, written.files, failed)?;
    if written.failed > 0 && !args.keep_going {
        bail!(
            "a write failed after {} of {} file(s) were written; the files written and not written are listed above",
            written.files,
            writable.len()
        );
    }
    if failed > 0 {
        bail!("{failed} file(s) failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_lists_what_was_written_and_what_was_not() {
        let changes: Vec<Change> = ["a.yaml", "b.yaml", "c.yaml"]
            .into_iter()
            .map(|name| Change {
                path: PathBuf::from(name),
                text: String::new(),
                values: 2,
            })
            .collect();
        let changes: Vec<&Change> = changes.iter().collect();
        let fail_b = |path: &Path, _: &[u8]| {
            if path == Path::new("b.yaml") {
                bail!("cannot write b.yaml: disk full")
            }
            Ok(())
        };
        let mut out = Vec::new();
        let written = write_changes(&changes, false, 1, &mut out, fail_b).unwrap();
        assert_eq!(
            written,
            Written {
                files: 1,
                values: 2,
                failed: 1
            }
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "failed: cannot write b.yaml: disk full\nwritten: a.yaml\nnot written: b.yaml\n\
             not written: c.yaml\n"
        );

        let mut out = Vec::new();
        let written = write_changes(&changes, true, 1, &mut out, fail_b).unwrap();
        assert_eq!((written.files, written.failed), (2, 1));
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("not written: b.yaml\nwritten: c.yaml\n")
        );

        let mut out = Vec::new();
        let written = write_changes(&changes, false, 3, &mut out, |_, _| Ok(())).unwrap();
        assert_eq!((written.files, written.values), (3, 6));
        assert!(
            out.is_empty(),
            "nothing to list when every file was written"
        );
    }
}
