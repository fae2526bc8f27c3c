//! The kubeseal-compatible command line, run as a process: output layout (JSON and YAML),
//! scopes, namespaces, raw mode, merge-into, offline recovery with real and synthesized
//! fixtures, atomic output files, and clear errors for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use gitseal_crypto::sealed::{Keyring, PrivateKey, Scope};
use gitseal_tests::require_shared;
use serde_json::{Value, json};

struct Env {
    /// The scratch directory, removed when the `Env` is dropped.
    dir: tempfile::TempDir,
    cert: PathBuf,
    keyring: Keyring,
}

impl Env {
    fn new(shared: &Path, name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("gitseal-kubeseal-{name}-"))
            .tempdir()
            .unwrap();
        // A kubeconfig whose current context's namespace is team-a, and whose context `d`
        // has namespace team-d.
        std::fs::write(
            dir.path().join("kubeconfig"),
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: x, namespace: team-a}\n- name: d\n  context: {cluster: x, namespace: team-d}\n",
        )
        .unwrap();
        let fixtures = shared.join("fixtures/sealed-secrets");
        let key =
            PrivateKey::from_pem(&std::fs::read(fixtures.join("kseal-sealing-key.pem")).unwrap())
                .unwrap();
        Self {
            dir,
            cert: fixtures.join("kseal-sealing-cert.pem"),
            keyring: Keyring::new(vec![key]),
        }
    }

    /// Runs `gitseal kubeseal <args>` with `stdin`.
    fn kubeseal(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.kubeseal_with_env(args, &[], stdin)
    }

    /// Runs `gitseal kubeseal <args>` with `stdin` and the environment variables `vars`
    /// (and no other `SEALED_SECRETS_*` variable).
    fn kubeseal_with_env(&self, args: &[&str], vars: &[(&str, &str)], stdin: &[u8]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gitseal"));
        command
            .arg("kubeseal")
            .args(args)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SEALED_SECRETS_") {
                command.env_remove(name);
            }
        }
        command.envs(vars.iter().copied());
        gitseal_tests::output_with_stdin(&mut command, stdin)
    }

    fn ok(&self, args: &[&str], stdin: &[u8]) -> String {
        self.ok_with_env(args, &[], stdin)
    }

    fn ok_with_env(&self, args: &[&str], vars: &[(&str, &str)], stdin: &[u8]) -> String {
        let output = self.kubeseal_with_env(args, vars, stdin);
        assert!(
            output.status.success(),
            "{args:?} {vars:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn fails(&self, args: &[&str], stdin: &[u8]) -> String {
        let output = self.kubeseal(args, stdin);
        assert_eq!(output.status.code(), Some(1), "{args:?} should fail");
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{stderr}");
        stderr
    }

    fn cert(&self) -> &str {
        self.cert.to_str().unwrap()
    }

    /// Checks that every encryptedData item unseals to `expected` under the SealedSecret's
    /// own label, and replaces the ciphertexts with `<sealed>` for comparison.
    fn check_and_mask(&self, mut sealed: Value, expected: &[(&str, &[u8])]) -> Value {
        let meta = sealed["metadata"].clone();
        let annotations: Vec<(String, String)> = meta["annotations"]
            .as_object()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let scope =
            Scope::from_annotations(annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let label = scope.label(
            meta["namespace"].as_str().unwrap_or(""),
            meta["name"].as_str().unwrap(),
        );
        let items = sealed["spec"]["encryptedData"].as_object_mut().unwrap();
        assert_eq!(items.len(), expected.len());
        for (key, plaintext) in expected {
            let value = items[*key].as_str().unwrap();
            assert_eq!(
                self.keyring.unseal(&label, value).unwrap().expose(),
                *plaintext,
                "{key}"
            );
            items[*key] = json!("<sealed>");
        }
        sealed
    }
}

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: prod
  labels: {app: web, tier: db}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{\"secret\": true}'
    team: payments
  uid: 0b7e5e7e-0000-0000-0000-000000000000
  resourceVersion: \"42\"
  creationTimestamp: \"2024-01-01T00:00:00Z\"
  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: x, uid: y}]
type: Opaque
data:
  user: YWRtaW4=
stringData:
  password: hunter2
";

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
