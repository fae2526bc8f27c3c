//! The SOPS message authentication code: SHA-512 over the plaintext bytes of every
//! value in document order, stored encrypted with `lastmodified` as its AAD.

use zeroize::Zeroizing;

use crate::error::SopsError;
use crate::primitives::{self, Sha512};
use crate::sops::value::{ValueCipher, ValueType};
use crate::timefmt::Timestamp;

/// SHA-256("sops"), fed first when `mac_only_encrypted` is set so that the two kinds of
/// MAC never coincide.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Accumulates the MAC of a document.
///
/// Feed it, in document order (depth first, mappings in key order, lists in item order),
/// the plaintext bytes of every non-null leaf value, skipping comments, and with
/// `mac_only_encrypted` only the values that are encrypted.
///
/// ```
/// use gitseal_crypto::sops::{MacHasher, ValueCipher};
/// use gitseal_crypto::DataKey;
/// let cipher = ValueCipher::new(&DataKey::generate());
/// let mut mac = MacHasher::new(false);
/// mac.update(b"hunter2");
/// mac.update(b"42");
/// let mac = mac.finish();
/// let stored = cipher.encrypt_mac(&mac, "2026-11-23T03:43:56Z")?;
/// cipher.verify_mac(&stored, "2026-11-23T03:43:56Z", &mac)?;
/// # Ok::<(), gitseal_crypto::SopsError>(())
/// ```
pub struct MacHasher {
    sha: Sha512,
}

impl MacHasher {
    /// A new hasher; `mac_only_encrypted` as in the file's metadata.
    pub fn new(mac_only_encrypted: bool) -> Self {
        let mut sha = Sha512::new();
        if mac_only_encrypted {
            sha.update(&MAC_ONLY_ENCRYPTED_INIT);
        }
        Self { sha }
    }

    /// Adds one value's plaintext bytes. Empty values add nothing, as in sops.
    pub fn update(&mut self, plaintext: &[u8]) {
        self.sha.update(plaintext);
    }

    /// The MAC.
    pub fn finish(self) -> Mac {
        Mac(Zeroizing::new(hex::encode_upper(self.sha.finish())))
    }
}

/// A computed MAC: 128 upper-case hex digits. It is a hash of the file's secrets, so it
/// is wiped on drop and never printed.
pub struct Mac(Zeroizing<String>);

impl Mac {
    /// The hex text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Whether a decrypted value of `value_type` enters the MAC (comments never do; this is
/// the rule of sops before 3.13.2, which reads every file sops has written).
pub fn enters_mac(value_type: ValueType) -> bool {
    value_type != ValueType::Comment
}

/// The AAD sops uses for the MAC: `lastmodified` parsed as RFC 3339 and formatted again
/// at second precision (`2006-01-02T15:04:05Z07:00`).
pub fn lastmodified_aad(lastmodified: &str) -> Result<String, SopsError> {
    Timestamp::parse(lastmodified)
        .filter(|_| lastmodified.contains(['T', 't']))
        .map(|t| t.rfc3339())
        .ok_or_else(|| SopsError::InvalidTimestamp(lastmodified.to_owned()))
}

impl ValueCipher {
    /// Encrypts a MAC for the `mac` metadata field.
    pub fn encrypt_mac(&self, mac: &Mac, lastmodified: &str) -> Result<String, SopsError> {
        let aad = lastmodified_aad(lastmodified)?;
        Ok(self.encrypt(mac.expose().as_bytes(), ValueType::Str, aad.as_bytes()))
    }

    /// Checks the stored `mac` field against a computed MAC, in constant time.
    pub fn verify_mac(
        &self,
        stored: &str,
        lastmodified: &str,
        computed: &Mac,
    ) -> Result<(), SopsError> {
        if stored.is_empty() {
            return Err(SopsError::MacMissing);
        }
        let aad = lastmodified_aad(lastmodified)?;
        let plain = self
            .decrypt(stored, aad.as_bytes())
            .map_err(|_| SopsError::MacUndecryptable)?;
        if primitives::ct_eq(plain.bytes(), computed.expose().as_bytes()) {
            Ok(())
        } else {
            Err(SopsError::MacMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::DataKey;

    #[test]
    fn init_constant_is_sha256_of_sops() {
        assert_eq!(primitives::sha256(b"sops"), MAC_ONLY_ENCRYPTED_INIT);
    }

    #[test]
    fn empty_mac_is_sha512_of_nothing() {
        assert!(
            MacHasher::new(false)
                .finish()
                .expose()
                .starts_with("CF83E1357EEFB8BD")
        );
    }

    #[test]
    fn mac_failures_are_typed() {
        let cipher = ValueCipher::new(&DataKey::from_slice(&[1; 32]).unwrap());
        let mac = MacHasher::new(false).finish();
        let stored = cipher.encrypt_mac(&mac, "2026-11-23T03:43:56Z").unwrap();
        assert_eq!(
            cipher.verify_mac("", "2026-11-23T03:43:56Z", &mac),
            Err(SopsError::MacMissing)
        );
        assert_eq!(
            cipher.verify_mac(&stored, "2026-11-23T03:43:57Z", &mac),
            Err(SopsError::MacUndecryptable)
        );
        let mut other = MacHasher::new(true);
        other.update(b"x");
        assert_eq!(
            cipher.verify_mac(&stored, "2026-11-23T03:43:56Z", &other.finish()),
            Err(SopsError::MacMismatch)
        );
        // The AAD is the normalised timestamp: fractional seconds do not count.
        assert!(
            cipher
                .verify_mac(&stored, "2026-11-23T03:43:56.5Z", &mac)
                .is_ok()
        );
        assert!(matches!(
            cipher.encrypt_mac(&mac, "yesterday"),
            Err(SopsError::InvalidTimestamp(_))
        ));
    }
}
