//! # gitseal-testkit
//!
//! An in-process Kubernetes API server for tests, faithful to the API conventions the
//! project relies on, so that controller tests, scale benchmarks and fault tests run
//! without a cluster. It speaks plain HTTP on 127.0.0.1 with bearer-token authentication;
//! `kubectl` and kube-rs both work against it. What it implements and what it leaves out
//! is listed in `docs/testing.md`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = gitseal_testkit::TestServer::start().await?;
//! let kubeconfig = std::env::temp_dir().join("kubeconfig");
//! server.write_kubeconfig(&kubeconfig)?;
//! // KUBECONFIG=... kubectl get secrets; or kube::Client from the same kubeconfig.
//! server.fail_next(2, 500, Some("list"), Some("secrets")); // fault injection
//! # Ok(()) }
//! ```

mod cel_validation;
mod error;
pub mod fault;
mod fields;
pub mod journal;
pub mod moto;
pub mod openbao;
mod patch;
mod protobuf;
mod registry;
pub mod request;
mod selector;
mod server;
mod store;
mod tls;
mod validation;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

pub use error::ApiError;
pub use server::Rule;

use server::Shared;

/// Settings of a test server.
#[derive(Debug, Clone)]
pub struct Config {
    /// The bearer token with full access (a random one if `None`).
    pub token: Option<String>,
    /// How many events watches can resume from (older versions get 410 Gone).
    pub event_log: usize,
    /// How often watches that ask for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            token: None,
            event_log: 100_000,
            bookmark_interval: Duration::from_secs(5),
            port: 0,
        }
    }
}

/// A running test API server; stopped when dropped.
pub struct TestServer {
    addr: SocketAddr,
    token: String,
    ca_pem: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Starts a server with the default settings on a free port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(Config::default()).await
    }

    /// Starts a server with `config`.
    pub async fn start_with(config: Config) -> std::io::Result<Self> {
        let token = config.token.clone().unwrap_or_else(random_token);
        let tokens = HashMap::from([(token.clone(), None)]);
        let shared = Arc::new(Shared::new(
            store::Store::new(config.event_log),
            tokens,
            config.bookmark_interval,
        ));
        let tls = tls::generate().map_err(std::io::Error::other)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .fallback(server::handle)
            .with_state(shared.clone());
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
        Ok(Self {
            addr,
            token,
            ca_pem: tls.ca_pem,
            shared,
            task,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The PEM certificate of the CA that signed the server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM public key that verifies the service account tokens this server issues
    /// (ES256), for relying parties such as Vault's JWT auth (`jwt_validation_pubkeys`).
    pub fn service_account_public_key_pem(&self) -> String {
        self.shared.token_public_key_pem()
    }

    /// The bearer token with full access.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A kubeconfig for this server using `token` (context `testkit`, namespace `default`).
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testkit\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
             contexts:\n- name: testkit\n  context:\n    cluster: testkit\n    user: testkit\n    namespace: default\n\
             current-context: testkit\nusers:\n- name: testkit\n  user:\n    token: {token}\n",
            self.url(),
            base64::engine::general_purpose::STANDARD.encode(&self.ca_pem),
        )
    }

    /// A kubeconfig with the full-access token.
    pub fn kubeconfig(&self) -> String {
        self.kubeconfig_with_token(&self.token)
    }

    /// A kube-rs client of this server using `token` (feature `kube`).
    #[cfg(feature = "kube")]
    pub async fn client_with_token(&self, token: &str) -> kube::Client {
        use kube::config::{KubeConfigOptions, Kubeconfig};
        let kubeconfig =
            Kubeconfig::from_yaml(&self.kubeconfig_with_token(token)).expect("kubeconfig parses");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("kubeconfig loads");
        kube::Client::try_from(config).expect("client builds")
    }

    /// A kube-rs client of this server with full access (feature `kube`).
    #[cfg(feature = "kube")]
    pub async fn client(&self) -> kube::Client {
        self.client_with_token(&self.token).await
    }

    /// Writes [`TestServer::kubeconfig`] to `path` (mode 0600).
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        options.mode(0o600);
        options.open(path)?.write_all(self.kubeconfig().as_bytes())
    }

    /// Adds a token limited to `rules` (RBAC-lite) and returns it.
    pub fn add_token(&self, rules: Vec<Rule>) -> String {
        let token = random_token();
        self.shared
            .tokens
            .lock()
            .expect("tokens lock")
            .insert(token.clone(), Some(rules));
        token
    }

    /// Every permission a token limited by [`TestServer::add_token`] (or a service account
    /// token, limited by its Roles) has been granted so far, over all such tokens: (verb,
    /// API group, resource with its subresource as in `secrets` or `sealedsecrets/status`),
    /// from the checks of the resource API, the service proxy and the token endpoints.
    /// What RBAC an actual run needs, against what a [`Rule`] set grants.
    pub fn granted(&self) -> std::collections::BTreeSet<(String, String, String)> {
        self.shared.granted()
    }

    /// Fails the next `count` requests that match `verb` (get, list, watch, create,
    /// update, patch, delete, deletecollection) and `resource` (plural), if given, with
    /// HTTP `status` (e.g. 500, 429, 409).
    pub fn fail_next(&self, count: usize, status: u16, verb: Option<&str>, resource: Option<&str>) {
        self.shared.inject(status, count, verb, resource);
    }

    /// Makes `addr` the one endpoint of Service `namespace/name`, as the cluster's
    /// EndpointSlice controller would for a ready pod: creates the EndpointSlice
    /// `<name>-testkit` (label `kubernetes.io/service-name: <name>`) with every port of the
    /// Service, by name, on `addr`'s port. The service proxy
    /// (`/api/v1/namespaces/<ns>/services/<name>/proxy/...`) then reaches `addr`. The
    /// Service must exist.
    pub fn add_service_endpoint(
        &self,
        namespace: &str,
        name: &str,
        addr: SocketAddr,
    ) -> Result<(), ApiError> {
        let mut store = self.shared.store.lock().expect("store lock");
        let builtin = |group: &str, plural: &str| {
            store
                .registry
                .find(group, "v1", plural)
                .cloned()
                .expect("built in")
        };
        let (services, slices) = (
            builtin("", "services"),
            builtin("discovery.k8s.io", "endpointslices"),
        );
        let service = store.get(&services, namespace, name)?;
        let ports: Vec<serde_json::Value> = service
            .pointer("/spec/ports")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                serde_json::json!({
                    "name": p.get("name").and_then(serde_json::Value::as_str).unwrap_or_default(),
                    "port": addr.port(),
                    "protocol": "TCP",
                })
            })
            .collect();
        let slice = serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": format!("{name}-testkit"),
                "namespace": namespace,
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": if addr.is_ipv4() { "IPv4" } else { "IPv6" },
            "endpoints": [{
                "addresses": [addr.ip().to_string()],
                "conditions": {"ready": true},
            }],
            "ports": ports,
        });
        let options = store::WriteOptions {
            field_manager: "testkit".into(),
            ..Default::default()
        };
        store.create(&slices, namespace, slice, &options).map(drop)
    }

    /// How many injected failures have not been served yet.
    pub fn pending_faults(&self) -> usize {
        self.shared.pending_faults()
    }

    /// Ends every open watch stream, as a restarted API server or a dropped connection would.
    pub fn close_watches(&self) {
        self.shared.close_watches();
    }

    /// Delays every request by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.set_latency(latency);
    }

    /// Forgets the event history: watches resuming from any version seen so far get
    /// 410 Gone and must list again.
    pub fn expire_resource_versions(&self) {
        self.shared.store.lock().expect("store lock").compact();
        self.shared.close_watches();
    }

    /// Starts recording every change to objects of `plural` (e.g. `secrets`), whatever
    /// their group, from now on.
    pub fn journal(&self, plural: &str) -> journal::Journal {
        let feed = self.shared.store.lock().expect("store lock").subscribe();
        journal::Journal::start(feed, plural)
    }

    /// Requests of the resource API served so far, per verb (`get`, `list`, `watch`,
    /// `create`, `update`, `patch`, `delete`, `deletecollection`), counting those that were
    /// refused or failed; discovery, token and service-proxy requests are not counted.
    /// Benchmarks divide the difference between two readings by the objects reconciled.
    pub fn requests(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.shared.requests()
    }

    /// Number of objects stored, over all resources.
    pub fn object_count(&self) -> usize {
        self.shared.store.lock().expect("store lock").object_count()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.close_watches();
        self.task.abort();
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Unique per server; these tokens guard a loopback test server, not production data.
    let mut x =
        (nanos as u64) ^ (std::process::id() as u64).rotate_left(32) ^ (&bytes as *const _ as u64);
    for b in &mut bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x & 0xff) as u8;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Polls `probe` every 50 ms until it gives a value and returns it; panics naming `what`
/// after 30 s. The one waiting helper of every crate's tests (generous: kube-runtime backs
/// off for seconds after failures, and CI machines are busy).
pub async fn wait_for<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    wait_for_within(what, Duration::from_secs(30), probe).await
}

/// [`wait_for`] with a deadline of `limit`.
pub async fn wait_for_within<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
