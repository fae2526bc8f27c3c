//! The SOPS format: encrypted values, their key-path AAD, typed plaintexts, the file
//! MAC, the document tree with its selection rules, the metadata section, Shamir key
//! groups, the five stores (YAML, JSON, dotenv, INI, binary), and whole-file opening and
//! sealing ([`file`](mod@file)).

pub mod file;
mod mac;
pub mod metadata;
pub mod shamir;
pub mod store;
pub mod tree;
mod value;
pub mod walk;

pub use mac::{Mac, MacHasher, enters_mac, lastmodified_aad};
pub use value::{
    EncryptedValue, IV_LEN, Plaintext, ValueCipher, ValueType, aad, format_bool, format_float,
    normalize_time, parse_bool, parse_float,
};
