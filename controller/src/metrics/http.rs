//! The HTTP API's metrics (upstream's names).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

/// Metrics of the HTTP API.
#[derive(Clone)]
pub struct HttpMetrics {
    /// HTTP API requests.
    pub requests: Family<HttpLabels, Counter>,
    /// HTTP API request durations.
    pub duration: Family<HttpPathLabels, Histogram>,
}

fn default_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(default_buckets as fn() -> _),
        }
    }
}

impl HttpMetrics {
    /// Registers the metrics under upstream's prefix.
    pub fn register(self, registry: &mut Registry) -> Self {
        let upstream = registry.sub_registry_with_prefix(super::UPSTREAM_PREFIX);
        upstream.register(
            "http_requests",
            "Total number of HTTP requests by path, code and method",
            self.requests.clone(),
        );
        upstream.register(
            "http_request_duration_seconds",
            "HTTP request duration by path and method",
            self.duration.clone(),
        );
        self
    }
}
