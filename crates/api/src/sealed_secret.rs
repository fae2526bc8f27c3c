//! The `bitnami.com/v1alpha1` SealedSecret custom resource.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::{CustomResource, CustomResourceExt};
use serde::{Deserialize, Deserializer, Serialize};

/// What a SealedSecret holds: encrypted items and the shape of the Secret to make.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "bitnami.com",
    version = "v1alpha1",
    kind = "SealedSecret",
    namespaced,
    status = "SealedSecretStatus",
    schema = "disabled",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[0].message"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[0].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct SealedSecretSpec {
    /// Item name → base64 hybrid-encrypted value (ciphertext only).
    ///
    /// Read leniently: a value that is not a string is kept as its JSON text (and then
    /// fails to decrypt with a clear error) instead of making the whole list unreadable.
    #[serde(
        rename = "encryptedData",
        default,
        deserialize_with = "lenient_string_map"
    )]
    pub encrypted_data: BTreeMap<String, String>,
    /// The shape of the generated Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SecretTemplateSpec>,
    /// Deprecated single blob of the v1 format (a whole Secret, base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// `spec.template`: metadata, type, immutability and templated data of the Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SecretTemplateSpec {
    /// Copied onto the generated Secret (name and namespace are always the SealedSecret's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// The Secret's `type` (empty: `Opaque`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The Secret's `immutable`, applied when it is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// Item name → Go template rendered with the decrypted items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
}

/// Observed state: the `Synced` condition and the generation it describes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SealedSecretStatus {
    /// The `metadata.generation` the conditions describe.
    #[serde(
        rename = "observedGeneration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observed_generation: Option<i64>,
    /// The conditions; the controller keeps one, of type `Synced`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<SealedSecretCondition>>,
}

/// One condition of a SealedSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SealedSecretCondition {
    /// Condition type: `Synced`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When the condition was last written.
    #[serde(
        rename = "lastUpdateTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_update_time: Option<Time>,
    /// When the status last changed.
    #[serde(
        rename = "lastTransitionTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_transition_time: Option<Time>,
    /// Machine-readable reason (upstream never sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message: empty on success, the error otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn lenient_string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<String, serde_json::Value>>::deserialize(deserializer)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}

/// The SealedSecret CRD, with the OpenAPI schema of upstream's
/// `crds/bitnami.com_sealedsecrets.yaml` (same fields, types, requirements and
/// `x-kubernetes-preserve-unknown-fields`), plus `template.immutable`.
pub fn sealed_secret_crd() -> CustomResourceDefinition {
    let mut crd = SealedSecret::crd();
    crd.spec.names.list_kind = Some("SealedSecretList".into());
    let schema: JSONSchemaProps =
        serde_json::from_value(sealed_secret_schema()).expect("the schema literal is valid");
    if let Some(version) = crd.spec.versions.first_mut() {
        version.schema = Some(CustomResourceValidation {
            open_api_v3_schema: Some(schema),
        });
    }
    crd
}

fn sealed_secret_schema() -> serde_json::Value {
    let string = || serde_json::json!({"type": "string"});
    let time = |description: &str| serde_json::json!({"type": "string", "format": "date-time", "description": description});
    serde_json::json!({
        "type": "object",
        "description": "SealedSecret is the K8s representation of a \"sealed Secret\" - a regular k8s Secret that has been sealed (encrypted) using the controller's key.",
        "required": ["spec"],
        "properties": {
            "apiVersion": string(),
            "kind": string(),
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "description": "SealedSecretSpec is the specification of a SealedSecret.",
                "required": ["encryptedData"],
                "properties": {
                    "data": {
                        "type": "string",
                        "format": "byte",
                        "description": "Data is deprecated and will be removed eventually. Use per-value EncryptedData instead."
                    },
                    "encryptedData": {
                        "type": "object",
                        "additionalProperties": string(),
                        "x-kubernetes-preserve-unknown-fields": true
                    },
                    "template": {
                        "type": "object",
                        "description": "Template defines the structure of the Secret that will be created from this sealed secret.",
                        "properties": {
                            "data": {
                                "type": "object",
                                "nullable": true,
                                "additionalProperties": string(),
                                "description": "Keys that should be templated using decrypted data."
                            },
                            "immutable": {
                                "type": "boolean",
                                "description": "Immutable, if set to true, ensures that data stored in the Secret cannot be updated."
                            },
                            "metadata": {
                                "type": "object",
                                "nullable": true,
                                "x-kubernetes-preserve-unknown-fields": true,
                                "description": "Standard object's metadata."
                            },
                            "type": {
                                "type": "string",
                                "description": "Used to facilitate programmatic handling of secret data."
                            }
                        }
                    }
                }
            },
            "status": {
                "type": "object",
                "description": "SealedSecretStatus is the most recently observed status of the SealedSecret.",
                "properties": {
                    "conditions": {
                        "type": "array",
                        "description": "Represents the latest available observations of a sealed secret's current state.",
                        "items": {
                            "type": "object",
                            "required": ["status", "type"],
                            "properties": {
                                "lastTransitionTime": time("Last time the condition transitioned from one status to another."),
                                "lastUpdateTime": time("The last time this condition was updated."),
                                "message": string(),
                                "reason": string(),
                                "status": string(),
                                "type": string()
                            }
                        }
                    },
                    "observedGeneration": {
                        "type": "integer",
                        "format": "int64",
                        "description": "ObservedGeneration reflects the generation most recently observed by the sealed-secrets controller."
                    }
                }
            }
        }
    })
}
