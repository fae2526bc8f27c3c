//! The target Secret of an ExternalSecret: ESO's markers (so that a cluster moves from
//! ESO to gitseal without rewriting its Secrets), the metadata it carries, and which
//! existing Secrets it may write (spec §1.3, §3.3).

use std::collections::BTreeMap;
use std::fmt::Write;

use gitseal_api::{
    ANNOTATION_DATA_HASH, CreationPolicy, ExternalSecret, LABEL_CREATED_BY, LABEL_MANAGED,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};

use super::data::DataMap;
use super::refresh::object_hash;
use crate::reconcile::secret::{Ownership, SecretData};

/// The field manager of ESO's writes for the ExternalSecret `name`, which gitseal uses too
/// (ESO finds the keys it manages by it).
pub fn field_manager(name: &str) -> String {
    let manager = format!("externalsecrets.external-secrets.io/{name}");
    if manager.len() > 63 {
        format!(
            "externalsecrets.external-secrets.io/sha3/{}",
            object_hash(name.as_bytes())
        )
    } else {
        manager
    }
}

/// ESO's `created-by` label value of the ExternalSecret `namespace/name`.
pub fn created_by(namespace: &str, name: &str) -> String {
    object_hash(format!("{namespace}/{name}").as_bytes())
}

/// ESO's `data-hash` of a Secret's data: SHA3-224 of Go's `%+v` of `map[string][]byte`
/// (`map[a:[98 97 114] b:[]]`, keys sorted).
pub fn data_hash(secret: &Secret) -> String {
    let mut text = Vec::from(&b"map["[..]);
    for (i, (key, value)) in secret.data.iter().flatten().enumerate() {
        if i > 0 {
            text.push(b' ');
        }
        text.extend_from_slice(key.as_bytes());
        text.extend_from_slice(b":[");
        let mut numbers = String::with_capacity(value.0.len() * 4);
        for (j, byte) in value.0.iter().enumerate() {
            if j > 0 {
                numbers.push(' ');
            }
            let _ = write!(numbers, "{byte}");
        }
        text.extend_from_slice(numbers.as_bytes());
        zeroize::Zeroize::zeroize(&mut numbers);
        text.push(b']');
    }
    text.push(b']');
    let hash = object_hash(&text);
    zeroize::Zeroize::zeroize(&mut text);
    hash
}

/// Whether the target Secret is as its ExternalSecret left it (ESO's `isSecretValid`):
/// marked managed and its data unchanged since; `Orphan` targets always count as valid.
pub fn is_valid(existing: Option<&Secret>, policy: CreationPolicy) -> bool {
    if policy == CreationPolicy::Orphan {
        return true;
    }
    existing.is_some_and(|s| {
        s.labels().get(LABEL_MANAGED).map(String::as_str) == Some("true")
            && s.annotations().get(ANNOTATION_DATA_HASH) == Some(&data_hash(s))
    })
}

/// Labels and annotations an ExternalSecret does not pass on to its Secret although ESO
/// does: GitOps tools' tracking marks, which make them prune the Secret as their own
/// (ESO #68), and kubectl's record of the ExternalSecret.
fn passed_on(key: &str) -> bool {
    !(key == "kubectl.kubernetes.io/last-applied-configuration"
        || key == "app.kubernetes.io/instance"
        || key.starts_with("argocd.argoproj.io/")
        || key.starts_with("kustomize.toolkit.fluxcd.io/")
        || key.starts_with("helm.toolkit.fluxcd.io/"))
}

/// The Secret `es` wants, with `data` as its data: name and namespace, type (the
/// template's, else the existing one's, else `Opaque`), labels and annotations (the
/// template's, or else the ExternalSecret's own, less GitOps tracking marks), ESO's
/// managed and created-by labels, the controller ownerReference for `Owner`, immutable.
pub fn desired(es: &ExternalSecret, existing: Option<&Secret>, data: DataMap) -> SecretData {
    let namespace = es.namespace().unwrap_or_default();
    let target = &es.spec.target;
    let mut secret = SecretData::new(Secret::default());
    secret.metadata.name = Some(target_name(es));
    secret.metadata.namespace = Some(namespace.clone());
    let template = target.template.as_ref();
    secret.type_ = template
        .and_then(|t| t.type_.clone())
        .filter(|t| !t.is_empty())
        .or_else(|| existing.and_then(|s| s.type_.clone()))
        .or_else(|| Some("Opaque".into()));
    let (mut labels, mut annotations) = match template {
        Some(t) => {
            let metadata = t.metadata.clone().unwrap_or_default();
            (metadata.labels, metadata.annotations)
        }
        None => {
            let keep = |map: &BTreeMap<String, String>| -> BTreeMap<String, String> {
                map.iter()
                    .filter(|(k, _)| passed_on(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            (keep(es.labels()), keep(es.annotations()))
        }
    };
    labels.insert(LABEL_MANAGED.into(), "true".into());
    annotations.remove(ANNOTATION_DATA_HASH);
    if target.creation_policy == CreationPolicy::Owner {
        labels.insert(
            LABEL_CREATED_BY.into(),
            created_by(&namespace, &es.name_any()),
        );
        secret.metadata.owner_references = Some(vec![owner_reference(es)]);
    } else {
        labels.remove(LABEL_CREATED_BY);
    }
    secret.metadata.labels = Some(labels);
    secret.metadata.annotations = Some(annotations);
    if target.immutable {
        secret.immutable = Some(true);
    }
    secret.data = Some(
        data.into_iter()
            .map(|(k, v)| (k, ByteString(v.to_vec())))
            .collect(),
    );
    secret
}

/// The name of the target Secret: `spec.target.name`, else the ExternalSecret's.
pub fn target_name(es: &ExternalSecret) -> String {
    es.spec
        .target
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| es.name_any())
}

fn owner_reference(es: &ExternalSecret) -> OwnerReference {
    OwnerReference {
        api_version: ExternalSecret::api_version(&()).into_owned(),
        kind: ExternalSecret::kind(&()).into_owned(),
        name: es.name_any(),
        uid: es.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// How `es` may write the existing Secret `secret`:
///
/// - controlled by anything else (a SealedSecret, a SopsSecret, another ExternalSecret,
///   a Deployment's token…), or made by a SealedSecret without an ownerReference (its
///   digest or sealed-secrets' annotations): never;
/// - controlled by `es`, or carrying ESO's marks of `es` (its `created-by` label, or the
///   managed label with `es`'s field manager): replaced — this is how Secrets made by
///   ESO are adopted;
/// - any other Secret: only `Merge` and `CreateOrMerge` write into it, keeping its other
///   keys; `Owner` and `Orphan` refuse it (ESO #2416 replaced `argocd-secret`).
pub fn ownership(es: &ExternalSecret, secret: &Secret) -> Ownership {
    let uid = es.uid();
    if let Some(controller) = secret
        .owner_references()
        .iter()
        .find(|r| r.controller == Some(true))
    {
        return if Some(&controller.uid) == uid.as_ref() {
            Ownership::Owned
        } else {
            Ownership::Foreign
        };
    }
    // A SealedSecret's Secret without an ownerReference (`skip-set-owner-references`)
    // still carries the digest the SealedSecret reconciler writes, or upstream's marks.
    let annotations = secret.annotations();
    if annotations.contains_key(crate::reconcile::DIGEST_ANNOTATION)
        || annotations.contains_key(gitseal_api::ANNOTATION_MANAGED)
        || annotations.contains_key(gitseal_api::ANNOTATION_PATCH)
    {
        return Ownership::Foreign;
    }
    let namespace = es.namespace().unwrap_or_default();
    let labels = secret.labels();
    let marked = labels.get(LABEL_CREATED_BY) == Some(&created_by(&namespace, &es.name_any()))
        || (labels.get(LABEL_MANAGED).map(String::as_str) == Some("true")
            && secret
                .managed_fields()
                .iter()
                .any(|f| f.manager.as_deref() == Some(&field_manager(&es.name_any()))));
    match es.spec.target.creation_policy {
        CreationPolicy::Merge | CreationPolicy::CreateOrMerge => {
            Ownership::Patch { managed: false }
        }
        _ if marked => Ownership::Managed,
        _ => Ownership::Foreign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(policy: &str) -> ExternalSecret {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "prod", "uid": "u1",
                         "labels": {"team": "a", "app.kubernetes.io/instance": "argo-app"},
                         "annotations": {"argocd.argoproj.io/tracking-id": "x", "note": "n"}},
            "spec": {"secretStoreRef": {"name": "vault"},
                     "target": {"creationPolicy": policy},
                     "data": [{"secretKey": "p", "remoteRef": {"key": "db"}}]}
        }))
        .unwrap()
    }

    fn data(items: &[(&str, &str)]) -> DataMap {
        items
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    zeroize::Zeroizing::new(v.as_bytes().to_vec()),
                )
            })
            .collect()
    }

    #[test]
    fn data_hash_is_esos() {
        let secret = Secret {
            data: Some(BTreeMap::from([
                ("foo".into(), ByteString(b"bar".to_vec())),
                ("e".into(), ByteString(vec![])),
            ])),
            ..Secret::default()
        };
        assert_eq!(
            data_hash(&secret),
            object_hash(b"map[e:[] foo:[98 97 114]]")
        );
        assert_eq!(data_hash(&Secret::default()), object_hash(b"map[]"));
    }

    #[test]
    fn desired_secret_carries_esos_markers_and_no_tracking_labels() {
        let es = es("Owner");
        let secret = desired(&es, None, data(&[("p", "v")]));
        let labels = secret.labels();
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert_eq!(labels[LABEL_CREATED_BY], created_by("prod", "db"));
        assert_eq!(labels["team"], "a");
        assert!(!labels.contains_key("app.kubernetes.io/instance"));
        assert_eq!(secret.annotations().len(), 1);
        assert_eq!(secret.owner_references()[0].uid, "u1");
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        let orphan = desired(&self::es("Orphan"), None, data(&[]));
        assert!(orphan.owner_references().is_empty());
        assert!(!orphan.labels().contains_key(LABEL_CREATED_BY));
    }

    #[test]
    fn only_own_or_eso_marked_secrets_are_replaced() {
        let es = es("Owner");
        let mut foreign = Secret::default();
        assert_eq!(ownership(&es, &foreign), Ownership::Foreign);
        foreign.metadata.labels = Some(BTreeMap::from([(
            LABEL_CREATED_BY.into(),
            created_by("prod", "db"),
        )]));
        assert_eq!(ownership(&es, &foreign), Ownership::Managed);
        let mut sealed = Secret::default();
        sealed.metadata.owner_references = Some(vec![OwnerReference {
            kind: "SealedSecret".into(),
            uid: "other".into(),
            controller: Some(true),
            ..OwnerReference::default()
        }]);
        assert_eq!(ownership(&es, &sealed), Ownership::Foreign);
        assert_eq!(ownership(&self::es("Merge"), &sealed), Ownership::Foreign);
        assert_eq!(
            ownership(&self::es("Merge"), &Secret::default()),
            Ownership::Patch { managed: false }
        );
        let mut unowned_sealed = Secret::default();
        unowned_sealed.metadata.annotations = Some(BTreeMap::from([(
            crate::reconcile::DIGEST_ANNOTATION.into(),
            "k:00".into(),
        )]));
        assert_eq!(
            ownership(&self::es("Merge"), &unowned_sealed),
            Ownership::Foreign
        );
        let mut owned = sealed.clone();
        owned.metadata.owner_references.as_mut().unwrap()[0].uid = "u1".into();
        assert_eq!(ownership(&es, &owned), Ownership::Owned);
    }

    #[test]
    fn validity_follows_the_hash() {
        let es = es("Owner");
        let mut secret: Secret = desired(&es, None, data(&[("p", "v")])).clone();
        assert!(!is_valid(Some(&secret), CreationPolicy::Owner));
        let hash = data_hash(&secret);
        secret
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ANNOTATION_DATA_HASH.into(), hash);
        assert!(is_valid(Some(&secret), CreationPolicy::Owner));
        assert!(!is_valid(None, CreationPolicy::Owner));
        assert!(is_valid(None, CreationPolicy::Orphan));
    }
}
