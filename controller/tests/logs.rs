//! The leak checks: the real controller binary runs at debug level through scenarios of
//! its three reconcilers — SealedSecrets (create, template, update, edit and revert, wrong
//! scope, new key, HTTP API), SopsSecrets (decrypted, then tampered with), ExternalSecrets
//! from OpenBao and AWS (rotation, revoked access, deleted secrets) — and no secret value
//! or credential, plain or base64, appears in its output, its metrics, a status or an
//! event. It also runs without core dumps.

mod common;

use common::*;
use gitseal_api::{ExternalSecret, SecretStore};
use gitseal_crypto::sealed::Scope;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_hold_no_secret_values() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let controller =
        ControllerProcess::start(&cluster, dir.path(), "replica-1", &["--log-level=DEBUG"]);
    let pem = fetch_text(&format!("{}/v1/cert.pem", controller.api)).await;
    no_core_dumps(&controller).await;
    let cert = gitseal_crypto::sealed::Certificate::from_pem(pem.as_bytes()).unwrap();

    let secrets = [
        "plaintext-password-7f3a9c",
        "plaintext-user-b81d02",
        "plaintext-updated-5e6f71",
        "plaintext-wrong-scope-0c4d",
    ];
    let sops_values = ["plaintext-sops-token-9d1e4b"];
    let mut object = sealed_secret(
        &cert,
        "app",
        &[("password", secrets[0]), ("user", secrets[1])],
    );
    object["spec"]["template"]["data"] = json!({"dsn": "{{ .user }}:{{ .password }}"});
    cluster.create(object).await;
    secret_with(&cluster, "app", "password", secrets[0]).await;
    // SIGUSR1: the leader makes a new key and the process lives on.
    controller.signal("-USR1");
    let items = sealed_items(
        &cert,
        Scope::Strict,
        NS,
        "app",
        &[("password", secrets[2]), ("user", secrets[1])],
    );
    cluster.set_items("app", items).await;
    secret_with(&cluster, "app", "password", secrets[2]).await;
    cluster
        .secrets(NS)
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"password": "ZWRpdGVk"}})),
        )
        .await
        .unwrap();
    secret_with(&cluster, "app", "password", secrets[2]).await;
    let mut wrong = sealed_secret(&cert, "wrong", &[]);
    wrong["spec"]["encryptedData"] =
        sealed_items(&cert, Scope::Strict, "other", "wrong", &[("k", secrets[3])]);
    cluster.create(wrong.clone()).await;
    let failed = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        synced(&cluster, "wrong", "False"),
    )
    .await;
    if failed.is_err() {
        let log = controller.stop();
        panic!("no Synced=False for `wrong`; controller output:\n{log}");
    }
    // A SopsSecret, decrypted into a Secret, then tampered with.
    let recipient = fetch_text(&format!("{}/v1/age-recipient", controller.api)).await;
    let recipient = recipient.trim();
    let plain = json!({
        "apiVersion": "isindir.github.com/v1alpha3", "kind": "SopsSecret",
        "metadata": {"name": "sops-app", "namespace": NS},
        "spec": {"secretTemplates": [{"name": "sops-app", "stringData": {"token": sops_values[0]}}]}
    });
    let mut encrypted = gitseal_tests::sops_encrypt_json(&plain, recipient, "Templates");
    let sops_api: kube::Api<gitseal_api::SopsSecret> =
        kube::Api::namespaced(cluster.client.clone(), NS);
    let object: gitseal_api::SopsSecret = serde_json::from_value(encrypted.clone()).unwrap();
    sops_api.create(&Default::default(), &object).await.unwrap();
    secret_with(&cluster, "sops-app", "token", sops_values[0]).await;
    let value = &mut encrypted["spec"]["secretTemplates"][0]["stringData"]["token"];
    *value = json!(value.as_str().unwrap().replacen("data:", "data:AA", 1));
    let patch = json!({"spec": encrypted["spec"]});
    sops_api
        .patch("sops-app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("the tampered SopsSecret refused", || async {
        let object = sops_api.get("sops-app").await.ok()?;
        let message = object.status?.message?;
        (message == "Decryption error").then_some(())
    })
    .await;

    let http = reqwest::Client::new();
    for path in ["/v1/verify", "/v1/rotate"] {
        let body = cluster.sealed_secrets().get("app").await.unwrap();
        let mut body = serde_json::to_value(body).unwrap();
        body["apiVersion"] = json!("bitnami.com/v1alpha1");
        body["kind"] = json!("SealedSecret");
        http.post(format!("{}{path}", controller.api))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
    }

    // SIGTERM: graceful shutdown, then read everything it wrote.
    let metrics = fetch_text(&controller.metrics).await;
    let log = controller.stop();
    assert!(log.contains("DEBUG"), "debug logging was on:\n{log}");
    assert!(log.contains("Secret updated"), "the scenario ran:\n{log}");
    assert!(
        log.contains("SIGUSR1: generating a new sealing key"),
        "SIGUSR1 handled:\n{log}"
    );
    assert!(
        log.contains("DecryptionFailed"),
        "the SopsSecret ran:\n{log}"
    );
    let values: Vec<&str> = secrets
        .iter()
        .chain(&sops_values)
        .chain(&["ZWRpdGVk", "edited"])
        .copied()
        .collect();
    no_values_outside_secrets(&cluster, &[("log", &log), ("metrics", &metrics)], &values).await;
}

/// The same for ExternalSecrets: the real binary at debug level syncs from a real OpenBao
/// (token and AppRole auth, a template, a rotation, a revoked policy, a destroyed secret)
/// and from AWS Secrets Manager (a local moto: static credentials, a rotation, a deleted
/// secret), and neither the values nor the credentials appear in its output, its metrics,
/// any status or any event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_secret_debug_logs_hold_no_secret_values() {
    let Some(bao) = tokio::task::spawn_blocking(gitseal_testkit::openbao::OpenBao::start)
        .await
        .unwrap()
    else {
        return;
    };
    let Some(moto) = tokio::task::spawn_blocking(gitseal_testkit::moto::Moto::start)
        .await
        .unwrap()
    else {
        return;
    };
    let values = [
        "vault-password-31ab9e",
        "vault-user-c04f7d",
        "vault-rotated-8e2a55",
        "aws-password-2f9c1a",
        "aws-rotated-90d7e3",
    ];
    bao.bao_with_stdin(
        &["policy", "write", "app", "-"],
        br#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    );
    bao.bao(&[
        "kv",
        "put",
        "secret/app/db",
        &format!("password={}", values[0]),
        &format!("user={}", values[1]),
    ]);
    bao.bao(&["auth", "enable", "approle"]);
    bao.bao(&["write", "auth/approle/role/app", "token_policies=app"]);
    let role_id = bao.bao(&["read", "-field=role_id", "auth/approle/role/app/role-id"]);
    let secret_id = bao.bao(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/app/secret-id",
    ]);
    let token = bao.bao(&["token", "create", "-policy=app", "-field=token"]);
    // moto takes any credentials; these stand for the real ones.
    let aws_secret_key = "aws-secret-access-key-6c1f08";
    let credentials = [
        role_id.trim(),
        secret_id.trim(),
        token.trim(),
        aws_secret_key,
    ];
    moto.boto3(&format!(
        "sm.create_secret(Name='app/db', SecretString=json.dumps({{'password': '{}'}}))",
        values[3]
    ));

    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::start(
        &cluster,
        dir.path(),
        "replica-1",
        &[
            "--log-level=DEBUG",
            &format!("--aws-endpoint-url={}", moto.url()),
        ],
    );
    no_core_dumps(&controller).await;
    for (name, key, value) in [
        ("approle", "secret-id", credentials[1]),
        ("token", "token", credentials[2]),
        ("aws", "secret", credentials[3]),
    ] {
        create_object(
            &cluster.secrets(NS),
            json!({"metadata": {"name": name, "namespace": NS},
                   "stringData": {key: value, "id": "AKIAEXAMPLE"}}),
        )
        .await;
    }
    let stores: Api<SecretStore> = Api::namespaced(cluster.client.clone(), NS);
    for (name, provider) in [
        (
            "approle",
            json!({"vault": {"server": bao.url(), "path": "secret", "auth": {"appRole": {
                "roleId": credentials[0], "secretRef": {"name": "approle", "key": "secret-id"}}}}}),
        ),
        (
            "token",
            json!({"vault": {"server": bao.url(), "path": "secret", "auth": {
                "tokenSecretRef": {"name": "token", "key": "token"}}}}),
        ),
        (
            "aws",
            json!({"aws": {"service": "SecretsManager", "region": "us-east-1", "auth": {"secretRef": {
                "accessKeyIDSecretRef": {"name": "aws", "key": "id"},
                "secretAccessKeySecretRef": {"name": "aws", "key": "secret"}}}}}),
        ),
    ] {
        create_object(
            &stores,
            json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                "metadata": {"name": name, "namespace": NS}, "spec": {"provider": provider}}),
        )
        .await;
    }
    let externals: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), NS);
    for (name, store, dsn) in [
        ("app", "approle", "{{ .user }}:{{ .password }}"),
        ("tokened", "token", "{{ .user }}:{{ .password }}"),
        ("aws-app", "aws", "db:{{ .password }}"),
    ] {
        create_object(
            &externals,
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"refreshInterval": "1s", "secretStoreRef": {"name": store},
                    "target": {"template": {"data": {"dsn": dsn}, "mergePolicy": "Merge"}},
                    "dataFrom": [{"extract": {"key": "app/db"}}]}}),
        )
        .await;
    }
    secret_with(&cluster, "app", "password", values[0]).await;
    secret_with(&cluster, "tokened", "password", values[0]).await;
    secret_with(&cluster, "aws-app", "password", values[3]).await;
    bao.bao(&[
        "kv",
        "put",
        "secret/app/db",
        &format!("password={}", values[2]),
        &format!("user={}", values[1]),
    ]);
    moto.boto3(&format!(
        "sm.put_secret_value(SecretId='app/db', SecretString=json.dumps({{'password': '{}'}}))",
        values[4]
    ));
    secret_with(&cluster, "app", "password", values[2]).await;
    secret_with(&cluster, "aws-app", "password", values[4]).await;
    // Revoked, then destroyed: failures are logged, values are not.
    bao.bao_with_stdin(
        &["policy", "write", "app", "-"],
        br#"path "x" { capabilities = ["read"] }"#,
    );
    moto.boto3("sm.delete_secret(SecretId='app/db', ForceDeleteWithoutRecovery=True)");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    bao.bao(&["kv", "metadata", "delete", "secret/app/db"]);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let metrics = fetch_text(&controller.metrics).await;
    let log = controller.stop();
    assert!(log.contains("DEBUG"), "debug logging was on:\n{log}");
    assert!(log.contains("Secret updated"), "the scenario ran:\n{log}");
    assert!(
        log.contains("could not get secret data") || log.contains("permission denied"),
        "the failure was logged:\n{log}"
    );
    let leaks: Vec<&str> = values.iter().chain(&credentials).copied().collect();
    no_values_outside_secrets(&cluster, &[("log", &log), ("metrics", &metrics)], &leaks).await;
}

/// The controller runs without core dumps: its core-file limit is zero (`/proc/<pid>/limits`).
async fn no_core_dumps(controller: &ControllerProcess) {
    let limits = wait_for_limits(&controller.pid()).await;
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("a core file limit");
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
}

/// `/proc/<pid>/limits` once the hard core-file limit is zero (the process sets it right
/// after parsing its flags; the soft limit is often zero already).
async fn wait_for_limits(pid: &str) -> String {
    for _ in 0..200 {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        if limits.lines().any(|l| {
            l.starts_with("Max core file size") && l.split_whitespace().nth(5) == Some("0")
        }) {
            return limits;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap()
}
