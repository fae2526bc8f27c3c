//! Hostile input for `gitseal check`, `reseal` and `cert`, run as a process (issue 12):
//! the guard fails closed, reseal writes all files or none, dates before 1970 are shown.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use gitseal_crypto::sealed::{Certificate, Keyring, PrivateKey};
use serde_json::Value;

/// What a finished gitseal run did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Standard output and error together.
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs gitseal with `args`, killing it (and failing) if it has not finished in a minute:
/// a guard that hangs on a FIFO is as broken as one that passes it.
fn gitseal(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitseal"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("gitseal {args:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    Run {
        code: status.code(),
        stdout: read(&out),
        stderr: read(&err),
    }
}

fn ok(args: &[&str]) -> String {
    let run = gitseal(args);
    assert_eq!(run.code, Some(0), "{args:?}: {}", run.all());
    run.stdout
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {password: hunter2}\n";

/// Writes `bytes` to `dir/name`, making directories.
fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Asserts that `check` on `paths` fails and reports each `(file name, reason)`, without
/// showing the plaintext value of the test Secret.
fn assert_reported(paths: &[&Path], expected: &[(&str, &str)]) {
    let args: Vec<&str> = std::iter::once("check")
        .chain(paths.iter().map(|p| arg(p)))
        .collect();
    let run = gitseal(&args);
    assert_eq!(run.code, Some(1), "{}", run.all());
    for (name, reason) in expected {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.contains(&format!("{name}: ")) && l.contains(reason)),
            "no {reason:?} for {name}:\n{}",
            run.all()
        );
    }
    assert!(!run.all().contains("hunter2"), "{}", run.all());
}

#[test]
fn check_reports_files_it_cannot_check() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // Root reads any file, so an unreadable file is one whose read fails: /proc/self/mem
    // fails at offset 0 with EIO for every user.
    let unreadable = dir.join("unreadable.yaml");
    std::os::unix::fs::symlink("/proc/self/mem", &unreadable).unwrap();
    let mut latin1 = b"# caf\xe9\n".to_vec();
    latin1.extend_from_slice(SECRET.as_bytes());
    let not_utf8 = write(dir, "latin1.yaml", latin1);
    let duplicate = write(dir, "duplicate.yaml", format!("{SECRET}stringData: {{}}\n"));
    let deep_yaml = write(
        dir,
        "deep.yaml",
        format!(
            "{SECRET}---\nx: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    let deep_json = write(
        dir,
        "deep.json",
        format!(
            "{{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"stringData\": {{\"password\": \"hunter2\"}}, \"x\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    let fifo = dir.join("fifo.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    assert_reported(
        &[
            &unreadable,
            &not_utf8,
            &duplicate,
            &deep_yaml,
            &deep_json,
            &fifo,
        ],
        &[
            ("unreadable.yaml", "cannot be checked: "),
            ("latin1.yaml", "cannot be checked: "),
            ("latin1.yaml", "UTF-8"),
            ("duplicate.yaml", "cannot be checked: "),
            ("deep.yaml", "cannot be checked: "),
            ("deep.json", "cannot be checked: "),
            ("fifo.yaml", "cannot be checked: not a regular file"),
        ],
    );

    // Over the manifest limit: a plaintext Secret next to a ConfigMap of 64 MiB.
    let big = dir.join("big.yaml");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        write!(
            file,
            "{SECRET}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata:\n  blob: "
        )
        .unwrap();
        let line = "x".repeat(1 << 20);
        for _ in 0..64 {
            file.write_all(line.as_bytes()).unwrap();
        }
        file.write_all(b"\n").unwrap();
    }
    assert_reported(
        &[&big],
        &[(
            "big.yaml",
            "cannot be checked: larger than 64 MiB, the maximum for a manifest",
        )],
    );

    // In a directory walk too, with a summary that says what happened.
    std::fs::remove_file(&big).unwrap();
    let run = gitseal(&["check", arg(dir)]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    for name in ["latin1.yaml", "duplicate.yaml", "deep.yaml", "deep.json"] {
        assert!(run.stdout.contains(name), "{name}: {}", run.all());
    }
    assert!(
        run.stderr.contains("4 file(s) that cannot be checked"),
        "{}",
        run.all()
    );
}

#[test]
fn check_finds_secrets_in_lists_and_templates_and_never_trusts_sops_text() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let secret_item = "{apiVersion: v1, kind: Secret, metadata: {name: listed, namespace: prod}, stringData: {password: hunter2}}";
    let list = write(
        dir,
        "list.yaml",
        format!(
            "apiVersion: v1\nkind: List\nitems:\n- {{apiVersion: v1, kind: ConfigMap}}\n- {secret_item}\n"
        ),
    );
    let nested = write(
        dir,
        "nested.yaml",
        format!(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: [{secret_item}]\n"
        ),
    );
    let secret_list = write(
        dir,
        "secrets.json",
        r#"{"apiVersion": "v1", "kind": "SecretList", "items": [{"metadata": {"name": "api", "namespace": "prod"}, "data": {"password": "aHVudGVyMg=="}}]}"#,
    );
    // "[sops]" and "sops_mac=" as text in a value do not make a file encrypted.
    let block = write(
        dir,
        "block.yaml",
        format!("{SECRET}data:\n  notes: |\n    [sops]\n    sops_mac=ENC[AES256_GCM,data:x]\n"),
    );
    let notes = write(
        dir,
        "notes.enc.yaml",
        "password: hunter2\nnotes: |\n  [sops]\n  sops_mac=ENC[AES256_GCM,data:x]\n",
    );
    let env = write(dir, "app.enc.env", "PASSWORD=hunter2\nNOTE=[sops]\n");
    let ini = write(dir, "app.enc.ini", "[sops]\npassword = hunter2\n");
    let fake = write(
        dir,
        "fake.enc.yaml",
        "password: hunter2\nsops: {note: not metadata}\n",
    );
    // A Helm template with a literal value: its actions are replaced, the value is found.
    let template = write(
        dir,
        "chart/templates/secret.yaml",
        "{{- if .Values.enabled }}\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\nstringData:\n  password: hunter2\n{{- end }}\n",
    );
    // A Secret next to a large ConfigMap.
    let mut large =
        format!("{SECRET}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata:\n");
    for i in 0..20_000 {
        large.push_str(&format!("  key{i}: value{i}\n"));
    }
    let large = write(dir, "large.yaml", large);
    assert_reported(
        &[
            &list,
            &nested,
            &secret_list,
            &block,
            &notes,
            &env,
            &ini,
            &fake,
            &template,
            &large,
        ],
        &[
            ("list.yaml", "Secret prod/listed holds plaintext data"),
            ("nested.yaml", "Secret prod/listed holds plaintext data"),
            ("secrets.json", "Secret prod/api holds plaintext data"),
            ("block.yaml", "Secret prod/db holds plaintext data"),
            ("notes.enc.yaml", "not SOPS-encrypted"),
            ("app.enc.env", "not SOPS-encrypted"),
            ("app.enc.ini", "not SOPS-encrypted"),
            ("fake.enc.yaml", "not SOPS-encrypted"),
            (
                "secret.yaml",
                "Secret ?/gitseal-template-action holds plaintext data",
            ),
            ("large.yaml", "Secret prod/db holds plaintext data"),
        ],
    );

    // Templated values are not plaintext; a template that cannot be read as YAML is
    // reported.
    let clean = tempfile::tempdir().unwrap();
    write(
        clean.path(),
        "templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  password: {{ .Values.password | b64enc | quote }}\n{{- with .Values.extra }}\n  {{- toYaml . | nindent 2 }}\n{{- end }}\n",
    );
    assert!(ok(&["check", arg(clean.path())]).is_empty());
    let broken = write(
        dir,
        "broken/secret.yaml",
        "kind: Secret\nstringData:\n  {{ if .X }}password: hunter2: [\n",
    );
    assert_reported(&[&broken], &[("secret.yaml", "cannot be checked: ")]);
}

#[test]
fn check_reports_a_sops_config_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(
        dir,
        ".sops.yaml",
        "creation_rules:\n  - path_regex: secrets/(\n    age: age1xyz\n",
    );
    write(dir, "secrets/app.yaml", "token: abc\n");
    let run = gitseal(&["check", arg(dir)]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stdout.contains(
            ".sops.yaml: cannot be checked: the path_regex of creation rule 1 is invalid"
        ),
        "{}",
        run.all()
    );
    write(dir, ".sops.yaml", "creation_rules: [\n");
    let run = gitseal(&["check", arg(dir)]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stdout.contains(".sops.yaml: cannot be checked: "),
        "{}",
        run.all()
    );
}

#[test]
fn check_finds_sops_metadata_in_every_format() {
    let Some(shared) = gitseal_tests::shared_dir() else {
        eprintln!("SKIPPED: the shared fixtures are not available");
        return;
    };
    let fixtures = shared.join("fixtures/sops/generated-sops-3.11.0/enc");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    assert!(ok(&["check", arg(dir.path())]).is_empty());
}

/// A key and a self-signed certificate, written as PEM files `NAME.key` and `NAME.pem`.
fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, PrivateKey) {
    let key = PrivateKey::generate(2048).unwrap();
    let cert = Certificate::self_signed(
        &key,
        name,
        std::time::SystemTime::now(),
        Duration::from_secs(86_400),
    )
    .unwrap();
    let key_path = write(
        dir,
        &format!("{name}.key"),
        key.to_pkcs1_pem().unwrap().as_bytes(),
    );
    let cert_path = write(dir, &format!("{name}.pem"), cert.to_pem());
    (key_path, cert_path, key)
}

#[test]
fn reseal_checks_every_target_before_writing_any() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (old_key, old_cert, _) = key_pair(dir, "old");
    let (new_key, new_cert, new) = key_pair(dir, "new");
    let sealed = {
        let output = gitseal_tests::output_with_stdin(
            Command::new(env!("CARGO_BIN_EXE_gitseal")).args(["seal", "--cert", arg(&old_cert)]),
            SECRET.as_bytes(),
        );
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let first = write(dir, "a/db.yaml", &sealed);
    let second = write(dir, "b/db.yaml", &sealed);
    // write_atomic refuses a file with several hard links, even for root.
    std::fs::hard_link(&second, dir.join("db-link.yaml")).unwrap();
    let keys = format!("{},{}", old_key.display(), new_key.display());
    let (a, b) = (dir.join("a"), dir.join("b"));
    let args = [
        "reseal",
        arg(&a),
        arg(&b),
        "--cert",
        arg(&new_cert),
        "--private-key",
        &keys,
    ];
    let run = gitseal(&args);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let read = |path: &Path| std::fs::read_to_string(path).unwrap();
    assert!(read(&first) == sealed, "a/ was written: {}", run.all());
    assert!(read(&second) == sealed);
    assert!(
        run.stdout.contains(&format!(
            "failed: cannot write {}: it has 2 hard links",
            second.display()
        )),
        "{}",
        run.all()
    );
    assert!(
        run.stderr
            .contains("nothing was written because 1 file(s) cannot be written"),
        "{}",
        run.all()
    );

    // --keep-going writes the others, and says which files were not written.
    let mut keep_going = args.to_vec();
    keep_going.push("--keep-going");
    let run = gitseal(&keep_going);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(read(&second) == sealed);
    let text = read(&first);
    let document: Value = serde_saphyr::from_str(&text).unwrap();
    let value = document["spec"]["encryptedData"]["password"]
        .as_str()
        .unwrap();
    let keyring = Keyring::new(vec![new]);
    assert_eq!(
        keyring.unseal(b"prod/db", value).unwrap().expose(),
        b"hunter2"
    );
    assert!(
        run.stdout
            .contains(&format!("not written: {}", second.display()))
            && run
                .stdout
                .contains("resealed 1 value(s) in 1 file(s); 2 file(s) scanned, 1 failed"),
        "{}",
        run.all()
    );
}

#[test]
fn cert_info_shows_dates_before_1970_and_after_2038() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate(2048).unwrap();
    // UTCTime 500101000000Z (1950) to GeneralizedTime 99991231235959Z.
    let from_1950 = UNIX_EPOCH - Duration::from_secs(631_152_000);
    let until_9999 = Duration::from_secs(253_402_300_799 + 631_152_000);
    let cert = Certificate::self_signed(&key, "old", from_1950, until_9999).unwrap();
    assert_eq!(cert.not_before_unix(), -631_152_000);
    let path = write(dir.path(), "cert.pem", cert.to_pem());
    let info = ok(&["cert", "--cert", arg(&path), "--info"]);
    assert!(
        info.contains("valid from:         1950-01-01T00:00:00Z\n"),
        "{info}"
    );
    assert!(
        info.contains("valid until:        9999-12-31T23:59:59Z (valid, "),
        "{info}"
    );
}
