//! A fault-injecting HTTP proxy for AWS provider tests: it forwards every request verbatim
//! to an upstream (e.g. [`crate::moto::Moto`]) and can answer Secrets Manager calls with
//! throttling or outage errors instead, as AWS JSON 1.1 services do.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use gitseal_testkit::fault::{Fault, FaultProxy};
//! let moto = gitseal_testkit::moto::Moto::start().expect("moto");
//! let proxy = FaultProxy::start(moto.url()).await?;
//! // point the SDK's endpoint at proxy.url() …
//! proxy.set(Fault::Throttle); // … and the following Secrets Manager calls are throttled
//! assert_eq!(proxy.requests_for("GetSecretValue"), 0);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

/// What the proxy does with the following Secrets Manager requests (those whose
/// `X-Amz-Target` starts with `secretsmanager.`); every other request is forwarded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Forward (the default).
    #[default]
    None,
    /// HTTP 400 `{"__type":"ThrottlingException","message":"Rate exceeded"}`.
    Throttle,
    /// HTTP 503 `{"__type":"ServiceUnavailableException","message":"Service Unavailable"}`.
    Unavailable,
}

struct Shared {
    upstream: String,
    fault: Mutex<Fault>,
    requests: AtomicU64,
    /// Requests per `X-Amz-Target` value.
    targets: Mutex<HashMap<String, u64>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A running proxy on `127.0.0.1`; stopped (with its open connections) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy of `upstream` (`http://127.0.0.1:<port>`) on a free loopback port,
    /// forwarding everything until [`FaultProxy::set`] says otherwise.
    pub async fn start(upstream: &str) -> std::io::Result<FaultProxy> {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            fault: Mutex::new(Fault::None),
            requests: AtomicU64::new(0),
            targets: Mutex::new(HashMap::new()),
            client: Client::builder(hyper_util::rt::TokioExecutor::new()).build_http(),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            // Connections live in this set, so aborting the task (on drop) ends them too.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                while connections.try_join_next().is_some() {}
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
                });
            }
        });
        Ok(FaultProxy { addr, shared, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies `fault` to the requests that follow.
    pub fn set(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// Requests received so far, answered by a fault or forwarded.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests received so far whose `X-Amz-Target` header ends with `target`, e.g.
    /// `"BatchGetSecretValue"`. A plain suffix: `"GetSecretValue"` counts
    /// `BatchGetSecretValue` too; `".GetSecretValue"` counts only `GetSecretValue`.
    pub fn requests_for(&self, target: &str) -> u64 {
        let targets = self
            .shared
            .targets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        targets
            .iter()
            .filter(|(name, _)| name.ends_with(target))
            .map(|(_, n)| n)
            .sum()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers that belong to one connection, not to the request or answer.
const HOP_BY_HOP: [header::HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
];

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(target) = &target {
        let mut targets = shared.targets.lock().unwrap_or_else(|e| e.into_inner());
        *targets.entry(target.clone()).or_default() += 1;
    }
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let fault = *shared.fault.lock().unwrap_or_else(|e| e.into_inner());
    let faulty = target
        .as_deref()
        .is_some_and(|t| t.starts_with("secretsmanager."));
    match fault {
        Fault::Throttle if faulty => {
            return aws_error(400, "ThrottlingException", "Rate exceeded");
        }
        Fault::Unavailable if faulty => {
            return aws_error(503, "ServiceUnavailableException", "Service Unavailable");
        }
        _ => {}
    }
    forward(&shared, request).await
}

/// An AWS JSON 1.1 error answer.
fn aws_error(status: u16, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    response
}

/// Sends `request` to the upstream as is (method, path, query, headers, body) and returns
/// its answer; 502 if the upstream cannot be reached.
async fn forward(shared: &Shared, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = axum::http::Request::builder()
        .method(parts.method)
        .uri(format!("{}{path}", shared.upstream));
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(name) {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = match upstream.body(Full::new(body)) {
        Ok(request) => request,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
    };
    let answer = match shared.client.request(upstream).await {
        Ok(answer) => answer,
        Err(e) => return plain(StatusCode::BAD_GATEWAY, format!("upstream: {e}")),
    };
    let (parts, incoming) = answer.into_parts();
    let bytes = match incoming.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return plain(StatusCode::BAD_GATEWAY, format!("upstream body: {e}")),
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

fn plain(status: StatusCode, message: String) -> Response {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that echoes method, path and query, the `x-echo` header and the body.
    async fn echo() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(|request: Request| async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let echo = parts
                .headers
                .get("x-echo")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let text = format!(
                "{} {} {echo} {}",
                parts.method,
                parts.uri,
                String::from_utf8_lossy(&body)
            );
            let mut response = Response::new(Body::from(text));
            response
                .headers_mut()
                .insert("x-upstream", HeaderValue::from_static("yes"));
            response
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
                });
            }
        });
        (url, task)
    }

    async fn send(url: &str, target: Option<&str>) -> (u16, String, Option<String>) {
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let mut request = axum::http::Request::builder()
            .method("POST")
            .uri(format!("{url}/a/b?x=1"))
            .header("x-echo", "hello");
        if let Some(target) = target {
            request = request.header("x-amz-target", target);
        }
        let request = request.body(Full::new(Bytes::from_static(b"{}"))).unwrap();
        let response = client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let upstream = response.headers().contains_key("x-upstream");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(upstream, text.starts_with("POST"), "{text}");
        (status, text, content_type)
    }

    #[tokio::test]
    async fn forwards_and_injects_faults() {
        let (upstream, server) = echo().await;
        let proxy = FaultProxy::start(&upstream).await.unwrap();
        let url = proxy.url();
        let sm = Some("secretsmanager.GetSecretValue");
        let (status, text, _) = send(&url, sm).await;
        assert_eq!((status, text.as_str()), (200, "POST /a/b?x=1 hello {}"));

        proxy.set(Fault::Throttle);
        let (status, text, content_type) = send(&url, sm).await;
        assert_eq!(status, 400);
        assert_eq!(
            text,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#
        );
        assert_eq!(content_type.as_deref(), Some("application/x-amz-json-1.1"));
        // STS and requests without a target pass through.
        let (status, _, _) = send(&url, Some("AWSSecurityTokenServiceV20110615.X")).await;
        assert_eq!(status, 200);
        assert_eq!(send(&url, None).await.0, 200);

        proxy.set(Fault::Unavailable);
        let (status, text, _) = send(&url, Some("secretsmanager.BatchGetSecretValue")).await;
        assert_eq!(status, 503);
        assert!(text.contains("ServiceUnavailableException"), "{text}");

        proxy.set(Fault::None);
        assert_eq!(send(&url, sm).await.0, 200);

        assert_eq!(proxy.requests(), 6);
        assert_eq!(proxy.requests_for("GetSecretValue"), 4);
        assert_eq!(proxy.requests_for(".GetSecretValue"), 3);
        assert_eq!(proxy.requests_for("BatchGetSecretValue"), 1);
        assert_eq!(proxy.requests_for("X"), 1);

        // Dropped: the port is closed.
        let addr = proxy.addr;
        drop(proxy);
        tokio::task::yield_now().await;
        let mut closed = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(closed, "the proxy still accepts connections after drop");
        server.abort();
    }
}
