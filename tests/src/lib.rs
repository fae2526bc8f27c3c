//! Support for gitseal's interoperability tests: where the shared upstream fixtures live,
//! how to find the external tools the test script installs, and a small reader of
//! sops-written files used to check the crypto crate against them.
//!
//! Tests that need `../shared` skip with a message when it is absent; tests that need an
//! external tool skip when it is missing, unless `GITSEAL_REQUIRE_TOOLS=1` (set by
//! `scripts/test.sh`), in which case a missing tool is a failure.

pub mod sopsdoc;

use std::path::{Path, PathBuf};

/// The shared fixtures directory: `$GITSEAL_SHARED`, else `shared/` beside the repository.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("GITSEAL_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    dir.join("fixtures").is_dir().then_some(dir)
}

/// The repository root.
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Returns the shared fixtures directory, or makes the calling test return early after
/// saying why.
#[macro_export]
macro_rules! require_shared {
    () => {
        match $crate::shared_dir() {
            Some(dir) => dir,
            None => {
                eprintln!(
                    "SKIPPED: ../shared/fixtures not found beside the repository \
                     (set GITSEAL_SHARED to its path); CI always has it"
                );
                return;
            }
        }
    };
}

/// Finds an external tool: the value of `env_var` if set, else `name` on `PATH`.
///
/// When it is missing, returns `None` after printing a skip notice, or panics when
/// `GITSEAL_REQUIRE_TOOLS=1`.
pub fn tool(name: &str, env_var: &str) -> Option<PathBuf> {
    let found = std::env::var_os(env_var).map(PathBuf::from).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    });
    found.or_else(|| {
        missing(&format!(
            "`{name}` not found (set {env_var} or put it on PATH)"
        ))
    })
}

/// Finds a tool given only through `env_var` (e.g. a Python interpreter with the oracle
/// packages installed), with the same skip-or-fail rule as [`tool`].
pub fn tool_from_env(env_var: &str, what: &str) -> Option<PathBuf> {
    let found = std::env::var_os(env_var).map(PathBuf::from);
    found.or_else(|| missing(&format!("{env_var} is not set: it names {what}")))
}

fn missing(message: &str) -> Option<PathBuf> {
    let message = format!("{message}; scripts/test.sh installs it");
    if std::env::var("GITSEAL_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// Runs `command` with `stdin` as its standard input and returns what it did.
pub fn output_with_stdin(
    command: &mut std::process::Command,
    stdin: &[u8],
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    // A command that fails before reading its input (a usage error) may exit before the
    // input is written, closing the pipe; its status and output are what callers check.
    if let Err(error) = child.stdin.take().expect("piped stdin").write_all(stdin) {
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::BrokenPipe,
            "write stdin: {error}"
        );
    }
    child.wait_with_output().expect("wait for the child")
}

/// Runs `command` with `stdin` as its standard input and returns its standard output,
/// panicking with its standard error if it fails.
pub fn run_with_stdin(command: &mut std::process::Command, stdin: &[u8]) -> Vec<u8> {
    let output = output_with_stdin(command, stdin);
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `plain` (a JSON document) encrypted in-process as `sops encrypt --age <recipient>
/// --encrypted-suffix <suffix>` would, with a fresh data key: for tests and benchmarks that
/// need many encrypted objects quickly (the real sops is checked against the same code in
/// the interop tests).
pub fn sops_encrypt_json(
    plain: &serde_json::Value,
    recipient: &str,
    suffix: &str,
) -> serde_json::Value {
    use gitseal_crypto::DataKey;
    use gitseal_crypto::keys::age::wrap;
    use gitseal_crypto::sops::file;
    use gitseal_crypto::sops::metadata::{AgeKey, KeyGroup, Metadata};
    use gitseal_crypto::sops::store::Format;
    use gitseal_crypto::sops::walk::Selection;

    let bytes = serde_json::to_vec(plain).expect("JSON serializes");
    let mut tree = Format::Json.parse_plain(&bytes).expect("a JSON document");
    let key = DataKey::generate();
    let mut metadata = Metadata {
        selection: Selection::EncryptedSuffix(suffix.to_owned()),
        key_groups: vec![KeyGroup {
            age: vec![AgeKey {
                enc: wrap(key.expose(), recipient).expect("an age recipient"),
                recipient: recipient.to_owned(),
            }],
            ..KeyGroup::default()
        }],
        ..Metadata::default()
    };
    file::seal(&mut tree, &mut metadata, &key, None).expect("encrypts");
    let encrypted = Format::Json
        .emit_encrypted(&tree, &metadata, &Default::default())
        .expect("writes JSON");
    serde_json::from_slice(&encrypted).expect("sops JSON parses")
}
