//! The object store and the semantics of every verb: metadata the server sets,
//! resourceVersions, generations, the status subresource, finalizers, garbage collection,
//! server-side apply, and the event log that watches replay.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

mod delete;
mod write;

use crate::error::ApiError;
use crate::fields::{self, FieldSet};
use crate::patch;
use crate::registry::{Registry, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};

/// Storage key of a resource: (group, plural).
pub type ResourceKey = (String, String);
/// Key of an object: (namespace or empty, name).
pub type ObjectKey = (String, String);

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch event `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// The resource it belongs to.
    pub resource: ResourceKey,
    /// What happened.
    pub event_type: EventType,
    /// The object after the change (before it, for deletions).
    pub object: Arc<Value>,
}

/// How a patch body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `fieldManager`, or the client's user agent.
    pub field_manager: String,
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `force=true` for server-side apply.
    pub force: bool,
    /// The write is a server-side apply: the manager's fields are recorded as `Apply`.
    pub apply: bool,
    /// `fieldValidation=Strict`: fields the schema does not declare are an error instead
    /// of being dropped.
    pub strict: bool,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `Foreground`, `Background` (default) or `Orphan`.
    pub propagation: Option<String>,
    /// Precondition on the uid.
    pub uid: Option<String>,
    /// Precondition on the resourceVersion.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// A stored object and its JSON encoding, made once per write so that lists and watches
/// copy bytes instead of serializing objects again (as upstream's watch cache does).
#[derive(Clone)]
pub struct Stored {
    /// The object.
    pub object: Arc<Value>,
    /// `object` as JSON.
    pub json: Arc<[u8]>,
}

impl Stored {
    fn new(object: Arc<Value>) -> Self {
        let json = serde_json::to_vec(&*object)
            .expect("a JSON value serializes")
            .into();
        Self { object, json }
    }
}

impl std::ops::Deref for Stored {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.object
    }
}

/// A page of a list.
pub struct Page {
    /// The objects.
    pub items: Vec<Stored>,
    /// The store's resourceVersion when the list was taken.
    pub rv: u64,
    /// Token for the next page.
    pub continue_token: Option<String>,
    /// How many objects follow this page.
    pub remaining: Option<usize>,
}

/// The state of the server.
pub struct Store {
    /// Served types.
    pub registry: Registry,
    objects: HashMap<ResourceKey, BTreeMap<ObjectKey, Stored>>,
    rv: u64,
    log: VecDeque<Arc<Event>>,
    log_capacity: usize,
    /// Events up to this resourceVersion are no longer replayable.
    compacted: u64,
    events: broadcast::Sender<Arc<Event>>,
    seed: u64,
}

const GENERATE_NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The string at a JSON pointer, or empty.
pub(crate) fn text_at(object: &Value, pointer: &str) -> String {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The strings of the list at `pointer` in `object` (non-strings skipped; none if absent).
pub(crate) fn strings_at(object: &Value, pointer: &str) -> Vec<String> {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The (group, plural) a CustomResourceDefinition defines.
fn crd_resource(crd: &Value) -> ResourceKey {
    (
        text_at(crd, "/spec/group"),
        text_at(crd, "/spec/names/plural"),
    )
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// Whether a name is a DNS-1123 subdomain.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Sets `object`'s generation to one more than `existing`'s.
fn bump_generation(object: &mut Value, existing: &Value) {
    let generation = existing
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        + 1;
    meta_mut(object).insert("generation".into(), json!(generation));
}

/// Everything but metadata and status: a change there bumps the generation.
fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Value::Object(map) = &mut copy {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(key);
        }
    }
    copy
}

/// The object without the fields every write changes, to detect no-op writes.
fn comparable(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(Value::Object(meta)) = copy.get_mut("metadata") {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    if let Value::Object(map) = &mut copy {
        map.remove("apiVersion");
    }
    copy
}

impl Store {
    /// An empty store with the built-in namespaces, keeping `log_capacity` events for
    /// watches to resume from.
    pub fn new(log_capacity: usize) -> Self {
        let (events, _) = broadcast::channel(16_384);
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        let mut store = Self {
            registry: Registry::default(),
            objects: HashMap::new(),
            rv: 0,
            log: VecDeque::new(),
            log_capacity,
            compacted: 0,
            events,
            seed,
        };
        let namespaces = store
            .registry
            .find("", "v1", "namespaces")
            .cloned()
            .expect("built in");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            store
                .create(&namespaces, "", ns, &WriteOptions::default())
                .expect("fresh store");
        }
        store
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Subscribes to every future event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Logged events after `rv`, or `Err` with the oldest replayable version if `rv` is
    /// older than the log.
    pub fn events_since(&self, rv: u64) -> Result<Vec<Arc<Event>>, u64> {
        if rv < self.compacted {
            return Err(self.compacted);
        }
        Ok(self.log.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// Forgets every logged event, so that watches from any older version get 410 Gone.
    pub fn compact(&mut self) {
        self.log.clear();
        self.compacted = self.rv;
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: unique-enough identifiers for a test server.
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uid(&mut self) -> String {
        let (a, b) = (self.random(), self.random());
        let hex = format!("{a:016x}{b:016x}");
        format!(
            "{}-{}-4{}-a{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        )
    }

    fn record(&mut self, resource: ResourceKey, event_type: EventType, object: Arc<Value>) {
        let event = Arc::new(Event {
            rv: self.rv,
            resource,
            event_type,
            object,
        });
        if self.log.len() >= self.log_capacity
            && let Some(old) = self.log.pop_front()
        {
            self.compacted = old.rv;
        }
        self.log.push_back(event.clone());
        let _ = self.events.send(event);
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn bucket(&self, rt: &ResourceType) -> Option<&BTreeMap<ObjectKey, Stored>> {
        self.objects.get(&rt.storage_key())
    }

    fn object_key(rt: &ResourceType, namespace: &str, name: &str) -> ObjectKey {
        let ns = if rt.namespaced { namespace } else { "" };
        (ns.to_owned(), name.to_owned())
    }

    /// Sets `apiVersion` to the version the object is read through.
    pub fn present(rt: &ResourceType, object: &Value) -> Value {
        let mut out = object.clone();
        out["apiVersion"] = Value::String(rt.api_version());
        out["kind"] = Value::String(rt.kind.clone());
        out
    }

    /// `get`.
    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.get_stored(rt, namespace, name).map(|s| s.object)
    }

    /// `get`, with the object's JSON encoding.
    pub fn get_stored(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Stored, ApiError> {
        self.bucket(rt)
            .and_then(|b| b.get(&Self::object_key(rt, namespace, name)))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))
    }

    /// `list`, in (namespace, name) order, with `limit`/`continue` paging.
    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Page, ApiError> {
        let start = match continue_token {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let mut items = Vec::new();
        let mut remaining = 0;
        let mut last = None;
        if let Some(bucket) = self.bucket(rt) {
            // Keys sort by namespace first: a namespaced list reads only its namespace.
            let first = (namespace.unwrap_or_default().to_owned(), String::new());
            let from = start.clone().map_or(first.clone(), |s| s.max(first));
            for (key, object) in bucket.range(from..) {
                if start.as_ref() == Some(key) {
                    continue;
                }
                if namespace.is_some_and(|ns| ns != key.0) {
                    break;
                }
                if !labels.matches(object) || !fields.matches(object) {
                    continue;
                }
                if limit.is_some_and(|l| items.len() >= l) {
                    remaining += 1;
                    continue;
                }
                last = Some(key.clone());
                items.push(object.clone());
            }
        }
        let continue_token =
            (remaining > 0).then(|| encode_continue(last.as_ref().expect("a page before more")));
        Ok(Page {
            items,
            rv: self.rv,
            continue_token,
            remaining: (remaining > 0).then_some(remaining),
        })
    }

    fn ensure_namespace(&self, rt: &ResourceType, namespace: &str) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let namespaces = self
            .registry
            .find("", "v1", "namespaces")
            .expect("built in");
        let ns = self.get(namespaces, "", namespace)?;
        if ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") {
            return Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                rt.plural,
                meta_str(&ns, "name").unwrap_or_default()
            )));
        }
        Ok(())
    }
}

/// Nulls in an applied configuration mean "not set" rather than "delete".
fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn crd_status(crd: &Value) -> Value {
    let time = now();
    json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or_default(),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": time},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": time},
        ],
        "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array).map(|vs| {
            vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>()
        }).unwrap_or_default(),
    })
}

fn encode_continue(key: &ObjectKey) -> String {
    let json = json!([key.0, key.1]).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_continue(token: &str) -> Result<ObjectKey, ApiError> {
    let bad = || ApiError::bad_request(format!("invalid continue token {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let (ns, name): (String, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((ns, name))
}

impl Store {
    /// Number of objects stored, over all resources.
    pub fn object_count(&self) -> usize {
        self.objects.values().map(BTreeMap::len).sum()
    }
}
