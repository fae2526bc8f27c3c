//! The HTTP API (spec §3.6), served by every replica, and the metrics endpoint.
//!
//! `/healthz`, `/readyz`, `/v1/cert.pem`, `/v1/age-recipient` (the age key SopsSecrets
//! are encrypted to), `/v1/verify` (200/409) and `/v1/rotate`, both
//! rate-limited per client with 429; `/metrics` on its own listener. [`serve`] serves each
//! listener under [`HttpLimits`], so that idle or slow clients, however many, cannot take
//! the file descriptors or keep `/healthz` and `/metrics` from answering.
//! `POST /v1/refresh` (authenticated, off unless configured) is in `server/refresh.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use gitseal_api::SealedSecret;
use gitseal_crypto::sealed::seal;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use kube::ResourceExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::context::Context;
use crate::metrics::{HttpLabels, HttpPathLabels, Metrics};

mod refresh;

/// How long a client has to send a request's headers: 10 s. The clock also runs while a
/// kept-alive connection waits for its next request, so this is the idle timeout too.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading a request's body and answering it may take: 30 s (then 408).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How many connections one listener serves at once: 1,024. Connections over the limit
/// get a 503 and are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// The largest request body: 2 MiB (then 413).
pub const MAX_BODY: usize = 2 << 20;
/// How long a connection may last: 5 minutes. Then it ends after its current request (or
/// [`REQUEST_TIMEOUT`] later), so that a client that stops reading its answer cannot keep
/// a connection for ever.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// How long to wait after a failed `accept` (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The answer to a connection over [`HttpLimits::max_connections`].
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
                      content-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n";

/// The limits under which [`serve`] serves a listener; the defaults are the constants of
/// this module. Tests shorten them.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// [`HEADER_READ_TIMEOUT`]: for the headers of a request, and for the next request on
    /// a kept-alive connection.
    pub header_read_timeout: Duration,
    /// [`REQUEST_TIMEOUT`]: for reading a request's body and answering it.
    pub request_timeout: Duration,
    /// [`MAX_CONNECTIONS`]: connections served at once.
    pub max_connections: usize,
    /// [`MAX_BODY`]: the largest request body in bytes.
    pub max_body: usize,
    /// [`MAX_CONNECTION_AGE`]: how long a connection may last.
    pub max_connection_age: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_body: MAX_BODY,
            max_connection_age: MAX_CONNECTION_AGE,
        }
    }
}

/// Serves `router` on `listener` under `limits` until `stop` turns true, then waits for
/// the open connections to finish their requests (at most `limits.request_timeout`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let router = router
        .layer(axum::middleware::from_fn_with_state(limits.clone(), guard))
        .layer(DefaultBodyLimit::max(limits.max_body));
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("HTTP server: accepting a connection: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            // Over the limit: a 503 if the socket takes it now, and the connection closes.
            tracing::debug!("HTTP server: connection limit reached, a connection is refused");
            let _ = stream.try_write(BUSY);
            continue;
        };
        tokio::spawn(connection(
            stream,
            router.clone(),
            limits.clone(),
            stop.clone(),
            permit,
        ));
    }
    drop(listener);
    // Every permit back means every connection has ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.request_timeout, connections.acquire_many(all)).await;
}

/// Serves one connection: headers within `header_read_timeout` (also between requests),
/// a graceful end on `stop` or after `max_connection_age`, and a hard one
/// `request_timeout` later. The permit counts the connection until it ends.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("HTTP connection: {e}");
            }
            return;
        }
        () = stopped(&mut stop) => {}
        () = tokio::time::sleep(limits.max_connection_age) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(limits.request_timeout, conn).await;
}

/// Resolves when `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Answers 413 at once to a body announced larger than `max_body` (a body that turns out
/// larger gets it when read), and 408 when reading the body and answering take longer
/// than `request_timeout`.
async fn guard(State(limits): State<HttpLimits>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limits.max_body as u64) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    }
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request timeout\n").into_response(),
    }
}

/// State of the HTTP handlers.
#[derive(Clone)]
pub struct Api {
    ctx: Arc<Context>,
    limiter: Arc<RateLimiter>,
    refresher: Arc<refresh::Refresher>,
}

/// The router of the API port.
pub fn api_router(ctx: Arc<Context>) -> Router {
    let limiter = Arc::new(RateLimiter::new(
        ctx.config.http.rate_limit,
        ctx.config.http.rate_limit_burst,
    ));
    let metrics = ctx.metrics.clone();
    let refresher = Arc::new(refresh::Refresher::new(&ctx.config.refresh));
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
        .route("/v1/age-recipient", any(age_recipient))
        .route("/v1/verify", post(verify))
        .route("/v1/rotate", post(rotate))
        .route(refresh::PATH, post(refresh::refresh))
        .layer(axum::middleware::from_fn_with_state(metrics, count))
        .with_state(Api {
            ctx,
            limiter,
            refresher,
        })
}

/// The router of the metrics port. Scrapers that accept gzip (Prometheus does) get the
/// exposition compressed.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        any(move |headers: HeaderMap| {
            let metrics = metrics.clone();
            async move {
                let text = (
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                );
                if accepts_gzip(&headers) {
                    (
                        [text, (header::CONTENT_ENCODING, "gzip")],
                        metrics.encode_gzip(),
                    )
                        .into_response()
                } else {
                    ([text], metrics.encode()).into_response()
                }
            }
        }),
    )
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*`, without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

async fn count(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    // Only the API's own paths: arbitrary paths would make unbounded label sets.
    if matches!(
        path.as_str(),
        "/v1/cert.pem" | "/v1/age-recipient" | "/v1/verify" | "/v1/rotate" | refresh::PATH
    ) {
        metrics
            .http
            .requests
            .get_or_create(&HttpLabels {
                path: path.clone(),
                code: response.status().as_u16().to_string(),
                method: method.clone(),
            })
            .inc();
        metrics
            .http
            .duration
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

/// The controller's newest age recipient, a line of text: what `gitseal sops encrypt
/// --cluster` encrypts SopsSecrets and SOPS files to.
async fn age_recipient(State(api): State<Api>) -> Response {
    match &api.ctx.sops_keys.snapshot().newest {
        Some((recipient, _)) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{recipient}\n"),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no age key yet (SopsSecrets disabled, or the leader has not made one)\n",
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

/// A 429 when the client (by `X-Forwarded-For`, as upstream) has used up its requests
/// to `path`; each path has its own buckets.
fn rate_limited(api: &Api, path: &str, headers: &HeaderMap) -> Option<Response> {
    let client = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if api.limiter.allow(&format!("{path}|{client}")) {
        return None;
    }
    Some((StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded\n").into_response())
}

async fn verify(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = rate_limited(&api, "/v1/verify", &headers) {
        return refused;
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

async fn rotate(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = rate_limited(&api, "/v1/rotate", &headers) {
        return refused;
    }
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
    let label = ss.label();
    let public = latest.private.public_key();
    let mut encrypted = std::collections::BTreeMap::new();
    for (item, value) in &unsealed.opened.data {
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
/// GCRA limiter keyed by path and `X-Forwarded-For`; `/v1/verify` and `/v1/rotate` use it.
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
    fn gzip_only_when_accepted() {
        let accepts = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
            accepts_gzip(&headers)
        };
        assert!(!accepts_gzip(&HeaderMap::new()));
        assert!(accepts("gzip"), "what Prometheus sends");
        assert!(accepts("identity, GZip;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("gzipx"));
    }

    #[test]
    fn limiter_allows_the_burst_then_refuses() {
        let limiter = RateLimiter::new(2, 2);
        assert!(limiter.allow("a"));
        assert!(limiter.allow("a"));
        assert!(!limiter.allow("a"));
        assert!(limiter.allow("b"), "buckets are per client");
    }

    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(
            head.contains(&format!("content-length: {}\r\n", body.len())),
            "{head}"
        );
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
