//! kubeseal's conversations with the controller — `--fetch-cert`, sealing without `--cert`,
//! `--validate` and `--re-encrypt` — through a kubeconfig and the API server's service proxy
//! (the test API server of `gitseal-testkit`), to a stand-in controller serving the
//! upstream HTTP API with the fixture key.

use std::process::{Command, Output};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};
use gitseal_crypto::sealed::{Keyring, PrivateKey, Scope, seal};
use gitseal_testkit::TestServer;
use gitseal_tests::require_shared;
use serde_json::{Value, json};

struct Controller {
    keyring: Keyring,
    cert: Vec<u8>,
}

fn label_of(sealed: &Value) -> Vec<u8> {
    let annotations: Vec<(String, String)> = sealed
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let scope = Scope::from_annotations(annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let text = |p: &str| {
        sealed
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    scope.label(&text("/metadata/namespace"), &text("/metadata/name"))
}

/// The stand-in controller: `/v1/cert.pem`, `/v1/verify` (200/409), `/v1/rotate`.
async fn start_controller(controller: Arc<Controller>) -> std::net::SocketAddr {
    let verify = {
        let c = controller.clone();
        move |body: Bytes| async move {
            let sealed: Value = serde_json::from_slice(&body).unwrap();
            let label = label_of(&sealed);
            let items = sealed
                .pointer("/spec/encryptedData")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let ok = items
                .values()
                .all(|v| c.keyring.unseal(&label, v.as_str().unwrap()).is_ok());
            if ok {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            }
        }
    };
    let rotate = {
        let c = controller.clone();
        move |body: Bytes| async move {
            let mut sealed: Value = serde_json::from_slice(&body).unwrap();
            let label = label_of(&sealed);
            let key = c.keyring.keys()[0].public_key();
            let items = sealed["spec"]["encryptedData"].as_object_mut().unwrap();
            for value in items.values_mut() {
                let plaintext = c.keyring.unseal(&label, value.as_str().unwrap()).unwrap();
                *value = json!(seal(&key, &label, plaintext.expose()).unwrap());
            }
            sealed["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
            (StatusCode::OK, serde_json::to_string(&sealed).unwrap())
        }
    };
    let cert = controller.cert.clone();
    let app = Router::new()
        .route("/v1/cert.pem", get(move || async move { cert.clone() }))
        .route("/v1/verify", post(verify))
        .route("/v1/rotate", post(rotate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn kubeseal(kubeconfig: &std::path::Path, args: &[&str], stdin: &[u8]) -> Output {
    kubeseal_with_env(kubeconfig, args, &[], stdin)
}

fn kubeseal_with_env(
    kubeconfig: &std::path::Path,
    args: &[&str],
    vars: &[(&str, &str)],
    stdin: &[u8],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gitseal"));
    command
        .arg("kubeseal")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .envs(vars.iter().copied());
    gitseal_tests::output_with_stdin(&mut command, stdin)
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_cert_seal_validate_and_re_encrypt_through_the_service_proxy() {
    let shared = require_shared!();
    let fixtures = shared.join("fixtures/sealed-secrets");
    let cert = std::fs::read(fixtures.join("kseal-sealing-cert.pem")).unwrap();
    let key = PrivateKey::from_pem(&std::fs::read(fixtures.join("kseal-sealing-key.pem")).unwrap())
        .unwrap();
    let controller = Arc::new(Controller {
        keyring: Keyring::new(vec![key]),
        cert: cert.clone(),
    });
    let backend = start_controller(controller.clone()).await;

    let server = TestServer::start().await.unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("gitseal-controller-cli-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    // The Service kubeseal looks up, in another namespace and name than the defaults.
    let services: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(server.client().await, "kube-system");
    let service = serde_json::from_value(json!({"metadata": {"name": "sealer"},
        "spec": {"ports": [{"name": "http", "port": 8080}]}}))
    .unwrap();
    services
        .create(&Default::default(), &service)
        .await
        .unwrap();
    server
        .add_service_endpoint("kube-system", "sealer", backend)
        .unwrap();
    let k = kubeconfig.clone();
    let run = move |args: Vec<String>, stdin: Vec<u8>| {
        let k = k.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                kubeseal(&k, &args, &stdin)
            })
            .await
            .unwrap()
        }
    };
    let controller_flags = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--controller-namespace",
            "kube-system",
            "--controller-name",
            "sealer",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    // The default controller name does not exist: the upstream hint.
    let output = run(vec!["--fetch-cert".into()], Vec::new()).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("cannot get sealed secret service") && stderr.contains("--controller-name"),
        "{stderr}"
    );

    // --fetch-cert prints the controller's certificate unchanged.
    let output = run(controller_flags(&["--fetch-cert"]), Vec::new()).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, cert);

    // kubectl's connection flags override the kubeconfig: a wrong token fails, --token fixes it.
    let wrong = dir.join("wrong-token.kubeconfig");
    std::fs::write(&wrong, server.kubeconfig_with_token("wrong")).unwrap();
    let wrong_run = |extra: Vec<String>| {
        let wrong = wrong.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = extra.iter().map(String::as_str).collect();
                kubeseal(&wrong, &args, b"")
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(
        wrong_run(controller_flags(&["--fetch-cert"]))
            .await
            .status
            .code(),
        Some(1)
    );
    // `--token=…`: a random token may begin with `-`.
    let token = format!("--token={}", server.token());
    let fixed = wrong_run(controller_flags(&["--fetch-cert", &token])).await;
    assert!(
        fixed.status.success(),
        "{}",
        String::from_utf8_lossy(&fixed.stderr)
    );
    assert_eq!(fixed.stdout, cert);

    // The same through the environment variables of those flags.
    let token = server.token().to_owned();
    let by_env = tokio::task::spawn_blocking({
        let wrong = wrong.clone();
        move || {
            kubeseal_with_env(
                &wrong,
                &[],
                &[
                    ("SEALED_SECRETS_CONTROLLER_NAMESPACE", "kube-system"),
                    ("SEALED_SECRETS_CONTROLLER_NAME", "sealer"),
                    ("SEALED_SECRETS_FETCH_CERT", "true"),
                    ("SEALED_SECRETS_TOKEN", &token),
                ],
                b"",
            )
        }
    })
    .await
    .unwrap();
    assert!(
        by_env.status.success(),
        "{}",
        String::from_utf8_lossy(&by_env.stderr)
    );
    assert_eq!(by_env.stdout, cert);

    // Sealing without --cert uses that certificate.
    let secret = b"apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {password: hunter2}\n";
    let output = run(controller_flags(&[]), secret.to_vec()).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sealed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let value = sealed["spec"]["encryptedData"]["password"]
        .as_str()
        .unwrap();
    assert_eq!(
        controller
            .keyring
            .unseal(b"prod/db", value)
            .unwrap()
            .expose(),
        b"hunter2"
    );

    // --validate: silent success, and upstream's error for a SealedSecret it cannot open.
    let output = run(controller_flags(&["--validate"]), output.stdout.clone()).await;
    assert!(
        output.status.success() && output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut moved = sealed.clone();
    moved["metadata"]["name"] = json!("other");
    let output = run(
        controller_flags(&["--validate"]),
        moved.to_string().into_bytes(),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("unable to decrypt sealed secret: other")
    );

    // --re-encrypt rewrites an input file in place, without creationTimestamp.
    let file = dir.join("db-sealed.json");
    std::fs::write(&file, sealed.to_string()).unwrap();
    let output = run(
        controller_flags(&["--re-encrypt", "-f", file.to_str().unwrap()]),
        Vec::new(),
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rotated: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(rotated["metadata"].get("creationTimestamp").is_none());
    let new_value = rotated["spec"]["encryptedData"]["password"]
        .as_str()
        .unwrap();
    assert_ne!(new_value, value);
    assert_eq!(
        controller
            .keyring
            .unseal(b"prod/db", new_value)
            .unwrap()
            .expose(),
        b"hunter2"
    );
    // --validate and --re-encrypt from their environment variables.
    let env_run = |vars: Vec<(&'static str, &'static str)>, stdin: Vec<u8>| {
        let k = kubeconfig.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut vars = vars;
                vars.extend([
                    ("SEALED_SECRETS_CONTROLLER_NAMESPACE", "kube-system"),
                    ("SEALED_SECRETS_CONTROLLER_NAME", "sealer"),
                ]);
                kubeseal_with_env(&k, &[], &vars, &stdin)
            })
            .await
            .unwrap()
        }
    };
    let invalid = env_run(
        vec![("SEALED_SECRETS_VALIDATE", "true")],
        moved.to_string().into_bytes(),
    )
    .await;
    assert_eq!(invalid.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&invalid.stderr).contains("unable to decrypt sealed secret: other")
    );
    let rotated_out = env_run(
        vec![("SEALED_SECRETS_RE_ENCRYPT", "true")],
        sealed.to_string().into_bytes(),
    )
    .await;
    assert!(
        rotated_out.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated_out.stderr)
    );
    let rotated_out: Value = serde_json::from_slice(&rotated_out.stdout).unwrap();
    let rotated_value = rotated_out["spec"]["encryptedData"]["password"]
        .as_str()
        .unwrap();
    assert_ne!(rotated_value, value);
    assert_eq!(
        controller
            .keyring
            .unseal(b"prod/db", rotated_value)
            .unwrap()
            .expose(),
        b"hunter2"
    );

    // A YAML file stays YAML.
    let yaml = dir.join("db-sealed.yaml");
    std::fs::write(
        &yaml,
        format!("---\n{}", std::fs::read_to_string(&file).unwrap()),
    )
    .unwrap();
    let output = run(
        controller_flags(&["--re-encrypt", "-f", yaml.to_str().unwrap()]),
        Vec::new(),
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        std::fs::read_to_string(&yaml)
            .unwrap()
            .starts_with("---\napiVersion: bitnami.com/v1alpha1\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_by_http_url() {
    let shared = require_shared!();
    let cert =
        std::fs::read(shared.join("fixtures/sealed-secrets/kseal-sealing-cert.pem")).unwrap();
    let served = cert.clone();
    let app = Router::new().route("/cert.pem", get(move || async move { served.clone() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let none = std::path::Path::new("/nonexistent/kubeconfig");
    let (url, missing) = (format!("{base}/cert.pem"), format!("{base}/missing.pem"));
    let output = tokio::task::spawn_blocking(move || {
        (
            kubeseal(none, &["--cert", &url, "--fetch-cert"], b""),
            kubeseal(none, &["--cert", &missing, "--fetch-cert"], b""),
        )
    })
    .await
    .unwrap();
    assert!(
        output.0.status.success(),
        "{}",
        String::from_utf8_lossy(&output.0.stderr)
    );
    assert_eq!(output.0.stdout, cert);
    assert_eq!(output.1.status.code(), Some(1));
    let stderr = String::from_utf8(output.1.stderr).unwrap();
    assert!(
        stderr.contains("cannot fetch") && stderr.contains("404"),
        "{stderr}"
    );
}
