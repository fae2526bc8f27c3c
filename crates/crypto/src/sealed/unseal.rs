//! The items of one SealedSecret opened with the controller's keys: the order in which
//! keys are tried, the counting of RSA operations, and the failure report in upstream's
//! words. The controller and `kubeseal --recovery-unseal` both use this, so they open
//! (and fail on) exactly the same inputs.
//!
//! ```
//! use gitseal_crypto::sealed::{PrivateKey, Scope, UnsealedItems, seal, trial_order};
//!
//! let old = PrivateKey::generate(2048)?;
//! let new = PrivateKey::generate(2048)?;
//! let label = Scope::Strict.label("prod", "db");
//! let sealed = seal(&old.public_key(), &label, b"s3cr3t")?;
//!
//! // Newest first, but the key that opened this object last time goes first.
//! let keys = [&new, &old];
//! let order: Vec<&PrivateKey> = trial_order(keys.len(), Some(1)).map(|i| keys[i]).collect();
//! let opened = UnsealedItems::open(&order, &label, [("password", sealed.as_str())])?;
//! assert_eq!(&opened.data["password"][..], b"s3cr3t");
//! assert_eq!((opened.key, opened.rsa_operations), (Some(0), 1));
//!
//! let failure = UnsealedItems::open(&[&new], &label, [("password", sealed.as_str())])
//!     .err()
//!     .expect("only the old key opens it");
//! assert_eq!(failure.to_string(), "no key could decrypt secret (password)");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::envelope::{decode, unseal_bytes_indexed};
use super::keys::PrivateKey;
use crate::UnsealError;

/// Indices `0..len` in the order to try keys: `preferred` (the key that last opened this
/// object) first, then the others in their order, which is newest first.
pub fn trial_order(len: usize, preferred: Option<usize>) -> impl Iterator<Item = usize> {
    let preferred = preferred.filter(|&i| i < len);
    preferred
        .into_iter()
        .chain((0..len).filter(move |&i| Some(i) != preferred))
}

/// The opened items of a SealedSecret.
pub struct UnsealedItems {
    /// Item name → plaintext, wiped on drop.
    pub data: BTreeMap<String, Zeroizing<Vec<u8>>>,
    /// Index (in the order tried) of the key that opened the last item; `None` when there
    /// were no items.
    pub key: Option<usize>,
    /// RSA private-key operations spent.
    pub rsa_operations: u64,
}

/// Why the items of a SealedSecret could not be opened. The message is upstream's, with
/// the items each error applies to (`no key could decrypt secret (password, user)`);
/// it names items, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UnsealFailure {
    /// The report.
    pub message: String,
    /// RSA private-key operations spent before failing.
    pub rsa_operations: u64,
}

impl UnsealFailure {
    /// A failure with `message`, after `rsa_operations` RSA operations.
    pub fn new(message: impl Into<String>, rsa_operations: u64) -> Self {
        Self {
            message: message.into(),
            rsa_operations,
        }
    }
}

impl UnsealedItems {
    /// An empty result, to which [`open_value`](Self::open_value) adds.
    pub fn new() -> Self {
        Self {
            data: BTreeMap::new(),
            key: None,
            rsa_operations: 0,
        }
    }

    /// Opens every `(name, base64 value)` item with `keys`, tried in the given order.
    /// Every item is tried; the failure names all the items that did not open, grouped
    /// by error.
    pub fn open<'a>(
        keys: &[&PrivateKey],
        label: &[u8],
        items: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, UnsealFailure> {
        let mut opened = Self::new();
        let mut errors: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (name, value) in items {
            match opened.open_value(keys, label, value) {
                Ok(plaintext) => {
                    opened.data.insert(name.to_owned(), plaintext);
                }
                Err(error) => errors.entry(error.to_string()).or_default().push(name),
            }
        }
        if errors.is_empty() {
            return Ok(opened);
        }
        let message = errors
            .iter()
            .map(|(message, items)| format!("{message} ({})", items.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        Err(UnsealFailure::new(message, opened.rsa_operations))
    }

    /// Opens one base64 sealed value (an item, or the legacy `spec.data` blob), counting
    /// its RSA operations and remembering the key that opened it.
    pub fn open_value(
        &mut self,
        keys: &[&PrivateKey],
        label: &[u8],
        value: &str,
    ) -> Result<Zeroizing<Vec<u8>>, UnsealError> {
        let blob = decode(value)?;
        match unseal_bytes_indexed(keys.iter().copied(), label, &blob) {
            Ok((plaintext, index)) => {
                self.rsa_operations += index as u64 + 1;
                self.key = Some(index);
                Ok(plaintext.into_zeroizing())
            }
            Err(error) => {
                // A blob too short for its RSA part fails before any RSA operation.
                if error != UnsealError::TooShort {
                    self.rsa_operations += keys.len() as u64;
                }
                Err(error)
            }
        }
    }
}

impl Default for UnsealedItems {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::{Scope, seal};

    #[test]
    fn trial_order_puts_the_preferred_key_first() {
        assert_eq!(trial_order(3, None).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(trial_order(3, Some(2)).collect::<Vec<_>>(), [2, 0, 1]);
        assert_eq!(trial_order(3, Some(7)).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(trial_order(0, Some(0)).count(), 0);
    }

    #[test]
    fn failures_name_every_item_grouped_by_error_and_count_rsa_work() {
        let key = PrivateKey::generate(2048).unwrap();
        let other = PrivateKey::generate(2048).unwrap();
        let label = Scope::Strict.label("ns", "s");
        let good = seal(&key.public_key(), &label, b"v").unwrap();
        let foreign = seal(&other.public_key(), &label, b"v").unwrap();
        let items = [
            ("a", good.as_str()),
            ("b", foreign.as_str()),
            ("c", "not base64!"),
            ("d", foreign.as_str()),
            ("e", "AA=="),
        ];
        let failure = UnsealedItems::open(&[&key], &label, items).err().unwrap();
        assert_eq!(
            failure.message,
            "SealedSecret data is too short (e); no key could decrypt secret (b, d); \
             sealed value is not valid base64 (c)"
        );
        // a: one key; b and d: every key; c and e: none.
        assert_eq!(failure.rsa_operations, 3);

        let opened = UnsealedItems::open(&[&other, &key], &label, [("a", good.as_str())]);
        let Ok(opened) = opened else {
            panic!("the second key opens it")
        };
        assert_eq!((opened.key, opened.rsa_operations), (Some(1), 2));
        let Ok(empty) = UnsealedItems::open(&[&key], &label, []) else {
            panic!("nothing to open")
        };
        assert_eq!((empty.key, empty.data.len()), (None, 0));
    }
}
