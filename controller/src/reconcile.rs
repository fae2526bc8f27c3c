//! The SealedSecret reconciler (spec §3.3–§3.4), with gitseal's digest short-cut.
//!
//! Each generated Secret carries the annotation [`DIGEST_ANNOTATION`]: the id of a sealing
//! key and an HMAC, under a key derived from that private key, over the SealedSecret (uid,
//! OAEP label, spec) and the Secret's own type, labels, annotations and data. When the
//! annotation still verifies, the Secret is exactly what this SealedSecret produces, so a
//! restart or resync costs one GET and no RSA work; any edit of the Secret or change of the
//! SealedSecret breaks it and the Secret is rebuilt.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gitseal_api::{
    ANNOTATION_MANAGED, ANNOTATION_PATCH, ANNOTATION_SKIP_SET_OWNER_REFERENCES, SealedSecret,
    SealedSecretCondition, SealedSecretStatus,
};
use gitseal_crypto::primitives::{HmacSha256, ct_eq};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use crate::Error;
use crate::context::Context;
use crate::keyring::{Keys, SealingKey, wipe_secret};
use crate::metrics::{Metrics, OutcomeLabels};
use crate::unseal::{Unsealed, label_of};

/// Annotation on generated Secrets: `<key id>:<hex HMAC>` (see the module documentation).
pub const DIGEST_ANNOTATION: &str = "gitseal.dev/digest";

const IMMUTABLE_MESSAGE: &str = "the target Secret is immutable and its data differs from the \
     SealedSecret; delete the Secret so that the controller can create it anew";

/// Reconciles one SealedSecret. The controller caches SealedSecrets' metadata only (memory
/// stays small with many objects); the whole object is read here, fresh.
#[tracing::instrument(skip(meta, ctx), fields(namespace = meta.namespace().unwrap_or_default(), name = meta.name_any()))]
pub async fn reconcile(
    meta: Arc<PartialObjectMeta<SealedSecret>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.unseal_requests.inc();
    let api: Api<SealedSecret> =
        Api::namespaced(ctx.client.clone(), &meta.namespace().unwrap_or_default());
    let Some(ss) = api.get_opt(&meta.name_any()).await.inspect_err(|_| {
        ctx.metrics.error("fetch", "");
    })?
    else {
        return Ok(Action::await_change()); // deleted; its Secret goes with it (ownerReference)
    };
    if ss.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let outcome = sync(&ss, &ctx).await;
    let label = match &outcome {
        Ok(Outcome::Written) => "written",
        Ok(Outcome::Unchanged) => "unchanged",
        Err(_) => "error",
    };
    ctx.metrics
        .reconcile_duration
        .get_or_create(&OutcomeLabels {
            outcome: label.into(),
        })
        .observe(started.elapsed().as_secs_f64());
    let status = outcome.as_ref().map(|_| ()).map_err(|e| e.to_string());
    // API errors while reading or writing are transient: they leave the status alone.
    if !matches!(&outcome, Err(Error::Kube(_))) {
        // A status that could not be written is retried like any transient error.
        update_status(&ss, &ctx, status).await?;
    }
    match outcome {
        Ok(_) => {
            ctx.forget_retries(&ss);
            Ok(Action::await_change())
        }
        Err(e) => Err(e),
    }
}

/// What a successful reconcile did.
enum Outcome {
    /// The Secret was created or updated.
    Written,
    /// The Secret was already up to date (digest matched).
    Unchanged,
}

async fn sync(ss: &SealedSecret, ctx: &Context) -> Result<Outcome, Error> {
    let namespace = ss.namespace().unwrap_or_default();
    let name = ss.name_any();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = api.get_opt(&name).await.inspect_err(|_| {
        ctx.metrics.error("fetch", "");
    })?;
    let keys = ctx.keyring.snapshot();
    let (digest_ok, preferred) = match &existing {
        Some(secret) => check_digest(ss, secret, &keys),
        None => (false, None),
    };
    if digest_ok {
        if let Some(secret) = existing {
            wipe_secret(secret);
        }
        tracing::debug!("Secret up to date (digest matches), nothing to decrypt");
        return Ok(Outcome::Unchanged);
    }

    let unsealed = match ctx.unseal(ss, keys, preferred).await {
        Ok(unsealed) => unsealed,
        Err(failure) => {
            ctx.metrics.error("unseal", &namespace);
            let message = format!("Failed to unseal: {failure}");
            ctx.event(ss, EventType::Warning, "ErrUnsealFailed", &message)
                .await;
            if let Some(secret) = existing {
                wipe_secret(secret);
            }
            return Err(Error::Unseal(failure.message));
        }
    };
    let result = write(ss, &api, existing, unsealed).await;
    match &result {
        Ok(Outcome::Written) => {
            ctx.event(
                ss,
                EventType::Normal,
                "Unsealed",
                "SealedSecret unsealed successfully",
            )
            .await;
        }
        Ok(Outcome::Unchanged) => {}
        Err(e) => {
            let reason = if matches!(e, Error::Unmanaged(_)) {
                "unmanaged"
            } else {
                "update"
            };
            ctx.metrics.error(reason, &namespace);
            ctx.event(ss, EventType::Warning, "ErrUpdateFailed", &e.to_string())
                .await;
        }
    }
    result
}

/// Creates or updates the Secret from `unsealed` (spec §3.3 steps 3–6).
async fn write(
    ss: &SealedSecret,
    api: &Api<Secret>,
    existing: Option<Secret>,
    unsealed: Unsealed,
) -> Result<Outcome, Error> {
    let key = unsealed.key.clone();
    let mut desired = desired_secret(ss, unsealed);
    let Some(existing) = existing else {
        seal_digest(ss, key.as_deref(), &mut desired);
        let created = api.create(&PostParams::default(), &desired).await;
        wipe_secret(desired);
        wipe_secret(created?);
        tracing::info!("Secret created");
        return Ok(Outcome::Written);
    };
    let controlled = is_controlled_by(&existing, ss);
    let annotated = |key: &str| existing.annotations().get(key).is_some_and(|v| v == "true");
    let (managed, patch) = (annotated(ANNOTATION_MANAGED), annotated(ANNOTATION_PATCH));
    if !controlled && !managed && !patch {
        let name = existing.name_any();
        wipe_secret(existing);
        wipe_secret(desired);
        return Err(Error::Unmanaged(name));
    }
    let mut updated = existing.clone();
    if patch {
        let data = updated.data.get_or_insert_default();
        data.extend(desired.data.take().unwrap_or_default());
        let labels = updated.metadata.labels.get_or_insert_default();
        labels.extend(desired.metadata.labels.take().unwrap_or_default());
        let annotations = updated.metadata.annotations.get_or_insert_default();
        annotations.extend(desired.metadata.annotations.take().unwrap_or_default());
        if managed {
            updated.metadata.owner_references = desired.metadata.owner_references.take();
        }
    } else {
        updated.data = desired.data.take();
        updated.metadata.annotations = desired.metadata.annotations.take();
        updated.metadata.labels = desired.metadata.labels.take();
        updated.metadata.owner_references = desired.metadata.owner_references.take();
    }
    updated.type_ = desired.type_.take();
    wipe_secret(desired);
    seal_digest(ss, key.as_deref(), &mut updated);
    let same = updated.data == existing.data
        && updated.metadata.labels == existing.metadata.labels
        && updated.metadata.annotations == existing.metadata.annotations
        && updated.metadata.owner_references == existing.metadata.owner_references
        && updated.type_ == existing.type_;
    let immutable_conflict = existing.immutable == Some(true) && updated.data != existing.data;
    wipe_secret(existing);
    if same {
        wipe_secret(updated);
        return Ok(Outcome::Unchanged);
    }
    if immutable_conflict {
        wipe_secret(updated);
        return Err(Error::Immutable(IMMUTABLE_MESSAGE.into()));
    }
    let replaced = api
        .replace(&ss.name_any(), &PostParams::default(), &updated)
        .await;
    wipe_secret(updated);
    wipe_secret(replaced?);
    tracing::info!("Secret updated");
    Ok(Outcome::Written)
}

/// The Secret a SealedSecret describes (spec §3.3 step 2).
fn desired_secret(ss: &SealedSecret, unsealed: Unsealed) -> Secret {
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
    if let Some(legacy) = unsealed.legacy {
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
        .data
        .into_iter()
        .map(|(k, v)| (k, ByteString(v.to_vec())))
        .collect();
    Secret {
        metadata,
        type_: Some(type_.unwrap_or_else(|| "Opaque".into())),
        immutable: template.immutable,
        data: Some(data),
        ..Secret::default()
    }
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

fn is_controlled_by(secret: &Secret, ss: &SealedSecret) -> bool {
    let uid = ss.uid();
    secret
        .owner_references()
        .iter()
        .any(|r| r.controller == Some(true) && Some(&r.uid) == uid.as_ref())
}

/// The digest of `secret` as produced from `ss` under `key`.
fn digest(key: &SealingKey, ss: &SealedSecret, secret: &Secret) -> String {
    let mut mac = HmacSha256::new(key.digest_key());
    mac.update_field(b"gitseal digest v1");
    mac.update_field(ss.uid().unwrap_or_default().as_bytes());
    mac.update_field(&label_of(ss));
    mac.update_field(&serde_json::to_vec(&ss.spec).unwrap_or_default());
    mac.update_field(secret.type_.as_deref().unwrap_or("Opaque").as_bytes());
    let maps = [
        secret.metadata.labels.as_ref(),
        secret.metadata.annotations.as_ref(),
    ];
    for map in maps {
        let entries = map.into_iter().flatten();
        let entries: Vec<_> = entries.filter(|(k, _)| *k != DIGEST_ANNOTATION).collect();
        mac.update_field(&(entries.len() as u64).to_be_bytes());
        for (k, v) in entries {
            mac.update_field(k.as_bytes());
            mac.update_field(v.as_bytes());
        }
    }
    let data = secret.data.as_ref();
    mac.update_field(&(data.map_or(0, BTreeMap::len) as u64).to_be_bytes());
    for (k, v) in data.into_iter().flatten() {
        mac.update_field(k.as_bytes());
        mac.update_field(&v.0);
    }
    format!("{}:{}", key.id, hex::encode(mac.finish()))
}

fn seal_digest(ss: &SealedSecret, key: Option<&SealingKey>, secret: &mut Secret) {
    let annotations = secret.metadata.annotations.get_or_insert_default();
    annotations.remove(DIGEST_ANNOTATION);
    if let Some(key) = key {
        let value = digest(key, ss, secret);
        secret
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(DIGEST_ANNOTATION.into(), value);
    }
}

/// Whether `secret` is exactly what `ss` produces (its digest verifies), and the key that
/// last worked for this object, to try first when it does not.
fn check_digest(ss: &SealedSecret, secret: &Secret, keys: &Keys) -> (bool, Option<String>) {
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
    let controlled_as_wanted = is_controlled_by(secret, ss)
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

/// Writes the `Synced` condition by upstream's rule (spec §3.4): only when the status or
/// message changes or `observedGeneration` lags.
async fn update_status(
    ss: &SealedSecret,
    ctx: &Context,
    result: Result<(), String>,
) -> Result<(), Error> {
    let namespace = ss.namespace().unwrap_or_default();
    let name = ss.name_any();
    let synced = result.is_ok();
    if !ctx.config.metrics_omit_secret_labels {
        ctx.metrics
            .condition_info
            .get_or_create(&Metrics::condition_labels(ss))
            .set(if synced { 1 } else { -1 });
    }
    if !ctx.config.update_status {
        return Ok(());
    }
    let status_text = if synced { "True" } else { "False" };
    let message = result.err();
    let old = ss.status.clone().unwrap_or_default();
    let mut conditions = old.conditions.clone().unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let generation = ss.meta().generation;
    let position = conditions.iter().position(|c| c.type_ == "Synced");
    let changed = match position {
        Some(i) => conditions[i].status != status_text || conditions[i].message != message,
        None => true,
    };
    if !changed && old.observed_generation == generation {
        return Ok(());
    }
    let condition = match position {
        Some(i) => &mut conditions[i],
        None => {
            conditions.push(SealedSecretCondition {
                type_: "Synced".into(),
                ..SealedSecretCondition::default()
            });
            conditions.last_mut().expect("just pushed")
        }
    };
    if condition.status != status_text {
        condition.last_transition_time = Some(now.clone());
    }
    condition.status = status_text.into();
    condition.message = message;
    condition.last_update_time = Some(now);
    let status = SealedSecretStatus {
        observed_generation: generation,
        conditions: Some(conditions),
    };
    let api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = serde_json::json!({ "status": status });
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()), // deleted meanwhile
        Err(e) => {
            ctx.metrics.error("status", &namespace);
            Err(e.into())
        }
    }
}

/// What to do after a failed reconcile: transient API errors are retried with backoff
/// without limit (nothing is lost); decryption and ownership failures `--max-unseal-retries`
/// times, then wait for the next change; immutable conflicts are not retried.
pub fn error_policy(
    ss: Arc<PartialObjectMeta<SealedSecret>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(
        namespace = ss.namespace().unwrap_or_default(),
        name = ss.name_any(),
        "reconcile failed: {error}"
    );
    let attempt = ctx.count_retry(ss.as_ref());
    let backoff = Duration::from_millis(5u64.saturating_mul(1 << attempt.min(17))).min(
        Duration::from_secs(300), // upstream: 5 ms doubling to 1000 s; 5 min keeps it responsive
    );
    match error {
        Error::Immutable(_) => Action::await_change(),
        Error::Unseal(_) | Error::Unmanaged(_) if attempt > ctx.config.max_unseal_retries => {
            Action::await_change()
        }
        _ => Action::requeue(backoff),
    }
}
