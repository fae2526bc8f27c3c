//! `gitseal` as ksops, run by the real tools: files encrypted by the real sops 3.11.0 to a
//! fresh age key, then `kubectl kustomize --enable-alpha-plugins` with gitseal installed as
//! the legacy exec plugin, and `kpt fn eval --exec` running it as a KRM function; outputs
//! compared with the expected manifests. Tampered files make kustomize fail with a clear
//! message, no Secret on standard output and no secret value on standard error.
//!
//! Tools: `GITSEAL_SOPS` (or `sops` on PATH), `kubectl` (`GITSEAL_KUBECTL`), `kpt`
//! (`GITSEAL_KPT`); a missing one skips the test, or fails it under `GITSEAL_REQUIRE_TOOLS=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gitseal_crypto::keys::age::AgeIdentities;
use serde_json::{Value, json};

/// Binary content with NUL and 0xFF bytes, for `binaryFiles`.
const BLOB: &[u8] = b"\x00\x01\xffbinary\x00value\xfe";

/// The plaintext values; none may appear on standard error of a failing run.
const SECRETS: [&str; 6] = [
    "s3cr3t-db-password",
    "db-admin-user",
    "k-api-123",
    "multi word token",
    "config-file-secret",
    "cm-json-secret",
];

struct Env {
    dir: tempfile::TempDir,
    sops: PathBuf,
}

impl Env {
    /// A scratch directory with a fresh age key (`keys.txt`) and sops found, or `None` (the
    /// test skips) when sops is missing.
    fn new() -> Option<Self> {
        let sops = gitseal_tests::tool("sops", "GITSEAL_SOPS")?;
        let dir = tempfile::Builder::new()
            .prefix("gitseal-ksops-")
            .tempdir()
            .unwrap();
        let key = AgeIdentities::generate();
        std::fs::write(dir.path().join("keys.txt"), key.to_text().as_str()).unwrap();
        Some(Self { dir, sops })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn recipient(&self) -> String {
        let text = std::fs::read_to_string(self.path("keys.txt")).unwrap();
        AgeIdentities::parse(&text).unwrap().recipients().remove(0)
    }

    /// A command with the age key of this environment and no other key source.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env("SOPS_AGE_KEY_FILE", self.path("keys.txt"))
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_KEY_CMD")
            .env_remove("KSOPS_CONCURRENCY_LIMIT");
        command
    }

    /// Encrypts `plain` with the real sops into `app/<name>` (format from the name).
    fn encrypt(&self, name: &str, plain: &[u8], extra: &[&str]) {
        let app = self.path("app");
        std::fs::create_dir_all(&app).unwrap();
        let source = self.path(&format!("plain-{name}"));
        std::fs::write(&source, plain).unwrap();
        let recipient = self.recipient();
        let mut args = vec!["encrypt", "--age", &recipient];
        args.extend(extra);
        let output = self
            .command(&self.sops)
            .args(&args)
            .arg(&source)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "sops encrypt {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(app.join(name), output.stdout).unwrap();
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Installs the built gitseal as kustomize's legacy exec plugin for viaduct.ai/v1 ksops.
    fn install_legacy_plugin(&self) {
        let dir = self.path("config/kustomize/plugin/viaduct.ai/v1/ksops");
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("ksops");
        if !link.exists() {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gitseal"), link).unwrap();
        }
    }

    /// The built gitseal under the name `ksops`, for the KRM function.
    fn ksops(&self) -> PathBuf {
        let link = self.path("bin/ksops");
        if !link.exists() {
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gitseal"), &link).unwrap();
        }
        link
    }
}

/// Encrypts the sample inputs: a Secret manifest (values only, as users do), a JSON
/// ConfigMap, a YAML config file, a dotenv file and a binary file.
fn sample(env: &Env) {
    env.encrypt(
        "db.enc.yaml",
        b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  labels:\n    app: web\ntype: Opaque\nstringData:\n  password: s3cr3t-db-password\n  user: db-admin-user\n",
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    env.encrypt(
        "cm.enc.json",
        br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"token": "cm-json-secret"}}"#,
        &[],
    );
    env.encrypt(
        "config.enc.yaml",
        b"server:\n  secret: config-file-secret\n",
        &[],
    );
    env.encrypt(
        "app.enc.env",
        b"API_KEY=k-api-123\n# comment\nexport TOKEN=\"multi word token\"\n",
        &[],
    );
    env.encrypt("blob.enc.bin", BLOB, &[]);
    // A plain Secret that the generated `merged` Secret merges into (behavior: merge).
    env.write(
        "app/base.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: merged\ndata:\n  base: YmFzZQ==\n",
    );
}

const GENERATOR_SPEC: &str = "files:
- db.enc.yaml
- cm.enc.json
secretFrom:
- metadata:
    name: app
    namespace: prod
    labels:
      team: payments
    annotations:
      kustomize.config.k8s.io/needs-hash: \"true\"
  type: Opaque
  files:
  - config.enc.yaml
  - settings.yaml=config.enc.yaml
  binaryFiles:
  - blob.bin=blob.enc.bin
  envs:
  - app.enc.env
- metadata:
    name: merged
    annotations:
      kustomize.config.k8s.io/behavior: merge
  envs:
  - app.enc.env
";

/// The generator as the legacy exec plugin is configured.
fn legacy_generator() -> String {
    format!("apiVersion: viaduct.ai/v1\nkind: ksops\nmetadata:\n  name: secrets\n{GENERATOR_SPEC}")
}

/// The generator as a KRM exec function is configured.
fn krm_generator(ksops: &Path) -> String {
    format!(
        "apiVersion: viaduct.ai/v1\nkind: ksops\nmetadata:\n  name: secrets\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: {}\n{GENERATOR_SPEC}",
        ksops.display()
    )
}

fn documents(bytes: &[u8]) -> Vec<Value> {
    gitseal::manifest::parse_documents(bytes).unwrap()
}

fn config_text() -> &'static str {
    "server:\n    secret: config-file-secret\n"
}

/// What ksops generates, before kustomize: the decrypted files, then the Secrets.
fn expected_generated() -> Vec<Value> {
    use base64::Engine;
    let blob = base64::engine::general_purpose::STANDARD.encode(BLOB);
    vec![
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "db", "labels": {"app": "web"}}, "type": "Opaque",
               "stringData": {"password": "s3cr3t-db-password", "user": "db-admin-user"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
               "data": {"token": "cm-json-secret"}}),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "app", "namespace": "prod", "labels": {"team": "payments"},
                            "annotations": {"kustomize.config.k8s.io/needs-hash": "true"}},
               "type": "Opaque",
               "stringData": {"API_KEY": "k-api-123", "TOKEN": "multi word token",
                              "config.enc.yaml": config_text(), "settings.yaml": config_text()},
               "data": {"blob.bin": blob}}),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "merged",
                            "annotations": {"kustomize.config.k8s.io/behavior": "merge"}},
               "stringData": {"API_KEY": "k-api-123", "TOKEN": "multi word token"}}),
    ]
}

/// What kustomize makes of it: the hash suffix on `app` (the annotations consumed), the
/// `merged` Secret merged into the plain one; kustomize orders the output.
fn check_kustomize_output(stdout: &[u8]) {
    let mut docs = documents(stdout);
    let mut expected = expected_generated();
    // `app` got a content hash suffix; the annotation that asked for it is gone.
    let app = docs
        .iter_mut()
        .find(|d| d["metadata"]["name"].as_str().unwrap().starts_with("app-"))
        .expect("the app Secret, with a hash suffix");
    let name = app["metadata"]["name"].as_str().unwrap().to_owned();
    let suffix = name.strip_prefix("app-").unwrap();
    assert!(
        suffix.len() == 10 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{name}"
    );
    expected[2]["metadata"]["name"] = json!(name);
    expected[2]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    // `merged` was merged into the base Secret: its data and the generated stringData.
    expected[3] = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "merged"},
                         "data": {"base": "YmFzZQ=="},
                         "stringData": {"API_KEY": "k-api-123", "TOKEN": "multi word token"}});
    let key = |d: &Value| {
        format!(
            "{}/{}",
            d["kind"].as_str().unwrap(),
            d["metadata"]["name"].as_str().unwrap()
        )
    };
    docs.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(docs, expected);
}

fn kubectl_kustomize(env: &Env, kubectl: &Path) -> Output {
    env.command(kubectl)
        .args(["kustomize", "--enable-alpha-plugins"])
        .arg(env.path("app"))
        .current_dir(env.dir.path())
        .output()
        .unwrap()
}

fn assert_no_secret_in(stderr: &str) {
    for secret in SECRETS {
        assert!(!stderr.contains(secret), "{secret} leaked: {stderr}");
    }
}

/// The sample app with the legacy exec plugin installed and its generator in
/// `app/kustomization.yaml`, and kubectl; `None` (after a notice) without the tools.
fn legacy_app() -> Option<(Env, PathBuf)> {
    let env = Env::new()?;
    let kubectl = gitseal_tests::tool("kubectl", "GITSEAL_KUBECTL")?;
    sample(&env);
    env.install_legacy_plugin();
    env.write("app/secret-generator.yaml", &legacy_generator());
    env.write(
        "app/kustomization.yaml",
        "resources:\n- base.yaml\ngenerators:\n- secret-generator.yaml\n",
    );
    Some((env, kubectl))
}

#[test]
fn legacy_exec_plugin_under_kubectl_kustomize() {
    let Some((env, kubectl)) = legacy_app() else {
        return;
    };
    let output = kubectl_kustomize(&env, &kubectl);
    assert!(
        output.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    check_kustomize_output(&output.stdout);

    // By hand, in the kustomization directory: what the plugin itself prints.
    let output = env
        .command(Path::new(env!("CARGO_BIN_EXE_gitseal")))
        .args(["ksops", "secret-generator.yaml"])
        .current_dir(env.path("app"))
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(documents(&output.stdout), expected_generated());
    // One file at a time gives the same stream.
    let serial = env
        .command(Path::new(env!("CARGO_BIN_EXE_gitseal")))
        .args(["ksops", "secret-generator.yaml"])
        .env("KSOPS_CONCURRENCY_LIMIT", "1")
        .current_dir(env.path("app"))
        .output()
        .unwrap();
    assert!(serial.status.success());
    assert_eq!(serial.stdout, output.stdout);
}

#[test]
fn krm_function_under_kpt_and_as_kustomize_calls_it() {
    let Some(env) = Env::new() else { return };
    let Some(kpt) = gitseal_tests::tool("kpt", "GITSEAL_KPT") else {
        return;
    };
    sample(&env);
    let ksops = env.ksops();
    let generator = krm_generator(&ksops);
    env.write("fn-config.yaml", &generator);
    // kpt: resources on standard input pass through, the generated ones are added.
    let kept = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\ndata:\n  a: b\n";
    let mut command = env.command(&kpt);
    command
        .args(["fn", "eval", "-", "--exec"])
        .arg(&ksops)
        .arg("--fn-config")
        .arg(env.path("fn-config.yaml"))
        .current_dir(env.path("app"));
    let output = gitseal_tests::output_with_stdin(&mut command, kept.as_bytes());
    assert!(
        output.status.success(),
        "kpt fn eval: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list = documents(&output.stdout).remove(0);
    assert_eq!(list["kind"], "ResourceList");
    let mut items: Vec<Value> = list["items"].as_array().unwrap().clone();
    for item in &mut items {
        // kpt's bookkeeping annotations.
        let meta = item["metadata"].as_object_mut().unwrap();
        if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
            annotations.retain(|k, _| !k.contains("config.kubernetes.io/"));
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    let mut expected = documents(kept.as_bytes());
    expected.extend(expected_generated());
    assert_eq!(items, expected);

    // kustomize's call (kustomize build --enable-alpha-plugins --enable-exec): the
    // functionConfig, and a copy of it marked local-config as the only item, which is not
    // passed back.
    let config = documents(generator.as_bytes()).remove(0);
    let mut copy = config.clone();
    copy["metadata"]["annotations"]["config.kubernetes.io/local-config"] = json!("true");
    let list = json!({"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList",
                      "items": [copy], "functionConfig": config});
    let mut command = env.command(&ksops);
    command.current_dir(env.path("app"));
    let output = gitseal_tests::output_with_stdin(&mut command, list.to_string().as_bytes());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list = documents(&output.stdout).remove(0);
    assert_eq!(list["apiVersion"], "config.kubernetes.io/v1");
    assert_eq!(list["items"], Value::Array(expected_generated()));

    // A tampered file: kpt fails, with the reason.
    tamper_value(&env.path("app/db.enc.yaml"));
    let mut command = env.command(&kpt);
    command
        .args(["fn", "eval", "-", "--exec"])
        .arg(&ksops)
        .arg("--fn-config")
        .arg(env.path("fn-config.yaml"))
        .current_dir(env.path("app"));
    let output = gitseal_tests::output_with_stdin(&mut command, kept.as_bytes());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot decrypt db.enc.yaml"), "{stderr}");
    assert_no_secret_in(&stderr);
    assert!(!String::from_utf8_lossy(&output.stdout).contains("kind: Secret"));
}

/// Changes one character of the ciphertext of `password`.
fn tamper_value(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let at = text.find("password: ENC[AES256_GCM,data:").unwrap() + 30;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(path, bytes).unwrap();
}

/// Removes the `user` entry: every remaining value decrypts, the MAC no longer matches.
fn remove_user(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("user:"))
        .collect();
    std::fs::write(path, kept.join("\n") + "\n").unwrap();
}

/// A change made to an encrypted file.
type Tamper = fn(&Path);

#[test]
fn tampered_files_fail_kustomize_without_leaking() {
    let Some((env, kubectl)) = legacy_app() else {
        return;
    };
    let original = std::fs::read(env.path("app/db.enc.yaml")).unwrap();
    let cases: [(Tamper, &str); 2] = [
        (tamper_value, "stringData.password: could not decrypt value"),
        (remove_user, "MAC mismatch"),
    ];
    for (tamper, reason) in cases {
        std::fs::write(env.path("app/db.enc.yaml"), &original).unwrap();
        tamper(&env.path("app/db.enc.yaml"));
        let output = kubectl_kustomize(&env, &kubectl);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{reason}: kustomize succeeded");
        assert!(output.stdout.is_empty(), "{reason}: output on failure");
        assert!(
            stderr.contains("cannot decrypt db.enc.yaml (from files)") && stderr.contains(reason),
            "{reason}: {stderr}"
        );
        assert_no_secret_in(&stderr);
    }

    // Without the key: the reason and a hint, nothing else.
    std::fs::write(env.path("app/db.enc.yaml"), &original).unwrap();
    std::fs::write(
        env.path("keys.txt"),
        AgeIdentities::generate().to_text().as_str(),
    )
    .unwrap();
    let output = kubectl_kustomize(&env, &kubectl);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no master key could decrypt the data key"),
        "{stderr}"
    );
}

#[test]
fn bad_generators_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let run = |generator: &str| {
        std::fs::write(dir.path().join("gen.yaml"), generator).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_gitseal"))
            .args(["ksops", "gen.yaml"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{generator}");
        assert!(output.stdout.is_empty());
        String::from_utf8(output.stderr).unwrap()
    };
    let cases = [
        (
            "kind: ksops\n",
            "missing the required 'files' or 'secretFrom'",
        ),
        (
            "files: [missing.enc.yaml]\n",
            "cannot read missing.enc.yaml",
        ),
        (
            "secretFrom: [{files: [a=b=c]}]\n",
            "expected `path` or `key=path`",
        ),
        (
            "secretFrom: [{files: ['bad key=x']}]\n",
            "invalid Secret key",
        ),
        ("files: {a: 1}\n", "must be a list of paths"),
        ("password: [unclosed\n", "invalid YAML input at line"),
    ];
    for (generator, message) in cases {
        let stderr = run(generator);
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(message), "{generator}: {stderr}");
    }
    // The KRM function: not a ResourceList.
    let mut command = Command::new(env!("CARGO_BIN_EXE_gitseal"));
    command.arg("ksops");
    let output = gitseal_tests::output_with_stdin(&mut command, b"kind: ConfigMap\n");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a ResourceList"), "{stderr}");
    // KSOPS_CONCURRENCY_LIMIT must be a number.
    std::fs::write(dir.path().join("gen.yaml"), "files: []\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_gitseal"))
        .args(["ksops", "gen.yaml"])
        .env("KSOPS_CONCURRENCY_LIMIT", "zero")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("KSOPS_CONCURRENCY_LIMIT"));
}
