//! sops-secrets-operator's `SopsSecret` (`isindir.github.com/v1alpha3`): a list of Secret
//! templates encrypted with SOPS, the `sops:` metadata block beside `spec`.
//!
//! The type holds the object as stored: its strings are SOPS `ENC[...]` values wherever
//! the author's `encrypted_suffix`/`encrypted_regex` selected them (with the operator's
//! `--encrypted-suffix Templates`, names and types too). [`SopsSecret::document`] gives
//! the JSON document the controller decrypts.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::SealedSecretCondition;

/// API group of SopsSecrets.
pub const SOPS_SECRETS_GROUP: &str = "isindir.github.com";
/// Served and stored version of SopsSecrets.
pub const SOPS_SECRETS_VERSION: &str = "v1alpha3";
/// `apiVersion` of a SopsSecret manifest.
pub const SOPS_SECRET_API_VERSION: &str = "isindir.github.com/v1alpha3";
/// Kind of a SopsSecret.
pub const SOPS_SECRET_KIND: &str = "SopsSecret";
/// Annotation (value `true`) handing an existing Secret over to a SopsSecret, as
/// sops-secrets-operator's.
pub const ANNOTATION_SOPS_MANAGED: &str = "sopssecret/managed";
/// kubectl's record of the applied manifest (client-side apply).
pub const ANNOTATION_LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A SopsSecret as the API server stores it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SopsSecret {
    /// `isindir.github.com/v1alpha3`.
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    /// `SopsSecret`.
    #[serde(default)]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The templates (values encrypted) and the reconcile switches.
    #[serde(default)]
    pub spec: SopsSecretSpec,
    /// The SOPS metadata block, kept whole (every field sops writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sops: Option<Map<String, Value>>,
    /// What the controller observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SopsSecretStatus>,
}

/// `spec` of a SopsSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SopsSecretSpec {
    /// One Secret per template.
    #[serde(rename = "secretTemplates", default)]
    pub secret_templates: Vec<SopsSecretTemplate>,
    /// Stop reconciling this object (its Secrets are left as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Take over a Secret whose controller is a SopsSecret of this name with another uid
    /// (left by a backup restore); nothing else is ever taken.
    #[serde(
        rename = "enforceOwnership",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enforce_ownership: Option<bool>,
}

/// One Secret to make. While encrypted, any of the strings may be a SOPS value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SopsSecretTemplate {
    /// The Secret's name.
    #[serde(default)]
    pub name: String,
    /// Labels of the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations of the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The Secret's type (absent or empty: `Opaque`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Items, base64 (as a Secret's `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
    /// Items as text (as a Secret's `stringData`; for a key also in `data`, `data` wins,
    /// as with sops-secrets-operator).
    #[serde(
        rename = "stringData",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_data: Option<BTreeMap<String, String>>,
}

/// `status` of a SopsSecret: the operator's `message` plus conditions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SopsSecretStatus {
    /// The operator's one-line state (`Healthy`, `Decryption error`, ...), the printer
    /// column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The `metadata.generation` the status describes.
    #[serde(
        rename = "observedGeneration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observed_generation: Option<i64>,
    /// `Ready` (the Secrets are written) and `MacVerified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<SealedSecretCondition>>,
    /// The names of the Secrets last written, so that a restart can check them without
    /// decrypting (the names themselves may be encrypted in the object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<String>>,
}

impl kube::Resource for SopsSecret {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        SOPS_SECRET_KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        SOPS_SECRETS_GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        SOPS_SECRETS_VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "sopssecrets".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl SopsSecret {
    /// The document the author encrypted, as well as the stored object can tell: kind,
    /// apiVersion, the metadata the author wrote (kubectl's last-applied record when
    /// there is one, else name, labels and annotations without tools' ones), `spec` and
    /// `sops`, every map's keys in sorted order as the API server keeps them. Every value
    /// decrypts from it (each is bound to its path); the MAC verifies when the author's
    /// maps were sorted and, without `mac_only_encrypted`, the metadata is the author's.
    pub fn document(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("apiVersion".into(), json!(self.api_version));
        doc.insert("kind".into(), json!(self.kind));
        doc.insert("metadata".into(), self.authored_metadata());
        doc.insert(
            "spec".into(),
            serde_json::to_value(&self.spec).unwrap_or_default(),
        );
        if let Some(sops) = &self.sops {
            doc.insert("sops".into(), Value::Object(sops.clone()));
        }
        sorted_keys(Value::Object(doc))
    }

    fn authored_metadata(&self) -> Value {
        let annotations = self.metadata.annotations.as_ref();
        let applied = annotations
            .and_then(|a| a.get(ANNOTATION_LAST_APPLIED))
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .and_then(|mut v| v.get_mut("metadata").map(Value::take));
        if let Some(metadata) = applied {
            return metadata;
        }
        let mut meta = Map::new();
        meta.insert("name".into(), json!(self.metadata.name));
        if let Some(labels) = self.metadata.labels.as_ref().filter(|l| !l.is_empty()) {
            meta.insert("labels".into(), json!(labels));
        }
        let authored: BTreeMap<&String, &String> = annotations
            .into_iter()
            .flatten()
            .filter(|(k, _)| !is_tool_annotation(k))
            .collect();
        if !authored.is_empty() {
            meta.insert("annotations".into(), json!(authored));
        }
        Value::Object(meta)
    }
}

/// `value` with every map's keys in byte order, as the API server (Go's `encoding/json`
/// over a generic map) returns a custom resource. (The test API server has its own copy:
/// it stands in for the real one and shares no code with what it tests.)
fn sorted_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> =
                map.into_iter().map(|(k, v)| (k, sorted_keys(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted_keys).collect()),
        other => other,
    }
}

/// Annotations written by deployment tools rather than by the manifest's author.
fn is_tool_annotation(key: &str) -> bool {
    key.starts_with("kubectl.kubernetes.io/")
        || key.starts_with("argocd.argoproj.io/")
        || key.starts_with("kustomize.toolkit.fluxcd.io/")
        || key.starts_with("meta.helm.sh/")
}

/// The SopsSecret CRD as sops-secrets-operator serves it: `v1alpha3` served and stored,
/// the deprecated `v1alpha1` (snake_case `secret_templates`) and `v1alpha2` served; short
/// name `sops`; printer column `Status` (`.status.message`). The `sops` block lists every
/// field sops writes and keeps unknown ones; the status adds conditions. Helm keeps it on
/// uninstall.
pub fn sops_secret_crd() -> CustomResourceDefinition {
    let column = json!([{"name": "Status", "type": "string", "jsonPath": ".status.message"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]);
    let version = |name: &str, templates: &str, storage: bool| {
        let mut v = json!({
            "name": name,
            "served": true,
            "storage": storage,
            "subresources": {"status": {}},
            "additionalPrinterColumns": column,
            "schema": {"openAPIV3Schema": schema(templates)},
        });
        if !storage {
            v["deprecated"] = json!(true);
        }
        v
    };
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": "sopssecrets.isindir.github.com"
        },
        "spec": {
            "group": SOPS_SECRETS_GROUP,
            "names": {
                "kind": SOPS_SECRET_KIND,
                "listKind": "SopsSecretList",
                "plural": "sopssecrets",
                "singular": "sopssecret",
                "shortNames": ["sops"]
            },
            "scope": "Namespaced",
            "versions": [
                version("v1alpha1", "secret_templates", false),
                version("v1alpha2", "secretTemplates", false),
                version(SOPS_SECRETS_VERSION, "secretTemplates", true),
            ]
        }
    }))
    .expect("the CRD literal is valid")
}

fn schema(templates: &str) -> Value {
    let string = || json!({"type": "string"});
    let strings = || json!({"type": "object", "additionalProperties": {"type": "string"}});
    let keys = |fields: &[&str]| {
        let properties: Map<String, Value> =
            fields.iter().map(|f| ((*f).to_owned(), string())).collect();
        json!({"type": "array", "items": {"type": "object", "properties": properties,
               "x-kubernetes-preserve-unknown-fields": true}})
    };
    let time = || json!({"type": "string", "format": "date-time"});
    json!({
        "type": "object",
        "description": "SopsSecret holds Secret templates encrypted with SOPS; the controller decrypts them with keys held in the cluster and writes the Secrets.",
        "properties": {
            "apiVersion": string(),
            "kind": string(),
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": [templates],
                "properties": {
                    templates: {
                        "type": "array",
                        "minItems": 1,
                        "description": "One Kubernetes Secret per template.",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string", "description": "Name of the Secret."},
                                "labels": strings(),
                                "annotations": strings(),
                                "type": {"type": "string", "description": "Secret type (default Opaque)."},
                                "data": strings(),
                                "stringData": strings()
                            }
                        }
                    },
                    "suspend": {"type": "boolean", "description": "Stop reconciling; the Secrets stay as they are."},
                    "enforceOwnership": {"type": "boolean", "description": "Take over a Secret left controlled by an earlier SopsSecret of the same name (e.g. after a restore)."}
                }
            },
            "sops": {
                "type": "object",
                "description": "SOPS metadata: key groups, MAC, selection options.",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {
                    "kms": keys(&["arn", "role", "enc", "created_at", "aws_profile"]),
                    "pgp": keys(&["enc", "created_at", "fp"]),
                    "azure_kv": keys(&["vault_url", "name", "version", "enc", "created_at"]),
                    "hc_vault": keys(&["vault_address", "engine_path", "key_name", "created_at", "enc"]),
                    "gcp_kms": keys(&["resource_id", "enc", "created_at"]),
                    "age": keys(&["recipient", "enc"]),
                    "key_groups": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                    "shamir_threshold": {"type": "integer"},
                    "mac": string(),
                    "lastmodified": string(),
                    "version": string(),
                    "encrypted_suffix": string(),
                    "encrypted_regex": string(),
                    "encrypted_comment_regex": string(),
                    "unencrypted_suffix": string(),
                    "unencrypted_regex": string(),
                    "unencrypted_comment_regex": string(),
                    "mac_only_encrypted": {"type": "boolean"}
                }
            },
            "status": {
                "type": "object",
                "properties": {
                    "message": {"type": "string", "description": "State in one phrase (Healthy, Decryption error, ...)."},
                    "observedGeneration": {"type": "integer", "format": "int64"},
                    "secrets": {"type": "array", "items": string(), "description": "Names of the Secrets last written."},
                    "conditions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["status", "type"],
                            "properties": {
                                "lastTransitionTime": time(),
                                "lastUpdateTime": time(),
                                "message": string(),
                                "reason": string(),
                                "status": string(),
                                "type": string()
                            }
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> SopsSecret {
        serde_json::from_value(json!({
            "apiVersion": "isindir.github.com/v1alpha3",
            "kind": "SopsSecret",
            "metadata": {
                "name": "app", "namespace": "prod", "uid": "u-1", "generation": 2,
                "labels": {"team": "a"},
                "annotations": {"note": "x", "argocd.argoproj.io/tracking-id": "t"}
            },
            "spec": {"secretTemplates": [{"name": "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]",
                                          "stringData": {"k": "ENC[...]"}}]},
            "sops": {"age": [{"recipient": "age1x", "enc": "-----BEGIN"}], "mac": "ENC[...]",
                     "key_groups": null, "version": "3.11.0"},
            "status": {"message": "Healthy"}
        }))
        .unwrap()
    }

    #[test]
    fn the_document_is_what_the_author_wrote() {
        let doc = stored().document();
        let keys: Vec<_> = doc.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "sops", "spec"]);
        let template = doc["spec"]["secretTemplates"][0].as_object().unwrap();
        assert_eq!(template.keys().collect::<Vec<_>>(), ["name", "stringData"]);
        assert_eq!(
            doc["metadata"],
            json!({"name": "app", "labels": {"team": "a"}, "annotations": {"note": "x"}})
        );
        assert!(doc.get("status").is_none());
        assert_eq!(doc["sops"]["version"], "3.11.0");
        assert!(doc["sops"].as_object().unwrap().contains_key("key_groups"));
        assert_eq!(
            doc["spec"],
            json!({"secretTemplates": [{"name": "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]",
                                        "stringData": {"k": "ENC[...]"}}]})
        );
        // kubectl's record of the applied manifest is the author's metadata.
        let mut applied = stored();
        let record = json!({"metadata": {"name": "app", "namespace": "prod"}}).to_string();
        applied
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(ANNOTATION_LAST_APPLIED.into(), record);
        assert_eq!(
            applied.document()["metadata"],
            json!({"name": "app", "namespace": "prod"})
        );
    }

    #[test]
    fn crd_matches_the_operator() {
        let crd = sops_secret_crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("sopssecrets.isindir.github.com")
        );
        assert_eq!(crd.spec.names.short_names, Some(vec!["sops".to_owned()]));
        let versions: Vec<_> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.served, v.storage, v.deprecated))
            .collect();
        assert_eq!(
            versions,
            [
                ("v1alpha1", true, false, Some(true)),
                ("v1alpha2", true, false, Some(true)),
                ("v1alpha3", true, true, None)
            ]
        );
        let v1 = serde_json::to_value(&crd.spec.versions[0]).unwrap();
        let spec = &v1["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["required"], json!(["secret_templates"]));
        let v3 = serde_json::to_value(&crd.spec.versions[2]).unwrap();
        assert_eq!(
            v3["additionalPrinterColumns"][0]["jsonPath"],
            ".status.message"
        );
        let sops = &v3["schema"]["openAPIV3Schema"]["properties"]["sops"];
        assert_eq!(sops["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(sops["properties"]["mac_only_encrypted"]["type"], "boolean");
    }
}
