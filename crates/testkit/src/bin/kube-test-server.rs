//! `kube-test-server`: runs the gitseal test API server until it is killed.
//!
//! It writes a kubeconfig for the server and prints that file's path on the first line of
//! standard output, so that a script can do:
//!
//! ```text
//! kube-test-server > server.out &
//! until read -r KUBECONFIG < server.out; do sleep 0.05; done; export KUBECONFIG
//! kubectl get secrets
//! ```

use std::io::Write;
use std::path::PathBuf;

const USAGE: &str = "usage: kube-test-server [--port PORT] [--kubeconfig PATH] [--token TOKEN]

Serves a Kubernetes API for tests on 127.0.0.1 and prints the path of a kubeconfig for
it. Runs until interrupted (SIGINT/SIGTERM).";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut config = gitseal_testkit::Config::default();
    let mut kubeconfig = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or(format!("{name} needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "--port" => {
                config.port = value("--port")?
                    .parse()
                    .map_err(|_| "--port must be a number".to_owned())?
            }
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
            "--token" => config.token = Some(value("--token")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    // Handlers first: once the path is printed, SIGINT/SIGTERM must find them installed
    // (a signal in between would kill the process and leave the kubeconfig behind).
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let server = gitseal_testkit::TestServer::start_with(config)
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let path = kubeconfig.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "kube-test-server-{}.kubeconfig",
            std::process::id()
        ))
    });
    server
        .write_kubeconfig(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("{}", path.display());
    let _ = std::io::stdout().flush();
    eprintln!("serving {} (kubeconfig {})", server.url(), path.display());
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    drop(server);
    let _ = std::fs::remove_file(&path);
    Ok(())
}
