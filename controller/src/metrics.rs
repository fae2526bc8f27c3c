//! Prometheus metrics: upstream's names and labels (`sealed_secrets_controller_*`, spec
//! §3.7), so existing dashboards and alerts keep working, plus histograms and counters of
//! gitseal's own (`gitseal_controller_*`). No metric carries a secret value.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `unseal_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `fetch`, `unseal`, `update`, `unmanaged` or `status`.
    pub reason: String,
    /// Namespace of the SealedSecret.
    pub namespace: String,
}

/// Labels of `condition_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    /// Namespace of the SealedSecret.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The condition type (`Synced`).
    pub condition: String,
    /// Its `app.kubernetes.io/instance` label.
    pub ss_app_kubernetes_io_instance: String,
}

/// Labels of the HTTP request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// Request path.
    pub path: String,
    /// Status code.
    pub code: String,
    /// Method.
    pub method: String,
}

/// Labels of the HTTP duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpPathLabels {
    /// Request path.
    pub path: String,
    /// Method.
    pub method: String,
}

/// Labels of gitseal's reconcile histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `written`, `unchanged` (digest matched, no decryption) or `error`.
    pub outcome: String,
}

/// Every metric of the controller.
pub struct Metrics {
    registry: Registry,
    /// Every reconcile, including deletions.
    pub unseal_requests: Counter,
    /// Failed reconciles by reason and namespace.
    pub unseal_errors: Family<ErrorLabels, Counter>,
    /// −1 False, 0 Unknown, 1 True per SealedSecret.
    pub condition_info: Family<ConditionLabels, Gauge>,
    /// HTTP API requests.
    pub http_requests: Family<HttpLabels, Counter>,
    /// HTTP API request durations.
    pub http_duration: Family<HttpPathLabels, Histogram>,
    /// RSA private-key operations (one per key tried per item).
    pub rsa_operations: Counter,
    /// Reconcile durations by outcome.
    pub reconcile_duration: Family<OutcomeLabels, Histogram>,
}

fn default_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

fn fine_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let upstream = registry.sub_registry_with_prefix("sealed_secrets_controller");
        let build_info = Family::<Vec<(String, String)>, Gauge>::default();
        build_info
            .get_or_create(&vec![("revision".into(), env!("CARGO_PKG_VERSION").into())])
            .set(1);
        upstream.register("build_info", "Build information", build_info);
        let unseal_requests = Counter::default();
        upstream.register(
            "unseal_requests",
            "Total number of sealed secret unseal requests",
            unseal_requests.clone(),
        );
        let unseal_errors = Family::<ErrorLabels, Counter>::default();
        upstream.register(
            "unseal_errors",
            "Total number of sealed secret unseal errors by reason",
            unseal_errors.clone(),
        );
        let condition_info = Family::<ConditionLabels, Gauge>::default();
        upstream.register(
            "condition_info",
            "Current SealedSecret condition status. Values are -1 (false), 0 (unknown or absent), 1 (true)",
            condition_info.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        upstream.register(
            "http_requests",
            "Total number of HTTP requests by path, code and method",
            http_requests.clone(),
        );
        let http_duration =
            Family::<HttpPathLabels, Histogram>::new_with_constructor(default_buckets as fn() -> _);
        upstream.register(
            "http_request_duration_seconds",
            "HTTP request duration by path and method",
            http_duration.clone(),
        );
        let own = registry.sub_registry_with_prefix("gitseal_controller");
        let rsa_operations = Counter::default();
        own.register(
            "rsa_operations",
            "RSA private-key operations spent on unsealing",
            rsa_operations.clone(),
        );
        let reconcile_duration =
            Family::<OutcomeLabels, Histogram>::new_with_constructor(fine_buckets as fn() -> _);
        own.register(
            "reconcile_duration_seconds",
            "SealedSecret reconcile duration by outcome",
            reconcile_duration.clone(),
        );
        Self {
            registry,
            unseal_requests,
            unseal_errors,
            condition_info,
            http_requests,
            http_duration,
            rsa_operations,
            reconcile_duration,
        }
    }

    /// Counts an error of `reason` for `namespace`.
    pub fn error(&self, reason: &str, namespace: &str) {
        self.unseal_errors
            .get_or_create(&ErrorLabels {
                reason: reason.into(),
                namespace: namespace.into(),
            })
            .inc();
    }

    /// The `condition_info` labels of a SealedSecret.
    pub fn condition_labels(ss: &impl kube::ResourceExt) -> ConditionLabels {
        ConditionLabels {
            namespace: ss.namespace().unwrap_or_default(),
            name: ss.name_any(),
            condition: "Synced".into(),
            ss_app_kubernetes_io_instance: ss
                .labels()
                .get("app.kubernetes.io/instance")
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Drops the `condition_info` series of a deleted SealedSecret.
    pub fn forget_condition(&self, ss: &impl kube::ResourceExt) {
        self.condition_info.remove(&Self::condition_labels(ss));
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
