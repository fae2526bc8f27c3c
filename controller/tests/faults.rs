//! The fault suite: the three reconcilers under the failures clusters and providers really
//! have — API errors (500, 429, 409, 410 Gone) and dropped watches, OpenBao stopped and
//! restarted mid-sync, the controller killed (SIGKILL) mid-reconcile and started again,
//! the leader killed while a second replica waits. (AWS throttling and outages: in
//! external_secret_scheduler.rs, under the same journal check.)
//!
//! Every scenario ends with the same invariant, checked by [`Workload::holds`]: every Secret
//! that should exist exists with the right data; none was ever deleted or emptied — read
//! from the API server's own change journal, so nothing between two polls is missed; every
//! object is synced at its current generation (none is stuck).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use gitseal_api::{ExternalSecret, SopsSecret};
use gitseal_testkit::journal::Journal;
use gitseal_testkit::openbao::OpenBao;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// Which key of its Secret each kind writes, and the value expected there.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Sealed,
    Sops,
    External,
}

/// SealedSecrets, SopsSecrets and ExternalSecrets (from OpenBao) of one scenario, with the
/// value each of their Secrets must end with.
struct Workload {
    bao: OpenBao,
    /// Secret name → (kind, key, value).
    expected: BTreeMap<String, (Kind, &'static str, String)>,
    /// The controller's certificate and age recipient, once fetched.
    keys: Option<(gitseal_crypto::sealed::Certificate, String)>,
}

impl Workload {
    /// OpenBao with the KV path `secret/app/shared`, a token SecretStore `vault` in [`NS`];
    /// `None` (skipped, with a notice) without the `bao` binary.
    async fn start(cluster: &Cluster) -> Option<Self> {
        let bao = tokio::task::spawn_blocking(OpenBao::start).await.unwrap()?;
        create_object(
            &cluster.secrets(NS),
            json!({"metadata": {"name": "vault-token", "namespace": NS},
                   "stringData": {"token": bao.root_token()}}),
        )
        .await;
        let stores: Api<gitseal_api::SecretStore> = Api::namespaced(cluster.client.clone(), NS);
        create_object(
            &stores,
            json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                "metadata": {"name": "vault", "namespace": NS},
                "spec": {"provider": {"vault": {"server": bao.url(), "path": "secret", "version": "v2",
                    "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}}),
        )
        .await;
        Some(Self {
            bao,
            expected: BTreeMap::new(),
            keys: None,
        })
    }

    /// Writes `secret/app/shared` with one property per ExternalSecret so far plus
    /// `extra`, each with the value `<generation>-<name>`.
    fn put_vault(&self, generation: &str, names: &[String]) {
        let mut args = vec![
            "kv".to_owned(),
            "put".to_owned(),
            "secret/app/shared".to_owned(),
        ];
        args.extend(names.iter().map(|n| format!("{n}={generation}-{n}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.bao.bao(&args);
    }

    /// Creates `count` objects of each kind named `<prefix>-ss-<i>`, `<prefix>-sops-<i>`,
    /// `<prefix>-es-<i>` through the controller whose HTTP API is `api`.
    async fn create(&mut self, cluster: &Cluster, api: &str, prefix: &str, count: usize) {
        self.fetch_keys(api).await;
        let (cert, recipient) = self.keys.clone().unwrap();
        let recipient = recipient.as_str();
        let names: Vec<String> = (0..count).map(|i| format!("{prefix}-es-{i}")).collect();
        let mut vault_names: Vec<String> = self
            .expected
            .iter()
            .filter(|(_, (kind, ..))| *kind == Kind::External)
            .map(|(name, _)| name.clone())
            .collect();
        vault_names.extend(names.iter().cloned());
        self.put_vault("v1", &vault_names);
        let sops: Api<SopsSecret> = Api::namespaced(cluster.client.clone(), NS);
        let external: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), NS);
        for (i, es_name) in names.iter().enumerate() {
            let name = format!("{prefix}-ss-{i}");
            let value = format!("sealed-{name}");
            cluster
                .create(sealed_secret(&cert, &name, &[("k", &value)]))
                .await;
            self.expected.insert(name, (Kind::Sealed, "k", value));

            let name = format!("{prefix}-sops-{i}");
            let value = format!("sops-{name}");
            let plain = json!({
                "apiVersion": "isindir.github.com/v1alpha3", "kind": "SopsSecret",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"secretTemplates": [{"name": name, "stringData": {"token": value}}]}
            });
            let encrypted = gitseal_tests::sops_encrypt_json(&plain, recipient, "Templates");
            create_object(&sops, encrypted).await;
            self.expected.insert(name, (Kind::Sops, "token", value));

            create_object(
                &external,
                json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                    "metadata": {"name": es_name, "namespace": NS},
                    "spec": {"refreshInterval": "1s", "secretStoreRef": {"name": "vault"},
                        "data": [{"secretKey": "value",
                                  "remoteRef": {"key": "app/shared", "property": es_name}}]}}),
            )
            .await;
            self.expected.insert(
                es_name.clone(),
                (Kind::External, "value", format!("v1-{es_name}")),
            );
        }
    }

    /// Fetches the controller's certificate and age recipient from its HTTP API `api`,
    /// unless fetched before.
    async fn fetch_keys(&mut self, api: &str) {
        if self.keys.is_none() {
            let cert = fetch_text(&format!("{api}/v1/cert.pem")).await;
            let cert = gitseal_crypto::sealed::Certificate::from_pem(cert.as_bytes()).unwrap();
            let recipient = fetch_text(&format!("{api}/v1/age-recipient")).await;
            self.keys = Some((cert, recipient.trim().to_owned()));
        }
    }

    /// Gives every ExternalSecret the value `<generation>-<name>` in OpenBao and expects it.
    fn rotate_vault(&mut self, generation: &str) {
        let names: Vec<String> = self
            .expected
            .iter()
            .filter(|(_, (kind, ..))| *kind == Kind::External)
            .map(|(name, _)| name.clone())
            .collect();
        self.put_vault(generation, &names);
        for name in names {
            self.expected.get_mut(&name).unwrap().2 = format!("{generation}-{name}");
        }
    }

    /// Waits until every Secret holds its value and every object is synced at its
    /// generation, then checks the journal: no managed Secret was ever deleted, and none
    /// was ever written without its key or with empty data.
    async fn holds(&self, cluster: &Cluster, journal: &Journal) {
        for (name, (kind, key, value)) in &self.expected {
            secret_with(cluster, name, key, value).await;
            match kind {
                Kind::Sealed => {
                    synced(cluster, name, "True").await;
                }
                Kind::Sops => sops_healthy(cluster, name).await,
                Kind::External => {
                    external_secret_ready(cluster, name, "True", "SecretSynced").await
                }
            }
        }
        let written = never_deleted_or_emptied(journal, |name| {
            self.expected.get(name).map(|(_, key, _)| *key)
        });
        assert!(
            written >= self.expected.len(),
            "the journal saw every Secret written"
        );
    }
}

/// A test API server, the workload's OpenBao and store, and the journal of its Secrets;
/// `None` (skipped) without OpenBao.
async fn setting() -> Option<(Cluster, Workload, Journal)> {
    let cluster = Cluster::start().await;
    let workload = Workload::start(&cluster).await?;
    let journal = cluster.server.journal("secrets");
    Some((cluster, workload, journal))
}

/// Waits until the SopsSecret `NS/name` is healthy at its current generation.
async fn sops_healthy(cluster: &Cluster, name: &str) {
    let api: Api<SopsSecret> = Api::namespaced(cluster.client.clone(), NS);
    wait_for(&format!("SopsSecret {name} healthy"), || async {
        let object = api.get(name).await.ok()?;
        let status = object.status.as_ref()?;
        (status.message.as_deref() == Some("Healthy")
            && status.observed_generation == object.metadata.generation)
            .then_some(())
    })
    .await
}

/// How many of the workload's Secrets exist now.
async fn existing(cluster: &Cluster, workload: &Workload) -> usize {
    let secrets = cluster.secrets(NS).list(&Default::default()).await.unwrap();
    secrets
        .items
        .iter()
        .filter(|s| {
            s.metadata
                .name
                .as_ref()
                .is_some_and(|n| workload.expected.contains_key(n))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_and_dropped_watches_lose_nothing() {
    let Some((cluster, mut workload, journal)) = setting().await else {
        return;
    };
    let controller = cluster.controller("replica-1", &[]).await;
    let api = format!("http://{}", controller.api_addr);
    let server = &cluster.server;
    // What the reconcilers read and write fails, in every way the API server fails: an
    // internal error, throttling, a conflict, an expired list or watch. (The test's own
    // creates are spared; its reads retry.)
    let kinds = ["sealedsecrets", "sopssecrets", "externalsecrets"];
    let faults = [
        (500, "get"),
        (500, "patch"),
        (429, "list"),
        (429, "patch"),
        (409, "patch"),
        (410, "list"),
        (410, "watch"),
    ];
    for (resource, (status, verb)) in kinds.iter().flat_map(|k| faults.map(|f| (k, f))) {
        server.fail_next(1, status, Some(verb), Some(resource));
    }
    for (status, verb) in [
        (500, "create"),
        (429, "create"),
        (409, "create"),
        (500, "get"),
    ] {
        server.fail_next(1, status, Some(verb), Some("secrets"));
    }
    for (status, verb) in [(429, "list"), (410, "list"), (410, "watch")] {
        server.fail_next(1, status, Some(verb), Some("secrets"));
    }
    workload.create(&cluster, &api, "a", 4).await;
    server.close_watches();
    workload.create(&cluster, &api, "b", 4).await;
    server.expire_resource_versions();
    workload.holds(&cluster, &journal).await;
    assert_eq!(server.pending_faults(), 0, "every fault was met");

    // Faults again while every Secret exists and the ExternalSecrets' values change: the
    // updates of the Secrets fail too.
    for status in [500, 429, 409] {
        server.fail_next(1, status, Some("update"), Some("secrets"));
    }
    for resource in kinds {
        server.fail_next(2, 500, None, Some(resource));
    }
    workload.rotate_vault("v2");
    server.close_watches();
    server.expire_resource_versions();
    workload.holds(&cluster, &journal).await;
    assert_eq!(server.pending_faults(), 0, "every fault was met");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_stopped_and_restarted_mid_sync_keeps_every_secret() {
    let Some((cluster, mut workload, journal)) = setting().await else {
        return;
    };
    let controller = cluster.controller("replica-1", &[]).await;
    let api = format!("http://{}", controller.api_addr);
    workload.create(&cluster, &api, "a", 5).await;
    workload.holds(&cluster, &journal).await;

    // Down: every refresh fails; the Secrets stay as they were.
    tokio::task::block_in_place(|| workload.bao.stop());
    for name in ["a-es-0", "a-es-4"] {
        external_secret_ready(&cluster, name, "False", "SecretSyncedError").await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let names: Vec<String> = workload.expected.keys().cloned().collect();
    for name in &names {
        let (_, key, value) = &workload.expected[name];
        secret_with(&cluster, name, key, value).await;
    }

    // Back, empty (dev storage is in memory), then filled with new values: the Secrets
    // follow, and were never emptied while the secret was missing.
    tokio::task::block_in_place(|| workload.bao.restart());
    tokio::time::sleep(Duration::from_secs(2)).await;
    workload.rotate_vault("v2");
    workload.holds(&cluster, &journal).await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_killed_mid_reconcile_and_restarted_converges() {
    let Some((cluster, mut workload, journal)) = setting().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lease = ["--leader-election-duration=2s"];
    let first = ControllerProcess::start(&cluster, dir.path(), "first", &lease);
    workload.fetch_keys(&first.api).await;
    // Paused while the objects are made, then slowed down, so that the kill lands while
    // they are being reconciled.
    first.signal("-STOP");
    workload.create(&cluster, &first.api, "a", 10).await;
    cluster.server.set_latency(Duration::from_millis(50));
    first.signal("-CONT");
    wait_for("some Secrets written", || async {
        (existing(&cluster, &workload).await >= 3).then_some(())
    })
    .await;
    first.kill();
    let done = existing(&cluster, &workload).await;
    assert!(
        done < workload.expected.len(),
        "killed mid-way ({done} of {} Secrets written)",
        workload.expected.len()
    );
    cluster.server.set_latency(Duration::ZERO);

    let second = ControllerProcess::start(&cluster, dir.path(), "second", &lease);
    workload.holds(&cluster, &journal).await;
    second.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_the_other_replica_takes_over() {
    let Some((cluster, mut workload, journal)) = setting().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lease = ["--leader-election-duration=2s"];
    let leader = ControllerProcess::start(&cluster, dir.path(), "replica-a", &lease);
    fetch_text(&format!("{}/v1/cert.pem", leader.api)).await;
    let follower = ControllerProcess::start(&cluster, dir.path(), "replica-b", &lease);
    workload.create(&cluster, &leader.api, "a", 4).await;
    workload.holds(&cluster, &journal).await;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(cluster.client.clone(), CONTROLLER_NS);
    let holder = |lease: k8s_openapi::api::coordination::v1::Lease| {
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default()
    };
    assert_eq!(
        holder(leases.get("gitseal-controller").await.unwrap()),
        "replica-a"
    );

    leader.kill();
    // New objects and changed values, served by the follower once the Lease expires.
    workload.create(&cluster, &follower.api, "b", 4).await;
    workload.rotate_vault("v2");
    let sealed: Api<gitseal_api::SealedSecret> = Api::namespaced(cluster.client.clone(), NS);
    sealed
        .patch(
            "a-ss-0",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    workload.holds(&cluster, &journal).await;
    assert_eq!(
        holder(leases.get("gitseal-controller").await.unwrap()),
        "replica-b"
    );
    let keys = cluster
        .secrets(CONTROLLER_NS)
        .list(&kube::api::ListParams::default().labels(gitseal_api::SEALING_KEY_LABEL))
        .await
        .unwrap();
    assert_eq!(keys.items.len(), 1, "the follower used the leader's key");
    follower.stop();
}
