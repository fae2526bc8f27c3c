//! `gitseal seal`: seal Secret manifests into SealedSecrets that are safe to commit.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use gitseal_crypto::sealed::Scope;

use crate::kubeseal::{seal_documents, sealing_key};
use crate::manifest::Format;
use crate::sealing::SealOptions;

/// Examples shown by `gitseal seal --help`.
pub const EXAMPLES: &str = "Examples:
  # Seal a Secret manifest next to it, as YAML
  gitseal seal secret.yaml --cert cert.pem -o sealed-secret.yaml

  # Straight from kubectl, for any Secret name in the namespace
  kubectl create secret generic api --from-literal=token=t0k3n --dry-run=client -o yaml \\
    | gitseal seal --cert cert.pem --scope namespace-wide -n prod > api-sealed.yaml";

/// Options of `gitseal seal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Secret manifest(s) to seal, JSON or YAML, several documents allowed; `-` or nothing
    /// reads standard input.
    pub input: Option<PathBuf>,
    /// The controller's certificate (saved with `gitseal kubeseal --fetch-cert`).
    #[arg(long, env = "SEALED_SECRETS_CERT")]
    pub cert: String,
    /// Write to this file (atomically) instead of standard output; `.json` selects JSON.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Output format: yaml or json.
    #[arg(long, default_value = "yaml")]
    pub format: Format,
    /// Where the Secret may be unsealed: strict (this name and namespace), namespace-wide or
    /// cluster-wide. Defaults to the scope annotations of the input.
    #[arg(long, default_value = "strict")]
    pub scope: Scope,
    /// Namespace for Secrets that do not name one (must match those that do).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Override the Secret's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Seal Secrets that have no data.
    #[arg(long)]
    pub allow_empty_data: bool,
    /// Do not copy the input's Argo CD and Flux annotations (`argocd.argoproj.io/sync-wave`,
    /// `sync-options`, `compare-options`, `hook`, `hook-delete-policy`, and every
    /// `kustomize.toolkit.fluxcd.io/*`) onto the SealedSecret itself; they stay in its
    /// template (the Secret) either way.
    #[arg(long)]
    pub no_gitops_annotations: bool,
}

/// Runs `gitseal seal`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let key = sealing_key(&args.cert)?;
    let limit = gitseal_crypto::limits::MANIFEST;
    let input = match args.input.as_deref() {
        Some(path) if path.as_os_str() != "-" => crate::file::read(path, limit)
            .with_context(|| format!("cannot read {}", path.display()))?,
        _ => {
            if std::io::stdin().is_terminal() {
                eprintln!("reading a Secret manifest from standard input (Ctrl-D to end)…");
            }
            crate::file::read_stdin(limit).context("cannot read standard input")?
        }
    };
    let options = SealOptions {
        key: &key,
        scope: args.scope,
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        default_namespace: args
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        allow_empty_data: args.allow_empty_data,
        gitops_annotations: !args.no_gitops_annotations,
    };
    match &args.output {
        Some(path) => {
            let format = match path.extension().and_then(|e| e.to_str()) {
                Some("json") => Format::Json,
                Some("yaml" | "yml") => Format::Yaml,
                _ => args.format,
            };
            crate::file::write_atomic(path, seal_documents(&input, &options, format)?.as_bytes())
        }
        None => Ok(out.write_all(seal_documents(&input, &options, args.format)?.as_bytes())?),
    }
}
