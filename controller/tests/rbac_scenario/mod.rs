//! One scenario per reconciler for the RBAC tests (controller/tests/rbac.rs): each drives
//! its reconciler through the API requests its chart rules are there for — reads, watches,
//! status patches, Secret writes, deletions, events — with the cluster's full-access client
//! playing the user.

use std::path::Path;

use crate::common::*;
use gitseal_api::{
    ANNOTATION_RESTART_ON_SECRET_CHANGE, ANNOTATION_RESTARTED_FOR, ClusterExternalSecret,
    ClusterSecretStore, ExternalSecret, SecretStore, SopsSecret,
};
use gitseal_controller::Running;
use gitseal_testkit::openbao::OpenBao;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

/// SealedSecrets: unsealed, a tampered Secret restored, a deleted one recreated.
pub async fn sealed_secrets(cluster: &Cluster, controller: &Running) {
    let cert = certificate(controller).await;
    cluster
        .create(sealed_secret(&cert, "db", &[("password", "s3cr3t")]))
        .await;
    secret_with(cluster, "db", "password", "s3cr3t").await;
    synced(cluster, "db", "True").await;
    cluster
        .secrets(NS)
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"password": "eA=="}})),
        )
        .await
        .unwrap();
    secret_with(cluster, "db", "password", "s3cr3t").await;
    cluster
        .secrets(NS)
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    secret_with(cluster, "db", "password", "s3cr3t").await;
}

/// A SopsSecret of `templates` (name, password) pairs, keys in sorted order.
fn sops_manifest(templates: &[(&str, &str)]) -> String {
    let mut text = "apiVersion: isindir.github.com/v1alpha3\nkind: SopsSecret\n\
                    metadata:\n  name: app\nspec:\n  secretTemplates:\n"
        .to_owned();
    for (name, password) in templates {
        text.push_str(&format!(
            "    - name: {name}\n      stringData:\n        password: {password}\n"
        ));
    }
    text
}

/// Encrypts `plain` with the real sops to the age `recipient`, as JSON.
fn encrypt(dir: &Path, plain: &str, recipient: &str) -> Value {
    let regex = [
        "--age",
        recipient,
        "--encrypted-regex",
        "^(data|stringData)$",
    ];
    sops(dir, "app.yaml", plain, &regex, &[])
}

/// SopsSecrets: decrypted with the controller's age key into two Secrets; a new version
/// with one template fewer updates one and deletes the other.
pub async fn sops_secrets(cluster: &Cluster, controller: &Running) {
    let url = format!("http://{}/v1/age-recipient", controller.api_addr);
    let recipient = wait_for("the age recipient", || async {
        let response = reqwest::get(&url).await.ok()?;
        response.status().is_success().then_some(())?;
        Some(response.text().await.ok()?.trim().to_owned())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let first = sops_manifest(&[("sops-api", "s3cr3t-api"), ("sops-db", "s3cr3t-db")]);
    let api: Api<SopsSecret> = Api::namespaced(cluster.client.clone(), NS);
    create_object(&api, encrypt(dir.path(), &first, &recipient)).await;
    secret_with(cluster, "sops-api", "password", "s3cr3t-api").await;
    secret_with(cluster, "sops-db", "password", "s3cr3t-db").await;
    let second = encrypt(
        dir.path(),
        &sops_manifest(&[("sops-db", "rotated-db")]),
        &recipient,
    );
    let patch = json!({"spec": second["spec"], "sops": second["sops"]});
    api.patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("SopsSecret patched");
    secret_with(cluster, "sops-db", "password", "rotated-db").await;
    let secrets = cluster.secrets(NS);
    wait_for("sops-api deleted", || async {
        secrets
            .get_opt("sops-api")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
}

const POLICY: &str = r#"path "secret/data/app/*" { capabilities = ["read"] }"#;
const PASSWORD: &str = "password-5b1d";
const ROTATED: &str = "rotated-8e4a";

/// An OpenBao dev server with `secret/app/db`, or `None` (skipped) without the binary.
pub async fn bao() -> Option<OpenBao> {
    let bao = tokio::task::spawn_blocking(OpenBao::start).await.unwrap()?;
    bao.bao_with_stdin(&["policy", "write", "read-app", "-"], POLICY.as_bytes());
    bao.bao(&[
        "kv",
        "put",
        "secret/app/db",
        &format!("password={PASSWORD}"),
    ]);
    Some(bao)
}

/// Deployment, StatefulSet and DaemonSet `app` in [`NS`], restarted when `secret` changes.
async fn workloads(cluster: &Cluster, secret: &str) {
    let object = |kind: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "app", "namespace": NS,
                         "annotations": {ANNOTATION_RESTART_ON_SECRET_CHANGE: secret}},
            "spec": {"selector": {"matchLabels": {"app": "app"}},
                     "serviceName": "app",
                     "template": {"metadata": {"labels": {"app": "app"}},
                                  "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}}
        })
    };
    let client = cluster.client.clone();
    let mut deployment = object("Deployment");
    deployment["spec"]
        .as_object_mut()
        .unwrap()
        .remove("serviceName");
    let mut daemon_set = object("DaemonSet");
    daemon_set["spec"]
        .as_object_mut()
        .unwrap()
        .remove("serviceName");
    create_object(
        &Api::<Deployment>::namespaced(client.clone(), NS),
        deployment,
    )
    .await;
    create_object(
        &Api::<StatefulSet>::namespaced(client.clone(), NS),
        object("StatefulSet"),
    )
    .await;
    create_object(&Api::<DaemonSet>::namespaced(client, NS), daemon_set).await;
}

/// Waits until the workload `app` of kind `K` was restarted.
async fn restarted<K>(cluster: &Cluster)
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), NS);
    wait_for(&format!("{} restarted", K::kind(&())), || async {
        let object = serde_json::to_value(api.get("app").await.ok()?).ok()?;
        object["spec"]["template"]["metadata"]["annotations"][ANNOTATION_RESTARTED_FOR]
            .is_string()
            .then_some(())
    })
    .await;
}

/// ExternalSecrets from a real OpenBao: a SecretStore with JWT auth by a service account
/// token (TokenRequest), a template from a ConfigMap, a rotation that restarts workloads,
/// a renamed target whose old Secret is deleted;
/// a ClusterSecretStore allowed by Namespace labels and a ClusterExternalSecret whose
/// ExternalSecrets are created, updated and deleted as it and the namespaces change.
pub async fn external_secrets(cluster: &Cluster, bao: &OpenBao) {
    let client = cluster.client.clone();
    // JWT auth with a token of the service account `vault-jwt`.
    vault_jwt_role(cluster, bao).await;
    create_object(
        &Api::<SecretStore>::namespaced(client.clone(), NS),
        json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
               "metadata": {"name": "vault", "namespace": NS},
               "spec": {"provider": {"vault": {"server": bao.url(), "path": "secret",
                   "auth": {"jwt": {"path": "jwt", "role": "app",
                       "kubernetesServiceAccountToken": {"serviceAccountRef": {"name": "vault-jwt"}}}}}}}}),
    )
    .await;
    create_object(
        &Api::<ConfigMap>::namespaced(client.clone(), NS),
        json!({"metadata": {"name": "tpl", "namespace": NS},
               "data": {"dsn": "db://{{ .password }}"}}),
    )
    .await;
    workloads(cluster, "es-db").await;
    create_object(
        &Api::<ExternalSecret>::namespaced(client.clone(), NS),
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
               "metadata": {"name": "es-db", "namespace": NS},
               "spec": {"refreshInterval": "1s",
                        "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                        "target": {"template": {"mergePolicy": "Merge",
                            "templateFrom": [{"configMap": {"name": "tpl", "items": [{"key": "dsn"}]}}]}},
                        "data": [{"secretKey": "password",
                                  "remoteRef": {"key": "app/db", "property": "password"}}]}}),
    )
    .await;
    secret_with(cluster, "es-db", "dsn", &format!("db://{PASSWORD}")).await;
    external_secret_ready(cluster, "es-db", "True", "SecretSynced").await;
    // A rotation updates the Secret and restarts the workloads that name it.
    bao.bao(&["kv", "put", "secret/app/db", &format!("password={ROTATED}")]);
    secret_with(cluster, "es-db", "password", ROTATED).await;
    restarted::<Deployment>(cluster).await;
    restarted::<StatefulSet>(cluster).await;
    restarted::<DaemonSet>(cluster).await;
    // A renamed target: the Secret under the old name is deleted.
    Api::<ExternalSecret>::namespaced(client.clone(), NS)
        .patch(
            "es-db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"target": {"name": "es-renamed"}}})),
        )
        .await
        .unwrap();
    secret_with(cluster, "es-renamed", "password", ROTATED).await;
    let secrets = cluster.secrets(NS);
    wait_for("the old target deleted", || async {
        secrets.get_opt("es-db").await.ok()?.is_none().then_some(())
    })
    .await;

    // The cluster-scoped kinds: a store allowed by Namespace labels, a fan-out to the
    // namespaces labelled team=a.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [NS, "other"] {
        namespaces
            .patch(
                ns,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"labels": {"team": "a"}}})),
            )
            .await
            .unwrap();
    }
    create_object(
        &cluster.secrets(NS),
        json!({"metadata": {"name": "vault-token", "namespace": NS},
               "stringData": {"token": bao.root_token()}}),
    )
    .await;
    create_object(
        &Api::<ClusterSecretStore>::all(client.clone()),
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
               "metadata": {"name": "cluster-vault"},
               "spec": {"conditions": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
                        "provider": {"vault": {"server": bao.url(), "path": "secret",
                            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token", "namespace": NS}}}}}}),
    )
    .await;
    let fan_out: Api<ClusterExternalSecret> = Api::all(client.clone());
    let spec = |key: &str| {
        json!({"secretStoreRef": {"name": "cluster-vault", "kind": "ClusterSecretStore"},
               "refreshInterval": "1h",
               "data": [{"secretKey": key, "remoteRef": {"key": "app/db", "property": "password"}}]})
    };
    create_object(
        &fan_out,
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret",
               "metadata": {"name": "fan"},
               "spec": {"namespaceSelectors": [{"matchLabels": {"team": "a"}}],
                        "externalSecretName": "fanned",
                        "externalSecretSpec": spec("password")}}),
    )
    .await;
    let other = cluster.secrets("other");
    wait_for("the fanned-out Secret in other", || async {
        let secret = other.get_opt("fanned").await.ok()??;
        (secret.data?.get("password")?.0 == ROTATED.as_bytes()).then_some(())
    })
    .await;
    secret_with(cluster, "fanned", "password", ROTATED).await;
    wait_for("the fan-out status", || async {
        let status = fan_out.get("fan").await.ok()?.status?;
        (status.provisioned_namespaces.len() == 2).then_some(())
    })
    .await;
    let stores: Api<ClusterSecretStore> = Api::all(client.clone());
    wait_for("the cluster store's status", || async {
        stores.get("cluster-vault").await.ok()?.status.map(|_| ())
    })
    .await;
    // A changed ClusterExternalSecret updates its ExternalSecrets...
    fan_out
        .patch(
            "fan",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"externalSecretSpec": spec("renamed")}})),
        )
        .await
        .unwrap();
    secret_with(cluster, "fanned", "renamed", ROTATED).await;
    // ...and a namespace that stops matching loses its ExternalSecret.
    namespaces
        .patch(
            "other",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"team": "b"}}})),
        )
        .await
        .unwrap();
    let in_other: Api<ExternalSecret> = Api::namespaced(client, "other");
    wait_for("other's ExternalSecret removed", || async {
        in_other
            .get_opt("fanned")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
}
