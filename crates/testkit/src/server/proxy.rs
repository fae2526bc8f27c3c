//! The service proxy.

use super::*;

/// `/api/v1/namespaces/<ns>/services/[<scheme>:]<name>[:<port>]/proxy/<path>`: forwards
/// the request to the backend registered for the Service, as the API server's service
/// proxy forwards to its endpoints. `None` when the path is not a service proxy path.
pub(super) async fn service_proxy(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    rules: Option<&[Rule]>,
) -> Option<Response> {
    let rest = uri.path().strip_prefix("/api/v1/namespaces/")?;
    let (namespace, rest) = rest.split_once("/services/")?;
    let (service, path) = rest.split_once("/proxy")?;
    let parts: Vec<&str> = service.split(':').collect();
    let name = match parts.as_slice() {
        [name] | [name, _] if !matches!(*name, "http" | "https") => *name,
        [_, name] | [_, name, _] => *name,
        _ => {
            return Some(error_response(&ApiError::bad_request(format!(
                "invalid service {service:?}"
            ))));
        }
    };
    let verb = if method == Method::GET {
        "get"
    } else {
        "create"
    };
    if !shared.permits(rules, verb, "", "services/proxy", namespace) {
        return Some(error_response(&ApiError::forbidden(format!(
            "services \"{name}\" is forbidden: User \"testkit\" cannot {verb} resource \"services/proxy\" in API group \"\" in the namespace \"{namespace}\""
        ))));
    }
    {
        let store = shared.store.lock().expect("store lock");
        let services = store
            .registry
            .find("", "v1", "services")
            .cloned()
            .expect("built in");
        if let Err(error) = store.get(&services, namespace, name) {
            return Some(error_response(&error));
        }
    }
    let backend = shared
        .service_backends
        .lock()
        .expect("backends lock")
        .get(&(namespace.to_owned(), name.to_owned()))
        .cloned();
    let Some(backend) = backend else {
        return Some(json_response(
            503,
            &ApiError::injected(503)
                .to_status()
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert(
                        "message".into(),
                        json!(format!("no endpoints available for service \"{name}\"")),
                    );
                    Value::Object(o)
                })
                .unwrap_or_default(),
        ));
    };
    let target = format!(
        "{backend}{path}{}",
        uri.query().map(|q| format!("?{q}")).unwrap_or_default()
    );
    let mut request = axum::http::Request::builder()
        .method(method.clone())
        .uri(&target);
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let request = request.body(http_body_util::Full::new(body.clone())).ok()?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(e) => {
            return Some(error_response(&ApiError {
                code: 503,
                reason: "ServiceUnavailable",
                message: format!("error trying to reach service: {e}"),
                details: None,
            }));
        }
    };
    let (parts, incoming) = response.into_parts();
    let bytes = http_body_util::BodyExt::collect(incoming)
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut out = Response::builder().status(parts.status);
    if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
        out = out.header(header::CONTENT_TYPE, content_type);
    }
    out.body(Body::from(bytes)).ok()
}
