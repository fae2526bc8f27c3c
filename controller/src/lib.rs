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
mod error;
pub mod keyring;
pub mod leader;
pub mod metrics;
pub mod process;
pub mod reconcile;
pub mod rollout;
pub mod scheduler;
pub mod server;
pub mod sops_keys;
pub mod unseal;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

pub use config::Config;
pub use context::Context;
pub use error::Error;

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
    let keys = &config.keys;
    if !keys
        .key_prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || keys.key_prefix.len() > 245
    {
        return Err(Error::Config(format!(
            "--key-prefix {:?} must match [a-z0-9-]* and be at most 245 characters",
            keys.key_prefix
        )));
    }
    let keyring = Arc::new(keyring::Keyring::new(
        &namespace,
        &keys.key_prefix,
        keys.key_order_priority,
    ));
    keyring.load(&client).await?;
    let mut metrics = metrics::Metrics::new();
    metrics.expose_keys(keyring.clone(), keys.key_renew_period);
    let metrics = Arc::new(metrics);
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
    let api_listener = bind(config.http.listen_addr).await?;
    let metrics_listener = bind(config.http.listen_metrics_addr).await?;
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
            config.http.http_limits.clone(),
            shutdown_rx.clone(),
        )));
    }
    tracing::info!(%api_addr, %metrics_addr, "HTTP API and metrics listening");

    let sops = &config.sops_secrets;
    if sops.enable_sops_secrets {
        ctx.sops_keys.load(&client, &sops.sops_key_secrets).await?;
    }
    let watch_keys = {
        let sealing = keyring.clone().watch(client.clone());
        let age = ctx
            .sops_keys
            .clone()
            .watch(client.clone(), sops.sops_key_secrets.clone());
        let enabled = sops.enable_sops_secrets;
        tokio::spawn(async move {
            if enabled {
                futures::future::join(sealing, age).await;
            } else {
                sealing.await;
            }
        })
    };
    let (leading_tx, leading) = watch::channel(!config.leader.leader_elect);
    if config.leader.leader_elect {
        tasks.push(tokio::spawn(leader::campaign(
            client.clone(),
            namespace.clone(),
            config.leader.leader_election_lease.clone(),
            identity,
            config.leader.leader_election_duration,
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
        let (keyring, client, config) = (
            ctx.keyring.clone(),
            ctx.client.clone(),
            ctx.config.keys.clone(),
        );
        let period = config.key_renew_period;
        renew.spawn(async move {
            if let Err(e) = keyring::renew(keyring, client, config).await {
                tracing::error!("key renewal stopped: {e}");
            }
        });
        if ctx.config.sops_secrets.enable_sops_secrets {
            let (keys, client) = (ctx.sops_keys.clone(), ctx.client.clone());
            renew.spawn(sops_keys::renew(keys, client, period));
        }
        let mut controllers = tokio::task::JoinSet::new();
        controllers.spawn(reconcile::run(ctx.clone(), stop_rx));
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
