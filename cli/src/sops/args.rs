//! The command line's arguments: the same subcommands, flags and environment variables
//! as sops.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};
use gitseal_crypto::sops::metadata::WRITTEN_VERSION;
use gitseal_crypto::sops::store::MAX_INDENT;

use super::EXAMPLES;

/// The SOPS command line.
#[derive(Parser)]
#[command(
    name = "sops",
    version = WRITTEN_VERSION,
    about = "Encrypt and decrypt SOPS files (sops-compatible)",
    after_help = EXAMPLES,
    subcommand_precedence_over_arg = true
)]
pub struct Args {
    /// Flags that apply to every subcommand.
    #[command(flatten)]
    pub global: Global,
    /// The subcommand (none: the legacy `-e`/`-d`/`-r`/`--set` forms, or edit).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Legacy form: encrypt FILE.
    #[arg(short = 'e', long = "encrypt", conflicts_with_all = ["decrypt", "rotate"])]
    pub encrypt: bool,
    /// Legacy form: decrypt FILE.
    #[arg(short = 'd', long = "decrypt", conflicts_with = "rotate")]
    pub decrypt: bool,
    /// Legacy form: rotate FILE's data key.
    #[arg(short = 'r', long = "rotate")]
    pub rotate: bool,
    /// Legacy form: set `'["path"] value'` in FILE.
    #[arg(long = "set", value_name = "PATH VALUE")]
    pub set: Option<String>,
    /// Options of the legacy forms.
    #[command(flatten)]
    pub options: FileOptions,
    /// Options of the legacy rotate form.
    #[command(flatten)]
    pub rotation: RotateKeys,
    /// The file (legacy forms).
    pub file: Option<PathBuf>,
}

/// Flags before the subcommand.
#[derive(ClapArgs, Clone, Default)]
pub struct Global {
    /// The `.sops.yaml` to use instead of searching for one.
    #[arg(long, env = "SOPS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Output indentation (spaces) for YAML and JSON, 0 to 16. For YAML, 0 means the
    /// default (4), and 1 or more than 9 mean 2, as in sops.
    #[arg(
        long,
        global = true,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
            .range(0..=MAX_INDENT as u64)
    )]
    pub indent: Option<usize>,
    /// Compute the MAC over encrypted values only (`--mac-only-encrypted=false` turns it
    /// off for a SopsSecret, where it is on by default).
    #[arg(
        long,
        global = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub mac_only_encrypted: Option<bool>,
    /// Encrypt only values whose comments in scope match this regex.
    #[arg(long, global = true)]
    pub encrypted_comment_regex: Option<String>,
    /// Leave values whose comments in scope match this regex in the clear.
    #[arg(long, global = true)]
    pub unencrypted_comment_regex: Option<String>,
    /// Accepted for compatibility; gitseal logs nothing.
    #[arg(long, global = true)]
    pub verbose: bool,
    /// Accepted for compatibility (there is no version check to disable).
    #[arg(long, global = true)]
    pub disable_version_check: bool,
}

/// Options shared by the commands that read and write files.
#[derive(ClapArgs, Clone, Default)]
pub struct FileOptions {
    /// Write the result back to the file.
    #[arg(short = 'i', long = "in-place")]
    pub in_place: bool,
    /// Write the result to this file (atomically).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Input format: yaml, json, dotenv, ini or binary (default: from the file name).
    #[arg(long)]
    pub input_type: Option<String>,
    /// Output format (default: the input's).
    #[arg(long)]
    pub output_type: Option<String>,
    /// The file name to use for format and creation-rule matching (e.g. for stdin).
    #[arg(long)]
    pub filename_override: Option<PathBuf>,
    /// Do not check the file's MAC.
    #[arg(long)]
    pub ignore_mac: bool,
    /// Print only this part of the tree, e.g. `'["a"]["b"][0]'`.
    #[arg(long)]
    pub extract: Option<String>,
    /// Order in which key types are tried (age is the only one gitseal decrypts with).
    #[arg(long, env = "SOPS_DECRYPTION_ORDER")]
    pub decryption_order: Option<String>,
    /// Encrypt for these age recipients (comma-separated).
    #[arg(short = 'a', long, env = "SOPS_AGE_RECIPIENTS")]
    pub age: Option<String>,
    /// Encrypt with these AWS KMS keys (`arn[+role-arn]`, comma-separated).
    #[arg(short = 'k', long, env = "SOPS_KMS_ARN")]
    pub kms: Option<String>,
    /// AWS shared-config profile for the --kms keys.
    #[arg(long)]
    pub aws_profile: Option<String>,
    /// KMS encryption context for the --kms keys: `key1:value1,key2:value2`.
    #[arg(long)]
    pub encryption_context: Option<String>,
    /// PGP fingerprints (not supported by gitseal).
    #[arg(short = 'p', long, env = "SOPS_PGP_FP")]
    pub pgp: Option<String>,
    /// Leave keys ending in this suffix in the clear (default `_unencrypted`).
    #[arg(long)]
    pub unencrypted_suffix: Option<String>,
    /// Encrypt only keys ending in this suffix.
    #[arg(long)]
    pub encrypted_suffix: Option<String>,
    /// Leave keys matching this regex in the clear.
    #[arg(long)]
    pub unencrypted_regex: Option<String>,
    /// Encrypt only keys matching this regex.
    #[arg(long)]
    pub encrypted_regex: Option<String>,
    /// Number of key groups needed to recover the data key.
    #[arg(long)]
    pub shamir_secret_sharing_threshold: Option<usize>,
}

/// `encrypt --cluster`: the gitseal controller's age recipient as one more key, fetched
/// through the API server's service proxy as `gitseal kubeseal` fetches the certificate.
#[derive(ClapArgs, Clone, Default)]
pub struct ClusterRecipient {
    /// Also encrypt for the gitseal controller's age recipient (`/v1/age-recipient`,
    /// fetched through the Kubernetes API server's service proxy).
    #[arg(long)]
    pub cluster: bool,
    /// With --cluster: path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config,
    /// in-cluster).
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        requires = "cluster"
    )]
    pub kubeconfig: String,
    /// With --cluster: the kubeconfig context to use.
    #[arg(long, requires = "cluster")]
    pub context: Option<String>,
    /// With --cluster: namespace of the controller's Service.
    #[arg(long, default_value = "kube-system", requires = "cluster")]
    pub controller_namespace: String,
    /// With --cluster: name of the controller's Service.
    #[arg(
        long,
        default_value = "sealed-secrets-controller",
        requires = "cluster"
    )]
    pub controller_name: String,
}

/// `--add-*`/`--rm-*` of rotate.
#[derive(ClapArgs, Clone, Default)]
pub struct RotateKeys {
    /// Add these age recipients.
    #[arg(long)]
    pub add_age: Option<String>,
    /// Remove these age recipients.
    #[arg(long)]
    pub rm_age: Option<String>,
    /// Add these AWS KMS keys (`arn[+role]`, comma-separated).
    #[arg(long)]
    pub add_kms: Option<String>,
    /// Remove these AWS KMS keys.
    #[arg(long)]
    pub rm_kms: Option<String>,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Encrypt a file (standard input when no file is given).
    Encrypt {
        /// Options.
        #[command(flatten)]
        options: FileOptions,
        /// The controller's age recipient (`--cluster`).
        #[command(flatten)]
        cluster: ClusterRecipient,
        /// The plaintext file.
        file: Option<PathBuf>,
    },
    /// Decrypt a file (standard input when no file is given).
    Decrypt {
        /// Options.
        #[command(flatten)]
        options: FileOptions,
        /// The encrypted file.
        file: Option<PathBuf>,
    },
    /// Edit a file in $SOPS_EDITOR / $EDITOR (creating it when it does not exist).
    Edit {
        /// Options.
        #[command(flatten)]
        options: FileOptions,
        /// Print the master keys in the editor too (accepted; gitseal shows none).
        #[arg(long)]
        show_master_keys: bool,
        /// The file.
        file: PathBuf,
    },
    /// Generate a new data key and re-encrypt every value with it.
    Rotate {
        /// Options.
        #[command(flatten)]
        options: FileOptions,
        /// Recipients to add and remove.
        #[command(flatten)]
        rotation: RotateKeys,
        /// The file.
        file: PathBuf,
    },
    /// Re-wrap the data key for the keys the file's creation rule now lists.
    Updatekeys {
        /// Apply without asking.
        #[arg(short = 'y', long)]
        yes: bool,
        /// Input format.
        #[arg(long)]
        input_type: Option<String>,
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Set one value: `set FILE '["path"]' VALUE` (VALUE is JSON).
    Set {
        /// Options.
        #[command(flatten)]
        options: FileOptions,
        /// Read the value from this file.
        #[arg(long)]
        value_file: bool,
        /// Read the value from standard input.
        #[arg(long)]
        value_stdin: bool,
        /// Do not touch the file when the value is already set.
        #[arg(long)]
        idempotent: bool,
        /// The file.
        file: PathBuf,
        /// The path, e.g. `'["a"]["b"]'`.
        path: String,
        /// The value (JSON), or a file name with --value-file.
        value: Option<String>,
    },
    /// Remove one value: `unset FILE '["path"]'`.
    Unset {
        /// Options.
        #[command(flatten)]
        options: FileOptions,
        /// Do not fail when the path is already absent.
        #[arg(long)]
        idempotent: bool,
        /// The file.
        file: PathBuf,
        /// The path, e.g. `'["a"]["b"]'`.
        path: String,
    },
    /// Run a command with the file's top-level values as environment variables.
    ExecEnv {
        /// Options.
        #[command(flatten)]
        options: FileOptions,
        /// Do not pass the current environment on.
        #[arg(long)]
        pristine: bool,
        /// The file.
        file: PathBuf,
        /// The command (run by /bin/sh -c).
        command: String,
    },
    /// Run a command with `{}` replaced by the path of a private file holding the plaintext.
    ExecFile {
        /// Options.
        #[command(flatten)]
        options: FileOptions,
        /// Accepted for compatibility: gitseal always uses a private temporary file.
        #[arg(long)]
        no_fifo: bool,
        /// The temporary file's name: a plain file name, created in a private directory.
        #[arg(long, default_value = "tmp-file", value_parser = plain_file_name)]
        filename: String,
        /// The file.
        file: PathBuf,
        /// The command (run by /bin/sh -c), `{}` standing for the plaintext file.
        command: String,
    },
    /// Print whether a file is encrypted: {"encrypted":true|false}.
    Filestatus {
        /// Input format.
        #[arg(long)]
        input_type: Option<String>,
        /// The file.
        file: PathBuf,
    },
}

/// `--filename` of exec-file: a plain file name, so that the plaintext stays in the private
/// directory (and is removed with it) — no `/`, not `.` or `..`, not empty.
fn plain_file_name(name: &str) -> Result<String, String> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(
            "not a plain file name: the file is made in a private temporary directory, so the name may not contain '/' or be empty, '.' or '..'"
                .into(),
        );
    }
    Ok(name.to_owned())
}
