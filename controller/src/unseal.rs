//! From a SealedSecret and the controller's keys to the data of its Secret: the keys in
//! trial order, then [`SealedSecret::unseal`]. Synchronous and CPU-bound: the reconciler
//! runs it on the decryption pool.

use std::sync::Arc;

use gitseal_api::SealedSecret;
use gitseal_crypto::sealed::PrivateKey;

pub use gitseal_api::{LegacyMeta, UnsealFailure};

use crate::keyring::{Keys, SealingKey};

/// Decrypted Secret content.
pub struct Unsealed {
    /// Item name → plaintext, and what a legacy `spec.data` blob carried.
    pub opened: gitseal_api::Unsealed,
    /// The key that opened the items (the newest key when there are none).
    pub key: Option<Arc<SealingKey>>,
}

/// Unseals every item of `ss` with `keys`, trying `preferred` (the key that last worked
/// for this object) first, then renders the templates.
pub fn unseal(
    ss: &SealedSecret,
    keys: &Keys,
    preferred: Option<&str>,
    accept_v1_data: bool,
) -> Result<Unsealed, UnsealFailure> {
    let order = keys.ordered(preferred);
    let private: Vec<&PrivateKey> = order.iter().map(|k| &k.private).collect();
    let opened = ss.unseal(&private, accept_v1_data)?;
    let key = opened.key.map(|i| order[i].clone());
    Ok(Unsealed {
        key: key.or_else(|| keys.latest().cloned()),
        opened,
    })
}
