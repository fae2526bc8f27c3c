//! The SealedSecret reconciler (spec §3.3–§3.4), with gitseal's digest short-cut.
//!
//! Each generated Secret carries the annotation [`DIGEST_ANNOTATION`]: the id of a sealing
//! key and an HMAC, under a key derived from that private key, over the SealedSecret (uid,
//! OAEP label, spec) and the Secret's own type, labels, annotations and data. When the
//! annotation still verifies, the Secret is exactly what this SealedSecret produces, so a
//! restart or resync costs one GET and no RSA work; any edit of the Secret or change of the
//! SealedSecret breaks it and the Secret is rebuilt.
//!
//! Writing the Secret is [`super::secret::apply`]'s; the `Synced` condition is
//! [`super::status::write`]'s.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use gitseal_api::{ANNOTATION_SKIP_SET_OWNER_REFERENCES, SealedSecret};
use gitseal_crypto::primitives::{HmacSha256, ct_eq};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use tokio::sync::watch;

use super::secret::{self, Applied, DIGEST_ANNOTATION, SecretData, Writer, is_controlled_by};
use super::{Reconciled, status};
use crate::Error;
use crate::config::Config;
use crate::context::Context;
use crate::keyring::{Keys, SealingKey};
use crate::unseal::Unsealed;

impl Reconciled for SealedSecret {
    fn max_retries(config: &Config) -> u32 {
        config.sealed_secrets.max_unseal_retries
    }
    const SLIM_CACHE: bool = true;
}

/// Starts the SealedSecret reconciler in `namespace` (`None`: all) until `stop`.
pub fn start(
    ctx: Arc<Context>,
    namespace: Option<String>,
    stop: watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    let args = &ctx.config.sealed_secrets;
    let metrics = ctx.metrics.clone();
    let controller = super::controller::<SealedSecret>(
        &ctx,
        namespace.as_deref(),
        &args.label_selector,
        !args.skip_recreate,
        // A deleted SealedSecret takes its condition_info series with it, as upstream.
        move |ss| metrics.sealed_secrets.forget_condition(ss),
    );
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("*"),
        "SealedSecret reconciler started"
    );
    super::drive(controller, reconcile, ctx, stop).boxed()
}

/// Reconciles one SealedSecret. The controller caches SealedSecrets' metadata only (memory
/// stays small with many objects); the whole object is read here, fresh.
#[tracing::instrument(skip(meta, ctx), fields(namespace = meta.namespace().unwrap_or_default(), name = meta.name_any()))]
pub async fn reconcile(
    meta: Arc<PartialObjectMeta<SealedSecret>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let metrics = &ctx.metrics.sealed_secrets;
    metrics.unseal_requests.inc();
    let namespace = meta.namespace().unwrap_or_default();
    let api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let ss = match api.get_opt(&meta.name_any()).await {
        Ok(Some(ss)) => ss,
        // Deleted; its Secret goes with it (ownerReference), its failures are forgotten.
        Ok(None) => {
            ctx.forget_retries(meta.as_ref());
            return Ok(Action::await_change());
        }
        Err(e) => return Err(count(&ctx, Error::Fetch(e), &namespace)),
    };
    if ss.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let outcome = {
        let mut timer = metrics.measure();
        let outcome = sync(&ss, &ctx).await;
        timer.outcome(match &outcome {
            Ok(Applied::Created | Applied::Updated) => "written",
            Ok(Applied::Unchanged) => "unchanged",
            Err(_) => "error",
        });
        outcome
    };
    if let Err(e) = &outcome {
        report(&ctx, &ss, e).await;
    }
    // API errors while reading or writing are transient: they leave the status alone.
    if !outcome.as_ref().is_err_and(Error::is_transient) {
        let result = outcome.as_ref().map(|_| ()).map_err(|e| e.to_string());
        if !ctx.config.sealed_secrets.metrics_omit_secret_labels {
            metrics.set_condition(&ss, result.is_ok());
        }
        if ctx.config.sealed_secrets.update_status {
            // A status that could not be written is retried like any transient error.
            status::write(&ctx.client, &ss, "Synced", result)
                .await
                .map_err(|e| count(&ctx, e, &namespace))?;
        }
    }
    outcome?;
    ctx.forget_retries(&ss);
    Ok(Action::await_change())
}

/// Counts `error` in `unseal_errors_total` (upstream's labels: read failures carry no
/// namespace) and hands it back.
fn count(ctx: &Context, error: Error, namespace: &str) -> Error {
    count_error(ctx, &error, namespace);
    error
}

/// Adds `error` to `unseal_errors_total`; read failures carry no namespace, as upstream's.
fn count_error(ctx: &Context, error: &Error, namespace: &str) {
    let namespace = if matches!(error, Error::Fetch(_)) {
        ""
    } else {
        namespace
    };
    ctx.metrics.sealed_secrets.error(error.kind(), namespace);
}

/// Counts a failed sync and publishes its Warning event, as upstream.
async fn report(ctx: &Context, ss: &SealedSecret, error: &Error) {
    count_error(ctx, error, &ss.namespace().unwrap_or_default());
    if let Some(reason) = error.event_reason() {
        let message = match error {
            Error::Unseal(failure) => format!("Failed to unseal: {failure}"),
            other => other.to_string(),
        };
        ctx.event(ss, EventType::Warning, reason, &message).await;
    }
}

/// Brings the Secret of `ss` up to date: nothing to do when its digest verifies, else
/// unseal and write (spec §3.3).
async fn sync(ss: &SealedSecret, ctx: &Context) -> Result<Applied, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ss.namespace().unwrap_or_default());
    let existing = api.get_opt(&ss.name_any()).await.map_err(Error::Fetch)?;
    let existing = existing.map(SecretData::new);
    let keys = ctx.keyring.snapshot();
    let (digest_ok, preferred) = match &existing {
        Some(secret) => check_digest(ss, secret, &keys),
        None => (false, None),
    };
    if digest_ok {
        tracing::debug!("Secret up to date (digest matches), nothing to decrypt");
        return Ok(Applied::Unchanged);
    }
    let unsealed = ctx
        .unseal(ss, keys, preferred)
        .await
        .map_err(|failure| Error::Unseal(failure.message))?;
    let key = unsealed.key.clone();
    let desired = desired_secret(ss, unsealed);
    let uid = ss.uid();
    let digest = key
        .as_deref()
        .map(|key| move |secret: &Secret| digest(key, ss, secret));
    let writer = Writer {
        kind: gitseal_api::SEALED_SECRET_KIND,
        ownership: &|existing| secret::ownership(existing, uid.as_deref()),
        digest: digest
            .as_ref()
            .map(|f| (DIGEST_ANNOTATION, f as secret::Digest<'_>)),
        field_manager: None,
        echoes: &ctx.echoes,
    };
    let applied = secret::apply(&api, existing, desired, &writer).await?;
    if applied != Applied::Unchanged {
        ctx.event(
            ss,
            EventType::Normal,
            "Unsealed",
            "SealedSecret unsealed successfully",
        )
        .await;
    }
    Ok(applied)
}

/// The Secret a SealedSecret describes (spec §3.3 step 2).
pub fn desired_secret(ss: &SealedSecret, unsealed: Unsealed) -> SecretData {
    let template = ss.spec.template.clone().unwrap_or_default();
    let mut metadata = template.metadata.unwrap_or_default();
    metadata.name = Some(ss.name_any());
    metadata.namespace = ss.namespace();
    for field in [
        &mut metadata.resource_version,
        &mut metadata.uid,
        &mut metadata.generate_name,
    ] {
        *field = None;
    }
    metadata.managed_fields = None;
    metadata.creation_timestamp = None;
    let mut type_ = template.type_.filter(|t| !t.is_empty());
    if let Some(legacy) = unsealed.opened.legacy {
        metadata
            .labels
            .get_or_insert_default()
            .extend(legacy.labels);
        metadata
            .annotations
            .get_or_insert_default()
            .extend(legacy.annotations);
        type_ = type_.or(legacy.type_);
    }
    let skip_owner = metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_SKIP_SET_OWNER_REFERENCES))
        .is_some_and(|v| v == "true");
    if !skip_owner {
        metadata.owner_references = Some(vec![owner_reference(ss)]);
    }
    let data = unsealed
        .opened
        .data
        .into_iter()
        .map(|(k, v)| (k, ByteString(v.to_vec())))
        .collect();
    SecretData::new(Secret {
        metadata,
        type_: Some(type_.unwrap_or_else(|| "Opaque".into())),
        immutable: template.immutable,
        data: Some(data),
        ..Secret::default()
    })
}

fn owner_reference(ss: &SealedSecret) -> OwnerReference {
    OwnerReference {
        api_version: gitseal_api::SEALED_SECRET_API_VERSION.into(),
        kind: gitseal_api::SEALED_SECRET_KIND.into(),
        name: ss.name_any(),
        uid: ss.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// The digest of `secret` as produced from `ss` under `key`.
pub fn digest(key: &SealingKey, ss: &SealedSecret, secret: &Secret) -> String {
    let mut mac = HmacSha256::new(key.digest_key());
    mac.update_field(b"gitseal digest v1");
    mac.update_field(ss.uid().unwrap_or_default().as_bytes());
    mac.update_field(&ss.label());
    mac.update_field(&serde_json::to_vec(&ss.spec).unwrap_or_default());
    secret::digest_fields(&mut mac, secret);
    format!("{}:{}", key.id, hex::encode(mac.finish()))
}

/// Whether `secret` is exactly what `ss` produces (its digest verifies), and the key that
/// last worked for this object, to try first when it does not.
pub fn check_digest(ss: &SealedSecret, secret: &Secret, keys: &Keys) -> (bool, Option<String>) {
    let Some(recorded) = secret.annotations().get(DIGEST_ANNOTATION) else {
        return (false, None);
    };
    let Some((id, _)) = recorded.split_once(':') else {
        return (false, None);
    };
    let Some(key) = keys.by_id(id) else {
        return (false, None);
    };
    let expected = digest(key, ss, secret);
    let controlled_as_wanted = is_controlled_by(secret, ss.uid().as_deref())
        || ss
            .spec
            .template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(ANNOTATION_SKIP_SET_OWNER_REFERENCES))
            .is_some_and(|v| v == "true");
    let ok = controlled_as_wanted && ct_eq(expected.as_bytes(), recorded.as_bytes());
    (ok, Some(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::test_keys;
    use zeroize::Zeroizing;

    fn sealed(annotations: serde_json::Value) -> SealedSecret {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "prod", "uid": "u-1", "resourceVersion": "7"},
            "spec": {
                "encryptedData": {"password": "AgB..."},
                "template": {
                    "type": "kubernetes.io/basic-auth",
                    "metadata": {
                        "name": "ignored", "uid": "x", "resourceVersion": "9",
                        "labels": {"app": "db"},
                        "annotations": annotations
                    }
                }
            }
        }))
        .unwrap()
    }

    fn unsealed(items: &[(&str, &str)]) -> Unsealed {
        Unsealed {
            opened: gitseal_api::Unsealed {
                data: items
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Zeroizing::new(v.as_bytes().to_vec())))
                    .collect(),
                legacy: None,
                key: None,
                rsa_operations: 0,
            },
            key: None,
        }
    }

    #[test]
    fn the_desired_secret_follows_the_template() {
        let ss = sealed(serde_json::json!({"note": "kept"}));
        let secret = desired_secret(&ss, unsealed(&[("password", "s3cret")]));
        assert_eq!(secret.metadata.name.as_deref(), Some("db"));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("prod"));
        assert!(secret.metadata.uid.is_none() && secret.metadata.resource_version.is_none());
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        assert_eq!(secret.labels()["app"], "db");
        assert_eq!(secret.annotations()["note"], "kept");
        assert_eq!(secret.data.as_ref().unwrap()["password"].0, b"s3cret");
        let owner = &secret.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("SealedSecret", "u-1")
        );
        assert_eq!(owner.controller, Some(true));

        let skip = sealed(serde_json::json!({(ANNOTATION_SKIP_SET_OWNER_REFERENCES): "true"}));
        assert!(
            desired_secret(&skip, unsealed(&[]))
                .owner_references()
                .is_empty()
        );
        let mut untyped = sealed(serde_json::json!({}));
        untyped.spec.template.as_mut().unwrap().type_ = Some(String::new());
        assert_eq!(
            desired_secret(&untyped, unsealed(&[])).type_.as_deref(),
            Some("Opaque")
        );
    }

    #[test]
    fn the_digest_verifies_exactly_what_was_written() {
        let keys = test_keys();
        let key = keys.latest().unwrap();
        let ss = sealed(serde_json::json!({}));
        let mut secret = desired_secret(&ss, unsealed(&[("password", "s3cret")]));
        let f = |s: &Secret| digest(key, &ss, s);
        secret::seal_digest(&mut secret, Some((DIGEST_ANNOTATION, &f)));
        let recorded = secret.annotations()[DIGEST_ANNOTATION].clone();
        assert!(recorded.starts_with(&format!("{}:", key.id)));
        assert_eq!(
            check_digest(&ss, &secret, &keys),
            (true, Some(key.id.clone()))
        );

        // Any change of the Secret, or of the SealedSecret, breaks it.
        let mut edited = secret.clone();
        edited
            .data
            .as_mut()
            .unwrap()
            .insert("password".into(), ByteString(b"x".to_vec()));
        assert!(!check_digest(&ss, &edited, &keys).0);
        let mut relabelled = secret.clone();
        relabelled
            .metadata
            .labels
            .get_or_insert_default()
            .insert("l".into(), "v".into());
        assert!(!check_digest(&ss, &relabelled, &keys).0);
        let mut changed = ss.clone();
        changed
            .spec
            .encrypted_data
            .insert("user".into(), "AgC...".into());
        assert!(!check_digest(&changed, &secret, &keys).0);
        // Not controlled by this SealedSecret (another uid): rebuilt.
        let mut other = ss.clone();
        other.metadata.uid = Some("u-2".into());
        assert!(!check_digest(&other, &secret, &keys).0);
        // No annotation, or an unknown key: no verdict, no preferred key.
        let mut bare = secret.clone();
        bare.metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove(DIGEST_ANNOTATION);
        assert_eq!(check_digest(&ss, &bare, &keys), (false, None));
        let mut unknown = secret.clone();
        unknown
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(DIGEST_ANNOTATION.into(), "0000:ff".into());
        assert_eq!(check_digest(&ss, &unknown, &keys), (false, None));
        // A forged value under a known key id is refused, and that key is tried first.
        let mut forged = secret.clone();
        let value = format!("{}:{}", key.id, "00".repeat(32));
        forged
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(DIGEST_ANNOTATION.into(), value);
        assert_eq!(
            check_digest(&ss, &forged, &keys),
            (false, Some(key.id.clone()))
        );
    }
}
