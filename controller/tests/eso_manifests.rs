//! External Secrets Operator manifests apply unchanged through the real `kubectl`, in
//! both `external-secrets.io/v1` and `v1beta1`, against gitseal's CRDs; the CRDs' CEL
//! rules reject what ESO's admission webhook rejects, with ESO's messages; `kubectl get
//! es` shows ESO's columns.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Kubectl {
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(&self.binary)
            .env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .output()
            .expect("kubectl runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn apply(&self, name: &str, text: &str) -> (bool, String, String) {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        self.run(&["apply", "-f", path.to_str().unwrap()])
    }
}

fn manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/api/tests/eso-manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eso_manifests_apply_unchanged_and_invalid_ones_get_esos_messages() {
    let Some(binary) = gitseal_tests::tool("kubectl", "GITSEAL_KUBECTL") else {
        return;
    };
    let cluster = Cluster::start().await;
    cluster.namespace("default").await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.server.write_kubeconfig(&kubeconfig).unwrap();
    let k = Kubectl {
        binary,
        kubeconfig,
        dir: dir.path().to_owned(),
    };
    let files = manifests();
    let mut versions = std::collections::BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text
            .lines()
            .filter(|l| l.starts_with("apiVersion: external-secrets.io/"))
        {
            versions.insert(line.trim_start_matches("apiVersion: ").to_owned());
        }
        let run = k.run(&["apply", "-f", file.to_str().unwrap()]);
        let (ok, _, err) = tokio::task::spawn_blocking(move || run).await.unwrap();
        assert!(ok, "{} did not apply: {err}", file.display());
    }
    assert_eq!(
        versions.into_iter().collect::<Vec<_>>(),
        ["external-secrets.io/v1", "external-secrets.io/v1beta1"],
        "both API versions are covered"
    );
    // ESO's columns, and both versions served.
    let (ok, out, err) = k.run(&["get", "es", "-A"]);
    assert!(ok, "{err}");
    let header = out.lines().next().unwrap();
    for column in ["STORETYPE", "STORE", "REFRESH INTERVAL", "STATUS", "READY"] {
        assert!(header.contains(column), "{column} missing in {header}");
    }
    let (ok, _, err) = k.run(&["get", "externalsecrets.v1beta1.external-secrets.io", "-A"]);
    assert!(ok, "{err}");
    let (ok, out, _) = k.run(&["get", "css", "-o", "name"]);
    assert!(
        ok && !out.is_empty(),
        "ClusterSecretStores listed by short name"
    );

    // What ESO's webhook rejects, the CRDs reject, with its messages.
    let es = |spec: &str| {
        format!(
            "apiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\nmetadata:\n  name: bad\n  namespace: {NS}\nspec:\n{spec}"
        )
    };
    let data = "  data:\n  - secretKey: a\n    remoteRef:\n      key: k\n";
    let cases = [
        (
            es("  secretStoreRef:\n    name: s\n"),
            "either data or dataFrom should be specified",
        ),
        (
            es(&format!(
                "  secretStoreRef:\n    name: s\n  target:\n    creationPolicy: Merge\n    deletionPolicy: Delete\n{data}"
            )),
            "deletionPolicy=Delete must not be used when the controller doesn't own the secret. Please set creationPolicy=Owner",
        ),
        (
            es(&format!(
                "  secretStoreRef:\n    name: s\n  target:\n    creationPolicy: None\n    deletionPolicy: Merge\n{data}"
            )),
            "deletionPolicy=Merge must not be used with creationPolicy=None. There is no Secret to merge with",
        ),
        (
            es(
                "  secretStoreRef:\n    name: s\n  dataFrom:\n  - rewrite:\n    - regexp:\n        source: a\n        target: b\n",
            ),
            "either extract, find, or sourceRef must be set to dataFrom",
        ),
        (
            es(&format!(
                "  secretStoreRef:\n    name: s\n  target:\n    template:\n      type: bootstrap.kubernetes.io/token\n{data}"
            )),
            "template.type=\"bootstrap.kubernetes.io/token\" is not allowed",
        ),
    ];
    for (i, (manifest, message)) in cases.iter().enumerate() {
        let (ok, _, err) = k.apply(&format!("bad-{i}.yaml"), manifest);
        assert!(!ok, "case {i} was accepted");
        assert!(
            err.contains("The ExternalSecret \"bad\" is invalid") && err.contains(message),
            "case {i}: {err}"
        );
    }
}
