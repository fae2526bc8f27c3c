//! The controller works with exactly the permissions the Helm chart grants it: the chart is
//! rendered with the real `helm`, its ClusterRole and Roles become the rules of a test API
//! server token, and the controller runs a full scenario with that token.

mod common;

use common::*;
use gitseal_api::SealedSecret;
use gitseal_crypto::sealed::Scope;
use gitseal_testkit::Rule;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The controller's rules from the chart rendered with `values` (rules with
/// `resourceNames` are for users of the service proxy, not for the controller), and the
/// Deployment's namespace and reconciler flags.
fn render_chart(helm: &std::path::Path, values: &[&str]) -> (Vec<Rule>, Vec<String>) {
    let chart = gitseal_tests::repo_dir().join("charts/gitseal");
    let output = std::process::Command::new(helm)
        .args([
            "template",
            "gitseal",
            chart.to_str().unwrap(),
            "--namespace",
            CONTROLLER_NS,
        ])
        .args(values.iter().flat_map(|v| ["--set", v]))
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
    let mut flags = Vec::new();
    for doc in documents.iter().filter(|d| !d.is_null()) {
        if doc["kind"] == "Deployment" {
            let args = &doc["spec"]["template"]["spec"]["containers"][0]["args"];
            flags = strings(args)
                .into_iter()
                .filter(|a| a.contains("namespaces") || a.contains("reconciler"))
                .collect();
        }
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
    (rules, flags)
}

/// A client for the test API server limited to `rules`; checks that it really is.
async fn restricted_client(cluster: &Cluster, rules: Vec<Rule>) -> kube::Client {
    let token = cluster.server.add_token(rules);
    let restricted = cluster.server.client_with_token(&token).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(restricted.clone(), NS);
    assert!(configmaps.list(&ListParams::default()).await.is_err());
    restricted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_needs_no_more_than_the_charts_rbac() {
    let Some(helm) = gitseal_tests::tool("helm", "GITSEAL_HELM") else {
        return;
    };
    let cluster = Cluster::start().await;
    let (rules, flags) = render_chart(&helm, &[]);
    assert!(flags.is_empty(), "all namespaces by default: {flags:?}");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let controller =
        controller_with(restricted_client(&cluster, rules).await, "rbac", &flags).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_roles_confine_the_controller_to_its_namespaces() {
    let Some(helm) = gitseal_tests::tool("helm", "GITSEAL_HELM") else {
        return;
    };
    let cluster = Cluster::start().await;
    let values = ["rbac.namespacedRoles=true", "additionalNamespaces={prod}"];
    let (rules, flags) = render_chart(&helm, &values);
    assert!(
        rules.iter().all(|r| !r.namespaces.is_empty()),
        "no cluster-wide rule: {rules:?}"
    );
    assert_eq!(
        flags,
        [
            "--enable-cluster-store-reconciler=false",
            "--enable-cluster-external-secret-reconciler=false",
            "--all-namespaces=false",
            "--additional-namespaces=prod"
        ]
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let controller =
        controller_with(restricted_client(&cluster, rules).await, "rbac", &flags).await;
    let cert = certificate(&controller).await;
    // A SealedSecret outside the watched namespaces is left alone...
    let outside = json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "elsewhere", "namespace": "other"},
        "spec": {"encryptedData":
            sealed_items(&cert, Scope::Strict, "other", "elsewhere", &[("k", "v")])}
    });
    let outside: SealedSecret = serde_json::from_value(outside).unwrap();
    Api::<SealedSecret>::namespaced(cluster.client.clone(), "other")
        .create(&PostParams::default(), &outside)
        .await
        .unwrap();
    // ...while those in the additional namespace are unsealed.
    cluster
        .create(sealed_secret(&cert, "db", &[("password", "s3cr3t")]))
        .await;
    secret_with(&cluster, "db", "password", "s3cr3t").await;
    synced(&cluster, "db", "True").await;
    let other = Api::<SealedSecret>::namespaced(cluster.client.clone(), "other");
    assert!(other.get("elsewhere").await.unwrap().status.is_none());
    assert!(
        cluster
            .secrets("other")
            .get_opt("elsewhere")
            .await
            .unwrap()
            .is_none()
    );
    assert!(*controller.leading.borrow(), "the Lease is allowed");
    controller.stop().await;
}
