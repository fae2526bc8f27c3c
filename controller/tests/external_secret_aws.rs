//! ExternalSecrets from AWS Secrets Manager (a local moto): static credentials and IRSA
//! (a service account token from the test API server exchanged at moto's STS), JSON
//! properties, plain and binary secrets, a rotation (AWSCURRENT moves, AWSPREVIOUS stays
//! readable), and a deleted secret removed only after the second sync. Skipped with a
//! notice without moto (scripts/test.sh installs it).

mod common;

use common::*;
use gitseal_api::{ExternalSecret, SecretStore};
use gitseal_testkit::moto::Moto;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_manager_with_static_credentials_and_irsa() {
    let Some(moto) = tokio::task::spawn_blocking(Moto::start).await.unwrap() else {
        return;
    };
    moto.boto3(
        "sm.create_secret(Name='app/db', SecretString=json.dumps({'user': 'u1', 'password': 'p1', 'nested': {'port': 5432}}))\n\
         sm.create_secret(Name='app/plain', SecretString='just-a-string')\n\
         sm.create_secret(Name='app/blob', SecretBinary=b'\\x00\\x01binary')\n\
         sm.create_secret(Name='app/temp', SecretString='{\"v\": \"1\"}')",
    );
    let cluster = Cluster::start().await;
    let url = moto.url().to_owned();
    let _controller = cluster
        .controller("r1", &[&format!("--aws-endpoint-url={url}")])
        .await;
    let secrets = cluster.secrets(NS);
    let mut keys = k8s_openapi::api::core::v1::Secret::default();
    keys.metadata.name = Some("aws".into());
    keys.string_data = Some(
        [
            ("id".to_owned(), "testing".to_owned()),
            ("secret".to_owned(), "testing".to_owned()),
        ]
        .into(),
    );
    secrets.create(&PostParams::default(), &keys).await.unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), NS);
    create_object(
        &accounts,
        json!({"metadata": {"name": "irsa", "namespace": NS, "annotations":
            {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/app"}}}),
    )
    .await;
    let stores: Api<SecretStore> = Api::namespaced(cluster.client.clone(), NS);
    for (name, auth) in [
        (
            "static",
            json!({"secretRef": {"accessKeyIDSecretRef": {"name": "aws", "key": "id"},
                                 "secretAccessKeySecretRef": {"name": "aws", "key": "secret"}}}),
        ),
        (
            "irsa",
            json!({"jwt": {"serviceAccountRef": {"name": "irsa"}}}),
        ),
    ] {
        create_object(
            &stores,
            json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                   "metadata": {"name": name, "namespace": NS},
                   "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1", "auth": auth}}}}),
        )
        .await;
    }
    let es: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), NS);
    for store in ["static", "irsa"] {
        create_object(
            &es,
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                   "metadata": {"name": format!("db-{store}"), "namespace": NS},
                   "spec": {"refreshInterval": "1s", "secretStoreRef": {"name": store},
                            "data": [
                                {"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}},
                                {"secretKey": "port", "remoteRef": {"key": "app/db", "property": "nested.port"}},
                                {"secretKey": "previous", "remoteRef": {"key": "app/db", "property": "password", "version": "AWSPREVIOUS"}},
                                {"secretKey": "plain", "remoteRef": {"key": "app/plain"}},
                                {"secretKey": "blob", "remoteRef": {"key": "app/blob"}}
                            ]}}),
        )
        .await;
    }
    // AWSPREVIOUS exists only after a rotation: rotate first, then both follow.
    moto.boto3("sm.put_secret_value(SecretId='app/db', SecretString=json.dumps({'user': 'u1', 'password': 'p2', 'nested': {'port': 5432}}))");
    for store in ["static", "irsa"] {
        let name = format!("db-{store}");
        let secret = secret_with(&cluster, &name, "password", "p2").await;
        let data = secret.data.unwrap();
        assert_eq!(data["previous"].0, b"p1");
        assert_eq!(data["port"].0, b"5432");
        assert_eq!(data["plain"].0, b"just-a-string");
        assert_eq!(data["blob"].0, b"\x00\x01binary");
        external_secret_ready(&cluster, &name, "True", "SecretSynced").await;
    }

    // A deleted secret (in its recovery window) is not found; with deletionPolicy Delete
    // the Secret goes only after the second sync that finds it missing.
    create_object(
        &es,
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
               "metadata": {"name": "temp", "namespace": NS},
               "spec": {"refreshInterval": "2s", "secretStoreRef": {"name": "static"},
                        "target": {"deletionPolicy": "Delete"},
                        "dataFrom": [{"extract": {"key": "app/temp"}}]}}),
    )
    .await;
    secret_with(&cluster, "temp", "v", "1").await;
    moto.boto3("sm.delete_secret(SecretId='app/temp', RecoveryWindowInDays=7)");
    external_secret_ready(&cluster, "temp", "False", "SecretSyncedError").await;
    assert!(secrets.get_opt("temp").await.unwrap().is_some());
    external_secret_ready(&cluster, "temp", "True", "SecretDeleted").await;
    assert!(secrets.get_opt("temp").await.unwrap().is_none());
}
