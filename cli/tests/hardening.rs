//! Hostile and unusual input, through the real binary: writes that keep what their target
//! is, bounded reads, errors that never quote a manifest, `--merge-into` that never loses a
//! document, no readable plaintext left by a killed write, and quiet ends on closed pipes.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use gitseal_crypto::sealed::{Certificate, PrivateKey};

/// A scratch directory with an age identity and a controller certificate.
struct Env {
    dir: tempfile::TempDir,
    recipient: String,
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {password: hunter2-plaintext}\n";

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys.txt");
        let output = Command::new(env!("CARGO_BIN_EXE_gitseal"))
            .args(["keygen", "-o"])
            .arg(&keys)
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = std::fs::read_to_string(&keys).unwrap();
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap()
            .to_owned();
        let key = PrivateKey::generate(2048).unwrap();
        let day = std::time::Duration::from_secs(86_400);
        let cert =
            Certificate::self_signed(&key, "gitseal-test", std::time::SystemTime::now(), day)
                .unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.to_pem()).unwrap();
        Self { dir, recipient }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gitseal"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("SOPS_AGE_KEY_FILE", self.path("keys.txt"))
            .env("XDG_CONFIG_HOME", self.path("none"))
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_CONFIG")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Runs a command that must fail, and returns its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        stderr
    }

    /// A SOPS file `name` encrypted to the environment's age identity.
    fn encrypted(&self, name: &str, plain: &str) {
        std::fs::write(self.path(name), plain).unwrap();
        self.encrypt_in_place(name);
    }

    fn encrypt_in_place(&self, name: &str) {
        self.ok(&["sops", "encrypt", "-i", "--age", &self.recipient, name]);
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .unwrap()
        .file_type()
        .is_symlink()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn writes_keep_mode_links_and_devices() {
    let env = Env::new();
    env.encrypted("secret.yaml", "password: hunter2-plaintext\n");

    // A 0600 file stays 0600 through decrypt -i and encrypt -i.
    std::fs::set_permissions(env.path("secret.yaml"), PermissionsExt::from_mode(0o600)).unwrap();
    env.ok(&["sops", "decrypt", "-i", "secret.yaml"]);
    assert_eq!(mode(&env.path("secret.yaml")), 0o600);
    env.encrypt_in_place("secret.yaml");
    assert_eq!(mode(&env.path("secret.yaml")), 0o600);

    // A symbolic link stays a link; its target gets the output.
    std::os::unix::fs::symlink("secret.yaml", env.path("link.yaml")).unwrap();
    env.ok(&["sops", "decrypt", "-i", "link.yaml"]);
    assert!(is_link(&env.path("link.yaml")));
    assert_eq!(
        std::fs::read_to_string(env.path("secret.yaml")).unwrap(),
        "password: hunter2-plaintext\n"
    );

    // seal -o and kubeseal -w through a link, too.
    std::fs::write(env.path("in.yaml"), SECRET).unwrap();
    std::fs::write(env.path("sealed-target.yaml"), "").unwrap();
    std::os::unix::fs::symlink("sealed-target.yaml", env.path("sealed.yaml")).unwrap();
    env.ok(&["seal", "in.yaml", "--cert", "cert.pem", "-o", "sealed.yaml"]);
    assert!(is_link(&env.path("sealed.yaml")));
    let sealed = std::fs::read_to_string(env.path("sealed-target.yaml")).unwrap();
    assert!(sealed.contains("kind: SealedSecret"), "{sealed}");

    // A file with two hard links is refused and left alone (replacing it breaks the link).
    std::fs::hard_link(env.path("sealed-target.yaml"), env.path("hard.yaml")).unwrap();
    let error = env.fails(&[
        "kubeseal",
        "--cert",
        "cert.pem",
        "-f",
        "in.yaml",
        "-w",
        "hard.yaml",
    ]);
    assert!(error.contains("hard links"), "{error}");
    assert_eq!(
        std::fs::read_to_string(env.path("hard.yaml")).unwrap(),
        sealed
    );

    // /dev/stdout is written, not replaced.
    env.encrypt_in_place("secret.yaml");
    let out = env.ok(&["sops", "decrypt", "--output", "/dev/stdout", "secret.yaml"]);
    assert_eq!(out, b"password: hunter2-plaintext\n");

    // A character device stays a device (root only: mknod).
    let device = env.path("null");
    let made = Command::new("mknod")
        .arg(&device)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    if made {
        env.ok(&["sops", "decrypt", "--output", "null", "secret.yaml"]);
        let meta = std::fs::symlink_metadata(&device).unwrap();
        assert!(meta.file_type().is_char_device(), "the device was replaced");
    } else {
        eprintln!("SKIPPED: the character-device case needs mknod (root)");
    }
    assert!(leftovers(env.dir.path()).is_empty());
}

#[test]
fn killed_writes_leave_no_readable_plaintext_and_are_cleaned_up() {
    let env = Env::new();
    // Large enough that the temporary file exists for a while.
    let plain: String = (0..200_000)
        .map(|i| format!("key{i}: value-{i}\n"))
        .collect();
    env.encrypted("big.yaml", &plain);
    let mut caught = None;
    for _ in 0..20 {
        let mut child = env
            .command(&["sops", "decrypt", "-i", "big.yaml"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let temporary = env.path(&format!(".big.yaml.{}.tmp", child.id()));
        while child.try_wait().unwrap().is_none() {
            if temporary.exists() {
                child.kill().unwrap();
                break;
            }
        }
        child.wait().unwrap();
        if temporary.exists() {
            caught = Some(temporary);
            break;
        }
        // The run finished: encrypt again and retry.
        env.encrypt_in_place("big.yaml");
    }
    let Some(temporary) = caught else {
        panic!("never caught a write in progress in 20 runs");
    };
    assert_eq!(
        mode(&temporary),
        0o600,
        "the killed write left a readable file"
    );
    // The next write to the same file removes what the killed one left.
    env.ok(&["sops", "decrypt", "--output", "big.yaml", "big.yaml"]);
    assert!(!temporary.exists());
    assert!(leftovers(env.dir.path()).is_empty());
}

#[test]
fn manifest_errors_show_positions_never_text() {
    let env = Env::new();
    let broken = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: hunter2-plaintext\n  token: [unclosed hunter2-token\n";
    std::fs::write(env.path("broken.yaml"), broken).unwrap();
    std::fs::write(env.path("in.yaml"), SECRET).unwrap();
    let sealed = env.ok(&["seal", "in.yaml", "--cert", "cert.pem"]);
    std::fs::write(env.path("sealed.yaml"), &sealed).unwrap();
    let wrong_type = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: [hunter2-plaintext]\n";
    std::fs::write(env.path("wrong-type.yaml"), wrong_type).unwrap();
    for args in [
        &["seal", "broken.yaml", "--cert", "cert.pem"][..],
        &["kubeseal", "--cert", "cert.pem", "-f", "broken.yaml"],
        &[
            "kubeseal",
            "--cert",
            "cert.pem",
            "-f",
            "broken.yaml",
            "--merge-into",
            "sealed.yaml",
        ],
        &[
            "kubeseal",
            "--cert",
            "cert.pem",
            "-f",
            "in.yaml",
            "--merge-into",
            "broken.yaml",
        ],
        &["seal", "wrong-type.yaml", "--cert", "cert.pem"],
    ] {
        let error = env.fails(args);
        assert!(
            !error.contains("hunter2"),
            "{args:?} printed a secret: {error}"
        );
        assert!(
            error.contains("line") || error.contains("stringData"),
            "{args:?}: {error}"
        );
    }
    assert_eq!(std::fs::read(env.path("sealed.yaml")).unwrap(), sealed);
}

#[test]
fn merge_into_takes_one_sealed_secret_and_nothing_else() {
    let env = Env::new();
    std::fs::write(env.path("in.yaml"), SECRET).unwrap();
    let sealed = String::from_utf8(env.ok(&["seal", "in.yaml", "--cert", "cert.pem"])).unwrap();
    let configmap = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n";
    let other = sealed.replace("name: db", "name: other");
    let targets = [
        ("several.yaml", format!("{sealed}{other}{configmap}")),
        ("configmap.yaml", configmap.to_owned()),
        ("plain.yaml", SECRET.to_owned()),
        ("empty.yaml", String::new()),
    ];
    std::fs::write(env.path("new.yaml"), SECRET.replace("password", "api-key")).unwrap();
    for (name, text) in &targets {
        std::fs::write(env.path(name), text).unwrap();
        let error = env.fails(&[
            "kubeseal",
            "--cert",
            "cert.pem",
            "-f",
            "new.yaml",
            "--merge-into",
            name,
        ]);
        assert!(
            error.contains("exactly one SealedSecret"),
            "{name}: {error}"
        );
        assert_eq!(
            &std::fs::read_to_string(env.path(name)).unwrap(),
            text,
            "{name} changed"
        );
    }
    std::fs::write(env.path("one.yaml"), &sealed).unwrap();
    env.ok(&[
        "kubeseal",
        "--cert",
        "cert.pem",
        "-f",
        "new.yaml",
        "--merge-into",
        "one.yaml",
    ]);
    let merged = std::fs::read_to_string(env.path("one.yaml")).unwrap();
    assert!(
        merged.contains("\"api-key\"") && merged.contains("\"password\""),
        "{merged}"
    );
}

#[test]
fn inputs_are_bounded() {
    let env = Env::new();
    for args in [
        &["sops", "decrypt", "/dev/zero"][..],
        &["sops", "filestatus", "/dev/zero"],
        &["seal", "--cert", "/dev/zero"],
        &["kubeseal", "--cert", "/dev/zero", "-f", "/dev/zero"],
        &["kubeseal", "--cert", "cert.pem", "-f", "/dev/zero"],
    ] {
        let error = env.fails(args);
        assert!(error.contains("larger than"), "{args:?}: {error}");
    }

    // A certificate URL whose body never ends.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cert.pem", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
        let chunk = vec![b'A'; 64 << 10];
        // Bounded: stops when the client hangs up, or after 1 GiB.
        for _ in 0..(1 << 14) {
            if stream.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    std::fs::write(env.path("in.yaml"), SECRET).unwrap();
    let error = env.fails(&["seal", "in.yaml", "--cert", &url]);
    assert!(error.contains("larger than"), "{error}");
    server.join().unwrap();
}

#[test]
fn closed_pipes_end_commands_quietly() {
    let env = Env::new();
    let plain: String = (0..50_000).map(|i| format!("key{i}: value\n")).collect();
    env.encrypted("secret.yaml", &plain);
    for args in [
        &["completions", "bash"][..],
        &["sops", "decrypt", "secret.yaml"],
        &["kubeseal", "--cert", "cert.pem", "--fetch-cert"],
    ] {
        let mut child = env
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{args:?}: {:?} {stderr}",
            output.status
        );
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// The CLI side of the leak checks: every command at its most verbose (`--verbose`, which
/// sops takes; gitseal logs nothing), succeeding and failing — a tampered file, the wrong
/// key, a bad path, a failing command under `exec-env` — never writes a value to standard
/// error, plain or base64, and only `decrypt` writes one to standard output.
#[test]
fn verbose_commands_and_their_failures_never_print_a_value() {
    use base64::Engine;
    let env = Env::new();
    let value = "hunter2-plaintext";
    let values = [
        value.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(value),
    ];
    std::fs::write(env.path("in.yaml"), SECRET).unwrap();
    env.encrypted("secret.enc.yaml", SECRET);
    let encrypted = std::fs::read_to_string(env.path("secret.enc.yaml")).unwrap();
    let tampered = encrypted.replacen("data:", "data:AA", 1);
    std::fs::write(env.path("tampered.enc.yaml"), tampered).unwrap();
    std::fs::write(env.path("other-keys.txt"), "").unwrap();
    let succeed: &[&[&str]] = &[
        &[
            "sops",
            "--verbose",
            "encrypt",
            "--age",
            &env.recipient,
            "in.yaml",
        ],
        &["sops", "--verbose", "decrypt", "secret.enc.yaml"],
        &["sops", "--verbose", "exec-env", "secret.enc.yaml", "true"],
        &["sops", "--verbose", "filestatus", "secret.enc.yaml"],
        &["seal", "in.yaml", "--cert", "cert.pem"],
        &["kubeseal", "--cert", "cert.pem", "-f", "in.yaml"],
    ];
    let fail: &[&[&str]] = &[
        &["sops", "--verbose", "decrypt", "tampered.enc.yaml"],
        &[
            "sops",
            "--verbose",
            "decrypt",
            "--extract",
            "[\"nope\"]",
            "secret.enc.yaml",
        ],
        &["sops", "--verbose", "exec-env", "secret.enc.yaml", "false"],
        &[
            "sops",
            "--verbose",
            "encrypt",
            "--age",
            "age1invalid",
            "in.yaml",
        ],
        &["sops", "--verbose", "decrypt", "missing.yaml"],
    ];
    let check = |args: &[&str], output: &Output| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        for value in &values {
            assert!(!stderr.contains(value.as_str()), "{args:?}: {stderr}");
            if args[..3] != ["sops", "--verbose", "decrypt"] {
                assert!(!stdout.contains(value.as_str()), "{args:?}: {stdout}");
            }
        }
    };
    for args in succeed {
        let output = env.run(args);
        assert!(output.status.success(), "{args:?}");
        check(args, &output);
    }
    for args in fail {
        let output = env.run(args);
        assert!(!output.status.success(), "{args:?} succeeded");
        check(args, &output);
    }
    // The right file with the wrong key.
    let output = env
        .command(&["sops", "--verbose", "decrypt", "secret.enc.yaml"])
        .env("SOPS_AGE_KEY_FILE", env.path("other-keys.txt"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    check(&["sops", "--verbose", "decrypt-wrong-key"], &output);
}
