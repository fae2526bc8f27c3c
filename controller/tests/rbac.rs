//! The controller works with exactly the permissions the Helm chart grants it: the chart is
//! rendered with the real `helm`, its ClusterRoles and Roles become the rules of a test API
//! server token, and the controller runs a scenario per reconciler with that token. Every
//! permission the rules grant must then have been used (the test server records what a
//! restricted token was allowed): an unused one is more than the controller needs, and
//! each used one is a rule whose removal makes a request of the scenarios forbidden.

mod common;
mod rbac_scenario;

use std::collections::BTreeSet;

use common::*;
use gitseal_api::SealedSecret;
use gitseal_crypto::sealed::Scope;
use gitseal_testkit::Rule;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

/// A permission: (verb, API group, resource with its subresource).
type Grant = (String, String, String);

/// Grants of the chart that no bounded scenario can exercise, each with why it is needed
/// and the code that needs it. Each must be granted by the default rules and unused by
/// the scenarios, so the list cannot go stale.
const NEEDED_BUT_UNREACHED: &[(&str, &str, &str)] = &[
    // Secrets written for a SopsSecret carry an owner reference with blockOwnerDeletion
    // (controller/src/reconcile/secret.rs, `owner_reference`); where the
    // OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift), that takes
    // update on the owner's finalizers. The test API server has no admission plugins.
    ("update", "isindir.github.com", "sopssecrets/finalizers"),
    // The same for ExternalSecrets' Secrets (external_secret/target.rs) and
    // ClusterExternalSecrets' ExternalSecrets (cluster_external_secret.rs).
    (
        "update",
        "external-secrets.io",
        "externalsecrets/finalizers",
    ),
    (
        "update",
        "external-secrets.io",
        "clusterexternalsecrets/finalizers",
    ),
];

/// The controller's rules from the chart rendered with `values` (rules with
/// `resourceNames` are for users of the service proxy, not for the controller), and the
/// Deployment's namespace and reconciler flags (`--enable-*`).
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
                .filter(|a| a.contains("namespaces") || a.starts_with("--enable-"))
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

/// Every (verb, group, resource) that `rules` grant, `*` left as it is.
fn grants(rules: &[Rule]) -> BTreeSet<Grant> {
    let mut all = BTreeSet::new();
    for rule in rules {
        for verb in &rule.verbs {
            for group in &rule.groups {
                for resource in &rule.resources {
                    all.insert((verb.clone(), group.clone(), resource.clone()));
                }
            }
        }
    }
    all
}

/// Asserts that every grant of `rules` was used during the run, except those of
/// [`NEEDED_BUT_UNREACHED`] (which must be granted and unused).
fn assert_every_grant_used(cluster: &Cluster, rules: &[Rule]) {
    let granted = cluster.server.granted();
    let all = grants(rules);
    assert!(
        granted.is_subset(&all),
        "allowed beyond the rules: {granted:?}"
    );
    let excused: BTreeSet<Grant> = NEEDED_BUT_UNREACHED
        .iter()
        .map(|(v, g, r)| (v.to_string(), g.to_string(), r.to_string()))
        .filter(|grant| all.contains(grant))
        .collect();
    for grant in &excused {
        assert!(
            !granted.contains(grant),
            "{grant:?} is used now: take it off NEEDED_BUT_UNREACHED"
        );
    }
    let unused: Vec<&Grant> = all
        .iter()
        .filter(|g| !granted.contains(*g) && !excused.contains(*g))
        .collect();
    assert!(
        unused.is_empty(),
        "the chart grants more than the controller used: {unused:#?}"
    );
}

/// Renders the chart with the reconciler toggles (defaults when both are on), runs the
/// controller with a token limited to exactly its rules through the scenario of every
/// reconciler that is on (SealedSecrets always), and checks that every grant was used.
async fn every_grant_used_with(sops_secrets: bool, external_secrets: bool) {
    let Some(helm) = gitseal_tests::tool("helm", "GITSEAL_HELM") else {
        return;
    };
    let sops = match sops_secrets {
        true => match gitseal_tests::tool("sops", "GITSEAL_SOPS") {
            Some(sops) => Some(sops),
            None => return,
        },
        false => None,
    };
    let bao = match external_secrets {
        true => match rbac_scenario::bao().await {
            Some(bao) => Some(bao),
            None => return,
        },
        false => None,
    };
    let cluster = Cluster::start().await;
    let mut values = Vec::new();
    if !external_secrets {
        values.push("externalSecrets.enabled=false");
    }
    if !sops_secrets {
        values.push("sopsSecrets.enabled=false");
    }
    let (rules, flags) = render_chart(&helm, &values);
    assert_eq!(
        flags,
        [
            format!("--enable-external-secrets={external_secrets}"),
            format!("--enable-sops-secrets={sops_secrets}"),
        ],
        "all namespaces by default"
    );
    let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    flags.push("--rollout-debounce=100ms");
    let restricted = restricted_client(&cluster, rules.clone()).await;
    let controller = controller_with(restricted, "rbac", &flags).await;
    rbac_scenario::sealed_secrets(&cluster, &controller).await;
    if sops.is_some() {
        rbac_scenario::sops_secrets(&cluster, &controller).await;
    }
    if let Some(bao) = &bao {
        rbac_scenario::external_secrets(&cluster, bao).await;
    }
    assert!(*controller.leading.borrow(), "the Lease is allowed");
    controller.stop().await; // releases the Lease: an update
    assert_every_grant_used(&cluster, &rules);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reconciler_runs_on_the_default_rules_and_uses_every_one() {
    every_grant_used_with(true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_secrets_alone_use_every_rule_left_with_the_other_reconcilers_off() {
    every_grant_used_with(false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_external_secrets_sops_secrets_use_every_rule_left() {
    every_grant_used_with(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sops_secrets_external_secrets_use_every_rule_left() {
    every_grant_used_with(false, true).await;
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
            "--enable-external-secrets=true",
            "--enable-sops-secrets=true",
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
