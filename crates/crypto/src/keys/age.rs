//! age data-key wrapping as sops does it: the data key (or a Shamir share of it) is
//! encrypted to each recipient separately, as an ASCII-armored age v1 file.

use std::io::{Read, Write};
use std::str::FromStr;

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::ExposeSecret;
use age::x25519;
use zeroize::Zeroizing;

use crate::error::AgeError;
use crate::secret::SecretBytes;

/// A set of age identities (private keys), as read from a `keys.txt` file or
/// `SOPS_AGE_KEY`.
#[derive(Default)]
pub struct AgeIdentities {
    identities: Vec<x25519::Identity>,
}

impl AgeIdentities {
    /// Parses identity text: one `AGE-SECRET-KEY-1...` per line; blank lines and lines
    /// starting with `#` are skipped. A malformed line is an error naming its number only.
    pub fn parse(text: &str) -> Result<Self, AgeError> {
        let mut identities = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = x25519::Identity::from_str(line)
                .map_err(|_| AgeError::InvalidIdentity { line: index + 1 })?;
            identities.push(identity);
        }
        Ok(Self { identities })
    }

    /// Generates one new identity.
    pub fn generate() -> Self {
        Self {
            identities: vec![x25519::Identity::generate()],
        }
    }

    /// Adds the identities of `other`.
    pub fn extend(&mut self, other: Self) {
        self.identities.extend(other.identities);
    }

    /// The recipients (`age1...`) of the identities, in order.
    pub fn recipients(&self) -> Vec<String> {
        self.identities
            .iter()
            .map(|i| i.to_public().to_string())
            .collect()
    }

    /// The identities as `keys.txt` text, in a buffer wiped on drop.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for identity in &self.identities {
            out.push_str(identity.to_string().expose_secret());
            out.push('\n');
        }
        out
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.identities.len()
    }

    /// Whether there is no identity.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }
}

/// Encrypts `key` to one X25519 recipient and returns the armored age file, ending in a
/// newline, as sops stores it in `enc`.
///
/// ```
/// use gitseal_crypto::keys::age::{unwrap, wrap, AgeIdentities};
/// let identities = AgeIdentities::generate();
/// let armored = wrap(&[9u8; 32], &identities.recipients()[0])?;
/// assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
/// assert_eq!(unwrap(&armored, &identities)?.expose(), &[9u8; 32]);
/// # Ok::<(), gitseal_crypto::AgeError>(())
/// ```
pub fn wrap(key: &[u8], recipient: &str) -> Result<String, AgeError> {
    let recipient = x25519::Recipient::from_str(recipient.trim())
        .map_err(|_| AgeError::InvalidRecipient(recipient.to_owned()))?;
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as _))
        .map_err(|e| AgeError::Encrypt(e.to_string()))?;
    let mut out = Vec::new();
    let io = |e: std::io::Error| AgeError::Encrypt(e.to_string());
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(io)?;
    let mut writer = encryptor.wrap_output(armor).map_err(io)?;
    writer.write_all(key).map_err(io)?;
    writer
        .finish()
        .and_then(ArmoredWriter::finish)
        .map_err(io)?;
    String::from_utf8(out).map_err(|_| AgeError::Encrypt("armor is not UTF-8".into()))
}

/// Decrypts an armored (or binary) age file with any of `identities`.
pub fn unwrap(armored: &str, identities: &AgeIdentities) -> Result<SecretBytes, AgeError> {
    let reader = ArmoredReader::new(armored.as_bytes());
    let decryptor = age::Decryptor::new(reader).map_err(|e| AgeError::Format(e.to_string()))?;
    let mut reader = decryptor
        .decrypt(
            identities
                .identities
                .iter()
                .map(|i| i as &dyn age::Identity),
        )
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => AgeError::NoMatchingIdentity,
            other => AgeError::Format(other.to_string()),
        })?;
    let mut key = Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut key)
        .map_err(|e| AgeError::Format(e.to_string()))?;
    Ok(SecretBytes::from(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_typed() {
        assert!(matches!(
            wrap(b"k", "age1nope"),
            Err(AgeError::InvalidRecipient(_))
        ));
        assert!(matches!(
            AgeIdentities::parse("# c\n\nAGE-SECRET-KEY-1XYZ\n"),
            Err(AgeError::InvalidIdentity { line: 3 })
        ));
        let ids = AgeIdentities::generate();
        let other = AgeIdentities::generate();
        let armored = wrap(b"k", &other.recipients()[0]).unwrap();
        assert!(matches!(
            unwrap(&armored, &ids),
            Err(AgeError::NoMatchingIdentity)
        ));
        assert!(matches!(unwrap("garbage", &ids), Err(AgeError::Format(_))));
    }
}
