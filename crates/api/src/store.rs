//! The `external-secrets.io/v1` SecretStore (namespaced) and ClusterSecretStore
//! (cluster-scoped) custom resources, with the Vault and AWS providers typed and every
//! other ESO provider kept as an opaque object.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{ClusterResourceScope, object::HasSpec, object::HasStatus};
use kube::{CustomResource, CustomResourceExt, Resource};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::eso_schema::{
    boolean, enumeration, eso_crd, integer, label_selector, list, object, opaque, root, rules,
    string, string_default, string_enum, string_list, string_map, with,
};
use crate::external_secret::{ExternalSecretCondition, condition_schema};

/// How to reach a secrets provider; shared by SecretStore and ClusterSecretStore.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "SecretStore",
    namespaced,
    status = "SecretStoreStatus",
    shortname = "ss",
    category = "external-secrets",
    schema = "disabled",
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Capabilities","type":"string","jsonPath":".status.capabilities"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreSpec {
    /// Controller class: the store is used only if empty or equal to the controller's class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// The provider (exactly one).
    #[serde(default)]
    pub provider: SecretStoreProvider,
    /// HTTP-client retries towards the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<SecretStoreRetrySettings>,
    /// Store re-validation period: seconds, or (ESO 2.8+) a Go duration string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<IntOrString>,
    /// ClusterSecretStore only: the namespaces allowed to use the store (any match suffices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterSecretStoreCondition>,
}

/// `spec.provider`: Vault and AWS typed, any other ESO provider kept as given so that its
/// manifests still apply and the controller can report "provider not supported".
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreProvider {
    /// HashiCorp Vault (KV v1/v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultProvider>,
    /// AWS Secrets Manager / Parameter Store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsProvider>,
    /// Every other provider (`gcpsm`, `azurekv`, `kubernetes`, ...), by its field name.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl SecretStoreProvider {
    /// The field name of the configured provider (`vault`, `aws`, or another ESO name);
    /// the first one if several are set, `None` if none is.
    pub fn name(&self) -> Option<&str> {
        if self.vault.is_some() {
            Some("vault")
        } else if self.aws.is_some() {
            Some("aws")
        } else {
            self.other.keys().next().map(String::as_str)
        }
    }
}

/// `spec.retrySettings`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreRetrySettings {
    /// Most retries of one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
    /// Go duration between retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<String>,
}

/// One `spec.conditions[]` entry of a ClusterSecretStore.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStoreCondition {
    /// Namespaces whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces whose name matches one of these unanchored RE2 expressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_regexes: Vec<String>,
}

/// Observed state of a store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreStatus {
    /// The conditions; the controller keeps one, of type `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ExternalSecretCondition>,
    /// `ReadOnly`, `WriteOnly` or `ReadWrite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<String>,
}

/// A key of a Secret (ESO's `SecretKeySelector`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// Name of the Secret.
    #[serde(default)]
    pub name: String,
    /// Namespace of the Secret: only honoured on a ClusterSecretStore; on a SecretStore it
    /// must be absent or the store's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Key in the Secret; some fields have a default key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A ServiceAccount whose token is requested (ESO's `ServiceAccountSelector`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSelector {
    /// Name of the ServiceAccount.
    #[serde(default)]
    pub name: String,
    /// Namespace of the ServiceAccount (ClusterSecretStore only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Audiences of the requested token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
}

/// Message of ESO's `ValidateReferentSecretSelector` when a namespaced SecretStore
/// names a Secret in another namespace.
pub const ERR_NAMESPACE_NOT_ALLOWED: &str = "namespace should either be empty or match the namespace of the SecretStore for a namespaced SecretStore";

/// ESO's referent-selector check: a namespaced SecretStore (`cluster_scoped == false`)
/// may only name its own namespace. A CRD rule cannot see the object's namespace, so the
/// controller applies this check (with [`ERR_NAMESPACE_NOT_ALLOWED`]) to every Secret,
/// ServiceAccount and CA reference of a SecretStore.
pub fn validate_referent_namespace(
    cluster_scoped: bool,
    store_namespace: Option<&str>,
    ref_namespace: Option<&str>,
) -> Result<(), &'static str> {
    match ref_namespace {
        Some(ns) if !cluster_scoped && Some(ns) != store_namespace => {
            Err(ERR_NAMESPACE_NOT_ALLOWED)
        }
        _ => Ok(()),
    }
}

/// `provider.vault`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VaultProvider {
    /// Vault address, e.g. `https://vault.example.com:8200`.
    #[serde(default)]
    pub server: String,
    /// KV mount path, e.g. `secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// KV engine version; `v2` when omitted.
    #[serde(default)]
    pub version: VaultKvVersion,
    /// Vault Enterprise namespace (`X-Vault-Namespace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// PEM CA bundle, base64 as in the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// CA certificate read from a Secret or ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CaProvider>,
    /// How to log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<VaultAuth>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Client certificate for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<VaultClientTls>,
    /// Enterprise: keep `X-Vault-Index` between requests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_your_writes: bool,
    /// Enterprise: send `X-Vault-Inconsistent: forward-active-node`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forward_inconsistent: bool,
    /// PushSecret check-and-set settings, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_and_set: Option<Value>,
}

string_enum! {
    /// `vault.version`.
    pub enum VaultKvVersion default V2 {
        /// KV version 1.
        V1 = "v1",
        /// KV version 2.
        V2 = "v2",
    }
}

/// `vault.caProvider`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CaProvider {
    /// Where the CA is read from.
    #[serde(rename = "type", default)]
    pub type_: CaProviderType,
    /// Name of the Secret or ConfigMap.
    #[serde(default)]
    pub name: String,
    /// Key holding the CA.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Namespace of the object (ClusterSecretStore only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

string_enum! {
    /// `caProvider.type`.
    pub enum CaProviderType default Secret {
        /// A Secret.
        Secret = "Secret",
        /// A ConfigMap.
        ConfigMap = "ConfigMap",
    }
}

/// `vault.tls`: the client certificate of mutual TLS.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VaultClientTls {
    /// Secret with the certificate (default key `tls.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<SecretKeySelector>,
    /// Secret with the private key (default key `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret_ref: Option<SecretKeySelector>,
}

/// `vault.auth`: exactly one login method.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VaultAuth {
    /// Vault namespace used only for the login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A static token in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeySelector>,
    /// AppRole login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role: Option<VaultAppRole>,
    /// Kubernetes login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<VaultKubernetesAuth>,
    /// JWT/OIDC login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<VaultJwtAuth>,
    /// TLS certificate login, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<Value>,
    /// Username/password login, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_pass: Option<Value>,
    /// LDAP login, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<Value>,
    /// AWS IAM login, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<Value>,
    /// GCP login, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<Value>,
}

fn default_approle_path() -> String {
    "approle".to_owned()
}
fn default_kubernetes_path() -> String {
    "kubernetes".to_owned()
}
fn default_jwt_path() -> String {
    "jwt".to_owned()
}

/// `auth.appRole`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VaultAppRole {
    /// Mount path of the AppRole method; `approle` when omitted.
    #[serde(default = "default_approle_path")]
    pub path: String,
    /// The role id, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    /// The role id, from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_ref: Option<SecretKeySelector>,
    /// The secret id, from a Secret.
    #[serde(default)]
    pub secret_ref: SecretKeySelector,
}

impl Default for VaultAppRole {
    fn default() -> Self {
        Self {
            path: default_approle_path(),
            role_id: None,
            role_ref: None,
            secret_ref: SecretKeySelector::default(),
        }
    }
}

/// `auth.kubernetes`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetesAuth {
    /// Mount path of the Kubernetes method; `kubernetes` when omitted.
    #[serde(default = "default_kubernetes_path")]
    pub mount_path: String,
    /// Vault role.
    #[serde(default)]
    pub role: String,
    /// ServiceAccount whose token is requested for the login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
    /// Secret holding a token (default key `token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
}

impl Default for VaultKubernetesAuth {
    fn default() -> Self {
        Self {
            mount_path: default_kubernetes_path(),
            role: String::new(),
            service_account_ref: None,
            secret_ref: None,
        }
    }
}

/// `auth.jwt`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VaultJwtAuth {
    /// Mount path of the JWT method; `jwt` when omitted.
    #[serde(default = "default_jwt_path")]
    pub path: String,
    /// Vault role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Secret holding the JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
    /// A ServiceAccount token requested for the login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_service_account_token: Option<VaultKubernetesServiceAccountTokenAuth>,
}

impl Default for VaultJwtAuth {
    fn default() -> Self {
        Self {
            path: default_jwt_path(),
            role: None,
            secret_ref: None,
            kubernetes_service_account_token: None,
        }
    }
}

/// `auth.jwt.kubernetesServiceAccountToken`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetesServiceAccountTokenAuth {
    /// The ServiceAccount.
    #[serde(default)]
    pub service_account_ref: ServiceAccountSelector,
    /// Deprecated: audiences (default `["vault"]`); use `serviceAccountRef.audiences`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Deprecated: token lifetime in seconds (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_seconds: Option<i64>,
}

/// `provider.aws`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AwsProvider {
    /// The AWS service.
    #[serde(default)]
    pub service: AwsServiceType,
    /// AWS region.
    #[serde(default)]
    pub region: String,
    /// Role ARN assumed (after `additionalRoles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Roles assumed in a chain before `role`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_roles: Vec<String>,
    /// External id of the AssumeRole call.
    #[serde(
        rename = "externalID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    /// Session tags of the AssumeRole call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_tags: Vec<AwsTag>,
    /// Transitive session tag keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    /// `None`, `Simple` or `Custom` (ESO 2.x), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_tags_policy: Option<String>,
    /// Tags added with `sessionTagsPolicy: Custom`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_session_tags: BTreeMap<String, String>,
    /// Prefix of every remote key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Credentials; the SDK default chain when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AwsAuth>,
    /// Secrets Manager options (PushSecret deletes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<AwsSecretsManager>,
}

string_enum! {
    /// `aws.service`.
    pub enum AwsServiceType default SecretsManager {
        /// AWS Secrets Manager.
        SecretsManager = "SecretsManager",
        /// AWS Systems Manager Parameter Store.
        ParameterStore = "ParameterStore",
        /// AWS Certificate Manager.
        CertificateManager = "CertificateManager",
    }
}

/// An AWS tag.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AwsTag {
    /// Tag key.
    #[serde(default)]
    pub key: String,
    /// Tag value.
    #[serde(default)]
    pub value: String,
}

/// `aws.auth`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuth {
    /// Static credentials from Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<AwsAuthSecretRef>,
    /// IRSA: web identity of a ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<AwsJwtAuth>,
}

/// `aws.auth.secretRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsAuthSecretRef {
    /// The access key id.
    #[serde(rename = "accessKeyIDSecretRef", default)]
    pub access_key_id_secret_ref: SecretKeySelector,
    /// The secret access key.
    #[serde(rename = "secretAccessKeySecretRef", default)]
    pub secret_access_key_secret_ref: SecretKeySelector,
    /// The session token, for temporary credentials.
    #[serde(
        rename = "sessionTokenSecretRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub session_token_secret_ref: Option<SecretKeySelector>,
}

/// `aws.auth.jwt`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AwsJwtAuth {
    /// The ServiceAccount (annotated with `eks.amazonaws.com/role-arn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
}

/// `aws.secretsManager`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretsManager {
    /// Delete without a recovery window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_delete_without_recovery: bool,
    /// Recovery window of deletes, in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_window_in_days: Option<i64>,
}

/// A cluster-wide store, usable from every namespace its `spec.conditions` allow.
///
/// Same spec and status as [`SecretStore`]; a secret reference without `namespace` is
/// "referent authentication" (read in each consuming ExternalSecret's namespace).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ClusterSecretStore {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// How to reach the provider.
    #[serde(default)]
    pub spec: SecretStoreSpec,
    /// Observed state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SecretStoreStatus>,
}

impl ClusterSecretStore {
    /// A ClusterSecretStore with the given name and spec.
    pub fn new(name: &str, spec: SecretStoreSpec) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }
}

/// The wire form of a ClusterSecretStore: with `apiVersion` and `kind`, like derived kinds.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterSecretStoreWire<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: &'a ObjectMeta,
    spec: &'a SecretStoreSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a SecretStoreStatus>,
}

impl Serialize for ClusterSecretStore {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ClusterSecretStoreWire {
            api_version: "external-secrets.io/v1",
            kind: "ClusterSecretStore",
            metadata: &self.metadata,
            spec: &self.spec,
            status: self.status.as_ref(),
        }
        .serialize(serializer)
    }
}

impl Resource for ClusterSecretStore {
    type DynamicType = ();
    type Scope = ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ClusterSecretStore".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "external-secrets.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "clustersecretstores".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl CustomResourceExt for ClusterSecretStore {
    /// The single-version CRD kube would derive (schema-less); the chart's CRD is
    /// [`cluster_secret_store_crd`].
    fn crd() -> CustomResourceDefinition {
        let mut crd = SecretStore::crd();
        crd.metadata.name = Some(Self::crd_name().to_owned());
        crd.spec.scope = "Cluster".to_owned();
        crd.spec.names.kind = "ClusterSecretStore".to_owned();
        crd.spec.names.plural = "clustersecretstores".to_owned();
        crd.spec.names.singular = Some("clustersecretstore".to_owned());
        crd.spec.names.short_names = Some(vec!["css".to_owned()]);
        crd
    }
    fn crd_name() -> &'static str {
        "clustersecretstores.external-secrets.io"
    }
    fn api_resource() -> kube::core::ApiResource {
        kube::core::ApiResource::erase::<Self>(&())
    }
    fn shortnames() -> &'static [&'static str] {
        &["css"]
    }
}

impl HasSpec for ClusterSecretStore {
    type Spec = SecretStoreSpec;
    fn spec(&self) -> &SecretStoreSpec {
        &self.spec
    }
    fn spec_mut(&mut self) -> &mut SecretStoreSpec {
        &mut self.spec
    }
}

impl HasStatus for ClusterSecretStore {
    type Status = SecretStoreStatus;
    fn status(&self) -> Option<&SecretStoreStatus> {
        self.status.as_ref()
    }
    fn status_mut(&mut self) -> &mut Option<SecretStoreStatus> {
        &mut self.status
    }
}

/// CEL rule of `spec.provider` (with `minProperties`/`maxProperties: 1`, which also count
/// providers gitseal does not model).
pub(crate) const PROVIDER_RULES: &[(&str, &str)] = &[(
    "!(has(self.vault) && has(self.aws))",
    "exactly one provider must be set",
)];

/// The SecretStore CRD: `v1` (storage) and `v1beta1` (served).
pub fn secret_store_crd() -> CustomResourceDefinition {
    eso_crd(
        SecretStore::crd(),
        root(
            "SecretStore represents a secure external location for storing secrets, which can be referenced as part of `storeRef` fields.",
            store_spec_schema(),
            store_status_schema(),
        ),
    )
}

/// The ClusterSecretStore CRD: the SecretStore one, cluster-scoped, short name `css`.
pub fn cluster_secret_store_crd() -> CustomResourceDefinition {
    eso_crd(
        ClusterSecretStore::crd(),
        root(
            "ClusterSecretStore represents a secure external location for storing secrets, which can be referenced as part of `storeRef` fields.",
            store_spec_schema(),
            store_status_schema(),
        ),
    )
}

fn secret_key_selector(description: &str) -> Value {
    object(
        description,
        json!({
            "name": {
                "type": "string", "minLength": 1, "maxLength": 253,
                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                "description": "The name of the Secret resource being referred to."
            },
            "namespace": {
                "type": "string", "minLength": 1, "maxLength": 63,
                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                "description": "The namespace of the Secret resource being referred to. Ignored if referent is not cluster-scoped, otherwise defaults to the namespace of the referent."
            },
            "key": {
                "type": "string", "minLength": 1, "maxLength": 253,
                "pattern": "^[-._a-zA-Z0-9]+$",
                "description": "A key in the referenced Secret. Some instances of this field may be defaulted, in others it may be required."
            }
        }),
        &[],
    )
}

fn service_account_selector(description: &str) -> Value {
    object(
        description,
        json!({
            "name": string("The name of the ServiceAccount resource being referred to."),
            "namespace": string("Namespace of the resource being referred to. Ignored if referent is not cluster-scoped, otherwise defaults to the namespace of the referent."),
            "audiences": string_list("Audience specifies the `aud` claim for the service account token.")
        }),
        &["name"],
    )
}

/// An auth method kept opaque but with its path default.
fn opaque_auth(description: &str, path_default: Option<&str>) -> Value {
    let mut v = opaque(description);
    if let Some(p) = path_default {
        v["properties"] =
            json!({"path": string_default("Path where the auth method is mounted in Vault.", p)});
    }
    v
}

fn vault_schema() -> Value {
    object(
        "Vault configures this store to sync secrets using Hashi provider",
        json!({
            "server": string("Server is the connection address for the Vault server, e.g: \"https://vault.example.com:8200\"."),
            "path": string("Path is the mount path of the Vault KV backend endpoint, e.g: \"secret\"."),
            "version": enumeration(
                "Version is the Vault KV secret engine version. Defaults to \"v2\".",
                VaultKvVersion::VALUES,
                Some("v2"),
            ),
            "namespace": string("Name of the vault namespace. Namespaces is a set of features within Vault Enterprise."),
            "caBundle": {"type": "string", "format": "byte", "description": "PEM encoded CA bundle used to validate Vault server certificate."},
            "caProvider": object(
                "The provider for the CA bundle to use to validate Vault server certificate.",
                json!({
                    "type": enumeration("The type of provider to use such as \"Secret\", or \"ConfigMap\".", CaProviderType::VALUES, None),
                    "name": string("The name of the object located at the provider type."),
                    "key": string("The key where the CA certificate can be found in the Secret or ConfigMap."),
                    "namespace": string("The namespace the Provider type is in. Can only be defined when used in a ClusterSecretStore.")
                }),
                &["name", "type"],
            ),
            "headers": string_map("Headers to be added in Vault request"),
            "tls": object(
                "The configuration used for client side related TLS communication.",
                json!({
                    "certSecretRef": secret_key_selector("CertSecretRef is a certificate added to the transport layer when communicating with the Vault server."),
                    "keySecretRef": secret_key_selector("KeySecretRef to a key in a Secret resource containing client private key.")
                }),
                &[],
            ),
            "readYourWrites": boolean("ReadYourWrites ensures isolated read-after-write semantics by providing discovered cluster replication states in each request."),
            "forwardInconsistent": boolean("ForwardInconsistent tells Vault to forward read-after-write requests to the Vault leader instead of simply retrying within a loop."),
            "checkAndSet": opaque("Check-And-Set settings for PushSecret."),
            "auth": object(
                "Auth configures how secret-manager authenticates with the Vault server.",
                json!({
                    "namespace": string("Name of the vault namespace to authenticate to."),
                    "tokenSecretRef": secret_key_selector("TokenSecretRef authenticates with Vault by presenting a token."),
                    "appRole": object(
                        "AppRole authenticates with Vault using the App Role auth mechanism.",
                        json!({
                            "path": string_default("Path where the App Role authentication backend is mounted in Vault, e.g: \"approle\"", "approle"),
                            "roleId": string("RoleID configured in the App Role authentication backend when setting up the authentication backend in Vault."),
                            "roleRef": secret_key_selector("Reference to a key in a Secret that contains the App Role ID."),
                            "secretRef": secret_key_selector("Reference to a key in a Secret that contains the App Role secret.")
                        }),
                        &["path", "secretRef"],
                    ),
                    "kubernetes": object(
                        "Kubernetes authenticates with Vault by passing the ServiceAccount token stored in the named Secret resource to the Vault server.",
                        json!({
                            "mountPath": string_default("Path where the Kubernetes authentication backend is mounted in Vault, e.g: \"kubernetes\"", "kubernetes"),
                            "role": string("A required field containing the Vault Role to assume."),
                            "serviceAccountRef": service_account_selector("Optional service account field containing the name of a kubernetes ServiceAccount."),
                            "secretRef": secret_key_selector("Optional secret field containing a Kubernetes ServiceAccount JWT used for authenticating with Vault.")
                        }),
                        &["mountPath", "role"],
                    ),
                    "jwt": object(
                        "Jwt authenticates with Vault by passing role and JWT token using the JWT/OIDC authentication method",
                        json!({
                            "path": string_default("Path where the JWT authentication backend is mounted in Vault, e.g: \"jwt\"", "jwt"),
                            "role": string("Role is a JWT role to authenticate using the JWT/OIDC Vault authentication method"),
                            "secretRef": secret_key_selector("Optional SecretRef that refers to a key in a Secret resource containing JWT token to authenticate with Vault using the JWT/OIDC authentication method."),
                            "kubernetesServiceAccountToken": object(
                                "Optional ServiceAccountToken specifies the Kubernetes service account for which to request a token for with the `TokenRequest` API.",
                                json!({
                                    "serviceAccountRef": service_account_selector("Service account field containing the name of a kubernetes ServiceAccount."),
                                    "audiences": string_list("Optional audiences field that will be used to request a temporary Kubernetes service account token for the service account referenced by `serviceAccountRef`. Deprecated: use serviceAccountRef.Audiences instead"),
                                    "expirationSeconds": integer("Optional expiration time in seconds that will be used to request a temporary Kubernetes service account token. Deprecated: this will be removed in the future. Defaults to 10 minutes.", "int64")
                                }),
                                &["serviceAccountRef"],
                            )
                        }),
                        &["path"],
                    ),
                    "cert": opaque_auth("Cert authenticates with TLS Certificates by passing client certificate, private key and ca certificate.", Some("cert")),
                    "userPass": opaque_auth("UserPass authenticates with Vault by passing username/password pair", Some("userpass")),
                    "ldap": opaque_auth("Ldap authenticates with Vault by passing username/password pair using the LDAP authentication method", Some("ldap")),
                    "iam": opaque_auth("Iam authenticates with vault by passing a special AWS request signed with AWS IAM credentials", None),
                    "gcp": opaque_auth("Gcp authenticates with Vault using Google Cloud Platform authentication method", Some("gcp"))
                }),
                &[],
            )
        }),
        &["server"],
    )
}

fn aws_schema() -> Value {
    object(
        "AWS configures this store to sync secrets using AWS Secret Manager provider",
        json!({
            "service": enumeration("Service defines which service should be used to fetch the secrets", AwsServiceType::VALUES, None),
            "region": string("AWS Region to be used for the provider"),
            "role": string("Role is a Role ARN which the provider will assume"),
            "additionalRoles": string_list("AdditionalRoles is a chained list of Role ARNs which the provider will sequentially assume before assuming the Role"),
            "externalID": string("AWS External ID set on assumed IAM roles"),
            "sessionTags": list(
                "AWS STS assume role session tags",
                object("", json!({"key": string(""), "value": string("")}), &["key", "value"]),
            ),
            "transitiveTagKeys": string_list("AWS STS assume role transitive session tags. Required when multiple rules are used with the provider"),
            "sessionTagsPolicy": enumeration("SessionTagsPolicy controls which session tags are added.", &["None", "Simple", "Custom"], None),
            "customSessionTags": string_map("Session tags added with sessionTagsPolicy Custom."),
            "prefix": string("Prefix adds a prefix to all retrieved values."),
            "auth": object(
                "Auth defines the information necessary to authenticate against AWS. If empty, the default credential chain is used.",
                json!({
                    "secretRef": object(
                        "AWSAuthSecretRef holds secret references for AWS credentials both AccessKeyID and SecretAccessKey must be defined in order to properly authenticate.",
                        json!({
                            "accessKeyIDSecretRef": secret_key_selector("The AccessKeyID is used for authentication"),
                            "secretAccessKeySecretRef": secret_key_selector("The SecretAccessKey is used for authentication"),
                            "sessionTokenSecretRef": secret_key_selector("The SessionToken used for authentication. This must be defined if AccessKeyID and SecretAccessKey are temporary credentials")
                        }),
                        &[],
                    ),
                    "jwt": object(
                        "Authenticate against AWS using service account tokens.",
                        json!({"serviceAccountRef": service_account_selector("A reference to a ServiceAccount resource.")}),
                        &[],
                    )
                }),
                &[],
            ),
            "secretsManager": object(
                "SecretsManager defines how the provider behaves when interacting with AWS SecretsManager",
                json!({
                    "forceDeleteWithoutRecovery": boolean("Specifies whether to delete the secret without any recovery window."),
                    "recoveryWindowInDays": integer("The number of days from 7 to 30 that Secrets Manager waits before permanently deleting the secret.", "int64")
                }),
                &[],
            )
        }),
        &["region", "service"],
    )
}

fn store_spec_schema() -> Value {
    let mut provider = rules(
        object(
            "Used to configure the provider. Only one provider may be set",
            json!({"vault": vault_schema(), "aws": aws_schema()}),
            &[],
        ),
        PROVIDER_RULES,
    );
    provider["x-kubernetes-preserve-unknown-fields"] = json!(true);
    provider["minProperties"] = json!(1);
    provider["maxProperties"] = json!(1);
    object(
        "SecretStoreSpec defines the desired state of SecretStore.",
        json!({
            "controller": string("Used to select the correct ESO controller (think: ingress.ingressClassName) The ESO controller is instantiated with a specific controller name and filters ES based on this property"),
            "provider": provider,
            "retrySettings": object(
                "Used to configure HTTP retries on failures.",
                json!({
                    "maxRetries": integer("", "int32"),
                    "retryInterval": string("")
                }),
                &[],
            ),
            "refreshInterval": {
                "x-kubernetes-int-or-string": true,
                "description": "Used to configure store refresh interval: seconds as an integer, or a duration string such as \"5m\". Empty or 0 use the controller's default."
            },
            "conditions": with(
                list(
                    "Used to constrain a ClusterSecretStore to specific namespaces. Relevant only to ClusterSecretStore.",
                    object(
                        "ClusterSecretStoreCondition describes a condition by which to choose namespaces to process ExternalSecrets in for a ClusterSecretStore instance.",
                        json!({
                            "namespaceSelector": label_selector("Choose namespace using a labelSelector"),
                            "namespaces": string_list("Choose namespaces by name. This field is ORed with anything that NamespaceSelector ends up choosing."),
                            "namespaceRegexes": string_list("Choose namespaces by using regex matching")
                        }),
                        &[],
                    ),
                ),
                "maxItems",
                json!(1000),
            )
        }),
        &["provider"],
    )
}

fn store_status_schema() -> Value {
    object(
        "SecretStoreStatus defines the observed state of the SecretStore.",
        json!({
            "conditions": list("", condition_schema()),
            "capabilities": string("SecretStoreCapabilities defines the possible operations a SecretStore can do.")
        }),
        &[],
    )
}
