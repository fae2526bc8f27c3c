//! The HTTP API (spec §3.6), served by every replica, and the metrics endpoint.
//!
//! `/healthz`, `/readyz`, `/v1/cert.pem`, `/v1/verify` (200/409, rate-limited with 429),
//! `/v1/rotate`; `/metrics` on its own listener.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use gitseal_api::SealedSecret;
use gitseal_crypto::sealed::seal;
use kube::ResourceExt;

use crate::context::Context;
use crate::metrics::{HttpLabels, HttpPathLabels, Metrics};
use crate::unseal::label_of;

/// State of the HTTP handlers.
#[derive(Clone)]
pub struct Api {
    ctx: Arc<Context>,
    limiter: Arc<RateLimiter>,
}

/// The router of the API port.
pub fn api_router(ctx: Arc<Context>) -> Router {
    let limiter = Arc::new(RateLimiter::new(
        ctx.config.rate_limit,
        ctx.config.rate_limit_burst,
    ));
    let metrics = ctx.metrics.clone();
    Router::new()
        .route(
            "/healthz",
            any(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "ok\n",
                )
            }),
        )
        .route("/readyz", any(readyz))
        .route("/v1/cert.pem", any(cert))
        .route("/v1/verify", post(verify))
        .route("/v1/rotate", post(rotate))
        .layer(axum::middleware::from_fn_with_state(metrics, count))
        .with_state(Api { ctx, limiter })
}

/// The router of the metrics port.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        any(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    )
}

async fn count(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    // Only the API's own paths: arbitrary paths would make unbounded label sets.
    if matches!(path.as_str(), "/v1/cert.pem" | "/v1/verify" | "/v1/rotate") {
        metrics
            .http_requests
            .get_or_create(&HttpLabels {
                path: path.clone(),
                code: response.status().as_u16().to_string(),
                method: method.clone(),
            })
            .inc();
        metrics
            .http_duration
            .get_or_create(&HttpPathLabels { path, method })
            .observe(started.elapsed().as_secs_f64());
    }
    response
}

async fn readyz(State(api): State<Api>) -> Response {
    if api.ctx.keyring.snapshot().latest().is_some() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no sealing key yet\n").into_response()
    }
}

async fn cert(State(api): State<Api>) -> Response {
    match api.ctx.keyring.snapshot().latest() {
        Some(key) => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            key.cert_pem.clone(),
        )
            .into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot get certificate\n",
        )
            .into_response(),
    }
}

/// Reads one SealedSecret from a JSON or YAML body.
fn parse_body(body: &[u8]) -> Result<SealedSecret, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let value: serde_json::Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        let mut documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
        documents.retain(|d| !d.is_null());
        if documents.len() != 1 {
            return Err("expected exactly one SealedSecret document".into());
        }
        documents.remove(0)
    };
    let api_version = value.get("apiVersion").and_then(|v| v.as_str());
    let kind = value.get("kind").and_then(|v| v.as_str());
    if api_version != Some(gitseal_api::SEALED_SECRET_API_VERSION)
        || kind != Some(gitseal_api::SEALED_SECRET_KIND)
    {
        return Err("the body is not a bitnami.com/v1alpha1 SealedSecret".into());
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

async fn verify(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let client = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !api.limiter.allow(&format!("/v1/verify|{client}")) {
        return (StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded\n").into_response();
    }
    let ss = match parse_body(&body) {
        Ok(ss) => ss,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    let keys = api.ctx.keyring.snapshot();
    match api.ctx.unseal(&ss, keys, None).await {
        Ok(_) => (StatusCode::OK, "").into_response(),
        Err(e) => (StatusCode::CONFLICT, format!("{e}\n")).into_response(),
    }
}

async fn rotate(State(api): State<Api>, body: Bytes) -> Response {
    let mut ss = match parse_body(&body) {
        Ok(ss) => ss,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    // Security fix of upstream v0.36.0: the template metadata may not differ from the
    // object's own (it must not widen the scope); the object's metadata wins.
    let name = ss.name_any();
    let template = ss.spec.template.get_or_insert_default();
    let top = kube::api::ObjectMeta {
        name: ss.metadata.name.clone(),
        namespace: ss.metadata.namespace.clone(),
        labels: ss.metadata.labels.clone(),
        annotations: ss.metadata.annotations.clone(),
        ..Default::default()
    };
    if template.metadata.as_ref() != Some(&top) {
        if template.metadata.is_some() {
            tracing::warn!(
                name,
                "/v1/rotate: template metadata differs from the object's; using the object's"
            );
        }
        template.metadata = Some(top);
    }
    let keys = api.ctx.keyring.snapshot();
    let Some(latest) = keys.latest().cloned() else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot get certificate\n",
        )
            .into_response();
    };
    let unsealed = match api.ctx.unseal(&ss, keys, None).await {
        Ok(u) => u,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    let label = label_of(&ss);
    let public = latest.private.public_key();
    let mut encrypted = std::collections::BTreeMap::new();
    for (item, value) in &unsealed.data {
        match seal(&public, &label, value) {
            Ok(sealed) => {
                encrypted.insert(item.clone(), sealed);
            }
            Err(e) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
            }
        }
    }
    ss.spec.encrypted_data = encrypted;
    ss.spec.data = None;
    if let Some(template) = ss.spec.template.as_mut() {
        template.data = None;
    }
    ss.status = None;
    let mut json = serde_json::to_value(&ss).unwrap_or_default();
    if let Some(object) = json.as_object_mut() {
        object.remove("apiVersion");
        object.remove("kind");
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
        .into_response()
}

/// Per-client token buckets (`--rate-limit` per second, `--rate-limit-burst`), as upstream's
/// GCRA limiter keyed by path and `X-Forwarded-For`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` requests per second, `burst` at once.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Whether a request from `key` may go ahead now.
    pub fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("limiter lock");
        if buckets.len() > 10_000 {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_allows_the_burst_then_refuses() {
        let limiter = RateLimiter::new(2, 2);
        assert!(limiter.allow("a"));
        assert!(limiter.allow("a"));
        assert!(!limiter.allow("a"));
        assert!(limiter.allow("b"), "buckets are per client");
    }

    #[test]
    fn bodies_must_be_one_sealed_secret() {
        let json = r#"{"apiVersion":"bitnami.com/v1alpha1","kind":"SealedSecret","metadata":{"name":"a"},"spec":{"encryptedData":{}}}"#;
        assert!(parse_body(json.as_bytes()).is_ok());
        let yaml = "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: a}\nspec: {encryptedData: {}}\n";
        assert!(parse_body(yaml.as_bytes()).is_ok());
        assert!(parse_body(format!("{yaml}---\n{yaml}").as_bytes()).is_err());
        assert!(parse_body(b"apiVersion: v1\nkind: Secret\n").is_err());
    }
}
