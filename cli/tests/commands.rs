//! `gitseal seal`, `reseal`, `cert --info` and `completions`, run as a process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use gitseal_crypto::sealed::{Keyring, PrivateKey};
use gitseal_tests::require_shared;
use serde_json::Value;

fn gitseal(args: &[&str], stdin: &[u8]) -> Output {
    gitseal_tests::output_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_gitseal")).args(args),
        stdin,
    )
}

fn ok(args: &[&str], stdin: &[u8]) -> String {
    let output = gitseal(args, stdin);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn temp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("gitseal-cmd-{name}-"))
        .tempdir()
        .unwrap()
}

fn key(path: &Path) -> PrivateKey {
    PrivateKey::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {password: hunter2}\n";

#[test]
fn seal_writes_yaml_by_default_and_json_for_json_files() {
    let shared = require_shared!();
    let fixtures = shared.join("fixtures/sealed-secrets");
    let cert = fixtures.join("kseal-sealing-cert.pem");
    let keyring = Keyring::new(vec![key(&fixtures.join("kseal-sealing-key.pem"))]);
    let out = ok(
        &["seal", "--cert", cert.to_str().unwrap()],
        SECRET.as_bytes(),
    );
    assert!(
        out.starts_with("---\napiVersion: bitnami.com/v1alpha1\n"),
        "{out}"
    );
    let tmp = temp("seal");
    let dir = tmp.path();
    let input = dir.join("secret.yaml");
    std::fs::write(&input, SECRET).unwrap();
    let output = dir.join("sealed.json");
    ok(
        &[
            "seal",
            input.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ],
        b"",
    );
    let sealed: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let value = sealed["spec"]["encryptedData"]["password"]
        .as_str()
        .unwrap();
    assert_eq!(
        keyring.unseal(b"prod/db", value).unwrap().expose(),
        b"hunter2"
    );
}

#[test]
fn cert_info_and_completions() {
    let shared = require_shared!();
    let cert = shared.join("fixtures/sealed-secrets/kseal-sealing-cert.pem");
    let info = ok(&["cert", "--cert", cert.to_str().unwrap(), "--info"], b"");
    assert!(info.contains("BB:09:56:AE:2D:05:71:A6"), "{info}");
    assert!(info.contains("RSA 4096 bits"), "{info}");
    assert!(
        info.contains("valid until:        2031-01-23T12:25:35Z"),
        "{info}"
    );
    let pem = ok(&["cert", "--cert", cert.to_str().unwrap()], b"");
    assert_eq!(pem.as_bytes(), std::fs::read(&cert).unwrap());
    let bash = ok(&["completions", "bash"], b"");
    assert!(bash.contains("gitseal") && bash.contains("reseal"));
}

/// A fresh RSA key and self-signed certificate made with openssl, as a renewed controller
/// key would be.
fn new_key_pair(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (key, cert) = (dir.join("new.key"), dir.join("new.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=new", "-days", "30",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .ok()?;
    status.success().then_some((key, cert))
}

#[test]
fn reseal_moves_a_repository_to_a_new_certificate() {
    let shared = require_shared!();
    let fixtures = shared.join("fixtures/sealed-secrets");
    let tmp = temp("reseal");
    let dir = tmp.path();
    let Some((new_key, new_cert)) = new_key_pair(dir) else {
        panic!("openssl is needed to make a test certificate");
    };
    let old_cert = fixtures.join("kseal-sealing-cert.pem");
    let old_key = fixtures.join("kseal-sealing-key.pem");
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("apps")).unwrap();
    let sealed = ok(
        &["seal", "--cert", old_cert.to_str().unwrap()],
        SECRET.as_bytes(),
    );
    let first = repo.join("apps/db.yaml");
    std::fs::write(&first, format!("# database credentials\n{sealed}")).unwrap();
    let wide = ok(
        &[
            "seal",
            "--cert",
            old_cert.to_str().unwrap(),
            "--scope",
            "cluster-wide",
        ],
        SECRET.as_bytes(),
    );
    let second = repo.join("apps/mixed.yaml");
    std::fs::write(
        &second,
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n{wide}"),
    )
    .unwrap();
    std::fs::write(repo.join("README.md"), "not a manifest").unwrap();

    let keys = format!("{},{}", old_key.display(), new_key.display());
    let args = [
        "reseal",
        repo.to_str().unwrap(),
        "--cert",
        new_cert.to_str().unwrap(),
        "--private-key",
        &keys,
    ];
    let summary = ok(&args, b"");
    assert!(
        summary.contains("resealed 2 value(s) in 2 file(s); 2 file(s) scanned, 0 failed"),
        "{summary}"
    );

    // Values now open with the new key only; comments and other documents are kept.
    let (old_ring, new_ring) = (
        Keyring::new(vec![key(&old_key)]),
        Keyring::new(vec![key(&new_key)]),
    );
    let text = std::fs::read_to_string(&first).unwrap();
    assert!(text.starts_with("# database credentials\n"));
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).unwrap();
    let doc = &docs[0];
    let value = doc["spec"]["encryptedData"]["password"].as_str().unwrap();
    assert_eq!(
        new_ring.unseal(b"prod/db", value).unwrap().expose(),
        b"hunter2"
    );
    assert!(old_ring.unseal(b"prod/db", value).is_err());
    assert!(
        std::fs::read_to_string(&second)
            .unwrap()
            .starts_with("apiVersion: v1\nkind: ConfigMap")
    );

    // A second run finds nothing to do and touches nothing.
    let before = std::fs::read(&first).unwrap();
    let summary = ok(&args, b"");
    assert!(
        summary.contains("resealed 0 value(s) in 0 file(s)"),
        "{summary}"
    );
    assert_eq!(std::fs::read(&first).unwrap(), before);

    // On a terminal, a progress line per file, cleared before the summary.
    if let Some(script) = gitseal_tests::tool("script", "GITSEAL_SCRIPT") {
        let command = format!("{} {}", env!("CARGO_BIN_EXE_gitseal"), args.join(" "));
        let output = Command::new(script)
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{text}");
        assert!(text.contains("\r\x1b[2K[2/2] "), "{text:?}");
        assert!(text.contains("\r\x1b[2Kresealed 0 value(s)"), "{text:?}");
    }

    // A value no key opens: nothing is written, unless --keep-going.
    let foreign_tmp = temp("reseal-foreign");
    let foreign_dir = foreign_tmp.path();
    let (_, foreign_cert) = new_key_pair(foreign_dir).unwrap();
    let foreign = ok(
        &["seal", "--cert", foreign_cert.to_str().unwrap()],
        SECRET.as_bytes(),
    );
    std::fs::write(repo.join("apps/foreign.yaml"), foreign).unwrap();
    let third = repo.join("apps/third.yaml");
    std::fs::write(
        &third,
        ok(
            &["seal", "--cert", old_cert.to_str().unwrap()],
            SECRET.as_bytes(),
        ),
    )
    .unwrap();
    let third_before = std::fs::read(&third).unwrap();
    let output = gitseal(&args, b"");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("failed: ")
            && stdout.contains("foreign.yaml")
            && stdout.contains("no key could decrypt secret"),
        "{stdout}"
    );
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("nothing was written")
    );
    assert_eq!(std::fs::read(&third).unwrap(), third_before);
    let mut keep_going = args.to_vec();
    keep_going.push("--keep-going");
    assert_eq!(gitseal(&keep_going, b"").status.code(), Some(1));
    assert_ne!(std::fs::read(&third).unwrap(), third_before);
}

#[test]
fn check_flags_plaintext_secrets_and_unencrypted_sops_files() {
    let shared = require_shared!();
    let tmp = temp("check");
    let dir = tmp.path();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let cert = shared.join("fixtures/sealed-secrets/kseal-sealing-cert.pem");
    write(
        "apps/sealed.yaml",
        &ok(
            &["seal", "--cert", cert.to_str().unwrap()],
            SECRET.as_bytes(),
        ),
    );
    let sops = std::fs::read_to_string(
        shared.join("fixtures/sops/generated-sops-3.11.0/enc/k8s-secret.enc.yaml"),
    )
    .unwrap();
    write("apps/sops-secret.yaml", &sops);
    write(
        "apps/chart.yaml",
        "{{- if .Values.enabled }}\nkind: Secret\n{{- end }}\n",
    );
    write(
        "apps/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
    );
    let clean = ok(&["check", dir.to_str().unwrap()], b"");
    assert!(clean.is_empty(), "{clean}");

    write("apps/plain.yaml", SECRET);
    write("apps/values.enc.yaml", "password: hunter2\n");
    write(
        ".sops.yaml",
        "creation_rules:\n  - path_regex: secrets/.*\\.yaml$\n    age: age1xyz\n",
    );
    write("secrets/app.yaml", "token: abc\n");
    let output = gitseal(&["check", dir.to_str().unwrap()], b"");
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 3, "{report}");
    assert!(
        lines[0].contains("apps/plain.yaml: Secret prod/db holds plaintext data"),
        "{report}"
    );
    assert!(
        lines[1].contains("apps/values.enc.yaml: not SOPS-encrypted, but its name says"),
        "{report}"
    );
    assert!(
        lines[2].contains(
            "secrets/app.yaml: not SOPS-encrypted, but a .sops.yaml creation rule matches it"
        ),
        "{report}"
    );
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("3 plaintext secret(s) found")
    );
}

#[test]
fn check_skips_what_gitignore_excludes() {
    let tmp = temp("check-ignore");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("build")).unwrap();
    std::fs::write(dir.join(".gitignore"), "build/\n").unwrap();
    std::fs::write(dir.join("build/secret.yaml"), SECRET).unwrap();
    assert!(ok(&["check", dir.to_str().unwrap()], b"").is_empty());
    // Named explicitly, a file is checked even if ignored.
    let named = dir.join("build/secret.yaml");
    assert_eq!(
        gitseal(&["check", named.to_str().unwrap()], b"")
            .status
            .code(),
        Some(1)
    );
}
