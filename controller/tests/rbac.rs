//! The controller works with exactly the permissions the Helm chart grants it: the chart is
//! rendered with the real `helm`, its ClusterRole and Roles become the rules of a test API
//! server token, and the controller runs a full scenario with that token.

mod common;

use clap::Parser;
use common::*;
use gitseal_testkit::Rule;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

/// The controller's rules from the rendered chart (rules with `resourceNames` are for
/// users of the service proxy, not for the controller).
fn chart_rules(helm: &std::path::Path) -> Vec<Rule> {
    let chart = gitseal_tests::repo_dir().join("charts/gitseal");
    let output = std::process::Command::new(helm)
        .args([
            "template",
            "gitseal",
            chart.to_str().unwrap(),
            "--namespace",
            CONTROLLER_NS,
        ])
        .output()
        .expect("helm runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).expect("rendered YAML parses");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let mut rules = Vec::new();
    for doc in documents.iter().filter(|d| !d.is_null()) {
        let namespaces = match doc["kind"].as_str() {
            Some("ClusterRole") => Vec::new(),
            Some("Role") => vec![doc["metadata"]["namespace"].as_str().unwrap().to_owned()],
            _ => continue,
        };
        for rule in doc["rules"].as_array().into_iter().flatten() {
            if rule.get("resourceNames").is_some() {
                continue;
            }
            rules.push(Rule {
                verbs: strings(&rule["verbs"]),
                groups: strings(&rule["apiGroups"]),
                resources: strings(&rule["resources"]),
                namespaces: namespaces.clone(),
            });
        }
    }
    assert!(rules.len() >= 5, "the chart's RBAC rules: {rules:?}");
    rules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_needs_no_more_than_the_charts_rbac() {
    let Some(helm) = gitseal_tests::tool("helm", "GITSEAL_HELM") else {
        return;
    };
    let cluster = Cluster::start().await;
    let token = cluster.server.add_token(chart_rules(&helm));
    let kubeconfig = Kubeconfig::from_yaml(&cluster.server.kubeconfig_with_token(&token)).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let restricted = kube::Client::try_from(config).unwrap();
    // The token is really restricted.
    let configmaps: Api<ConfigMap> = Api::namespaced(restricted.clone(), NS);
    assert!(configmaps.list(&ListParams::default()).await.is_err());

    let flags = gitseal_controller::Config::try_parse_from([
        "gitseal-controller",
        "--listen-addr=127.0.0.1:0",
        "--listen-metrics-addr=127.0.0.1:0",
        "--namespace=kube-system",
        "--key-size=2048",
    ])
    .unwrap();
    let controller = gitseal_controller::start(flags, restricted, "rbac".into())
        .await
        .expect("starts with the chart's permissions");
    let cert = certificate(&controller).await;
    cluster
        .create(sealed_secret(&cert, "db", &[("password", "s3cr3t")]))
        .await;
    secret_with(&cluster, "db", "password", "s3cr3t").await;
    synced(&cluster, "db", "True").await;
    cluster
        .secrets(NS)
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"password": "eA=="}})),
        )
        .await
        .unwrap();
    secret_with(&cluster, "db", "password", "s3cr3t").await;
    assert!(*controller.leading.borrow(), "the Lease is allowed");
    controller.stop().await;
}
