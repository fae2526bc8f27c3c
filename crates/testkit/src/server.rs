//! HTTP: routing, authentication and RBAC-lite, fault injection, discovery, the verbs,
//! Table output for kubectl, metadata-only output and streaming watches.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{DeleteOptions, EventType, PatchKind, Store, Stored, WriteOptions, text_at};

/// What a token may do: every listed verb on every listed resource of every listed group,
/// in the listed namespaces. `*` matches anything; an empty `namespaces` means all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Verbs: get, list, watch, create, update, patch, delete, deletecollection.
    pub verbs: Vec<String>,
    /// API groups (`""` is the core group).
    pub groups: Vec<String>,
    /// Resources, with subresources as `plural/status`.
    pub resources: Vec<String>,
    /// Namespaces; empty for all (and for cluster-scoped resources).
    pub namespaces: Vec<String>,
}

impl Rule {
    /// A rule for `verbs` on `resources` of `group`, in every namespace.
    pub fn new(group: &str, resources: &[&str], verbs: &[&str]) -> Self {
        let own = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Self {
            verbs: own(verbs),
            groups: vec![group.to_owned()],
            resources: own(resources),
            namespaces: Vec::new(),
        }
    }

    /// Restricts the rule to `namespaces`.
    pub fn in_namespaces(mut self, namespaces: &[&str]) -> Self {
        self.namespaces = namespaces.iter().map(|s| s.to_string()).collect();
        self
    }

    fn allows(&self, verb: &str, group: &str, resource: &str, namespace: &str) -> bool {
        let any = |list: &[String], item: &str| list.iter().any(|x| x == "*" || x == item);
        any(&self.verbs, verb)
            && any(&self.groups, group)
            && any(&self.resources, resource)
            && (self.namespaces.is_empty() || any(&self.namespaces, namespace))
    }
}

/// An injected failure: the next `remaining` requests that match answer `status`.
#[derive(Debug, Clone)]
struct Fault {
    status: u16,
    remaining: usize,
    verb: Option<String>,
    resource: Option<String>,
}

/// Server state shared by every request.
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    /// token → rules (`None`: everything allowed).
    pub(crate) tokens: Mutex<HashMap<String, Option<Vec<Rule>>>>,
    faults: Mutex<Vec<Fault>>,
    latency: Mutex<Duration>,
    /// Bumped to end every open watch.
    watch_epoch: watch::Sender<u64>,
    /// Where the service proxy sends requests for (namespace, service).
    pub(crate) service_backends: Mutex<HashMap<(String, String), String>>,
    bookmark_interval: Duration,
}

impl Shared {
    pub(crate) fn new(
        store: Store,
        tokens: HashMap<String, Option<Vec<Rule>>>,
        bookmark_interval: Duration,
    ) -> Self {
        Self {
            store: Mutex::new(store),
            tokens: Mutex::new(tokens),
            faults: Mutex::new(Vec::new()),
            latency: Mutex::new(Duration::ZERO),
            watch_epoch: watch::channel(0).0,
            service_backends: Mutex::new(HashMap::new()),
            bookmark_interval,
        }
    }

    pub(crate) fn inject(
        &self,
        status: u16,
        count: usize,
        verb: Option<&str>,
        resource: Option<&str>,
    ) {
        self.faults.lock().expect("faults lock").push(Fault {
            status,
            remaining: count,
            verb: verb.map(str::to_owned),
            resource: resource.map(str::to_owned),
        });
    }

    pub(crate) fn set_latency(&self, latency: Duration) {
        *self.latency.lock().expect("latency lock") = latency;
    }

    pub(crate) fn close_watches(&self) {
        self.watch_epoch.send_modify(|e| *e += 1);
    }

    pub(crate) fn pending_faults(&self) -> usize {
        self.faults
            .lock()
            .expect("faults lock")
            .iter()
            .map(|f| f.remaining)
            .sum()
    }

    fn take_fault(&self, verb: &str, resource: &str) -> Option<u16> {
        let mut faults = self.faults.lock().expect("faults lock");
        let fault = faults.iter_mut().find(|f| {
            f.remaining > 0
                && f.verb.as_deref().is_none_or(|v| v == verb)
                && f.resource.as_deref().is_none_or(|r| r == resource)
        })?;
        fault.remaining -= 1;
        let status = fault.status;
        faults.retain(|f| f.remaining > 0);
        Some(status)
    }
}

fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(error: &ApiError) -> Response {
    json_response(error.code, &error.to_status())
}

/// Query parameters, percent-decoded.
fn query(uri: &Uri) -> HashMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// A request for objects of one resource.
struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

enum Route {
    Json(Value),
    Resource {
        group: String,
        version: String,
        rest: Vec<String>,
    },
    NotFound,
}

fn route(store: &Store, path: &str) -> Route {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let registry = &store.registry;
    match seg.as_slice() {
        ["version"] => Route::Json(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-gitseal-testkit",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64",
        })),
        ["healthz"] | ["readyz"] | ["livez"] => Route::Json(json!("ok")),
        ["api"] => Route::Json(registry.core_versions()),
        ["apis"] => Route::Json(registry.groups()),
        ["api", "v1"] => registry
            .resources("", "v1")
            .map_or(Route::NotFound, Route::Json),
        ["apis", group] if registry.has_group(group) => Route::Json(registry.group(group)),
        ["apis", group, version] => registry
            .resources(group, version)
            .map_or(Route::NotFound, Route::Json),
        ["openapi", "v3"] => Route::Json(registry.openapi_root(store.resource_version())),
        ["openapi", "v3", "api", version] => registry
            .openapi_document("", version)
            .map_or(Route::NotFound, Route::Json),
        ["openapi", "v3", "apis", group, version] => registry
            .openapi_document(group, version)
            .map_or(Route::NotFound, Route::Json),
        ["api", "v1", rest @ ..] => Route::Resource {
            group: String::new(),
            version: "v1".into(),
            rest: rest.iter().map(|s| s.to_string()).collect(),
        },
        ["apis", group, version, rest @ ..] => Route::Resource {
            group: group.to_string(),
            version: version.to_string(),
            rest: rest.iter().map(|s| s.to_string()).collect(),
        },
        _ => Route::NotFound,
    }
}

fn target(store: &Store, group: &str, version: &str, rest: &[String]) -> Option<Target> {
    let find = |plural: &str| store.registry.find(group, version, plural).cloned();
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    let t = |rt: ResourceType, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
        rt,
        namespace: ns.map(str::to_owned),
        name: name.map(str::to_owned),
        subresource: sub.map(str::to_owned),
    };
    match r.as_slice() {
        // Namespaces themselves, and their subresources.
        ["namespaces", name, sub @ ("status" | "finalize")] if group.is_empty() => {
            Some(t(find("namespaces")?, None, Some(name), Some(sub)))
        }
        ["namespaces", ns, plural] => {
            let rt = find(plural)?;
            rt.namespaced.then(|| t(rt, Some(ns), None, None))
        }
        ["namespaces", ns, plural, name] => {
            let rt = find(plural)?;
            rt.namespaced.then(|| t(rt, Some(ns), Some(name), None))
        }
        ["namespaces", ns, plural, name, sub] => {
            let rt = find(plural)?;
            (rt.namespaced && *sub == "status" && rt.status_subresource)
                .then(|| t(rt, Some(ns), Some(name), Some(sub)))
        }
        [plural] => Some(t(find(plural)?, None, None, None)),
        [plural, name] => {
            let rt = find(plural)?;
            (!rt.namespaced).then(|| t(rt, None, Some(name), None))
        }
        [plural, name, "status"] => {
            let rt = find(plural)?;
            (!rt.namespaced && rt.status_subresource)
                .then(|| t(rt, None, Some(name), Some("status")))
        }
        _ => None,
    }
}

/// The axum handler for every request.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = *shared.latency.lock().expect("latency lock");
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let rules = {
        let tokens = shared.tokens.lock().expect("tokens lock");
        if tokens.is_empty() {
            None
        } else {
            match token.as_ref().and_then(|t| tokens.get(t)) {
                Some(rules) => rules.clone(),
                None => return error_response(&ApiError::unauthorized()),
            }
        }
    };
    if let Some(proxied) =
        service_proxy(&shared, &method, &uri, &headers, &body, rules.as_deref()).await
    {
        return proxied;
    }
    let params = query(&uri);
    let route = {
        let store = shared.store.lock().expect("store lock");
        match route(&store, uri.path()) {
            Route::Json(body) => return json_response(200, &body),
            Route::NotFound => None,
            Route::Resource {
                group,
                version,
                rest,
            } => Some(target(&store, &group, &version, &rest)),
        }
    };
    let Some(Some(target)) = route else {
        return json_response(
            404,
            &json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404,
            }),
        );
    };
    let watching = matches!(params.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = match (&method, target.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watching => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return error_response(&ApiError::method_not_allowed()),
    };
    let resource = match &target.subresource {
        Some(sub) => format!("{}/{sub}", target.rt.plural),
        None => target.rt.plural.clone(),
    };
    let namespace = target.namespace.clone().unwrap_or_default();
    if let Some(rules) = &rules {
        if !rules
            .iter()
            .any(|r| r.allows(verb, &target.rt.group, &resource, &namespace))
        {
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace \"{namespace}\"")
            };
            let group = if target.rt.group.is_empty() {
                "\"\"".to_owned()
            } else {
                format!("\"{}\"", target.rt.group)
            };
            return error_response(&ApiError::forbidden(format!(
                "{resource} is forbidden: User \"testkit\" cannot {verb} resource \"{resource}\" in API group {group} {scope}"
            )));
        }
    }
    if let Some(status) = shared.take_fault(verb, &target.rt.plural) {
        return error_response(&ApiError::injected(status));
    }
    let output = Output::negotiate(&headers);
    let answers_list = matches!(verb, "list" | "deletecollection");
    match output {
        Output::Metadata if answers_list => {
            return error_response(&ApiError::not_acceptable(
                "you requested PartialObjectMetadata, but the requested object is a list",
            ));
        }
        Output::MetadataList if !answers_list => {
            return error_response(&ApiError::not_acceptable(
                "you requested PartialObjectMetadataList, but the requested object is not a list",
            ));
        }
        _ => {}
    }
    let metadata_only = matches!(output, Output::Metadata | Output::MetadataList);
    if verb == "watch" {
        return watch_response(shared, target, &params, metadata_only);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    // Server-side apply names its manager explicitly; other writes default to the
    // client's user agent, as upstream does.
    let field_manager = match params.get("fieldManager") {
        Some(manager) => manager.clone(),
        None if content_type.starts_with("application/apply-patch") => String::new(),
        None => {
            let agent = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            match agent.split('/').next().unwrap_or_default() {
                "" => "unknown".to_owned(),
                prefix => prefix.to_owned(),
            }
        }
    };
    let opts = WriteOptions {
        field_manager,
        dry_run: params.get("dryRun").is_some_and(|v| v == "All"),
        force: params.get("force").is_some_and(|v| v == "true"),
        apply: false,
        strict: params.get("fieldValidation").is_some_and(|v| v == "Strict"),
    };
    if matches!(verb, "get" | "list") {
        return match read(&shared, &target, verb, &params) {
            Ok(reply) if output == Output::Table => {
                json_response(200, &to_table(&target.rt, &reply))
            }
            Ok(reply) if metadata_only => json_response(200, &to_metadata(&reply)),
            Ok(reply) => {
                let body = render(&target.rt, &reply);
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response()
            }
            Err(error) => error_response(&error),
        };
    }
    match serve(&shared, &target, verb, &params, &content_type, &body, &opts) {
        Ok((code, list)) if metadata_only && answers_list => {
            let items = list["items"].as_array().into_iter().flatten();
            json_response(code, &partial_list(&list["metadata"], items))
        }
        Ok((code, object)) if metadata_only => json_response(code, &partial(&object)),
        Ok((code, value)) => json_response(code, &value),
        Err(error) => error_response(&error),
    }
}

/// The form the `Accept` header asks objects in: the `as=` parameter of its first JSON media
/// type, e.g. kubectl's `application/json;as=Table;v=v1;g=meta.k8s.io,application/json` or,
/// from kube-rs and client-go metadata clients,
/// `application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// Objects as stored.
    Object,
    /// kubectl's `meta.k8s.io/v1` Table.
    Table,
    /// `meta.k8s.io/v1` PartialObjectMetadata: one object's metadata alone.
    Metadata,
    /// `meta.k8s.io/v1` PartialObjectMetadataList: a list of objects' metadata.
    MetadataList,
}

impl Output {
    fn negotiate(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        for media_type in accept.split(',') {
            let mut parts = media_type.split(';').map(str::trim);
            if !matches!(
                parts.next(),
                Some("" | "application/json" | "application/*" | "*/*")
            ) {
                continue;
            }
            match parts.find_map(|p| p.strip_prefix("as=")) {
                None => return Self::Object,
                Some("Table") => return Self::Table,
                Some("PartialObjectMetadata") => return Self::Metadata,
                Some("PartialObjectMetadataList") => return Self::MetadataList,
                Some(_) => {}
            }
        }
        Self::Object
    }
}

/// The answer to a get (one object, no list metadata) or a list.
struct Reply {
    list_metadata: Option<Value>,
    items: Vec<Stored>,
}

/// get and list: the store lock is held only to collect the objects; they are encoded
/// after it is released.
fn read(
    shared: &Shared,
    target: &Target,
    verb: &str,
    params: &HashMap<String, String>,
) -> Result<Reply, ApiError> {
    let rt = &target.rt;
    let store = shared.store.lock().expect("store lock");
    if verb == "get" {
        let ns = target.namespace.as_deref().unwrap_or_default();
        let name = target.name.as_deref().unwrap_or_default();
        return Ok(Reply {
            list_metadata: None,
            items: vec![store.get_stored(rt, ns, name)?],
        });
    }
    let (labels, fields) = selectors(params)?;
    let limit = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0);
    let token = params
        .get("continue")
        .map(String::as_str)
        .filter(|c| !c.is_empty());
    let page = store.list(
        rt,
        target.namespace.as_deref(),
        &labels,
        &fields,
        limit,
        token,
    )?;
    let mut metadata = json!({"resourceVersion": page.rv.to_string()});
    if let Some(token) = page.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = page.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    Ok(Reply {
        list_metadata: Some(metadata),
        items: page.items,
    })
}

/// Encodes a reply by copying each object's stored JSON (re-encoding only objects read
/// through another version of their resource).
fn render(rt: &ResourceType, reply: &Reply) -> Vec<u8> {
    let api_version = rt.api_version();
    let object = |stored: &Stored, out: &mut Vec<u8>| {
        if stored.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str()) {
            out.extend_from_slice(&stored.json);
        } else {
            serde_json::to_writer(&mut *out, &Store::present(rt, stored))
                .expect("a JSON value serializes");
        }
    };
    let Some(metadata) = &reply.list_metadata else {
        let mut out = Vec::new();
        object(&reply.items[0], &mut out);
        return out;
    };
    let size: usize = reply.items.iter().map(|s| s.json.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 256);
    let head = json!({"apiVersion": api_version, "kind": format!("{}List", rt.kind), "metadata": metadata}).to_string();
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, stored) in reply.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        object(stored, &mut out);
    }
    out.extend_from_slice(b"]}");
    out
}

/// `/api/v1/namespaces/<ns>/services/[<scheme>:]<name>[:<port>]/proxy/<path>`: forwards
/// the request to the backend registered for the Service, as the API server's service
/// proxy forwards to its endpoints. `None` when the path is not a service proxy path.
async fn service_proxy(
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
    if let Some(rules) = rules {
        if !rules
            .iter()
            .any(|r| r.allows(verb, "", "services/proxy", namespace))
        {
            return Some(error_response(&ApiError::forbidden(format!(
                "services \"{name}\" is forbidden: User \"testkit\" cannot {verb} resource \"services/proxy\" in API group \"\" in the namespace \"{namespace}\""
            ))));
        }
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

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn selectors(params: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(params.get("labelSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(params.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn serve(
    shared: &Shared,
    target: &Target,
    verb: &str,
    params: &HashMap<String, String>,
    content_type: &str,
    body: &Bytes,
    opts: &WriteOptions,
) -> Result<(u16, Value), ApiError> {
    let rt = &target.rt;
    let ns = target.namespace.as_deref().unwrap_or_default();
    let name = target.name.as_deref().unwrap_or_default();
    let sub = target.subresource.as_deref().filter(|s| *s == "status");
    let mut store = shared.store.lock().expect("store lock");
    match verb {
        "create" => Ok((201, store.create(rt, ns, parse_body(body)?, opts)?)),
        "update" => Ok((
            200,
            store.update(rt, ns, name, parse_body(body)?, sub, opts)?,
        )),
        "patch" => {
            let kind = match content_type.split(';').next().unwrap_or_default().trim() {
                "application/merge-patch+json" => PatchKind::Merge,
                "application/json-patch+json" => PatchKind::Json,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            let patch = parse_body(body)?;
            let exists = store.get(rt, ns, name).is_ok();
            let result = store.patch(rt, ns, name, kind, &patch, sub, opts)?;
            Ok((if exists { 200 } else { 201 }, result))
        }
        "delete" => {
            let options = if body.is_empty() {
                json!({})
            } else {
                parse_body(body)?
            };
            let delete = DeleteOptions {
                propagation: options
                    .get("propagationPolicy")
                    .and_then(Value::as_str)
                    .or(params.get("propagationPolicy").map(String::as_str))
                    .map(str::to_owned),
                uid: options
                    .pointer("/preconditions/uid")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                resource_version: options
                    .pointer("/preconditions/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                dry_run: opts.dry_run
                    || options
                        .get("dryRun")
                        .and_then(Value::as_array)
                        .is_some_and(|d| d.iter().any(|v| v == "All")),
            };
            let deleted = store.delete(rt, ns, name, &delete)?;
            let code = if deleted.pointer("/metadata/deletionTimestamp").is_some()
                && store.get(rt, ns, name).is_ok()
            {
                202
            } else {
                200
            };
            Ok((code, Store::present(rt, &deleted)))
        }
        "deletecollection" => {
            let (labels, fields) = selectors(params)?;
            let page = store.list(
                rt,
                target.namespace.as_deref(),
                &labels,
                &fields,
                None,
                None,
            )?;
            let mut items = Vec::new();
            for object in page.items {
                let ns = text_at(&object, "/metadata/namespace");
                let name = text_at(&object, "/metadata/name");
                items.push(Store::present(
                    rt,
                    &store.delete(rt, &ns, &name, &DeleteOptions::default())?,
                ));
            }
            Ok((
                200,
                json!({"apiVersion": rt.api_version(), "kind": format!("{}List", rt.kind), "metadata": {"resourceVersion": store.resource_version().to_string()}, "items": items}),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// kubectl's `get` output: a `meta.k8s.io/v1` Table.
fn to_table(rt: &ResourceType, reply: &Reply) -> Value {
    let objects: Vec<&Value> = reply.items.iter().map(|s| &**s).collect();
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}),
    ];
    let secret = rt.group.is_empty() && rt.kind == "Secret";
    if secret {
        columns.push(json!({"name": "Type", "type": "string", "format": "", "description": "Type", "priority": 0}));
        columns.push(json!({"name": "Data", "type": "string", "format": "", "description": "Data", "priority": 0}));
    }
    columns.push(
        json!({"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0}),
    );
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or_default()];
            if secret {
                cells.push(o.get("type").cloned().unwrap_or_default());
                cells.push(json!(o.get("data").and_then(Value::as_object).map_or(0, |d| d.len())));
            }
            cells.push(json!(age(o.pointer("/metadata/creationTimestamp").and_then(Value::as_str))));
            let metadata = o.get("metadata").cloned().unwrap_or_default();
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}})
        })
        .collect();
    let resource_version = reply
        .list_metadata
        .as_ref()
        .and_then(|m| m.get("resourceVersion").cloned())
        .unwrap_or_default();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version}, "columnDefinitions": columns, "rows": rows})
}

/// An object reduced to its metadata: a `meta.k8s.io/v1` PartialObjectMetadata. The rest
/// (a Secret's `data`, …) never leaves the server.
fn partial(object: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object["metadata"]})
}

/// A `meta.k8s.io/v1` PartialObjectMetadataList of `items` under the list's `metadata`.
fn partial_list<'a>(metadata: &Value, items: impl Iterator<Item = &'a Value>) -> Value {
    let items: Vec<Value> = items.map(partial).collect();
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": metadata, "items": items})
}

/// A get or list answered with metadata only.
fn to_metadata(reply: &Reply) -> Value {
    match &reply.list_metadata {
        Some(metadata) => partial_list(metadata, reply.items.iter().map(|s| &**s)),
        None => partial(&reply.items[0]),
    }
}

fn age(created: Option<&str>) -> String {
    let seconds = created
        .and_then(|c| humantime::parse_rfc3339(c).ok())
        .and_then(|t| t.elapsed().ok())
        .map_or(0, |d| d.as_secs());
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// One watch event; with `metadata_only` its object is reduced to a PartialObjectMetadata
/// (bookmarks too, as upstream).
fn watch_line(event_type: &str, object: &Value, metadata_only: bool) -> Bytes {
    let reduced;
    let object = if metadata_only {
        reduced = partial(object);
        &reduced
    } else {
        object
    };
    let mut line = json!({"type": event_type, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch_response(
    shared: Arc<Shared>,
    target: Target,
    params: &HashMap<String, String>,
    metadata_only: bool,
) -> Response {
    let (labels, fields) = match selectors(params) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let send_initial = params.get("sendInitialEvents").is_some_and(|v| v == "true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let requested_rv = params
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .and_then(|v| v.parse::<u64>().ok());
    let rt = target.rt.clone();
    let namespace = target.namespace.clone();
    let matches = move |resource: &(String, String), object: &Value| {
        *resource == rt.storage_key()
            && namespace.as_deref().is_none_or(|ns| {
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    == Some(ns)
            })
            && labels.matches(object)
            && fields.matches(object)
    };

    // Take the starting point and subscribe under one lock: no event falls between.
    let (initial, mut receiver, start_rv, expired) = {
        let store = shared.store.lock().expect("store lock");
        let receiver = store.subscribe();
        let start_rv = store.resource_version();
        match (requested_rv, send_initial) {
            (Some(rv), false) => match store.events_since(rv) {
                Ok(events) => {
                    let lines: Vec<(EventType, Value)> = events
                        .iter()
                        .filter(|e| matches(&e.resource, &e.object))
                        .map(|e| (e.event_type, Store::present(&target.rt, &e.object)))
                        .collect();
                    (lines, receiver, start_rv, None)
                }
                Err(oldest) => (
                    Vec::new(),
                    receiver,
                    start_rv,
                    Some(ApiError::expired(rv, oldest)),
                ),
            },
            _ => {
                let all = store
                    .list(
                        &target.rt,
                        target.namespace.as_deref(),
                        &LabelSelector::default(),
                        &FieldSelector::default(),
                        None,
                        None,
                    )
                    .map(|p| p.items)
                    .unwrap_or_default();
                let lines = all
                    .iter()
                    .filter(|o| matches(&target.rt.storage_key(), o))
                    .map(|o| (EventType::Added, Store::present(&target.rt, o)))
                    .collect();
                (lines, receiver, start_rv, None)
            }
        }
    };

    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(1024);
    let mut epoch = shared.watch_epoch.subscribe();
    let interval = shared.bookmark_interval;
    let rt = target.rt.clone();
    tokio::spawn(async move {
        if let Some(error) = expired {
            // ERROR events keep their Status.
            let _ = tx
                .send(Ok(watch_line("ERROR", &error.to_status(), false)))
                .await;
            return;
        }
        for (event_type, object) in initial {
            if tx
                .send(Ok(watch_line(event_type.as_str(), &object, metadata_only)))
                .await
                .is_err()
            {
                return;
            }
        }
        let bookmark = |rv: u64, initial_end: bool| {
            let mut metadata = json!({"resourceVersion": rv.to_string()});
            if initial_end {
                metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            watch_line(
                "BOOKMARK",
                &json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": metadata}),
                metadata_only,
            )
        };
        let mut last_rv = start_rv;
        if send_initial && bookmarks && tx.send(Ok(bookmark(last_rv, true))).await.is_err() {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                event = receiver.recv() => match event {
                    Ok(event) => {
                        if event.rv <= start_rv {
                            continue;
                        }
                        last_rv = event.rv;
                        if matches(&event.resource, &event.object) {
                            let line = watch_line(event.event_type.as_str(), &Store::present(&rt, &event.object), metadata_only);
                            if tx.send(Ok(line)).await.is_err() {
                                return;
                            }
                        }
                    }
                    // A watcher that fell behind is cut off; it resumes from its last version.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(Ok(bookmark(last_rv, false))).await.is_err() {
                        return;
                    }
                }
                _ = epoch.changed() => return,
                _ = &mut deadline => return,
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("a valid response")
}
