//! Shared helpers of the conformance tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use gitseal_testkit::TestServer;

/// A CustomResourceDefinition for `widgets.example.com` with a status subresource and a
/// schema that requires `spec.size` (an integer ≥ 1).
pub fn widget_crd() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "color": {"type": "string", "enum": ["red", "blue"]}}},
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}
            }]
        }
    })
}

pub fn kubectl() -> Option<PathBuf> {
    gitseal_tests::tool("kubectl", "GITSEAL_KUBECTL")
}

/// kubectl against a [`TestServer`] of this process.
pub struct Kubectl {
    /// The kubeconfig file.
    pub kubeconfig: PathBuf,
    /// The scratch directory (kubectl's cache and written files).
    pub dir: PathBuf,
}

impl Kubectl {
    pub fn new(server: &TestServer, dir: &Path) -> Self {
        let kubeconfig = dir.join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        Self {
            kubeconfig,
            dir: dir.to_owned(),
        }
    }

    /// Runs kubectl off the async runtime; returns (success, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut command = Command::new(kubectl().unwrap());
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args);
        let output = tokio::task::spawn_blocking(move || command.output().expect("run kubectl"))
            .await
            .unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (
            output.status.success(),
            text(output.stdout),
            text(output.stderr),
        )
    }

    pub async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed: {err}");
        out
    }

    /// Writes `text` to `name` in the scratch directory and returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}
