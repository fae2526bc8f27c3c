//! Shared set-up of the controller scenarios: a test API server with the CRD, the
//! controller in-process, and helpers to seal and to wait.

#![allow(dead_code)]

use clap::Parser;
use gitseal_api::SealedSecret;
use gitseal_controller::{Config, Running};
use gitseal_crypto::sealed::{Certificate, Scope, seal};
use gitseal_testkit::TestServer;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The controller's namespace in the scenarios.
pub const CONTROLLER_NS: &str = "kube-system";
/// The namespace of the SealedSecrets in the scenarios.
pub const NS: &str = "prod";

/// A test API server with the CRD installed and the namespaces created.
pub struct Cluster {
    pub server: TestServer,
    pub client: kube::Client,
}

impl Cluster {
    pub async fn start() -> Self {
        let server = TestServer::start().await.expect("test server starts");
        let client = server.client().await;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for (file, crd) in gitseal_api::crds() {
            crds.create(&PostParams::default(), &crd)
                .await
                .unwrap_or_else(|e| panic!("CRD {file} created: {e}"));
        }
        let cluster = Self { server, client };
        for ns in [CONTROLLER_NS, NS, "other"] {
            cluster.namespace(ns).await;
        }
        cluster
    }

    /// Creates the namespace `name` unless it exists.
    pub async fn namespace(&self, name: &str) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        match namespaces.create(&PostParams::default(), &namespace).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {} // made by the server
            Err(e) => panic!("namespace {name}: {e}"),
        }
    }

    /// Starts a controller replica with `extra` flags (2048-bit keys for speed).
    pub async fn controller(&self, identity: &str, extra: &[&str]) -> Running {
        controller_with(self.client.clone(), identity, extra).await
    }

    pub fn sealed_secrets(&self) -> Api<SealedSecret> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn secrets(&self, ns: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Replaces items of the SealedSecret `NS/name` with a merge patch (no read-modify-write
    /// race with the controller's status writes).
    pub async fn set_items(&self, name: &str, items: Value) {
        let patch = json!({"spec": {"encryptedData": items}});
        self.sealed_secrets()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("SealedSecret patched");
    }

    /// Creates a SealedSecret from its JSON.
    pub async fn create(&self, object: Value) -> SealedSecret {
        let ss: SealedSecret = serde_json::from_value(object).unwrap();
        self.sealed_secrets()
            .create(&PostParams::default(), &ss)
            .await
            .expect("SealedSecret created")
    }
}

/// Starts a controller replica on `client` with `extra` flags (2048-bit keys for speed).
pub async fn controller_with(client: kube::Client, identity: &str, extra: &[&str]) -> Running {
    controller_with_config(client, identity, extra, |_| {}).await
}

/// Like [`controller_with`], with `edit` applied to the configuration first (for what no
/// flag sets, such as the HTTP limits).
pub async fn controller_with_config(
    client: kube::Client,
    identity: &str,
    extra: &[&str],
    edit: impl FnOnce(&mut Config),
) -> Running {
    let mut args = vec![
        "gitseal-controller",
        "--listen-addr=127.0.0.1:0",
        "--listen-metrics-addr=127.0.0.1:0",
        "--namespace=kube-system",
        "--key-size=2048",
    ];
    args.extend_from_slice(extra);
    let mut config = Config::try_parse_from(args).expect("flags parse");
    edit(&mut config);
    gitseal_controller::start(config, client, identity.into())
        .await
        .expect("controller starts")
}

/// The controller's current certificate, from its HTTP API.
pub async fn certificate(running: &Running) -> Certificate {
    let url = format!("http://{}/v1/cert.pem", running.api_addr);
    let pem = wait_for("the certificate", || async {
        let response = reqwest::get(&url).await.ok()?;
        response.status().is_success().then_some(())?;
        response.text().await.ok()
    })
    .await;
    Certificate::from_pem(pem.as_bytes()).unwrap()
}

/// Seals `items` for `namespace/name` under `scope` (what `gitseal seal` writes).
pub fn sealed_items(
    cert: &Certificate,
    scope: Scope,
    namespace: &str,
    name: &str,
    items: &[(&str, &str)],
) -> Value {
    let key = cert.public_key().unwrap();
    let label = scope.label(namespace, name);
    let map: serde_json::Map<String, Value> = items
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                json!(seal(&key, &label, v.as_bytes()).unwrap()),
            )
        })
        .collect();
    Value::Object(map)
}

/// A strict-scope SealedSecret in [`NS`].
pub fn sealed_secret(cert: &Certificate, name: &str, items: &[(&str, &str)]) -> Value {
    json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "encryptedData": sealed_items(cert, Scope::Strict, NS, name, items),
            "template": {"metadata": {"name": name, "namespace": NS}}
        }
    })
}

pub use gitseal_testkit::wait_for;

/// The Secret `NS/name` once its data has `key` = `value`.
pub async fn secret_with(cluster: &Cluster, name: &str, key: &str, value: &str) -> Secret {
    let api = cluster.secrets(NS);
    wait_for(&format!("Secret {name} with {key}"), || async {
        let secret = api.get_opt(name).await.ok()??;
        let data = secret.data.as_ref()?;
        (data.get(key)?.0 == value.as_bytes()).then_some(secret)
    })
    .await
}

/// The `Synced` condition of `NS/name` once it has `status`.
pub async fn synced(cluster: &Cluster, name: &str, status: &str) -> SealedSecret {
    let api = cluster.sealed_secrets();
    wait_for(&format!("{name} Synced={status}"), || async {
        let ss = api.get(name).await.ok()?;
        let condition = ss.status.as_ref()?.conditions.as_ref()?.first()?.clone();
        (condition.status == status
            && ss.status.as_ref()?.observed_generation == ss.metadata.generation)
            .then_some(ss)
    })
    .await
}

/// The metrics text of a replica.
pub async fn metrics(running: &Running) -> String {
    reqwest::get(format!("http://{}/metrics", running.metrics_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the metric line starting with `prefix` (0 when absent).
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Calls `call` of `provider` (`AWS/SecretsManager`, `HashiCorp/Vault`) a replica made so
/// far, by its `externalsecret_provider_api_calls_count`.
pub async fn provider_calls(running: &Running, provider: &str, call: &str) -> f64 {
    metrics(running)
        .await
        .lines()
        .filter(|l| {
            l.starts_with("externalsecret_provider_api_calls_count{")
                && l.contains(&format!("provider=\"{provider}\""))
                && l.contains(&format!("call=\"{call}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Creates `object` (any kind) through `api`; panics if the server refuses it.
pub async fn create_object<K>(api: &Api<K>, object: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
}

/// Waits until the ExternalSecret `NS/name` has `Ready` = `status` for `reason`.
pub async fn external_secret_ready(cluster: &Cluster, name: &str, status: &str, reason: &str) {
    let api: Api<gitseal_api::ExternalSecret> = Api::namespaced(cluster.client.clone(), NS);
    wait_for(&format!("{name} Ready={status} ({reason})"), || async {
        let es = api.get(name).await.ok()?;
        let c = es
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (c.status == status && c.reason.as_deref() == Some(reason)).then_some(())
    })
    .await;
}

/// Creates the ServiceAccount `namespace/name` (and its namespace) and returns a token of
/// it from TokenRequest, for the API server's default audience.
pub async fn service_account_token(cluster: &Cluster, namespace: &str, name: &str) -> String {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    cluster.namespace(namespace).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), namespace);
    create_object(
        &accounts,
        json!({"metadata": {"name": name, "namespace": namespace}}),
    )
    .await;
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap();
    let answer: TokenRequest = accounts
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"));
    answer.status.expect("a TokenRequest status").token
}

/// Runs the real sops in `dir` (no `.sops.yaml` above it) with `args` on `plain` written
/// as `name`; returns the encrypted manifest as JSON.
pub fn sops(
    dir: &std::path::Path,
    name: &str,
    plain: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Value {
    let bin = gitseal_tests::tool("sops", "GITSEAL_SOPS").expect("sops present (checked)");
    std::fs::write(dir.join(name), plain).unwrap();
    let output = std::process::Command::new(bin)
        .current_dir(dir)
        .args(["encrypt", "--input-type", "yaml", "--output-type", "json"])
        .args(args)
        .arg(name)
        .envs(env.iter().copied())
        .env("SOPS_AGE_KEY_FILE", "/nonexistent")
        .output()
        .expect("run sops");
    assert!(
        output.status.success(),
        "sops failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// OpenBao's JWT auth for the service account `vault-jwt` of [`NS`] (created here): the
/// role `app` with the policy `read-app`, tokens checked with the test server's issuer key.
pub async fn vault_jwt_role(cluster: &Cluster, bao: &gitseal_testkit::openbao::OpenBao) {
    create_object(
        &Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(cluster.client.clone(), NS),
        json!({"metadata": {"name": "vault-jwt", "namespace": NS}}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("issuer.pem");
    std::fs::write(&key, cluster.server.service_account_public_key_pem()).unwrap();
    bao.bao(&["auth", "enable", "jwt"]);
    bao.bao(&[
        "write",
        "auth/jwt/config",
        &format!("jwt_validation_pubkeys=@{}", key.display()),
    ]);
    bao.bao(&[
        "write",
        "auth/jwt/role/app",
        "role_type=jwt",
        "bound_audiences=vault",
        "user_claim=sub",
        &format!("bound_subject=system:serviceaccount:{NS}:vault-jwt"),
        "token_policies=read-app",
    ]);
}

/// The controller binary in its own process, its output read on two threads while it runs
/// (a full pipe would block its logging); killed if the test ends before
/// [`ControllerProcess::stop`] or [`ControllerProcess::kill`].
pub struct ControllerProcess {
    child: Option<std::process::Child>,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    /// `http://127.0.0.1:<port>` of its HTTP API (when started by
    /// [`ControllerProcess::start`]).
    pub api: String,
    /// `http://127.0.0.1:<port>/metrics` (when started by [`ControllerProcess::start`]).
    pub metrics: String,
}

impl ControllerProcess {
    /// Runs `command` (the controller binary with its flags and environment).
    pub fn spawn(mut command: std::process::Command) -> Self {
        use std::io::Read;
        fn reader(
            mut pipe: impl Read + Send + 'static,
        ) -> Option<std::thread::JoinHandle<Vec<u8>>> {
            Some(std::thread::spawn(move || {
                let mut buffer = Vec::new();
                pipe.read_to_end(&mut buffer).ok();
                buffer
            }))
        }
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the controller starts");
        Self {
            stdout: reader(child.stdout.take().expect("stdout piped")),
            stderr: reader(child.stderr.take().expect("stderr piped")),
            child: Some(child),
            api: String::new(),
            metrics: String::new(),
        }
    }

    /// Starts a replica named `identity` against `cluster` (kubeconfig written into
    /// `dir`), 2048-bit keys, its HTTP API on a free port, with `extra` flags.
    pub fn start(cluster: &Cluster, dir: &std::path::Path, identity: &str, extra: &[&str]) -> Self {
        let kubeconfig = dir.join("kubeconfig");
        cluster.server.write_kubeconfig(&kubeconfig).unwrap();
        let free_port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port()
        };
        let (port, metrics_port) = (free_port(), free_port());
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gitseal-controller"));
        command
            .args([
                "--key-size=2048",
                &format!("--listen-addr=127.0.0.1:{port}"),
                &format!("--listen-metrics-addr=127.0.0.1:{metrics_port}"),
            ])
            .args(extra)
            .env("KUBECONFIG", &kubeconfig)
            .env("POD_NAMESPACE", CONTROLLER_NS)
            .env("POD_NAME", identity)
            .env_remove("RUST_LOG");
        let mut process = Self::spawn(command);
        process.api = format!("http://127.0.0.1:{port}");
        process.metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
        process
    }

    /// The process id.
    pub fn pid(&self) -> String {
        self.child.as_ref().expect("running").id().to_string()
    }

    /// Sends `signal` (e.g. `-STOP`, `-CONT`, `-USR1`).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.pid()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// Stops the controller with SIGTERM (a graceful shutdown) and returns all it wrote.
    pub fn stop(self) -> String {
        self.end("-TERM")
    }

    /// Kills the controller with SIGKILL, as a node failure or the OOM killer would:
    /// nothing is cleaned up, the Lease is not released. Returns all it wrote.
    pub fn kill(self) -> String {
        self.end("-KILL")
    }

    fn end(mut self, signal: &str) -> String {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        child.wait().unwrap();
        let mut log = String::new();
        for pipe in [self.stdout.take(), self.stderr.take()]
            .into_iter()
            .flatten()
        {
            log.push_str(&String::from_utf8_lossy(&pipe.join().unwrap()));
        }
        log
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A text fetched from `url` once it answers 200 (the certificate, the age recipient).
pub async fn fetch_text(url: &str) -> String {
    wait_for(url, || async {
        let response = reqwest::get(url).await.ok()?;
        response.status().is_success().then_some(())?;
        response.text().await.ok()
    })
    .await
}

/// Checks the API server's change journal of Secrets: no Secret of [`NS`] for which
/// `key_of` names a key was ever deleted, or written without that key or with it empty.
/// Returns how many changes of those Secrets it saw.
pub fn never_deleted_or_emptied(
    journal: &gitseal_testkit::journal::Journal,
    key_of: impl Fn(&str) -> Option<&'static str>,
) -> usize {
    let mut seen = 0;
    for change in journal.changes().iter().filter(|c| c.namespace == NS) {
        let Some(key) = key_of(&change.name) else {
            continue;
        };
        seen += 1;
        assert_ne!(
            change.event_type, "DELETED",
            "Secret {} was deleted",
            change.name
        );
        let value = change.object.pointer(&format!("/data/{key}"));
        assert!(
            value.and_then(Value::as_str).is_some_and(|v| !v.is_empty()),
            "Secret {} was written ({}) without `{key}`",
            change.name,
            change.event_type
        );
    }
    seen
}

/// Neither a value nor its base64 appears in `texts` (name, text), in the status of any
/// SealedSecret, SopsSecret, ExternalSecret, SecretStore or ClusterSecretStore, or in any
/// event. Returns how many events it read.
pub async fn no_values_outside_secrets(
    cluster: &Cluster,
    texts: &[(&str, &str)],
    values: &[&str],
) -> usize {
    /// The statuses of every object of a kind, as JSON.
    async fn statuses<K>(cluster: &Cluster) -> String
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::all(cluster.client.clone());
        let items = api.list(&Default::default()).await.unwrap().items;
        items
            .iter()
            .map(|item| serde_json::to_value(item).unwrap()["status"].to_string())
            .collect()
    }
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::all(cluster.client.clone());
    let events = events.list(&Default::default()).await.unwrap().items;
    let count = events.len();
    let events = serde_json::to_string(&events).unwrap();
    let statuses = [
        statuses::<gitseal_api::SealedSecret>(cluster).await,
        statuses::<gitseal_api::SopsSecret>(cluster).await,
        statuses::<gitseal_api::ExternalSecret>(cluster).await,
        statuses::<gitseal_api::SecretStore>(cluster).await,
        statuses::<gitseal_api::ClusterSecretStore>(cluster).await,
    ]
    .concat();
    let mut places = vec![("events", events.as_str()), ("statuses", statuses.as_str())];
    places.extend_from_slice(texts);
    for value in values {
        for (place, text) in &places {
            assert!(!text.contains(value), "{value} leaked into the {place}");
            assert!(
                !text.contains(&base64_of(value)),
                "base64 of {value} leaked into the {place}"
            );
        }
    }
    count
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
