//! The kubeseal-compatible command line: `gitseal kubeseal [flags]`, or the binary invoked
//! as `kubeseal`. Same flags, defaults, `SEALED_SECRETS_*` environment variables, mode
//! precedence, output and error texts as Bitnami's kubeseal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser};
use gitseal_crypto::limits;
use gitseal_crypto::sealed::{Certificate, PublicKey, Scope, seal};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::manifest::{self, Format};
use crate::sealing::{self, SealOptions};

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "Examples:
  # Seal a Secret with a certificate fetched earlier (kubeseal --fetch-cert > cert.pem)
  kubectl create secret generic db --from-literal=password=s3cr3t --dry-run=client -o yaml \\
    | kubeseal --cert cert.pem -o yaml > db-sealed.yaml

  # Seal one value for a SealedSecret you write by hand
  echo -n s3cr3t | kubeseal --cert cert.pem --raw --namespace prod --name db

  # Add or replace items of an existing SealedSecret file in place
  kubeseal --cert cert.pem --merge-into db-sealed.yaml < new-items.yaml

  # Decrypt offline with the controller's key backup
  kubeseal --recovery-unseal --recovery-private-key keys-backup.yaml < db-sealed.yaml";

/// Flags of kubeseal.
#[derive(Parser)]
#[command(
    name = "kubeseal",
    version,
    about = "Seal Kubernetes Secrets (kubeseal-compatible)",
    after_help = EXAMPLES,
    disable_version_flag = true
)]
pub struct Args {
    /// Certificate / public key file/URL to use for encryption. Overrides --controller-*.
    #[arg(long, env = "SEALED_SECRETS_CERT", default_value = "")]
    pub cert: String,
    /// Namespace of the sealed-secrets controller.
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = "kube-system"
    )]
    pub controller_namespace: String,
    /// Name of the sealed-secrets controller (its Service).
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAME",
        default_value = "sealed-secrets-controller"
    )]
    pub controller_name: String,
    /// Output format for the sealed secret: json or yaml.
    #[arg(
        short = 'o',
        long = "format",
        env = "SEALED_SECRETS_FORMAT",
        default_value = "json"
    )]
    pub format: Format,
    /// Secret (JSON or YAML) input file; standard input when absent.
    #[arg(short = 'f', long = "secret-file", env = "SEALED_SECRETS_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    /// SealedSecret output file; standard output when absent. `.yaml`/`.yml` selects YAML.
    #[arg(
        short = 'w',
        long = "sealed-secret-file",
        env = "SEALED_SECRETS_SEALED_SECRET_FILE"
    )]
    pub sealed_secret_file: Option<PathBuf>,
    /// Write the certificate (from --cert) to the output and exit.
    #[arg(long, env = "SEALED_SECRETS_FETCH_CERT", value_parser = BoolishValueParser::new())]
    pub fetch_cert: bool,
    /// Allow a Secret without data.
    #[arg(long, env = "SEALED_SECRETS_ALLOW_EMPTY_DATA", value_parser = BoolishValueParser::new())]
    pub allow_empty_data: bool,
    /// Validate a SealedSecret with the controller.
    #[arg(long, env = "SEALED_SECRETS_VALIDATE", value_parser = BoolishValueParser::new())]
    pub validate: bool,
    /// Merge the sealed items into an existing SealedSecret file, in place.
    #[arg(long, env = "SEALED_SECRETS_MERGE_INTO")]
    pub merge_into: Option<PathBuf>,
    /// Encrypt one raw value (standard input or --from-file) and print only the ciphertext.
    #[arg(long, env = "SEALED_SECRETS_RAW", value_parser = BoolishValueParser::new())]
    pub raw: bool,
    /// Name of the Secret for --raw; otherwise overrides the input Secret's name.
    #[arg(long, env = "SEALED_SECRETS_NAME")]
    pub name: Option<String>,
    /// With --raw: the file to encrypt, as `[key=]path` (the key is ignored).
    #[arg(long, env = "SEALED_SECRETS_FROM_FILE")]
    pub from_file: Vec<String>,
    /// Scope: strict, namespace-wide or cluster-wide.
    #[arg(long, env = "SEALED_SECRETS_SCOPE", default_value = "strict")]
    pub scope: Scope,
    /// Do not copy the input's Argo CD and Flux annotations (`argocd.argoproj.io/sync-wave`,
    /// `sync-options`, `compare-options`, `hook`, `hook-delete-policy`, and every
    /// `kustomize.toolkit.fluxcd.io/*`) onto the SealedSecret itself (upstream kubeseal's
    /// output); they stay in its template (the Secret) either way. Not an upstream flag.
    #[arg(long, env = "SEALED_SECRETS_NO_GITOPS_ANNOTATIONS", value_parser = BoolishValueParser::new())]
    pub no_gitops_annotations: bool,
    /// Re-encrypt SealedSecrets with the controller's newest key.
    #[arg(long, alias = "rotate", env = "SEALED_SECRETS_RE_ENCRYPT", value_parser = BoolishValueParser::new())]
    pub re_encrypt: bool,
    /// Decrypt a SealedSecret offline with --recovery-private-key.
    #[arg(long, env = "SEALED_SECRETS_RECOVERY_UNSEAL", value_parser = BoolishValueParser::new())]
    pub recovery_unseal: bool,
    /// Private key file(s) for --recovery-unseal (repeatable or comma-separated).
    #[arg(
        long,
        env = "SEALED_SECRETS_RECOVERY_PRIVATE_KEY",
        value_delimiter = ','
    )]
    pub recovery_private_key: Vec<PathBuf>,
    /// Path to the kubeconfig file.
    #[arg(long, env = "SEALED_SECRETS_KUBECONFIG", default_value = "")]
    pub kubeconfig: String,
    /// Namespace scope (defaults to the kubeconfig context's namespace, else `default`).
    #[arg(short = 'n', long, env = "SEALED_SECRETS_NAMESPACE")]
    pub namespace: Option<String>,
    /// The kubeconfig context to use.
    #[arg(long, env = "SEALED_SECRETS_CONTEXT")]
    pub context: Option<String>,
    /// Connection overrides, as kubectl's flags of the same names.
    #[command(flatten)]
    pub connection: crate::cluster::Overrides,
    /// Print the version.
    #[arg(long, action = ArgAction::SetTrue)]
    pub version: bool,
}

/// The namespace of the kubeconfig's (current or given) context, if any.
fn kubeconfig_namespace(args: &Args) -> Option<String> {
    let path = if !args.kubeconfig.is_empty() {
        PathBuf::from(&args.kubeconfig)
    } else if let Some(list) = std::env::var_os("KUBECONFIG") {
        std::env::split_paths(&list).next()?
    } else {
        PathBuf::from(std::env::var_os("HOME")?).join(".kube/config")
    };
    let text = crate::file::read(&path, limits::MANIFEST).ok()?;
    let config = manifest::parse_documents(&text).ok()?.into_iter().next()?;
    let context = args
        .context
        .clone()
        .or_else(|| config.get("current-context")?.as_str().map(str::to_owned))?;
    config
        .get("contexts")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(context.as_str()))?
        .pointer("/context/namespace")?
        .as_str()
        .map(str::to_owned)
}

/// How long fetching `--cert` from an `http(s)://` URL may take, connection included.
const CERT_FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads `--cert`: a path, `file://` URL or `http(s)://` URL, bounded in size (and, from
/// the network, in time).
pub fn read_cert_source(cert: &str) -> anyhow::Result<Vec<u8>> {
    let scheme = cert.split_once("://").map(|(s, _)| s);
    let path = match scheme {
        None => cert,
        Some(s) if s.len() == 1 => cert,
        Some("file") => &cert["file://".len()..],
        Some("http" | "https") => return download_cert(cert),
        Some(other) => bail!(
            "unsupported certificate URL scheme {other:?} in {cert:?}: use a file path, file://, http:// or https://"
        ),
    };
    Ok(crate::file::read(Path::new(path), limits::KEY_MATERIAL)
        .with_context(|| format!("cannot read certificate {path:?}"))?
        .to_vec())
}

/// `GET`s a certificate; proxy settings come from the environment, as with kubeseal.
fn download_cert(url: &str) -> anyhow::Result<Vec<u8>> {
    let response = reqwest::blocking::Client::builder()
        .timeout(CERT_FETCH_TIMEOUT)
        .build()
        .and_then(|client| client.get(url).send())
        .with_context(|| format!("cannot fetch {url:?}"))?;
    if response.status() != reqwest::StatusCode::OK {
        bail!("cannot fetch {url:?}: {}", response.status());
    }
    let hint = response.content_length().unwrap_or(0);
    Ok(crate::file::read_from(response, limits::KEY_MATERIAL, hint)
        .with_context(|| format!("cannot fetch {url:?}"))?
        .to_vec())
}

/// The Secret or SealedSecret manifests to work on: `-f FILE` or standard input.
fn read_input(args: &Args) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    match &args.secret_file {
        Some(path) => crate::file::read(path, limits::MANIFEST)
            .with_context(|| format!("cannot read {}", path.display())),
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("(tty detected: expecting json/yaml k8s resource in stdin)");
            }
            crate::file::read_stdin(limits::MANIFEST).context("cannot read standard input")
        }
    }
}

/// Writes the result to `-w` (atomically) or to `out`.
fn emit(args: &Args, out: &mut dyn Write, bytes: &[u8]) -> anyhow::Result<()> {
    match &args.sealed_secret_file {
        Some(path) => crate::file::write_atomic(path, bytes),
        None => out.write_all(bytes).context("cannot write the output"),
    }
}

fn output_format(args: &Args) -> Format {
    match &args.sealed_secret_file {
        Some(path) => manifest::format_for_path(path, args.format),
        None => args.format,
    }
}

/// Runs kubeseal with `args`, writing results to `out`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.version {
        writeln!(out, "kubeseal version: {}", env!("CARGO_PKG_VERSION"))?;
        return Ok(());
    }
    if !args.from_file.is_empty() && !args.raw {
        bail!("--from-file requires --raw");
    }
    if !args.recovery_private_key.is_empty()
        && !args.recovery_unseal
        && std::io::stderr().is_terminal()
    {
        eprintln!("warning: --recovery-private-key is ignored without --recovery-unseal");
    }
    let explicit_namespace = args.namespace.clone();
    let default_namespace = explicit_namespace
        .clone()
        .or_else(|| kubeconfig_namespace(args))
        .unwrap_or_else(|| "default".to_owned());
    let format = output_format(args);

    if args.recovery_unseal {
        let keyring = sealing::load_recovery_key_files(&args.recovery_private_key)?;
        let mut rendered = String::new();
        for document in manifest::parse_documents(&read_input(args)?)? {
            let secret = sealing::unseal_sealed_secret(document, &keyring)?;
            rendered.push_str(&manifest::render(&secret, format)?);
        }
        return emit(args, out, rendered.as_bytes());
    }
    let controller = || {
        crate::cluster::Controller::connect(
            &args.kubeconfig,
            args.context.as_deref(),
            &args.connection,
            &args.controller_namespace,
            &args.controller_name,
        )
        .context("cannot reach the controller (or pass --cert to seal without it)")
    };
    if args.validate || args.re_encrypt {
        let controller = controller()?;
        let input = read_input(args)?;
        // Rewritten in place (below), a `.yaml` input file stays YAML.
        let format = match (&args.secret_file, &args.sealed_secret_file) {
            (Some(input), None) => manifest::format_for_path(input, format),
            _ => format,
        };
        let mut rendered = String::new();
        for document in manifest::parse_documents(&input)? {
            if args.validate {
                controller.verify(&document)?;
            } else {
                rendered.push_str(&manifest::render(&controller.rotate(&document)?, format)?);
            }
        }
        if args.re_encrypt {
            return match (&args.secret_file, &args.sealed_secret_file) {
                // Like kubeseal: with -f and no -w, the input file is rewritten in place.
                (Some(input), None) => crate::file::write_atomic(input, rendered.as_bytes()),
                _ => emit(args, out, rendered.as_bytes()),
            };
        }
        return Ok(());
    }
    let cert_bytes = if args.cert.is_empty() {
        controller()?.certificate()?
    } else {
        read_cert_source(&args.cert)?
    };
    if args.fetch_cert {
        return emit(args, out, &cert_bytes);
    }
    let key = key_from_pem(&cert_bytes)?;
    let options = SealOptions {
        key: &key,
        scope: args.scope,
        name: args.name.clone(),
        namespace: explicit_namespace.clone(),
        default_namespace: default_namespace.clone(),
        allow_empty_data: args.allow_empty_data,
        gitops_annotations: !args.no_gitops_annotations,
    };

    if let Some(target) = &args.merge_into {
        return merge_into(args, target, &options, format);
    }
    if args.raw {
        return raw(args, out, &options);
    }
    let rendered = seal_documents(&read_input(args)?, &options, format)?;
    emit(args, out, rendered.as_bytes())
}

/// Seals every Secret of a JSON or YAML stream and renders the SealedSecrets.
pub fn seal_documents(
    input: &[u8],
    options: &SealOptions<'_>,
    format: Format,
) -> anyhow::Result<String> {
    let documents = manifest::parse_documents(input)?;
    if documents.is_empty() {
        bail!("no secrets found. Ensure the input is valid and UTF-8 encoded");
    }
    let mut rendered = String::new();
    for document in documents {
        let sealed = sealing::seal_secret(document, options)?;
        rendered.push_str(&manifest::render(&sealed, format)?);
    }
    Ok(rendered)
}

/// Reads a certificate from `--cert` and returns its public key for sealing, refusing an
/// expired certificate.
pub fn sealing_key(cert: &str) -> anyhow::Result<PublicKey> {
    key_from_pem(&read_cert_source(cert)?)
}

/// The public key of a PEM certificate, refused when the certificate has expired.
pub fn key_from_pem(pem: &[u8]) -> anyhow::Result<PublicKey> {
    let certificate = Certificate::from_pem(pem).context("failed to read the certificate")?;
    certificate
        .sealing_key()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn raw(args: &Args, out: &mut dyn Write, options: &SealOptions<'_>) -> anyhow::Result<()> {
    let namespace = options
        .namespace
        .clone()
        .unwrap_or_else(|| options.default_namespace.clone());
    if options.scope != Scope::ClusterWide && namespace.is_empty() {
        bail!(
            "must provide the --namespace flag with --raw and --scope {}",
            options.scope
        );
    }
    let name = args.name.clone().unwrap_or_default();
    if options.scope == Scope::Strict && name.is_empty() {
        bail!("must provide the --name flag with --raw and --scope strict");
    }
    let plaintext = match args.from_file.as_slice() {
        [] => crate::file::read_stdin(limits::MANIFEST).context("cannot read standard input")?,
        [spec] => {
            let path = spec.split_once('=').map_or(spec.as_str(), |(_, p)| p);
            crate::file::read(Path::new(path), limits::MANIFEST)
                .with_context(|| format!("cannot read {path}"))?
        }
        _ => bail!("must provide exactly one --from-file with --raw"),
    };
    let sealed = seal(
        options.key,
        &options.scope.label(&namespace, &name),
        &plaintext,
    )?;
    emit(args, out, sealed.as_bytes())
}

fn merge_into(
    args: &Args,
    target: &Path,
    options: &SealOptions<'_>,
    format: Format,
) -> anyhow::Result<()> {
    let original = crate::file::read(target, limits::MANIFEST)
        .with_context(|| format!("cannot read {}", target.display()))?;
    let mut existing = match <[Value; 1]>::try_from(manifest::parse_documents(&original)?) {
        Ok([document]) if is_sealed_secret(&document) => document,
        // Rewriting a file of several documents would drop all but one, and rewriting a
        // Secret or ConfigMap would keep its plaintext beside the sealed items.
        _ => bail!(
            "{} must hold exactly one SealedSecret (bitnami.com/v1alpha1) to merge into",
            target.display()
        ),
    };
    let name = manifest::text(&existing, "/metadata/name")
        .unwrap_or_default()
        .to_owned();
    let namespace = manifest::text(&existing, "/metadata/namespace").map(str::to_owned);
    let forced = SealOptions {
        key: options.key,
        scope: options.scope,
        name: Some(name),
        namespace: None,
        default_namespace: namespace.unwrap_or_else(|| options.default_namespace.clone()),
        allow_empty_data: options.allow_empty_data,
        gitops_annotations: options.gitops_annotations,
    };
    for mut document in manifest::parse_documents(&read_input(args)?)? {
        if let Some(Value::Object(meta)) = document.get_mut("metadata") {
            meta.remove("namespace");
        }
        let sealed = sealing::seal_secret(document, &forced)?;
        let spec = manifest::expect_object(&mut existing, "the target")?
            .entry("spec")
            .or_insert_with(|| serde_json::json!({}));
        merge_map(
            spec,
            "/encryptedData",
            sealed.pointer("/spec/encryptedData"),
        );
        for field in ["labels", "annotations"] {
            merge_map(
                spec,
                &format!("/template/metadata/{field}"),
                sealed.pointer(&format!("/spec/template/metadata/{field}")),
            );
        }
        // The target's own annotations are kept, its scope annotations untouched; the
        // input's GitOps annotations are added.
        let carried: serde_json::Map<String, Value> = sealed
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(key, _)| sealing::is_gitops_annotation(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if !carried.is_empty() {
            let target = manifest::expect_object(&mut existing, "the target")?;
            merge_map(
                target
                    .entry("metadata")
                    .or_insert_with(|| serde_json::json!({})),
                "/annotations",
                Some(&Value::Object(carried)),
            );
        }
    }
    crate::file::write_atomic(target, manifest::render(&existing, format)?.as_bytes())
}

/// Whether `document` is a `bitnami.com/v1alpha1` SealedSecret.
fn is_sealed_secret(document: &Value) -> bool {
    manifest::text(document, "/kind") == Some("SealedSecret")
        && manifest::text(document, "/apiVersion") == Some("bitnami.com/v1alpha1")
}

/// Copies the entries of `from` into the object at `pointer` under `root`, creating it.
fn merge_map(root: &mut Value, pointer: &str, from: Option<&Value>) {
    let Some(Value::Object(from)) = from else {
        return;
    };
    let mut node = root;
    for key in pointer.split('/').skip(1) {
        if !node.get(key).is_some_and(Value::is_object) {
            node[key] = serde_json::json!({});
        }
        node = &mut node[key];
    }
    if let Value::Object(map) = node {
        for (k, v) in from {
            map.insert(k.clone(), v.clone());
        }
    }
}
