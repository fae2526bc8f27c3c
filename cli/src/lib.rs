//! The `gitseal` command-line tool. One module per subcommand; `main.rs` only parses
//! arguments, runs the subcommand and turns its error into an exit status.

pub mod demo;

use clap::{Parser, Subcommand};

/// Seal, encrypt and check Kubernetes secrets for GitOps repositories.
#[derive(Debug, Parser)]
#[command(name = "gitseal", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Seal and unseal a demo Secret end to end with a freshly generated key.
    #[command(after_help = demo::EXAMPLES)]
    Demo(demo::Args),
}

/// Runs the parsed command line, writing its output to `out`.
pub fn run(cli: Cli, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(&args, out),
    }
}
