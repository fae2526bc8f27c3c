//! The SOPS value layer: encrypted values, their key-path AAD, typed plaintexts and the
//! file MAC. Documents, stores and metadata build on these.

mod mac;
mod value;

pub use mac::{Mac, MacHasher, enters_mac, lastmodified_aad};
pub use value::{
    EncryptedValue, IV_LEN, Plaintext, ValueCipher, ValueType, aad, format_bool, format_float,
    normalize_time, parse_bool, parse_float,
};
