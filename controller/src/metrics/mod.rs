//! Prometheus metrics: upstream's names and labels (`sealed_secrets_controller_*`, spec
//! §3.7), so existing dashboards and alerts keep working, plus histograms and counters of
//! gitseal's own (`gitseal_controller_*`). No metric carries a secret value.
//!
//! One struct per reconciled kind ([`SealedSecretMetrics`]) and one for the HTTP API
//! ([`HttpMetrics`]), each with `register`, as in kube-rs/controller-rs; [`Metrics`] owns
//! the registry and all of them.

mod external_secret;
mod http;
mod sealed_secret;
mod sops_secret;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use external_secret::{
    CallLabels, ExternalSecretMetrics, ObjectLabels, StatusLabels, SyncMeasurer, remove_condition,
    set_condition,
};
pub use http::{HttpLabels, HttpMetrics, HttpPathLabels};
pub use sealed_secret::{
    ConditionLabels, ErrorLabels, OutcomeLabels, ReconcileMeasurer, SealedSecretMetrics,
};
pub use sops_secret::SopsSecretMetrics;

/// Every metric of the controller.
pub struct Metrics {
    registry: Registry,
    /// The SealedSecret reconciler's.
    pub sealed_secrets: SealedSecretMetrics,
    /// The ExternalSecret and store reconcilers'.
    pub external_secrets: ExternalSecretMetrics,
    /// The SopsSecret reconciler's.
    pub sops_secrets: SopsSecretMetrics,
    /// The HTTP API's.
    pub http: HttpMetrics,
    /// How long the last exposition was, to size the next one.
    last_size: std::sync::atomic::AtomicUsize,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let build_info = Family::<Vec<(String, String)>, Gauge>::default();
        build_info
            .get_or_create(&vec![("revision".into(), env!("CARGO_PKG_VERSION").into())])
            .set(1);
        registry.sub_registry_with_prefix(UPSTREAM_PREFIX).register(
            "build_info",
            "Build information",
            build_info,
        );
        let sealed_secrets = SealedSecretMetrics::default().register(&mut registry);
        let external_secrets = ExternalSecretMetrics::default().register(&mut registry);
        let sops_secrets = SopsSecretMetrics::default().register(&mut registry);
        let http = HttpMetrics::default().register(&mut registry);
        Self {
            registry,
            sealed_secrets,
            external_secrets,
            sops_secrets,
            http,
            last_size: Default::default(),
        }
    }

    /// The text exposition format.
    ///
    /// With ten thousand objects the text runs to megabytes: it is sized from the last
    /// one, as growing it by doubling would hold up to twice that at once.
    pub fn encode(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let mut out = String::with_capacity(self.last_size.load(Relaxed) / 8 * 9);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        self.last_size.store(out.len(), Relaxed);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Prefix of upstream's metric names.
pub const UPSTREAM_PREFIX: &str = "sealed_secrets_controller";
/// Prefix of gitseal's own metric names.
pub const OWN_PREFIX: &str = "gitseal_controller";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_names_are_kept() {
        let metrics = Metrics::new();
        metrics.sealed_secrets.unseal_requests.inc();
        metrics.sealed_secrets.error("unseal", "prod");
        metrics
            .http
            .requests
            .get_or_create(&HttpLabels {
                path: "/v1/cert.pem".into(),
                code: "200".into(),
                method: "GET".into(),
            })
            .inc();
        metrics
            .sealed_secrets
            .condition_info
            .get_or_create(&ConditionLabels {
                namespace: "prod".into(),
                name: "db".into(),
                condition: "Synced",
                ss_app_kubernetes_io_instance: String::new(),
            })
            .set(1);
        metrics
            .http
            .duration
            .get_or_create(&HttpPathLabels {
                path: "/v1/cert.pem".into(),
                method: "GET".into(),
            })
            .observe(0.01);
        {
            let mut timer = metrics.sealed_secrets.measure();
            timer.outcome("unchanged");
        }
        drop(metrics.external_secrets.measure("db", "prod"));
        metrics
            .external_secrets
            .provider_call("HashiCorp/Vault", "Login", true);
        set_condition(
            &metrics.external_secrets.status_condition,
            "db",
            "prod",
            true,
        );
        let text = metrics.encode();
        for line in [
            "sealed_secrets_controller_build_info{revision=",
            "sealed_secrets_controller_unseal_requests_total 1",
            "sealed_secrets_controller_unseal_errors_total{reason=\"unseal\",namespace=\"prod\"} 1",
            "sealed_secrets_controller_condition_info{namespace=\"prod\",name=\"db\",condition=\"Synced\",ss_app_kubernetes_io_instance=\"\"} 1",
            "sealed_secrets_controller_http_requests_total{path=\"/v1/cert.pem\",code=\"200\",method=\"GET\"} 1",
            "sealed_secrets_controller_http_request_duration_seconds_count{path=\"/v1/cert.pem\",method=\"GET\"} 1",
            "gitseal_controller_rsa_operations_total 0",
            "gitseal_controller_reconcile_duration_seconds_count{outcome=\"unchanged\"} 1",
            // ESO's names and labels.
            "externalsecret_sync_calls_total{name=\"db\",namespace=\"prod\"} 1",
            "externalsecret_sync_calls_error{name=\"db\",namespace=\"prod\"} 1",
            "externalsecret_status_condition{name=\"db\",namespace=\"prod\",condition=\"Ready\",status=\"True\"} 1",
            "externalsecret_status_condition{name=\"db\",namespace=\"prod\",condition=\"Ready\",status=\"False\"} 0",
            "externalsecret_reconcile_duration{name=\"db\",namespace=\"prod\"} ",
            "externalsecret_provider_api_calls_count{provider=\"HashiCorp/Vault\",call=\"Login\",status=\"success\"} 1",
            "gitseal_controller_externalsecret_sync_duration_seconds_count{outcome=\"error\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
