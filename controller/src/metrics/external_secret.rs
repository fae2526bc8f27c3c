//! The ExternalSecret reconciler's metrics under ESO's names and labels (spec §3.6), so
//! dashboards built for ESO keep working, plus a histogram of gitseal's own. No metric
//! carries a secret value or a remote key.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the per-ExternalSecret series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// The ExternalSecret's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
}

/// Labels of `externalsecret_status_condition` (and the stores' equivalents).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// The object's name.
    pub name: String,
    /// Its namespace (empty for cluster-scoped stores).
    pub namespace: String,
    /// The condition type (`Ready`).
    pub condition: &'static str,
    /// `True` or `False`.
    pub status: &'static str,
}

/// Labels of `externalsecret_provider_api_calls_count`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `HashiCorp/Vault`, `AWS/SecretsManager`.
    pub provider: String,
    /// `Login`, `ReadSecretData`, `GetSecretValue`…
    pub call: String,
    /// `success` or `error`.
    pub status: String,
}

/// Labels of gitseal's sync histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncOutcome {
    /// `synced`, `skipped` (nothing due) or `error`.
    pub outcome: String,
}

/// Metrics of the ExternalSecret and store reconcilers.
#[derive(Clone)]
pub struct ExternalSecretMetrics {
    /// `externalsecret_sync_calls_total`: every reconcile.
    pub sync_calls: Family<ObjectLabels, Counter>,
    /// `externalsecret_sync_calls_error`: every failed one. A gauge that only grows:
    /// ESO's name has no `_total`, which this crate adds to every counter.
    pub sync_errors: Family<ObjectLabels, Gauge>,
    /// `externalsecret_status_condition`: 1 for the current status, 0 for the other.
    pub status_condition: Family<StatusLabels, Gauge>,
    /// `externalsecret_reconcile_duration`: ESO's gauge, in nanoseconds.
    pub reconcile_duration: Family<ObjectLabels, Gauge>,
    /// `externalsecret_provider_api_calls_count` (a gauge that only grows, as above).
    pub provider_calls: Family<CallLabels, Gauge>,
    /// `secretstore_status_condition`.
    pub secret_store_condition: Family<StatusLabels, Gauge>,
    /// `clustersecretstore_status_condition`.
    pub cluster_secret_store_condition: Family<StatusLabels, Gauge>,
    /// `gitseal_controller_externalsecret_sync_duration_seconds`: a histogram, by outcome.
    pub sync_duration: Family<SyncOutcome, Histogram>,
}

fn buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

impl Default for ExternalSecretMetrics {
    fn default() -> Self {
        Self {
            sync_calls: Family::default(),
            sync_errors: Family::default(),
            status_condition: Family::default(),
            reconcile_duration: Family::default(),
            provider_calls: Family::default(),
            secret_store_condition: Family::default(),
            cluster_secret_store_condition: Family::default(),
            sync_duration: Family::new_with_constructor(buckets as fn() -> _),
        }
    }
}

/// The Ready gauges of `name` in `namespace`: 1 for `status`, 0 for the other value.
pub fn set_condition(
    family: &Family<StatusLabels, Gauge>,
    name: &str,
    namespace: &str,
    ready: bool,
) {
    for (status, value) in [("True", ready), ("False", !ready)] {
        family
            .get_or_create(&StatusLabels {
                name: name.into(),
                namespace: namespace.into(),
                condition: "Ready",
                status,
            })
            .set(i64::from(value));
    }
}

/// Removes the Ready gauges of a deleted object.
pub fn remove_condition(family: &Family<StatusLabels, Gauge>, name: &str, namespace: &str) {
    for status in ["True", "False"] {
        family.remove(&StatusLabels {
            name: name.into(),
            namespace: namespace.into(),
            condition: "Ready",
            status,
        });
    }
}

impl ExternalSecretMetrics {
    /// Registers the metrics under ESO's names (no prefix) and gitseal's prefix.
    pub fn register(self, registry: &mut Registry) -> Self {
        registry.register(
            "externalsecret_sync_calls",
            "Total number of the External Secret sync calls",
            self.sync_calls.clone(),
        );
        registry.register(
            "externalsecret_status_condition",
            "The status condition of a specific External Secret",
            self.status_condition.clone(),
        );
        registry.register(
            "externalsecret_reconcile_duration",
            "The duration time to reconcile the External Secret",
            self.reconcile_duration.clone(),
        );
        registry.register(
            "secretstore_status_condition",
            "The status condition of a specific SecretStore",
            self.secret_store_condition.clone(),
        );
        registry.register(
            "clustersecretstore_status_condition",
            "The status condition of a specific ClusterSecretStore",
            self.cluster_secret_store_condition.clone(),
        );
        registry.register(
            "externalsecret_sync_calls_error",
            "Total number of the External Secret sync errors",
            self.sync_errors.clone(),
        );
        registry.register(
            "externalsecret_provider_api_calls_count",
            "Number of API calls towards the secret provider",
            self.provider_calls.clone(),
        );
        registry
            .sub_registry_with_prefix(super::OWN_PREFIX)
            .register(
                "externalsecret_sync_duration_seconds",
                "How long ExternalSecret syncs take, by outcome",
                self.sync_duration.clone(),
            );
        self
    }

    /// Starts timing a reconcile of `name` in `namespace`; counts it.
    pub fn measure(&self, name: &str, namespace: &str) -> SyncMeasurer {
        let labels = ObjectLabels {
            name: name.into(),
            namespace: namespace.into(),
        };
        self.sync_calls.get_or_create(&labels).inc();
        SyncMeasurer {
            start: Instant::now(),
            metrics: self.clone(),
            labels,
            outcome: "error",
        }
    }

    /// Counts a provider call.
    pub fn provider_call(&self, provider: &str, call: &str, ok: bool) {
        self.provider_calls
            .get_or_create(&CallLabels {
                provider: provider.into(),
                call: call.into(),
                status: if ok { "success" } else { "error" }.into(),
            })
            .inc();
    }
}

/// Records a reconcile's duration when dropped (outcome `error` unless set).
pub struct SyncMeasurer {
    start: Instant,
    metrics: ExternalSecretMetrics,
    labels: ObjectLabels,
    outcome: &'static str,
}

impl SyncMeasurer {
    /// Sets the outcome: `synced` or `skipped`.
    pub fn outcome(&mut self, outcome: &'static str) {
        self.outcome = outcome;
    }
}

impl Drop for SyncMeasurer {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        self.metrics
            .reconcile_duration
            .get_or_create(&self.labels)
            .set(i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX));
        if self.outcome == "error" {
            self.metrics.sync_errors.get_or_create(&self.labels).inc();
        }
        self.metrics
            .sync_duration
            .get_or_create(&SyncOutcome {
                outcome: self.outcome.into(),
            })
            .observe(elapsed.as_secs_f64());
    }
}
