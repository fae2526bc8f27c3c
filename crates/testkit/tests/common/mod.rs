//! Shared helpers of the conformance tests.

#![allow(dead_code)]

use gitseal_testkit::TestServer;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// A kube-rs client for `server` using `token`.
pub async fn client_with_token(server: &TestServer, token: &str) -> kube::Client {
    let kubeconfig =
        Kubeconfig::from_yaml(&server.kubeconfig_with_token(token)).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig loads");
    kube::Client::try_from(config).expect("client builds")
}

/// A kube-rs client with full access.
pub async fn client(server: &TestServer) -> kube::Client {
    client_with_token(server, server.token()).await
}

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
