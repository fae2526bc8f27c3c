//! The forms of answers: stored JSON, kubectl Tables, metadata-only objects.

use super::*;

/// The form the `Accept` header asks objects in: the `as=` parameter of its first JSON media
/// type, e.g. kubectl's `application/json;as=Table;v=v1;g=meta.k8s.io,application/json` or,
/// from kube-rs and client-go metadata clients,
/// `application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Output {
    /// Objects as stored.
    Object,
    /// kubectl's `meta.k8s.io` Table (server-side printing).
    Table(TableVersion),
    /// `meta.k8s.io/v1` PartialObjectMetadata: one object's metadata alone.
    Metadata,
    /// `meta.k8s.io/v1` PartialObjectMetadataList: a list of objects' metadata.
    MetadataList,
}

impl Output {
    pub(super) fn negotiate(headers: &HeaderMap) -> Self {
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
            let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
            let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
            match param("as") {
                None => return Self::Object,
                Some("Table") => {
                    if let Some(version) = TableVersion::parse(param("g"), param("v")) {
                        return Self::Table(version);
                    }
                }
                Some("PartialObjectMetadata") => return Self::Metadata,
                Some("PartialObjectMetadataList") => return Self::MetadataList,
                Some(_) => {}
            }
        }
        Self::Object
    }
}

/// The answer to a get (one object, no list metadata) or a list.
pub(super) struct Reply {
    pub(super) list_metadata: Option<Value>,
    pub(super) items: Vec<Stored>,
}

/// Encodes a reply by copying each object's stored JSON (re-encoding only objects read
/// through another version of their resource).
pub(super) fn render(rt: &ResourceType, reply: &Reply) -> Vec<u8> {
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

/// An object reduced to its metadata: a `meta.k8s.io/v1` PartialObjectMetadata. The rest
/// (a Secret's `data`, …) never leaves the server.
pub(super) fn partial(object: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object["metadata"]})
}

/// A `meta.k8s.io/v1` PartialObjectMetadataList of `items` under the list's `metadata`.
pub(super) fn partial_list<'a>(metadata: &Value, items: impl Iterator<Item = &'a Value>) -> Value {
    let items: Vec<Value> = items.map(partial).collect();
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": metadata, "items": items})
}

/// A get or list answered with metadata only.
pub(super) fn to_metadata(reply: &Reply) -> Value {
    match &reply.list_metadata {
        Some(metadata) => partial_list(metadata, reply.items.iter().map(|s| &**s)),
        None => partial(&reply.items[0]),
    }
}
