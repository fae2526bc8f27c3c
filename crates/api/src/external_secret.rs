//! The `external-secrets.io/v1` ExternalSecret custom resource (also served as `v1beta1`).

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, CustomResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::eso_schema::{
    boolean, dns_name, enumeration, eso_crd, list, object, opaque, root, rules, string,
    string_default, string_enum, string_list, string_map, time, with,
};

/// Most entries a `spec.data` list may have. The duplicate-`secretKey` CEL rule is
/// quadratic in this number and must stay under the API server's per-rule cost limit.
pub const MAX_DATA_ITEMS: usize = 64;
/// Most entries the other lists that CEL rules walk may have.
pub const MAX_LIST_ITEMS: usize = 1000;

/// What an ExternalSecret asks for: which store, which remote values, and the Secret to write.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ExternalSecret",
    namespaced,
    status = "ExternalSecretStatus",
    shortname = "es",
    category = "external-secrets",
    schema = "disabled",
    printcolumn = r#"{"name":"StoreType","type":"string","jsonPath":".spec.secretStoreRef.kind"}"#,
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh Interval","type":"string","jsonPath":".spec.refreshInterval"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.refreshTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretSpec {
    /// The default store of every entry (an entry's `sourceRef` may name another one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_store_ref: Option<SecretStoreRef>,
    /// The Secret to write and how to own it.
    #[serde(default)]
    pub target: ExternalSecretTarget,
    /// Go duration between refreshes (`0s`: fetch once); the CRD defaults it to `1h0m0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    /// When to refresh; unset behaves as `Periodic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_policy: Option<RefreshPolicy>,
    /// Time windows gating periodic refreshes (ESO 2.7+), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_windows: Option<Value>,
    /// Single remote values, each written under its own key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<ExternalSecretData>,
    /// Bulk sources: whole secrets extracted, found by name/tags, or generated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_from: Vec<ExternalSecretDataFromRemoteRef>,
}

/// A reference to a SecretStore or ClusterSecretStore.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreRef {
    /// Name of the store.
    #[serde(default)]
    pub name: String,
    /// Kind of the store; `SecretStore` when omitted.
    #[serde(default)]
    pub kind: StoreKind,
}

string_enum! {
    /// Kind of store a [`SecretStoreRef`] names.
    pub enum StoreKind default SecretStore {
        /// A namespaced SecretStore in the ExternalSecret's namespace.
        SecretStore = "SecretStore",
        /// A cluster-scoped ClusterSecretStore.
        ClusterSecretStore = "ClusterSecretStore",
    }
}

string_enum! {
    /// When an ExternalSecret is refreshed from its provider.
    pub enum RefreshPolicy default Periodic {
        /// Once, when the ExternalSecret is created (or its status is lost).
        CreatedOnce = "CreatedOnce",
        /// Every `refreshInterval`, and on changes of the ExternalSecret.
        Periodic = "Periodic",
        /// Only when the ExternalSecret's spec, labels or annotations change.
        OnChange = "OnChange",
    }
}

/// `spec.target`: the Secret written and its ownership.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTarget {
    /// Name of the Secret; the ExternalSecret's name when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether and how the Secret is created and owned.
    #[serde(default)]
    pub creation_policy: CreationPolicy,
    /// What happens to the Secret when the provider has no data any more.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Makes the written Secret immutable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub immutable: bool,
    /// Shape of the Secret built from the fetched values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,
    /// A non-Secret target kind (ESO "generic targets"); gitseal only writes Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestReference>,
}

/// `spec.target.manifest`: the kind of a generic (non-Secret) target.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestReference {
    /// API version of the target, e.g. `v1`.
    #[serde(default)]
    pub api_version: String,
    /// Kind of the target, e.g. `ConfigMap`.
    #[serde(default)]
    pub kind: String,
}

string_enum! {
    /// `target.creationPolicy`.
    pub enum CreationPolicy default Owner {
        /// Create or update the Secret and own it (ownerReference to the ExternalSecret).
        Owner = "Owner",
        /// Create or update the Secret without owning it.
        Orphan = "Orphan",
        /// Only merge into an existing Secret; never create it.
        Merge = "Merge",
        /// Write nothing.
        None = "None",
        /// Create when missing, otherwise merge, without owning it (ESO 2.8+).
        CreateOrMerge = "CreateOrMerge",
    }
}

string_enum! {
    /// `target.deletionPolicy`: what to do when the provider returns no data.
    pub enum DeletionPolicy default Retain {
        /// Keep the Secret as it is.
        Retain = "Retain",
        /// Delete the Secret (only allowed with `creationPolicy: Owner`).
        Delete = "Delete",
        /// Remove the managed keys but keep the Secret.
        Merge = "Merge",
    }
}

/// `target.template`: how the Secret is rendered from the fetched values.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTemplate {
    /// The Secret's `type`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Template engine version; only `v2` exists (the CRD default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// Labels, annotations and finalizers of the Secret (templated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ExternalSecretTemplateMetadata>,
    /// Whether the raw fetched keys are written next to the templated ones.
    #[serde(default)]
    pub merge_policy: TemplateMergePolicy,
    /// Secret key → Go template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Templates read from ConfigMaps, Secrets or literals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_from: Vec<TemplateFrom>,
}

/// `template.metadata`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTemplateMetadata {
    /// Labels of the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations of the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Finalizers of the Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

string_enum! {
    /// `template.mergePolicy`.
    pub enum TemplateMergePolicy default Replace {
        /// Only the templated keys land in the Secret.
        Replace = "Replace",
        /// The fetched keys are written too; templated keys win.
        Merge = "Merge",
    }
}

/// One `template.templateFrom[]` entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateFrom {
    /// Templates from a ConfigMap in the ExternalSecret's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<TemplateRef>,
    /// Templates from a Secret in the ExternalSecret's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<TemplateRef>,
    /// Where the rendered output goes: `Data` (default), `Annotations` or `Labels`
    /// (case-insensitive for Secret targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// An inline template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
    /// How the values of a `secret` source are decoded before use (ESO 1.x+), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_decoding_strategy: Option<String>,
}

/// A ConfigMap or Secret holding templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    /// Name of the ConfigMap or Secret.
    #[serde(default)]
    pub name: String,
    /// The keys used as templates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<TemplateRefItem>,
}

/// One key of a [`TemplateRef`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRefItem {
    /// Key in the ConfigMap or Secret.
    #[serde(default)]
    pub key: String,
    /// Whether the key holds one value template or a YAML map of keys and values.
    #[serde(default)]
    pub template_as: TemplateScope,
}

string_enum! {
    /// `templateFrom[].*.items[].templateAs`.
    pub enum TemplateScope default Values {
        /// The key's content is the template of one value, written under the same key.
        Values = "Values",
        /// The key's content renders to a YAML map of keys and values.
        KeysAndValues = "KeysAndValues",
    }
}

/// One `spec.data[]` entry: a remote value written under `secret_key`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretData {
    /// Key in the Secret (`^[-._a-zA-Z0-9]+$`, at most 253 characters).
    #[serde(default)]
    pub secret_key: String,
    /// The remote value.
    #[serde(default)]
    pub remote_ref: ExternalSecretDataRemoteRef,
    /// Another store for this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<StoreSourceRef>,
}

/// A remote secret (and optionally one property of it).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretDataRemoteRef {
    /// Provider path or name of the secret.
    #[serde(default)]
    pub key: String,
    /// A property of the secret (exact top-level key, else a gjson path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// A version of the secret (Vault KV v2 version, AWS version stage or `uuid/<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How values are decoded.
    #[serde(default)]
    pub decoding_strategy: DecodingStrategy,
    /// How keys are converted.
    #[serde(default)]
    pub conversion_strategy: ConversionStrategy,
    /// Whether the provider's metadata is read instead of the value.
    #[serde(default)]
    pub metadata_policy: MetadataPolicy,
    /// What to do with values containing NUL bytes: `Ignore` or `Fail` (ESO 2.3+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<String>,
}

string_enum! {
    /// `decodingStrategy`.
    pub enum DecodingStrategy default None {
        /// Values are used as fetched.
        None = "None",
        /// Values are standard base64.
        Base64 = "Base64",
        /// Values are URL-safe base64.
        Base64URL = "Base64URL",
        /// Standard base64, else URL-safe base64, else as fetched.
        Auto = "Auto",
    }
}

string_enum! {
    /// `conversionStrategy` (applies to keys).
    pub enum ConversionStrategy default Default {
        /// Characters outside `[-._a-zA-Z0-9]` (Unicode letters and digits allowed) become `_`.
        Default = "Default",
        /// Such characters become `_UXXXX_`.
        Unicode = "Unicode",
    }
}

string_enum! {
    /// `metadataPolicy`.
    pub enum MetadataPolicy default None {
        /// Read the secret's value.
        None = "None",
        /// Read the secret's metadata (Vault custom_metadata, AWS tags).
        Fetch = "Fetch",
    }
}

/// One `spec.dataFrom[]` entry: exactly one of `extract`, `find` or `sourceRef.generatorRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretDataFromRemoteRef {
    /// One remote secret whose JSON object is split into keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<ExternalSecretDataRemoteRef>,
    /// Many remote secrets, found by path, name or tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<ExternalSecretFind>,
    /// Key rewrites applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<ExternalSecretRewrite>,
    /// Another store, or a generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<StoreGeneratorSourceRef>,
}

/// `dataFrom[].find`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretFind {
    /// Path prefix searched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Name filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<FindName>,
    /// Tags every secret found must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// How keys are converted.
    #[serde(default)]
    pub conversion_strategy: ConversionStrategy,
    /// How values are decoded.
    #[serde(default)]
    pub decoding_strategy: DecodingStrategy,
    /// What to do with values containing NUL bytes: `Ignore` or `Fail` (ESO 2.3+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<String>,
}

/// `find.name`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FindName {
    /// An unanchored RE2 regular expression on secret names.
    #[serde(default)]
    pub regexp: String,
}

/// One `dataFrom[].rewrite[]` step: exactly one of `regexp`, `transform` or `merge`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretRewrite {
    /// Regular-expression replacement on key names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<RewriteRegexp>,
    /// Go template on key names (`.value` is the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<RewriteTransform>,
    /// Merge of JSON values (ESO 1.0+), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<Value>,
}

/// `rewrite[].regexp`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RewriteRegexp {
    /// The regular expression.
    #[serde(default)]
    pub source: String,
    /// The replacement (`$1` refers to groups).
    #[serde(default)]
    pub target: String,
}

/// `rewrite[].transform`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RewriteTransform {
    /// The Go template.
    #[serde(default)]
    pub template: String,
}

/// `data[].sourceRef`: another store for one entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoreSourceRef {
    /// The store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<SecretStoreRef>,
    /// A generator (deprecated in `data`, not implemented by ESO there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// `dataFrom[].sourceRef`: another store or a generator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoreGeneratorSourceRef {
    /// The store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<SecretStoreRef>,
    /// The generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// A generator resource (`generators.external-secrets.io`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorRef {
    /// API version of the generator; the CRD defaults it to `generators.external-secrets.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the generator, e.g. `Password`.
    #[serde(default)]
    pub kind: String,
    /// Name of the generator.
    #[serde(default)]
    pub name: String,
}

/// Observed state of an ExternalSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretStatus {
    /// When the provider was last read successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<Time>,
    /// `<generation>-<hash of labels and annotations>` of the last synced version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_resource_version: Option<String>,
    /// The conditions; the controller keeps one, of type `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ExternalSecretCondition>,
    /// The Secret written (servicebinding.io binding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<SecretBinding>,
}

/// `status.binding`: a reference to the written Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretBinding {
    /// Name of the Secret.
    #[serde(default)]
    pub name: String,
}

/// One condition of an ExternalSecret, SecretStore, ClusterSecretStore or
/// ClusterExternalSecret (ESO's shape: no `lastUpdateTime`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretCondition {
    /// Condition type: `Ready` (ExternalSecrets also have `Deleted`).
    #[serde(rename = "type", default)]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[serde(default)]
    pub status: String,
    /// Machine-readable reason, e.g. `SecretSynced`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message, e.g. `secret synced`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// CEL rules of `spec` (ExternalSecret and ClusterExternalSecret `externalSecretSpec`),
/// `(rule, message)`, with ESO's webhook messages.
pub(crate) const SPEC_RULES: &[(&str, &str)] = &[
    (
        "(has(self.data) && size(self.data) > 0) || (has(self.dataFrom) && size(self.dataFrom) > 0)",
        "either data or dataFrom should be specified",
    ),
    (
        "!has(self.data) || (has(self.target) && has(self.target.deletionPolicy) && self.target.deletionPolicy != 'Retain') || self.data.all(d, self.data.exists_one(e, e.secretKey == d.secretKey))",
        "duplicate secretKey found",
    ),
];

/// CEL rules of `spec.target`.
pub(crate) const TARGET_RULES: &[(&str, &str)] = &[
    (
        "!(has(self.deletionPolicy) && self.deletionPolicy == 'Delete' && has(self.creationPolicy) && self.creationPolicy in ['Merge', 'None', 'CreateOrMerge'])",
        "deletionPolicy=Delete must not be used when the controller doesn't own the secret. Please set creationPolicy=Owner",
    ),
    (
        "!(has(self.deletionPolicy) && self.deletionPolicy == 'Merge' && has(self.creationPolicy) && self.creationPolicy == 'None')",
        "deletionPolicy=Merge must not be used with creationPolicy=None. There is no Secret to merge with",
    ),
    (
        "!has(self.template) || !has(self.template.templateFrom) || (has(self.manifest) && !(self.manifest.apiVersion == 'v1' && self.manifest.kind == 'Secret')) || self.template.templateFrom.all(t, !has(t.target) || t.target == '' || t.target.lowerAscii() in ['data', 'annotations', 'labels'])",
        "templateFrom target is not allowed when targeting a Secret, must be one of \"Data\", \"Annotations\" or \"Labels\"",
    ),
];

/// CEL rules of `spec.target.template`.
pub(crate) const TEMPLATE_RULES: &[(&str, &str)] = &[
    (
        "!has(self.type) || self.type != 'bootstrap.kubernetes.io/token'",
        "template.type=\"bootstrap.kubernetes.io/token\" is not allowed",
    ),
    (
        "!has(self.type) || self.type != 'kubernetes.io/service-account-token' || !has(self.metadata) || !has(self.metadata.annotations) || !('kubernetes.io/service-account.name' in self.metadata.annotations)",
        "template.type=\"kubernetes.io/service-account-token\" with annotation \"kubernetes.io/service-account.name\" is not allowed",
    ),
    (
        "!has(self.type) || self.type != 'kubernetes.io/service-account-token' || !has(self.templateFrom) || !self.templateFrom.exists(t, has(t.target) && t.target.lowerAscii() == 'annotations')",
        "template.type=\"kubernetes.io/service-account-token\" with templateFrom target=\"Annotations\" is not allowed",
    ),
];

/// CEL rules of each `spec.dataFrom[]` entry.
pub(crate) const DATA_FROM_RULES: &[(&str, &str)] = &[
    (
        "has(self.extract) || has(self.find) || has(self.sourceRef)",
        "either extract, find, or sourceRef must be set to dataFrom",
    ),
    (
        "(has(self.extract) ? 1 : 0) + (has(self.find) ? 1 : 0) + ((has(self.sourceRef) && has(self.sourceRef.generatorRef)) ? 1 : 0) <= 1",
        "extract, find, or generatorRef cannot be set at the same time",
    ),
];

/// CEL rule of `dataFrom[].sourceRef`.
pub(crate) const SOURCE_REF_RULES: &[(&str, &str)] = &[(
    "has(self.storeRef) || has(self.generatorRef)",
    "generatorRef or storeRef must be set when using sourceRef in dataFrom",
)];

/// CEL rule of each `dataFrom[].rewrite[]` step.
pub(crate) const REWRITE_RULES: &[(&str, &str)] = &[(
    "(has(self.regexp) ? 1 : 0) + (has(self.transform) ? 1 : 0) + (has(self.merge) ? 1 : 0) == 1",
    "exactly one of regexp, transform or merge must be set in a rewrite",
)];

/// The ExternalSecret CRD: `v1` (storage) and `v1beta1` (served), ESO's schema with
/// defaults, enums and printer columns, ESO's webhook checks as CEL rules.
pub fn external_secret_crd() -> CustomResourceDefinition {
    eso_crd(
        ExternalSecret::crd(),
        root(
            "ExternalSecret is the Schema for the external-secrets API.",
            external_secret_spec_schema(),
            external_secret_status_schema(),
        ),
    )
}

fn store_ref_schema() -> Value {
    object(
        "SecretStoreRef defines which SecretStore to fetch the ExternalSecret data.",
        json!({
            "name": dns_name("Name of the SecretStore resource"),
            "kind": enumeration(
                "Kind of the SecretStore resource (SecretStore or ClusterSecretStore). Defaults to `SecretStore`",
                StoreKind::VALUES,
                Some("SecretStore"),
            )
        }),
        &[],
    )
}

fn generator_ref_schema() -> Value {
    object(
        "GeneratorRef points to a generator custom resource.",
        json!({
            "apiVersion": string_default(
                "Specify the apiVersion of the generator resource",
                "generators.external-secrets.io/v1alpha1",
            ),
            "kind": string("Specify the Kind of the generator resource"),
            "name": dns_name("Specify the name of the generator resource")
        }),
        &["kind", "name"],
    )
}

fn strategies(props: &mut Value, find: bool) {
    props["conversionStrategy"] = enumeration(
        "Used to define a conversion Strategy",
        ConversionStrategy::VALUES,
        Some("Default"),
    );
    props["decodingStrategy"] = enumeration(
        "Used to define a decoding Strategy",
        DecodingStrategy::VALUES,
        Some("None"),
    );
    props["nullBytePolicy"] = enumeration(
        "Controls how values containing NUL bytes are handled.",
        &["Ignore", "Fail"],
        None,
    );
    if !find {
        props["metadataPolicy"] = enumeration(
            "Policy for fetching tags/labels from provider secrets, possible options are Fetch, None. Defaults to None",
            MetadataPolicy::VALUES,
            Some("None"),
        );
    }
}

fn remote_ref_schema() -> Value {
    let mut props = json!({
        "key": string("Key is the key used in the Provider, mandatory"),
        "property": string("Used to select a specific property of the Provider value (if a map), if supported"),
        "version": string("Used to select a specific version of the Provider value, if supported")
    });
    strategies(&mut props, false);
    object(
        "ExternalSecretDataRemoteRef defines Provider data location.",
        props,
        &["key"],
    )
}

fn find_schema() -> Value {
    let mut props = json!({
        "path": string("A root path to start the find operations."),
        "name": object(
            "Finds secrets based on the name.",
            json!({"regexp": string("Finds secrets base")}),
            &[],
        ),
        "tags": string_map("Find secrets based on tags.")
    });
    strategies(&mut props, true);
    object(
        "Used to find secrets based on tags or regular expressions",
        props,
        &[],
    )
}

fn rewrite_schema() -> Value {
    rules(
        object(
            "ExternalSecretRewrite defines how to rewrite secret data keys.",
            json!({
                "regexp": object(
                    "Used to rewrite with regular expressions.",
                    json!({
                        "source": string("Used to define the regular expression of a re.Compiler."),
                        "target": string("Used to define the target pattern of a ReplaceAll operation.")
                    }),
                    &["source", "target"],
                ),
                "transform": object(
                    "Used to apply string transformation on the secrets.",
                    json!({"template": string("Used to define the template to apply on the secret name. `.value ` will specify the secret name in the template.")}),
                    &["template"],
                ),
                "merge": opaque("Used to merge key/values in one single Secret")
            }),
            &[],
        ),
        REWRITE_RULES,
    )
}

fn template_ref_schema(description: &str) -> Value {
    object(
        description,
        json!({
            "name": dns_name("The name of the ConfigMap/Secret resource"),
            "items": list(
                "A list of keys in the ConfigMap/Secret to use as templates for Secret data",
                object(
                    "TemplateRefItem specifies a key in the ConfigMap/Secret to use as a template for Secret data.",
                    json!({
                        "key": string("A key in the ConfigMap/Secret"),
                        "templateAs": enumeration("", TemplateScope::VALUES, Some("Values"))
                    }),
                    &["key"],
                ),
            )
        }),
        &["items", "name"],
    )
}

fn template_schema() -> Value {
    rules(
        object(
            "Template defines a blueprint for the created Secret resource.",
            json!({
                "type": string("The Secret's type"),
                "engineVersion": enumeration(
                    "EngineVersion specifies the template engine version that should be used to compile/execute the template specified in .data and .templateFrom[].",
                    &["v2"],
                    Some("v2"),
                ),
                "mergePolicy": enumeration("", TemplateMergePolicy::VALUES, Some("Replace")),
                "metadata": object(
                    "ExternalSecretTemplateMetadata defines metadata fields for the Secret blueprint.",
                    json!({
                        "annotations": string_map(""),
                        "labels": string_map(""),
                        "finalizers": string_list("")
                    }),
                    &[],
                ),
                "data": string_map(""),
                "templateFrom": with(
                    list(
                        "",
                        object(
                            "TemplateFrom specifies a source for templates.",
                            json!({
                                "configMap": template_ref_schema("TemplateRef specifies a reference to either a ConfigMap or a Secret resource."),
                                "secret": template_ref_schema("TemplateRef specifies a reference to either a ConfigMap or a Secret resource."),
                                "literal": string(""),
                                "target": with(
                                    string_default(
                                        "Target specifies where to place the template result: Data, Annotations or Labels.",
                                        "Data",
                                    ),
                                    "maxLength",
                                    json!(253),
                                ),
                                "valuesDecodingStrategy": string("Decoding strategy of the values of a Secret source.")
                            }),
                            &[],
                        ),
                    ),
                    "maxItems",
                    json!(MAX_LIST_ITEMS),
                )
            }),
            &[],
        ),
        TEMPLATE_RULES,
    )
}

fn target_schema() -> Value {
    let target = object(
        "ExternalSecretTarget defines the Kubernetes Secret to be created. There can be only one target per ExternalSecret.",
        json!({
            "name": dns_name("The name of the Secret resource to be managed. Defaults to the .metadata.name of the ExternalSecret resource"),
            "creationPolicy": enumeration(
                "CreationPolicy defines rules on how to create the resulting Secret. Defaults to \"Owner\"",
                CreationPolicy::VALUES,
                Some("Owner"),
            ),
            "deletionPolicy": enumeration(
                "DeletionPolicy defines rules on how to delete the resulting Secret. Defaults to \"Retain\"",
                DeletionPolicy::VALUES,
                Some("Retain"),
            ),
            "immutable": boolean("Immutable defines if the final secret will be immutable"),
            "template": template_schema(),
            "manifest": object(
                "Manifest defines a custom Kubernetes resource to create instead of a Secret.",
                json!({
                    "apiVersion": string("APIVersion of the target resource (e.g., \"v1\" for ConfigMap)"),
                    "kind": string("Kind of the target resource (e.g., \"ConfigMap\")")
                }),
                &["apiVersion", "kind"],
            )
        }),
        &[],
    );
    with(
        rules(target, TARGET_RULES),
        "default",
        json!({"creationPolicy": "Owner", "deletionPolicy": "Retain"}),
    )
}

/// The schema of an ExternalSecret's `spec` (shared with ClusterExternalSecret).
pub(crate) fn external_secret_spec_schema() -> Value {
    let data_item = object(
        "ExternalSecretData defines the connection between the Kubernetes Secret key (spec.data.<key>) and the Provider data.",
        json!({
            "secretKey": {
                "type": "string",
                "description": "The key in the Kubernetes Secret to store the value.",
                "minLength": 1,
                "maxLength": 253,
                "pattern": "^[-._a-zA-Z0-9]+$"
            },
            "remoteRef": remote_ref_schema(),
            "sourceRef": object(
                "SourceRef allows you to override the source from which the value will be pulled.",
                json!({
                    "storeRef": store_ref_schema(),
                    "generatorRef": generator_ref_schema()
                }),
                &[],
            )
        }),
        &["remoteRef", "secretKey"],
    );
    let data_from_item = rules(
        object(
            "ExternalSecretDataFromRemoteRef defines bulk sources of data.",
            json!({
                "extract": remote_ref_schema(),
                "find": find_schema(),
                "rewrite": with(
                    list(
                        "Used to rewrite secret Keys after getting them from the secret Provider. Multiple Rewrite operations can be provided. They are applied in a layered order (first to last)",
                        rewrite_schema(),
                    ),
                    "maxItems",
                    json!(MAX_LIST_ITEMS),
                ),
                "sourceRef": rules(
                    object(
                        "SourceRef points to a store or generator which contains secret values ready to use.",
                        json!({
                            "storeRef": store_ref_schema(),
                            "generatorRef": generator_ref_schema()
                        }),
                        &[],
                    ),
                    SOURCE_REF_RULES,
                )
            }),
            &[],
        ),
        DATA_FROM_RULES,
    );
    rules(
        object(
            "ExternalSecretSpec defines the desired state of ExternalSecret.",
            json!({
                "secretStoreRef": store_ref_schema(),
                "target": target_schema(),
                "refreshInterval": string_default(
                    "RefreshInterval is the amount of time before the values are read again from the SecretStore provider, specified as Golang Duration strings. Valid time units are \"ns\", \"us\" (or \"µs\"), \"ms\", \"s\", \"m\", \"h\". Example values: \"1h0m0s\", \"2h30m\", \"10m\". May be set to \"0s\" to fetch and create it once. Defaults to 1h0m0s.",
                    "1h0m0s",
                ),
                "refreshPolicy": enumeration(
                    "RefreshPolicy determines how the ExternalSecret should be refreshed: CreatedOnce, Periodic or OnChange.",
                    RefreshPolicy::VALUES,
                    None,
                ),
                "syncWindows": opaque("SyncWindows restricts when periodic refreshes may run."),
                "data": with(
                    list("Data defines the connection between the Kubernetes Secret keys and the Provider data", data_item),
                    "maxItems",
                    json!(MAX_DATA_ITEMS),
                ),
                "dataFrom": with(
                    list(
                        "DataFrom is used to fetch all properties from a specific Provider data. If multiple entries are specified, the Secret keys are merged in the specified order",
                        data_from_item,
                    ),
                    "maxItems",
                    json!(MAX_LIST_ITEMS),
                )
            }),
            &[],
        ),
        SPEC_RULES,
    )
}

/// The schema of a condition list entry (all ESO kinds).
pub(crate) fn condition_schema() -> Value {
    object(
        "A status condition.",
        json!({
            "type": string(""),
            "status": string(""),
            "reason": string(""),
            "message": string(""),
            "lastTransitionTime": time("")
        }),
        &["status", "type"],
    )
}

fn external_secret_status_schema() -> Value {
    object(
        "ExternalSecretStatus defines the observed state of ExternalSecret.",
        json!({
            "refreshTime": time("refreshTime is the time and date the external secret was fetched and the target secret updated"),
            "syncedResourceVersion": string("SyncedResourceVersion keeps track of the last synced version"),
            "conditions": list("", condition_schema()),
            "binding": object(
                "Binding represents a servicebinding.io Provisioned Service reference to the secret",
                json!({"name": string_default("Name of the referent.", "")}),
                &[],
            )
        }),
        &[],
    )
}
