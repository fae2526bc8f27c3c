//! # gitseal-api
//!
//! Kubernetes API types shared by the gitseal CLI and controller: the custom resources
//! (SealedSecret, and later SopsSecret, ExternalSecret, SecretStore, ClusterSecretStore),
//! their conditions and the well-known labels and annotations. The CRD types arrive with
//! the controller; for now the crate holds the names every program must agree on.

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

pub use gitseal_crypto::sealed::{ANNOTATION_CLUSTER_WIDE, ANNOTATION_NAMESPACE_WIDE};
