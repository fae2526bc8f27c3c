//! The SealedSecret reconciler's metrics: upstream's (`sealed_secrets_controller_*`) and
//! gitseal's RSA counter and reconcile histogram (`gitseal_controller_*`).

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `unseal_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `fetch`, `unseal`, `update`, `unmanaged` or `status` ([`crate::Error::kind`]).
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
    pub condition: &'static str,
    /// Its `app.kubernetes.io/instance` label.
    pub ss_app_kubernetes_io_instance: String,
}

/// Labels of gitseal's reconcile histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `written`, `unchanged` (digest matched, no decryption) or `error`.
    pub outcome: String,
}

/// Metrics of the SealedSecret reconciler.
#[derive(Clone)]
pub struct SealedSecretMetrics {
    /// Every reconcile, including deletions.
    pub unseal_requests: Counter,
    /// Failed reconciles by reason and namespace.
    pub unseal_errors: Family<ErrorLabels, Counter>,
    /// −1 False, 0 Unknown, 1 True per SealedSecret.
    pub condition_info: Family<ConditionLabels, Gauge>,
    /// RSA private-key operations (one per key tried per item).
    pub rsa_operations: Counter,
    /// Reconcile durations by outcome.
    pub reconcile_duration: Family<OutcomeLabels, Histogram>,
}

fn fine_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for SealedSecretMetrics {
    fn default() -> Self {
        Self {
            unseal_requests: Counter::default(),
            unseal_errors: Family::default(),
            condition_info: Family::default(),
            rsa_operations: Counter::default(),
            reconcile_duration: Family::new_with_constructor(fine_buckets as fn() -> _),
        }
    }
}

impl SealedSecretMetrics {
    /// Registers the metrics under upstream's and gitseal's prefixes.
    pub fn register(self, registry: &mut Registry) -> Self {
        let upstream = registry.sub_registry_with_prefix(super::UPSTREAM_PREFIX);
        upstream.register(
            "unseal_requests",
            "Total number of sealed secret unseal requests",
            self.unseal_requests.clone(),
        );
        upstream.register(
            "unseal_errors",
            "Total number of sealed secret unseal errors by reason",
            self.unseal_errors.clone(),
        );
        upstream.register(
            "condition_info",
            "Current SealedSecret condition status. Values are -1 (false), 0 (unknown or absent), 1 (true)",
            self.condition_info.clone(),
        );
        let own = registry.sub_registry_with_prefix(super::OWN_PREFIX);
        own.register(
            "rsa_operations",
            "RSA private-key operations spent on unsealing",
            self.rsa_operations.clone(),
        );
        own.register(
            "reconcile_duration_seconds",
            "SealedSecret reconcile duration by outcome",
            self.reconcile_duration.clone(),
        );
        self
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
            condition: "Synced",
            ss_app_kubernetes_io_instance: ss
                .labels()
                .get("app.kubernetes.io/instance")
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Sets the `condition_info` series of `ss`.
    pub fn set_condition(&self, ss: &impl kube::ResourceExt, synced: bool) {
        self.condition_info
            .get_or_create(&Self::condition_labels(ss))
            .set(if synced { 1 } else { -1 });
    }

    /// Drops the `condition_info` series of a deleted SealedSecret.
    pub fn forget_condition(&self, ss: &impl kube::ResourceExt) {
        self.condition_info.remove(&Self::condition_labels(ss));
    }

    /// Starts timing a reconcile; the time is recorded when the measurer is dropped, under
    /// the outcome last given to it (`error` if none was).
    pub fn measure(&self) -> ReconcileMeasurer {
        ReconcileMeasurer {
            start: Instant::now(),
            outcome: "error",
            metric: self.reconcile_duration.clone(),
        }
    }
}

/// Records a reconcile's duration when dropped (kube-rs/controller-rs's drop timer).
pub struct ReconcileMeasurer {
    start: Instant,
    outcome: &'static str,
    metric: Family<OutcomeLabels, Histogram>,
}

impl ReconcileMeasurer {
    /// Sets the outcome the duration is recorded under.
    pub fn outcome(&mut self, outcome: &'static str) {
        self.outcome = outcome;
    }
}

impl Drop for ReconcileMeasurer {
    fn drop(&mut self) {
        self.metric
            .get_or_create(&OutcomeLabels {
                outcome: self.outcome.into(),
            })
            .observe(self.start.elapsed().as_secs_f64());
    }
}
