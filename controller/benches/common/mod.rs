//! What the controller benchmarks share: the controller process (the release binary, in a
//! process of its own so that its memory is measured alone), its metrics, counting
//! Secrets, and a sealing key with SealedSecrets sealed to it.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use gitseal_api::SealedSecret;
use gitseal_crypto::sealed::{Certificate, PrivateKey, Scope, seal};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

/// The controller process, killed if the benchmark fails before [`stop`].
pub struct Controller(Option<Child>);

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the controller on `kubeconfig` with the flags `extra`; returns it and the URL
/// of its metrics.
pub fn start_controller(kubeconfig: &std::path::Path, extra: &[&str]) -> (Controller, String) {
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
        .args(extra)
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
pub fn stop(mut controller: Controller) -> f64 {
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

/// How many Secrets `secrets` holds (one list call of one item).
pub async fn count(secrets: &Api<Secret>) -> usize {
    let list = secrets
        .list_metadata(&ListParams::default().limit(1))
        .await
        .unwrap();
    list.items.len() + list.metadata.remaining_item_count.unwrap_or(0) as usize
}

/// Waits until `secrets` holds at least `objects` Secrets (at most 600 s after `started`).
pub async fn wait_until(secrets: &Api<Secret>, objects: usize, started: Instant) {
    loop {
        let count = count(secrets).await;
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

/// The metrics at `url`, asked for as Prometheus does (gzip-compressed), waiting up to a
/// minute for the controller to serve them.
pub async fn scrape(url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = reqwest::Client::new();
    loop {
        assert!(Instant::now() < deadline, "no metrics at {url}");
        let response = client
            .get(url)
            .header("accept-encoding", "gzip")
            .send()
            .await;
        if let Ok(response) = response
            && let Ok(body) = response.bytes().await
        {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
                .expect("a gzip-compressed exposition");
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of the first sample of `name` in the metrics `text` (0 when absent).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Creates the namespace `name`.
pub async fn namespace(client: &kube::Client, name: &str) {
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
}

/// Creates a sealing key in kube-system, as the controller would have made it, and
/// `objects` SealedSecrets `app-NNNNN` of 3 items in `ns` sealed to it (32 at a time);
/// returns how long the SealedSecrets took (not the key).
pub async fn sealed_secrets(client: &kube::Client, ns: &str, objects: usize) -> Duration {
    let key = PrivateKey::generate(4096).unwrap();
    let cert =
        Certificate::self_signed(&key, "", SystemTime::now(), Duration::from_secs(86400)).unwrap();
    let mut key_secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "sealed-secrets-keybench", "namespace": "kube-system",
                     "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"}},
        "type": "kubernetes.io/tls"
    }))
    .unwrap();
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
    let api: Api<SealedSecret> = Api::namespaced(client.clone(), ns);
    futures::stream::iter(0..objects)
        .map(|i| {
            let (api, public) = (api.clone(), public.clone());
            async move {
                let name = format!("app-{i:05}");
                let label = Scope::Strict.label(ns, &name);
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
                    "metadata": {"name": name, "namespace": ns,
                                 "labels": {"app.kubernetes.io/instance": "bench"}},
                    "spec": {"encryptedData": items,
                             "template": {"metadata": {"name": name, "namespace": ns}}}
                }))
                .unwrap();
                api.create(&PostParams::default(), &ss).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    started.elapsed()
}

/// Creates an age key in kube-system, as the controller would have made it, and `objects`
/// SopsSecrets `app-NNNNN` in `ns` with one template of 5 values, encrypted to it the
/// operator's way (`encrypted_suffix: Templates`; 32 created at a time); returns how long
/// the SopsSecrets took (not the key).
#[allow(dead_code)] // the SealedSecret scale benchmark has no SopsSecrets
pub async fn sops_secrets(client: &kube::Client, ns: &str, objects: usize) -> Duration {
    use gitseal_crypto::keys::age::AgeIdentities;

    let identities = AgeIdentities::generate();
    let recipient = identities.recipients().remove(0);
    let mut key_secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "gitseal-age-key-bench", "namespace": "kube-system",
                     "labels": {"gitseal.dev/age-key": "active"}}
    }))
    .unwrap();
    key_secret.data = Some(BTreeMap::from([(
        "identity.agekey".into(),
        ByteString(identities.to_text().as_bytes().to_vec()),
    )]));
    Api::<Secret>::namespaced(client.clone(), "kube-system")
        .create(&PostParams::default(), &key_secret)
        .await
        .unwrap();
    let started = Instant::now();
    let api: Api<gitseal_api::SopsSecret> = Api::namespaced(client.clone(), ns);
    futures::stream::iter(0..objects)
        .map(|i| {
            let (api, recipient) = (api.clone(), recipient.clone());
            async move {
                let name = format!("app-{i:05}");
                let values: serde_json::Map<_, _> = (0..5)
                    .map(|k| {
                        (
                            format!("key-{k}"),
                            json!(format!("value-{i}-{k}-0123456789")),
                        )
                    })
                    .collect();
                let plain = json!({
                    "apiVersion": "isindir.github.com/v1alpha3", "kind": "SopsSecret",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"secretTemplates": [{"name": name, "stringData": values}]}
                });
                let encrypted = gitseal_tests::sops_encrypt_json(&plain, &recipient, "Templates");
                let object: gitseal_api::SopsSecret = serde_json::from_value(encrypted).unwrap();
                api.create(&PostParams::default(), &object).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    started.elapsed()
}

/// API requests per object between two readings of the test server's counter
/// ([`gitseal_testkit::TestServer::requests`]): per verb, and `total`. The benchmark's own
/// polling (a one-item list every 100 ms) is included in `list`.
pub fn calls_per_object(
    before: &BTreeMap<&'static str, u64>,
    after: &BTreeMap<&'static str, u64>,
    objects: usize,
) -> BTreeMap<String, f64> {
    let per = |n: u64| n as f64 / objects.max(1) as f64;
    let mut calls: BTreeMap<String, f64> = after
        .iter()
        .map(|(verb, n)| {
            let n = n - before.get(verb).copied().unwrap_or(0);
            ((*verb).to_owned(), per(n))
        })
        .filter(|(_, n)| *n > 0.0)
        .collect();
    let total = calls.values().sum();
    calls.insert("total".into(), total);
    calls
}

/// `5.02 (create 2.00, get 2.00, ...)` for [`calls_per_object`]'s result.
pub fn show_calls(calls: &BTreeMap<String, f64>) -> String {
    let verbs: Vec<String> = calls
        .iter()
        .filter(|(verb, _)| *verb != "total")
        .map(|(verb, n)| format!("{verb} {n:.2}"))
        .collect();
    format!(
        "{:.2} ({})",
        calls.get("total").copied().unwrap_or(0.0),
        verbs.join(", ")
    )
}
