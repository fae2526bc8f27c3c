//! The Sealed Secrets envelope. Input byte 0 picks the property:
//! - even: the rest is an envelope (raw, then as base64 text) opened with the process's
//!   key; arbitrary bytes must fail with an error, never panic;
//! - odd: the rest is `label 0xff plaintext`; sealing then unsealing must give back the
//!   plaintext, and a different label must not open it.
#![no_main]

use gitseal_crypto::sealed::{Keyring, seal, unseal, unseal_bytes_indexed};
use gitseal_fuzz::{rsa_key, split_once};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = rsa_key();
    if mode % 2 == 0 {
        let (label, blob) = split_once(rest);
        assert!(unseal_bytes_indexed([key], label, blob).is_err());
        if let Ok(text) = std::str::from_utf8(blob) {
            assert!(unseal([key], label, text).is_err());
        }
    } else {
        let (label, plaintext) = split_once(rest);
        let sealed = seal(&key.public_key(), label, plaintext).expect("sealing succeeds");
        let opened = unseal([key], label, &sealed).expect("the own key opens it");
        assert_eq!(opened.expose(), plaintext);
        let keyring = Keyring::new(Vec::new());
        assert!(keyring.unseal(label, &sealed).is_err());
        let mut other = label.to_vec();
        other.push(b'x');
        assert!(unseal([key], &other, &sealed).is_err());
    }
});
