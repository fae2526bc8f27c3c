//! HTTP: routing, authentication and RBAC-lite, fault injection, discovery, the verbs,
//! Table output for kubectl, metadata-only output and streaming watches.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

mod output;
mod proxy;
mod routes;
mod table;
mod tokens;
mod verbs;
mod watches;

use output::*;
use proxy::*;
use routes::*;
use table::*;
use tokens::*;
use verbs::*;
use watches::*;

use crate::error::ApiError;
use crate::protobuf;
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
    bookmark_interval: Duration,
    /// Signs and checks service account tokens.
    issuer: TokenIssuer,
    /// Every (verb, group, resource) a restricted token was allowed.
    granted: Mutex<BTreeSet<(String, String, String)>>,
    /// Resource API requests served, per verb (get, list, watch, create, ...).
    requests: Mutex<BTreeMap<&'static str, u64>>,
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
            bookmark_interval,
            issuer: TokenIssuer::new(),
            granted: Mutex::new(BTreeSet::new()),
            requests: Mutex::new(BTreeMap::new()),
        }
    }

    /// Resource API requests served so far, per verb.
    pub(crate) fn requests(&self) -> BTreeMap<&'static str, u64> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// Whether `rules` (`None`: full access) allow `verb` on `resource` (with its
    /// subresource) of `group` in `namespace`. What a restricted token is allowed is
    /// recorded for [`Shared::granted`]. Every authorization check goes through here.
    pub(crate) fn permits(
        &self,
        rules: Option<&[Rule]>,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: &str,
    ) -> bool {
        let Some(rules) = rules else {
            return true;
        };
        let allowed = rules
            .iter()
            .any(|r| r.allows(verb, group, resource, namespace));
        if allowed {
            self.granted.lock().expect("granted lock").insert((
                verb.to_owned(),
                group.to_owned(),
                resource.to_owned(),
            ));
        }
        allowed
    }

    /// Every (verb, group, resource) that a restricted token was allowed so far.
    pub(crate) fn granted(&self) -> BTreeSet<(String, String, String)> {
        self.granted.lock().expect("granted lock").clone()
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

    pub(crate) fn token_public_key_pem(&self) -> String {
        self.issuer.public_key_pem()
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

/// An answer in Kubernetes protobuf; 406 for kinds without a protobuf mapping.
fn protobuf_response(code: u16, body: &Value) -> Response {
    match protobuf::encode(body) {
        Some(bytes) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, protobuf::MEDIA_TYPE)],
            bytes,
        )
            .into_response(),
        None => error_response(&ApiError::not_acceptable(format!(
            "{} objects are not served as protobuf by this server",
            body.get("kind").and_then(Value::as_str).unwrap_or("these")
        ))),
    }
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
    let known = {
        let tokens = shared.tokens.lock().expect("tokens lock");
        if tokens.is_empty() {
            Some(None)
        } else {
            token.as_ref().and_then(|t| tokens.get(t)).cloned()
        }
    };
    // The server's own tokens, or service account tokens it issued (authorized by the
    // Roles and ClusterRoles bound to the service account).
    let (rules, user) = match known {
        Some(rules) => (rules, "testkit".to_owned()),
        None => match token.as_deref().and_then(|t| authenticate(&shared, t)) {
            Some(sa) => (Some(rules_of(&shared, &sa)), sa.username()),
            None => return error_response(&ApiError::unauthorized()),
        },
    };
    if let Some(answer) = serve_tokens(
        &shared,
        &method,
        uri.path(),
        &headers,
        &body,
        rules.as_deref(),
        &user,
    ) {
        return answer;
    }
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
    *shared
        .requests
        .lock()
        .expect("requests lock")
        .entry(verb)
        .or_default() += 1;
    let resource = match &target.subresource {
        Some(sub) => format!("{}/{sub}", target.rt.plural),
        None => target.rt.plural.clone(),
    };
    let namespace = target.namespace.clone().unwrap_or_default();
    if !shared.permits(
        rules.as_deref(),
        verb,
        &target.rt.group,
        &resource,
        &namespace,
    ) {
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
            "{resource} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group {group} {scope}"
        )));
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
        let form = match output {
            Output::Table(version) => match TablePrinter::new(&target.rt, version, &params) {
                Ok(printer) => WatchForm::Table(Box::new(printer)),
                Err(error) => return error_response(&error),
            },
            _ if metadata_only => WatchForm::Metadata,
            _ => WatchForm::Object,
        };
        return watch_response(shared, target, &params, form);
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
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if protobuf::accepts_only_protobuf(accept) {
        // Clients that accept protobuf alone get it, for the kinds it is mapped for.
        let answer = if matches!(verb, "get" | "list") {
            read(&shared, &target, verb, &params).and_then(|reply| match reply.list_metadata {
                None => Ok((200, Store::present(&target.rt, &reply.items[0]))),
                Some(_) => Err(ApiError::not_acceptable(
                    "lists are not served as protobuf by this server",
                )),
            })
        } else {
            serve(&shared, &target, verb, &params, &content_type, &body, &opts)
        };
        return match answer {
            Ok((code, value)) => protobuf_response(code, &value),
            Err(error) => protobuf_response(error.code, &error.to_status()),
        };
    }
    if matches!(verb, "get" | "list") {
        return match read(&shared, &target, verb, &params) {
            Ok(reply) => match output {
                Output::Table(version) => match TablePrinter::new(&target.rt, version, &params) {
                    Ok(printer) => json_response(200, &printer.reply(&reply)),
                    Err(error) => error_response(&error),
                },
                Output::Metadata | Output::MetadataList => json_response(200, &to_metadata(&reply)),
                Output::Object => {
                    let body = render(&target.rt, &reply);
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                        .into_response()
                }
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared::new(Store::new(10), HashMap::new(), Duration::from_secs(5))
    }

    fn triple(verb: &str, group: &str, resource: &str) -> (String, String, String) {
        (verb.to_owned(), group.to_owned(), resource.to_owned())
    }

    #[test]
    fn permits_records_what_restricted_tokens_are_granted() {
        let shared = shared();
        let rules = [
            Rule::new("", &["secrets"], &["get", "list"]).in_namespaces(&["prod"]),
            Rule::new("bitnami.com", &["sealedsecrets/status"], &["*"]),
        ];
        assert!(shared.permits(Some(&rules), "get", "", "secrets", "prod"));
        assert!(shared.permits(Some(&rules), "get", "", "secrets", "prod"));
        assert!(shared.permits(
            Some(&rules),
            "patch",
            "bitnami.com",
            "sealedsecrets/status",
            "prod"
        ));
        // Refused: another namespace, verb, group or subresource.
        assert!(!shared.permits(Some(&rules), "list", "", "secrets", "other"));
        assert!(!shared.permits(Some(&rules), "delete", "", "secrets", "prod"));
        assert!(!shared.permits(Some(&rules), "get", "apps", "secrets", "prod"));
        assert!(!shared.permits(
            Some(&rules),
            "patch",
            "bitnami.com",
            "sealedsecrets",
            "prod"
        ));
        // Full access is allowed and not recorded.
        assert!(shared.permits(None, "delete", "", "configmaps", "prod"));
        assert_eq!(
            shared.granted(),
            BTreeSet::from([
                triple("get", "", "secrets"),
                triple("patch", "bitnami.com", "sealedsecrets/status"),
            ])
        );
    }
}
