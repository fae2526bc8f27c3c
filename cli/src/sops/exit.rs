//! sops' exit codes, and the failure type carrying one.

use gitseal_crypto::SopsError;

/// sops' exit codes.
pub mod code {
    /// Anything else.
    pub const GENERIC: u8 = 1;
    /// The input does not parse.
    pub const COULD_NOT_READ_INPUT: u8 = 2;
    /// The output cannot be written.
    pub const COULD_NOT_WRITE_OUTPUT: u8 = 3;
    /// The output tree cannot be marshalled.
    pub const ERROR_DUMPING_TREE: u8 = 4;
    /// Invalid `--encryption-context`.
    pub const ERROR_INVALID_KMS_ENCRYPTION_CONTEXT: u8 = 6;
    /// Invalid `set` arguments.
    pub const ERROR_INVALID_SET_FORMAT: u8 = 7;
    /// Conflicting flags.
    pub const ERROR_CONFLICTING_PARAMETERS: u8 = 8;
    /// The tree cannot be encrypted.
    pub const ERROR_ENCRYPTING_TREE: u8 = 23;
    /// A value cannot be decrypted.
    pub const ERROR_DECRYPTING_TREE: u8 = 25;
    /// MAC missing, undecryptable or wrong.
    pub const MAC_MISMATCH: u8 = 51;
    /// A tree path does not parse or names nothing.
    pub const ERROR_INVALID_TREE_PATH: u8 = 91;
    /// The input file is empty.
    pub const FILE_EMPTY: u8 = 92;
    /// The input file does not exist.
    pub const NO_FILE_SPECIFIED: u8 = 100;
    /// No master key could decrypt the data key.
    pub const NO_KEY: u8 = 128;
    /// `edit` made no change.
    pub const FILE_HAS_NOT_BEEN_MODIFIED: u8 = 200;
    /// `edit` found no editor.
    pub const NO_EDITOR_FOUND: u8 = 201;
    /// The file is already encrypted.
    pub const FILE_ALREADY_ENCRYPTED: u8 = 203;
}

/// A failure with sops' exit status for it.
#[derive(Debug)]
pub struct Exit {
    /// The exit status.
    pub code: u8,
    message: String,
}

impl Exit {
    /// A failure with `code` and a message (never a secret).
    pub fn new(code: u8, message: String) -> Self {
        Self { code, message }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Exit status for a format error, by what was being done.
pub(super) fn sops_failure(error: SopsError, doing: u8) -> Exit {
    let code = match &error {
        SopsError::Syntax { .. } => code::COULD_NOT_READ_INPUT,
        SopsError::MetadataNotFound | SopsError::Metadata(_) | SopsError::Config(_) => {
            code::GENERIC
        }
        SopsError::MacMismatch | SopsError::MacMissing | SopsError::MacUndecryptable => {
            code::MAC_MISMATCH
        }
        SopsError::InvalidPath(_) | SopsError::KeyNotFound(_) => code::ERROR_INVALID_TREE_PATH,
        SopsError::Unsupported(_) => code::ERROR_ENCRYPTING_TREE,
        _ => doing,
    };
    let message = match &error {
        SopsError::Syntax { format, message } => {
            format!("Error unmarshalling input {format}: {message}")
        }
        other => other.to_string(),
    };
    Exit::new(code, message)
}
