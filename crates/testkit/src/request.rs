//! The parsers of what clients send the server — label and field selectors, patch bodies
//! and Kubernetes protobuf bodies — as plain functions, so that fuzz targets can feed
//! them arbitrary input without running a server.

use serde_json::Value;

use crate::selector::{FieldSelector, LabelSelector};

/// Parses a `labelSelector` query parameter and tells whether `object` matches it.
pub fn label_selector_matches(selector: &str, object: &Value) -> Result<bool, String> {
    Ok(LabelSelector::parse(selector)?.matches(object))
}

/// Parses a `fieldSelector` query parameter and tells whether `object` matches it.
pub fn field_selector_matches(selector: &str, object: &Value) -> Result<bool, String> {
    Ok(FieldSelector::parse(selector)?.matches(object))
}

/// Applies a patch body to `object` as the `patch` verb does for a built-in kind, by its
/// `Content-Type`: `application/merge-patch+json`, `application/json-patch+json` or
/// `application/strategic-merge-patch+json`. The body must be JSON, as the server asks.
pub fn apply_patch(content_type: &str, object: &mut Value, body: &[u8]) -> Result<(), String> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the request body is not valid JSON: {e}"))?;
    match content_type {
        "application/merge-patch+json" => crate::patch::merge(object, &body),
        "application/strategic-merge-patch+json" => crate::patch::strategic(object, &body),
        "application/json-patch+json" => crate::patch::json_patch(object, &body)?,
        other => return Err(format!("unsupported patch type {other:?}")),
    }
    Ok(())
}

/// Decodes a Kubernetes protobuf body (`k8s\0` and a `runtime.Unknown` envelope) into the
/// object's JSON form, as a create or update with that media type is read.
pub fn decode_protobuf(body: &[u8]) -> Result<Value, String> {
    crate::protobuf::decode(body)
}

/// Encodes an object (with `apiVersion` and `kind`) as a protobuf body, as the server
/// answers a client that accepts only protobuf; `None` for kinds without a mapping.
pub fn encode_protobuf(object: &Value) -> Option<Vec<u8>> {
    crate::protobuf::encode(object)
}
