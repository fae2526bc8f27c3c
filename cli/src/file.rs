//! The user's files, read and written safely. Every command reads its inputs through
//! [`read`] / [`read_stdin`] (bounded by a [`SizeLimit`] of `gitseal_crypto::limits`) and
//! writes files only through [`write_atomic`].
//!
//! [`write_atomic`] replaces a regular file by renaming a finished temporary file over it,
//! so a reader (or a crash) never sees half a file, and keeps what the target was:
//!
//! - a symbolic link is followed and its target replaced, the link stays a link;
//! - the target's permission bits, and its owner and group where the process may set
//!   them, are kept; a new file gets `0666` less the umask, as `open(2)` would give it;
//! - devices, FIFOs and `/dev/stdout`-like links into `/proc` are written directly;
//! - a file with several hard links, a directory or a socket is refused, since it cannot
//!   be replaced without breaking it.
//!
//! The temporary file is created `0600` (or with the target's mode when that is stricter),
//! so a process killed mid-write leaves nothing readable by others; it is named
//! `.NAME.PID.tmp` beside the target and locked while it is written; the next write to the
//! same target removes such leftovers that no process holds locked any more.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, bail};
use gitseal_crypto::limits::SizeLimit;
use zeroize::Zeroizing;

/// Reads all of `path`, failing once it is larger than `limit`; the bytes are wiped when
/// dropped, since inputs may be plaintext secrets.
pub fn read(path: &Path, limit: SizeLimit) -> io::Result<Zeroizing<Vec<u8>>> {
    let file = File::open(path)?;
    let hint = file.metadata().map_or(0, |m| m.len());
    read_from(file, limit, hint)
}

/// Reads all of standard input, failing once it is larger than `limit`.
pub fn read_stdin(limit: SizeLimit) -> io::Result<Zeroizing<Vec<u8>>> {
    read_from(io::stdin().lock(), limit, 0)
}

/// Reads `reader` to its end, failing once more than `limit` bytes arrive. `hint` is the
/// expected size (a file's length), used to allocate once: growing the buffer would leave
/// unwiped copies of its contents behind.
pub fn read_from(reader: impl Read, limit: SizeLimit, hint: u64) -> io::Result<Zeroizing<Vec<u8>>> {
    let cap = usize::try_from(hint).unwrap_or(usize::MAX).min(limit.bytes);
    let mut bytes = Zeroizing::new(Vec::with_capacity(cap.saturating_add(1)));
    let mut chunk = Zeroizing::new(vec![0u8; 64 << 10]);
    let mut reader = reader.take(limit.bytes as u64 + 1);
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if bytes.len() + n > bytes.capacity() {
            // Grow by hand into a new zeroizing buffer, so the old one is wiped.
            let mut larger = Zeroizing::new(Vec::with_capacity((bytes.len() + n) * 2));
            larger.extend_from_slice(&bytes);
            bytes = larger;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    limit
        .check(bytes.len())
        .map_err(|e| io::Error::new(io::ErrorKind::FileTooLarge, e))?;
    Ok(bytes)
}

/// Writes `bytes` to `path` without ever leaving a partial or over-readable file; see the
/// module documentation for what is kept and what is refused.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_target(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Creates `path` with `bytes` and mode `0600`, refusing to replace anything that exists
/// (a key file): the file appears whole or not at all.
pub fn create_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let create = || -> io::Result<()> {
        let temporary = parent(path).join(temporary_name(path).map_err(io::Error::other)?);
        let mut file = create_private(&temporary, 0o600)?;
        // Linking fails if the target exists, where a rename would replace it.
        let result = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::hard_link(&temporary, path));
        let _ = std::fs::remove_file(&temporary);
        result
    };
    create().with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))
}

/// Checks, without writing, that [`write_atomic`] can replace `path`: its directory is
/// writable and the target is not of a kind it refuses. Commands that rewrite several files
/// check them all first, so that one unwritable target stops them before any write.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    let check = || -> anyhow::Result<()> {
        let Target::Replace { path: real, .. } = resolve(path)? else {
            return Ok(());
        };
        let dir = parent(&real);
        let probe = temporary_name(&real)?;
        let probe = dir.join(probe);
        create_private(&probe, 0o600)?;
        std::fs::remove_file(&probe)?;
        Ok(())
    };
    check().with_context(|| format!("cannot write {}", path.display()))
}

/// What a write to a path amounts to.
enum Target {
    /// A device, FIFO or stream: written in place.
    Direct(PathBuf),
    /// A regular file (or none yet) at `path`, its symbolic links resolved: replaced.
    Replace {
        path: PathBuf,
        existing: Option<std::fs::Metadata>,
    },
}

/// Follows symbolic links to the file a write to `path` reaches.
fn resolve(path: &Path) -> anyhow::Result<Target> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        let dir = parent(&current).canonicalize()?;
        let name = current
            .file_name()
            .context("the output path has no file name")?
            .to_owned();
        let real = dir.join(&name);
        if real.starts_with("/proc") {
            // /dev/stdout, /dev/fd/N: links of the kernel's, not a file to replace.
            return Ok(Target::Direct(path.to_path_buf()));
        }
        match std::fs::symlink_metadata(&real) {
            Ok(meta) if meta.file_type().is_symlink() => {
                current = dir.join(std::fs::read_link(&real)?);
            }
            Ok(meta) if meta.is_file() => {
                if meta.nlink() > 1 {
                    bail!(
                        "it has {} hard links, which replacing it would break; write to \
                         another path and copy the result over it",
                        meta.nlink()
                    );
                }
                return Ok(Target::Replace {
                    path: real,
                    existing: Some(meta),
                });
            }
            Ok(meta) if meta.is_dir() => bail!("it is a directory"),
            Ok(meta) if meta.file_type().is_socket() => bail!("it is a socket"),
            Ok(_) => return Ok(Target::Direct(real)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(Target::Replace {
                    path: real,
                    existing: None,
                });
            }
            Err(error) => return Err(error.into()),
        }
    }
    bail!("too many levels of symbolic links")
}

fn write_target(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let (real, existing) = match resolve(path)? {
        Target::Direct(device) => {
            let mut file = OpenOptions::new().write(true).open(device)?;
            file.write_all(bytes)?;
            return Ok(file.flush()?);
        }
        Target::Replace { path, existing } => (path, existing),
    };
    let dir = parent(&real);
    remove_stale_temporaries(dir, &real);
    let temporary = dir.join(temporary_name(&real)?);
    let final_mode = match &existing {
        Some(meta) => meta.permissions().mode() & 0o7777,
        None => 0o666 & !umask(),
    };
    let result = (|| -> io::Result<()> {
        let mut file = create_private(&temporary, final_mode & 0o600)?;
        // Held until the file is closed: another gitseal cleaning up leftovers (in this
        // or another container sharing the directory) leaves a locked file alone.
        file.lock()?;
        file.write_all(bytes)?;
        if let Some(meta) = &existing {
            // Fails without the privilege to give files away; the mode is kept anyway.
            let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
        }
        file.sync_all()?;
        std::fs::rename(&temporary, &real)?;
        // Only now, under its final name, may the file become readable by others: a
        // process killed before this point leaves a temporary file no one else can read.
        file.set_permissions(std::fs::Permissions::from_mode(final_mode))?;
        // The rename is durable once the directory is; not all file systems allow this.
        let _ = File::open(dir).and_then(|d| d.sync_all());
        Ok(())
    })();
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(error.into());
    }
    Ok(())
}

/// The directory a path is in (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `.NAME.PID.tmp`: the temporary file for `target` of this process.
fn temporary_name(target: &Path) -> anyhow::Result<OsString> {
    let mut name = OsString::from(".");
    name.push(
        target
            .file_name()
            .context("the output path has no file name")?,
    );
    name.push(format!(".{}.tmp", std::process::id()));
    Ok(name)
}

/// Creates a new file (never following a link, never reusing one) with `mode`.
fn create_private(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

/// Removes `.NAME.PID.tmp` files for `target` that a killed gitseal left behind: ours by
/// name and owner, and not locked, so no process is still writing them.
fn remove_stale_temporaries(dir: &Path, target: &Path) {
    let Some(name) = target.file_name() else {
        return;
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    for candidate in temporaries_in(dir) {
        let is_ours = candidate.to_str().is_some_and(|n| {
            n.strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".tmp"))
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        });
        let path = dir.join(&candidate);
        // The metadata of the entry itself, not of a link target: a regular file of ours,
        // removed only while we hold its lock.
        let abandoned = is_ours
            && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && Some(m.uid()) == me)
            && File::open(&path).is_ok_and(|file| file.try_lock().is_ok());
        if abandoned {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The names in `dir` shaped like a temporary file (`.….tmp`), listed once per directory
/// and process: a command that rewrites a thousand files of one directory lists it once.
fn temporaries_in(dir: &Path) -> Vec<OsString> {
    static LISTED: Mutex<BTreeMap<PathBuf, Vec<OsString>>> = Mutex::new(BTreeMap::new());
    let mut listed = LISTED.lock().unwrap_or_else(PoisonError::into_inner);
    listed
        .entry(dir.to_path_buf())
        .or_insert_with(|| {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return Vec::new();
            };
            entries
                .flatten()
                .map(|entry| entry.file_name())
                .filter(|n| {
                    n.to_str()
                        .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
                })
                .collect()
        })
        .clone()
}

/// The process's umask, as the kernel reports it (`022` where it cannot be read).
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitseal_crypto::limits;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn reads_stop_at_the_limit() {
        let limit = limits::SizeLimit::new("test input", 10);
        assert_eq!(
            &*read_from(&b"0123456789"[..], limit, 0).unwrap(),
            b"0123456789"
        );
        let error = read_from(io::repeat(0), limit, u64::MAX).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            error.to_string(),
            "larger than 10 B, the maximum for a test input"
        );
        let big = vec![7u8; 100_000];
        let read = read_from(&big[..], limits::MANIFEST, 0).unwrap();
        assert_eq!(&*read, &big[..]);
    }

    #[test]
    fn replaces_files_keeping_mode_links_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.yaml");
        write_atomic(&path, b"one").unwrap();
        assert_eq!(mode(&path), 0o666 & !umask());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o600);

        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink("out.yaml", &link).unwrap();
        write_atomic(&link, b"three").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"three");

        let hard = dir.path().join("hard.yaml");
        std::fs::hard_link(&path, &hard).unwrap();
        let error = format!("{:#}", write_atomic(&hard, b"four").unwrap_err());
        assert!(error.contains("2 hard links"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        assert!(write_atomic(dir.path(), b"x").is_err());

        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 3, "no temporary file is left");
    }

    #[test]
    fn abandoned_temporaries_are_removed_and_locked_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.yaml");
        let stale = dir.path().join(".secret.yaml.4242.tmp");
        let busy = dir.path().join(".secret.yaml.4343.tmp");
        let other = dir.path().join(".secret.yaml.4444.tmp.keep");
        for file in [&stale, &busy, &other] {
            std::fs::write(file, b"plaintext").unwrap();
        }
        // Another process (or container) still writing it holds its lock.
        let writer = File::open(&busy).unwrap();
        writer.lock().unwrap();
        write_atomic(&path, b"new").unwrap();
        assert!(!stale.exists());
        assert!(busy.exists() && other.exists());
    }

    #[test]
    fn devices_are_written_in_place() {
        write_atomic(Path::new("/dev/null"), b"discarded").unwrap();
        let meta = std::fs::metadata("/dev/null").unwrap();
        assert!(!meta.is_file());
    }
}
