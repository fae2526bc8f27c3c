//! Reading the input, writing the output, and what the file name decides: formats,
//! layout, private temporary files.

use std::io::Write;
use std::path::Path;

use gitseal_crypto::sops::store::{Format, Layout};
use zeroize::Zeroizing;

use super::config::Config;
use super::{Exit, FileOptions, Global, code};

pub(super) fn read_input(file: Option<&Path>) -> Result<Zeroizing<Vec<u8>>, Exit> {
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
pub(super) fn write_output(
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
pub(super) fn name_of<'a>(options: &'a FileOptions, file: Option<&'a Path>) -> Option<&'a Path> {
    options.filename_override.as_deref().or(file)
}

pub(super) fn formats(options: &FileOptions, file: Option<&Path>) -> (Format, Format) {
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

pub(super) fn layout(global: &Global, config: Option<&Config>) -> Result<Layout, Exit> {
    let mut layout = config.map(Config::layout).transpose()?.unwrap_or_default();
    if let Some(indent) = global.indent {
        layout.yaml_indent = Some(indent);
        layout.json_indent = Some(indent);
        layout.json_binary_indent = Some(indent);
    }
    Ok(layout)
}

/// A private temporary directory, removed (with its plaintext) when dropped.
///
/// tempfile creates directories with the default mode (0777 less the umask), so the
/// owner-only mode is asked for explicitly; it is applied when the directory is created.
pub(super) fn private_dir() -> Result<tempfile::TempDir, Exit> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix("gitseal-sops-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|e| {
            Exit::new(
                code::COULD_NOT_WRITE_OUTPUT,
                format!("cannot create a private temporary directory: {e}"),
            )
        })
}

pub(super) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Exit> {
    crate::file::create_private_file(path, bytes)
        .map_err(|e| Exit::new(code::COULD_NOT_WRITE_OUTPUT, format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_is_owner_only_and_removed_on_drop() {
        use std::os::unix::fs::PermissionsExt;
        let dir = private_dir().unwrap();
        let path = dir.path().to_path_buf();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("gitseal-sops-"), "{name}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "mode {mode:o}");
        drop(dir);
        assert!(!path.exists());
    }
}
