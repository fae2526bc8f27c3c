//! Error types. None of them carries secret data: a failed decryption says that it
//! failed, never what was being decrypted or which key came closest.

use thiserror::Error;

/// Problems with key material: PEM, X.509 certificates, RSA keys, data keys.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The input is not PEM, or holds no block of an expected kind.
    #[error("no {expected} found in the PEM input")]
    Pem {
        /// What was looked for, e.g. "certificate" or "RSA private key".
        expected: &'static str,
    },
    /// The certificate could not be parsed as X.509.
    #[error("invalid X.509 certificate: {0}")]
    Certificate(String),
    /// The key is not an RSA key, or not one of a supported size (2048 to 8192 bits).
    #[error("unsupported key: {0}")]
    UnsupportedKey(&'static str),
    /// The DER structure of the key is malformed.
    #[error("malformed {0}")]
    MalformedKey(&'static str),
    /// The certificate's validity ended; sealing to it would lock secrets to a key the
    /// controller has probably replaced.
    #[error("certificate expired at {not_after}; fetch the controller's current certificate")]
    CertificateExpired {
        /// The certificate's NotAfter time, RFC 3339.
        not_after: String,
    },
    /// A data key of the wrong length.
    #[error("data key must be 32 bytes, got {0}")]
    DataKeyLength(usize),
    /// Key generation failed in the RSA provider.
    #[error("RSA key generation failed")]
    Generation,
}

impl KeyError {
    /// A short stable name for metrics and event reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Pem { .. } => "Pem",
            Self::Certificate(_) => "Certificate",
            Self::UnsupportedKey(_) => "UnsupportedKey",
            Self::MalformedKey(_) => "MalformedKey",
            Self::CertificateExpired { .. } => "CertificateExpired",
            Self::DataKeyLength(_) => "DataKeyLength",
            Self::Generation => "Generation",
        }
    }
}

/// Sealing (encrypting to a controller's public key) failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SealError {
    /// The RSA provider refused to encrypt the session key.
    #[error("RSA-OAEP encryption failed")]
    Rsa,
    /// The plaintext is larger than AES-GCM allows for one message.
    #[error("plaintext too large to seal")]
    TooLarge,
}

/// Unsealing a Sealed Secrets value failed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsealError {
    /// The value is not standard padded base64 (CR and LF are tolerated).
    #[error("sealed value is not valid base64")]
    Base64,
    /// The blob ends before its length prefix says the RSA part does.
    #[error("SealedSecret data is too short")]
    TooShort,
    /// No key of the keyring decrypts the value with this label. The text is upstream's.
    #[error("no key could decrypt secret")]
    NoMatchingKey,
}

impl UnsealError {
    /// A short stable name for metrics and event reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Base64 => "Base64",
            Self::TooShort => "TooShort",
            Self::NoMatchingKey => "NoMatchingKey",
        }
    }
}

/// Errors of the SOPS value layer: the `ENC[...]` codec, typed plaintexts and the MAC.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SopsError {
    /// The text does not have the `ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]` shape.
    #[error("value is not an ENC[AES256_GCM,...] string")]
    NotEncrypted,
    /// A field of an `ENC[...]` value is not valid base64.
    #[error("the {0} field of an encrypted value is not valid base64")]
    Base64(&'static str),
    /// The IV is not 32 bytes long.
    #[error("encrypted value has a {0}-byte IV, expected 32")]
    IvLength(usize),
    /// The tag is not 16 bytes long.
    #[error("encrypted value has a {0}-byte tag, expected 16")]
    TagLength(usize),
    /// The `type:` field names no known type.
    #[error("unknown value type {0:?}")]
    UnknownType(String),
    /// Authentication failed: wrong data key, wrong key path, or a tampered value.
    #[error("could not decrypt value: wrong data key, moved key or tampered value")]
    DecryptionFailed,
    /// The decrypted bytes do not parse as the value's declared type.
    #[error("decrypted value does not parse as type {0}")]
    InvalidPlaintext(&'static str),
    /// The file has no MAC.
    #[error("file has no MAC")]
    MacMissing,
    /// The stored MAC could not be decrypted.
    #[error("cannot decrypt MAC")]
    MacUndecryptable,
    /// The stored MAC differs from the one computed over the file's values.
    #[error("MAC mismatch: the file's values were changed outside sops or gitseal")]
    MacMismatch,
    /// The `lastmodified` timestamp is not RFC 3339.
    #[error("invalid lastmodified timestamp {0:?}")]
    InvalidTimestamp(String),
    /// A value at a key path failed; the path names where, never the value.
    #[error("{path}: {source}")]
    Value {
        /// The key path, dot-separated.
        path: String,
        /// What went wrong there.
        source: Box<SopsError>,
    },
    /// The input does not parse in its format.
    #[error("{format}: {message}")]
    Syntax {
        /// yaml, json, dotenv or ini.
        format: &'static str,
        /// What is wrong, and where (never a value).
        message: String,
    },
    /// The document holds something sops cannot encrypt (non-string keys, huge integers,
    /// nested values in a flat format).
    #[error("{0}")]
    Unsupported(String),
    /// The `sops` metadata section is missing.
    #[error("sops metadata not found")]
    MetadataNotFound,
    /// The `sops` metadata section is malformed.
    #[error("invalid sops metadata: {0}")]
    Metadata(String),
    /// A selection option or configuration value is invalid.
    #[error("{0}")]
    Config(String),
    /// Shamir splitting or combining failed.
    #[error("shamir: {0}")]
    Shamir(String),
    /// A tree path (`--extract`, `set`) does not parse.
    #[error("invalid tree path {0:?}: expected e.g. '[\"key\"][0]'")]
    InvalidPath(String),
    /// A tree path names nothing.
    #[error("key not found: {0}")]
    KeyNotFound(String),
}

impl SopsError {
    /// A short stable name for metrics and event reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotEncrypted => "NotEncrypted",
            Self::Base64(_) => "Base64",
            Self::IvLength(_) => "IvLength",
            Self::TagLength(_) => "TagLength",
            Self::UnknownType(_) => "UnknownType",
            Self::DecryptionFailed => "DecryptionFailed",
            Self::InvalidPlaintext(_) => "InvalidPlaintext",
            Self::MacMissing => "MacMissing",
            Self::MacUndecryptable => "MacUndecryptable",
            Self::MacMismatch => "MacMismatch",
            Self::InvalidTimestamp(_) => "InvalidTimestamp",
            Self::Value { source, .. } => source.kind(),
            Self::Syntax { .. } => "Syntax",
            Self::Unsupported(_) => "Unsupported",
            Self::MetadataNotFound => "MetadataNotFound",
            Self::Metadata(_) => "Metadata",
            Self::Config(_) => "Config",
            Self::Shamir(_) => "Shamir",
            Self::InvalidPath(_) => "InvalidPath",
            Self::KeyNotFound(_) => "KeyNotFound",
        }
    }
}

/// Errors of age data-key wrapping.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AgeError {
    /// A recipient string is not an `age1...` X25519 recipient.
    #[error("invalid age recipient {0:?}")]
    InvalidRecipient(String),
    /// A line that should be an `AGE-SECRET-KEY-1...` identity is not one. The line itself
    /// is never shown: it may be a secret key with a typo.
    #[error("invalid age identity on line {line}")]
    InvalidIdentity {
        /// 1-based line number in the identity text.
        line: usize,
    },
    /// The armored age file is malformed.
    #[error("malformed age file: {0}")]
    Format(String),
    /// None of the identities decrypts the file.
    #[error("no age identity could decrypt the data key")]
    NoMatchingIdentity,
    /// Encryption failed inside the age library.
    #[error("age encryption failed: {0}")]
    Encrypt(String),
}
