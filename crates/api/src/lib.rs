//! # gitseal-api
//!
//! Kubernetes API types shared by the gitseal CLI and controller: the custom resources
//! (SealedSecret; the External Secrets Operator kinds ExternalSecret, SecretStore,
//! ClusterSecretStore and ClusterExternalSecret of `external-secrets.io/v1`;
//! sops-secrets-operator's SopsSecret of `isindir.github.com/v1alpha3`), their conditions and
//! the well-known labels and annotations.
//!
//! [`crds`] lists every CustomResourceDefinition the controller serves and [`crd_yaml`]
//! renders them as the chart's `crds/` files; the `crdgen` binary writes those files
//! (`cargo run -p gitseal-api --features crdgen --bin crdgen`).
//!
//! ```
//! use gitseal_api::SealedSecret;
//! let ss: SealedSecret = serde_json::from_str(r#"{
//!   "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
//!   "metadata": {"name": "db", "namespace": "prod"},
//!   "spec": {"encryptedData": {"password": "AgB..."}}
//! }"#).unwrap();
//! assert_eq!(ss.spec.encrypted_data["password"], "AgB...");
//! ```
//!
//! The External Secrets Operator kinds read both `v1` and `v1beta1` manifests (same
//! schema); enum-like fields read leniently (an unknown value reads as the default, as
//! ESO's Go `switch` does) and the CRDs' schema enums and CEL rules reject bad input at
//! apply time:
//!
//! ```
//! use gitseal_api::{CreationPolicy, DecodingStrategy, ExternalSecret, StoreKind};
//! let es: ExternalSecret = serde_json::from_str(r#"{
//!   "apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
//!   "metadata": {"name": "db", "namespace": "prod"},
//!   "spec": {"secretStoreRef": {"name": "vault"},
//!            "data": [{"secretKey": "password", "remoteRef": {"key": "db", "property": "pw"}}]}
//! }"#).unwrap();
//! assert_eq!(es.spec.secret_store_ref.unwrap().kind, StoreKind::SecretStore);
//! assert_eq!(es.spec.target.creation_policy, CreationPolicy::Owner);
//! assert_eq!(es.spec.data[0].remote_ref.decoding_strategy, DecodingStrategy::None);
//! ```

mod cluster_external_secret;
mod eso_schema;
#[cfg(test)]
mod eso_tests;
mod external_secret;
mod sealed_secret;
mod sops_secret;
mod store;
mod unseal;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

pub use sealed_secret::{
    SealedSecret, SealedSecretCondition, SealedSecretSpec, SealedSecretStatus, SecretTemplateSpec,
    sealed_secret_crd,
};
pub use sops_secret::{
    ANNOTATION_LAST_APPLIED, ANNOTATION_SOPS_MANAGED, SOPS_SECRET_API_VERSION, SOPS_SECRET_KIND,
    SOPS_SECRETS_GROUP, SOPS_SECRETS_VERSION, SopsSecret, SopsSecretSpec, SopsSecretStatus,
    SopsSecretTemplate, sops_secret_crd,
};
pub use unseal::{LegacyMeta, UnsealFailure, Unsealed};

pub use cluster_external_secret::{
    ClusterExternalSecret, ClusterExternalSecretNamespaceFailure, ClusterExternalSecretSpec,
    ClusterExternalSecretStatus, ExternalSecretMetadata, cluster_external_secret_crd,
};
pub use external_secret::{
    ConversionStrategy, CreationPolicy, DecodingStrategy, DeletionPolicy, ExternalSecret,
    ExternalSecretCondition, ExternalSecretData, ExternalSecretDataFromRemoteRef,
    ExternalSecretDataRemoteRef, ExternalSecretFind, ExternalSecretRewrite, ExternalSecretSpec,
    ExternalSecretStatus, ExternalSecretTarget, ExternalSecretTemplate,
    ExternalSecretTemplateMetadata, FindName, GeneratorRef, MAX_DATA_ITEMS, MAX_LIST_ITEMS,
    ManifestReference, MetadataPolicy, RefreshPolicy, RewriteRegexp, RewriteTransform,
    SecretBinding, SecretStoreRef, StoreGeneratorSourceRef, StoreKind, StoreSourceRef,
    TemplateFrom, TemplateMergePolicy, TemplateRef, TemplateRefItem, TemplateScope,
    external_secret_crd,
};
pub use store::{
    AwsAuth, AwsAuthSecretRef, AwsJwtAuth, AwsProvider, AwsSecretsManager, AwsServiceType, AwsTag,
    CaProvider, CaProviderType, ClusterSecretStore, ClusterSecretStoreCondition,
    ERR_NAMESPACE_NOT_ALLOWED, SecretKeySelector, SecretStore, SecretStoreProvider,
    SecretStoreRetrySettings, SecretStoreSpec, SecretStoreStatus, ServiceAccountSelector,
    VaultAppRole, VaultAuth, VaultClientTls, VaultJwtAuth, VaultKubernetesAuth,
    VaultKubernetesServiceAccountTokenAuth, VaultKvVersion, VaultProvider,
    cluster_secret_store_crd, secret_store_crd, validate_referent_namespace,
};

/// API group of SealedSecrets.
pub const SEALED_SECRETS_GROUP: &str = "bitnami.com";
/// API version of SealedSecrets.
pub const SEALED_SECRETS_VERSION: &str = "v1alpha1";
/// `apiVersion` of a SealedSecret manifest.
pub const SEALED_SECRET_API_VERSION: &str = "bitnami.com/v1alpha1";
/// Kind of a SealedSecret.
pub const SEALED_SECRET_KIND: &str = "SealedSecret";

/// Label that marks a controller key Secret; value `active` keeps it in use.
pub const SEALING_KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
/// Annotation letting the controller take over an existing Secret it did not create.
pub const ANNOTATION_MANAGED: &str = "sealedsecrets.bitnami.com/managed";
/// Annotation making the controller merge into an existing Secret instead of replacing it.
pub const ANNOTATION_PATCH: &str = "sealedsecrets.bitnami.com/patch";
/// Annotation (on the template) asking for no ownerReference on the generated Secret.
pub const ANNOTATION_SKIP_SET_OWNER_REFERENCES: &str =
    "sealedsecrets.bitnami.com/skip-set-owner-references";

/// API group of the External Secrets Operator kinds.
pub const EXTERNAL_SECRETS_GROUP: &str = "external-secrets.io";
/// Storage API version of the External Secrets Operator kinds.
pub const EXTERNAL_SECRETS_VERSION: &str = "v1";
/// Older API version, still served (same schema).
pub const EXTERNAL_SECRETS_VERSION_V1BETA1: &str = "v1beta1";
/// `apiVersion` of ESO manifests.
pub const EXTERNAL_SECRETS_API_VERSION: &str = "external-secrets.io/v1";
/// Kind of an ExternalSecret.
pub const EXTERNAL_SECRET_KIND: &str = "ExternalSecret";
/// Kind of a SecretStore.
pub const SECRET_STORE_KIND: &str = "SecretStore";
/// Kind of a ClusterSecretStore.
pub const CLUSTER_SECRET_STORE_KIND: &str = "ClusterSecretStore";
/// Kind of a ClusterExternalSecret.
pub const CLUSTER_EXTERNAL_SECRET_KIND: &str = "ClusterExternalSecret";

/// Label (value `true`) on every Secret an ExternalSecret writes.
pub const LABEL_MANAGED: &str = "reconcile.external-secrets.io/managed";
/// Label with the hex SHA3-224 of `<namespace>/<name>` of the owning ExternalSecret
/// (`creationPolicy: Owner`).
pub const LABEL_CREATED_BY: &str = "reconcile.external-secrets.io/created-by";
/// Annotation with the hash of the Secret's data as written (drift detection).
pub const ANNOTATION_DATA_HASH: &str = "reconcile.external-secrets.io/data-hash";
/// Annotation whose change forces a refresh (mirrored by ClusterExternalSecrets).
pub const ANNOTATION_FORCE_SYNC: &str = "external-secrets.io/force-sync";

/// Annotation on a Deployment, StatefulSet or DaemonSet: comma-separated names of the
/// Secrets of its namespace whose data changes restart its pods (opt-in).
pub const ANNOTATION_RESTART_ON_SECRET_CHANGE: &str = "gitseal.dev/restart-on-secret-change";
/// Pod template annotation written by a restart: a digest of the data of every Secret the
/// workload names, so that the same data never restarts it twice.
pub const ANNOTATION_RESTARTED_FOR: &str = "gitseal.dev/restarted-for";
/// Pod template annotation written by a restart: when it happened (RFC 3339).
pub const ANNOTATION_RESTARTED_AT: &str = "gitseal.dev/restartedAt";

pub use gitseal_crypto::sealed::{ANNOTATION_CLUSTER_WIDE, ANNOTATION_NAMESPACE_WIDE};

/// Every CustomResourceDefinition of gitseal, with the file name it has in the chart, each
/// annotated `helm.sh/resource-policy: keep`: no Helm operation deletes it, and with it
/// every object and, through garbage collection, every Secret they own.
pub fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    let mut crds = vec![
        ("bitnami.com_sealedsecrets.yaml", sealed_secret_crd()),
        (
            "external-secrets.io_externalsecrets.yaml",
            external_secret_crd(),
        ),
        ("external-secrets.io_secretstores.yaml", secret_store_crd()),
        (
            "external-secrets.io_clustersecretstores.yaml",
            cluster_secret_store_crd(),
        ),
        (
            "external-secrets.io_clusterexternalsecrets.yaml",
            cluster_external_secret_crd(),
        ),
        ("isindir.github.com_sopssecrets.yaml", sops_secret_crd()),
    ];
    for (_, crd) in &mut crds {
        crd.metadata
            .annotations
            .get_or_insert_default()
            .insert("helm.sh/resource-policy".to_owned(), "keep".to_owned());
    }
    crds
}

/// Renders a CRD as the YAML file the chart ships.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    let header =
        "# Generated by `cargo run -p gitseal-api --features crdgen --bin crdgen`; do not edit.\n";
    let body = serde_saphyr::to_string(crd).expect("a CRD serializes to YAML");
    format!("{header}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_matches_upstream_names_and_columns() {
        let crd = sealed_secret_crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("sealedsecrets.bitnami.com")
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.list_kind.as_deref(),
            Some("SealedSecretList")
        );
        let version = &crd.spec.versions[0];
        assert!(version.served && version.storage);
        assert!(version.subresources.as_ref().unwrap().status.is_some());
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.json_path.as_str()))
            .collect();
        assert_eq!(
            columns,
            [
                ("Status", ".status.conditions[0].message"),
                ("Synced", ".status.conditions[0].status"),
                ("Age", ".metadata.creationTimestamp")
            ]
        );
        let schema = version.schema.as_ref().unwrap().open_api_v3_schema.as_ref();
        assert_eq!(
            schema.unwrap().required.as_deref(),
            Some(&["spec".to_owned()][..])
        );
    }

    #[test]
    fn the_charts_crds_are_generated_ones() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/gitseal/crds");
        for (file, crd) in crds() {
            assert_eq!(
                crd.metadata.annotations.as_ref().unwrap()["helm.sh/resource-policy"],
                "keep",
                "{file}: kept on uninstall"
            );
            let on_disk = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            assert!(
                on_disk == crd_yaml(&crd),
                "charts/gitseal/crds/{file} is stale: run `cargo run -p gitseal-api --features crdgen --bin crdgen`"
            );
        }
    }

    #[test]
    fn non_string_items_do_not_fail_the_object() {
        let ss: SealedSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
            "metadata": {"name": "x"},
            "spec": {"encryptedData": {"a": 1, "b": "AgB"}}
        }))
        .unwrap();
        assert_eq!(ss.spec.encrypted_data["a"], "1");
        assert_eq!(ss.spec.encrypted_data["b"], "AgB");
    }
}
