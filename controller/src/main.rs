//! `gitseal-controller`: the in-cluster controller that turns SealedSecrets, SopsSecrets
//! and ExternalSecrets into Secrets. The reconcilers are being built; until then the
//! binary says so and exits with a failure status instead of pretending to run.

fn main() -> std::process::ExitCode {
    eprintln!(
        "error: gitseal-controller {} has no reconcilers yet; use Bitnami's controller with \
         `gitseal seal` until the gitseal controller ships",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::FAILURE
}
