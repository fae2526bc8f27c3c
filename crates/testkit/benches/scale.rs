//! Scale of the test API server: 100,000 objects stored (10,000 Secrets in one namespace
//! and 90,000 ConfigMaps in ten others) with 50 concurrent watches open, then the latency
//! of listing the 10,000 Secrets over HTTPS. Run with
//! `cargo bench -p gitseal-testkit --bench scale`; results are in `docs/testing.md`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::{StreamExt, TryStreamExt};
use gitseal_testkit::TestServer;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, PostParams, WatchParams};
use serde_json::json;

const SECRETS: usize = 10_000;
const CONFIGMAPS: usize = 90_000;
const WATCHES: usize = 50;

async fn populate(client: &kube::Client) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = std::iter::once("bench".to_owned())
        .chain((0..10).map(|i| format!("cm-{i}")))
        .collect();
    for name in &names {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    let started = Instant::now();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "bench");
    futures::stream::iter(0..SECRETS)
        .map(|i| {
            let secrets = secrets.clone();
            async move {
                let s: Secret = serde_json::from_value(json!({
                    "metadata": {"name": format!("secret-{i:05}"), "labels": {"app": "bench", "shard": (i % 10).to_string()}},
                    "stringData": {"username": "admin", "password": format!("password-{i}"), "token": "x".repeat(40)},
                }))
                .unwrap();
                secrets.create(&PostParams::default(), &s).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    futures::stream::iter(0..CONFIGMAPS)
        .map(|i| {
            let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &format!("cm-{}", i % 10));
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("config-{i:05}")}, "data": {"key": "value"},
                }))
                .unwrap();
                cms.create(&PostParams::default(), &cm).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    eprintln!(
        "created {} objects in {:.1?}",
        SECRETS + CONFIGMAPS,
        started.elapsed()
    );
}

fn scale(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (server, client) = runtime.block_on(async {
        let server = TestServer::start().await.unwrap();
        let client = server.client().await;
        populate(&client).await;
        (server, client)
    });
    assert_eq!(server.object_count(), SECRETS + CONFIGMAPS + 15);
    // 50 watches on Secrets in every namespace, drained in the background.
    let watches: Vec<_> = (0..WATCHES)
        .map(|_| {
            let secrets: Api<Secret> = Api::all(client.clone());
            runtime.spawn(async move {
                let mut stream = secrets
                    .watch(&WatchParams::default(), "0")
                    .await
                    .unwrap()
                    .boxed();
                while let Ok(Some(_)) = stream.try_next().await {}
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    let request = |query: &str| {
        http::Request::get(format!("/api/v1/namespaces/bench/secrets{query}"))
            .body(Vec::new())
            .unwrap()
    };
    let mut group = c.benchmark_group("testkit");
    group.sample_size(30);
    group.bench_function(
        "list 10,000 Secrets (100,000 objects stored, 50 watches)",
        |b| {
            b.iter(|| {
                let text = runtime.block_on(client.request_text(request(""))).unwrap();
                assert!(text.len() > 1_000_000);
            })
        },
    );
    group.bench_function("list 1,000 of them by label selector", |b| {
        b.iter(|| {
            runtime
                .block_on(client.request_text(request("?labelSelector=shard%3D3")))
                .unwrap()
        })
    });
    group.bench_function("get one Secret", |b| {
        let get = || {
            http::Request::get("/api/v1/namespaces/bench/secrets/secret-04242")
                .body(Vec::new())
                .unwrap()
        };
        b.iter(|| runtime.block_on(client.request_text(get())).unwrap())
    });
    group.finish();
    for watch in watches {
        watch.abort();
    }
}

criterion_group!(benches, scale);
criterion_main!(benches);
