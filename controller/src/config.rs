//! Command-line flags, each also settable as `SEALED_SECRETS_<FLAG>` like upstream's.

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
          value_parser = ["CertNotBefore", "SecretCreationTimestamp"])]
    pub key_order_priority: String,
    /// Generate a key at start-up if the newest is older than this RFC 1123Z time
    /// (e.g. `Mon, 14 Oct 2024 21:45:30 +0200`).
    #[arg(long, env = "SEALED_SECRETS_KEY_CUTOFF_TIME", default_value = "")]
    pub key_cutoff_time: String,
    /// Accept the deprecated v1 `spec.data` field.
    #[arg(long, env = "SEALED_SECRETS_ACCEPT_DEPRECATED_V1_DATA", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub accept_deprecated_v1_data: bool,
    /// Watch SealedSecrets in all namespaces (false: only the controller's namespace).
    #[arg(long, env = "SEALED_SECRETS_ALL_NAMESPACES", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub all_namespaces: bool,
    /// Comma-separated namespaces to watch besides the controller's (implies not all).
    #[arg(long, env = "SEALED_SECRETS_ADDITIONAL_NAMESPACES", default_value = "")]
    pub additional_namespaces: String,
    /// Label selector filtering the SealedSecrets handled.
    #[arg(long, env = "SEALED_SECRETS_LABEL_SELECTOR", default_value = "")]
    pub label_selector: String,
    /// `/v1/verify` (and, separately, `/v1/rotate`) requests per second per client.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT", default_value_t = 2)]
    pub rate_limit: u32,
    /// `/v1/verify` (and, separately, `/v1/rotate`) burst per client.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT_BURST", default_value_t = 2)]
    pub rate_limit_burst: u32,
    /// Write the `Synced` condition and `observedGeneration`.
    #[arg(long, env = "SEALED_SECRETS_UPDATE_STATUS", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub update_status: bool,
    /// Accepted for compatibility: key Secrets are always watched, so keys added by hand
    /// or by another replica are used at once.
    #[arg(long, env = "SEALED_SECRETS_WATCH_FOR_SECRETS", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub watch_for_secrets: bool,
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
    /// Annotations of generated key Secrets (`k=v,k=v`).
    #[arg(
        long,
        env = "SEALED_SECRETS_PRIVATEKEY_ANNOTATIONS",
        default_value = ""
    )]
    pub privatekey_annotations: String,
    /// Labels of generated key Secrets (`k=v,k=v`; cannot override the key label).
    #[arg(long, env = "SEALED_SECRETS_PRIVATEKEY_LABELS", default_value = "")]
    pub privatekey_labels: String,
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
    /// Stop exporting the per-object `condition_info` gauge.
    #[arg(long, env = "SEALED_SECRETS_METRICS_OMIT_SECRET_LABELS", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = go_bool)]
    pub metrics_omit_secret_labels: bool,
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
    /// The controller's namespace (default: `POD_NAMESPACE`, then the service account's,
    /// then `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Concurrent reconciles (0: 4 per CPU); decryptions are further limited to one per CPU.
    #[arg(long, env = "SEALED_SECRETS_WORKERS", default_value_t = 0)]
    pub workers: u16,
    /// Timeouts and limits of both HTTP listeners (not a flag: the defaults of
    /// [`crate::server`]; tests shorten them).
    #[arg(skip)]
    pub http_limits: crate::server::HttpLimits,
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
        self.additional_namespaces
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Parses `k=v,k=v` (upstream's map flag form).
pub fn parse_map(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("{pair:?} is not key=value"))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_defaults_and_environment() {
        let config = Config::try_parse_from(["gitseal-controller"]).unwrap();
        assert_eq!(config.key_prefix, "sealed-secrets-key");
        assert_eq!(config.key_renew_period, Duration::from_secs(720 * 3600));
        assert_eq!(config.key_ttl, Duration::from_secs(87600 * 3600));
        assert_eq!(config.listen_addr.port(), 8080);
        assert_eq!(config.listen_metrics_addr.port(), 8081);
        let config =
            Config::try_parse_from(["c", "--update-status=false", "--rotate-period", "1h"])
                .unwrap();
        assert!(!config.update_status);
        assert_eq!(config.key_renew_period, Duration::from_secs(3600));
        assert_eq!(
            parse_map("a=1, b=2").unwrap(),
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert!(parse_map("nope").is_err());
    }
}
