//! Types that hold secret material.
//!
//! Every type here zeroizes its memory on drop and deliberately implements neither
//! `Debug`, `Clone`, `Serialize` nor `PartialEq`: a secret cannot end up in a log line,
//! be copied by accident, or be compared in variable time.

use zeroize::Zeroizing;

/// Secret bytes of any length: a decrypted value, a plaintext to seal, an unwrapped key.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are wiped when the value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new secret buffer.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret bytes as UTF-8 text, if they are valid UTF-8.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands the bytes over as a zeroizing vector.
    pub fn into_zeroizing(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }
}

impl From<String> for SecretBytes {
    fn from(text: String) -> Self {
        Self::new(text.into_bytes())
    }
}

/// Length in bytes of a SOPS data key and of a Sealed Secrets session key.
pub const KEY_LEN: usize = 32;

/// A 32-byte AES-256 key: the data key of a SOPS file.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    /// Draws a fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        crate::primitives::fill_random(key.as_mut());
        Self(key)
    }

    /// Builds a key from exactly 32 bytes; any other length is refused.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, crate::error::KeyError> {
        if bytes.len() != KEY_LEN {
            return Err(crate::error::KeyError::DataKeyLength(bytes.len()));
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The raw key bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}
