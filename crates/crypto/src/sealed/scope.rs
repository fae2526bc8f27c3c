//! Sealing scopes and their RSA-OAEP labels.

use std::fmt;
use std::str::FromStr;

/// Annotation that makes a Secret or SealedSecret cluster-wide when its value is `"true"`.
pub const ANNOTATION_CLUSTER_WIDE: &str = "sealedsecrets.bitnami.com/cluster-wide";
/// Annotation that makes a Secret or SealedSecret namespace-wide when its value is `"true"`.
pub const ANNOTATION_NAMESPACE_WIDE: &str = "sealedsecrets.bitnami.com/namespace-wide";

/// Where a sealed value may be unsealed. The scope is bound into the ciphertext through
/// the RSA-OAEP label, so a value sealed for one place fails to unseal anywhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// Only as the Secret of this exact name in this exact namespace (label `ns/name`).
    #[default]
    Strict,
    /// As any Secret in this namespace (label `ns`).
    NamespaceWide,
    /// As any Secret anywhere in the cluster (empty label).
    ClusterWide,
}

impl Scope {
    /// The RSA-OAEP label for a Secret `name` in `namespace`.
    ///
    /// ```
    /// use gitseal_crypto::sealed::Scope;
    /// assert_eq!(Scope::Strict.label("myns", "myname"), b"myns/myname");
    /// assert_eq!(Scope::NamespaceWide.label("myns", "myname"), b"myns");
    /// assert_eq!(Scope::ClusterWide.label("myns", "myname"), b"");
    /// ```
    pub fn label(self, namespace: &str, name: &str) -> Vec<u8> {
        match self {
            Self::Strict => format!("{namespace}/{name}").into_bytes(),
            Self::NamespaceWide => namespace.as_bytes().to_vec(),
            Self::ClusterWide => Vec::new(),
        }
    }

    /// The scope that an object's annotations select, as upstream reads them: only the
    /// exact value `"true"` counts, and cluster-wide wins when both are set.
    ///
    /// ```
    /// use gitseal_crypto::sealed::{Scope, ANNOTATION_NAMESPACE_WIDE};
    /// let annotations = [(ANNOTATION_NAMESPACE_WIDE, "true")];
    /// assert_eq!(Scope::from_annotations(annotations), Scope::NamespaceWide);
    /// assert_eq!(Scope::from_annotations([(ANNOTATION_NAMESPACE_WIDE, "yes")]), Scope::Strict);
    /// ```
    pub fn from_annotations<'a>(annotations: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let (mut cluster, mut namespace) = (false, false);
        for (key, value) in annotations {
            match (key, value) {
                (ANNOTATION_CLUSTER_WIDE, "true") => cluster = true,
                (ANNOTATION_NAMESPACE_WIDE, "true") => namespace = true,
                _ => {}
            }
        }
        if cluster {
            Self::ClusterWide
        } else if namespace {
            Self::NamespaceWide
        } else {
            Self::Strict
        }
    }

    /// The annotation that records this scope, if any (strict has none).
    pub fn annotation(self) -> Option<&'static str> {
        match self {
            Self::Strict => None,
            Self::NamespaceWide => Some(ANNOTATION_NAMESPACE_WIDE),
            Self::ClusterWide => Some(ANNOTATION_CLUSTER_WIDE),
        }
    }

    /// The name kubeseal's `--scope` flag uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::NamespaceWide => "namespace-wide",
            Self::ClusterWide => "cluster-wide",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text of a scope name that is not one of `strict`, `namespace-wide`, `cluster-wide`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: expected strict, namespace-wide or cluster-wide")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(Self::Strict),
            "namespace-wide" => Ok(Self::NamespaceWide),
            "cluster-wide" => Ok(Self::ClusterWide),
            other => Err(UnknownScope(other.to_owned())),
        }
    }
}
