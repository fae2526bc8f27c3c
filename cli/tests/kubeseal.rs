//! The kubeseal-compatible command line, run as a process: output layout (JSON and YAML),
//! scopes, namespaces, raw mode, merge-into, offline recovery with real and synthesized
//! fixtures, atomic output files, and clear errors for bad input.

mod common;

use std::process::{Command, Stdio};

use common::{Env, SECRET};
use gitseal_crypto::sealed::PrivateKey;
use gitseal_tests::require_shared;
use serde_json::Value;

#[test]
fn json_output_has_kubeseals_layout_and_unseals() {
    let shared = require_shared!();
    let env = Env::new(&shared, "json");
    let out = env.ok(&["--cert", env.cert()], SECRET.as_bytes());
    assert!(out.ends_with("}\n"));
    let sealed: Value = serde_json::from_str(&out).unwrap();
    let masked = env.check_and_mask(sealed, &[("user", b"admin"), ("password", b"hunter2")]);
    let expected = r#"{
  "kind": "SealedSecret",
  "apiVersion": "bitnami.com/v1alpha1",
  "metadata": {
    "name": "db",
    "namespace": "prod"
  },
  "spec": {
    "template": {
      "metadata": {
        "name": "db",
        "namespace": "prod",
        "labels": {
          "app": "web",
          "tier": "db"
        },
        "annotations": {
          "team": "payments"
        }
      },
      "type": "Opaque"
    },
    "encryptedData": {
      "password": "<sealed>",
      "user": "<sealed>"
    }
  }
}"#;
    assert_eq!(serde_json::to_string_pretty(&masked).unwrap(), expected);
}

#[test]
fn yaml_output_scopes_and_namespaces() {
    let shared = require_shared!();
    let env = Env::new(&shared, "yaml");
    let out = env.ok(
        &[
            "--cert",
            env.cert(),
            "-o",
            "YAML",
            "--scope",
            "namespace-wide",
        ],
        SECRET.as_bytes(),
    );
    assert!(out.starts_with("---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  annotations:\n    sealedsecrets.bitnami.com/namespace-wide: \"true\"\n"), "{out}");
    let sealed: Value = serde_saphyr_value(&out);
    env.check_and_mask(
        sealed.clone(),
        &[("user", b"admin"), ("password", b"hunter2")],
    );
    assert_eq!(
        sealed["spec"]["template"]["metadata"]["annotations"]["sealedsecrets.bitnami.com/namespace-wide"],
        "true"
    );

    // Cluster-wide: the empty label; the template carries the annotation too.
    let out = env.ok(
        &["--cert", env.cert(), "--scope", "cluster-wide"],
        SECRET.as_bytes(),
    );
    let sealed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        sealed["metadata"]["annotations"]["sealedsecrets.bitnami.com/cluster-wide"],
        "true"
    );
    env.check_and_mask(sealed, &[("user", b"admin"), ("password", b"hunter2")]);

    // No namespace in the input: the kubeconfig context's namespace, or -n.
    let no_ns = SECRET.replace("  namespace: prod\n", "");
    let sealed: Value =
        serde_json::from_str(&env.ok(&["--cert", env.cert()], no_ns.as_bytes())).unwrap();
    assert_eq!(sealed["metadata"]["namespace"], "team-a");
    env.check_and_mask(sealed, &[("user", b"admin"), ("password", b"hunter2")]);
    let sealed: Value =
        serde_json::from_str(&env.ok(&["--cert", env.cert(), "-n", "other"], no_ns.as_bytes()))
            .unwrap();
    assert_eq!(sealed["metadata"]["namespace"], "other");
    // An explicit -n that contradicts the input is refused.
    let error = env.fails(&["--cert", env.cert(), "-n", "other"], SECRET.as_bytes());
    assert!(error.contains("namespace mismatch"), "{error}");
    // --name overrides the input's name, and the label follows it.
    let sealed: Value = serde_json::from_str(&env.ok(
        &["--cert", env.cert(), "--name", "renamed"],
        SECRET.as_bytes(),
    ))
    .unwrap();
    assert_eq!(sealed["spec"]["template"]["metadata"]["name"], "renamed");
    env.check_and_mask(sealed, &[("user", b"admin"), ("password", b"hunter2")]);

    // Several input documents give several outputs.
    let two = format!("{SECRET}---\n{}", SECRET.replace("name: db", "name: db2"));
    let out = env.ok(&["--cert", env.cert(), "-o", "yaml"], two.as_bytes());
    assert_eq!(out.matches("kind: SealedSecret").count(), 2);
}

fn serde_saphyr_value(text: &str) -> Value {
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(text).unwrap();
    docs.into_iter().next().unwrap()
}

#[test]
fn raw_mode() {
    let shared = require_shared!();
    let env = Env::new(&shared, "raw");
    let value = env.ok(
        &[
            "--cert",
            env.cert(),
            "--raw",
            "--name",
            "db",
            "--namespace",
            "prod",
        ],
        b"s3cr3t",
    );
    assert!(!value.ends_with('\n'));
    assert_eq!(
        env.keyring.unseal(b"prod/db", &value).unwrap().expose(),
        b"s3cr3t"
    );
    let value = env.ok(
        &["--cert", env.cert(), "--raw", "--scope", "namespace-wide"],
        b"x",
    );
    assert_eq!(
        env.keyring.unseal(b"team-a", &value).unwrap().expose(),
        b"x"
    );
    let file = env.dir.path().join("value.txt");
    std::fs::write(&file, b"from file").unwrap();
    let from_file = format!("key={}", file.display());
    let value = env.ok(
        &[
            "--cert",
            env.cert(),
            "--raw",
            "--scope",
            "cluster-wide",
            "--from-file",
            &from_file,
        ],
        b"",
    );
    assert_eq!(
        env.keyring.unseal(b"", &value).unwrap().expose(),
        b"from file"
    );

    let error = env.fails(&["--cert", env.cert(), "--raw"], b"x");
    assert!(
        error.contains("must provide the --name flag with --raw and --scope strict"),
        "{error}"
    );
    let error = env.fails(&["--cert", env.cert(), "--from-file", &from_file], b"");
    assert!(error.contains("--from-file requires --raw"), "{error}");
}

#[test]
fn recovery_unseal_of_the_fixture_sealed_secrets() {
    let shared = require_shared!();
    let env = Env::new(&shared, "recovery");
    let fixtures = shared.join("fixtures/sealed-secrets");
    let key_secret = fixtures.join("kseal-sealing-key-secret.yaml");
    let key_pem = fixtures.join("kseal-sealing-key.pem");
    let cases: [(&str, &[(&str, &str)]); 3] = [
        (
            "synth-sealedsecret-strict-template.yaml",
            &[("password", "p@ss\"word"), ("username", "admin")],
        ),
        (
            "synth-sealedsecret-namespace-wide.yaml",
            &[("token", "shared-token")],
        ),
        (
            "synth-sealedsecret-cluster-wide.yaml",
            &[("token", "cluster-token")],
        ),
    ];
    for (file, expected) in cases {
        for key in [&key_secret, &key_pem] {
            let args = [
                "--recovery-unseal",
                "--recovery-private-key",
                key.to_str().unwrap(),
                "-f",
            ];
            let path = fixtures.join(file);
            let mut all: Vec<&str> = args.to_vec();
            all.push(path.to_str().unwrap());
            let secret: Value = serde_json::from_str(&env.ok(&all, b"")).unwrap();
            assert_eq!(secret["kind"], "Secret");
            assert_eq!(
                secret["metadata"]["ownerReferences"][0]["kind"],
                "SealedSecret"
            );
            for (item, plaintext) in expected {
                use base64::Engine;
                let data = secret["data"][*item].as_str().unwrap();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap();
                assert_eq!(decoded, plaintext.as_bytes(), "{file} {item}");
            }
        }
    }
    let template =
        std::fs::read_to_string(fixtures.join("synth-sealedsecret-strict-template.yaml")).unwrap();
    let secret: Value = serde_json::from_str(&env.ok(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            key_pem.to_str().unwrap(),
        ],
        template.as_bytes(),
    ))
    .unwrap();
    assert_eq!(secret["metadata"]["labels"]["app"], "demo");
    assert_eq!(secret["type"], "Opaque");
    // spec.template.data rendered as the controller renders it.
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(
            fixtures.join("synth-sealedsecret-strict-template.expected-secret.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(secret["data"], expected["data"]);

    // Renamed: the strict label no longer matches; the error names the items and hints.
    let renamed = template.replacen("name: demo-secret", "name: other", 1);
    let output = env.kubeseal(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            key_pem.to_str().unwrap(),
        ],
        renamed.as_bytes(),
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: no key could decrypt secret (password, username)\nhint: "),
        "{stderr}"
    );
    // The deprecated spec.data form is refused offline, as by kubeseal.
    let legacy = fixtures.join("synth-sealedsecret-legacy-v1-data.yaml");
    let error = env.fails(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            key_pem.to_str().unwrap(),
            "-f",
            legacy.to_str().unwrap(),
        ],
        b"",
    );
    assert!(error.contains("using deprecated 'data' field"), "{error}");
}

#[test]
fn merge_into_updates_the_file_in_place() {
    let shared = require_shared!();
    let env = Env::new(&shared, "merge");
    let target = env.dir.path().join("db-sealed.json");
    let sealed = env.ok(&["--cert", env.cert()], SECRET.as_bytes());
    std::fs::write(&target, &sealed).unwrap();
    let addition = "apiVersion: v1\nkind: Secret\nmetadata: {name: ignored, labels: {new: label}}\nstringData: {apikey: k-123, password: changed}\n";
    let out = env.ok(
        &[
            "--cert",
            env.cert(),
            "--merge-into",
            target.to_str().unwrap(),
        ],
        addition.as_bytes(),
    );
    assert!(out.is_empty());
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(merged["metadata"]["name"], "db");
    assert_eq!(
        merged["spec"]["template"]["metadata"]["labels"]["new"],
        "label"
    );
    env.check_and_mask(
        merged,
        &[
            ("user", b"admin"),
            ("password", b"changed"),
            ("apikey", b"k-123"),
        ],
    );
}

#[test]
fn output_files_are_written_whole_or_not_at_all() {
    let shared = require_shared!();
    let env = Env::new(&shared, "atomic");
    let out = env.dir.path().join("sealed.yaml");
    env.ok(
        &["--cert", env.cert(), "-w", out.to_str().unwrap()],
        SECRET.as_bytes(),
    );
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.starts_with("---\n"), "a .yaml file gets YAML");
    // A failing run leaves the previous file untouched and no temporary file behind.
    env.fails(
        &["--cert", env.cert(), "-w", out.to_str().unwrap()],
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n",
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), written);
    let fresh = env.dir.path().join("never.json");
    env.fails(&["--cert", env.cert(), "-w", fresh.to_str().unwrap()], b"");
    assert!(!fresh.exists());
    assert_eq!(
        std::fs::read_dir(env.dir.path()).unwrap().count(),
        2,
        "kubeconfig and sealed.yaml only"
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    let shared = require_shared!();
    let env = Env::new(&shared, "bad");
    let cert = env.cert();
    let error = env.fails(&["--cert", cert], b"");
    assert!(error.contains("no secrets found"), "{error}");
    let error = env.fails(
        &["--cert", cert],
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    assert!(error.contains("is a ConfigMap, not a Secret"), "{error}");
    let error = env.fails(&["--cert", cert], b"kind: Secret\nmetadata: {name: x}\n");
    assert!(error.contains("--allow-empty-data"), "{error}");
    env.ok(
        &["--cert", cert, "--allow-empty-data"],
        b"kind: Secret\nmetadata: {name: x}\n",
    );
    let error = env.fails(&["--cert", cert], b"kind: Secret\nstringData: {a: b}\n");
    assert!(
        error.contains("missing metadata.name in input Secret"),
        "{error}"
    );
    let error = env.fails(
        &["--cert", cert],
        b"kind: Secret\nmetadata: {name: x}\ndata: {a: '!!!'}\n",
    );
    assert!(error.contains("data[\"a\"] is not valid base64"), "{error}");
    let error = env.fails(&["--cert", cert], b"kind: [\n");
    assert!(error.contains("invalid YAML"), "{error}");
    let error = env.fails(&["--cert", "/nonexistent/cert.pem"], SECRET.as_bytes());
    assert!(error.contains("cannot read certificate"), "{error}");
    let error = env.fails(
        &[
            "--cert",
            env.dir.path().join("kubeconfig").to_str().unwrap(),
        ],
        SECRET.as_bytes(),
    );
    assert!(error.contains("certificate"), "{error}");
    let error = env.fails(&[], SECRET.as_bytes());
    assert!(error.contains("--cert"), "{error}");
    let error = env.fails(&["--cert", cert, "-o", "xml"], SECRET.as_bytes());
    assert!(error.contains("xml"), "{error}");

    // A certificate whose key is not RSA.
    let ec_cert = env.dir.path().join("ec.pem");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=x",
            "-days",
            "1",
            "-keyout",
        ])
        .arg(env.dir.path().join("ec.key"))
        .arg("-out")
        .arg(&ec_cert)
        .stderr(Stdio::null())
        .status();
    if made.is_ok_and(|s| s.success()) {
        let error = env.fails(&["--cert", ec_cert.to_str().unwrap()], SECRET.as_bytes());
        assert!(error.contains("not an RSA public key"), "{error}");
    }
}

#[test]
fn python_implementations_read_ours_and_we_recover_theirs() {
    let shared = require_shared!();
    let Some(python) = gitseal_tests::tool_from_env(
        "GITSEAL_PYTHON",
        "a Python with kubesealpy and aes-gcm-rsa-oaep",
    ) else {
        return;
    };
    let env = Env::new(&shared, "python");
    let oracle = gitseal_tests::repo_dir().join("tests/interop/kubeseal_oracle.py");
    let fixtures = shared.join("fixtures/sealed-secrets");
    let key = fixtures.join("kseal-sealing-key.pem");
    for (scope, label) in [
        ("strict", "prod/db"),
        ("namespace-wide", "prod"),
        ("cluster-wide", ""),
    ] {
        // gitseal kubeseal --raw → kubesealpy unseals.
        let sealed = env.ok(
            &[
                "--cert",
                env.cert(),
                "--raw",
                "--scope",
                scope,
                "-n",
                "prod",
                "--name",
                "db",
            ],
            b"p4ss",
        );
        let label_arg = format!("--label={label}");
        let mut command = Command::new(&python);
        command
            .arg(&oracle)
            .args(["unseal", "--key", key.to_str().unwrap(), &label_arg]);
        assert_eq!(
            gitseal_tests::run_with_stdin(&mut command, sealed.as_bytes()),
            b"p4ss",
            "{scope}"
        );

        // aes-gcm-rsa-oaep seals → gitseal kubeseal --recovery-unseal of a SealedSecret holding it.
        let mut command = Command::new(&python);
        command.arg(&oracle).args([
            "--impl",
            "aes-gcm-rsa-oaep",
            "seal",
            "--cert",
            env.cert(),
            &label_arg,
        ]);
        let theirs =
            String::from_utf8(gitseal_tests::run_with_stdin(&mut command, b"from python")).unwrap();
        let annotation = match scope {
            "strict" => String::new(),
            other => format!("  annotations: {{sealedsecrets.bitnami.com/{other}: \"true\"}}\n"),
        };
        let manifest = format!(
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: db\n  namespace: prod\n{annotation}spec:\n  encryptedData:\n    value: {theirs}\n"
        );
        let secret: Value = serde_json::from_str(&env.ok(
            &[
                "--recovery-unseal",
                "--recovery-private-key",
                key.to_str().unwrap(),
            ],
            manifest.as_bytes(),
        ))
        .unwrap();
        assert_eq!(secret["data"]["value"], "ZnJvbSBweXRob24=", "{scope}");
    }
}

#[test]
fn an_expired_certificate_is_refused_with_its_date() {
    let shared = require_shared!();
    let env = Env::new(&shared, "expired");
    // An RSA certificate whose validity ended in 2020.
    let key = PrivateKey::generate(2048).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let key_pair = rcgen::KeyPair::try_from(der.as_slice()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let cert = params.self_signed(&key_pair).unwrap();
    let path = env.dir.path().join("expired.pem");
    std::fs::write(&path, cert.pem()).unwrap();
    let error = env.fails(&["--cert", path.to_str().unwrap()], SECRET.as_bytes());
    assert!(
        error.contains("certificate expired at 2020-01-01T00:00:00Z"),
        "{error}"
    );
    // Fetching it is still allowed: it is how one looks at a certificate.
    let fetched = env.ok(&["--cert", path.to_str().unwrap(), "--fetch-cert"], b"");
    assert_eq!(fetched, cert.pem());
}
