//! `gitseal-controller`: flags and environment → logging → [`gitseal_controller::start`] →
//! run until SIGTERM or Ctrl-C → graceful shutdown.

use anyhow::Context as _;
use clap::Parser;
use gitseal_controller::Config;
#[cfg(unix)]
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// jemalloc: with ten thousand objects, glibc's malloc held freed memory fragmented over
/// its per-thread arenas (peak RSS 95 MiB for 10,000 ExternalSecrets, against 69 MiB with
/// jemalloc; docs/benchmarks.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    init_logging(&config)?;
    // Before any key is read: a crash must not leave the keys in a core file.
    gitseal_controller::process::forbid_core_dumps().context("cannot turn core dumps off")?;
    // Signal handlers before anything else: SIGTERM while starting is a clean exit, and
    // SIGUSR1 (new key) never kills a replica that is not (yet) the leader.
    let shutdown = shutdown_signal()?;
    #[cfg(unix)]
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing the SIGUSR1 handler")?;
    let client = kube::Client::try_default()
        .await
        .context("cannot reach the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let identity = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("gitseal-controller-{}", std::process::id()));
    tracing::info!(version = env!("CARGO_PKG_VERSION"), %identity, "starting gitseal-controller");
    let running = gitseal_controller::start(config, client, identity).await?;
    #[cfg(unix)]
    {
        let leading = running.leading.clone();
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                if !*leading.borrow() {
                    tracing::info!("SIGUSR1: not the leader; send it to the leader's pod");
                }
            }
        });
    }
    shutdown.await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let level = match config.log.log_level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug".to_owned(),
        "INFO" => "info".to_owned(),
        "WARN" | "WARNING" => "warn".to_owned(),
        "ERROR" => "error".to_owned(),
        _ => config.log.log_level.clone(),
    };
    let filter = EnvFilter::try_new(&level)
        .with_context(|| format!("invalid --log-level {:?}", config.log.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let stderr = std::io::stderr.with_max_level(tracing::Level::WARN);
    match (config.log.log_format.as_str(), config.log.log_info_stdout) {
        ("json", true) => builder
            .json()
            .with_writer(stderr.or_else(std::io::stdout))
            .init(),
        ("json", false) => builder.json().with_writer(std::io::stderr).init(),
        (_, true) => builder.with_writer(stderr.or_else(std::io::stdout)).init(),
        (_, false) => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C; the handlers are installed when this is called.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    #[cfg(unix)]
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}
