//! The `gitseal` binary.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = gitseal::Cli::parse();
    match gitseal::run(cli, &mut std::io::stdout().lock()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
