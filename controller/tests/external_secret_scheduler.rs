//! The scheduler against AWS Secrets Manager (a local moto), counted in the controller's
//! `externalsecret_provider_api_calls_count`: ExternalSecrets that share a remote secret
//! share one read per refresh window; due keys go in `BatchGetSecretValue` calls of 20;
//! a throttling store (answers injected by a proxy in front of moto) is backed off as a
//! whole while every Secret stays as it was, and 5xx answers keep the Secrets too; a
//! rotation restarts the workloads that ask for it, once.
//! Skipped with a notice without moto (scripts/test.sh installs it).

mod common;

use std::time::Duration;

use common::*;
use gitseal_api::{ExternalSecret, SecretStore};
use gitseal_controller::Running;
use gitseal_testkit::fault::{Fault, FaultProxy};
use gitseal_testkit::moto::Moto;
use gitseal_testkit::wait_for_within;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

/// Reads so far: single and batched.
async fn reads(running: &Running) -> (f64, f64) {
    (
        provider_calls(running, "AWS/SecretsManager", "GetSecretValue").await,
        provider_calls(running, "AWS/SecretsManager", "BatchGetSecretValue").await,
    )
}

/// The static-credentials Secret and a SecretStore `aws` on it.
async fn store(cluster: &Cluster) {
    let mut keys = Secret::default();
    keys.metadata.name = Some("aws".into());
    keys.string_data = Some(
        [("id", "testing"), ("secret", "testing")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
    );
    cluster
        .secrets(NS)
        .create(&PostParams::default(), &keys)
        .await
        .unwrap();
    let stores: Api<SecretStore> = Api::namespaced(cluster.client.clone(), NS);
    create_object(
        &stores,
        json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
               "metadata": {"name": "aws", "namespace": NS},
               "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1",
                   "auth": {"secretRef": {
                       "accessKeyIDSecretRef": {"name": "aws", "key": "id"},
                       "secretAccessKeySecretRef": {"name": "aws", "key": "secret"}}}}}}}),
    )
    .await;
}

/// Creates ExternalSecrets `<prefix>-<i>` for `i` in `range`, each reading the key
/// `key(i)` whole into its Secret, refreshing every `interval`.
async fn external_secrets(
    cluster: &Cluster,
    prefix: &str,
    range: std::ops::Range<usize>,
    interval: &str,
    key: impl Fn(usize) -> String,
) {
    use futures::StreamExt;
    let api: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), NS);
    let creates = range.map(|i| {
        let object = json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
               "metadata": {"name": format!("{prefix}-{i}"), "namespace": NS,
                            "labels": {"set": prefix}},
               "spec": {"refreshInterval": interval, "secretStoreRef": {"name": "aws"},
                        "data": [{"secretKey": "value", "remoteRef": {"key": key(i)}}]}});
        let api = api.clone();
        async move { create_object(&api, object).await }
    });
    futures::stream::iter(creates)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

/// Waits until every Secret of the ExternalSecrets labelled `set=prefix` (`count` of
/// them) holds `value(i)`.
async fn all_hold(cluster: &Cluster, prefix: &str, count: usize, value: impl Fn(usize) -> String) {
    let secrets = cluster.secrets(NS);
    let what = format!("{count} Secrets of {prefix} up to date");
    wait_for_within(&what, Duration::from_secs(120), || async {
        let list = secrets.list(&ListParams::default()).await.ok()?;
        let matching = list
            .items
            .iter()
            .filter_map(|s| {
                let name = s.metadata.name.as_deref()?;
                let i: usize = name.strip_prefix(&format!("{prefix}-"))?.parse().ok()?;
                let data = s.data.as_ref()?.get("value")?;
                (data.0 == value(i).as_bytes()).then_some(())
            })
            .count();
        (matching == count).then_some(())
    })
    .await;
}

/// The `refreshTime`s of the ExternalSecrets labelled `set=prefix`.
async fn refresh_times(cluster: &Cluster, prefix: &str) -> Vec<k8s_openapi::jiff::Timestamp> {
    let api: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), NS);
    let list = api
        .list(&ListParams::default().labels(&format!("set={prefix}")))
        .await
        .unwrap();
    list.items
        .into_iter()
        .filter_map(|es| Some(es.status?.refresh_time?.0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_reads_and_batches() {
    let Some(moto) = tokio::task::spawn_blocking(Moto::start).await.unwrap() else {
        return;
    };
    moto.boto3(
        "sm.create_secret(Name='shared', SecretString='v1')\n\
         for i in range(50): sm.create_secret(Name=f'app/s{i}', SecretString=f'value-{i}')",
    );
    let cluster = Cluster::start().await;
    let running = cluster
        .controller("r1", &[&format!("--aws-endpoint-url={}", moto.url())])
        .await;
    store(&cluster).await;

    // 100 ExternalSecrets over one remote secret: one read, then one per refresh window.
    external_secrets(&cluster, "same", 0..100, "30s", |_| "shared".into()).await;
    all_hold(&cluster, "same", 100, |_| "v1".into()).await;
    let (single, batched) = reads(&running).await;
    assert_eq!(
        (single, batched),
        (1.0, 0.0),
        "one read for 100 ExternalSecrets"
    );
    moto.boto3("sm.put_secret_value(SecretId='shared', SecretString='v2')");
    all_hold(&cluster, "same", 100, |_| "v2".into()).await;
    let (single, batched) = reads(&running).await;
    assert_eq!(
        single + batched,
        2.0,
        "one more read for the refresh of all 100"
    );
    let es: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), NS);
    es.delete_collection(
        &Default::default(),
        &ListParams::default().labels("set=same"),
    )
    .await
    .unwrap();

    // 1,000 ExternalSecrets over 50 remote secrets: after the first sync, a refresh
    // cycle reads the 50 in ceil(50 / 20) = 3 batches and nothing one by one.
    // (A window is half the interval, at most a minute: the first sync of all 1,000 must
    // fit in it for each secret to be read once.)
    let cold = std::time::Instant::now();
    external_secrets(&cluster, "many", 0..1000, "100s", |i| {
        format!("app/s{}", i % 50)
    })
    .await;
    all_hold(&cluster, "many", 1000, |i| format!("value-{}", i % 50)).await;
    eprintln!(
        "1,000 ExternalSecrets created and synced in {:?}",
        cold.elapsed()
    );
    let synced = k8s_openapi::jiff::Timestamp::now();
    let before = reads(&running).await;
    assert!(
        before.0 + before.1 <= 2.0 + 50.0,
        "the first sync reads each secret at most once: {before:?}"
    );
    let cycle = "a whole refresh cycle of the 1,000";
    wait_for_within(cycle, Duration::from_secs(180), || async {
        let times = refresh_times(&cluster, "many").await;
        (times.len() == 1000 && times.iter().all(|t| *t > synced)).then_some(())
    })
    .await;
    let after = reads(&running).await;
    assert_eq!(after.0 - before.0, 0.0, "no single reads in the cycle");
    assert!(
        after.1 - before.1 <= 3.0,
        "at most 3 batches per cycle, got {}",
        after.1 - before.1
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_failures_keep_secrets_and_back_off() {
    let Some(moto) = tokio::task::spawn_blocking(Moto::start).await.unwrap() else {
        return;
    };
    moto.boto3("for i in range(20): sm.create_secret(Name=f'app/t{i}', SecretString='old')");
    let proxy = FaultProxy::start(moto.url()).await.unwrap();
    let cluster = Cluster::start().await;
    let journal = cluster.server.journal("secrets");
    let running = cluster
        .controller(
            "r1",
            &[
                &format!("--aws-endpoint-url={}", proxy.url()),
                "--store-concurrency=1",
            ],
        )
        .await;
    store(&cluster).await;
    external_secrets(&cluster, "t", 0..20, "1s", |i| format!("app/t{i}")).await;
    all_hold(&cluster, "t", 20, |_| "old".into()).await;

    // Throttled: the store's gate closes for 1, 2, 4, 8 s; in 10 s a handful of calls
    // reach the store instead of 20 ExternalSecrets × 10 refreshes, and no
    // ExternalSecret is failed.
    proxy.set(Fault::Throttle);
    moto.boto3("for i in range(20): sm.put_secret_value(SecretId=f'app/t{i}', SecretString='new')");
    let start = proxy.requests();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let throttled = proxy.requests() - start;
    assert!(
        (1..=6).contains(&throttled),
        "{throttled} calls reached a throttling store in 10 s"
    );
    all_hold(&cluster, "t", 20, |_| "old".into()).await;
    for i in 0..20 {
        external_secret_ready(&cluster, &format!("t-{i}"), "True", "SecretSynced").await;
    }

    // The store recovers: the rotation arrives.
    proxy.set(Fault::None);
    all_hold(&cluster, "t", 20, |_| "new".into()).await;

    // 5xx: the ExternalSecrets fail (Ready=False) and retry with backoff; the Secrets stay.
    proxy.set(Fault::Unavailable);
    moto.boto3(
        "for i in range(20): sm.put_secret_value(SecretId=f'app/t{i}', SecretString='newer')",
    );
    external_secret_ready(&cluster, "t-0", "False", "SecretSyncedError").await;
    let start = proxy.requests();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let failing = proxy.requests() - start;
    assert!(
        failing <= 20 * 4,
        "{failing} calls to a failing store in 6 s: no backoff"
    );
    all_hold(&cluster, "t", 20, |_| "new".into()).await;
    proxy.set(Fault::None);
    all_hold(&cluster, "t", 20, |_| "newer".into()).await;
    // At no point was a Secret deleted or emptied by the provider's failures.
    let is_target = |name: &str| {
        name.strip_prefix("t-")?
            .parse::<usize>()
            .ok()
            .map(|_| "value")
    };
    assert!(never_deleted_or_emptied(&journal, is_target) >= 60);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_restarts_annotated_workloads_once() {
    use k8s_openapi::api::apps::v1::Deployment;
    let Some(moto) = tokio::task::spawn_blocking(Moto::start).await.unwrap() else {
        return;
    };
    moto.boto3("sm.create_secret(Name='app/rot', SecretString='a')");
    let cluster = Cluster::start().await;
    let running = cluster
        .controller(
            "r1",
            &[
                &format!("--aws-endpoint-url={}", moto.url()),
                "--rollout-debounce=200ms",
            ],
        )
        .await;
    store(&cluster).await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), NS);
    create_object(
        &deployments,
        json!({"metadata": {"name": "app", "namespace": NS,
                            "annotations": {"gitseal.dev/restart-on-secret-change": "rot-0"}},
               "spec": {"selector": {"matchLabels": {"app": "app"}},
                        "template": {"metadata": {"labels": {"app": "app"}},
                                     "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}}),
    )
    .await;
    external_secrets(&cluster, "rot", 0..1, "1s", |_| "app/rot".into()).await;
    all_hold(&cluster, "rot", 1, |_| "a".into()).await;
    let restarts = || async {
        let d = deployments.get("app").await.unwrap();
        let annotations = d.spec?.template.metadata?.annotations?;
        annotations.get("gitseal.dev/restarted-for").cloned()
    };
    let version = || async {
        deployments
            .get("app")
            .await
            .unwrap()
            .metadata
            .resource_version
    };
    // Created, then refreshed every second without a change: no restart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(restarts().await, None);
    for value in ["b", "c"] {
        let before = restarts().await;
        moto.boto3(&format!(
            "sm.put_secret_value(SecretId='app/rot', SecretString='{value}')"
        ));
        all_hold(&cluster, "rot", 1, |_| value.into()).await;
        let after = wait_for("a restart", || async {
            restarts().await.filter(|r| Some(r) != before.as_ref())
        })
        .await;
        // Exactly one: nothing more while the unchanged value keeps being refreshed.
        let settled = version().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(version().await, settled, "restarted again for {value}");
        assert_eq!(restarts().await, Some(after));
    }
    running.stop().await;
}
