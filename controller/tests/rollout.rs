//! Rotation that reaches the pods: `Rollout` against the test API server restarts exactly
//! the workloads annotated with a changed Secret, once per change of data — merged over
//! the debounce, never again for the same data, once more when the data changes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gitseal_api::{
    ANNOTATION_DATA_HASH, ANNOTATION_RESTART_ON_SECRET_CHANGE, ANNOTATION_RESTARTED_AT,
    ANNOTATION_RESTARTED_FOR,
};
use gitseal_controller::rollout::Rollout;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::Discovery;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const NAMESPACE: &str = "rollout";
const DEBOUNCE: Duration = Duration::from_millis(300);
const DEADLINE: Duration = Duration::from_secs(10);

async fn create<K>(api: &Api<K>, object: Value) -> K
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create: {e}"))
}

fn pod_template(labels: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": labels}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
    })
}

/// The resourceVersion, generation and `restarted-for` value of a workload.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    resource_version: String,
    generation: Option<i64>,
    restarted_for: Option<String>,
    restarted_at: Option<String>,
}

async fn seen<K>(api: &Api<K>, name: &str) -> Seen
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let object = serde_json::to_value(api.get(name).await.unwrap()).unwrap();
    let annotation = |key: &str| {
        object["spec"]["template"]["metadata"]["annotations"][key]
            .as_str()
            .map(str::to_owned)
    };
    Seen {
        resource_version: object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_owned(),
        generation: object["metadata"]["generation"].as_i64(),
        restarted_for: annotation(ANNOTATION_RESTARTED_FOR),
        restarted_at: annotation(ANNOTATION_RESTARTED_AT),
    }
}

/// Polls `name` until its `restarted-for` differs from `before`'s.
async fn restarted(api: &Api<Deployment>, name: &str, before: &Seen) -> Seen {
    let start = Instant::now();
    loop {
        let now = seen(api, name).await;
        if now.restarted_for != before.restarted_for {
            return now;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{name} not restarted within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn workloads_restart_once_per_change_of_the_secrets_they_name() {
    let cluster = Cluster::start().await;
    cluster.namespace(NAMESPACE).await;
    let client = cluster.client.clone();

    // apps/v1 is discoverable, as kubectl and kube's discovery need.
    let discovery = Discovery::new(client.clone())
        .filter(&["apps"])
        .run()
        .await
        .unwrap();
    for kind in ["Deployment", "StatefulSet", "DaemonSet"] {
        let (resource, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", kind))
            .unwrap_or_else(|| panic!("{kind} discovered"));
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
        assert!(
            api.list(&Default::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }

    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    create(
        &secrets,
        json!({
            "metadata": {"name": "db", "annotations": {ANNOTATION_DATA_HASH: "h1"}},
            "stringData": {"password": "p-1"}
        }),
    )
    .await;
    create(
        &secrets,
        json!({"metadata": {"name": "api"}, "stringData": {"key": "k-1"}}),
    )
    .await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), NAMESPACE);
    create(
        &deployments,
        json!({
            "metadata": {"name": "app", "annotations": {ANNOTATION_RESTART_ON_SECRET_CHANGE: "db, api"}},
            "spec": {"selector": {"matchLabels": {"app": "app"}}, "template": pod_template("app")}
        }),
    )
    .await;
    create(
        &deployments,
        json!({
            "metadata": {"name": "plain"},
            "spec": {"selector": {"matchLabels": {"app": "plain"}}, "template": pod_template("plain")}
        }),
    )
    .await;
    create(
        &statefulsets,
        json!({
            "metadata": {"name": "cache", "annotations": {ANNOTATION_RESTART_ON_SECRET_CHANGE: "api"}},
            "spec": {"selector": {"matchLabels": {"app": "cache"}}, "serviceName": "cache",
                     "template": pod_template("cache")}
        }),
    )
    .await;
    let app_0 = seen(&deployments, "app").await;
    let plain_0 = seen(&deployments, "plain").await;
    let cache_0 = seen(&statefulsets, "cache").await;
    assert_eq!(app_0.restarted_for, None);
    assert_eq!(
        app_0.generation,
        Some(1),
        "apps/v1 maintains the generation"
    );

    let rollout = Rollout::new(client.clone(), DEBOUNCE);

    // (1) Two changes within the debounce: one patch of the Deployment naming `db`.
    rollout.secret_changed(NAMESPACE, "db");
    rollout.secret_changed(NAMESPACE, "db");
    let app_1 = restarted(&deployments, "app", &app_0).await;
    let first = app_1.restarted_for.clone().unwrap();
    assert_eq!(first.len(), 16, "a short hex digest: {first}");
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    let at = app_1.restarted_at.clone().expect("restartedAt is set");
    assert!(
        at.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
        "RFC 3339: {at}"
    );
    assert_eq!(app_1.generation, Some(2), "a pod template change");
    tokio::time::sleep(DEBOUNCE * 3).await;
    assert_eq!(
        seen(&deployments, "app").await,
        app_1,
        "exactly one patch for the two changes"
    );
    assert_eq!(
        seen(&deployments, "plain").await,
        plain_0,
        "unannotated: untouched"
    );
    assert_eq!(
        seen(&statefulsets, "cache").await,
        cache_0,
        "names only `api`: untouched"
    );

    // (2) The same data again: nothing to do, no write at all.
    rollout.secret_changed(NAMESPACE, "db");
    tokio::time::sleep(DEBOUNCE * 3).await;
    assert_eq!(
        seen(&deployments, "app").await,
        app_1,
        "same data: no new patch"
    );

    // (3) New data: exactly one more patch, with another value.
    secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {ANNOTATION_DATA_HASH: "h2"}},
                "stringData": {"password": "p-2"}
            })),
        )
        .await
        .unwrap();
    rollout.secret_changed(NAMESPACE, "db");
    let app_2 = restarted(&deployments, "app", &app_1).await;
    assert_ne!(app_2.restarted_for.as_deref(), Some(first.as_str()));
    assert_eq!(app_2.generation, Some(3));
    tokio::time::sleep(DEBOUNCE * 3).await;
    assert_eq!(
        seen(&deployments, "app").await,
        app_2,
        "exactly one more patch"
    );
    assert_eq!(seen(&deployments, "plain").await, plain_0);
    assert_eq!(seen(&statefulsets, "cache").await, cache_0);

    // (4) The StatefulSet follows `api`: its data digest (the resourceVersion, no
    // data-hash annotation) changes with the Secret.
    secrets
        .patch(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"key": "k-2"}})),
        )
        .await
        .unwrap();
    rollout.secret_changed(NAMESPACE, "api");
    let start = Instant::now();
    let cache_1 = loop {
        let now = seen(&statefulsets, "cache").await;
        if now.restarted_for.is_some() {
            break now;
        }
        assert!(start.elapsed() < DEADLINE, "cache not restarted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(cache_1.generation, Some(2));
    let app_3 = restarted(&deployments, "app", &app_2).await;
    assert_ne!(
        app_3.restarted_for, app_2.restarted_for,
        "`app` names `api` too"
    );
    assert_eq!(seen(&deployments, "plain").await, plain_0);

    // A Secret nobody names: no write anywhere.
    rollout.secret_changed(NAMESPACE, "unrelated");
    rollout.secret_changed("other", "db");
    tokio::time::sleep(DEBOUNCE * 3).await;
    assert_eq!(seen(&deployments, "app").await, app_3);
    assert_eq!(seen(&statefulsets, "cache").await, cache_1);
}
