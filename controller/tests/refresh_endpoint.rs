//! `POST /v1/refresh`: off (404) without a credential source; 401 without or with a bad
//! bearer token, 403 for a service account not listed, 400 for a bad body; a token from
//! the token Secret or a listed service account's token (TokenReview) refreshes at once
//! the ExternalSecrets reading the named remote secret — and only those (against moto,
//! a local AWS Secrets Manager; that part is skipped with a notice without moto).

mod common;

use std::time::Duration;

use common::*;
use gitseal_api::{ClusterSecretStore, ExternalSecret};
use gitseal_testkit::moto::Moto;
use gitseal_testkit::wait_for_within;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The token Secret, in the controller's namespace.
const TOKEN_SECRET: &str = "gitseal-refresh-token";
const TOKEN: &str = "s3cr3t-refresh-token-0123456789";

/// The flags that turn the endpoint on: the token Secret, the service account `ci:refresher`,
/// and a rate limit that the scenario's requests stay under.
fn refresh_flags() -> Vec<String> {
    vec![
        format!("--refresh-token-secret={CONTROLLER_NS}/{TOKEN_SECRET}"),
        "--refresh-service-accounts=ci:refresher,ci:absent".into(),
        "--rate-limit=100".into(),
        "--rate-limit-burst=100".into(),
    ]
}

async fn token_secret(cluster: &Cluster, token: &str) {
    let mut secret = Secret::default();
    secret.metadata.name = Some(TOKEN_SECRET.into());
    secret.string_data = Some([("token".to_owned(), token.to_owned())].into());
    cluster
        .secrets(CONTROLLER_NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// POSTs `body` to `/v1/refresh` with `token` as bearer token; the status, the
/// `WWW-Authenticate` header and the body.
async fn post(
    running: &gitseal_controller::Running,
    token: Option<&str>,
    body: &str,
) -> (u16, Option<String>, String) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("http://{}/v1/refresh", running.api_addr))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    (status, challenge, text)
}

const CLUSTER_BODY_A: &str =
    r#"{"store": {"kind": "ClusterSecretStore", "name": "aws"}, "key": "app/a"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_is_off_without_a_credential_source() {
    let cluster = Cluster::start().await;
    let controller = cluster.controller("r1", &[]).await;
    let (status, _, _) = post(&controller, Some(TOKEN), CLUSTER_BODY_A).await;
    assert_eq!(status, 404);
    // Stopped once the first key exists: `reconcile::run` waits for it without watching
    // `stop`, so a stop before it would hang.
    certificate(&controller).await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_authenticate_by_token_secret_or_service_account() {
    let cluster = Cluster::start().await;
    token_secret(&cluster, TOKEN).await;
    let flags = refresh_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let controller = cluster.controller("r1", &flags).await;

    // No credential, another scheme, a wrong token: 401 with a Bearer challenge.
    for token in [
        None,
        Some("wrong"),
        Some(&TOKEN[1..]),
        Some("x".repeat(4000).as_str()),
    ] {
        let (status, challenge, text) = post(&controller, token, CLUSTER_BODY_A).await;
        assert_eq!(status, 401, "{text}");
        assert!(challenge.unwrap().starts_with("Bearer"));
        assert!(!text.contains(TOKEN), "{text}");
    }
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/refresh", controller.api_addr))
        .header("authorization", format!("Basic {TOKEN}"))
        .body(CLUSTER_BODY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    // The token: a bad body is a 400 that says why; a good one a 200 with the count.
    for (body, why) in [
        ("{", "invalid body"),
        (
            r#"{"store": {"name": "aws"}, "key": "app/a"}"#,
            "namespace is required",
        ),
        (
            r#"{"store": {"kind": "ClusterSecretStore", "name": "aws", "namespace": "x"}, "key": "app/a"}"#,
            "not allowed for a ClusterSecretStore",
        ),
        (
            r#"{"store": {"kind": "Vault", "name": "aws"}, "key": "a"}"#,
            "store.kind",
        ),
    ] {
        let (status, _, text) = post(&controller, Some(TOKEN), body).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(why), "{body}: {text}");
        assert!(!text.contains(TOKEN), "{text}");
    }
    let (status, _, text) = post(&controller, Some(TOKEN), &"x".repeat(64 << 10)).await;
    assert_eq!(status, 413, "{text}");
    // 503 until this replica leads and its ExternalSecret reconcilers run.
    let text = wait_for("the ExternalSecret reconcilers to run", || async {
        let (status, _, text) = post(&controller, Some(TOKEN), CLUSTER_BODY_A).await;
        match status {
            200 => Some(text),
            503 => None,
            other => panic!("{other}: {text}"),
        }
    })
    .await;
    assert_eq!(text.trim(), r#"{"refreshed":0}"#);
    let (status, _, text) = post(
        &controller,
        Some(TOKEN),
        r#"{"store": {"name": "vault", "namespace": "prod"}, "key": "secret/app"}"#,
    )
    .await;
    assert_eq!((status, text.trim()), (200, r#"{"refreshed":0}"#));

    // Service accounts: a listed one is let in, one not listed is forbidden.
    let listed = service_account_token(&cluster, "ci", "refresher").await;
    let unlisted = service_account_token(&cluster, "ci", "intruder").await;
    let (status, _, text) = post(&controller, Some(&listed), CLUSTER_BODY_A).await;
    assert_eq!((status, text.trim()), (200, r#"{"refreshed":0}"#));
    let (status, challenge, text) = post(&controller, Some(&unlisted), CLUSTER_BODY_A).await;
    assert_eq!(status, 403, "{text}");
    assert_eq!(challenge, None);
    // A forbidden caller learns nothing about the body.
    let (status, _, _) = post(&controller, Some(&unlisted), "{").await;
    assert_eq!(status, 403);

    // An empty token in the Secret refuses everything (once the cache of a few seconds
    // has run out); the service accounts still work.
    cluster
        .secrets(CONTROLLER_NS)
        .patch(
            TOKEN_SECRET,
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"token": ""}})),
        )
        .await
        .unwrap();
    wait_for("the old token refused", || async {
        let (status, _, _) = post(&controller, Some(TOKEN), CLUSTER_BODY_A).await;
        (status == 401).then_some(())
    })
    .await;
    let (status, _, _) = post(&controller, Some(""), CLUSTER_BODY_A).await;
    assert_eq!(status, 401);
    let (status, _, _) = post(&controller, Some(&listed), CLUSTER_BODY_A).await;
    assert_eq!(status, 200);
    controller.stop().await;
}

/// The Secret `NS/name`'s `value`.
async fn value(cluster: &Cluster, name: &str) -> String {
    let secret = cluster.secrets(NS).get(name).await.unwrap();
    String::from_utf8(secret.data.unwrap()["value"].0.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_syncs_the_external_secrets_of_one_remote_secret_only() {
    let Some(moto) = tokio::task::spawn_blocking(Moto::start).await.unwrap() else {
        return;
    };
    moto.boto3(
        "sm.create_secret(Name='app/a', SecretString='a1')\n\
         sm.create_secret(Name='app/b', SecretString='b1')",
    );
    let cluster = Cluster::start().await;
    token_secret(&cluster, TOKEN).await;
    let mut flags = refresh_flags();
    flags.push(format!("--aws-endpoint-url={}", moto.url()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let controller = cluster.controller("r1", &flags).await;

    let mut keys = Secret::default();
    keys.metadata.name = Some("aws".into());
    keys.string_data = Some(
        [
            ("id".to_owned(), "testing".to_owned()),
            ("secret".to_owned(), "testing".to_owned()),
        ]
        .into(),
    );
    cluster
        .secrets(CONTROLLER_NS)
        .create(&PostParams::default(), &keys)
        .await
        .unwrap();
    let stores: Api<ClusterSecretStore> = Api::all(cluster.client.clone());
    create_object(
        &stores,
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
               "metadata": {"name": "aws"},
               "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1",
                   "auth": {"secretRef": {
                       "accessKeyIDSecretRef": {"name": "aws", "key": "id", "namespace": CONTROLLER_NS},
                       "secretAccessKeySecretRef": {"name": "aws", "key": "secret", "namespace": CONTROLLER_NS}}}}}}}),
    )
    .await;
    let es: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), NS);
    for (name, key) in [("first", "app/a"), ("second", "app/b")] {
        let object: Value = json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
               "metadata": {"name": name, "namespace": NS},
               "spec": {"refreshInterval": "1h",
                        "secretStoreRef": {"name": "aws", "kind": "ClusterSecretStore"},
                        "target": {"deletionPolicy": "Delete"},
                        "data": [{"secretKey": "value", "remoteRef": {"key": key}}]}});
        create_object(&es, object).await;
    }
    secret_with(&cluster, "first", "value", "a1").await;
    secret_with(&cluster, "second", "value", "b1").await;
    external_secret_ready(&cluster, "first", "True", "SecretSynced").await;
    external_secret_ready(&cluster, "second", "True", "SecretSynced").await;

    // Both remote secrets change; with `1h` neither ExternalSecret would notice soon.
    moto.boto3(
        "sm.put_secret_value(SecretId='app/a', SecretString='a2')\n\
         sm.put_secret_value(SecretId='app/b', SecretString='b2')",
    );
    let (status, _, _) = post(&controller, None, CLUSTER_BODY_A).await;
    assert_eq!(status, 401);
    let (status, _, _) = post(&controller, Some("wrong"), CLUSTER_BODY_A).await;
    assert_eq!(status, 401);
    assert_eq!(
        value(&cluster, "first").await,
        "a1",
        "no refresh without a token"
    );

    let (status, _, text) = post(&controller, Some(TOKEN), CLUSTER_BODY_A).await;
    assert_eq!(
        (status, text.trim()),
        (200, r#"{"refreshed":1}"#),
        "one ExternalSecret reads app/a through the ClusterSecretStore aws"
    );
    // The first follows within seconds; the second, whose key was not named, stays old.
    tokio::time::timeout(
        Duration::from_secs(10),
        secret_with(&cluster, "first", "value", "a2"),
    )
    .await
    .expect("the first ExternalSecret refreshed within 10 s");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(value(&cluster, "second").await, "b1");

    // The same through a listed service account's token, for app/b.
    let listed = service_account_token(&cluster, "ci", "refresher").await;
    let body_b = r#"{"store": {"kind": "ClusterSecretStore", "name": "aws"}, "key": "app/b"}"#;
    let (status, _, text) = post(&controller, Some(&listed), body_b).await;
    assert_eq!((status, text.trim()), (200, r#"{"refreshed":1}"#));
    tokio::time::timeout(
        Duration::from_secs(10),
        secret_with(&cluster, "second", "value", "b2"),
    )
    .await
    .expect("the second ExternalSecret refreshed within 10 s");
    // Another store of the same name (a namespaced SecretStore) is another store.
    let (status, _, text) = post(
        &controller,
        Some(TOKEN),
        r#"{"store": {"name": "aws", "namespace": "prod"}, "key": "app/a"}"#,
    )
    .await;
    assert_eq!((status, text.trim()), (200, r#"{"refreshed":0}"#));
    let unlisted = service_account_token(&cluster, "ci", "intruder").await;
    let (status, _, _) = post(&controller, Some(&unlisted), CLUSTER_BODY_A).await;
    assert_eq!(status, 403);

    // A refresh that finds the secret gone (deletionPolicy Delete): the not-found is
    // looked at again 30 s later with a read of its own, though the first answer is within
    // the hour's sharing window (a not-found is never confirmed by a shared read); only
    // then does the Secret go. The ExternalSecret is failed meanwhile.
    moto.boto3("sm.delete_secret(SecretId='app/b', ForceDeleteWithoutRecovery=True)");
    let reads = || provider_calls(&controller, "AWS/SecretsManager", "GetSecretValue");
    let before = reads().await;
    let (status, _, _) = post(&controller, Some(&listed), body_b).await;
    assert_eq!(status, 200);
    external_secret_ready(&cluster, "second", "False", "SecretSyncedError").await;
    assert_eq!(value(&cluster, "second").await, "b2");
    let what = "the Secret deleted after a second read";
    wait_for_within(what, Duration::from_secs(60), || async {
        let secret = cluster.secrets(NS).get_opt("second").await.unwrap();
        secret.is_none().then_some(())
    })
    .await;
    external_secret_ready(&cluster, "second", "True", "SecretDeleted").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The first not-found, its own confirming read, and the check the Secret's deletion
    // triggers (a shared read would have confirmed it with one read less).
    assert_eq!(reads().await - before, 3.0);
    controller.stop().await;
}
