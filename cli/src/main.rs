//! The `gitseal` binary (also `kubeseal`, `sops` and `ksops` when invoked under those names).

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Parses the command line; usage errors exit with status 1 in kubeseal mode (as kubeseal
/// does) and 2 otherwise; `--help` exits with 0.
fn parse<T: Parser>(args: Vec<OsString>, kubeseal: bool) -> Result<T, ExitCode> {
    T::try_parse_from(args).map_err(|error| {
        let _ = error.print();
        match (error.use_stderr(), kubeseal) {
            (false, _) => ExitCode::SUCCESS,
            (true, true) => ExitCode::FAILURE,
            (true, false) => ExitCode::from(2),
        }
    })
}

/// Standard output that ends quietly when its reader goes away (`gitseal … | head`):
/// after a broken pipe, output is discarded instead of failing the command.
struct Stdout<W>(Option<W>);

impl<W: Write> Write for Stdout<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let Some(out) = &mut self.0 else {
            return Ok(bytes.len());
        };
        match out.write(bytes) {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                self.0 = None;
                Ok(bytes.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.as_mut().map(Write::flush) {
            Some(Err(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                self.0 = None;
                Ok(())
            }
            Some(other) => other,
            None => Ok(()),
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .map(std::path::Path::new)
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    // `gitseal kubeseal ...` is parsed as the drop-in is, without building the whole command
    // tree: a one-shot seal is a few milliseconds, and that tree would be a tenth of them.
    let kubeseal = invoked_as == "kubeseal"
        || (invoked_as != "sops"
            && invoked_as != "ksops"
            && args.get(1).is_some_and(|a| a == "kubeseal"));
    if invoked_as != "kubeseal" && kubeseal {
        args.splice(..2, [OsString::from("gitseal kubeseal")]);
    }
    let mut out = Stdout(Some(std::io::stdout().lock()));
    let result = if kubeseal {
        match parse::<gitseal::kubeseal::Args>(args, true) {
            Ok(args) => gitseal::kubeseal::run(&args, &mut out),
            Err(code) => return code,
        }
    } else if invoked_as == "sops" {
        match parse::<gitseal::sops::Args>(args, false) {
            Ok(args) => gitseal::sops::run(args, &mut out).map_err(anyhow::Error::new),
            Err(code) => return code,
        }
    } else if invoked_as == "ksops" {
        match parse::<gitseal::ksops::Args>(args, false) {
            Ok(args) => gitseal::ksops::run(&args, &mut out),
            Err(code) => return code,
        }
    } else {
        match parse::<gitseal::Cli>(args, false) {
            Ok(cli) => gitseal::run(cli, &mut out),
            Err(code) => return code,
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => gitseal::report(&error),
    }
}
