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

mod common;

use std::time::{Duration, Instant};

use common::{
    calls_per_object, metric, namespace, scrape, sealed_secrets, show_calls, start_controller,
    stop, wait_until,
};
use gitseal_api::sealed_secret_crd;
use gitseal_testkit::TestServer;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
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
    namespace(&client, NS).await;

    // A sealing key, as the controller would have made it, and the SealedSecrets.
    let created = sealed_secrets(&client, NS, objects).await;
    println!(
        "created {objects} SealedSecrets of 3 items in {:.1} s",
        created.as_secs_f64()
    );

    // Cold start: no Secret exists yet.
    let before = server.requests();
    let (child, metrics) = start_controller(&kubeconfig, &[]);
    let started = Instant::now();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    wait_until(&secrets, objects, started).await;
    let cold = started.elapsed();
    let cold_metrics = scrape(&metrics).await;
    let cold_rss = stop(child);
    let cold_calls = calls_per_object(&before, &server.requests(), objects);
    println!(
        "cold start: {objects} Secrets in {:.1} s ({:.0} per second); RSA operations {}; peak RSS {:.1} MiB; \
         API calls per SealedSecret {}",
        cold.as_secs_f64(),
        objects as f64 / cold.as_secs_f64(),
        metric(&cold_metrics, "gitseal_controller_rsa_operations_total"),
        cold_rss,
        show_calls(&cold_calls)
    );

    // Restart: every Secret is up to date.
    let before = server.requests();
    let (child, metrics) = start_controller(&kubeconfig, &[]);
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
    let restart_calls = calls_per_object(&before, &server.requests(), objects);
    println!(
        "restart: {objects} SealedSecrets checked in {:.1} s; RSA operations {}; peak RSS {:.1} MiB; \
         API calls per SealedSecret {}",
        restart.as_secs_f64(),
        metric(&text, "gitseal_controller_rsa_operations_total"),
        restart_rss,
        show_calls(&restart_calls)
    );
    // One line for scripts (scripts/bench.sh).
    println!(
        "RESULT {}",
        json!({
            "objects": objects,
            "cold_s": cold.as_secs_f64(),
            "cold_rsa": metric(&cold_metrics, "gitseal_controller_rsa_operations_total"),
            "cold_rss_mib": cold_rss,
            "cold_calls": cold_calls,
            "restart_s": restart.as_secs_f64(),
            "restart_rsa": metric(&text, "gitseal_controller_rsa_operations_total"),
            "restart_rss_mib": restart_rss,
            "restart_calls": restart_calls,
        })
    );
}
