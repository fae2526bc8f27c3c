//! The object store and the semantics of every verb: metadata the server sets,
//! resourceVersions, generations, the status subresource, finalizers, garbage collection,
//! server-side apply, and the event log that watches replay.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

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
        if self.log.len() >= self.log_capacity {
            if let Some(old) = self.log.pop_front() {
                self.compacted = old.rv;
            }
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

    /// Kind-specific defaulting and validation shared by create and update.
    fn normalize(
        &self,
        rt: &ResourceType,
        object: &mut Value,
        old: Option<&Value>,
        strict: bool,
    ) -> Result<(), ApiError> {
        let name = meta_str(object, "name").unwrap_or_default().to_owned();
        let invalid = |errors: Vec<String>| ApiError::invalid(&rt.kind, &rt.group, &name, &errors);
        if rt.group.is_empty() && rt.kind == "Secret" {
            if let Some(Value::Object(string_data)) =
                object.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                let data = object
                    .as_object_mut()
                    .expect("an object")
                    .entry("data")
                    .or_insert_with(|| json!({}));
                for (key, value) in string_data {
                    let text = value.as_str().unwrap_or_default();
                    data[key] =
                        Value::String(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
            if object.get("type").is_none_or(Value::is_null) {
                object["type"] = json!("Opaque");
            }
            if let Some(old) = old.filter(|o| o.get("immutable") == Some(&Value::Bool(true))) {
                let mut errors = Vec::new();
                if old.get("data") != object.get("data") {
                    errors.push(
                        "data: Forbidden: field is immutable when `immutable` is set".to_owned(),
                    );
                }
                if object.get("immutable") != Some(&Value::Bool(true)) {
                    errors.push(
                        "immutable: Forbidden: field is immutable when `immutable` is set"
                            .to_owned(),
                    );
                }
                if !errors.is_empty() {
                    return Err(invalid(errors));
                }
            }
            if let Some(old) = old {
                if old.get("type") != object.get("type") {
                    return Err(invalid(vec![
                        "type: Invalid value: field is immutable".to_owned(),
                    ]));
                }
            }
            if let Some(Value::Object(data)) = object.get("data") {
                for (key, value) in data {
                    let ok = value.as_str().is_some_and(|v| {
                        base64::engine::general_purpose::STANDARD.decode(v).is_ok()
                    });
                    if !ok {
                        return Err(invalid(vec![format!(
                            "data[{key}]: Invalid value: must be base64"
                        )]));
                    }
                }
            }
        }
        if rt.group.is_empty() && rt.kind == "Namespace" && old.is_none() {
            object["status"] = json!({"phase": "Active"});
        }
        if let Some(schema) = &rt.schema {
            let (errors, pruned) = crate::validation::validate(schema, object);
            if let (true, Some(field)) = (strict, pruned.first()) {
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: unknown field \"{field}\"",
                    kind = rt.kind,
                    version = rt.version
                )));
            }
            if !errors.is_empty() {
                return Err(invalid(errors));
            }
        }
        Ok(())
    }

    fn record_manager(
        object: &mut Value,
        manager: &str,
        operation: &str,
        api_version: &str,
        owned: FieldSet,
        subresource: Option<&str>,
    ) {
        if manager.is_empty() {
            return;
        }
        let meta = meta_mut(object);
        let mut entries: Vec<Value> = meta
            .get("managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        entries.retain(|e| !(e["manager"] == manager && e["operation"] == operation));
        if !owned.is_empty() {
            let mut entry = json!({
                "manager": manager,
                "operation": operation,
                "apiVersion": api_version,
                "time": now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": fields::to_fields_v1(&owned),
            });
            if let Some(sub) = subresource {
                entry["subresource"] = json!(sub);
            }
            entries.push(entry);
        }
        meta.insert("managedFields".into(), Value::Array(entries));
    }

    /// Managers and the fields they own, other than `except` with `operation`.
    fn owners(object: &Value) -> Vec<(String, String, FieldSet)> {
        object
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["manager"].as_str().unwrap_or_default().to_owned(),
                            e["operation"].as_str().unwrap_or_default().to_owned(),
                            fields::from_fields_v1(&e["fieldsV1"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Takes the fields in `taken` away from every manager but (`manager`, `operation`).
    fn disown(object: &mut Value, taken: &FieldSet, manager: &str, operation: &str) {
        let Some(Value::Array(entries)) = object.pointer_mut("/metadata/managedFields") else {
            return;
        };
        for entry in entries.iter_mut() {
            if entry["manager"] == manager && entry["operation"] == operation {
                continue;
            }
            let mut set = fields::from_fields_v1(&entry["fieldsV1"]);
            let before = set.len();
            set.retain(|path| {
                !taken
                    .iter()
                    .any(|t| path.starts_with(t) || t.starts_with(path))
            });
            if set.len() != before {
                entry["fieldsV1"] = fields::to_fields_v1(&set);
            }
        }
        entries.retain(|e| e["fieldsV1"].as_object().is_some_and(|m| !m.is_empty()));
    }

    /// `create`.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        mut object: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        if let Some(kind) = object.get("kind").and_then(Value::as_str) {
            if kind != rt.kind {
                return Err(ApiError::bad_request(format!(
                    "the kind {kind:?} of the object does not match the resource {}",
                    rt.plural
                )));
            }
        }
        let body_ns = meta_str(&object, "namespace")
            .unwrap_or_default()
            .to_owned();
        if rt.namespaced {
            if !body_ns.is_empty() && body_ns != namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta_mut(&mut object).insert("namespace".into(), json!(namespace));
        } else {
            meta_mut(&mut object).remove("namespace");
        }
        let mut name = meta_str(&object, "name").unwrap_or_default().to_owned();
        if name.is_empty() {
            let Some(prefix) = meta_str(&object, "generateName").map(str::to_owned) else {
                return Err(ApiError::invalid(
                    &rt.kind,
                    &rt.group,
                    "",
                    &[
                        "metadata.name: Required value: name or generateName is required"
                            .to_owned(),
                    ],
                ));
            };
            loop {
                let suffix: String = (0..5)
                    .map(|_| {
                        GENERATE_NAME_CHARS
                            [(self.random() % GENERATE_NAME_CHARS.len() as u64) as usize]
                            as char
                    })
                    .collect();
                name = format!("{prefix}{suffix}");
                if self.get(rt, namespace, &name).is_err() {
                    break;
                }
            }
            meta_mut(&mut object).insert("name".into(), json!(name));
        }
        if !valid_name(&name) {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                &name,
                &[format!(
                    "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                )],
            ));
        }
        self.ensure_namespace(rt, namespace)?;
        let key = Self::object_key(rt, namespace, &name);
        if self.bucket(rt).is_some_and(|b| b.contains_key(&key)) {
            return Err(ApiError::already_exists(&rt.plural, &rt.group, &name));
        }
        if rt.status_subresource {
            object.as_object_mut().expect("an object").remove("status");
        }
        self.normalize(rt, &mut object, None, opts.strict)?;
        let crd_types =
            if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" {
                let types = Registry::types_of_crd(&object)
                    .map_err(|e| ApiError::invalid(&rt.kind, &rt.group, &name, &[e]))?;
                object["status"] = crd_status(&object);
                Some(types)
            } else {
                None
            };
        let owned = fields::of(&object);
        object["apiVersion"] = json!(rt.api_version());
        object["kind"] = json!(rt.kind);
        {
            let meta = meta_mut(&mut object);
            for key in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "managedFields",
                "resourceVersion",
            ] {
                meta.remove(key);
            }
            meta.insert("creationTimestamp".into(), json!(now()));
        }
        let uid = self.uid();
        meta_mut(&mut object).insert("uid".into(), json!(uid));
        if rt.generation {
            meta_mut(&mut object).insert("generation".into(), json!(1));
        }
        let operation = if opts.apply { "Apply" } else { "Update" };
        Self::record_manager(
            &mut object,
            &opts.field_manager,
            operation,
            &rt.api_version(),
            owned,
            None,
        );
        if opts.dry_run {
            return Ok(object);
        }
        let rv = self.next_rv();
        meta_mut(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        if let Some(types) = crd_types {
            let (group, plural) = crd_resource(&object);
            self.registry.set_custom(&group, &plural, types);
        }
        Ok(self.put(rt, key, object, EventType::Added))
    }

    /// Stores `object` under `key` and records the event.
    fn put(
        &mut self,
        rt: &ResourceType,
        key: ObjectKey,
        object: Value,
        event_type: EventType,
    ) -> Value {
        let stored = Arc::new(object);
        self.objects
            .entry(rt.storage_key())
            .or_default()
            .insert(key, Stored::new(stored.clone()));
        self.record(rt.storage_key(), event_type, stored.clone());
        (*stored).clone()
    }

    /// `update` (PUT), of the object or of its `status` subresource.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        mut object: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let existing = self.get(rt, namespace, name)?;
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        let body_name = meta_str(&object, "name").unwrap_or_default();
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        match meta_str(&object, "resourceVersion").filter(|rv| !rv.is_empty()) {
            Some(rv) if Some(rv) != meta_str(&existing, "resourceVersion") => {
                return Err(ApiError::conflict(&rt.plural, &rt.group, name));
            }
            None if rt.custom => {
                return Err(ApiError::invalid(&rt.kind, &rt.group, name, &[
                    "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update".to_owned(),
                ]));
            }
            _ => {}
        }
        let before_fields = fields::of(&existing);
        if subresource == Some("status") {
            let status = object.get("status").cloned();
            object = (*existing).clone();
            match status {
                Some(status) => object["status"] = status,
                None => {
                    object.as_object_mut().expect("an object").remove("status");
                }
            }
        } else if rt.status_subresource {
            match existing.get("status") {
                Some(status) => object["status"] = status.clone(),
                None => {
                    object.as_object_mut().expect("an object").remove("status");
                }
            }
        }
        // Fields the server owns carry over.
        {
            let old_meta = existing.get("metadata").cloned().unwrap_or_default();
            let meta = meta_mut(&mut object);
            let carried: &[&str] = if opts.apply {
                // Server-side apply settled ownership itself.
                &[
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "namespace",
                ]
            } else {
                &[
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "managedFields",
                    "namespace",
                ]
            };
            for key in carried.iter().copied() {
                match old_meta.get(key) {
                    Some(v) => meta.insert(key.into(), v.clone()),
                    None => meta.remove(key),
                };
            }
            meta.insert("name".into(), json!(name));
        }
        self.normalize(rt, &mut object, Some(&existing), opts.strict)?;
        object["apiVersion"] = json!(rt.api_version());
        object["kind"] = json!(rt.kind);
        if rt.generation && spec_part(&object) != spec_part(&existing) {
            bump_generation(&mut object, &existing);
        }
        if !opts.apply {
            Self::take_ownership(
                &mut object,
                &existing,
                &before_fields,
                &opts.field_manager,
                &rt.api_version(),
                subresource,
            );
        }
        self.commit(rt, namespace, name, existing, object, opts.dry_run)
    }

    /// After an Update by `manager`: it owns what it changed, and no one else does.
    fn take_ownership(
        object: &mut Value,
        existing: &Value,
        before_fields: &FieldSet,
        manager: &str,
        api_version: &str,
        subresource: Option<&str>,
    ) {
        let after = fields::of(object);
        let changed: FieldSet = after
            .iter()
            .filter(|p| {
                !before_fields.contains(*p) || fields::get(object, p) != fields::get(existing, p)
            })
            .cloned()
            .collect();
        let removed: FieldSet = before_fields.difference(&after).cloned().collect();
        Self::disown(
            object,
            &changed.union(&removed).cloned().collect(),
            manager,
            "Update",
        );
        let mut owned: FieldSet = Self::owners(object)
            .into_iter()
            .filter(|(m, op, _)| m == manager && op == "Update")
            .flat_map(|(_, _, set)| set)
            .filter(|p| after.contains(p))
            .collect();
        owned.extend(changed);
        Self::record_manager(object, manager, "Update", api_version, owned, subresource);
    }

    /// Stores a changed object (or finishes its deletion), unless nothing changed.
    fn commit(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        existing: Arc<Value>,
        mut object: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if comparable(&object) == comparable(&existing) || dry_run {
            if dry_run {
                return Ok(object);
            }
            return Ok(Self::present(rt, &existing));
        }
        let finalizers_empty = object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        let rv = self.next_rv();
        meta_mut(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        let key = Self::object_key(rt, namespace, name);
        if meta_str(&object, "deletionTimestamp").is_some() && finalizers_empty {
            let last = Arc::new(object);
            self.remove(rt, &key, last.clone());
            return Ok((*last).clone());
        }
        Ok(self.put(rt, key, object, EventType::Modified))
    }

    /// `patch`, of the object or of its `status` subresource.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        body: &Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if kind == PatchKind::Apply {
            return self.apply(rt, namespace, name, body, subresource, opts);
        }
        let existing = self.get(rt, namespace, name)?;
        let mut object = Self::present(rt, &existing);
        if let Some(Value::Object(meta)) = object.get_mut("metadata") {
            meta.remove("managedFields");
        }
        match kind {
            PatchKind::Merge => patch::merge(&mut object, body),
            PatchKind::Strategic if rt.custom => {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                ));
            }
            PatchKind::Strategic => patch::strategic(&mut object, body),
            PatchKind::Json => patch::json_patch(&mut object, body).map_err(|e| {
                ApiError::invalid(
                    &rt.kind,
                    &rt.group,
                    name,
                    &[format!("patch: Invalid value: {e}")],
                )
            })?,
            PatchKind::Apply => unreachable!("handled above"),
        }
        // A patch is unconditional unless it names a resourceVersion.
        if body.pointer("/metadata/resourceVersion").is_none() {
            let rv = meta_str(&existing, "resourceVersion")
                .unwrap_or_default()
                .to_owned();
            meta_mut(&mut object).insert("resourceVersion".into(), json!(rv));
        }
        self.update(rt, namespace, name, object, subresource, opts)
    }

    /// Server-side apply.
    fn apply(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        applied: &Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if opts.field_manager.is_empty() {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                name,
                &["fieldManager: Required value: is required for apply patch".to_owned()],
            ));
        }
        let manager = opts.field_manager.as_str();
        let applied_fields = fields::of(applied);
        let existing = match self.get(rt, namespace, name) {
            Ok(existing) => existing,
            Err(e) if e.code == 404 && subresource.is_none() => {
                let mut object = strip_nulls(applied);
                meta_mut(&mut object).insert("name".into(), json!(name));
                return self.create(
                    rt,
                    namespace,
                    object,
                    &WriteOptions {
                        apply: true,
                        ..opts.clone()
                    },
                );
            }
            Err(e) => return Err(e),
        };
        // Conflicts: fields another manager owns whose value the applied config changes.
        let mut conflicts: Vec<(String, Vec<String>)> = Vec::new();
        for (other, operation, owned) in Self::owners(&existing) {
            if other == manager && operation == "Apply" {
                continue;
            }
            for path in applied_fields.intersection(&owned) {
                if fields::get(&existing, path) != fields::get(applied, path) {
                    conflicts.push((other.clone(), path.clone()));
                }
            }
        }
        let conflicting: FieldSet = conflicts.iter().map(|(_, p)| p.clone()).collect();
        if !conflicts.is_empty() && !opts.force {
            let list: Vec<String> = conflicts
                .iter()
                .map(|(m, p)| format!("conflict with \"{m}\": {}", fields::display(p)))
                .collect();
            let count = conflicts.len();
            let noun = if count == 1 { "conflict" } else { "conflicts" };
            return Err(ApiError::conflict_message(format!(
                "Apply failed with {count} {noun}: {}",
                list.join(", ")
            )));
        }
        let mut object = Self::present(rt, &existing);
        let mut overlay = applied.clone();
        if let Some(Value::Object(meta)) = overlay.get_mut("metadata") {
            meta.remove("resourceVersion");
        }
        patch::merge(&mut object, &strip_nulls(&overlay));
        // Fields this manager applied before and no longer applies are removed, unless
        // someone else owns them too.
        let previous: FieldSet = Self::owners(&existing)
            .into_iter()
            .filter(|(m, op, _)| m == manager && op == "Apply")
            .flat_map(|(_, _, set)| set)
            .collect();
        let others: FieldSet = Self::owners(&existing)
            .into_iter()
            .filter(|(m, op, _)| !(m == manager && op == "Apply"))
            .flat_map(|(_, _, set)| set)
            .collect();
        for path in previous.difference(&applied_fields) {
            if !others.contains(path) {
                fields::remove(&mut object, path);
            }
        }
        // Forcing takes conflicting fields over; fields set to the same value are shared.
        Self::disown(&mut object, &conflicting, manager, "Apply");
        Self::record_manager(
            &mut object,
            manager,
            "Apply",
            &rt.api_version(),
            applied_fields,
            subresource,
        );
        let rv = meta_str(&existing, "resourceVersion")
            .unwrap_or_default()
            .to_owned();
        meta_mut(&mut object).insert("resourceVersion".into(), json!(rv));
        // Ownership is settled; the update must not re-assign it to an Update manager.
        self.update(
            rt,
            namespace,
            name,
            object,
            subresource,
            &WriteOptions {
                apply: true,
                ..opts.clone()
            },
        )
    }

    fn remove(&mut self, rt: &ResourceType, key: &ObjectKey, last: Arc<Value>) {
        if let Some(bucket) = self.objects.get_mut(&rt.storage_key()) {
            bucket.remove(key);
        }
        self.record(rt.storage_key(), EventType::Deleted, last.clone());
        if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" {
            let (group, plural) = crd_resource(&last);
            self.registry.set_custom(&group, &plural, Vec::new());
            self.objects.remove(&(group, plural));
        }
        if let Some(uid) = meta_str(&last, "uid").map(str::to_owned) {
            self.collect_garbage(&uid);
        }
        if !key.0.is_empty() {
            self.finish_namespace(&key.0.clone());
        }
    }

    /// `delete`.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let existing = self.get(rt, namespace, name)?;
        if opts
            .uid
            .as_deref()
            .is_some_and(|uid| Some(uid) != meta_str(&existing, "uid"))
        {
            return Err(ApiError::conflict_message(format!(
                "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                opts.uid.as_deref().unwrap_or_default(),
                meta_str(&existing, "uid").unwrap_or_default()
            )));
        }
        if opts
            .resource_version
            .as_deref()
            .is_some_and(|rv| Some(rv) != meta_str(&existing, "resourceVersion"))
        {
            return Err(ApiError::conflict(&rt.plural, &rt.group, name));
        }
        if opts.dry_run {
            return Ok(Self::present(rt, &existing));
        }
        let uid = meta_str(&existing, "uid").unwrap_or_default().to_owned();
        match opts.propagation.as_deref() {
            Some("Orphan") => self.orphan_dependents(&uid),
            Some("Foreground") => self.delete_dependents(&uid),
            _ => {}
        }
        if rt.group.is_empty() && rt.kind == "Namespace" {
            return self.delete_namespace(rt, name, existing);
        }
        let has_finalizers = existing
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if meta_str(&existing, "deletionTimestamp").is_some() {
                return Ok(Self::present(rt, &existing));
            }
            let mut object = (*existing).clone();
            meta_mut(&mut object).insert("deletionTimestamp".into(), json!(now()));
            meta_mut(&mut object).insert("deletionGracePeriodSeconds".into(), json!(0));
            if rt.generation {
                bump_generation(&mut object, &existing);
            }
            return self.commit(rt, namespace, name, existing, object, false);
        }
        let rv = self.next_rv();
        let mut last = (*existing).clone();
        meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
        let last = Arc::new(last);
        self.remove(rt, &Self::object_key(rt, namespace, name), last.clone());
        Ok((*last).clone())
    }

    fn delete_namespace(
        &mut self,
        rt: &ResourceType,
        name: &str,
        existing: Arc<Value>,
    ) -> Result<Value, ApiError> {
        let mut object = (*existing).clone();
        if meta_str(&object, "deletionTimestamp").is_none() {
            meta_mut(&mut object).insert("deletionTimestamp".into(), json!(now()));
            object["status"] = json!({"phase": "Terminating"});
            self.commit(rt, "", name, existing, object, false)?;
        }
        // Delete the contents, then the namespace once nothing is left.
        let contents: Vec<(ResourceType, ObjectKey)> = self
            .registry
            .types()
            .iter()
            .filter(|t| t.namespaced)
            .flat_map(|t| {
                self.bucket(t)
                    .into_iter()
                    .flat_map(|b| b.keys().filter(|k| k.0 == name).cloned())
                    .map(move |k| (t.clone(), k))
            })
            .collect();
        for (t, (ns, obj)) in contents {
            let _ = self.delete(&t, &ns, &obj, &DeleteOptions::default());
        }
        self.finish_namespace(name);
        let namespaces = self
            .registry
            .find("", "v1", "namespaces")
            .cloned()
            .expect("built in");
        Ok(match self.get(&namespaces, "", name) {
            Ok(ns) => Self::present(&namespaces, &ns),
            Err(_) => Self::present(
                &namespaces,
                &json!({"metadata": {"name": name}, "status": {"phase": "Terminating"}}),
            ),
        })
    }

    /// Removes a terminating namespace once it is empty.
    fn finish_namespace(&mut self, name: &str) {
        let namespaces = self
            .registry
            .find("", "v1", "namespaces")
            .cloned()
            .expect("built in");
        let Ok(ns) = self.get(&namespaces, "", name) else {
            return;
        };
        if meta_str(&ns, "deletionTimestamp").is_none() {
            return;
        }
        let empty = self
            .registry
            .types()
            .iter()
            .filter(|t| t.namespaced)
            .all(|t| {
                self.bucket(t)
                    .is_none_or(|b| !b.keys().any(|k| k.0 == name))
            });
        if empty {
            let rv = self.next_rv();
            let mut last = (*ns).clone();
            meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
            self.remove(
                &namespaces,
                &(String::new(), name.to_owned()),
                Arc::new(last),
            );
        }
    }

    /// Every object whose ownerReferences name `uid`.
    fn dependents(&self, uid: &str) -> Vec<(ResourceType, ObjectKey, Arc<Value>)> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for t in self.registry.types() {
            if seen.contains(&t.storage_key()) {
                continue;
            }
            seen.push(t.storage_key());
            if let Some(bucket) = self.bucket(t) {
                for (key, object) in bucket {
                    let owned = object
                        .pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid));
                    if owned {
                        out.push((t.clone(), key.clone(), object.object.clone()));
                    }
                }
            }
        }
        out
    }

    fn uid_exists(&self, uid: &str) -> bool {
        self.objects
            .values()
            .any(|bucket| bucket.values().any(|o| meta_str(o, "uid") == Some(uid)))
    }

    /// Background garbage collection: dependents whose owners are all gone are deleted.
    fn collect_garbage(&mut self, uid: &str) {
        for (t, (ns, name), object) in self.dependents(uid) {
            let refs = object
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let orphaned = refs
                .iter()
                .all(|r| !self.uid_exists(r["uid"].as_str().unwrap_or_default()));
            if orphaned {
                let _ = self.delete(&t, &ns, &name, &DeleteOptions::default());
            }
        }
    }

    fn delete_dependents(&mut self, uid: &str) {
        for (t, (ns, name), _) in self.dependents(uid) {
            let opts = DeleteOptions {
                propagation: Some("Foreground".into()),
                ..Default::default()
            };
            let _ = self.delete(&t, &ns, &name, &opts);
        }
    }

    fn orphan_dependents(&mut self, uid: &str) {
        for (t, (ns, name), object) in self.dependents(uid) {
            let mut changed = (*object).clone();
            if let Some(Value::Array(refs)) = changed.pointer_mut("/metadata/ownerReferences") {
                refs.retain(|r| r["uid"] != uid);
            }
            let _ = self.commit(&t, &ns, &name, object, changed, false);
        }
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
