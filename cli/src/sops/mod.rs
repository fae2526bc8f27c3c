//! `gitseal sops`, and the binary invoked as `sops`: the SOPS command line — the same
//! subcommands, flags, environment variables and exit codes — on gitseal's SOPS format
//! implementation. age and AWS KMS keys (and Shamir key groups) are supported; files that
//! also carry PGP or other keys keep them when rewritten.
//!
//! This module is the command line only: arguments ([`args`](Args)), sops' exit codes
//! ([`code`], [`Exit`]), reading and writing files (`io`), `.sops.yaml` (`config`), where
//! the age identities come from (`keys`), and one module per verb (`encrypt`, `decrypt`,
//! `edit`, `rotate`, `updatekeys`, `set`, `exec`). Opening and sealing a file are
//! `gitseal_crypto::sops::file`'s steps; the data key is wrapped and unwrapped through
//! `gitseal_backends::key` (age, AWS KMS with one cached client per region, profile and
//! role), on one current-thread runtime started only when a KMS key is involved.

mod args;
mod config;
mod decrypt;
mod edit;
mod encrypt;
mod exec;
mod exit;
mod io;
mod keys;
mod open;
mod rotate;
mod set;
mod updatekeys;

use std::io::Write;

pub use args::{Args, ClusterRecipient, Command, FileOptions, Global, RotateKeys};
pub use exit::{Exit, code};
pub use open::decrypt_tree;

pub(crate) const EXAMPLES: &str = "\
Examples:
  # Encrypt for an age recipient (or with the keys of .sops.yaml's creation rules)
  gitseal sops encrypt --age age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p secrets.yaml > secrets.enc.yaml
  # Encrypt a SopsSecret for the gitseal controller's age key (fetched through the API server)
  gitseal sops encrypt --cluster --encrypted-suffix Templates app.yaml > app.enc.yaml
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

/// Reads `.sops.yaml` text as `gitseal sops` reads the file at `config_path`, then takes
/// its output layout (`stores:`) and the creation rule for `file`; `Ok(true)` when a rule
/// applies. The configuration reader's one entry point outside the command, for fuzzing.
pub fn check_config(
    config_path: &std::path::Path,
    text: &[u8],
    file: &std::path::Path,
) -> Result<bool, Exit> {
    let config = config::Config::from_bytes(config_path.to_path_buf(), text)?;
    config.layout()?;
    Ok(config.rule_for(file)?.is_some())
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
                return encrypt::encrypt(&global, &options, None, Some(&file), out);
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
                let (path, value) = set::split_set(&set)?;
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
        Command::Encrypt {
            options,
            cluster,
            file,
        } => encrypt::encrypt(
            &global,
            &options,
            cluster.cluster.then_some(&cluster),
            file.as_deref(),
            out,
        ),
        Command::Decrypt { options, file } => {
            decrypt::decrypt(&global, &options, file.as_deref(), out)
        }
        Command::Edit { options, file, .. } => edit::edit(&global, &options, &file),
        Command::Rotate {
            options,
            rotation,
            file,
        } => rotate::rotate(&global, &options, &rotation, &file, out),
        Command::Updatekeys {
            yes,
            input_type,
            files,
        } => updatekeys::updatekeys(&global, input_type.as_deref(), &files, yes),
        Command::Set {
            options,
            value_file,
            value_stdin,
            idempotent,
            file,
            path,
            value,
        } => set::set_command(
            &global,
            &options,
            value_file,
            value_stdin,
            idempotent,
            &file,
            &path,
            value,
        ),
        Command::Unset {
            options,
            idempotent,
            file,
            path,
        } => set::set(&global, &options, &file, &path, None, idempotent),
        Command::ExecEnv {
            options,
            pristine,
            file,
            command,
        } => exec::exec_env(&options, &file, &command, pristine),
        Command::ExecFile {
            options,
            filename,
            file,
            command,
            ..
        } => exec::exec_file(&global, &options, &file, &command, &filename),
        Command::Filestatus { input_type, file } => {
            decrypt::filestatus(input_type.as_deref(), &file, out)
        }
    }
}
