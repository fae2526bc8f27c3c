//! Input bounds: the one place where gitseal decides how much hostile input it accepts.
//!
//! Every reader of untrusted text — manifests, SOPS files of every format, certificates,
//! key files, `.sops.yaml`, values given to `sops set` — applies these limits, and every
//! writer refuses to produce what a reader would refuse. A limit that is hit is an error
//! with a clear message and a non-zero exit, never a crash, a hang or unbounded memory.
//! The numbers are generous for real repositories and are documented in `SECURITY.md`.
//!
//! ```
//! use gitseal_crypto::limits::{self, SizeLimit};
//!
//! assert!(limits::MANIFEST.check(1024).is_ok());
//! let error = SizeLimit::new("certificate", 4).check(5).unwrap_err();
//! assert_eq!(error.to_string(), "larger than 4 B, the maximum for a certificate");
//! ```

use std::fmt;

/// How deeply maps and lists may nest in any document (YAML block or flow style, JSON,
/// SOPS trees, `sops set` paths). Recursive readers and writers stay far from the stack's
/// end at this depth, on any thread.
pub const MAX_DEPTH: usize = 128;

/// How many nodes (maps, lists, scalars) YAML aliases may copy into one document stream,
/// the copies anchors keep included; the text they copy is bounded by [`SOPS_FILE`]. An
/// alias bomb (nested anchors, each alias doubling the tree) stops here instead of
/// exhausting memory; real files use a handful of aliases.
pub const MAX_ALIAS_NODES: usize = 1_000_000;

/// Kubernetes manifests (`seal`, `kubeseal`, `reseal`, `check`): a stream of many
/// documents may be large, but a Secret itself cannot exceed 1 MiB in the API server.
pub const MANIFEST: SizeLimit = SizeLimit::new("manifest", 64 << 20);

/// SOPS files of any format, including binary files and `.sops.yaml`.
pub const SOPS_FILE: SizeLimit = SizeLimit::new("SOPS file", 256 << 20);

/// Certificates (`--cert` from a file, a URL or the controller) and key files (age
/// identities, a controller's private key backup).
pub const KEY_MATERIAL: SizeLimit = SizeLimit::new("certificate or key file", 16 << 20);

/// A maximum size in bytes for one kind of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit {
    /// What is being read, for the error message ("manifest", "SOPS file", …).
    pub what: &'static str,
    /// The largest accepted size in bytes.
    pub bytes: usize,
}

impl SizeLimit {
    /// A limit of `bytes` for inputs of the kind `what`.
    pub const fn new(what: &'static str, bytes: usize) -> Self {
        Self { what, bytes }
    }

    /// Fails when `len` bytes are over the limit.
    pub fn check(self, len: usize) -> Result<(), TooLarge> {
        if len > self.bytes {
            Err(TooLarge(self))
        } else {
            Ok(())
        }
    }
}

/// An input was larger than its [`SizeLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge(pub SizeLimit);

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SizeLimit { what, bytes } = self.0;
        let (value, unit) = match bytes {
            b if b >= 1 << 20 && b % (1 << 20) == 0 => (b >> 20, "MiB"),
            b if b >= 1 << 10 && b % (1 << 10) == 0 => (b >> 10, "KiB"),
            b => (b, "B"),
        };
        write!(f, "larger than {value} {unit}, the maximum for a {what}")
    }
}

impl std::error::Error for TooLarge {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_limit_and_the_kind() {
        assert_eq!(
            MANIFEST.check(MANIFEST.bytes + 1).unwrap_err().to_string(),
            "larger than 64 MiB, the maximum for a manifest"
        );
        assert!(MANIFEST.check(MANIFEST.bytes).is_ok());
        assert_eq!(
            SizeLimit::new("x", 3 << 10)
                .check(usize::MAX)
                .unwrap_err()
                .to_string(),
            "larger than 3 KiB, the maximum for a x"
        );
    }
}
