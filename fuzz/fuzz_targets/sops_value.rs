//! SOPS `ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]` values.
//! - Any text: parsing never panics; a parsed value written back parses to the same value;
//!   decrypting it under a fixed data key fails (nobody can forge the tag) without panic.
//! - The input as a non-empty plaintext (type from byte 0, key path after `0xff`): encrypting then
//!   decrypting gives back the bytes and the type, and reading it as a typed scalar never
//!   panics.
#![no_main]

use std::sync::OnceLock;

use gitseal_crypto::DataKey;
use gitseal_crypto::sops::tree::Scalar;
use gitseal_crypto::sops::{EncryptedValue, ValueCipher, ValueType, aad};
use gitseal_fuzz::split_once;
use libfuzzer_sys::fuzz_target;

const TYPES: [ValueType; 7] = [
    ValueType::Str,
    ValueType::Int,
    ValueType::Float,
    ValueType::Bool,
    ValueType::Time,
    ValueType::Comment,
    ValueType::Bytes,
];

fn cipher() -> &'static ValueCipher {
    static CIPHER: OnceLock<ValueCipher> = OnceLock::new();
    CIPHER.get_or_init(|| ValueCipher::new(&DataKey::from_slice(&[7; 32]).expect("32 bytes")))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(value) = EncryptedValue::parse(text) {
            assert!(EncryptedValue::is_encrypted(text));
            let again = EncryptedValue::parse(&value.to_string()).expect("own output parses");
            assert_eq!(again, value);
            assert!(cipher().decrypt_value(value, b"key:").is_err());
        }
    }
    let Some((&ty, rest)) = data.split_first() else {
        return;
    };
    let value_type = TYPES[usize::from(ty) % TYPES.len()];
    let (plaintext, path) = split_once(rest);
    if plaintext.is_empty() {
        // Empty values are never encrypted (sops leaves them as they are).
        return;
    }
    let path = String::from_utf8_lossy(path);
    let aad = aad(path.split('/').filter(|s| !s.is_empty()));
    let text = cipher().encrypt(plaintext, value_type, &aad);
    assert!(EncryptedValue::is_encrypted(&text));
    let opened = cipher()
        .decrypt(&text, &aad)
        .expect("own ciphertext decrypts");
    assert_eq!(opened.bytes(), plaintext);
    assert_eq!(opened.value_type(), value_type);
    let _ = Scalar::from_plaintext(&opened);
    let _ = (opened.to_int(), opened.to_float(), opened.to_bool());
});
