//! The service proxy.

use super::*;

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// `/api/v1/namespaces/<ns>/services/[<scheme>:]<name>[:<port>]/proxy/<path>`: forwards
/// the request to one of the Service's ready endpoints, as the API server's service proxy
/// does. The Service's port is the one named or numbered in the path (the first one when
/// none is given); its endpoints come from the EndpointSlices labelled
/// `kubernetes.io/service-name: <name>` or, when there are none, from the `Endpoints`
/// object of the same name. `None` when the path is not a service proxy path.
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
    let (scheme, name, port) = match parts.as_slice() {
        // As the API server splits it: `name`, `name:port`, `scheme:name:port`.
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
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
    if !matches!(scheme, "" | "http") {
        return Some(error_response(&ApiError::bad_request(format!(
            "the test server's service proxy speaks plain http to endpoints; \
             scheme {scheme:?} in {service:?} is not supported"
        ))));
    }
    let backend = {
        let store = shared.store.lock().expect("store lock");
        match resolve(&store, namespace, name, port) {
            Ok(backend) => backend,
            Err(error) => return Some(error_response(&error)),
        }
    };
    let target = format!(
        "http://{backend}{path}{}",
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
            return Some(error_response(&unavailable(format!(
                "error trying to reach service: {e}"
            ))));
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

fn unavailable(message: String) -> ApiError {
    ApiError {
        code: 503,
        reason: "ServiceUnavailable",
        message,
        details: None,
    }
}

/// `ip:port` of the first ready endpoint of Service `namespace/name` on its port `port`
/// (a name or a number; empty: the first port).
fn resolve(store: &Store, namespace: &str, name: &str, port: &str) -> Result<String, ApiError> {
    let builtin = |group: &str, version: &str, plural: &str| {
        store
            .registry
            .find(group, version, plural)
            .cloned()
            .expect("built in")
    };
    let service = store.get(&builtin("", "v1", "services"), namespace, name)?;
    let ports = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let service_port = ports
        .iter()
        .find(|p| {
            port.is_empty()
                || p.get("name").and_then(Value::as_str) == Some(port)
                || p.get("port").and_then(Value::as_u64).map(|n| n.to_string()) == Some(port.into())
        })
        .ok_or_else(|| {
            unavailable(format!(
                "no service port {port:?} found for service {name:?}"
            ))
        })?;
    let port_name = service_port
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // The port of an EndpointSlice or an Endpoints subset that bears the Service port's name.
    let port_in = |holder: &Value| {
        holder
            .pointer("/ports")
            .and_then(Value::as_array)?
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or_default() == port_name)?
            .get("port")
            .and_then(Value::as_u64)
    };

    let selector =
        LabelSelector::parse(&format!("{SERVICE_NAME_LABEL}={name}")).expect("a valid selector");
    let slices = store.list(
        &builtin("discovery.k8s.io", "v1", "endpointslices"),
        Some(namespace),
        &selector,
        &FieldSelector::default(),
        None,
        None,
    )?;
    let mut candidates = Vec::new();
    for slice in &slices.items {
        let slice = &slice.object;
        let Some(port) = port_in(slice) else {
            continue;
        };
        for endpoint in slice
            .pointer("/endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // An unset `ready` counts as ready, as the API documents.
            if endpoint.pointer("/conditions/ready") == Some(&Value::Bool(false)) {
                continue;
            }
            if let Some(ip) = endpoint.pointer("/addresses/0").and_then(Value::as_str) {
                candidates.push(host_port(ip, port));
            }
        }
    }
    if slices.items.is_empty() {
        // No EndpointSlices: the legacy Endpoints object of the Service's name.
        let endpoints = store
            .get(&builtin("", "v1", "endpoints"), namespace, name)
            .ok();
        for subset in endpoints
            .as_deref()
            .and_then(|e| e.pointer("/subsets"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(port) = port_in(subset) else {
                continue;
            };
            for address in subset
                .pointer("/addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(ip) = address.get("ip").and_then(Value::as_str) {
                    candidates.push(host_port(ip, port));
                }
            }
        }
    }
    candidates
        .into_iter()
        .next()
        .ok_or_else(|| unavailable(format!("no endpoints available for service {name:?}")))
}

/// `ip:port`, with an IPv6 address in brackets.
fn host_port(ip: &str, port: u64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}
