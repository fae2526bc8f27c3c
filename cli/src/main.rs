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

/// The drop-in command lines, parsed alone: a one-shot `sops decrypt` or `kubeseal` is a
/// few milliseconds, and building gitseal's whole command tree would be a tenth of them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Kubeseal,
    Sops,
    Ksops,
    Gitseal,
}

impl Mode {
    fn of(name: &str) -> Option<Mode> {
        match name {
            "kubeseal" => Some(Mode::Kubeseal),
            "sops" => Some(Mode::Sops),
            "ksops" => Some(Mode::Ksops),
            _ => None,
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
    // Invoked under a drop-in's name (a symlink), or `gitseal kubeseal|sops|ksops ...`: the
    // latter parsed as the drop-in, named `gitseal <subcommand>` in usage and errors.
    let mode = match Mode::of(&invoked_as) {
        Some(mode) => mode,
        None => match args.get(1).and_then(|a| a.to_str()).and_then(Mode::of) {
            Some(mode) => {
                let name = format!("gitseal {}", args[1].to_string_lossy());
                args.splice(..2, [OsString::from(name)]);
                mode
            }
            None => Mode::Gitseal,
        },
    };
    let mut out = Stdout(Some(std::io::stdout().lock()));
    let result = match mode {
        Mode::Kubeseal => match parse::<gitseal::kubeseal::Args>(args, true) {
            Ok(args) => gitseal::kubeseal::run(&args, &mut out),
            Err(code) => return code,
        },
        Mode::Sops => match parse::<gitseal::sops::Args>(args, false) {
            Ok(args) => gitseal::sops::run(args, &mut out).map_err(anyhow::Error::new),
            Err(code) => return code,
        },
        Mode::Ksops => match parse::<gitseal::ksops::Args>(args, false) {
            Ok(args) => gitseal::ksops::run(&args, &mut out),
            Err(code) => return code,
        },
        Mode::Gitseal => match parse::<gitseal::Cli>(args, false) {
            Ok(cli) => gitseal::run(cli, &mut out),
            Err(code) => return code,
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => gitseal::report(&error),
    }
}
