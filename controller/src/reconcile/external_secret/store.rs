//! The stores an ExternalSecret reads through: which store a reference names, whether
//! the ExternalSecret's namespace may use it (`ClusterSecretStore.spec.conditions`), and
//! which namespace a credential reference is read from (spec §2.1–§2.2).

use gitseal_api::{
    ClusterSecretStore, ClusterSecretStoreCondition, SecretStore, SecretStoreRef, SecretStoreSpec,
    StoreKind,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{Api, ResourceExt};

use crate::Error;

/// A store as an ExternalSecret sees it.
pub struct Store {
    /// `SecretStore` or `ClusterSecretStore`.
    pub kind: StoreKind,
    /// Its name.
    pub name: String,
    /// Its namespace (a SecretStore's; `None` for a ClusterSecretStore).
    pub namespace: Option<String>,
    /// Its uid and generation: a changed store is a new store.
    pub uid: String,
    /// Its generation.
    pub generation: i64,
    /// Its spec.
    pub spec: SecretStoreSpec,
    /// Its annotations (limits for its calls, see [`crate::scheduler::gate`]).
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Store {
    /// `<kind>/<namespace>/<name>/<generation>`: a changed store is a new client.
    pub fn identity(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            kind_name(self.kind),
            self.namespace.as_deref().unwrap_or_default(),
            self.name,
            self.generation
        )
    }

    /// The store as the scheduler names it.
    pub fn target(&self) -> crate::scheduler::StoreTarget {
        crate::scheduler::StoreTarget {
            kind: self.kind,
            name: self.name.clone(),
            namespace: self.namespace.clone(),
        }
    }

    /// `SecretStore "x"` / `ClusterSecretStore "x"`, as ESO names stores in messages.
    pub fn describe(&self) -> String {
        format!("{} {:?}", kind_name(self.kind), self.name)
    }
}

/// The kind's name.
pub fn kind_name(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::ClusterSecretStore => "ClusterSecretStore",
        _ => "SecretStore",
    }
}

/// Reads the store `reference` names for an ExternalSecret in `namespace`, and checks
/// that `namespace` may use it. A store that does not exist, belongs to another
/// controller class or may not be used is an [`Error::Sync`].
pub async fn resolve(
    client: &kube::Client,
    namespace: &str,
    reference: &SecretStoreRef,
    controller_class: &str,
) -> Result<Store, Error> {
    let (kind, found) = match reference.kind {
        StoreKind::ClusterSecretStore => {
            let api: Api<ClusterSecretStore> = Api::all(client.clone());
            let store = api.get_opt(&reference.name).await.map_err(Error::Fetch)?;
            (
                StoreKind::ClusterSecretStore,
                store.map(|s| {
                    (
                        s.uid(),
                        s.metadata.generation,
                        None,
                        s.metadata.annotations,
                        s.spec,
                    )
                }),
            )
        }
        _ => {
            let api: Api<SecretStore> = Api::namespaced(client.clone(), namespace);
            let store = api.get_opt(&reference.name).await.map_err(Error::Fetch)?;
            (
                StoreKind::SecretStore,
                store.map(|s| {
                    (
                        s.uid(),
                        s.metadata.generation,
                        Some(namespace.to_owned()),
                        s.metadata.annotations,
                        s.spec,
                    )
                }),
            )
        }
    };
    let Some((uid, generation, store_namespace, annotations, spec)) = found else {
        return Err(Error::Sync(format!(
            "{} {:?} not found",
            kind_name(kind),
            reference.name
        )));
    };
    let store = Store {
        kind,
        name: reference.name.clone(),
        namespace: store_namespace,
        uid: uid.unwrap_or_default(),
        generation: generation.unwrap_or_default(),
        spec,
        annotations: annotations.unwrap_or_default(),
    };
    let class = store.spec.controller.as_deref().unwrap_or_default();
    if !class.is_empty() && class != controller_class {
        return Err(Error::Sync(format!(
            "{} belongs to controller class {class:?}, not {controller_class:?}",
            store.describe()
        )));
    }
    if kind == StoreKind::ClusterSecretStore && !store.spec.conditions.is_empty() {
        let needs_labels = store
            .spec
            .conditions
            .iter()
            .any(|c| c.namespace_selector.is_some());
        let labels = if needs_labels {
            let api: Api<Namespace> = Api::all(client.clone());
            api.get_opt(namespace)
                .await
                .map_err(Error::Fetch)?
                .map(|n| n.labels().clone())
                .unwrap_or_default()
        } else {
            Default::default()
        };
        if !namespace_allowed(&store.spec.conditions, namespace, &labels) {
            return Err(Error::Sync(format!(
                "using cluster store {:?} is not allowed from namespace {namespace:?}: denied by spec.condition",
                store.name
            )));
        }
    }
    Ok(store)
}

/// Whether a namespace named `name` with `labels` matches any of a ClusterSecretStore's
/// `conditions`: a selector, a name or an (unanchored, as in ESO) regex of any of them.
pub fn namespace_allowed(
    conditions: &[ClusterSecretStoreCondition],
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    let mut labels = labels.clone();
    labels.insert("kubernetes.io/metadata.name".into(), name.into());
    // ESO admits a namespace as soon as one part of one condition matches it.
    conditions.iter().any(|condition| {
        condition
            .namespace_selector
            .as_ref()
            .is_some_and(|s| selector_matches(s, &labels))
            || condition.namespaces.iter().any(|n| n == name)
            || condition
                .namespace_regexes
                .iter()
                .any(|r| regex::Regex::new(r).is_ok_and(|re| re.is_match(name)))
    })
}

/// Whether `labels` match a LabelSelector (matchLabels and matchExpressions).
pub fn selector_matches(
    selector: &LabelSelector,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    let exact = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    exact && expressions
}

/// The namespace a credential reference of `store` is read from for an ExternalSecret in
/// `es_namespace`: a ClusterSecretStore's reference with a namespace reads there; any
/// other reads in the ExternalSecret's namespace (for a ClusterSecretStore without one:
/// "referent authentication", each tenant's own credentials). A SecretStore's reference
/// may not name another namespace.
pub fn ref_namespace(
    store: &Store,
    es_namespace: &str,
    reference: Option<&str>,
) -> Result<String, Error> {
    match (store.kind, reference) {
        (StoreKind::ClusterSecretStore, Some(ns)) if !ns.is_empty() => Ok(ns.to_owned()),
        (StoreKind::ClusterSecretStore, _) => Ok(es_namespace.to_owned()),
        (_, Some(ns)) if !ns.is_empty() && ns != es_namespace => Err(Error::Sync(format!(
            "namespace {ns:?} not allowed in a SecretStore's reference: only a ClusterSecretStore may read credentials from another namespace"
        ))),
        _ => Ok(es_namespace.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn condition(json: serde_json::Value) -> ClusterSecretStoreCondition {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn cluster_store_conditions() {
        let none = BTreeMap::new();
        let by_name = [condition(serde_json::json!({"namespaces": ["prod"]}))];
        assert!(namespace_allowed(&by_name, "prod", &none));
        assert!(!namespace_allowed(&by_name, "dev", &none));
        // Regexes are unanchored, as ESO's: "dev" also admits "devops".
        let by_regex = [condition(serde_json::json!({"namespaceRegexes": ["dev"]}))];
        assert!(namespace_allowed(&by_regex, "devops", &none));
        assert!(!namespace_allowed(&by_regex, "prod", &none));
        let by_label = [condition(
            serde_json::json!({"namespaceSelector": {"matchLabels": {"team": "a"}}}),
        )];
        let team_a = BTreeMap::from([("team".to_owned(), "a".to_owned())]);
        assert!(namespace_allowed(&by_label, "x", &team_a));
        assert!(!namespace_allowed(&by_label, "x", &none));
        // Any condition admits.
        let either = [by_name[0].clone(), by_regex[0].clone()];
        assert!(namespace_allowed(&either, "prod", &none));
        assert!(namespace_allowed(&either, "dev-1", &none));
        assert!(!namespace_allowed(&either, "staging", &none));
        assert!(!namespace_allowed(
            &[condition(serde_json::json!({}))],
            "x",
            &none
        ));
    }

    fn store(kind: StoreKind) -> Store {
        Store {
            kind,
            name: "s".into(),
            namespace: None,
            uid: String::new(),
            generation: 1,
            spec: serde_json::from_value(serde_json::json!({"provider": {}})).unwrap(),
            annotations: Default::default(),
        }
    }

    #[test]
    fn credential_namespaces() {
        let css = store(StoreKind::ClusterSecretStore);
        assert_eq!(ref_namespace(&css, "app", Some("vault")).unwrap(), "vault");
        assert_eq!(ref_namespace(&css, "app", None).unwrap(), "app");
        let ss = store(StoreKind::SecretStore);
        assert_eq!(ref_namespace(&ss, "app", None).unwrap(), "app");
        assert_eq!(ref_namespace(&ss, "app", Some("app")).unwrap(), "app");
        assert!(ref_namespace(&ss, "app", Some("vault")).is_err());
    }
}
