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

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use external_secret::{
    CallLabels, ExternalSecretMetrics, StatusLabels, SyncMeasurer, remove_condition, set_condition,
};
pub use http::{HttpLabels, HttpMetrics, HttpPathLabels};
pub use sealed_secret::{
    ConditionLabels, ErrorLabels, OutcomeLabels, ReconcileMeasurer, SealedSecretMetrics,
};
pub use sops_secret::SopsSecretMetrics;

use crate::keyring::Keyring;

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

    /// Exposes the sealing keys' age for a "renewal overdue" alert:
    /// `gitseal_controller_latest_key_timestamp_seconds` (when the newest key was made, Unix
    /// seconds; absent while there is none) and `gitseal_controller_key_renewal_period_seconds`
    /// (`--key-renew-period`; 0: renewal off), read from `keyring` at each scrape.
    pub fn expose_keys(&mut self, keyring: Arc<Keyring>, period: Duration) {
        self.registry
            .register_collector(Box::new(KeyTimes { keyring, period }));
    }

    /// The text exposition format.
    ///
    /// With ten thousand objects the text runs to megabytes: it is sized from the last
    /// one, as growing it by doubling would hold up to twice that at once.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.last_size.load(Relaxed) / 8 * 9);
        self.encode_into(&mut out);
        out
    }

    /// The text exposition gzip-compressed, as Prometheus asks for it: compressed as it
    /// is written, the megabytes of text never exist at once (the compressed body is
    /// about a twentieth of them).
    pub fn encode_gzip(&self) -> Vec<u8> {
        let compressed = Vec::with_capacity(self.last_size.load(Relaxed) / 16);
        let mut out = Gzip(std::io::BufWriter::with_capacity(
            64 * 1024,
            flate2::write::GzEncoder::new(compressed, flate2::Compression::fast()),
        ));
        self.encode_into(&mut out);
        out.0
            .into_inner()
            .ok()
            .and_then(|gzip| gzip.finish().ok())
            .expect("writing to a Vec cannot fail")
    }

    fn encode_into(&self, out: &mut impl std::fmt::Write) {
        let mut counted = Counted(out, 0);
        prometheus_client::encoding::text::encode(&mut counted, &self.registry)
            .expect("writing to memory cannot fail");
        self.last_size.store(counted.1, Relaxed);
    }
}

/// The collector of [`Metrics::expose_keys`].
struct KeyTimes {
    keyring: Arc<Keyring>,
    period: Duration,
}

impl std::fmt::Debug for KeyTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyTimes")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl Collector for KeyTimes {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        if let Some(latest) = self.keyring.snapshot().latest() {
            encoder
                .encode_descriptor(
                    &format!("{OWN_PREFIX}_latest_key_timestamp_seconds"),
                    "When the newest sealing key was made (certificate NotBefore or Secret creation, as --key-order-priority), Unix seconds",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&latest.order_time)?;
        }
        encoder
            .encode_descriptor(
                &format!("{OWN_PREFIX}_key_renewal_period_seconds"),
                "How often a new sealing key is made (0: never)",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&i64::try_from(self.period.as_secs()).unwrap_or(i64::MAX))
    }
}

/// Counts what is written through it.
struct Counted<'a, W>(&'a mut W, usize);

impl<W: std::fmt::Write> std::fmt::Write for Counted<'_, W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.1 += s.len();
        self.0.write_str(s)
    }
}

/// Text written into a gzip stream.
struct Gzip(std::io::BufWriter<flate2::write::GzEncoder<Vec<u8>>>);

impl std::fmt::Write for Gzip {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        use std::io::Write;
        self.0.write_all(s.as_bytes()).map_err(|_| std::fmt::Error)
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
        let mut metrics = Metrics::new();
        metrics.expose_keys(
            Arc::new(Keyring::new(
                "kube-system",
                "sealed-secrets-key",
                crate::keyring::KeyOrder::CertNotBefore,
            )),
            Duration::from_secs(3600),
        );
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
        metrics.external_secrets.set_ready("db", "prod", true);
        let text = metrics.encode();
        for line in [
            "sealed_secrets_controller_build_info{revision=",
            "sealed_secrets_controller_unseal_requests_total 1",
            "sealed_secrets_controller_unseal_errors_total{reason=\"unseal\",namespace=\"prod\"} 1",
            "sealed_secrets_controller_condition_info{namespace=\"prod\",name=\"db\",condition=\"Synced\",ss_app_kubernetes_io_instance=\"\"} 1",
            "sealed_secrets_controller_http_requests_total{path=\"/v1/cert.pem\",code=\"200\",method=\"GET\"} 1",
            "sealed_secrets_controller_http_request_duration_seconds_count{path=\"/v1/cert.pem\",method=\"GET\"} 1",
            "gitseal_controller_rsa_operations_total 0",
            // No key yet: its time is absent, the period is there.
            "gitseal_controller_key_renewal_period_seconds 3600",
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
        let mut unzipped = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&metrics.encode_gzip()[..]),
            &mut unzipped,
        )
        .unwrap();
        assert_eq!(unzipped, text, "the same exposition, compressed");
        metrics.external_secrets.forget("db", "prod");
        let text = metrics.encode();
        assert!(text.contains("# TYPE externalsecret_sync_calls counter"));
        assert!(
            !text.contains("name=\"db\",namespace=\"prod\""),
            "a deleted ExternalSecret's series go with it:\n{text}"
        );
    }
}
