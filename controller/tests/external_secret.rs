//! ExternalSecrets against a real OpenBao server (`bao server -dev`): KV v1 and v2, token,
//! AppRole and Kubernetes auth (OpenBao asks the test API server's TokenReview), rotation,
//! revoked access, the two-sync rule for deletions, what may be written, one login per
//! token lifetime and one read per path per sync — and no secret value in any status or
//! event. Skipped with a notice when `bao` is missing (scripts/test.sh installs it).

mod common;

use std::time::Duration;

use common::*;
use gitseal_api::{
    ANNOTATION_DATA_HASH, ClusterExternalSecret, ClusterSecretStore, ExternalSecret,
    LABEL_CREATED_BY, LABEL_MANAGED, SecretStore,
};
use gitseal_controller::reconcile::external_secret::target;
use gitseal_testkit::openbao::OpenBao;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const POLICY: &str = r#"
path "secret/data/app/*" { capabilities = ["read"] }
path "secret/metadata/app/*" { capabilities = ["read", "list"] }
path "kv1/*" { capabilities = ["read", "list"] }
"#;

/// Values that must never show up in a status, an event or a log.
const USER: &str = "user-4af1c9d2";
const PASSWORD: &str = "password-9c2e71b0";
const ROTATED: &str = "rotated-77d0e5aa";

async fn bao() -> Option<OpenBao> {
    let bao = tokio::task::spawn_blocking(OpenBao::start).await.unwrap()?;
    bao.bao(&["secrets", "enable", "-path=kv1", "-version=1", "kv"]);
    bao.bao_with_stdin(&["policy", "write", "read-app", "-"], POLICY.as_bytes());
    bao.bao(&[
        "kv",
        "put",
        "secret/app/db",
        &format!("user={USER}"),
        &format!("password={PASSWORD}"),
    ]);
    Some(bao)
}

async fn apply<K>(api: &Api<K>, object: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create: {e}"))
}

async fn secret(cluster: &Cluster, name: &str, data: &[(&str, &str)]) {
    apply(
        &cluster.secrets(NS),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NS},
            "stringData": data.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>()
        }),
    )
    .await;
}

async fn store(cluster: &Cluster, name: &str, vault: Value) -> SecretStore {
    let api: Api<SecretStore> = Api::namespaced(cluster.client.clone(), NS);
    apply(
        &api,
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"provider": {"vault": vault}}
        }),
    )
    .await
}

async fn external_secret(cluster: &Cluster, name: &str, spec: Value) -> ExternalSecret {
    apply(
        &es_api(cluster),
        json!({
            "apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec
        }),
    )
    .await
}

/// The SecretStore `vault` on KV v2 `secret/` with a static `token` (Secret `vault-token`).
async fn token_store(cluster: &Cluster, bao: &OpenBao, token: &str) {
    secret(cluster, "vault-token", &[("token", token)]).await;
    store(
        cluster,
        "vault",
        json!({"server": bao.url(), "path": "secret", "version": "v2",
               "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}),
    )
    .await;
}

fn es_api(cluster: &Cluster) -> Api<ExternalSecret> {
    Api::namespaced(cluster.client.clone(), NS)
}

/// The ExternalSecret once its Ready condition has `status` and `reason`.
async fn ready(cluster: &Cluster, name: &str, status: &str, reason: &str) -> ExternalSecret {
    let api = es_api(cluster);
    wait_for(&format!("{name} Ready={status} ({reason})"), || async {
        let es = api.get(name).await.ok()?;
        let c = es
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")?;
        (c.status == status && c.reason.as_deref() == Some(reason)).then_some(es.clone())
    })
    .await
}

/// No status or event holds a value (plain or base64), and events were published.
async fn assert_no_values_outside_secrets(cluster: &Cluster) {
    let events = no_values_outside_secrets(cluster, &[], &[USER, PASSWORD, ROTATED]).await;
    assert!(events > 0, "events were published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_syncs_rotates_and_keeps_the_secret_when_access_is_revoked() {
    let Some(bao) = bao().await else { return };
    let cluster = Cluster::start().await;
    let token = bao.bao(&["token", "create", "-policy=read-app", "-field=token"]);
    token_store(&cluster, &bao, token.trim()).await;
    let _controller = cluster.controller("r1", &[]).await;
    external_secret(
        &cluster,
        "db",
        json!({
            "refreshInterval": "1s",
            "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
            "target": {"name": "db-credentials"},
            "data": [
                {"secretKey": "username", "remoteRef": {"key": "app/db", "property": "user"}},
                {"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}
            ]
        }),
    )
    .await;
    let synced = secret_with(&cluster, "db-credentials", "password", PASSWORD).await;
    assert_eq!(synced.data.as_ref().unwrap()["username"].0, USER.as_bytes());
    assert_eq!(synced.labels()[LABEL_MANAGED], "true");
    assert_eq!(
        synced.labels()[LABEL_CREATED_BY],
        target::created_by(NS, "db")
    );
    assert_eq!(
        synced.annotations()[ANNOTATION_DATA_HASH],
        target::data_hash(&synced)
    );
    assert_eq!(synced.owner_references()[0].kind, "ExternalSecret");
    let es = ready(&cluster, "db", "True", "SecretSynced").await;
    let status = es.status.unwrap();
    assert!(status.refresh_time.is_some());
    assert!(status.synced_resource_version.unwrap().starts_with("1-"));
    let stores: Api<SecretStore> = Api::namespaced(cluster.client.clone(), NS);
    wait_for("store Ready", || async {
        let s = stores.get("vault").await.ok()?;
        let c = s
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (c.status == "True" && c.reason.as_deref() == Some("Valid")).then_some(())
    })
    .await;

    // A rotation in the store reaches the Secret within the refresh interval.
    bao.bao(&[
        "kv",
        "put",
        "secret/app/db",
        &format!("user={USER}"),
        &format!("password={ROTATED}"),
    ]);
    secret_with(&cluster, "db-credentials", "password", ROTATED).await;

    // Access revoked: the last good Secret stays, Ready=False says why.
    bao.bao_with_stdin(
        &["policy", "write", "read-app", "-"],
        br#"path "secret/data/other" { capabilities = ["read"] }"#,
    );
    ready(&cluster, "db", "False", "SecretSyncedError").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kept = cluster.secrets(NS).get("db-credentials").await.unwrap();
    assert_eq!(
        kept.data.as_ref().unwrap()["password"].0,
        ROTATED.as_bytes()
    );
    assert_no_values_outside_secrets(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_v1_extract_and_approle_log_in_once_for_a_hundred_external_secrets() {
    let Some(bao) = bao().await else { return };
    bao.bao(&["kv", "put", "kv1/app/cfg", "host=db.internal", "port=5432"]);
    bao.bao(&[
        "kv",
        "put",
        "secret/app/five",
        "a=1",
        "b=2",
        "c=3",
        "d=4",
        "e=5",
    ]);
    bao.bao(&["auth", "enable", "approle"]);
    bao.bao(&[
        "write",
        "auth/approle/role/eso",
        "token_policies=read-app",
        "token_ttl=1h",
    ]);
    let role_id = bao.bao(&["read", "-field=role_id", "auth/approle/role/eso/role-id"]);
    let secret_id = bao.bao(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/eso/secret-id",
    ]);
    let audit = bao.enable_audit();
    let cluster = Cluster::start().await;
    secret(&cluster, "approle", &[("secret-id", secret_id.trim())]).await;
    let auth = json!({"appRole": {"path": "approle", "roleId": role_id.trim(),
                                  "secretRef": {"name": "approle", "key": "secret-id"}}});
    store(
        &cluster,
        "v2",
        json!({"server": bao.url(), "path": "secret", "auth": auth}),
    )
    .await;
    store(
        &cluster,
        "v1",
        json!({"server": bao.url(), "path": "kv1", "version": "v1", "auth": auth}),
    )
    .await;
    let _controller = cluster.controller("r1", &[]).await;

    // KV v1, dataFrom.extract: every key of the secret.
    external_secret(
        &cluster,
        "cfg",
        json!({"secretStoreRef": {"name": "v1"}, "refreshInterval": "1h",
               "dataFrom": [{"extract": {"key": "app/cfg"}}]}),
    )
    .await;
    let cfg = secret_with(&cluster, "cfg", "port", "5432").await;
    assert_eq!(cfg.data.as_ref().unwrap()["host"].0, b"db.internal");

    // Five properties of one path: one read of that path.
    let five: Vec<Value> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|p| json!({"secretKey": p, "remoteRef": {"key": "app/five", "property": p}}))
        .collect();
    external_secret(
        &cluster,
        "five",
        json!({"secretStoreRef": {"name": "v2"}, "refreshInterval": "0", "data": five}),
    )
    .await;
    secret_with(&cluster, "five", "e", "5").await;
    assert_eq!(audit.count("secret/data/app/five", "read"), 1);

    // A hundred ExternalSecrets on one store, each synced several times: one login.
    for i in 0..100 {
        external_secret(
            &cluster,
            &format!("many-{i}"),
            json!({"secretStoreRef": {"name": "v2"}, "refreshInterval": "2s",
                   "data": [{"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}]}),
        )
        .await;
    }
    for i in 0..100 {
        secret_with(&cluster, &format!("many-{i}"), "password", PASSWORD).await;
    }
    let reads = || audit.count("secret/data/app/db", "read");
    let first = reads();
    let since = k8s_openapi::jiff::Timestamp::now();
    let started = std::time::Instant::now();
    let es: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), NS);
    wait_for("every ExternalSecret refreshed again", || async {
        let list = es.list(&Default::default()).await.ok()?;
        let refreshed = list
            .items
            .iter()
            .filter(|e| {
                e.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("many-"))
            })
            .filter(|e| {
                let at = e.status.as_ref().and_then(|s| s.refresh_time.as_ref());
                at.is_some_and(|t| t.0 > since)
            })
            .count();
        (refreshed == 100).then_some(())
    })
    .await;
    // ... sharing reads: a refresh of all hundred costs one read per refresh window (1 s
    // for a 2 s interval), however many windows a slow machine takes to refresh them all.
    let windows = started.elapsed().as_secs() as usize + 2;
    assert!(
        reads() - first <= windows,
        "{} reads for one refresh of 100 ExternalSecrets over {windows} windows",
        reads() - first
    );
    // One login per store (two stores here), however many ExternalSecrets and syncs.
    assert_eq!(
        audit.count("auth/approle/login", "update"),
        2,
        "one login per store"
    );
    assert_no_values_outside_secrets(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_auth_goes_through_token_review() {
    let Some(bao) = bao().await else { return };
    let cluster = Cluster::start().await;
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), NS);
    apply(
        &accounts,
        json!({"metadata": {"name": "vault-reader", "namespace": NS}}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cluster.server.ca_pem()).unwrap();
    bao.bao(&["auth", "enable", "kubernetes"]);
    bao.bao(&[
        "write",
        "auth/kubernetes/config",
        &format!("kubernetes_host={}", cluster.server.url()),
        &format!("kubernetes_ca_cert=@{}", ca.display()),
        &format!("token_reviewer_jwt={}", cluster.server.token()),
    ]);
    bao.bao(&[
        "write",
        "auth/kubernetes/role/app",
        "bound_service_account_names=vault-reader",
        &format!("bound_service_account_namespaces={NS}"),
        "token_policies=read-app",
    ]);
    store(
        &cluster,
        "vault",
        json!({"server": bao.url(), "path": "secret",
               "auth": {"kubernetes": {"mountPath": "kubernetes", "role": "app",
                                       "serviceAccountRef": {"name": "vault-reader"}}}}),
    )
    .await;
    let _controller = cluster.controller("r1", &[]).await;
    external_secret(
        &cluster,
        "db",
        json!({"secretStoreRef": {"name": "vault"},
               "dataFrom": [{"extract": {"key": "app/db"}}]}),
    )
    .await;
    secret_with(&cluster, "db", "user", USER).await;
    ready(&cluster, "db", "True", "SecretSynced").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_auth_with_a_service_account_token() {
    let Some(bao) = bao().await else { return };
    let cluster = Cluster::start().await;
    vault_jwt_role(&cluster, &bao).await;
    store(
        &cluster,
        "vault",
        json!({"server": bao.url(), "path": "secret",
               "auth": {"jwt": {"path": "jwt", "role": "app",
                   "kubernetesServiceAccountToken": {"serviceAccountRef": {"name": "vault-jwt"}}}}}),
    )
    .await;
    let _controller = cluster.controller("r1", &[]).await;
    external_secret(
        &cluster,
        "db",
        json!({"secretStoreRef": {"name": "vault"},
               "data": [{"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}]}),
    )
    .await;
    secret_with(&cluster, "db", "password", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_secret_is_deleted_only_after_the_second_sync() {
    let Some(bao) = bao().await else { return };
    bao.bao(&["kv", "put", "secret/app/temp", "v=1"]);
    let cluster = Cluster::start().await;
    token_store(&cluster, &bao, bao.root_token()).await;
    let _controller = cluster.controller("r1", &[]).await;
    external_secret(
        &cluster,
        "temp",
        json!({"secretStoreRef": {"name": "vault"}, "refreshInterval": "3s",
               "target": {"deletionPolicy": "Delete"},
               "data": [{"secretKey": "v", "remoteRef": {"key": "app/temp", "property": "v"}}]}),
    )
    .await;
    secret_with(&cluster, "temp", "v", "1").await;
    bao.bao(&["kv", "metadata", "delete", "secret/app/temp"]);
    // First not-found: the Secret stays.
    ready(&cluster, "temp", "False", "SecretSyncedError").await;
    assert!(cluster.secrets(NS).get_opt("temp").await.unwrap().is_some());
    // Second: deleted.
    ready(&cluster, "temp", "True", "SecretDeleted").await;
    assert!(cluster.secrets(NS).get_opt("temp").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_secrets_are_left_alone_and_esos_are_adopted_without_a_write() {
    let Some(bao) = bao().await else { return };
    let cluster = Cluster::start().await;
    token_store(&cluster, &bao, bao.root_token()).await;
    let data =
        json!([{"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}]);
    // A Secret somebody else made.
    secret(&cluster, "taken", &[("password", "theirs")]).await;
    // A Secret a SealedSecret controls; even Merge may not write it.
    apply(
        &cluster.secrets(NS),
        json!({"metadata": {"name": "sealed", "namespace": NS,
                            "ownerReferences": [{"apiVersion": "bitnami.com/v1alpha1",
                                "kind": "SealedSecret", "name": "sealed", "uid": "u-sealed",
                                "controller": true}]},
               "data": {"password": "dGhlaXJz"}}),
    )
    .await;
    external_secret(
        &cluster,
        "taken",
        json!({"secretStoreRef": {"name": "vault"}, "data": data}),
    )
    .await;
    external_secret(
        &cluster,
        "merge",
        json!({"secretStoreRef": {"name": "vault"}, "data": data,
               "target": {"name": "sealed", "creationPolicy": "Merge"}}),
    )
    .await;
    // A Secret ESO made for "migrated": same data, same marks, same owner.
    let migrated = external_secret(
        &cluster,
        "migrated",
        json!({"secretStoreRef": {"name": "vault"}, "data": data}),
    )
    .await;
    let mut eso: Secret = serde_json::from_value(json!({
        "metadata": {"name": "migrated", "namespace": NS,
            "labels": {LABEL_MANAGED: "true", LABEL_CREATED_BY: target::created_by(NS, "migrated")},
            "ownerReferences": [{"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                "name": "migrated", "uid": migrated.uid().unwrap(), "controller": true,
                "blockOwnerDeletion": true}]},
        "type": "Opaque",
        "data": {"password": base64_of(PASSWORD)}
    }))
    .unwrap();
    let hash = target::data_hash(&eso);
    eso.metadata
        .annotations
        .get_or_insert_default()
        .insert(ANNOTATION_DATA_HASH.into(), hash);
    let eso = cluster
        .secrets(NS)
        .create(&PostParams::default(), &eso)
        .await
        .unwrap();

    let _controller = cluster.controller("r1", &[]).await;
    ready(&cluster, "taken", "False", "SecretSyncedError").await;
    ready(&cluster, "merge", "False", "SecretSyncedError").await;
    ready(&cluster, "migrated", "True", "SecretSynced").await;
    let secrets = cluster.secrets(NS);
    let taken = secrets.get("taken").await.unwrap();
    assert_eq!(taken.data.as_ref().unwrap()["password"].0, b"theirs");
    let sealed = secrets.get("sealed").await.unwrap();
    assert_eq!(sealed.data.as_ref().unwrap()["password"].0, b"theirs");
    let adopted = secrets.get("migrated").await.unwrap();
    assert_eq!(
        adopted.metadata.resource_version, eso.metadata.resource_version,
        "ESO's Secret was adopted without a write"
    );

    // The target renamed: the Secret it made under the old name goes, one that only
    // carries its created-by label (nobody's controller) stays.
    apply(
        &secrets,
        json!({"metadata": {"name": "decoy", "namespace": NS,
                            "labels": {LABEL_CREATED_BY: target::created_by(NS, "migrated")}}}),
    )
    .await;
    es_api(&cluster)
        .patch(
            "migrated",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"target": {"name": "migrated-2"}}})),
        )
        .await
        .unwrap();
    wait_for("the renamed target, and the old one gone", || async {
        let renamed = secrets.get_opt("migrated-2").await.unwrap()?;
        let old = secrets.get_opt("migrated").await.unwrap();
        old.is_none().then_some(renamed)
    })
    .await;
    assert!(secrets.get_opt("decoy").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_external_secrets_fan_out_and_cluster_store_conditions_hold() {
    let Some(bao) = bao().await else { return };
    let cluster = Cluster::start().await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    for (ns, team) in [(NS, "a"), ("other", "a"), (CONTROLLER_NS, "z")] {
        namespaces
            .patch(
                ns,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"labels": {"team": team}}})),
            )
            .await
            .unwrap();
    }
    secret(&cluster, "vault-token", &[("token", bao.root_token())]).await;
    let stores: Api<ClusterSecretStore> = Api::all(cluster.client.clone());
    // Usable from `prod` only; its token is read from `prod` whoever uses it.
    apply(
        &stores,
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
               "metadata": {"name": "vault"},
               "spec": {"conditions": [{"namespaces": [NS]}],
                        "provider": {"vault": {"server": bao.url(), "path": "secret",
                            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token", "namespace": NS}}}}}}),
    )
    .await;
    let fan_out: Api<ClusterExternalSecret> = Api::all(cluster.client.clone());
    apply(
        &fan_out,
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret",
               "metadata": {"name": "db"},
               "spec": {"namespaceSelectors": [{"matchLabels": {"team": "a"}}],
                        "externalSecretName": "db",
                        "externalSecretSpec": {
                            "secretStoreRef": {"name": "vault", "kind": "ClusterSecretStore"},
                            "data": [{"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}]}}}),
    )
    .await;
    let _controller = cluster.controller("r1", &[]).await;
    secret_with(&cluster, "db", "password", PASSWORD).await;
    let status = wait_for("the fan-out status", || async {
        let ces = fan_out.get("db").await.ok()?;
        let status = ces.status?;
        (status.provisioned_namespaces.len() == 2).then_some(status)
    })
    .await;
    assert_eq!(status.provisioned_namespaces, ["other", NS]);
    // `other` has its ExternalSecret, but the store's conditions keep it out.
    let other: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "other");
    let denied = wait_for("other's ExternalSecret denied", || async {
        let es = other.get("db").await.ok()?;
        let c = es
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (c.status == "False").then_some(())
    })
    .await;
    let () = denied;
    assert!(
        cluster
            .secrets("other")
            .get_opt("db")
            .await
            .unwrap()
            .is_none()
    );
    assert!(other.get("db").await.unwrap().owner_references()[0].kind == "ClusterExternalSecret");
    // A namespace that stops matching loses the ExternalSecret.
    namespaces
        .patch(
            "other",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"team": "b"}}})),
        )
        .await
        .unwrap();
    wait_for("other's ExternalSecret removed", || async {
        other.get_opt("db").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_template_from_find_rewrite_and_immutable_targets() {
    let Some(bao) = bao().await else { return };
    bao.bao(&["kv", "put", "secret/app/svc/one", "x=1"]);
    bao.bao(&["kv", "put", "secret/app/svc/two", "x=2"]);
    let cluster = Cluster::start().await;
    token_store(&cluster, &bao, bao.root_token()).await;
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(cluster.client.clone(), NS);
    apply(
        &maps,
        json!({"metadata": {"name": "tpl", "namespace": NS},
               "data": {"config.yaml": "user: {{ .user }}\n"}}),
    )
    .await;
    let _controller = cluster.controller("r1", &[]).await;
    let data = json!([
        {"secretKey": "user", "remoteRef": {"key": "app/db", "property": "user"}},
        {"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}
    ]);
    external_secret(
        &cluster,
        "rendered",
        json!({"secretStoreRef": {"name": "vault"}, "refreshInterval": "1h",
               "data": data,
               "dataFrom": [{"find": {"path": "app/svc", "name": {"regexp": "svc/.*"}},
                             "rewrite": [{"regexp": {"source": "^app/svc/(.*)$", "target": "svc-$1"}}]}],
               "target": {"template": {
                   "mergePolicy": "Merge",
                   "metadata": {"labels": {"kind": "db"}},
                   "data": {"dsn": "{{ .user }}:{{ .password }}",
                            "auth": "{{ printf \"%s:%s\" .user .password | b64enc }}"},
                   "templateFrom": [{"configMap": {"name": "tpl", "items": [{"key": "config.yaml"}]}}]}}}),
    )
    .await;
    let rendered = secret_with(&cluster, "rendered", "user", USER).await;
    let data = rendered.data.as_ref().unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!(text("dsn"), format!("{USER}:{PASSWORD}"));
    assert_eq!(text("auth"), base64_of(&format!("{USER}:{PASSWORD}")));
    assert_eq!(text("config.yaml"), format!("user: {USER}\n"));
    assert_eq!(text("svc-one"), r#"{"x":"1"}"#);
    assert_eq!(text("svc-two"), r#"{"x":"2"}"#);
    assert_eq!(
        text("password"),
        PASSWORD,
        "mergePolicy Merge keeps the fetched keys"
    );
    assert_eq!(rendered.labels()["kind"], "db");

    // An immutable target keeps its first data; a change is refused, not written.
    external_secret(
        &cluster,
        "frozen",
        json!({"secretStoreRef": {"name": "vault"}, "refreshInterval": "1s",
               "target": {"immutable": true},
               "data": [{"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}]}),
    )
    .await;
    let frozen = secret_with(&cluster, "frozen", "password", PASSWORD).await;
    assert_eq!(frozen.immutable, Some(true));
    bao.bao(&[
        "kv",
        "put",
        "secret/app/db",
        &format!("user={USER}"),
        &format!("password={ROTATED}"),
    ]);
    let es = ready(&cluster, "frozen", "False", "SecretSyncedError").await;
    let condition = es
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        condition.message.as_deref(),
        Some("could not update secret, target is immutable")
    );
    let kept = cluster.secrets(NS).get("frozen").await.unwrap();
    assert_eq!(
        kept.data.as_ref().unwrap()["password"].0,
        PASSWORD.as_bytes()
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
