//! Helpers shared by the kubeseal command-line tests (`kubeseal.rs`, `kubeseal_flags.rs`):
//! a scratch environment with the sealed-secrets fixture key, and a sample Secret. Each
//! test binary uses part of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gitseal_crypto::sealed::{Keyring, PrivateKey, Scope};
use serde_json::{Value, json};

/// A scratch directory with a kubeconfig, the fixture sealing certificate and its key.
pub struct Env {
    /// The scratch directory, removed when the `Env` is dropped.
    pub dir: tempfile::TempDir,
    cert: PathBuf,
    pub keyring: Keyring,
}

impl Env {
    pub fn new(shared: &Path, name: &str) -> Self {
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
    pub fn kubeseal(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.kubeseal_with_env(args, &[], stdin)
    }

    /// Runs `gitseal kubeseal <args>` with `stdin` and the environment variables `vars`
    /// (and no other `SEALED_SECRETS_*` variable).
    pub fn kubeseal_with_env(&self, args: &[&str], vars: &[(&str, &str)], stdin: &[u8]) -> Output {
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

    pub fn ok(&self, args: &[&str], stdin: &[u8]) -> String {
        self.ok_with_env(args, &[], stdin)
    }

    pub fn ok_with_env(&self, args: &[&str], vars: &[(&str, &str)], stdin: &[u8]) -> String {
        let output = self.kubeseal_with_env(args, vars, stdin);
        assert!(
            output.status.success(),
            "{args:?} {vars:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn fails(&self, args: &[&str], stdin: &[u8]) -> String {
        let output = self.kubeseal(args, stdin);
        assert_eq!(output.status.code(), Some(1), "{args:?} should fail");
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{stderr}");
        stderr
    }

    pub fn cert(&self) -> &str {
        self.cert.to_str().unwrap()
    }

    /// Checks that every encryptedData item unseals to `expected` under the SealedSecret's
    /// own label, and replaces the ciphertexts with `<sealed>` for comparison.
    pub fn check_and_mask(&self, mut sealed: Value, expected: &[(&str, &[u8])]) -> Value {
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

pub const SECRET: &str = "apiVersion: v1
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
