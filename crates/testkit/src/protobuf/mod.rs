//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`): the 4-byte magic
//! `k8s\0` and a `runtime.Unknown` envelope holding the type and the raw message, converted
//! to and from the JSON the store keeps, with the types of the `k8s-pb` crate. kubectl's
//! imperative commands (`kubectl create namespace|secret|configmap|serviceaccount|service|
//! role|rolebinding|clusterrole|clusterrolebinding`) send these.

mod decode;
mod encode;

use decode::to_json;
use encode::from_json;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::{Value, json};

/// The media type of Kubernetes protobuf bodies.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The prefix of every protobuf body.
const MAGIC: &[u8; 4] = b"k8s\0";

/// Whether a `Content-Type` value is the Kubernetes protobuf media type.
pub(crate) fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().map(str::trim) == Some(MEDIA_TYPE)
}

/// Whether an `Accept` header admits protobuf only (no JSON, no wildcard).
pub(crate) fn accepts_only_protobuf(accept: &str) -> bool {
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or_default().trim())
        .filter(|t| !t.is_empty())
        .collect();
    !types.is_empty() && types.iter().all(|t| *t == MEDIA_TYPE)
}

/// Decodes a protobuf body into the object's JSON form (with `apiVersion` and `kind`).
pub(crate) fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("the protobuf body does not start with the k8s\\0 prefix")?;
    let unknown = Unknown::decode(envelope).map_err(|e| format!("invalid envelope: {e}"))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let mut object = to_json(&api_version, &kind, &raw)?;
    let map = object.as_object_mut().expect("an object");
    map.insert("apiVersion".into(), json!(api_version));
    map.insert("kind".into(), json!(kind));
    Ok(object)
}

/// Encodes an object (with `apiVersion` and `kind`) as a protobuf body; `None` for the
/// kinds this server has no protobuf mapping for.
pub(crate) fn encode(object: &Value) -> Option<Vec<u8>> {
    let api_version = object.get("apiVersion")?.as_str()?.to_owned();
    let kind = object.get("kind")?.as_str()?.to_owned();
    let raw = from_json(&api_version, &kind, object)?;
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version),
            kind: Some(kind),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    envelope.encode(&mut out).expect("a Vec grows");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use std::collections::BTreeMap;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: None,
            content_type: None,
        }
        .encode(&mut out)
        .unwrap();
        out
    }

    #[test]
    fn decodes_a_secret_as_kubectl_sends_it() {
        let secret = core::Secret {
            metadata: Some(meta::ObjectMeta {
                name: Some("s".into()),
                labels: BTreeMap::from([("app".into(), "demo".into())]),
                ..Default::default()
            }),
            data: BTreeMap::from([("a".into(), b"b".to_vec())]),
            r#type: Some("Opaque".into()),
            ..Default::default()
        };
        let mut secret = secret;
        if let Some(m) = secret.metadata.as_mut() {
            // As Go sends unset fields.
            m.generate_name = Some(String::new());
            m.generation = Some(0);
            m.creation_timestamp = Some(meta::Time::default());
        }
        let body = envelope("v1", "Secret", secret.encode_to_vec());
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": "s", "labels": {"app": "demo"}}, "data": {"a": "Yg=="}})
        );
    }

    #[test]
    fn round_trips_every_supported_kind() {
        let objects = [
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "uid": "u-1", "resourceVersion": "7",
                   "creationTimestamp": "2026-01-02T03:04:05Z"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d", "annotations": {"k": "v"},
                   "finalizers": ["f"], "ownerReferences": [{"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u", "controller": true}],
                   "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                                      "fieldsV1": {"f:data": {"f:a": {}}}, "time": "2026-01-02T03:04:05Z"}]},
                   "data": {"a": "b"}, "binaryData": {"bin": "AAE="}, "immutable": false}),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "d"},
                   "imagePullSecrets": [{"name": "pull"}], "automountServiceAccountToken": false}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "d"},
                   "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                                      {"name": "named", "port": 81, "targetPort": "web"}],
                            "selector": {"app": "a"}, "type": "ClusterIP", "clusterIP": "10.0.0.1"},
                   "status": {"loadBalancer": {}}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": "d"},
                   "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "cr"},
                   "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
                   "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "d"},
                   "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "d"}],
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "crb"},
                   "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "u"}],
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cr"}}),
        ];
        let token_request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "metadata": {"name": "sa", "namespace": "d"},
            "spec": {"audiences": ["vault"], "expirationSeconds": 3600}});
        let token_review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "metadata": {}, "spec": {"token": "a.b.c", "audiences": ["vault"]}});
        for object in objects.into_iter().chain([token_request, token_review]) {
            let body = encode(&object).expect("a supported kind");
            assert_eq!(&body[..4], b"k8s\0");
            assert_eq!(decode(&body).unwrap(), object);
        }
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(decode(b"{}").unwrap_err().contains("k8s\\0"));
        let body = envelope("apps/v1", "Deployment", Vec::new());
        assert!(decode(&body).unwrap_err().contains("not supported"));
        assert!(encode(&json!({"apiVersion": "apps/v1", "kind": "Deployment"})).is_none());
    }

    #[test]
    fn negotiates_protobuf_only_answers() {
        assert!(accepts_only_protobuf("application/vnd.kubernetes.protobuf"));
        assert!(!accepts_only_protobuf(
            "application/vnd.kubernetes.protobuf,application/json"
        ));
        assert!(!accepts_only_protobuf(""));
        assert!(is_protobuf(
            "application/vnd.kubernetes.protobuf; charset=x"
        ));
    }
}
