//! The whole flow with the real controller: the chart's CRD applied with `kubectl`, the
//! controller running against the test API server, `gitseal kubeseal --fetch-cert` through
//! the service proxy, `gitseal seal` without a local certificate, `kubectl apply`, and the
//! Secret appearing; then `--validate` and `--re-encrypt` against the same controller.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::Parser;
use gitseal_testkit::TestServer;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::Api;
use serde_json::json;

fn run(program: &Path, args: &[&str], kubeconfig: &Path, stdin: &[u8]) -> Output {
    let mut command = Command::new(program);
    command.args(args).env("KUBECONFIG", kubeconfig);
    gitseal_tests::output_with_stdin(&mut command, stdin)
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_apply_and_the_controller_makes_the_secret() {
    let Some(kubectl) = gitseal_tests::tool("kubectl", "GITSEAL_KUBECTL") else {
        return;
    };
    let gitseal = PathBuf::from(env!("CARGO_BIN_EXE_gitseal"));
    let server = TestServer::start().await.unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("gitseal-e2e-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let k = kubeconfig.clone();
    let sh = move |program: PathBuf, args: Vec<String>, stdin: Vec<u8>| {
        let k = k.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run(&program, &args, &k, &stdin)
            })
            .await
            .unwrap()
        }
    };
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // The chart's CRD, as a user installs it.
    let crds = gitseal_tests::repo_dir().join("charts/gitseal/crds");
    let crds = crds.to_str().unwrap();
    ok(sh(kubectl.clone(), args(&["apply", "-f", crds]), Vec::new()).await);

    // The controller, with its Service reachable through the API server's proxy under
    // kubeseal's default name and namespace.
    let client = server.client().await;
    let flags = gitseal_controller::Config::try_parse_from([
        "gitseal-controller",
        "--listen-addr=127.0.0.1:0",
        "--listen-metrics-addr=127.0.0.1:0",
        "--namespace=kube-system",
    ])
    .unwrap();
    let controller = gitseal_controller::start(flags, client.clone(), "e2e".into())
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let service = serde_json::from_value(json!({"metadata": {"name": "sealed-secrets-controller"},
        "spec": {"ports": [{"name": "http", "port": 8080}]}}))
    .unwrap();
    services
        .create(&Default::default(), &service)
        .await
        .unwrap();
    server
        .add_service_endpoint(
            "kube-system",
            "sealed-secrets-controller",
            controller.api_addr,
        )
        .unwrap();

    // --fetch-cert (retried until the first key exists).
    let sh = &sh;
    let cert = gitseal_testkit::wait_for("a certificate from --fetch-cert", || {
        let gitseal = gitseal.clone();
        async move {
            let output = sh(gitseal, args(&["kubeseal", "--fetch-cert"]), Vec::new()).await;
            output
                .status
                .success()
                .then(|| String::from_utf8(output.stdout).unwrap())
        }
    })
    .await;
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));

    // `gitseal seal` with the fetched certificate, and `gitseal kubeseal` fetching it
    // itself; both applied with kubectl.
    let cert_file = dir.join("cert.pem");
    std::fs::write(&cert_file, &cert).unwrap();
    let secret = |name: &str, value: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: prod\ntype: Opaque\nstringData:\n  password: {value}\n"
        )
    };
    let file = dir.join("db-sealed.yaml");
    let seal_args = [
        "seal",
        "--cert",
        cert_file.to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
    ];
    ok(sh(
        gitseal.clone(),
        args(&seal_args),
        secret("db", "hunter2").into_bytes(),
    )
    .await);
    let sealed = std::fs::read_to_string(&file).unwrap();
    let api_file = dir.join("api-sealed.json");
    let api_sealed = ok(sh(
        gitseal.clone(),
        args(&["kubeseal"]),
        secret("api", "t0k3n").into_bytes(),
    )
    .await);
    std::fs::write(&api_file, api_sealed).unwrap();
    let namespace = b"apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n".to_vec();
    ok(sh(kubectl.clone(), args(&["apply", "-f", "-"]), namespace).await);
    for f in [&file, &api_file] {
        ok(sh(
            kubectl.clone(),
            args(&["apply", "-f", f.to_str().unwrap()]),
            Vec::new(),
        )
        .await);
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "prod");
    for (name, value) in [("db", "hunter2"), ("api", "t0k3n")] {
        let secrets = &secrets;
        gitseal_testkit::wait_for(&format!("the Secret {name}"), || async move {
            let secret = secrets.get_opt(name).await.ok()??;
            (secret.data?.get("password")?.0 == value.as_bytes()).then_some(())
        })
        .await;
    }

    // --validate and --re-encrypt against the same controller.
    ok(sh(
        gitseal.clone(),
        args(&["kubeseal", "--validate", "-f", file.to_str().unwrap()]),
        Vec::new(),
    )
    .await);
    let wrong = sealed.replace("name: db", "name: other");
    let output = sh(
        gitseal.clone(),
        args(&["kubeseal", "--validate"]),
        wrong.into_bytes(),
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "a renamed SealedSecret does not validate"
    );
    // --re-encrypt rewrites the file in place.
    ok(sh(
        gitseal.clone(),
        args(&["kubeseal", "--re-encrypt", "-f", file.to_str().unwrap()]),
        Vec::new(),
    )
    .await);
    let rotated = std::fs::read_to_string(&file).unwrap();
    assert!(
        rotated.contains("kind: SealedSecret") && rotated.contains("password: Ag"),
        "{rotated}"
    );
    assert_ne!(rotated, sealed, "new ciphertext");
    ok(sh(
        gitseal.clone(),
        args(&["kubeseal", "--validate"]),
        rotated.into_bytes(),
    )
    .await);
    controller.stop().await;
}
