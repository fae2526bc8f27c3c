//! A whole SOPS file, as sync and I/O-free steps around the data key.
//!
//! - [`open`]: given the parsed file ([`Tree`] and [`Metadata`], from
//!   [`Format::parse_encrypted`](crate::sops::store::Format::parse_encrypted)) and its
//!   data key: decrypt every value, check the MAC, and hand back the plaintext tree
//!   (wiped on drop) with, when asked, the values' IVs for re-encryption.
//! - [`seal`]: encrypt a plaintext tree, compute and encrypt its MAC, stamp the metadata.
//! - Data-key recovery without the key services: [`Recovery`] says which key groups there
//!   are, collects the shares that the caller's key services unwrapped, and Shamir-combines
//!   them; [`split_key`] makes the shares a new data key is wrapped as.
//!
//! ```
//! use gitseal_crypto::DataKey;
//! use gitseal_crypto::sops::file::{self, OpenOptions};
//! use gitseal_crypto::sops::metadata::Metadata;
//! use gitseal_crypto::sops::store::Format;
//!
//! let mut tree = Format::Yaml.parse_plain(b"password: hunter2\n")?;
//! let mut metadata = Metadata::default();
//! let key = DataKey::generate();
//! file::seal(&mut tree, &mut metadata, &key, None)?;
//! assert!(metadata.mac.starts_with("ENC[AES256_GCM,"));
//!
//! let opened = file::open(tree, &metadata, &key, OpenOptions::default())?;
//! let plain = Format::Yaml.emit_plain(&opened.tree, &Default::default())?;
//! assert_eq!(plain, b"password: hunter2\n");
//! # Ok::<(), gitseal_crypto::SopsError>(())
//! ```

use crate::error::SopsError;
use crate::secret::{DataKey, SecretBytes};
use crate::sops::lastmodified_aad;
use crate::sops::metadata::{self, KeyGroup, Metadata, WRITTEN_VERSION};
use crate::sops::shamir;
use crate::sops::tree::Tree;
use crate::sops::value::ValueCipher;
use crate::sops::walk::{self, IvStash};

/// What [`open`] checks and keeps.
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions {
    /// Check the MAC (sops' `--ignore-mac` turns this off).
    pub verify_mac: bool,
    /// Keep the values' IVs, to re-encrypt unchanged values byte-identically.
    pub stash: bool,
}

impl Default for OpenOptions {
    /// Verify the MAC, keep no IVs.
    fn default() -> Self {
        Self {
            verify_mac: true,
            stash: false,
        }
    }
}

/// A decrypted file.
pub struct Opened {
    /// The plaintext tree; its strings are wiped when it is dropped.
    pub tree: Tree,
    /// The values' IVs, when [`OpenOptions::stash`] asked for them.
    pub stash: Option<IvStash>,
    /// Whether the MAC verified (always, when [`OpenOptions::verify_mac`] asked for it;
    /// without, every value still decrypted with its path as associated data).
    pub mac_verified: bool,
}

/// Decrypts `tree` in place with `key`, then (unless `options.verify_mac` is off) checks
/// the MAC stored in `metadata` against the one computed over the plaintexts.
///
/// Errors: a value that does not decrypt ([`SopsError::Value`]), or a missing, undecryptable
/// or wrong MAC ([`SopsError::MacMissing`], [`SopsError::MacUndecryptable`],
/// [`SopsError::MacMismatch`], [`SopsError::InvalidTimestamp`]). On error the partly
/// decrypted tree is dropped, and wiped.
pub fn open(
    mut tree: Tree,
    metadata: &Metadata,
    key: &DataKey,
    options: OpenOptions,
) -> Result<Opened, SopsError> {
    let cipher = ValueCipher::new(key);
    let mut stash = options.stash.then(IvStash::default);
    let mac = walk::decrypt(
        &mut tree,
        &cipher,
        &metadata.selection,
        metadata.mac_only_encrypted,
        stash.as_mut(),
    )?;
    let verdict = cipher.verify_mac(&metadata.mac, &metadata.lastmodified, &mac);
    if options.verify_mac {
        verdict?;
        return Ok(Opened {
            tree,
            stash,
            mac_verified: true,
        });
    }
    Ok(Opened {
        tree,
        stash,
        mac_verified: verdict.is_ok(),
    })
}

/// Encrypts `tree` in place with `key` (values found in `stash` keep their IVs) and fills
/// in `metadata`'s MAC, `lastmodified` (now) and `version`. The key groups are the
/// caller's: wrap `key` for them with [`split_key`] and the key services.
///
/// Errors: something the tree holds that sops cannot encrypt ([`SopsError::Unsupported`],
/// [`SopsError::Value`]).
pub fn seal(
    tree: &mut Tree,
    metadata: &mut Metadata,
    key: &DataKey,
    stash: Option<&IvStash>,
) -> Result<(), SopsError> {
    let cipher = ValueCipher::new(key);
    let mac = walk::encrypt(
        tree,
        &cipher,
        &metadata.selection,
        metadata.mac_only_encrypted,
        stash,
    )?;
    metadata.lastmodified = metadata::now();
    lastmodified_aad(&metadata.lastmodified)?;
    metadata.mac = cipher.encrypt_mac(&mac, &metadata.lastmodified)?;
    metadata.version = WRITTEN_VERSION.to_owned();
    Ok(())
}

/// What a data key is wrapped as for `groups` key groups: the whole key for one group,
/// else one Shamir share per group, `threshold` of them (0: all) needed. Returns the
/// parts, in group order, and the `shamir_threshold` to store (0 with one group).
pub fn split_key(
    key: &DataKey,
    groups: usize,
    threshold: usize,
) -> Result<(Vec<SecretBytes>, usize), SopsError> {
    if groups <= 1 {
        return Ok((vec![SecretBytes::from_slice(key.expose())], 0));
    }
    let threshold = if threshold == 0 { groups } else { threshold };
    Ok((shamir::split(key.expose(), groups, threshold)?, threshold))
}

/// Why no data key could be recovered. Messages name keys, never key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    /// No key (or too few key groups) could be unwrapped; one line per failure, e.g.
    /// `group 1: age age1...: no matching identity`.
    #[error("no master key could decrypt the data key:\n  {}", .failures.join("\n  "))]
    NoKey {
        /// What was tried and why it failed.
        failures: Vec<String>,
    },
    /// The shares combined into something that is not a 32-byte key.
    #[error("the recovered data key is not 32 bytes")]
    KeyLength,
}

impl RecoverError {
    /// A short stable name for metrics and event reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoKey { .. } => "NoMatchingKey",
            Self::KeyLength => "KeyLength",
        }
    }
}

/// Recovering a file's data key from its key groups, without doing any unwrapping: the
/// caller tries the keys of each group in [`Recovery::pending`] (with its key services)
/// and reports each group's share or failure; [`Recovery::finish`] combines.
///
/// ```
/// use gitseal_crypto::sops::file::Recovery;
/// use gitseal_crypto::sops::metadata::Metadata;
///
/// let metadata = Metadata::default();
/// let mut recovery = Recovery::new(&metadata);
/// while let Some((index, _group)) = recovery.pending() {
///     recovery.failed(index, "no keys".into());
/// }
/// assert!(recovery.finish().is_err());
/// ```
pub struct Recovery<'m> {
    groups: &'m [KeyGroup],
    threshold: usize,
    next: usize,
    parts: Vec<SecretBytes>,
    failures: Vec<String>,
}

impl<'m> Recovery<'m> {
    /// Starts recovering the data key of `metadata`.
    pub fn new(metadata: &'m Metadata) -> Self {
        let groups = metadata.key_groups.as_slice();
        let threshold = if metadata.shamir_threshold == 0 {
            groups.len()
        } else {
            metadata.shamir_threshold
        };
        Self {
            groups,
            threshold,
            next: 0,
            parts: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The next key group to try (index, group), or `None` when done: every group has been
    /// tried, or the file has one group and its key is found.
    pub fn pending(&mut self) -> Option<(usize, &'m KeyGroup)> {
        if self.groups.len() == 1 && !self.parts.is_empty() {
            return None;
        }
        let index = self.next;
        let group = self.groups.get(index)?;
        self.next += 1;
        Some((index, group))
    }

    /// Group `index` gave its data key (or share).
    pub fn unwrapped(&mut self, _index: usize, part: SecretBytes) {
        self.parts.push(part);
    }

    /// No key of group `index` could be unwrapped, because of `reason` (no key material).
    pub fn failed(&mut self, index: usize, reason: String) {
        self.failures.push(format!("group {}: {reason}", index + 1));
    }

    /// The data key: the one group's key, or the Shamir combination of the shares.
    pub fn finish(mut self) -> Result<DataKey, RecoverError> {
        let key = if self.groups.len() <= 1 {
            self.parts.pop()
        } else if self.parts.len() >= self.threshold {
            match shamir::combine(&self.parts) {
                Ok(key) => Some(key),
                Err(error) => {
                    self.failures
                        .push(format!("the key-group shares do not combine: {error}"));
                    None
                }
            }
        } else {
            self.failures.push(format!(
                "recovered {} of the {} key-group shares needed",
                self.parts.len(),
                self.threshold
            ));
            None
        };
        let key = key.ok_or(RecoverError::NoKey {
            failures: std::mem::take(&mut self.failures),
        })?;
        DataKey::from_slice(key.expose()).map_err(|_| RecoverError::KeyLength)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sops::store::{Format, Layout};

    const DOC: &[u8] = b"db:\n    password: hunter2\n    port: 5432\nlist:\n    - a\n    - true\n";

    fn sealed(key: &DataKey) -> (Tree, Metadata) {
        let mut tree = Format::Yaml.parse_plain(DOC).unwrap();
        let mut metadata = Metadata::default();
        seal(&mut tree, &mut metadata, key, None).unwrap();
        (tree, metadata)
    }

    fn plain(tree: &Tree) -> Vec<u8> {
        Format::Yaml.emit_plain(tree, &Layout::default()).unwrap()
    }

    #[test]
    fn round_trip() {
        let key = DataKey::generate();
        let (tree, metadata) = sealed(&key);
        assert_eq!(metadata.version, WRITTEN_VERSION);
        let text = Format::Yaml
            .emit_encrypted(&tree, &metadata, &Layout::default())
            .unwrap();
        assert!(!text.windows(7).any(|w| w == b"hunter2"));
        let (tree, metadata) = Format::Yaml.parse_encrypted(&text).unwrap();
        let opened = open(tree, &metadata, &key, OpenOptions::default()).unwrap();
        assert_eq!(plain(&opened.tree), DOC);
        assert!(opened.stash.is_none());
    }

    #[test]
    fn stash_keeps_unchanged_ciphertexts() {
        let key = DataKey::generate();
        let (tree, metadata) = sealed(&key);
        let before = Format::Yaml
            .emit_encrypted(&tree, &metadata, &Layout::default())
            .unwrap();
        let options = OpenOptions {
            verify_mac: true,
            stash: true,
        };
        let mut opened = open(tree, &metadata, &key, options).unwrap();
        let mut again = metadata.clone();
        seal(&mut opened.tree, &mut again, &key, opened.stash.as_ref()).unwrap();
        let after = Format::Yaml
            .emit_encrypted(&opened.tree, &again, &Layout::default())
            .unwrap();
        let values = |text: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(text)
                .lines()
                .filter(|l| l.contains("ENC[") && !l.contains("mac:"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(values(&before), values(&after));
    }

    #[test]
    fn mac_mismatch_is_an_error_unless_ignored() {
        let key = DataKey::generate();
        let (tree, mut metadata) = sealed(&key);
        // A MAC made for another tree, with the right key.
        let (_, other) = {
            let mut tree = Format::Yaml.parse_plain(b"a: b\n").unwrap();
            let mut other = Metadata::default();
            seal(&mut tree, &mut other, &key, None).unwrap();
            (tree, other)
        };
        metadata.mac = other.mac;
        metadata.lastmodified = other.lastmodified;
        let text = Format::Yaml
            .emit_encrypted(&tree, &metadata, &Layout::default())
            .unwrap();
        let (tree, metadata) = Format::Yaml.parse_encrypted(&text).unwrap();
        assert_eq!(
            open(tree, &metadata, &key, OpenOptions::default()).err(),
            Some(SopsError::MacMismatch)
        );
        let (tree, metadata) = Format::Yaml.parse_encrypted(&text).unwrap();
        let ignore = OpenOptions {
            verify_mac: false,
            stash: false,
        };
        let opened = open(tree, &metadata, &key, ignore).unwrap();
        assert_eq!(plain(&opened.tree), DOC);
    }

    #[test]
    fn missing_mac_is_an_error() {
        let key = DataKey::generate();
        let (tree, mut metadata) = sealed(&key);
        metadata.mac.clear();
        assert_eq!(
            open(tree, &metadata, &key, OpenOptions::default()).err(),
            Some(SopsError::MacMissing)
        );
    }

    #[test]
    fn wrong_key_is_an_error() {
        let (tree, metadata) = sealed(&DataKey::generate());
        let error = open(
            tree,
            &metadata,
            &DataKey::generate(),
            OpenOptions::default(),
        )
        .err()
        .unwrap();
        assert_eq!(error.kind(), "DecryptionFailed", "{error}");
    }

    fn metadata_with_groups(groups: usize, threshold: usize) -> Metadata {
        Metadata {
            key_groups: vec![KeyGroup::default(); groups],
            shamir_threshold: threshold,
            ..Metadata::default()
        }
    }

    #[test]
    fn one_group_stops_at_the_first_key() {
        let key = DataKey::generate();
        let (parts, threshold) = split_key(&key, 1, 0).unwrap();
        assert_eq!(threshold, 0);
        let metadata = metadata_with_groups(1, 0);
        let mut recovery = Recovery::new(&metadata);
        let (index, _) = recovery.pending().unwrap();
        recovery.unwrapped(index, SecretBytes::from_slice(parts[0].expose()));
        assert!(recovery.pending().is_none());
        assert_eq!(recovery.finish().unwrap().expose(), key.expose());
    }

    #[test]
    fn shamir_groups_combine_at_the_threshold() {
        let key = DataKey::generate();
        let (parts, threshold) = split_key(&key, 3, 2).unwrap();
        assert_eq!((parts.len(), threshold), (3, 2));
        let metadata = metadata_with_groups(3, threshold);

        let mut recovery = Recovery::new(&metadata);
        let mut tried = 0;
        while let Some((index, _)) = recovery.pending() {
            tried += 1;
            if index == 1 {
                recovery.failed(index, "no keys".into());
            } else {
                recovery.unwrapped(index, SecretBytes::from_slice(parts[index].expose()));
            }
        }
        assert_eq!(tried, 3, "every group is tried");
        assert_eq!(recovery.finish().unwrap().expose(), key.expose());

        let mut recovery = Recovery::new(&metadata);
        while let Some((index, _)) = recovery.pending() {
            if index == 0 {
                recovery.unwrapped(index, SecretBytes::from_slice(parts[0].expose()));
            } else {
                recovery.failed(index, "no keys".into());
            }
        }
        let error = recovery.finish().err().unwrap();
        assert_eq!(error.kind(), "NoMatchingKey");
        assert_eq!(
            error.to_string(),
            "no master key could decrypt the data key:\n  group 2: no keys\n  group 3: no keys\n  recovered 1 of the 2 key-group shares needed"
        );
    }

    #[test]
    fn all_groups_are_needed_without_a_threshold() {
        let key = DataKey::generate();
        let (parts, threshold) = split_key(&key, 2, 0).unwrap();
        assert_eq!(threshold, 2);
        let metadata = metadata_with_groups(2, 0);
        let mut recovery = Recovery::new(&metadata);
        while let Some((index, _)) = recovery.pending() {
            recovery.unwrapped(index, SecretBytes::from_slice(parts[index].expose()));
        }
        assert_eq!(recovery.finish().unwrap().expose(), key.expose());
    }
}
