//! Command-line flags, each also settable as `SEALED_SECRETS_<FLAG>` like upstream's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// The flags of `gitseal-controller`: upstream's names, defaults and environment variables
/// (`--key-renew-period` is `SEALED_SECRETS_KEY_RENEW_PERIOD`), plus gitseal's own.
#[derive(Parser, Clone)]
#[command(
    name = "gitseal-controller",
    version,
    about = "Turns SealedSecrets into Secrets with keys held in the cluster (a drop-in for \
             Bitnami's sealed-secrets controller)",
    after_help = "Examples:\n  gitseal-controller                                # in a cluster, as the chart runs it\n  \
                  KUBECONFIG=~/.kube/config gitseal-controller --all-namespaces=false\n  \
                  gitseal-controller --key-renew-period 0 --listen-addr 127.0.0.1:8080\n\n\
                  Every flag can also be set as SEALED_SECRETS_<FLAG>, e.g. SEALED_SECRETS_KEY_PREFIX."
)]
pub struct Config {
    /// The controller's namespace (default: `POD_NAMESPACE`, then the service account's,
    /// then `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Sealing keys.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The SealedSecret reconciler.
    #[command(flatten)]
    pub sealed_secrets: SealedSecretsArgs,
    /// The ExternalSecret reconciler.
    #[command(flatten)]
    pub external_secrets: ExternalSecretsArgs,
    /// The SopsSecret reconciler.
    #[command(flatten)]
    pub sops_secrets: SopsSecretsArgs,
    /// Watch scope shared by the reconcilers.
    #[command(flatten)]
    pub watch: WatchArgs,
    /// HTTP listeners.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Leader election.
    #[command(flatten)]
    pub leader: LeaderArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// On-demand refresh (`POST /v1/refresh`).
    #[command(flatten)]
    pub refresh: RefreshArgs,
}

/// Sealing keys: how they are named, made, renewed and ordered.
#[derive(clap::Args, Clone)]
pub struct KeyArgs {
    /// Prefix of the key Secrets' generateName; also the name of the legacy single key.
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_PREFIX",
        default_value = "sealed-secrets-key"
    )]
    pub key_prefix: String,
    /// Size of generated RSA keys in bits.
    #[arg(long, env = "SEALED_SECRETS_KEY_SIZE", default_value_t = 4096)]
    pub key_size: usize,
    /// Validity of generated certificates.
    #[arg(long, env = "SEALED_SECRETS_KEY_TTL", default_value = "87600h", value_parser = duration)]
    pub key_ttl: Duration,
    /// Common name of generated certificates (empty: empty subject, as upstream).
    #[arg(long, env = "SEALED_SECRETS_MY_CN", default_value = "")]
    pub my_cn: String,
    /// How often a new key is generated (0 disables renewal); restarts do not reset it.
    #[arg(long, visible_alias = "rotate-period", env = "SEALED_SECRETS_KEY_RENEW_PERIOD",
          default_value = "720h", value_parser = duration)]
    pub key_renew_period: Duration,
    /// Which time orders the keys: `CertNotBefore` or `SecretCreationTimestamp`.
    #[arg(long, env = "SEALED_SECRETS_KEY_ORDER_PRIORITY", default_value = "CertNotBefore",
          value_parser = key_order())]
    pub key_order_priority: KeyOrder,
    /// Generate a key at start-up if the newest is older than this RFC 1123Z time
    /// (e.g. `Mon, 14 Oct 2024 21:45:30 +0200`).
    #[arg(long, env = "SEALED_SECRETS_KEY_CUTOFF_TIME", default_value = "",
          value_parser = key_cutoff)]
    pub key_cutoff_time: KeyCutoff,
    /// Annotations of generated key Secrets (`k=v,k=v`).
    #[arg(long, env = "SEALED_SECRETS_PRIVATEKEY_ANNOTATIONS", default_value = "",
          value_parser = key_values)]
    pub privatekey_annotations: KeyValues,
    /// Labels of generated key Secrets (`k=v,k=v`; cannot override the key label).
    #[arg(long, env = "SEALED_SECRETS_PRIVATEKEY_LABELS", default_value = "",
          value_parser = key_values)]
    pub privatekey_labels: KeyValues,
    /// Accepted for compatibility: key Secrets are always watched, so keys added by hand
    /// or by another replica are used at once.
    #[arg(long, env = "SEALED_SECRETS_WATCH_FOR_SECRETS", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub watch_for_secrets: bool,
}

/// The SealedSecret reconciler.
#[derive(clap::Args, Clone)]
pub struct SealedSecretsArgs {
    /// Label selector filtering the SealedSecrets handled.
    #[arg(long, env = "SEALED_SECRETS_LABEL_SELECTOR", default_value = "",
          value_parser = label_selector)]
    pub label_selector: String,
    /// Accept the deprecated v1 `spec.data` field.
    #[arg(long, env = "SEALED_SECRETS_ACCEPT_DEPRECATED_V1_DATA", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub accept_deprecated_v1_data: bool,
    /// Write the `Synced` condition and `observedGeneration`.
    #[arg(long, env = "SEALED_SECRETS_UPDATE_STATUS", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub update_status: bool,
    /// Do not watch generated Secrets (no revert of edits, no re-creation after deletion).
    #[arg(long, env = "SEALED_SECRETS_SKIP_RECREATE", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub skip_recreate: bool,
    /// Accepted for compatibility: generated Secrets always go with their SealedSecret
    /// through their ownerReference (Kubernetes' garbage collector).
    #[arg(long, env = "SEALED_SECRETS_OLD_GC_BEHAVIOR", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub old_gc_behavior: bool,
    /// Retries of a failing SealedSecret before it waits for its next change.
    #[arg(long, env = "SEALED_SECRETS_MAX_UNSEAL_RETRIES", default_value_t = 5)]
    pub max_unseal_retries: u32,
    /// Stop exporting the per-object `condition_info` gauge.
    #[arg(long, env = "SEALED_SECRETS_METRICS_OMIT_SECRET_LABELS", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub metrics_omit_secret_labels: bool,
}

/// The ExternalSecret reconciler and the stores: ESO's flag names where ESO has one.
#[derive(clap::Args, Clone)]
pub struct ExternalSecretsArgs {
    /// Reconcile ExternalSecrets, SecretStores, ClusterSecretStores and
    /// ClusterExternalSecrets (`external-secrets.io`).
    #[arg(long, env = "GITSEAL_ENABLE_EXTERNAL_SECRETS", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub enable_external_secrets: bool,
    /// Reconcile ClusterSecretStores (cluster-scoped: needs a ClusterRole; ESO's flag).
    #[arg(long, env = "GITSEAL_ENABLE_CLUSTER_STORE_RECONCILER", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub enable_cluster_store_reconciler: bool,
    /// Reconcile ClusterExternalSecrets (cluster-scoped; ESO's flag).
    #[arg(long, env = "GITSEAL_ENABLE_CLUSTER_EXTERNAL_SECRET_RECONCILER", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub enable_cluster_external_secret_reconciler: bool,
    /// Process only stores whose `spec.controller` is empty or this class (ESO's
    /// `--controller-class`).
    #[arg(long, env = "GITSEAL_CONTROLLER_CLASS", default_value = "default")]
    pub controller_class: String,
    /// Left delimiter of ExternalSecret templates (ESO's `--template-left-delimiter`).
    #[arg(long, env = "GITSEAL_TEMPLATE_LEFT_DELIMITER", default_value = "{{")]
    pub template_left_delimiter: String,
    /// Right delimiter of ExternalSecret templates.
    #[arg(long, env = "GITSEAL_TEMPLATE_RIGHT_DELIMITER", default_value = "}}")]
    pub template_right_delimiter: String,
    /// How often stores are validated when they set no `refreshInterval` (ESO's
    /// `--store-requeue-interval`).
    #[arg(long, env = "GITSEAL_STORE_REQUEUE_INTERVAL", default_value = "5m", value_parser = duration)]
    pub store_requeue_interval: Duration,
    /// The AWS endpoint to use instead of the region's (an emulator, or a VPC endpoint);
    /// the SDK's `AWS_ENDPOINT_URL` variables work too.
    #[arg(long, env = "GITSEAL_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// Provider calls per second to one store (a store's `gitseal.dev/rate-limit`
    /// annotation overrides it).
    #[arg(long, env = "GITSEAL_STORE_RATE_LIMIT", default_value_t = 50.0)]
    pub store_rate_limit: f64,
    /// Provider calls to one store in a burst above the rate (`gitseal.dev/burst`).
    #[arg(long, env = "GITSEAL_STORE_BURST", default_value_t = 100)]
    pub store_burst: u32,
    /// Provider calls to one store in flight at once (`gitseal.dev/concurrency`).
    #[arg(long, env = "GITSEAL_STORE_CONCURRENCY", default_value_t = 8)]
    pub store_concurrency: u32,
    /// How often ClusterExternalSecrets look for new namespaces when they set no
    /// `refreshTime`.
    #[arg(long, env = "GITSEAL_CLUSTER_EXTERNAL_SECRET_RESCAN", default_value = "1h", value_parser = duration)]
    pub cluster_external_secret_rescan: Duration,
    /// How long to wait after a synced Secret's data changed before restarting the
    /// workloads annotated `gitseal.dev/restart-on-secret-change` with its name (changes
    /// within the wait are merged into one restart).
    #[arg(long, env = "GITSEAL_ROLLOUT_DEBOUNCE", default_value = "5s", value_parser = duration)]
    pub rollout_debounce: Duration,
}

/// The SopsSecret reconciler and the keys it decrypts with.
#[derive(clap::Args, Clone)]
pub struct SopsSecretsArgs {
    /// Reconcile SopsSecrets (`isindir.github.com`, sops-secrets-operator's API).
    #[arg(long, env = "GITSEAL_ENABLE_SOPS_SECRETS", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub enable_sops_secrets: bool,
    /// Flux-format decryption Secrets (`name` in the controller's namespace, or
    /// `namespace/name`, comma-separated): their `*.agekey` entries are age identities.
    #[arg(long, env = "GITSEAL_SOPS_KEY_SECRETS", default_value = "", value_parser = key_secrets)]
    pub sops_key_secrets: KeySecrets,
    /// Write no Secret for a SopsSecret whose MAC does not verify (by default they are
    /// written, every value being authenticated with its path, and the status says the
    /// MAC was not verified).
    #[arg(long, env = "GITSEAL_SOPS_REQUIRE_MAC", default_value_t = false,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true",
          value_parser = go_bool)]
    pub sops_require_mac: bool,
    /// The AWS KMS endpoint to call instead of the region's (an emulator, a VPC
    /// endpoint); the SDK's `AWS_ENDPOINT_URL_KMS` works too.
    #[arg(long, env = "GITSEAL_SOPS_KMS_ENDPOINT_URL")]
    pub sops_kms_endpoint_url: Option<String>,
}

/// The value of `--sops-key-secrets`: `[namespace/]name,...`; a bare name is in the
/// controller's namespace (`None` here).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySecrets(pub Vec<(Option<String>, String)>);

fn key_secrets(text: &str) -> Result<KeySecrets, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| match item.split_once('/') {
            None if dns_subdomain(item) => Ok((None, item.to_owned())),
            Some(_) => namespaced_name(item).map(|n| (Some(n.namespace), n.name)),
            None => Err(format!("{item:?} is not a Secret name")),
        })
        .collect::<Result<_, _>>()
        .map(KeySecrets)
}

/// What every reconciler watches, and how it talks to the API server.
#[derive(clap::Args, Clone)]
pub struct WatchArgs {
    /// Watch SealedSecrets in all namespaces (false: only the controller's namespace).
    #[arg(long, env = "SEALED_SECRETS_ALL_NAMESPACES", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub all_namespaces: bool,
    /// Comma-separated namespaces to watch besides the controller's (implies not all).
    #[arg(long, env = "SEALED_SECRETS_ADDITIONAL_NAMESPACES", default_value = "")]
    pub additional_namespaces: String,
    /// Concurrent reconciles (0: 4 per CPU); decryptions are further limited to one per CPU.
    #[arg(long, env = "SEALED_SECRETS_WORKERS", default_value_t = 0)]
    pub workers: u16,
    /// Accepted for compatibility; the client is not throttled.
    #[arg(
        long,
        env = "SEALED_SECRETS_KUBECLIENT_QPS",
        default_value_t = 5.0,
        allow_negative_numbers = true
    )]
    pub kubeclient_qps: f64,
    /// Accepted for compatibility; the client is not throttled.
    #[arg(long, env = "SEALED_SECRETS_KUBECLIENT_BURST", default_value_t = 10)]
    pub kubeclient_burst: u32,
}

/// The HTTP API and metrics listeners.
#[derive(clap::Args, Clone)]
pub struct HttpArgs {
    /// Address of the HTTP API (`/v1/cert.pem`, `/v1/verify`, `/v1/rotate`, `/healthz`).
    #[arg(long, env = "SEALED_SECRETS_LISTEN_ADDR", default_value = ":8080", value_parser = listen_addr)]
    pub listen_addr: SocketAddr,
    /// Address of the metrics endpoint (`/metrics`).
    #[arg(long, env = "SEALED_SECRETS_LISTEN_METRICS_ADDR", default_value = ":8081", value_parser = listen_addr)]
    pub listen_metrics_addr: SocketAddr,
    /// Accepted for compatibility (HTTP read timeout).
    #[arg(long, env = "SEALED_SECRETS_READ_TIMEOUT", default_value = "2m", value_parser = duration)]
    pub read_timeout: Duration,
    /// Accepted for compatibility (HTTP write timeout).
    #[arg(long, env = "SEALED_SECRETS_WRITE_TIMEOUT", default_value = "2m", value_parser = duration)]
    pub write_timeout: Duration,
    /// `/v1/verify` (and, separately, `/v1/rotate`) requests per second per client.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT", default_value_t = 2)]
    pub rate_limit: u32,
    /// `/v1/verify` (and, separately, `/v1/rotate`) burst per client.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT_BURST", default_value_t = 2)]
    pub rate_limit_burst: u32,
    /// Timeouts and limits of both HTTP listeners (not a flag: the defaults of
    /// [`crate::server`]; tests shorten them).
    #[arg(skip)]
    pub http_limits: crate::server::HttpLimits,
}

/// Leader election among replicas.
#[derive(clap::Args, Clone)]
pub struct LeaderArgs {
    /// Elect one leader among replicas with a coordination.k8s.io Lease; only the leader
    /// writes Secrets and keys, every replica serves the HTTP API.
    #[arg(long, env = "SEALED_SECRETS_LEADER_ELECT", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub leader_elect: bool,
    /// Name of the leader-election Lease, in the controller's namespace.
    #[arg(
        long,
        env = "SEALED_SECRETS_LEADER_ELECTION_LEASE",
        default_value = "gitseal-controller"
    )]
    pub leader_election_lease: String,
    /// How long a leader's Lease holds without renewal.
    #[arg(long, env = "SEALED_SECRETS_LEADER_ELECTION_DURATION", default_value = "15s", value_parser = duration)]
    pub leader_election_duration: Duration,
}

/// Logging.
#[derive(clap::Args, Clone)]
pub struct LogArgs {
    /// Write INFO and DEBUG logs to stdout, warnings and errors to stderr.
    #[arg(long, env = "SEALED_SECRETS_LOG_INFO_STDOUT", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub log_info_stdout: bool,
    /// Log level: DEBUG, INFO, WARN or ERROR (or a `tracing` filter such as
    /// `gitseal_controller=debug`).
    #[arg(long, env = "SEALED_SECRETS_LOG_LEVEL", default_value = "INFO")]
    pub log_level: String,
    /// Log format: `text` or `json`.
    #[arg(long, env = "SEALED_SECRETS_LOG_FORMAT", default_value = "text",
          value_parser = ["text", "json"])]
    pub log_format: String,
}

impl Config {
    /// The controller namespace, resolved as upstream does.
    pub fn controller_namespace(&self) -> String {
        if let Some(ns) = self.namespace.as_ref().filter(|ns| !ns.is_empty()) {
            return ns.clone();
        }
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_owned())
    }

    /// The additional namespaces, trimmed, without empties.
    pub fn additional_namespaces(&self) -> Vec<String> {
        self.watch
            .additional_namespaces
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The value of a map flag, `k=v,k=v` (upstream's form), parsed when the flags are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValues(pub BTreeMap<String, String>);

/// Parses `k=v,k=v`; blanks around keys and values are trimmed, keys may not be empty.
fn key_values(text: &str) -> Result<KeyValues, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(format!("{pair:?} is not key=value")),
        })
        .collect::<Result<_, _>>()
        .map(KeyValues)
}

pub use crate::keyring::KeyOrder;

/// `--key-order-priority`: upstream's two names, mapped to [`KeyOrder`].
fn key_order() -> impl clap::builder::TypedValueParser<Value = KeyOrder> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["CertNotBefore", "SecretCreationTimestamp"]).map(
        |name| match name.as_str() {
            "SecretCreationTimestamp" => KeyOrder::SecretCreationTimestamp,
            _ => KeyOrder::CertNotBefore,
        },
    )
}

/// `--key-cutoff-time`: Go's RFC 1123Z time (`Mon, 14 Oct 2024 21:45:30 +0200`), as Unix
/// seconds; empty for none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyCutoff(pub Option<i64>);

fn key_cutoff(text: &str) -> Result<KeyCutoff, String> {
    if text.trim().is_empty() {
        return Ok(KeyCutoff(None));
    }
    k8s_openapi::jiff::fmt::rfc2822::parse(text.trim())
        .map(|zoned| KeyCutoff(Some(zoned.timestamp().as_second())))
        .map_err(|e| format!("invalid time {text:?} (want RFC 1123Z): {e}"))
}

/// Checks `--label-selector` as the API server would parse it (kube has no parser):
/// comma-separated `key`, `!key`, `key=v`, `key==v`, `key!=v`, `key in (v,...)`,
/// `key notin (v,...)`, `key>n`, `key<n`. A bad selector stops the controller at start-up
/// instead of failing every watch request.
fn label_selector(text: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("invalid label selector {text:?}: {why}"));
    if text.trim().is_empty() {
        return Ok(text.to_owned());
    }
    let mut requirements = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return bad("unbalanced ')'"),
            ')' => depth -= 1,
            ',' if depth == 0 => {
                requirements.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return bad("unbalanced '('");
    }
    requirements.push(&text[start..]);
    for requirement in requirements.into_iter().map(str::trim) {
        let ok = if let Some(key) = requirement.strip_prefix('!') {
            label_key(key.trim())
        } else if let Some(open) = requirement.find('(') {
            let (head, list) = requirement.split_at(open);
            let key = head
                .trim_end()
                .strip_suffix(" notin")
                .or_else(|| head.trim_end().strip_suffix(" in"));
            let values = list[1..].strip_suffix(')');
            match (key, values) {
                (Some(key), Some(values)) => {
                    label_key(key.trim()) && values.split(',').all(|v| label_value(v.trim()))
                }
                _ => false,
            }
        } else if let Some(at) = requirement.find(['=', '!', '>', '<']) {
            let (key, rest) = requirement.split_at(at);
            let value = ["==", "!=", "=", ">", "<"]
                .iter()
                .find_map(|op| rest.strip_prefix(op));
            label_key(key.trim()) && value.is_some_and(|v| label_value(v.trim()))
        } else {
            label_key(requirement)
        };
        if !ok {
            return bad(&format!("{requirement:?} is not a requirement"));
        }
    }
    Ok(text.to_owned())
}

/// `[prefix/]name`: a DNS-subdomain prefix and a name of at most 63 characters.
fn label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    });
    prefix_ok && !name.is_empty() && label_value(name)
}

/// A label value: at most 63 characters of `[A-Za-z0-9-_.]`, alphanumeric at both ends.
fn label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && value
            .bytes()
            .next()
            .is_none_or(|b| b.is_ascii_alphanumeric())
        && value
            .bytes()
            .last()
            .is_none_or(|b| b.is_ascii_alphanumeric())
}

/// Go durations as upstream's flags take them (`720h`, `2m`, `1h30m`, `0`).
fn duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// Go's strconv.ParseBool forms.
fn go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean {text:?}")),
    }
}

/// `:8080` (all interfaces, Go style), `host:port` or `[v6]:port`.
fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse()
        .map_err(|e| format!("invalid listen address {text:?}: {e}"))
}

/// On-demand refresh: who may call `POST /v1/refresh` (with neither flag the endpoint is
/// off and answers 404).
#[derive(clap::Args, Clone)]
pub struct RefreshArgs {
    /// `<namespace>/<name>` of a Secret whose key `token` is a bearer token accepted by
    /// `POST /v1/refresh` (read when requests come, cached 5 s; a missing or empty token
    /// refuses every request).
    #[arg(long, env = "GITSEAL_REFRESH_TOKEN_SECRET", value_parser = namespaced_name)]
    pub refresh_token_secret: Option<NamespacedName>,
    /// Service accounts (`namespace:name,...`) whose tokens, checked by TokenReview, may
    /// call `POST /v1/refresh`; other authenticated accounts get 403.
    #[arg(long, env = "GITSEAL_REFRESH_SERVICE_ACCOUNTS", default_value = "",
          value_parser = service_accounts)]
    pub refresh_service_accounts: ServiceAccounts,
}

/// An object named by namespace and name (`--refresh-token-secret`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespacedName {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

/// The value of `--refresh-service-accounts`: `namespace:name,...`, parsed when the flags
/// are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAccounts(pub Vec<NamespacedName>);

/// Parses `<namespace>/<name>`: a namespace (DNS label) and an object name (DNS subdomain).
fn namespaced_name(text: &str) -> Result<NamespacedName, String> {
    match text.trim().split_once('/') {
        Some((namespace, name)) if dns_label(namespace) && dns_subdomain(name) => {
            Ok(NamespacedName {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
        }
        _ => Err(format!("{text:?} is not <namespace>/<name>")),
    }
}

/// Parses `namespace:name,...` (blanks around items trimmed, empty items skipped).
fn service_accounts(text: &str) -> Result<ServiceAccounts, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| match item.split_once(':') {
            Some((namespace, name))
                if dns_label(namespace.trim()) && dns_subdomain(name.trim()) =>
            {
                Ok(NamespacedName {
                    namespace: namespace.trim().to_owned(),
                    name: name.trim().to_owned(),
                })
            }
            _ => Err(format!("{item:?} is not namespace:name")),
        })
        .collect::<Result<_, _>>()
        .map(ServiceAccounts)
}

/// A DNS-1123 label (a namespace's name): at most 63 of `[a-z0-9-]`, alphanumeric at both
/// ends.
pub(crate) fn dns_label(text: &str) -> bool {
    text.len() <= 63 && !text.contains('.') && dns_subdomain(text)
}

/// A DNS-1123 subdomain (most objects' names): at most 253 of `[a-z0-9-.]`, alphanumeric
/// at both ends.
pub(crate) fn dns_subdomain(text: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    text.len() <= 253
        && text.bytes().next().is_some_and(alnum)
        && text.bytes().last().is_some_and(alnum)
        && text.bytes().all(|b| alnum(b) || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_defaults_and_environment() {
        let config = Config::try_parse_from(["gitseal-controller"]).unwrap();
        assert_eq!(config.keys.key_prefix, "sealed-secrets-key");
        assert_eq!(
            config.keys.key_renew_period,
            Duration::from_secs(720 * 3600)
        );
        assert_eq!(config.keys.key_ttl, Duration::from_secs(87600 * 3600));
        assert_eq!(config.keys.key_order_priority, KeyOrder::CertNotBefore);
        assert_eq!(config.keys.key_cutoff_time, KeyCutoff(None));
        assert_eq!(config.http.listen_addr.port(), 8080);
        assert_eq!(config.http.listen_metrics_addr.port(), 8081);
        assert_eq!(
            config.external_secrets.rollout_debounce,
            Duration::from_secs(5)
        );
        let config =
            Config::try_parse_from(["c", "--update-status=false", "--rotate-period", "1h"])
                .unwrap();
        assert!(!config.sealed_secrets.update_status);
        assert_eq!(config.keys.key_renew_period, Duration::from_secs(3600));
        assert_eq!(
            key_values("a=1, b=2").unwrap().0,
            BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])
        );
        assert!(key_values("nope").is_err() && key_values("=v").is_err());
        assert_eq!(
            key_secrets(" flux-age ,flux-system/sops-keys").unwrap().0,
            [
                (None, "flux-age".to_owned()),
                (Some("flux-system".to_owned()), "sops-keys".to_owned())
            ]
        );
        assert!(key_secrets("a/b/c").is_err() && key_secrets("Bad_Name").is_err());
        // A bad map flag stops the controller at start-up, not at its first key renewal.
        let error = Config::try_parse_from(["c", "--privatekey-labels", "team"])
            .err()
            .expect("refused");
        assert!(
            error.to_string().contains("\"team\" is not key=value"),
            "{error}"
        );
    }

    #[test]
    fn every_flag_keeps_its_name_and_environment_variable() {
        use clap::CommandFactory;
        let command = Config::command();
        let flags: Vec<_> = command
            .get_arguments()
            .filter_map(|a| Some((a.get_long()?.to_owned(), a.get_env()?.to_owned())))
            .collect();
        assert_eq!(flags.len(), 54, "{flags:?}");
        assert!(
            flags
                .iter()
                .any(|(l, e)| l == "rollout-debounce" && e == "GITSEAL_ROLLOUT_DEBOUNCE")
        );
        // gitseal's own flags (the ExternalSecret reconciler's) are GITSEAL_<FLAG>.
        let own: Vec<String> =
            <ExternalSecretsArgs as clap::Args>::augment_args(clap::Command::new("own"))
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_owned))
                .collect();
        assert_eq!(own.len(), 13);
        let refresh: Vec<String> =
            <RefreshArgs as clap::Args>::augment_args(clap::Command::new("refresh"))
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_owned))
                .collect();
        assert_eq!(refresh.len(), 2);
        let sops: Vec<String> =
            <SopsSecretsArgs as clap::Args>::augment_args(clap::Command::new("sops"))
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_owned))
                .collect();
        assert_eq!(sops.len(), 4);
        for (long, env) in &flags {
            let env = env.to_str().unwrap();
            if long != "namespace" {
                let prefix = if own.contains(long) || refresh.contains(long) || sops.contains(long)
                {
                    "GITSEAL"
                } else {
                    "SEALED_SECRETS"
                };
                let expected = format!("{prefix}_{}", long.to_uppercase().replace('-', "_"));
                assert_eq!(env, expected, "--{long}");
            }
        }
    }

    #[test]
    fn typed_flags_are_checked_when_parsed() {
        let config = Config::try_parse_from([
            "c",
            "--key-cutoff-time",
            "Mon, 14 Oct 2024 21:45:30 +0200",
            "--key-order-priority",
            "SecretCreationTimestamp",
        ])
        .unwrap();
        assert_eq!(config.keys.key_cutoff_time, KeyCutoff(Some(1_728_935_130)));
        assert_eq!(
            config.keys.key_order_priority,
            KeyOrder::SecretCreationTimestamp
        );
        for good in [
            "",
            "app=db",
            "app==db, tier!=web",
            "app.kubernetes.io/instance in (a, b-1),!legacy,env notin (dev)",
            "owned, version>2",
            "empty=",
        ] {
            assert!(label_selector(good).is_ok(), "{good:?}");
        }
        for bad in [
            "app=db,",
            "=x",
            "app in (a",
            "app=-x",
            "a b",
            "app in a,b)",
            "Up/x=y",
        ] {
            assert!(label_selector(bad).is_err(), "{bad:?}");
        }
        for bad in [
            ["c", "--key-cutoff-time", "yesterday"],
            ["c", "--key-order-priority", "Newest"],
            ["c", "--label-selector", "app=db,"],
        ] {
            assert!(Config::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refresh_flags_are_checked_when_parsed() {
        let config = Config::try_parse_from(["c"]).unwrap();
        assert_eq!(config.refresh.refresh_token_secret, None);
        assert!(config.refresh.refresh_service_accounts.0.is_empty());
        let config = Config::try_parse_from([
            "c",
            "--refresh-token-secret",
            "gitseal/refresh-token",
            "--refresh-service-accounts",
            "ci:refresher, team-a:deploy.bot,",
        ])
        .unwrap();
        let account = |namespace: &str, name: &str| NamespacedName {
            namespace: namespace.into(),
            name: name.into(),
        };
        assert_eq!(
            config.refresh.refresh_token_secret,
            Some(account("gitseal", "refresh-token"))
        );
        assert_eq!(
            config.refresh.refresh_service_accounts.0,
            [account("ci", "refresher"), account("team-a", "deploy.bot")]
        );
        for bad in [
            ["c", "--refresh-token-secret", "refresh-token"],
            ["c", "--refresh-token-secret", "gitseal/"],
            ["c", "--refresh-token-secret", "/name"],
            ["c", "--refresh-token-secret", "a/b/c"],
            ["c", "--refresh-token-secret", "Gitseal/x"],
            ["c", "--refresh-token-secret", "a.b/x"],
            ["c", "--refresh-service-accounts", "ci/refresher"],
            ["c", "--refresh-service-accounts", "ci:"],
            ["c", "--refresh-service-accounts", ":x"],
            ["c", "--refresh-service-accounts", "ci:a:b"],
            ["c", "--refresh-service-accounts", "ci:ok,bad"],
        ] {
            assert!(Config::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let error = Config::try_parse_from(["c", "--refresh-service-accounts", "ci:ok,bad"])
            .err()
            .expect("refused");
        assert!(
            error.to_string().contains("\"bad\" is not namespace:name"),
            "{error}"
        );
    }
}
