//! The controller's logs never hold a secret value: the real binary runs at debug level
//! through a scenario (create, template, update, edit and revert, wrong scope, HTTP API, a
//! SopsSecret decrypted and then tampered with), and its whole output is searched for
//! every plaintext.

mod common;

use std::process::Command;

use common::*;
use gitseal_crypto::sealed::Scope;
use kube::api::{Patch, PatchParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_hold_no_secret_values() {
    let cluster = Cluster::start().await;
    let tmp = tempfile::Builder::new()
        .prefix("gitseal-logs-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let kubeconfig = dir.join("kubeconfig");
    cluster.server.write_kubeconfig(&kubeconfig).unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_gitseal-controller"));
    command
        .args([
            "--log-level=DEBUG",
            "--key-size=2048",
            &format!("--listen-addr=127.0.0.1:{port}"),
            "--listen-metrics-addr=127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAMESPACE", CONTROLLER_NS)
        .env_remove("RUST_LOG");
    let controller = ControllerProcess::spawn(command);
    let url = format!("http://127.0.0.1:{port}/v1/cert.pem");
    let pem = wait_for("the certificate", || async {
        let response = reqwest::get(&url).await.ok()?;
        response.status().is_success().then_some(())?;
        response.text().await.ok()
    })
    .await;
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
    Command::new("kill")
        .args(["-USR1", &controller.pid()])
        .status()
        .unwrap();
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
    let age_url = format!("http://127.0.0.1:{port}/v1/age-recipient");
    let recipient = wait_for("the age recipient", || async {
        let response = reqwest::get(&age_url).await.ok()?;
        response.status().is_success().then_some(())?;
        Some(response.text().await.ok()?.trim().to_owned())
    })
    .await;
    let plain = json!({
        "apiVersion": "isindir.github.com/v1alpha3", "kind": "SopsSecret",
        "metadata": {"name": "sops-app", "namespace": NS},
        "spec": {"secretTemplates": [{"name": "sops-app", "stringData": {"token": sops_values[0]}}]}
    });
    let mut encrypted = gitseal_tests::sops_encrypt_json(&plain, &recipient, "Templates");
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
        http.post(format!("http://127.0.0.1:{port}{path}"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
    }

    // SIGTERM: graceful shutdown, then read everything it wrote.
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
    for plaintext in secrets
        .iter()
        .chain(&sops_values)
        .chain(&["ZWRpdGVk", "edited"])
    {
        assert!(!log.contains(plaintext), "{plaintext} leaked into the log");
        let b64 = base64_of(plaintext);
        assert!(
            !log.contains(&b64),
            "base64 of {plaintext} leaked into the log"
        );
    }
}

/// The same for ExternalSecrets: the real binary at debug level syncs from a real OpenBao
/// (token and AppRole auth, a template, a rotation, a revoked policy, a destroyed secret),
/// and neither the values nor the credentials appear in its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_secret_debug_logs_hold_no_secret_values() {
    let Some(bao) = tokio::task::spawn_blocking(gitseal_testkit::openbao::OpenBao::start)
        .await
        .unwrap()
    else {
        return;
    };
    let values = [
        "vault-password-31ab9e",
        "vault-user-c04f7d",
        "vault-rotated-8e2a55",
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
    let credentials = [role_id.trim(), secret_id.trim(), token.trim()];

    let cluster = Cluster::start().await;
    let tmp = tempfile::Builder::new()
        .prefix("gitseal-logs-")
        .tempdir()
        .unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    cluster.server.write_kubeconfig(&kubeconfig).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gitseal-controller"));
    command
        .args([
            "--log-level=DEBUG",
            "--key-size=2048",
            "--listen-addr=127.0.0.1:0",
            "--listen-metrics-addr=127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAMESPACE", CONTROLLER_NS)
        .env_remove("RUST_LOG");
    let controller = ControllerProcess::spawn(command);
    let apply = |object: serde_json::Value| {
        let client = cluster.client.clone();
        async move {
            let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
                client,
                NS,
                &kube::discovery::ApiResource::from_gvk_with_plural(
                    &kube::api::GroupVersionKind::gvk(
                        object["apiVersion"]
                            .as_str()
                            .unwrap()
                            .split('/')
                            .next()
                            .unwrap(),
                        "v1",
                        object["kind"].as_str().unwrap(),
                    ),
                    &format!("{}s", object["kind"].as_str().unwrap().to_lowercase()),
                ),
            );
            let object: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
            api.create(&Default::default(), &object).await.unwrap();
        }
    };
    let secrets = cluster.secrets(NS);
    let mut approle = k8s_openapi::api::core::v1::Secret::default();
    approle.metadata.name = Some("approle".into());
    approle.string_data = Some([("secret-id".to_owned(), credentials[1].to_owned())].into());
    secrets.create(&Default::default(), &approle).await.unwrap();
    let mut token_secret = k8s_openapi::api::core::v1::Secret::default();
    token_secret.metadata.name = Some("token".into());
    token_secret.string_data = Some([("token".to_owned(), credentials[2].to_owned())].into());
    secrets
        .create(&Default::default(), &token_secret)
        .await
        .unwrap();
    for (name, auth) in [
        (
            "approle",
            json!({"appRole": {"roleId": credentials[0], "secretRef": {"name": "approle", "key": "secret-id"}}}),
        ),
        (
            "token",
            json!({"tokenSecretRef": {"name": "token", "key": "token"}}),
        ),
    ] {
        apply(json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"provider": {"vault": {"server": bao.url(), "path": "secret", "auth": auth}}}}))
        .await;
    }
    for (name, store) in [("app", "approle"), ("tokened", "token")] {
        apply(json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"refreshInterval": "1s", "secretStoreRef": {"name": store},
                "target": {"template": {"data": {"dsn": "{{ .user }}:{{ .password }}"}, "mergePolicy": "Merge"}},
                "dataFrom": [{"extract": {"key": "app/db"}}]}}))
        .await;
    }
    secret_with(&cluster, "app", "password", values[0]).await;
    secret_with(&cluster, "tokened", "password", values[0]).await;
    bao.bao(&[
        "kv",
        "put",
        "secret/app/db",
        &format!("password={}", values[2]),
        &format!("user={}", values[1]),
    ]);
    secret_with(&cluster, "app", "password", values[2]).await;
    // Revoked, then destroyed: failures are logged, values are not.
    bao.bao_with_stdin(
        &["policy", "write", "app", "-"],
        br#"path "x" { capabilities = ["read"] }"#,
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    bao.bao(&["kv", "metadata", "delete", "secret/app/db"]);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let log = controller.stop();
    assert!(log.contains("DEBUG"), "debug logging was on:\n{log}");
    assert!(log.contains("Secret updated"), "the scenario ran:\n{log}");
    assert!(
        log.contains("could not get secret data") || log.contains("permission denied"),
        "the failure was logged:\n{log}"
    );
    for plaintext in values.iter().chain(&credentials) {
        assert!(!log.contains(plaintext), "{plaintext} leaked into the log");
        assert!(
            !log.contains(&base64_of(plaintext)),
            "base64 of {plaintext} leaked into the log"
        );
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
