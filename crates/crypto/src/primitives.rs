//! Format-free primitives: AES-256-GCM with 12- and 32-byte nonces, RSA-OAEP-SHA256,
//! SHA-512, constant-time comparison and the operating system's random generator.
//!
//! RSA is `aws-lc-rs` (constant-time, not affected by RUSTSEC-2023-0071). AES-GCM is the
//! RustCrypto `aes-gcm` crate because SOPS uses 32-byte nonces, which `aws-lc-rs` does
//! not offer; on x86-64 and aarch64 it uses the AES and carry-less-multiply instructions.

use aes_gcm::aead::consts::{U12, U32};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce, Tag};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey};
use zeroize::Zeroizing;

use crate::secret::KEY_LEN;

/// Length of an AES-GCM authentication tag.
pub const TAG_LEN: usize = 16;

/// Fills `buf` from the operating system's cryptographic random generator.
///
/// # Panics
/// If the operating system cannot provide randomness, which leaves no safe way on.
pub fn fill_random(buf: &mut [u8]) {
    aws_lc_rs::rand::fill(buf).expect("the operating system random generator failed");
}

/// Unpredictable, never-repeating 32-byte IVs for the values of one file: AES-256 in
/// counter mode under a key drawn once from the operating system's generator. Drawing
/// each IV from the operating system instead costs a system call per value, which was
/// most of the time of encrypting a large file.
pub(crate) struct IvGenerator {
    aes: Aes256,
    counter: std::sync::atomic::AtomicU64,
}

impl IvGenerator {
    /// A generator with a fresh random key.
    pub(crate) fn new() -> Self {
        use aes_gcm::aes::cipher::KeyInit as _;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(key.as_mut_slice());
        Self {
            aes: Aes256::new((&*key).into()),
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The next IV: two AES blocks of a counter that is never reused.
    pub(crate) fn next(&self) -> [u8; 32] {
        use aes_gcm::aes::cipher::BlockEncrypt as _;
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut iv = [0u8; 32];
        for (half, block) in iv.chunks_exact_mut(16).enumerate() {
            let input = (u128::from(n) << 1) | half as u128;
            block.copy_from_slice(&input.to_be_bytes());
            self.aes.encrypt_block(block.into());
        }
        iv
    }
}

/// AES-256-GCM with the standard 12-byte nonce (Sealed Secrets).
pub(crate) type Aes256Gcm12 = AesGcm<Aes256, U12>;
/// AES-256-GCM with a 32-byte nonce, as SOPS uses (J0 derived through GHASH).
pub(crate) type Aes256Gcm32 = AesGcm<Aes256, U32>;

/// Builds an AES-256-GCM cipher with 32-byte nonces from a key.
pub(crate) fn gcm32(key: &[u8; KEY_LEN]) -> Aes256Gcm32 {
    Aes256Gcm32::new(key.into())
}

/// Encrypts `buf` in place with a 12-byte all-zero nonce and no AAD, appending the tag.
/// Only safe because the key is used for exactly one message.
pub(crate) fn gcm12_zero_nonce_seal(key: &[u8; KEY_LEN], buf: &mut Vec<u8>) -> Result<(), ()> {
    let cipher = Aes256Gcm12::new(key.into());
    let tag = cipher
        .encrypt_in_place_detached(&Nonce::<U12>::default(), &[], buf)
        .map_err(|_| ())?;
    buf.extend_from_slice(&tag);
    Ok(())
}

/// Opens `ciphertext || tag` sealed with a 12-byte all-zero nonce and no AAD.
pub(crate) fn gcm12_zero_nonce_open(
    key: &[u8; KEY_LEN],
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let split = sealed.len().checked_sub(TAG_LEN)?;
    let (ciphertext, tag) = sealed.split_at(split);
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    Aes256Gcm12::new(key.into())
        .decrypt_in_place_detached(
            &Nonce::<U12>::default(),
            &[],
            &mut buf,
            Tag::from_slice(tag),
        )
        .ok()?;
    Some(buf)
}

/// Encrypts in place under a 32-byte nonce; returns the detached tag.
pub(crate) fn gcm32_seal(
    cipher: &Aes256Gcm32,
    nonce: &[u8; 32],
    aad: &[u8],
    buf: &mut [u8],
) -> Option<[u8; TAG_LEN]> {
    cipher
        .encrypt_in_place_detached(Nonce::<U32>::from_slice(nonce), aad, buf)
        .ok()
        .map(Into::into)
}

/// Decrypts in place under a 32-byte nonce and a detached tag.
pub(crate) fn gcm32_open(
    cipher: &Aes256Gcm32,
    nonce: &[u8; 32],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Option<()> {
    cipher
        .decrypt_in_place_detached(Nonce::<U32>::from_slice(nonce), aad, buf, tag.into())
        .ok()
}

/// RSA-OAEP with SHA-256 for both the hash and MGF1, with a label.
pub(crate) fn rsa_oaep_encrypt(
    key: &OaepPublicEncryptingKey,
    label: &[u8],
    plaintext: &[u8],
) -> Option<Vec<u8>> {
    let mut out = vec![0u8; key.ciphertext_size()];
    let len = key
        .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut out, Some(label))
        .ok()?
        .len();
    out.truncate(len);
    Some(out)
}

/// RSA-OAEP-SHA256 decryption with a label; `None` on any failure, whatever its cause.
pub(crate) fn rsa_oaep_decrypt(
    key: &OaepPrivateDecryptingKey,
    label: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
    let len = key
        .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, &mut out, Some(label))
        .ok()?
        .len();
    out.truncate(len);
    Some(out)
}

/// Constant-time equality of two byte strings (the lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Incremental SHA-512.
pub(crate) struct Sha512(aws_lc_rs::digest::Context);

impl Sha512 {
    pub(crate) fn new() -> Self {
        Self(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA512))
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finish(self) -> [u8; 64] {
        let digest = self.0.finish();
        let mut out = [0u8; 64];
        out.copy_from_slice(digest.as_ref());
        out
    }
}

/// Incremental HMAC-SHA256.
pub struct HmacSha256(aws_lc_rs::hmac::Context);

impl HmacSha256 {
    /// Starts a MAC under `key`.
    pub fn new(key: &[u8]) -> Self {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
        Self(aws_lc_rs::hmac::Context::with_key(&key))
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// Feeds `data` preceded by its length (8 bytes, big-endian), so that consecutive
    /// fields cannot run into each other.
    pub fn update_field(&mut self, data: &[u8]) {
        self.0.update(&(data.len() as u64).to_be_bytes());
        self.0.update(data);
    }

    /// The tag.
    pub fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.sign().as_ref());
        out
    }
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new(key);
    for part in parts {
        mac.update(part);
    }
    mac.finish()
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_known_answer() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn ivs_never_repeat_within_or_across_files() {
        let (a, b) = (IvGenerator::new(), IvGenerator::new());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(a.next()));
            assert!(seen.insert(b.next()));
        }
    }
}
