//! [`CredentialDigest`]: a keyed hash of static credential material, for client cache keys.

use std::sync::OnceLock;

/// A keyed hash of static credential material (a token, a secret_id, a JWT, access keys
/// from a Secret), so that a rotated credential yields a new client cache key
/// (`VaultClientKey`, `AwsSmClientKey`) without the material itself being kept in the key.
/// The HMAC key is random per process.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CredentialDigest([u8; 32]);

impl CredentialDigest {
    /// HMAC-SHA256 of `material` under this process's random key.
    pub fn of(material: &[u8]) -> Self {
        static KEY: OnceLock<aws_lc_rs::hmac::Key> = OnceLock::new();
        let key = KEY.get_or_init(|| {
            let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
            aws_lc_rs::rand::fill(&mut bytes[..]).expect("the system random generator works");
            aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &bytes[..])
        });
        let tag = aws_lc_rs::hmac::sign(key, material);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Self(out)
    }
}

impl std::fmt::Debug for CredentialDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CredentialDigest({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}
