//! The `external-secrets.io/v1` ClusterExternalSecret custom resource: one ExternalSecret
//! spec stamped into every selected namespace.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, CustomResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::eso_schema::{
    dns_name, eso_crd, label_selector, list, object, root, string, string_list, string_map, with,
};
use crate::external_secret::{
    ExternalSecretCondition, ExternalSecretSpec, condition_schema, external_secret_spec_schema,
};

/// Which namespaces get an ExternalSecret, and its spec and metadata.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ClusterExternalSecret",
    status = "ClusterExternalSecretStatus",
    shortname = "ces",
    category = "external-secrets",
    schema = "disabled",
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.externalSecretSpec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh Interval","type":"string","jsonPath":".spec.refreshTime"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretSpec {
    /// The spec of every ExternalSecret created.
    #[serde(default)]
    pub external_secret_spec: ExternalSecretSpec,
    /// Name of the ExternalSecrets; the ClusterExternalSecret's name when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_name: Option<String>,
    /// Labels and annotations of the ExternalSecrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_metadata: Option<ExternalSecretMetadata>,
    /// Deprecated: one label selector; use `namespaceSelectors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Label selectors of the namespaces (ORed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Deprecated: namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Go duration between namespace re-scans (controller default `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<String>,
}

/// `spec.externalSecretMetadata`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretMetadata {
    /// Labels of each ExternalSecret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations of each ExternalSecret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Observed state of a ClusterExternalSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretStatus {
    /// Name of the ExternalSecrets created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_name: Option<String>,
    /// Namespaces where the ExternalSecret exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioned_namespaces: Vec<String>,
    /// Namespaces where it could not be created, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<ClusterExternalSecretNamespaceFailure>,
    /// The conditions; the controller keeps one, of type `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ExternalSecretCondition>,
}

/// One `status.failedNamespaces[]` entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretNamespaceFailure {
    /// The namespace.
    #[serde(default)]
    pub namespace: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The ClusterExternalSecret CRD: `v1` (storage) and `v1beta1` (served).
pub fn cluster_external_secret_crd() -> CustomResourceDefinition {
    eso_crd(
        ClusterExternalSecret::crd(),
        root(
            "ClusterExternalSecret is the Schema for the clusterexternalsecrets API.",
            spec_schema(),
            status_schema(),
        ),
    )
}

fn spec_schema() -> Value {
    object(
        "ClusterExternalSecretSpec defines the desired state of ClusterExternalSecret.",
        json!({
            "externalSecretSpec": external_secret_spec_schema(),
            "externalSecretName": dns_name("The name of the external secrets to be created. Defaults to the name of the ClusterExternalSecret"),
            "externalSecretMetadata": object(
                "The metadata of the external secrets to be created",
                json!({
                    "labels": string_map(""),
                    "annotations": string_map("")
                }),
                &[],
            ),
            "namespaceSelector": label_selector("The labels to select by to find the Namespaces to create the ExternalSecrets in. Deprecated: Use NamespaceSelectors instead."),
            "namespaceSelectors": list(
                "A list of labels to select by to find the Namespaces to create the ExternalSecrets in. The selectors are ORed.",
                label_selector("A label selector."),
            ),
            "namespaces": with(
                string_list("Choose namespaces by name. This field is ORed with anything that NamespaceSelectors ends up choosing. Deprecated: Use NamespaceSelectors instead."),
                "maxItems",
                json!(1000),
            ),
            "refreshTime": string("The time in which the controller should reconcile its objects and recheck namespaces for labels.")
        }),
        &["externalSecretSpec"],
    )
}

fn status_schema() -> Value {
    object(
        "ClusterExternalSecretStatus defines the observed state of ClusterExternalSecret.",
        json!({
            "externalSecretName": string("ExternalSecretName is the name of the ExternalSecrets created by the ClusterExternalSecret"),
            "provisionedNamespaces": string_list("ProvisionedNamespaces are the namespaces where the ClusterExternalSecret has secrets"),
            "failedNamespaces": list(
                "Failed namespaces are the namespaces that failed to apply an ExternalSecret",
                object(
                    "ClusterExternalSecretNamespaceFailure represents a failed namespace deployment and it's reason.",
                    json!({
                        "namespace": string("Namespace is the namespace that failed when trying to apply an ExternalSecret"),
                        "reason": string("Reason is why the ExternalSecret failed to apply to the namespace")
                    }),
                    &["namespace"],
                ),
            ),
            "conditions": list("", condition_schema())
        }),
        &[],
    )
}
