//! # gitseal-crypto
//!
//! The cryptography shared by every gitseal program, for the two wire formats gitseal
//! speaks. It does no I/O, knows nothing of Kubernetes or the network, and never logs.
//!
//! ## Which part do I need?
//!
//! | you want to…                                              | use                                   |
//! |-----------------------------------------------------------|---------------------------------------|
//! | seal a value for a cluster (what `kubeseal` does)         | [`sealed::Certificate`], [`sealed::seal`] |
//! | unseal in the controller, with several keys               | [`sealed::Keyring`]                   |
//! | compute the label a SealedSecret is bound to              | [`sealed::Scope::label`]              |
//! | encrypt or decrypt one SOPS value                         | [`sops::ValueCipher`], [`sops::aad`]  |
//! | compute or check a SOPS file's MAC                        | [`sops::MacHasher`], [`sops::ValueCipher::verify_mac`] |
//! | wrap a SOPS data key for an age recipient                 | [`keys::age::wrap`], [`keys::age::unwrap`] |
//!
//! Byte layouts are documented in `docs/crypto.md` of the repository.
//!
//! ## Sealing and unsealing
//!
//! ```
//! use gitseal_crypto::sealed::{seal, Keyring, PrivateKey, Scope};
//!
//! // The controller's key; in practice loaded with `PrivateKey::from_pem`, and the
//! // sealing side reads only the certificate with `Certificate::from_pem`.
//! let key = PrivateKey::generate(2048)?;
//! let label = Scope::Strict.label("prod", "db-credentials");
//! let sealed = seal(&key.public_key(), &label, b"s3cr3t")?;
//!
//! let keyring = Keyring::new(vec![key]);
//! assert_eq!(keyring.unseal(&label, &sealed)?.expose(), b"s3cr3t");
//! // Bound to its scope: the same value does not unseal as another Secret.
//! let elsewhere = Scope::Strict.label("prod", "other");
//! assert!(keyring.unseal(&elsewhere, &sealed).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## A SOPS value and its MAC
//!
//! ```
//! use gitseal_crypto::sops::{aad, MacHasher, ValueCipher, ValueType, format_bool};
//! use gitseal_crypto::DataKey;
//!
//! let cipher = ValueCipher::new(&DataKey::generate());
//! let enabled = cipher.encrypt(format_bool(true).as_bytes(), ValueType::Bool, &aad(["feature", "enabled"]));
//!
//! let mut mac = MacHasher::new(false);
//! let plain = cipher.decrypt(&enabled, &aad(["feature", "enabled"]))?;
//! assert_eq!(plain.to_bool()?, true);
//! mac.update(plain.bytes());
//! let stored = cipher.encrypt_mac(&mac.finish(), "2026-11-23T03:43:56Z")?;
//! assert!(stored.ends_with(",type:str]"));
//! # Ok::<(), gitseal_crypto::SopsError>(())
//! ```
//!
//! ## Secrets in memory
//!
//! Keys and plaintexts come back as [`SecretBytes`], [`DataKey`] or
//! [`sops::Plaintext`]: wiped on drop, without `Debug`, `Clone` or `PartialEq`.
//! Errors carry no secret data.

pub mod error;
pub mod keys;
pub mod limits;
pub mod primitives;
pub mod sealed;
mod secret;
pub mod sops;
mod timefmt;

pub use error::{AgeError, KeyError, SealError, SopsError, UnsealError};
pub use secret::{DataKey, KEY_LEN, SecretBytes};
