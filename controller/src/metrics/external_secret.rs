//! The ExternalSecret reconciler's metrics under ESO's names and labels (spec §3.6), so
//! dashboards built for ESO keep working, plus a histogram of gitseal's own. No metric
//! carries a secret value or a remote key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
    /// ESO's per-ExternalSecret series.
    objects: Arc<PerObject>,
    /// `externalsecret_provider_api_calls_count` (a gauge that only grows: ESO's name has
    /// no `_total`, which this crate adds to every counter).
    pub provider_calls: Family<CallLabels, Gauge>,
    /// `secretstore_status_condition`.
    pub secret_store_condition: Family<StatusLabels, Gauge>,
    /// `clustersecretstore_status_condition`.
    pub cluster_secret_store_condition: Family<StatusLabels, Gauge>,
    /// `gitseal_controller_externalsecret_sync_duration_seconds`: a histogram, by outcome.
    pub sync_duration: Family<SyncOutcome, Histogram>,
}

/// ESO's per-ExternalSecret series, one small record per object written out at each
/// scrape: `externalsecret_sync_calls_total` (every reconcile),
/// `externalsecret_sync_calls_error` (every failed one, a gauge that only grows, after the
/// first), `externalsecret_status_condition` (1 for the current Ready status, 0 for the
/// other) and `externalsecret_reconcile_duration` (the last one, in nanoseconds). A
/// labelled series per family would hold the name and namespace five times over —
/// megabytes for ten thousand ExternalSecrets. A deleted ExternalSecret's series all go
/// with it.
#[derive(Debug, Default)]
struct PerObject(Mutex<HashMap<Box<str>, Series>>);

/// The series of one ExternalSecret.
#[derive(Debug, Default)]
struct Series {
    calls: u64,
    errors: u64,
    ready: Option<bool>,
    duration_ns: i64,
}

impl PerObject {
    /// Updates the record of `name` in `namespace` (created if new).
    fn update(&self, name: &str, namespace: &str, change: impl FnOnce(&mut Series)) {
        let key = format!("{namespace}/{name}");
        let mut objects = self.0.lock().expect("metrics lock");
        match objects.get_mut(key.as_str()) {
            Some(series) => change(series),
            None => change(objects.entry(key.into_boxed_str()).or_default()),
        }
    }
}

/// The name and namespace labels of a record's key, `namespace/name` (neither can hold a
/// slash).
fn labels(key: &str) -> [(&'static str, &str); 2] {
    let (namespace, name) = key.split_once('/').unwrap_or_default();
    [("name", name), ("namespace", namespace)]
}

impl Collector for PerObject {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let objects = self.0.lock().expect("metrics lock");
        let mut family = encoder.encode_descriptor(
            "externalsecret_sync_calls",
            "Total number of the External Secret sync calls",
            None,
            MetricType::Counter,
        )?;
        for (key, series) in objects.iter() {
            family
                .encode_family(&labels(key))?
                .encode_counter::<NoLabelSet, _, u64>(&series.calls, None)?;
        }
        let mut family = encoder.encode_descriptor(
            "externalsecret_sync_calls_error",
            "Total number of the External Secret sync errors",
            None,
            MetricType::Gauge,
        )?;
        for (key, series) in objects.iter().filter(|(_, s)| s.errors > 0) {
            family
                .encode_family(&labels(key))?
                .encode_gauge(&series.errors)?;
        }
        let mut family = encoder.encode_descriptor(
            "externalsecret_status_condition",
            "The status condition of a specific External Secret",
            None,
            MetricType::Gauge,
        )?;
        for (key, ready) in objects.iter().filter_map(|(k, s)| Some((k, s.ready?))) {
            let [name, namespace] = labels(key);
            for (status, value) in [("True", ready), ("False", !ready)] {
                let labels = [name, namespace, ("condition", "Ready"), ("status", status)];
                family
                    .encode_family(&labels)?
                    .encode_gauge(&i64::from(value))?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "externalsecret_reconcile_duration",
            "The duration time to reconcile the External Secret",
            None,
            MetricType::Gauge,
        )?;
        for (key, series) in objects.iter() {
            family
                .encode_family(&labels(key))?
                .encode_gauge(&series.duration_ns)?;
        }
        Ok(())
    }
}

fn buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

impl Default for ExternalSecretMetrics {
    fn default() -> Self {
        Self {
            objects: Default::default(),
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
        registry.register_collector(Box::new(self.objects.clone()));
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
        self.objects.update(name, namespace, |s| s.calls += 1);
        SyncMeasurer {
            start: Instant::now(),
            metrics: self.clone(),
            name: name.into(),
            namespace: namespace.into(),
            outcome: "error",
        }
    }

    /// Sets the Ready condition of `name` in `namespace`.
    pub fn set_ready(&self, name: &str, namespace: &str, ready: bool) {
        self.objects
            .update(name, namespace, |s| s.ready = Some(ready));
    }

    /// Drops every series of the deleted `name` in `namespace`.
    pub fn forget(&self, name: &str, namespace: &str) {
        let key = format!("{namespace}/{name}");
        self.objects
            .0
            .lock()
            .expect("metrics lock")
            .remove(key.as_str());
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
    name: String,
    namespace: String,
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
        let failed = self.outcome == "error";
        self.metrics
            .objects
            .update(&self.name, &self.namespace, |s| {
                s.duration_ns = i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX);
                s.errors += u64::from(failed);
            });
        self.metrics
            .sync_duration
            .get_or_create(&SyncOutcome {
                outcome: self.outcome.into(),
            })
            .observe(elapsed.as_secs_f64());
    }
}
