//! The `gitseal` command-line tool. One module per subcommand; `main.rs` only parses
//! arguments, runs the subcommand and turns its error into an exit status.
//!
//! The binary is multi-call: invoked as `kubeseal` (e.g. through a symlink) it is the
//! kubeseal-compatible tool, the same as `gitseal kubeseal`; as `sops`, `gitseal sops`; as
//! `ksops`, `gitseal ksops` (the kustomize plugin).

pub mod cert;
pub mod check;
pub mod cluster;
pub mod demo;
pub mod file;
pub mod ksops;
pub mod kubeseal;
pub mod manifest;
pub mod render;
pub mod reseal;
pub mod seal;
pub mod sealing;
pub mod sops;

use clap::{Parser, Subcommand};

/// Seal, encrypt and check Kubernetes secrets for GitOps repositories.
#[derive(Parser)]
#[command(name = "gitseal", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Seal and unseal a demo Secret end to end with a freshly generated key.
    #[command(after_help = demo::EXAMPLES)]
    Demo(demo::Args),
    /// Seal Secret manifests into SealedSecrets that are safe to commit.
    #[command(after_help = seal::EXAMPLES)]
    Seal(seal::Args),
    /// Re-encrypt every SealedSecret under the given paths to a new certificate, in place.
    #[command(after_help = reseal::EXAMPLES)]
    Reseal(reseal::Args),
    /// Print an app's manifests with SOPS resources decrypted and SealedSecrets unsealed
    /// (an Argo CD Config Management Plugin's `generate`).
    #[command(after_help = render::EXAMPLES)]
    Render(render::Args),
    /// Fail on plaintext Secret manifests and unencrypted SOPS files (pre-commit, CI).
    #[command(after_help = check::EXAMPLES)]
    Check(check::Args),
    /// Show or describe the controller certificate.
    #[command(after_help = cert::EXAMPLES)]
    Cert(cert::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Bitnami kubeseal's command line, flag for flag.
    #[command(after_help = kubeseal::EXAMPLES, disable_version_flag = true)]
    Kubeseal(Box<kubeseal::Args>),
    /// The sops command line: encrypt, decrypt, edit, rotate, set... SOPS files.
    #[command(after_help = sops::EXAMPLES, disable_version_flag = true)]
    Sops(Box<sops::Args>),
    /// kustomize's ksops generator: decrypt SOPS files into manifests and Secrets.
    #[command(after_help = ksops::EXAMPLES)]
    Ksops(ksops::Args),
    /// Generate an age identity (as age-keygen does) for `gitseal sops`.
    #[command(after_help = KEYGEN_EXAMPLES)]
    Keygen {
        /// Write the identity to this file (created with mode 0600) instead of stdout.
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
    },
}

const KEYGEN_EXAMPLES: &str = "\
Examples:
  gitseal keygen -o ~/.config/sops/age/keys.txt
  gitseal keygen | tee key.txt | grep 'public key'";

/// Runs the parsed command line, writing its output to `out`.
pub fn run(cli: Cli, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(&args, out),
        Command::Kubeseal(args) => kubeseal::run(&args, out),
        Command::Seal(args) => seal::run(&args, out),
        Command::Reseal(args) => reseal::run(&args, out),
        Command::Cert(args) => cert::run(&args, out),
        Command::Check(args) => check::run(&args, out),
        Command::Render(args) => render::run(&args, out),
        Command::Sops(args) => sops::run(*args, out).map_err(anyhow::Error::new),
        Command::Ksops(args) => ksops::run(&args, out),
        Command::Keygen { output } => keygen(output.as_deref(), out),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "gitseal", out);
            Ok(())
        }
    }
}

/// Writes a new age identity with its public key, as `age-keygen` does.
fn keygen(output: Option<&std::path::Path>, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let identity = gitseal_crypto::keys::age::AgeIdentities::generate();
    let recipient = identity.recipients().remove(0);
    let created = gitseal_crypto::sops::metadata::now();
    let text = zeroize::Zeroizing::new(format!(
        "# created: {created}\n# public key: {recipient}\n{}",
        identity.to_text().as_str()
    ));
    match output {
        Some(path) => {
            file::create_private_file(path, text.as_bytes())?;
            eprintln!("Public key: {recipient}");
        }
        None => out.write_all(text.as_bytes())?,
    }
    Ok(())
}

/// Prints an error as kubeseal does (`error: …` on standard error), with a hint when one
/// helps, and returns exit status 1.
pub fn report(error: &anyhow::Error) -> std::process::ExitCode {
    if let Some(exit) = error.downcast_ref::<sops::Exit>() {
        let message = exit.to_string();
        if !message.is_empty() {
            eprintln!("{message}");
        }
        return std::process::ExitCode::from(exit.code);
    }
    eprintln!("error: {error:#}");
    if let Some(failure) = error.downcast_ref::<sealing::RecoveryFailure>() {
        eprintln!("hint: {}", failure.hint());
    }
    std::process::ExitCode::FAILURE
}
