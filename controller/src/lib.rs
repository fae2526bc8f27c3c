//! # gitseal-controller
//!
//! The in-cluster controller: holds the sealing keys and turns every `bitnami.com/v1alpha1`
//! SealedSecret into the Secret it describes — a drop-in for Bitnami's sealed-secrets
//! controller (same CRD, key Secrets, annotations, events, status, HTTP API, metric names
//! and flags), with leader election, a digest that spares RSA work when nothing changed,
//! and a watch that reverts edits of generated Secrets.
//!
//! [`start`] runs everything in the current Tokio runtime and returns the bound addresses;
//! the `gitseal-controller` binary wraps it with flags, logging and signals.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gitseal_controller::Error> {
//! use clap::Parser;
//! let config = gitseal_controller::Config::parse_from(["gitseal-controller", "--listen-addr", "127.0.0.1:0"]);
//! let client = kube::Client::try_default().await?;
//! let running = gitseal_controller::start(config, client, "replica-1".into()).await?;
//! println!("HTTP API on {}", running.api_addr);
//! running.stop().await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod context;
pub mod keyring;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod server;
pub mod template;
pub mod unseal;

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use gitseal_api::SealedSecret;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Resource};
use tokio::sync::watch;

pub use config::Config;
pub use context::Context;

/// Errors of the controller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call failed (transient: retried).
    #[error("{0}")]
    Kube(#[from] kube::Error),
    /// The SealedSecret cannot be unsealed (the message names items, never values).
    #[error("{0}")]
    Unseal(String),
    /// The Secret exists and belongs to someone else.
    #[error("Resource \"{0}\" already exists and is not managed by SealedSecret")]
    Unmanaged(String),
    /// The Secret is immutable and would have to change.
    #[error("{0}")]
    Immutable(String),
    /// A sealing key could not be made or read.
    #[error("sealing key: {0}")]
    Key(#[from] gitseal_crypto::KeyError),
    /// A flag has an invalid value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Anything else (I/O on the listeners, a crashed task).
    #[error("{0}")]
    Internal(String),
}

/// A running controller.
pub struct Running {
    /// Where the HTTP API listens.
    pub api_addr: SocketAddr,
    /// Where `/metrics` listens.
    pub metrics_addr: SocketAddr,
    /// Whether this replica leads now.
    pub leading: watch::Receiver<bool>,
    /// The shared context (keys, metrics).
    pub context: Arc<Context>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    watch_keys: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops every task gracefully (the Lease is released) and waits for them.
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        self.watch_keys.abort();
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Ends every task at once, as a crash would: nothing is released (tests use it to
    /// show that another replica takes over when the Lease expires).
    pub fn kill(self) {
        self.watch_keys.abort();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the controller: loads the keys, binds the HTTP listeners, and campaigns for
/// leadership; the leader generates and renews keys and reconciles SealedSecrets.
pub async fn start(
    config: Config,
    client: kube::Client,
    identity: String,
) -> Result<Running, Error> {
    let namespace = config.controller_namespace();
    keyring::parse_cutoff(&config.key_cutoff_time)?;
    if !config
        .key_prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || config.key_prefix.len() > 245
    {
        return Err(Error::Config(format!(
            "--key-prefix {:?} must match [a-z0-9-]* and be at most 245 characters",
            config.key_prefix
        )));
    }
    let order = match config.key_order_priority.as_str() {
        "SecretCreationTimestamp" => keyring::KeyOrder::SecretCreationTimestamp,
        _ => keyring::KeyOrder::CertNotBefore,
    };
    let keyring = Arc::new(keyring::Keyring::new(&namespace, &config.key_prefix, order));
    keyring.load(&client).await?;
    let metrics = Arc::new(metrics::Metrics::new());
    let ctx = Arc::new(Context::new(
        client.clone(),
        config.clone(),
        keyring.clone(),
        metrics.clone(),
        identity.clone(),
    ));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Internal(format!("cannot listen on {addr}: {e}")))
    };
    let api_listener = bind(config.listen_addr).await?;
    let metrics_listener = bind(config.listen_metrics_addr).await?;
    let api_addr = api_listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let metrics_addr = metrics_listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    for (listener, router) in [
        (api_listener, server::api_router(ctx.clone())),
        (metrics_listener, server::metrics_router(metrics.clone())),
    ] {
        tasks.push(tokio::spawn(server::serve(
            listener,
            router,
            config.http_limits.clone(),
            shutdown_rx.clone(),
        )));
    }
    tracing::info!(%api_addr, %metrics_addr, "HTTP API and metrics listening");

    let watch_keys = tokio::spawn(keyring.clone().watch(client.clone()));
    let (leading_tx, leading) = watch::channel(!config.leader_elect);
    if config.leader_elect {
        tasks.push(tokio::spawn(leader::campaign(
            client.clone(),
            namespace.clone(),
            config.leader_election_lease.clone(),
            identity,
            config.leader_election_duration,
            leading_tx,
            shutdown_rx.clone(),
        )));
    } else {
        let mut stop = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).await;
            drop(leading_tx);
        }));
    }
    tasks.push(tokio::spawn(lead(
        ctx.clone(),
        leading.clone(),
        shutdown_rx.clone(),
    )));
    Ok(Running {
        api_addr,
        metrics_addr,
        leading,
        context: ctx,
        shutdown,
        tasks,
        watch_keys,
    })
}

/// Runs the leader's duties (key renewal, reconcilers) whenever this replica leads.
async fn lead(
    ctx: Arc<Context>,
    mut leading: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = leading.wait_for(|l| *l) => if r.is_err() { return },
            _ = shutdown.wait_for(|s| *s) => return,
        }
        // Owned by JoinSets, the duties end with this task even when it is aborted.
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut renew = tokio::task::JoinSet::new();
        let (keyring, client, config) =
            (ctx.keyring.clone(), ctx.client.clone(), ctx.config.clone());
        renew.spawn(async move {
            if let Err(e) = keyring::renew(keyring, client, config).await {
                tracing::error!("key renewal stopped: {e}");
            }
        });
        let mut controllers = tokio::task::JoinSet::new();
        controllers.spawn(run_controllers(ctx.clone(), stop_rx));
        tokio::select! {
            _ = leading.wait_for(|l| !*l) => tracing::info!("not leading: reconcilers stop"),
            _ = shutdown.wait_for(|s| *s) => {}
        }
        stop_tx.send_replace(true);
        renew.abort_all();
        while controllers.join_next().await.is_some() {}
        if *shutdown.borrow() {
            return;
        }
    }
}

/// The namespaces to watch: `None` for all.
fn namespaces(ctx: &Context) -> Option<Vec<String>> {
    let additional = ctx.config.additional_namespaces();
    if ctx.config.all_namespaces && additional.is_empty() {
        return None;
    }
    let mut list = vec![ctx.config.controller_namespace()];
    for namespace in additional {
        if !list.contains(&namespace) {
            list.push(namespace);
        }
    }
    Some(list)
}

async fn run_controllers(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    // Reconcile only after the keys are there (the leader just made one if there was none).
    let mut keys = ctx.keyring.subscribe();
    let _ = keys
        .wait_for(|_| ctx.keyring.snapshot().latest().is_some())
        .await;
    let runs = match namespaces(&ctx) {
        None => vec![run_controller(ctx.clone(), None, stop.clone())],
        Some(list) => list
            .into_iter()
            .map(|ns| run_controller(ctx.clone(), Some(ns), stop.clone()))
            .collect(),
    };
    futures::future::join_all(runs).await;
}

async fn run_controller(
    ctx: Arc<Context>,
    namespace: Option<String>,
    mut stop: watch::Receiver<bool>,
) {
    let client = ctx.client.clone();
    // Metadata only: SealedSecrets are read whole when reconciled, Secrets never enter the
    // cache. Memory stays small however many and however large the objects are.
    let (sealed, secrets): (
        Api<PartialObjectMeta<SealedSecret>>,
        Api<PartialObjectMeta<Secret>>,
    ) = match &namespace {
        None => (Api::all(client.clone()), Api::all(client)),
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client, ns),
        ),
    };
    let mut config = watcher::Config::default();
    if !ctx.config.label_selector.is_empty() {
        config = config.labels(&ctx.config.label_selector);
    }
    let (reader, writer) = reflector::store();
    let metrics = ctx.metrics.clone();
    let trigger = watcher(sealed, config.clone())
        .default_backoff()
        .modify(|ss: &mut PartialObjectMeta<SealedSecret>| ss.meta_mut().managed_fields = None)
        .inspect_ok(move |event| {
            // A deleted SealedSecret takes its condition_info series with it, as upstream.
            if let watcher::Event::Delete(ss) = event {
                metrics.forget_condition(ss);
            }
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_annotations, Default::default());
    let workers = match ctx.config.workers {
        0 => 4 * std::thread::available_parallelism().map_or(2, |n| n.get()) as u16,
        n => n,
    };
    let mut controller = Controller::for_stream(trigger, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(workers));
    if !ctx.config.skip_recreate {
        let owned = watcher(secrets, config).default_backoff().touched_objects();
        controller = controller.owns_stream(owned);
    }
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("*"),
        "SealedSecret reconciler started"
    );
    controller
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
}

/// Reconcile on spec changes (generation) and on annotation changes (they set the scope);
/// status writes and other metadata changes are ignored, as upstream.
fn spec_or_annotations(ss: &PartialObjectMeta<SealedSecret>) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    ss.meta().generation.hash(&mut hasher);
    ss.meta().annotations.hash(&mut hasher);
    Some(hasher.finish())
}
