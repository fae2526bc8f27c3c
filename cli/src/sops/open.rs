//! Opening an encrypted file (parse, recover the data key, decrypt, check the MAC) and
//! sealing one again, with sops' exit codes; the steps themselves are
//! `gitseal_crypto::sops::file`'s.

use gitseal_crypto::sops::file::{self, OpenOptions};
use gitseal_crypto::sops::metadata::Metadata;
use gitseal_crypto::sops::store::Format;
use gitseal_crypto::sops::tree::Tree;
use gitseal_crypto::sops::walk::IvStash;
use gitseal_crypto::{DataKey, SopsError};

use super::exit::sops_failure;
use super::keys;
use super::{Exit, code};

/// A decrypted file: its tree, metadata, data key and the IVs of its values.
pub(super) struct Opened {
    pub(super) tree: Tree,
    pub(super) metadata: Metadata,
    pub(super) key: DataKey,
    pub(super) stash: IvStash,
}

/// Reads, decrypts and (unless `ignore_mac`) verifies an encrypted file, remembering the
/// values' IVs for re-encryption.
pub(super) fn open(bytes: &[u8], format: Format, ignore_mac: bool) -> Result<Opened, Exit> {
    open_with(bytes, format, ignore_mac, true)
}

/// [`open`], with the IV stash only when `stash` (decrypt-only commands need none).
pub(super) fn open_with(
    bytes: &[u8],
    format: Format,
    ignore_mac: bool,
    stash: bool,
) -> Result<Opened, Exit> {
    if bytes.is_empty() {
        return Err(Exit::new(
            code::FILE_EMPTY,
            "Error: cannot operate on an empty file".into(),
        ));
    }
    let (tree, metadata) = format
        .parse_encrypted(bytes)
        .map_err(|e| sops_failure(e, code::GENERIC))?;
    let identities = keys::load_identities()?;
    let key = keys::data_key(&metadata, identities)?;
    let options = OpenOptions {
        verify_mac: !ignore_mac,
        stash,
    };
    let opened = file::open(tree, &metadata, &key, options).map_err(|e| {
        // Only the MAC check reads the timestamp.
        let doing = match e {
            SopsError::InvalidTimestamp(_) => code::MAC_MISMATCH,
            _ => code::ERROR_DECRYPTING_TREE,
        };
        sops_failure(e, doing)
    })?;
    Ok(Opened {
        tree: opened.tree,
        metadata,
        key,
        stash: opened.stash.unwrap_or_default(),
    })
}

/// Decrypts an encrypted document as `gitseal sops decrypt` does — the data key from the
/// usual key sources (`keys`), every value decrypted and, unless `ignore_mac`, the MAC
/// verified — and hands back its plaintext tree (wiped when dropped). This is the entry
/// point for the other commands that read SOPS files (`ksops`, `render`).
pub fn decrypt_tree(bytes: &[u8], format: Format, ignore_mac: bool) -> Result<Tree, Exit> {
    open_with(bytes, format, ignore_mac, false).map(|opened| opened.tree)
}

/// Encrypts `tree` with `key` and fills in the metadata's MAC, time and version.
pub(super) fn seal(
    tree: &mut Tree,
    metadata: &mut Metadata,
    key: &DataKey,
    stash: Option<&IvStash>,
) -> Result<(), Exit> {
    file::seal(tree, metadata, key, stash).map_err(|e| {
        // Only the stamping of `lastmodified` reads the timestamp.
        let doing = match e {
            SopsError::InvalidTimestamp(_) => code::GENERIC,
            _ => code::ERROR_ENCRYPTING_TREE,
        };
        sops_failure(e, doing)
    })
}
