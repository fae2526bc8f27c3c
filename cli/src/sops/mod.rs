//! `gitseal sops`, and the binary invoked as `sops`: the SOPS command line — the same
//! subcommands, flags, environment variables and exit codes — on gitseal's SOPS format
//! implementation. age keys (and Shamir key groups) are supported; files that also carry
//! PGP, KMS or other keys keep them when rewritten.

mod config;
mod keys;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args as ClapArgs, Parser, Subcommand};
use gitseal_crypto::DataKey;
use gitseal_crypto::SopsError;
use gitseal_crypto::limits;
use gitseal_crypto::sops::metadata::{self, Metadata, WRITTEN_VERSION};
use gitseal_crypto::sops::store::{Format, Layout, MAX_INDENT};
use gitseal_crypto::sops::tree::{self, Node, Scalar, Tree};
use gitseal_crypto::sops::walk::{self, IvStash, Selection};
use gitseal_crypto::sops::{ValueCipher, lastmodified_aad};
use zeroize::Zeroizing;

use config::Config;
use keys::KeyPlan;

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
fn sops_failure(error: SopsError, doing: u8) -> Exit {
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

pub(crate) const EXAMPLES: &str = "\
Examples:
  # Encrypt for an age recipient (or with the keys of .sops.yaml's creation rules)
  gitseal sops encrypt --age age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p secrets.yaml > secrets.enc.yaml
  # Decrypt with the identities of SOPS_AGE_KEY_FILE / ~/.config/sops/age/keys.txt
  gitseal sops decrypt secrets.enc.yaml
  gitseal sops decrypt --extract '[\"db\"][\"password\"]' secrets.enc.yaml
  # Edit in $EDITOR, change one value, or remove one, keeping the other values' ciphertext
  gitseal sops edit secrets.enc.yaml
  gitseal sops set secrets.enc.yaml '[\"db\"][\"password\"]' '\"n3w\"'
  gitseal sops unset secrets.enc.yaml '[\"db\"][\"old\"]'
  # New data key, and a recipient added and one removed
  gitseal sops rotate -i --add-age age1... --rm-age age1... secrets.enc.yaml
  # Re-wrap the data key for the keys .sops.yaml now lists
  gitseal sops updatekeys -y secrets.enc.yaml
  # Run a command with the values as environment variables, or as a file
  gitseal sops exec-env secrets.enc.env 'psql \"$DATABASE_URL\"'
  gitseal sops exec-file secrets.enc.json 'app --config {}'

Exit codes are sops': 51 MAC mismatch, 128 no key could decrypt the data key, 203 already
encrypted, 100 no such file, 2 unreadable input, 25 a value does not decrypt.
Invoked as `sops` (e.g. through a symlink) the binary is this command.";

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
    /// Compute the MAC over encrypted values only.
    #[arg(long, global = true)]
    pub mac_only_encrypted: bool,
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

/// Runs the sops command line; the error carries sops' exit status.
pub fn run(args: Args, out: &mut dyn Write) -> Result<(), Exit> {
    let global = args.global.clone();
    let command = match args.command {
        Some(command) => command,
        None => {
            let Some(file) = args.file else {
                return Err(Exit::new(
                    code::GENERIC,
                    "no file given: use `sops encrypt|decrypt|edit|... FILE` (see --help)".into(),
                ));
            };
            let options = args.options;
            if args.encrypt {
                return encrypt(&global, &options, Some(&file), out);
            } else if args.decrypt {
                Command::Decrypt {
                    options,
                    file: Some(file),
                }
            } else if args.rotate {
                Command::Rotate {
                    options,
                    rotation: args.rotation,
                    file,
                }
            } else if let Some(set) = args.set {
                let (path, value) = split_set(&set)?;
                Command::Set {
                    options,
                    value_file: false,
                    value_stdin: false,
                    idempotent: false,
                    file,
                    path,
                    value: Some(value),
                }
            } else {
                Command::Edit {
                    options,
                    show_master_keys: false,
                    file,
                }
            }
        }
    };
    match command {
        Command::Encrypt { options, file } => encrypt(&global, &options, file.as_deref(), out),
        Command::Decrypt { options, file } => decrypt(&global, &options, file.as_deref(), out),
        Command::Edit { options, file, .. } => edit(&global, &options, &file),
        Command::Rotate {
            options,
            rotation,
            file,
        } => rotate(&global, &options, &rotation, &file, out),
        Command::Updatekeys {
            yes,
            input_type,
            files,
        } => {
            let config = Config::find(global.config.as_deref())?.ok_or_else(|| {
                Exit::new(
                    code::GENERIC,
                    "updatekeys needs a .sops.yaml with creation rules".into(),
                )
            })?;
            let layout = layout(&global, Some(&config))?;
            for file in &files {
                updatekeys(&config, &layout, input_type.as_deref(), file, yes)?;
            }
            Ok(())
        }
        Command::Set {
            options,
            value_file,
            value_stdin,
            idempotent,
            file,
            path,
            value,
        } => {
            let json = match (value_file, value_stdin, value) {
                (_, true, None) => {
                    let bytes = crate::file::read_stdin(limits::SOPS_FILE).map_err(|e| {
                        Exit::new(
                            code::ERROR_INVALID_SET_FORMAT,
                            format!("cannot read standard input: {e}"),
                        )
                    })?;
                    utf8_value(bytes, "standard input")?
                }
                (true, false, Some(path)) => {
                    let bytes =
                        crate::file::read(Path::new(&path), limits::SOPS_FILE).map_err(|e| {
                            Exit::new(
                                code::ERROR_INVALID_SET_FORMAT,
                                format!("cannot read {path}: {e}"),
                            )
                        })?;
                    utf8_value(bytes, &path)?
                }
                (false, false, Some(value)) => Zeroizing::new(value),
                _ => {
                    return Err(Exit::new(
                        code::ERROR_INVALID_SET_FORMAT,
                        "set needs a value: an argument, --value-file FILE or --value-stdin".into(),
                    ));
                }
            };
            set(&global, &options, &file, &path, Some(&json), idempotent)
        }
        Command::Unset {
            options,
            idempotent,
            file,
            path,
        } => set(&global, &options, &file, &path, None, idempotent),
        Command::ExecEnv {
            options,
            pristine,
            file,
            command,
        } => exec_env(&options, &file, &command, pristine),
        Command::ExecFile {
            options,
            filename,
            file,
            command,
            ..
        } => exec_file(&global, &options, &file, &command, &filename),
        Command::Filestatus { input_type, file } => {
            let bytes = read_input(Some(&file))?;
            let format = input_type
                .as_deref()
                .map_or_else(|| Format::from_path(&file), Format::from_name);
            let encrypted = format.parse_encrypted(&bytes).is_ok();
            writeln!(out, "{{\"encrypted\":{encrypted}}}")
                .map_err(|e| Exit::new(code::COULD_NOT_WRITE_OUTPUT, e.to_string()))
        }
    }
}

/// A value for `set` read from a file or standard input, as text.
fn utf8_value(bytes: Zeroizing<Vec<u8>>, source: &str) -> Result<Zeroizing<String>, Exit> {
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(e) => Err(Exit::new(
            code::ERROR_INVALID_SET_FORMAT,
            format!(
                "the value in {source} is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )),
    }
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

/// `--set '["a"]["b"] value'`: the path is everything up to the last `]` followed by a
/// space.
fn split_set(text: &str) -> Result<(String, String), Exit> {
    let at = text.rfind("] ").ok_or_else(|| {
        Exit::new(
            code::ERROR_INVALID_SET_FORMAT,
            "invalid --set: expected '[\"path\"] value'".into(),
        )
    })?;
    Ok((text[..=at].to_owned(), text[at + 2..].to_owned()))
}

fn read_input(file: Option<&Path>) -> Result<Zeroizing<Vec<u8>>, Exit> {
    let limit = gitseal_crypto::limits::SOPS_FILE;
    match file {
        Some(path) if path != Path::new("-") => {
            if !path.exists() {
                return Err(Exit::new(
                    code::NO_FILE_SPECIFIED,
                    format!(
                        "Error: cannot operate on non-existent file {}",
                        path.display()
                    ),
                ));
            }
            crate::file::read(path, limit).map_err(|e| {
                Exit::new(
                    code::COULD_NOT_READ_INPUT,
                    format!("cannot read {}: {e}", path.display()),
                )
            })
        }
        _ => crate::file::read_stdin(limit).map_err(|e| {
            Exit::new(
                code::COULD_NOT_READ_INPUT,
                format!("cannot read standard input: {e}"),
            )
        }),
    }
}

/// Where the output goes: `--output`, the file itself (`-i`), or standard output.
fn write_output(
    options: &FileOptions,
    file: Option<&Path>,
    bytes: &[u8],
    out: &mut dyn Write,
) -> Result<(), Exit> {
    if options.in_place && options.output.is_some() {
        return Err(Exit::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            "Error: cannot operate on both --output and --in-place".into(),
        ));
    }
    let target = match (&options.output, options.in_place, file) {
        (Some(path), _, _) => Some(path.as_path()),
        (None, true, Some(file)) => Some(file),
        (None, true, None) => {
            return Err(Exit::new(
                code::ERROR_CONFLICTING_PARAMETERS,
                "--in-place needs a file".into(),
            ));
        }
        _ => None,
    };
    match target {
        Some(path) => crate::file::write_atomic(path, bytes)
            .map_err(|e| Exit::new(code::COULD_NOT_WRITE_OUTPUT, format!("{e:#}"))),
        None => out
            .write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|e| {
                Exit::new(
                    code::COULD_NOT_WRITE_OUTPUT,
                    format!("cannot write output: {e}"),
                )
            }),
    }
}

/// The name used for format detection and rule matching.
fn name_of<'a>(options: &'a FileOptions, file: Option<&'a Path>) -> Option<&'a Path> {
    options.filename_override.as_deref().or(file)
}

fn formats(options: &FileOptions, file: Option<&Path>) -> (Format, Format) {
    let by_name = name_of(options, file).map_or(Format::Json, Format::from_path);
    let input = options
        .input_type
        .as_deref()
        .map_or(by_name, Format::from_name);
    let output = options
        .output_type
        .as_deref()
        .map_or(input, Format::from_name);
    (input, output)
}

fn layout(global: &Global, config: Option<&Config>) -> Result<Layout, Exit> {
    let mut layout = config.map(Config::layout).transpose()?.unwrap_or_default();
    if let Some(indent) = global.indent {
        layout.yaml_indent = Some(indent);
        layout.json_indent = Some(indent);
        layout.json_binary_indent = Some(indent);
    }
    Ok(layout)
}

/// A decrypted file: its tree, metadata, data key and the IVs of its values.
struct Opened {
    tree: Tree,
    metadata: Metadata,
    key: DataKey,
    stash: IvStash,
}

/// Reads, decrypts and (unless `ignore_mac`) verifies an encrypted file, remembering the
/// values' IVs for re-encryption.
fn open(bytes: &[u8], format: Format, ignore_mac: bool) -> Result<Opened, Exit> {
    open_with(bytes, format, ignore_mac, true)
}

/// [`open`], with the IV stash only when `stash` (decrypt-only commands need none).
fn open_with(bytes: &[u8], format: Format, ignore_mac: bool, stash: bool) -> Result<Opened, Exit> {
    if bytes.is_empty() {
        return Err(Exit::new(
            code::FILE_EMPTY,
            "Error: cannot operate on an empty file".into(),
        ));
    }
    let (mut tree, metadata) = format
        .parse_encrypted(bytes)
        .map_err(|e| sops_failure(e, code::GENERIC))?;
    let identities = keys::load_identities()?;
    let key = keys::data_key(&metadata, &identities)?;
    let cipher = ValueCipher::new(&key);
    let mut ivs = IvStash::default();
    let mac = walk::decrypt(
        &mut tree,
        &cipher,
        &metadata.selection,
        metadata.mac_only_encrypted,
        stash.then_some(&mut ivs),
    )
    .map_err(|e| sops_failure(e, code::ERROR_DECRYPTING_TREE))?;
    if !ignore_mac {
        if metadata.mac.is_empty() {
            return Err(sops_failure(SopsError::MacMissing, code::MAC_MISMATCH));
        }
        cipher
            .verify_mac(&metadata.mac, &metadata.lastmodified, &mac)
            .map_err(|e| sops_failure(e, code::MAC_MISMATCH))?;
    }
    Ok(Opened {
        tree,
        metadata,
        key,
        stash: ivs,
    })
}

/// Encrypts `tree` with `key` and fills in the metadata's MAC, time and version.
fn seal(
    tree: &mut Tree,
    metadata: &mut Metadata,
    key: &DataKey,
    stash: Option<&IvStash>,
) -> Result<(), Exit> {
    let cipher = ValueCipher::new(key);
    let mac = walk::encrypt(
        tree,
        &cipher,
        &metadata.selection,
        metadata.mac_only_encrypted,
        stash,
    )
    .map_err(|e| sops_failure(e, code::ERROR_ENCRYPTING_TREE))?;
    metadata.lastmodified = metadata::now();
    lastmodified_aad(&metadata.lastmodified).map_err(|e| sops_failure(e, code::GENERIC))?;
    metadata.mac = cipher
        .encrypt_mac(&mac, &metadata.lastmodified)
        .map_err(|e| sops_failure(e, code::ERROR_ENCRYPTING_TREE))?;
    metadata.version = WRITTEN_VERSION.to_owned();
    Ok(())
}

fn encrypt(
    global: &Global,
    options: &FileOptions,
    file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), Exit> {
    let bytes = read_input(file)?;
    if bytes.is_empty() {
        return Err(Exit::new(
            code::FILE_EMPTY,
            "Error: cannot operate on an empty file".into(),
        ));
    }
    let (input, output) = formats(options, file);
    let mut tree = input
        .parse_plain(&bytes)
        .map_err(|e| sops_failure(e, code::COULD_NOT_READ_INPUT))?;
    if input.has_metadata(&tree) {
        return Err(Exit::new(
            code::FILE_ALREADY_ENCRYPTED,
            "The file you have provided contains a top-level entry called 'sops', or for flat file formats top-level entries starting with 'sops_'. This is reserved for SOPS metadata and the file is most likely already encrypted.".into(),
        ));
    }
    let config = Config::find(global.config.as_deref())?;
    let rule = match (config.as_ref(), name_of(options, file)) {
        (Some(config), Some(name)) => config.rule_for(name)?,
        (Some(config), None) => config.rule_for(Path::new("stdin"))?,
        _ => None,
    }
    .unwrap_or_default();
    let mut plan = flag_plan(options)?.unwrap_or_else(|| rule.keys.clone());
    if let Some(threshold) = options.shamir_secret_sharing_threshold {
        plan.threshold = threshold;
    }
    let selection = selection(global, options, &rule, input)?;
    let key = DataKey::generate();
    let (key_groups, shamir_threshold) = plan.wrap(&key, &[])?;
    let mut metadata = Metadata {
        key_groups,
        shamir_threshold,
        selection,
        mac_only_encrypted: global.mac_only_encrypted || rule.mac_only_encrypted,
        ..Metadata::default()
    };
    seal(&mut tree, &mut metadata, &key, None)?;
    let layout = layout(global, config.as_ref())?;
    let text = Zeroizing::new(
        output
            .emit_encrypted(&tree, &metadata, &layout)
            .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?,
    );
    write_output(options, file, &text, out)
}

/// The keys named by `--age`, `--kms` (with `--aws-profile`, `--encryption-context`), as
/// one key group; `None` when no key flag is given (the creation rule decides).
fn flag_plan(options: &FileOptions) -> Result<Option<KeyPlan>, Exit> {
    if options.pgp.is_some() {
        return Err(Exit::new(
            code::GENERIC,
            "gitseal encrypts for age recipients and AWS KMS keys; PGP keys are not supported"
                .into(),
        ));
    }
    if options.age.is_none() && options.kms.is_none() {
        return Ok(None);
    }
    let context = encryption_context(options.encryption_context.as_deref())?;
    let profile = options.aws_profile.as_deref().unwrap_or("");
    let group = keys::GroupPlan {
        age: options
            .age
            .as_deref()
            .map(|a| config::split_list(a).collect())
            .unwrap_or_default(),
        kms: options
            .kms
            .as_deref()
            .map(|k| {
                config::split_list(k)
                    .map(|text| {
                        let mut key = config::kms_from_text(&text, profile);
                        key.context = context.clone();
                        key
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok(Some(KeyPlan {
        groups: vec![group],
        threshold: 0,
    }))
}

/// `--encryption-context k1:v1,k2:v2`, sorted by key.
fn encryption_context(text: Option<&str>) -> Result<Vec<(String, String)>, Exit> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut pairs = Vec::new();
    for pair in text.split(',') {
        let Some((k, v)) = pair
            .split_once(':')
            .filter(|(k, v)| !k.is_empty() && !v.contains(':'))
        else {
            return Err(Exit::new(
                code::ERROR_INVALID_KMS_ENCRYPTION_CONTEXT,
                format!(
                    "invalid KMS encryption context format {text:?}: expected key1:value1,key2:value2"
                ),
            ));
        };
        pairs.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    pairs.sort();
    Ok(pairs)
}

/// The selection option: flags, else the creation rule's, else `_unencrypted` (nothing
/// for the binary store, which always encrypts `data`).
fn selection(
    global: &Global,
    options: &FileOptions,
    rule: &config::Rule,
    input: Format,
) -> Result<Selection, Exit> {
    let flags = [
        ("unencrypted_suffix", &options.unencrypted_suffix),
        ("encrypted_suffix", &options.encrypted_suffix),
        ("unencrypted_regex", &options.unencrypted_regex),
        ("encrypted_regex", &options.encrypted_regex),
        (
            "unencrypted_comment_regex",
            &global.unencrypted_comment_regex,
        ),
        ("encrypted_comment_regex", &global.encrypted_comment_regex),
    ];
    let given: Vec<(&str, &String)> = flags
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
        .collect();
    if given.len() > 1 {
        return Err(Exit::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            "Error: cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file".into(),
        ));
    }
    if input == Format::Binary {
        return Ok(Selection::All);
    }
    let chosen = match (given.first(), &rule.selection) {
        (Some((key, value)), _) => Some((key.to_string(), value.to_string())),
        (None, Some((key, value))) => Some((key.clone(), value.clone())),
        (None, None) => None,
    };
    match chosen {
        Some((key, value)) => {
            Selection::from_key(&key, &value).map_err(|e| Exit::new(code::GENERIC, e.to_string()))
        }
        None => Ok(Selection::UnencryptedSuffix("_unencrypted".into())),
    }
}

fn decrypt(
    global: &Global,
    options: &FileOptions,
    file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), Exit> {
    let bytes = read_input(file)?;
    let (input, output) = formats(options, file);
    let config = Config::find(global.config.as_deref()).ok().flatten();
    let layout = layout(global, config.as_ref())?;
    let opened = open_with(&bytes, input, options.ignore_mac, false)?;
    let text = Zeroizing::new(match &options.extract {
        Some(path) => {
            let steps = tree::parse_path(path)
                .map_err(|e| sops_failure(e, code::ERROR_INVALID_TREE_PATH))?;
            let first = opened.tree.documents.first().ok_or_else(|| {
                Exit::new(
                    code::ERROR_INVALID_TREE_PATH,
                    "the file has no document".into(),
                )
            })?;
            let node = tree::lookup(first, &steps)
                .map_err(|e| sops_failure(e, code::ERROR_INVALID_TREE_PATH))?;
            gitseal_crypto::sops::store::emit_value(node, output, &layout)
                .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?
        }
        None => output
            .emit_plain(&opened.tree, &layout)
            .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?,
    });
    write_output(options, file, &text, out)
}

fn rotate(
    global: &Global,
    options: &FileOptions,
    rotation: &RotateKeys,
    file: &Path,
    out: &mut dyn Write,
) -> Result<(), Exit> {
    let bytes = read_input(Some(file))?;
    let (input, output) = formats(options, Some(file));
    let config = Config::find(global.config.as_deref())?;
    let Opened {
        mut tree,
        mut metadata,
        stash,
        ..
    } = open(&bytes, input, options.ignore_mac)?;
    let mut plan = KeyPlan::of(&metadata);
    let first = plan
        .groups
        .first_mut()
        .expect("metadata has at least one key group");
    for recipient in rotation
        .add_age
        .as_deref()
        .map(config::split_list)
        .into_iter()
        .flatten()
    {
        if !first.age.contains(&recipient) {
            first.age.push(recipient);
        }
    }
    for text in rotation
        .add_kms
        .as_deref()
        .map(config::split_list)
        .into_iter()
        .flatten()
    {
        let key = config::kms_from_text(&text, options.aws_profile.as_deref().unwrap_or(""));
        if !first.kms.contains(&key) {
            first.kms.push(key);
        }
    }
    let removed_age: Vec<String> = rotation
        .rm_age
        .as_deref()
        .map(|r| config::split_list(r).collect())
        .unwrap_or_default();
    let removed_kms: Vec<String> = rotation
        .rm_kms
        .as_deref()
        .map(|r| {
            config::split_list(r)
                .map(|t| config::kms_from_text(&t, "").arn)
                .collect()
        })
        .unwrap_or_default();
    for group in &mut plan.groups {
        group.age.retain(|r| !removed_age.contains(r));
        group.kms.retain(|k| !removed_kms.contains(&k.arn));
    }
    let key = DataKey::generate();
    let (groups, threshold) = plan.wrap(&key, &metadata.key_groups)?;
    metadata.key_groups = groups;
    metadata.shamir_threshold = threshold;
    // New key: the stashed IVs are safe to reuse and keep the diff to the ciphertexts.
    seal(&mut tree, &mut metadata, &key, Some(&stash))?;
    let text = Zeroizing::new(
        output
            .emit_encrypted(&tree, &metadata, &layout(global, config.as_ref())?)
            .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?,
    );
    write_output(options, Some(file), &text, out)
}

fn updatekeys(
    config: &Config,
    layout: &Layout,
    input_type: Option<&str>,
    file: &Path,
    yes: bool,
) -> Result<(), Exit> {
    let rule = config.rule_for(file)?.unwrap_or_default();
    let bytes = read_input(Some(file))?;
    let format = input_type.map_or_else(|| Format::from_path(file), Format::from_name);
    let (tree, mut metadata) = format
        .parse_encrypted(&bytes)
        .map_err(|e| sops_failure(e, code::GENERIC))?;
    let current = KeyPlan::of(&metadata);
    if current.groups == rule.keys.groups && current.threshold == rule.keys.threshold {
        eprintln!("{}: already up to date", file.display());
        return Ok(());
    }
    let before: Vec<String> = current
        .groups
        .iter()
        .flat_map(keys::GroupPlan::names)
        .collect();
    let after: Vec<String> = rule
        .keys
        .groups
        .iter()
        .flat_map(keys::GroupPlan::names)
        .collect();
    eprintln!("The following changes will be made to the file's key groups:");
    for recipient in after.iter().filter(|r| !before.contains(r)) {
        eprintln!("+++ {recipient}");
    }
    for recipient in before.iter().filter(|r| !after.contains(r)) {
        eprintln!("--- {recipient}");
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Exit::new(
                code::GENERIC,
                "updatekeys: pass -y to apply the changes without a terminal".into(),
            ));
        }
        eprint!("Is this okay? (y/n):");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !answer.trim().eq_ignore_ascii_case("y") {
            eprintln!("Changes not applied.");
            return Ok(());
        }
    }
    let identities = keys::load_identities()?;
    let key = keys::data_key(&metadata, &identities)?;
    let (groups, threshold) = rule.keys.wrap(&key, &[])?;
    metadata.key_groups = groups;
    metadata.shamir_threshold = threshold;
    let text = format
        .emit_encrypted(&tree, &metadata, layout)
        .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?;
    crate::file::write_atomic(file, &text)
        .map_err(|e| Exit::new(code::COULD_NOT_WRITE_OUTPUT, format!("{e:#}")))?;
    eprintln!(
        "File {} synced with new keys; run `sops rotate -i` to stop removed keys from reading new values",
        file.display()
    );
    Ok(())
}

/// `set` (with a JSON value) and `unset` (without): change one path, keep every other
/// ciphertext byte-identical, write the file back in place.
fn set(
    global: &Global,
    options: &FileOptions,
    file: &Path,
    path: &str,
    value: Option<&str>,
    idempotent: bool,
) -> Result<(), Exit> {
    let steps =
        tree::parse_path(path).map_err(|e| sops_failure(e, code::ERROR_INVALID_TREE_PATH))?;
    let bytes = read_input(Some(file))?;
    let (input, output) = formats(options, Some(file));
    let config = Config::find(global.config.as_deref())?;
    let Opened {
        mut tree,
        mut metadata,
        key,
        stash,
    } = open(&bytes, input, options.ignore_mac)?;
    let doc = tree
        .documents
        .first_mut()
        .ok_or_else(|| Exit::new(code::GENERIC, "the file has no document".into()))?;
    let changed = match value {
        Some(json) => {
            let node = json_value(json)?;
            // A bad path, or one that nests too deep: nothing is written.
            tree::set(doc, &steps, node)
                .map_err(|e| Exit::new(code::ERROR_INVALID_TREE_PATH, e.to_string()))?
        }
        None => match tree::unset(doc, &steps) {
            Ok(()) => true,
            Err(_) if idempotent => false,
            Err(e) => return Err(sops_failure(e, code::ERROR_INVALID_TREE_PATH)),
        },
    };
    if !changed && idempotent {
        return Ok(());
    }
    seal(&mut tree, &mut metadata, &key, Some(&stash))?;
    let text = output
        .emit_encrypted(&tree, &metadata, &layout(global, config.as_ref())?)
        .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?;
    crate::file::write_atomic(file, &text)
        .map_err(|e| Exit::new(code::COULD_NOT_WRITE_OUTPUT, format!("{e:#}")))
}

/// A JSON value as a tree node (objects keep their key order).
fn json_value(text: &str) -> Result<Node, Exit> {
    let invalid = || {
        Exit::new(
            code::ERROR_INVALID_SET_FORMAT,
            "the value is not valid JSON (strings need quotes: '\"text\"')".into(),
        )
    };
    let wrapped = Zeroizing::new(format!("{{\"v\": {text}}}"));
    let map = gitseal_crypto::sops::store::json::parse(&wrapped).map_err(|e| {
        // Positions in the wrapped text would mislead; the depth limit is worth naming.
        if e.to_string().contains("nesting deeper than") {
            Exit::new(
                code::ERROR_INVALID_SET_FORMAT,
                format!(
                    "the value nests deeper than {} levels",
                    limits::MAX_DEPTH - 1
                ),
            )
        } else {
            invalid()
        }
    })?;
    tree::get(&map, "v").cloned().ok_or_else(invalid)
}

fn edit(global: &Global, options: &FileOptions, file: &Path) -> Result<(), Exit> {
    let (input, _) = formats(options, Some(file));
    let config = Config::find(global.config.as_deref())?;
    let layout = layout(global, config.as_ref())?;
    let existing = file.exists();
    let (plain, opened) = if existing {
        let bytes = read_input(Some(file))?;
        let opened = open(&bytes, input, options.ignore_mac)?;
        let plain = input
            .emit_plain(&opened.tree, &layout)
            .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?;
        (Zeroizing::new(plain), Some(opened))
    } else {
        (Zeroizing::new(example(input).into_bytes()), None)
    };
    let dir = private_dir()?;
    let name = file
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.path.join(name);
    write_private(&temp, &plain)?;
    let editor = std::env::var("SOPS_EDITOR")
        .or_else(|_| std::env::var("EDITOR"))
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| {
            ["vim", "nano", "vi"]
                .iter()
                .find(|e| which(e))
                .map(|e| e.to_string())
        })
        .ok_or_else(|| {
            Exit::new(
                code::NO_EDITOR_FOUND,
                "no editor found: set SOPS_EDITOR or EDITOR".into(),
            )
        })?;
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&temp)
        .status()
        .map_err(|e| {
            Exit::new(
                code::NO_EDITOR_FOUND,
                format!("cannot run editor {editor:?}: {e}"),
            )
        })?;
    if !status.success() {
        return Err(Exit::new(
            code::GENERIC,
            format!(
                "the editor exited with {status}; {} is unchanged",
                file.display()
            ),
        ));
    }
    let edited = crate::file::read(&temp, limits::SOPS_FILE).map_err(|e| {
        Exit::new(
            code::COULD_NOT_READ_INPUT,
            format!("cannot read the edited file: {e}"),
        )
    })?;
    if *edited == *plain && existing {
        return Err(Exit::new(
            code::FILE_HAS_NOT_BEEN_MODIFIED,
            "File has not changed, exiting.".into(),
        ));
    }
    let mut tree = input
        .parse_plain(&edited)
        .map_err(|e| sops_failure(e, code::COULD_NOT_READ_INPUT))?;
    if input.has_metadata(&tree) {
        return Err(Exit::new(
            code::GENERIC,
            "the edited file must not contain a top-level `sops` entry".into(),
        ));
    }
    let (mut metadata, key, stash) = match opened {
        Some(Opened {
            metadata,
            key,
            stash,
            tree: _,
        }) => (metadata, key, Some(stash)),
        None => {
            let rule = config
                .as_ref()
                .map(|c| c.rule_for(file))
                .transpose()?
                .flatten()
                .unwrap_or_default();
            let plan = flag_plan(options)?.unwrap_or_else(|| rule.keys.clone());
            let key = DataKey::generate();
            let (key_groups, shamir_threshold) = plan.wrap(&key, &[])?;
            let metadata = Metadata {
                key_groups,
                shamir_threshold,
                selection: selection(global, options, &rule, input)?,
                mac_only_encrypted: global.mac_only_encrypted || rule.mac_only_encrypted,
                ..Metadata::default()
            };
            (metadata, key, None)
        }
    };
    seal(&mut tree, &mut metadata, &key, stash.as_ref())?;
    let text = input
        .emit_encrypted(&tree, &metadata, &layout)
        .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?;
    crate::file::write_atomic(file, &text)
        .map_err(|e| Exit::new(code::COULD_NOT_WRITE_OUTPUT, format!("{e:#}")))
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The document `edit` starts a new file from.
fn example(format: Format) -> String {
    match format {
        Format::Json | Format::Binary => {
            "{\n\t\"hello\": \"Welcome to gitseal sops! Edit this file as you please!\"\n}\n".into()
        }
        Format::Dotenv => "hello=Welcome to gitseal sops! Edit this file as you please!\n".into(),
        Format::Ini => "[hello]\nwelcome = Edit this file as you please!\n".into(),
        Format::Yaml => "hello: Welcome to gitseal sops! Edit this file as you please!\n".into(),
    }
}

/// A private temporary directory, removed (with its plaintext) when dropped.
struct PrivateDir {
    path: PathBuf,
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn private_dir() -> Result<PrivateDir, Exit> {
    use std::os::unix::fs::DirBuilderExt;
    let mut random = [0u8; 8];
    gitseal_crypto::primitives::fill_random(&mut random);
    let path = std::env::temp_dir().join(format!("gitseal-sops-{}", hex_of(&random)));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .map_err(|e| {
            Exit::new(
                code::COULD_NOT_WRITE_OUTPUT,
                format!("cannot create a private temporary directory: {e}"),
            )
        })?;
    Ok(PrivateDir { path })
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Exit> {
    crate::file::create_private_file(path, bytes)
        .map_err(|e| Exit::new(code::COULD_NOT_WRITE_OUTPUT, format!("{e:#}")))
}

fn run_shell(
    command: &str,
    env: Vec<(String, Zeroizing<String>)>,
    pristine: bool,
) -> Result<(), Exit> {
    let mut child = std::process::Command::new("/bin/sh");
    child.arg("-c").arg(command);
    if pristine {
        child.env_clear();
    }
    for (key, value) in &env {
        child.env(key, value.as_str());
    }
    let status = child
        .status()
        .map_err(|e| Exit::new(code::GENERIC, format!("cannot run the command: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Exit::new(
            status.code().map_or(code::GENERIC, |c| c as u8),
            String::new(),
        ))
    }
}

fn exec_env(options: &FileOptions, file: &Path, command: &str, pristine: bool) -> Result<(), Exit> {
    let bytes = read_input(Some(file))?;
    let (input, _) = formats(options, Some(file));
    let opened = open_with(&bytes, input, options.ignore_mac, false)?;
    let mut env = Vec::new();
    if let Some(doc) = opened.tree.documents.first() {
        for item in doc {
            if let gitseal_crypto::sops::tree::MapItem::Entry(key, Node::Scalar(scalar)) = item
                && !matches!(scalar, Scalar::Null)
            {
                env.push((key.clone(), Zeroizing::new(scalar.to_text())));
            }
        }
    }
    run_shell(command, env, pristine)
}

fn exec_file(
    global: &Global,
    options: &FileOptions,
    file: &Path,
    command: &str,
    filename: &str,
) -> Result<(), Exit> {
    let bytes = read_input(Some(file))?;
    let (input, output) = formats(options, Some(file));
    let config = Config::find(global.config.as_deref()).ok().flatten();
    let opened = open_with(&bytes, input, options.ignore_mac, false)?;
    let plain = Zeroizing::new(
        output
            .emit_plain(&opened.tree, &layout(global, config.as_ref())?)
            .map_err(|e| sops_failure(e, code::ERROR_DUMPING_TREE))?,
    );
    let dir = private_dir()?;
    let path = dir.path.join(filename);
    write_private(&path, &plain)?;
    let command = command.replace("{}", &path.to_string_lossy());
    run_shell(&command, Vec::new(), false)
}
