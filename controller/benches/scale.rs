//! Scale benchmark of the controller (issue targets: 10,000 SealedSecrets of 3 items
//! reconciled from cold in ≤ 60 s; a restart with every Secret up to date in ≤ 10 s with no
//! RSA operation; resident memory ≤ 64 MiB with 10,000 SealedSecrets and 10,000 Secrets).
//!
//! ```sh
//! cargo bench -p gitseal-controller --bench scale            # 10,000 objects
//! GITSEAL_BENCH_OBJECTS=2000 cargo bench -p gitseal-controller --bench scale
//! ```
//!
//! The test API server runs in this process; the controller is the release binary in a
//! process of its own, so that its memory is measured alone (peak RSS from /proc).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use gitseal_api::{SealedSecret, sealed_secret_crd};
use gitseal_crypto::sealed::{Certificate, PrivateKey, Scope, seal};
use gitseal_testkit::TestServer;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

const NS: &str = "bench";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of benchmarks.
    }
    let objects: usize = std::env::var("GITSEAL_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let server = TestServer::start().await.unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("gitseal-scale-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let client = server.client().await;
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &sealed_secret_crd())
        .await
        .unwrap();
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();

    // A sealing key, as the controller would have made it, and the SealedSecrets.
    let key = PrivateKey::generate(4096).unwrap();
    let cert =
        Certificate::self_signed(&key, "", SystemTime::now(), Duration::from_secs(86400)).unwrap();
    let key_secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "sealed-secrets-keybench", "namespace": "kube-system",
                     "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"}},
        "type": "kubernetes.io/tls"
    }))
    .unwrap();
    let mut key_secret = key_secret;
    key_secret.data = Some(BTreeMap::from([
        ("tls.crt".into(), ByteString(cert.to_pem().into_bytes())),
        (
            "tls.key".into(),
            ByteString(key.to_pkcs1_pem().unwrap().as_bytes().to_vec()),
        ),
    ]));
    Api::<Secret>::namespaced(client.clone(), "kube-system")
        .create(&PostParams::default(), &key_secret)
        .await
        .unwrap();
    let public = key.public_key();
    let started = Instant::now();
    let api: Api<SealedSecret> = Api::namespaced(client.clone(), NS);
    futures::stream::iter(0..objects)
        .map(|i| {
            let (api, public) = (api.clone(), public.clone());
            async move {
                let name = format!("app-{i:05}");
                let label = Scope::Strict.label(NS, &name);
                let items: serde_json::Map<_, _> = ["username", "password", "url"]
                    .iter()
                    .map(|k| {
                        let value = format!("{k}-{i}-0123456789abcdef");
                        (
                            (*k).to_owned(),
                            json!(seal(&public, &label, value.as_bytes()).unwrap()),
                        )
                    })
                    .collect();
                let ss: SealedSecret = serde_json::from_value(json!({
                    "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
                    "metadata": {"name": name, "namespace": NS,
                                 "labels": {"app.kubernetes.io/instance": "bench"}},
                    "spec": {"encryptedData": items,
                             "template": {"metadata": {"name": name, "namespace": NS}}}
                }))
                .unwrap();
                api.create(&PostParams::default(), &ss).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    println!(
        "created {objects} SealedSecrets of 3 items in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Cold start: no Secret exists yet.
    let (child, metrics) = start_controller(&kubeconfig);
    let started = Instant::now();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    wait_until(&secrets, objects, started).await;
    let cold = started.elapsed();
    let cold_metrics = scrape(&metrics).await;
    let cold_rss = stop(child);
    println!(
        "cold start: {objects} Secrets in {:.1} s ({:.0} per second); RSA operations {}; peak RSS {:.1} MiB",
        cold.as_secs_f64(),
        objects as f64 / cold.as_secs_f64(),
        metric(&cold_metrics, "gitseal_controller_rsa_operations_total"),
        cold_rss
    );

    // Restart: every Secret is up to date.
    let (child, metrics) = start_controller(&kubeconfig);
    let started = Instant::now();
    let mut text;
    loop {
        text = scrape(&metrics).await;
        if metric(&text, "sealed_secrets_controller_unseal_requests_total") >= objects as f64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "restart did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let restart = started.elapsed();
    let restart_rss = stop(child);
    println!(
        "restart: {objects} SealedSecrets checked in {:.1} s; RSA operations {}; peak RSS {:.1} MiB",
        restart.as_secs_f64(),
        metric(&text, "gitseal_controller_rsa_operations_total"),
        restart_rss
    );
}

/// The controller process, killed if the benchmark fails before [`stop`].
struct Controller(Option<Child>);

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_controller(kubeconfig: &std::path::Path) -> (Controller, String) {
    let port = |_| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (api, metrics) = (port(0), port(1));
    let child = Command::new(env!("CARGO_BIN_EXE_gitseal-controller"))
        .args([
            &format!("--listen-addr=127.0.0.1:{api}"),
            &format!("--listen-metrics-addr=127.0.0.1:{metrics}"),
            "--log-level=WARN",
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAMESPACE", "kube-system")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    (
        Controller(Some(child)),
        format!("http://127.0.0.1:{metrics}/metrics"),
    )
}

/// Stops the controller; returns its peak resident memory in MiB.
fn stop(mut controller: Controller) -> f64 {
    let mut child = controller.0.take().expect("running");
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let peak_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    peak_kib / 1024.0
}

async fn wait_until(secrets: &Api<Secret>, objects: usize, started: Instant) {
    loop {
        let list = secrets
            .list_metadata(&ListParams::default().limit(1))
            .await
            .unwrap();
        let count = list.items.len() + list.metadata.remaining_item_count.unwrap_or(0) as usize;
        if count >= objects {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {count} Secrets"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn scrape(url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no metrics at {url}");
        if let Ok(response) = reqwest::get(url).await
            && let Ok(text) = response.text().await
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
