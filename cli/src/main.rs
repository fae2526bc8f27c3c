//! The `gitseal` binary (also `kubeseal` and `sops` when invoked under those names).

use std::process::ExitCode;

use clap::Parser;

/// Parses the command line; usage errors exit with status 1 in kubeseal mode (as kubeseal
/// does) and 2 otherwise; `--help` exits with 0.
fn parse<T: Parser>(kubeseal: bool) -> Result<T, ExitCode> {
    T::try_parse().map_err(|error| {
        let _ = error.print();
        match (error.use_stderr(), kubeseal) {
            (false, _) => ExitCode::SUCCESS,
            (true, true) => ExitCode::FAILURE,
            (true, false) => ExitCode::from(2),
        }
    })
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let invoked_as = args
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let result = if invoked_as == "kubeseal" {
        match parse::<gitseal::kubeseal::Args>(true) {
            Ok(args) => gitseal::kubeseal::run(&args, &mut out),
            Err(code) => return code,
        }
    } else if invoked_as == "sops" {
        match parse::<gitseal::sops::Args>(false) {
            Ok(args) => gitseal::sops::run(args, &mut out).map_err(anyhow::Error::new),
            Err(code) => return code,
        }
    } else {
        let kubeseal = args.next().is_some_and(|a| a == "kubeseal");
        match parse::<gitseal::Cli>(kubeseal) {
            Ok(cli) => gitseal::run(cli, &mut out),
            Err(code) => return code,
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => gitseal::report(&error),
    }
}
