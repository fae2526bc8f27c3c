//! The Sealed Secrets hybrid envelope, byte for byte as `kubeseal` writes it:
//!
//! ```text
//! u16be(len(rsa)) || RSA-OAEP-SHA256(label, session key) || AES-256-GCM(zero nonce)(plaintext) || tag
//! ```
//!
//! encoded as standard padded base64. A fresh 32-byte session key per value makes the zero
//! nonce safe.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::{SealError, UnsealError};
use crate::primitives;
use crate::sealed::keys::{PrivateKey, PublicKey};
use crate::secret::{KEY_LEN, SecretBytes};

/// Seals `plaintext` to `key` under `label` and returns the raw envelope bytes.
pub fn seal_bytes(key: &PublicKey, label: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut session_key = Zeroizing::new([0u8; KEY_LEN]);
    primitives::fill_random(session_key.as_mut());
    let rsa = primitives::rsa_oaep_encrypt(key.oaep(), label, session_key.as_ref())
        .ok_or(SealError::Rsa)?;
    let rsa_len = u16::try_from(rsa.len()).map_err(|_| SealError::Rsa)?;
    let mut out = Vec::with_capacity(2 + rsa.len() + plaintext.len() + primitives::TAG_LEN);
    out.extend_from_slice(&rsa_len.to_be_bytes());
    out.extend_from_slice(&rsa);
    let mut body = plaintext.to_vec();
    primitives::gcm12_zero_nonce_seal(&session_key, &mut body).map_err(|()| SealError::TooLarge)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Seals `plaintext` to `key` under `label` and returns the base64 text that goes into
/// `spec.encryptedData` (and that `kubeseal --raw` prints).
///
/// ```
/// use gitseal_crypto::sealed::{seal, unseal, PrivateKey, Scope};
/// let key = PrivateKey::generate(2048)?;
/// let label = Scope::Strict.label("default", "db");
/// let sealed = seal(&key.public_key(), &label, b"hunter2")?;
/// assert!(sealed.starts_with("AQ")); // 0x01 0x00: a 256-byte RSA part
/// assert_eq!(unseal(&[key], &label, &sealed)?.expose(), b"hunter2");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn seal(key: &PublicKey, label: &[u8], plaintext: &[u8]) -> Result<String, SealError> {
    Ok(STANDARD.encode(seal_bytes(key, label, plaintext)?))
}

/// Decodes a sealed value as Go's `base64.StdEncoding` does: padding required, CR and LF
/// anywhere are skipped, anything else outside the alphabet is an error.
pub fn decode(value: &str) -> Result<Vec<u8>, UnsealError> {
    if value.contains(['\r', '\n']) {
        let clean: String = value
            .chars()
            .filter(|c| !matches!(c, '\r' | '\n'))
            .collect();
        STANDARD.decode(clean).map_err(|_| UnsealError::Base64)
    } else {
        STANDARD.decode(value).map_err(|_| UnsealError::Base64)
    }
}

/// Splits an envelope into its RSA part and its AES-GCM part.
fn split(blob: &[u8]) -> Result<(&[u8], &[u8]), UnsealError> {
    let (len, rest) = blob.split_first_chunk::<2>().ok_or(UnsealError::TooShort)?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return Err(UnsealError::TooShort);
    }
    Ok(rest.split_at(len))
}

/// Opens raw envelope bytes with one key; `None` if this key does not open them.
fn open_with(key: &PrivateKey, label: &[u8], rsa: &[u8], gcm: &[u8]) -> Option<SecretBytes> {
    let session_key = primitives::rsa_oaep_decrypt(key.oaep(), label, rsa)?;
    let session_key: &[u8; KEY_LEN] = session_key.as_slice().try_into().ok()?;
    let plaintext = primitives::gcm12_zero_nonce_open(session_key, gcm)?;
    Some(SecretBytes::from(plaintext))
}

/// Unseals raw envelope bytes with the first of `keys` that opens them.
///
/// Returns the plaintext and the index of the key that worked. Every failure of a key
/// (RSA-OAEP or AES-GCM) is the same to the caller: when no key works the error is
/// [`UnsealError::NoMatchingKey`], which says nothing about how far any key got.
pub fn unseal_bytes_indexed<'k>(
    keys: impl IntoIterator<Item = &'k PrivateKey>,
    label: &[u8],
    blob: &[u8],
) -> Result<(SecretBytes, usize), UnsealError> {
    first_opening(keys.into_iter().enumerate(), label, blob)
}

/// Tries the `(index, key)` candidates in order; the first that opens `blob` wins.
fn first_opening<'k>(
    candidates: impl Iterator<Item = (usize, &'k PrivateKey)>,
    label: &[u8],
    blob: &[u8],
) -> Result<(SecretBytes, usize), UnsealError> {
    let (rsa, gcm) = split(blob)?;
    let mut candidates = candidates;
    candidates
        .find_map(|(index, key)| open_with(key, label, rsa, gcm).map(|p| (p, index)))
        .ok_or(UnsealError::NoMatchingKey)
}

/// Unseals a base64 sealed value with the first of `keys` (newest first) that opens it.
pub fn unseal<'k>(
    keys: impl IntoIterator<Item = &'k PrivateKey>,
    label: &[u8],
    value: &str,
) -> Result<SecretBytes, UnsealError> {
    let blob = decode(value)?;
    unseal_bytes_indexed(keys, label, &blob).map(|(plaintext, _)| plaintext)
}

/// The controller's private keys, newest first.
///
/// ```
/// use gitseal_crypto::sealed::{seal, Keyring, PrivateKey, Scope};
/// let old = PrivateKey::generate(2048)?;
/// let new = PrivateKey::generate(2048)?;
/// let sealed = seal(&old.public_key(), b"", b"v")?;
/// let keyring = Keyring::new(vec![new, old]);
/// let (plaintext, index) = keyring.unseal_indexed(&Scope::ClusterWide.label("a", "b"), &sealed, None)?;
/// assert_eq!((plaintext.expose(), index), (&b"v"[..], 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct Keyring {
    keys: Vec<PrivateKey>,
}

impl Keyring {
    /// A keyring of `keys`, newest first.
    pub fn new(keys: Vec<PrivateKey>) -> Self {
        Self { keys }
    }

    /// Adds a key as the newest.
    pub fn push_newest(&mut self, key: PrivateKey) {
        self.keys.insert(0, key);
    }

    /// The keys, newest first.
    pub fn keys(&self) -> &[PrivateKey] {
        &self.keys
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the keyring has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Unseals a base64 value, trying the keys newest first.
    pub fn unseal(&self, label: &[u8], value: &str) -> Result<SecretBytes, UnsealError> {
        unseal(&self.keys, label, value)
    }

    /// Unseals a base64 value, trying the key at `preferred` first (the one that last
    /// worked for this object), then the others newest first. Returns the plaintext and
    /// the index of the key that opened it.
    pub fn unseal_indexed(
        &self,
        label: &[u8],
        value: &str,
        preferred: Option<usize>,
    ) -> Result<(SecretBytes, usize), UnsealError> {
        let blob = decode(value)?;
        let order = super::trial_order(self.keys.len(), preferred);
        first_opening(order.map(|i| (i, &self.keys[i])), label, &blob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_checks_the_length_prefix() {
        assert_eq!(split(&[]), Err(UnsealError::TooShort));
        assert_eq!(split(&[0x02]), Err(UnsealError::TooShort));
        assert_eq!(split(&[0x02, 0x00, 1, 2, 3]), Err(UnsealError::TooShort));
        assert_eq!(
            split(&[0x00, 0x02, 1, 2, 3]),
            Ok((&[1u8, 2][..], &[3u8][..]))
        );
    }

    #[test]
    fn decode_skips_line_breaks_only() {
        assert_eq!(decode("YW\r\nJj").unwrap(), b"abc");
        assert_eq!(decode("YW Jj"), Err(UnsealError::Base64));
        assert_eq!(decode("YWI"), Err(UnsealError::Base64));
    }
}
