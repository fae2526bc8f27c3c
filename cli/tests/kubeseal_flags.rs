//! The flags of the kubeseal-compatible command line, run as a process: every flag given
//! through its `SEALED_SECRETS_*` variable too, kubectl's connection flags, and the notice
//! when standard input is a terminal.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Env, SECRET};
use gitseal_tests::require_shared;
use serde_json::Value;

/// Replaces every sealed value (a long base64 run) with `<sealed>`, so that two runs of the
/// same command can be compared.
fn mask_sealed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 300 {
            out.push_str("<sealed>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=') {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// One flag of kubeseal, given on the command line and through its `SEALED_SECRETS_*`
/// variable: both runs must succeed with the same output (sealed values masked), and
/// `expect` must hold for it.
struct FlagCase<'a> {
    flags: Vec<&'a str>,
    vars: Vec<(&'a str, &'a str)>,
    stdin: &'a [u8],
    /// A file the command writes, read (and removed) after each run; written with the
    /// given text before each run when `Some`.
    file: Option<(&'a Path, Option<&'a str>)>,
    expect: &'a dyn Fn(&str) -> bool,
}

#[test]
fn every_flag_works_from_its_environment_variable_too() {
    let shared = require_shared!();
    let env = Env::new(&shared, "envvars");
    let cert = env.cert();
    let no_ns = SECRET.replace("  namespace: prod\n", "");
    let secret_file = env.dir.path().join("secret.yaml");
    std::fs::write(&secret_file, SECRET).unwrap();
    let secret_path = secret_file.to_str().unwrap();
    let out_file = env.dir.path().join("out.json");
    let value_file = env.dir.path().join("value.txt");
    std::fs::write(&value_file, b"from file").unwrap();
    let from_file = format!("k={}", value_file.display());
    let other_kubeconfig = env.dir.path().join("other-kubeconfig");
    std::fs::write(
        &other_kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: o\ncontexts:\n- name: o\n  context: {cluster: x, namespace: team-o}\n",
    )
    .unwrap();
    let other_kubeconfig = other_kubeconfig.to_str().unwrap();
    let merge_target = env.dir.path().join("merge.json");
    let sealed_db = env.ok(&["--cert", cert], SECRET.as_bytes());
    let key_pem = shared.join("fixtures/sealed-secrets/kseal-sealing-key.pem");
    let key_pem = key_pem.to_str().unwrap();
    let sealed_fixture = std::fs::read(
        shared.join("fixtures/sealed-secrets/synth-sealedsecret-namespace-wide.yaml"),
    )
    .unwrap();
    let keyring = &env.keyring;
    let raw_unseals = |label: &'static [u8], plaintext: &'static [u8]| {
        move |out: &str| keyring.unseal(label, out).unwrap().expose() == plaintext
    };
    let raw_strict = raw_unseals(b"prod/db", b"s3cr3t");
    let raw_file = raw_unseals(b"", b"from file");
    let namespace_is = |ns: &'static str| {
        move |out: &str| serde_json::from_str::<Value>(out).unwrap()["metadata"]["namespace"] == ns
    };
    let (in_other, in_team_d, in_team_o) = (
        namespace_is("other"),
        namespace_is("team-d"),
        namespace_is("team-o"),
    );

    let cases: Vec<FlagCase> = vec![
        FlagCase {
            flags: vec!["--cert", cert],
            vars: vec![("SEALED_SECRETS_CERT", cert)],
            stdin: SECRET.as_bytes(),
            file: None,
            expect: &|out| out.contains("\"kind\": \"SealedSecret\""),
        },
        FlagCase {
            flags: vec!["--cert", cert, "-o", "yaml"],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_FORMAT", "yaml"),
            ],
            stdin: SECRET.as_bytes(),
            file: None,
            expect: &|out| out.starts_with("---\napiVersion: bitnami.com/v1alpha1\n"),
        },
        FlagCase {
            flags: vec!["--cert", cert, "-f", secret_path],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_SECRET_FILE", secret_path),
            ],
            stdin: b"",
            file: None,
            expect: &|out| out.contains("\"name\": \"db\""),
        },
        FlagCase {
            flags: vec!["--cert", cert, "-w", out_file.to_str().unwrap()],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                (
                    "SEALED_SECRETS_SEALED_SECRET_FILE",
                    out_file.to_str().unwrap(),
                ),
            ],
            stdin: SECRET.as_bytes(),
            file: Some((&out_file, None)),
            expect: &|out| out.contains("\"kind\": \"SealedSecret\""),
        },
        FlagCase {
            flags: vec!["--cert", cert, "--scope", "cluster-wide"],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_SCOPE", "cluster-wide"),
            ],
            stdin: SECRET.as_bytes(),
            file: None,
            expect: &|out| out.contains("sealedsecrets.bitnami.com/cluster-wide"),
        },
        FlagCase {
            flags: vec!["--cert", cert, "--name", "renamed"],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_NAME", "renamed"),
            ],
            stdin: SECRET.as_bytes(),
            file: None,
            expect: &|out| out.contains("\"name\": \"renamed\""),
        },
        FlagCase {
            flags: vec!["--cert", cert, "-n", "other"],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_NAMESPACE", "other"),
            ],
            stdin: no_ns.as_bytes(),
            file: None,
            expect: &in_other,
        },
        FlagCase {
            flags: vec!["--cert", cert, "--context", "d"],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_CONTEXT", "d"),
            ],
            stdin: no_ns.as_bytes(),
            file: None,
            expect: &in_team_d,
        },
        FlagCase {
            flags: vec!["--cert", cert, "--kubeconfig", other_kubeconfig],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_KUBECONFIG", other_kubeconfig),
            ],
            stdin: no_ns.as_bytes(),
            file: None,
            expect: &in_team_o,
        },
        FlagCase {
            flags: vec!["--cert", cert, "--allow-empty-data"],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_ALLOW_EMPTY_DATA", "true"),
            ],
            stdin: b"kind: Secret\nmetadata: {name: x}\n",
            file: None,
            expect: &|out| out.contains("\"encryptedData\": {}"),
        },
        FlagCase {
            flags: vec!["--cert", cert, "--fetch-cert"],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_FETCH_CERT", "true"),
            ],
            stdin: b"",
            file: None,
            expect: &|out| out.starts_with("-----BEGIN CERTIFICATE-----"),
        },
        FlagCase {
            flags: vec!["--cert", cert, "--raw", "--name", "db", "-n", "prod"],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_RAW", "true"),
                ("SEALED_SECRETS_NAME", "db"),
                ("SEALED_SECRETS_NAMESPACE", "prod"),
            ],
            stdin: b"s3cr3t",
            file: None,
            expect: &raw_strict,
        },
        FlagCase {
            flags: vec![
                "--cert",
                cert,
                "--raw",
                "--scope",
                "cluster-wide",
                "--from-file",
                &from_file,
            ],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_RAW", "1"),
                ("SEALED_SECRETS_SCOPE", "cluster-wide"),
                ("SEALED_SECRETS_FROM_FILE", &from_file),
            ],
            stdin: b"",
            file: None,
            expect: &raw_file,
        },
        FlagCase {
            flags: vec![
                "--cert",
                cert,
                "--merge-into",
                merge_target.to_str().unwrap(),
            ],
            vars: vec![
                ("SEALED_SECRETS_CERT", cert),
                ("SEALED_SECRETS_MERGE_INTO", merge_target.to_str().unwrap()),
            ],
            stdin: b"kind: Secret\nmetadata: {name: db}\nstringData: {apikey: k-1}\n",
            file: Some((&merge_target, Some(&sealed_db))),
            expect: &|out| out.contains("\"apikey\"") && out.contains("\"password\""),
        },
        FlagCase {
            flags: vec!["--recovery-unseal", "--recovery-private-key", key_pem],
            vars: vec![
                ("SEALED_SECRETS_RECOVERY_UNSEAL", "true"),
                ("SEALED_SECRETS_RECOVERY_PRIVATE_KEY", key_pem),
            ],
            stdin: &sealed_fixture,
            file: None,
            expect: &|out| out.contains("\"kind\": \"Secret\""),
        },
    ];
    for case in &cases {
        let mut outputs = Vec::new();
        for (flags, vars) in [(&case.flags[..], &[][..]), (&[][..], &case.vars[..])] {
            if let Some((path, Some(text))) = case.file {
                std::fs::write(path, text).unwrap();
            }
            let output = env.kubeseal_with_env(flags, vars, case.stdin);
            assert!(
                output.status.success(),
                "{flags:?} {vars:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let mut out = String::from_utf8(output.stdout).unwrap();
            if let Some((path, _)) = case.file {
                out.push_str(&std::fs::read_to_string(path).unwrap());
                std::fs::remove_file(path).unwrap();
            }
            assert!((case.expect)(&out), "{flags:?} {vars:?}: {out}");
            outputs.push(mask_sealed(&out));
        }
        assert_eq!(
            outputs[0], outputs[1],
            "{:?} vs {:?}",
            case.flags, case.vars
        );
    }

    // Explicit flags win over the environment; a false boolean variable is off.
    let out = env.ok_with_env(
        &["-o", "json"],
        &[
            ("SEALED_SECRETS_CERT", cert),
            ("SEALED_SECRETS_FORMAT", "yaml"),
        ],
        SECRET.as_bytes(),
    );
    assert!(out.starts_with("{\n"), "{out}");
    let out = env.ok_with_env(
        &["--cert", cert],
        &[
            ("SEALED_SECRETS_CERT", "/nonexistent.pem"),
            ("SEALED_SECRETS_FETCH_CERT", "false"),
        ],
        SECRET.as_bytes(),
    );
    assert!(out.contains("\"kind\": \"SealedSecret\""), "{out}");
}

#[test]
fn kubectl_connection_flags_are_accepted() {
    let shared = require_shared!();
    let env = Env::new(&shared, "connection-flags");
    // Every kubectl override kubeseal accepts parses; with --cert no connection is made.
    let flags = [
        "-s",
        "https://127.0.0.1:1",
        "--token",
        "t",
        "--cluster",
        "x",
        "--user",
        "u",
        "--certificate-authority",
        "/ca.pem",
        "--insecure-skip-tls-verify",
        "--tls-server-name",
        "api",
        "--request-timeout",
        "5s",
        "--as",
        "someone",
        "--as-group",
        "g1",
        "--as-group",
        "g2",
        "--as-uid",
        "42",
        "--client-certificate",
        "/c.pem",
        "--client-key",
        "/k.pem",
        "--username",
        "u",
        "--password",
        "p",
        "--disable-compression",
        "-v",
        "2",
    ];
    let mut args = vec!["--cert", env.cert()];
    args.extend(flags);
    let out = env.ok(&args, SECRET.as_bytes());
    assert!(out.contains("\"kind\": \"SealedSecret\""), "{out}");
    // Without --cert they are used: a missing client certificate is named.
    let kubeconfig = env.dir.path().join("full-kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: x\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: c\n  context: {cluster: x, user: u}\n",
    )
    .unwrap();
    let error = env.fails(
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--client-certificate",
            "/nonexistent/c.pem",
            "--client-key",
            "/nonexistent/k.pem",
            "--fetch-cert",
        ],
        b"",
    );
    assert!(error.contains("/nonexistent/c.pem"), "{error}");
}

#[test]
fn a_terminal_on_standard_input_is_announced() {
    let shared = require_shared!();
    let env = Env::new(&shared, "tty");
    // util-linux `script` runs the command on a pseudo-terminal; its standard input ends at
    // once, so kubeseal reads nothing after saying what it expects.
    let Some(script) = gitseal_tests::tool("script", "GITSEAL_SCRIPT") else {
        return;
    };
    let command = format!(
        "{} kubeseal --cert {}",
        env!("CARGO_BIN_EXE_gitseal"),
        env.cert()
    );
    let output = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("(tty detected: expecting json/yaml k8s resource in stdin)"),
        "{text}"
    );
    assert!(text.contains("error: no secrets found"), "{text}");
}
