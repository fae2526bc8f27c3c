//! The ExternalSecret reconciler (`external-secrets.io/v1` and `v1beta1`): keeps a Secret
//! in sync with values in a secret store, as the External Secrets Operator does (spec
//! §1–§3), on the controller's spine — and safer where ESO hurts its users:
//!
//! - only a definite not-found, seen on **two consecutive syncs**, may delete or empty
//!   anything; 403, 5xx and timeouts keep the last good Secret and set `Ready=False`;
//! - a Secret is never written with values missing, never taken over from someone else
//!   (ESO's marks count, so a migration adopts ESO's Secrets) unless the policy says
//!   `Merge`, and never touched when a SealedSecret, a SopsSecret or another
//!   ExternalSecret controls it;
//! - one read per remote path per sync, however many properties are taken from it, and
//!   one authenticated provider client per store and identity (see [`provider`]);
//! - fetched values live in wiping buffers for the length of one sync, never in a cache.
//!
//! Modules: [`refresh`] (when to sync), [`store`] (which store, which namespace),
//! [`provider`] (clients), [`data`] (keys and values), [`template`], [`target`] (the
//! Secret and its marks).

pub mod data;
pub mod provider;
pub mod refresh;
pub mod store;
pub mod target;
pub mod template;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use gitseal_api::{
    ANNOTATION_DATA_HASH, CreationPolicy, DeletionPolicy, ExternalSecret, ExternalSecretCondition,
    ExternalSecretDataRemoteRef, SecretStoreRef, StoreKind,
};
use gitseal_backends::provider::{FindQuery, ProviderError, SecretMap, SecretProvider};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use tokio::sync::watch;

use self::data::DataMap;
use super::secret::{self, Applied, SecretData, Writer};
use super::{Reconciled, controller, drive};
use crate::config::Config;
use crate::context::Context;
use crate::{Error, metrics};

impl Reconciled for ExternalSecret {
    fn max_retries(_config: &Config) -> u32 {
        u32::MAX // provider and store failures retry with backoff, as ESO
    }
}

/// What the ExternalSecret reconciler keeps between syncs: provider clients, and which
/// ExternalSecrets saw a not-found on their last sync. No secret values.
pub struct Shared {
    /// Authenticated provider clients per store and identity.
    pub providers: provider::Providers,
    /// The sources a definite not-found left out on the last sync, per ExternalSecret uid.
    not_found: Mutex<HashMap<String, Vec<String>>>,
}

impl Shared {
    /// Nothing kept yet; provider calls are counted in `metrics`.
    pub fn new(metrics: crate::metrics::ExternalSecretMetrics) -> Self {
        Self {
            providers: provider::Providers::new(metrics),
            not_found: Mutex::default(),
        }
    }
}

/// Starts the ExternalSecret reconciler in `namespace` (`None`: all) until `stop`.
pub fn start(
    ctx: Arc<Context>,
    namespace: Option<String>,
    stop: watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    let forget = ctx.clone();
    let controller = controller::<ExternalSecret>(
        &ctx,
        namespace.as_deref(),
        "",
        true,
        move |object: &PartialObjectMeta<ExternalSecret>| {
            let (name, namespace) = (object.name_any(), object.namespace().unwrap_or_default());
            let metrics = &forget.metrics.external_secrets;
            metrics::remove_condition(&metrics.status_condition, &name, &namespace);
            if let Some(uid) = object.uid() {
                forget.external.not_found.lock().expect("lock").remove(&uid);
            }
        },
    );
    drive(controller, reconcile, ctx, stop).boxed()
}

/// How soon a definite not-found is looked at again (at most; sooner with a shorter
/// refresh interval).
const NOT_FOUND_RECHECK: Duration = Duration::from_secs(30);

/// What a sync did, for the Ready condition and the events.
enum Outcome {
    Synced(Applied),
    Deleted,
    Retained,
    Missing,
    NothingToWrite,
}

impl Outcome {
    /// ESO's Ready reason and message.
    fn condition(&self) -> (&'static str, &'static str) {
        match self {
            Outcome::Synced(_) | Outcome::NothingToWrite => ("SecretSynced", "secret synced"),
            Outcome::Retained => (
                "SecretSynced",
                "secret retained due to DeletionPolicy=Retain",
            ),
            Outcome::Deleted => (
                "SecretDeleted",
                "secret deleted due to DeletionPolicy=Delete",
            ),
            Outcome::Missing => (
                "SecretMissing",
                "secret will not be created due to CreationPolicy=Merge",
            ),
        }
    }
}

/// Reconciles one ExternalSecret: read it whole, decide whether a sync is due (or the
/// target needs repair), sync, write the status.
pub async fn reconcile(
    meta: Arc<PartialObjectMeta<ExternalSecret>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let namespace = meta.namespace().unwrap_or_default();
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(es) = api.get_opt(&meta.name_any()).await.map_err(Error::Fetch)? else {
        return Ok(Action::await_change());
    };
    if es.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let mut timer = ctx
        .metrics
        .external_secrets
        .measure(&es.name_any(), &namespace);
    let now = Timestamp::now();
    let interval = refresh::interval(&es);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = secrets
        .get_opt(&target::target_name(&es))
        .await
        .map_err(Error::Fetch)?
        .map(SecretData::new);
    if let Ok(interval) = &interval
        && !refresh::due(&es, *interval, now)
        && target::is_valid(existing.as_deref(), es.spec.target.creation_policy)
    {
        timer.outcome("skipped");
        ctx.forget_retries(meta.as_ref());
        return Ok(requeue(&es, *interval, now));
    }
    let result = match &interval {
        Ok(interval) => sync(&ctx, &es, existing).await.map(|o| (o, *interval)),
        Err(e) => Err(Error::Sync(format!("spec.refreshInterval: {e}"))),
    };
    let interval = interval.ok().filter(|i| !i.is_zero());
    match result {
        Ok((outcome, interval)) => {
            let (reason, message) = outcome.condition();
            let event = match outcome {
                Outcome::Synced(Applied::Created) => Some(("Created", "secret created")),
                Outcome::Synced(Applied::Updated) => Some(("Updated", "secret updated")),
                Outcome::Deleted => {
                    Some(("Deleted", "secret deleted due to DeletionPolicy=Delete"))
                }
                _ => None,
            };
            if let Some((reason, note)) = event {
                ctx.event(&es, EventType::Normal, reason, note).await;
            }
            write_status(&ctx, &es, true, reason, message, Some(now)).await?;
            timer.outcome("synced");
            ctx.forget_retries(meta.as_ref());
            let mut synced = es.clone();
            let status = synced.status.get_or_insert_default();
            status.refresh_time = Some(Time(now));
            Ok(requeue(&synced, interval, now))
        }
        Err(error) => {
            let message = match &error {
                Error::Provider(_) => "could not get secret data from provider",
                Error::Unmanaged { .. } => "failed to take ownership of target secret",
                Error::Immutable(_) => "could not update secret, target is immutable",
                Error::Write(_) => "could not update secret",
                _ => "could not get secret data from provider",
            };
            ctx.event(&es, EventType::Warning, "UpdateFailed", &error.to_string())
                .await;
            write_status(&ctx, &es, false, "SecretSyncedError", message, None).await?;
            if matches!(error, Error::Provider(ProviderError::NotFound { .. })) {
                // Looked at again soon: a second not-found confirms it (and only then may
                // the deletion policy act); the Secret is kept meanwhile.
                let recheck = interval.unwrap_or(NOT_FOUND_RECHECK).min(NOT_FOUND_RECHECK);
                return Ok(Action::requeue(recheck.max(Duration::from_secs(1))));
            }
            Err(error)
        }
    }
}

/// When to look again after a sync or a skip: at the next refresh (never for
/// `refreshInterval: 0`, CreatedOnce and OnChange, which wait for a change).
fn requeue(es: &ExternalSecret, interval: Duration, now: Timestamp) -> Action {
    match refresh::requeue_after(es, interval, now) {
        None => Action::await_change(),
        Some(after) => Action::requeue(after.max(Duration::from_millis(100))),
    }
}

/// Sets the Ready condition (ESO's shape) and, after a sync, `refreshTime` and
/// `syncedResourceVersion`; writes only what changed.
async fn write_status(
    ctx: &Context,
    es: &ExternalSecret,
    ready: bool,
    reason: &str,
    message: &str,
    synced_at: Option<Timestamp>,
) -> Result<(), Error> {
    let namespace = es.namespace().unwrap_or_default();
    metrics::set_condition(
        &ctx.metrics.external_secrets.status_condition,
        &es.name_any(),
        &namespace,
        ready,
    );
    let status_text = if ready { "True" } else { "False" };
    let old = es.status.clone().unwrap_or_default();
    let previous = old.conditions.iter().find(|c| c.type_ == "Ready");
    let unchanged_condition = previous.is_some_and(|c| {
        c.status == status_text
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
    });
    if unchanged_condition && synced_at.is_none() {
        return Ok(());
    }
    let transition = match previous {
        Some(c) if c.status == status_text => c.last_transition_time.clone(),
        _ => None,
    }
    .unwrap_or_else(|| Time(Timestamp::now()));
    let mut conditions: Vec<ExternalSecretCondition> = old
        .conditions
        .iter()
        .filter(|c| c.type_ != "Ready")
        .cloned()
        .collect();
    conditions.push(ExternalSecretCondition {
        type_: "Ready".into(),
        status: status_text.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: Some(transition),
    });
    let mut status = serde_json::json!({ "conditions": conditions });
    if let Some(at) = synced_at {
        status["refreshTime"] = serde_json::to_value(Time(at)).unwrap_or_default();
        status["syncedResourceVersion"] = refresh::resource_version(es).into();
        status["binding"] = serde_json::json!({ "name": target::target_name(es) });
    }
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    super::status::patch(&api, &es.name_any(), status).await
}

/// One sync: fetch, apply the deletion policy to what is missing, template, write.
async fn sync(
    ctx: &Context,
    es: &ExternalSecret,
    existing: Option<SecretData>,
) -> Result<Outcome, Error> {
    let namespace = es.namespace().unwrap_or_default();
    let uid = es.uid().unwrap_or_default();
    let target = &es.spec.target;
    let mut sources = Sources::new(ctx, es);
    let fetched = sources.fetch().await;
    drop(sources);
    let fetched = fetched?;
    // A definite not-found counts only when the same sources were missing on the
    // previous sync too.
    {
        let mut seen = ctx.external.not_found.lock().expect("lock");
        if fetched.missing.is_empty() {
            seen.remove(&uid);
        } else {
            let confirmed = seen.get(&uid) == Some(&fetched.missing);
            seen.insert(uid.clone(), fetched.missing.clone());
            if !confirmed || target.deletion_policy == DeletionPolicy::Retain {
                return Err(Error::Provider(ProviderError::NotFound {
                    key: fetched.missing.join(", "),
                }));
            }
        }
    }
    for source in &fetched.missing {
        let note = format!("secret does not exist at provider using {source}");
        ctx.event(es, EventType::Normal, "MissingProviderSecret", &note)
            .await;
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    if fetched.data.is_empty() {
        match target.deletion_policy {
            DeletionPolicy::Delete => {
                if target.creation_policy != CreationPolicy::Owner {
                    return Err(Error::Sync(
                        "DeletionPolicy=Delete needs CreationPolicy=Owner".into(),
                    ));
                }
                if let Some(existing) = existing {
                    secret::delete_owned(&secrets, &existing, Some(&uid)).await?;
                }
                return Ok(Outcome::Deleted);
            }
            DeletionPolicy::Retain => return Ok(Outcome::Retained),
            _ => {}
        }
    }
    let delimiters = (
        ctx.config.external_secrets.template_left_delimiter.as_str(),
        ctx.config
            .external_secrets
            .template_right_delimiter
            .as_str(),
    );
    let rendered = template::apply(&ctx.client, es, fetched.data, delimiters).await?;
    match target.creation_policy {
        CreationPolicy::None => return Ok(Outcome::NothingToWrite),
        CreationPolicy::Merge if existing.is_none() => return Ok(Outcome::Missing),
        _ => {}
    }
    let mut rendered = rendered;
    data::validate_keys(&mut rendered.data).map_err(Error::Sync)?;
    let mut desired = target::desired(es, existing.as_deref(), rendered.data);
    let metadata = &mut desired.metadata;
    metadata
        .labels
        .get_or_insert_default()
        .extend(rendered.labels);
    metadata
        .annotations
        .get_or_insert_default()
        .extend(rendered.annotations);
    if target.creation_policy == CreationPolicy::Owner
        && es
            .status
            .as_ref()
            .and_then(|s| s.synced_resource_version.as_deref())
            != Some(refresh::resource_version(es).as_str())
    {
        delete_orphans(&secrets, es, &uid).await?;
    }
    let writer = Writer {
        kind: "ExternalSecret",
        ownership: &|existing: &Secret| target::ownership(es, existing),
        digest: Some((ANNOTATION_DATA_HASH, &target::data_hash)),
        field_manager: Some(target::field_manager(&es.name_any())),
    };
    Ok(Outcome::Synced(
        secret::apply(&secrets, existing, desired, &writer).await?,
    ))
}

/// Deletes Secrets this ExternalSecret created under another name (its target was
/// renamed): only ones it controls. Runs when the spec or metadata changed.
async fn delete_orphans(
    secrets: &Api<Secret>,
    es: &ExternalSecret,
    uid: &str,
) -> Result<(), Error> {
    let namespace = es.namespace().unwrap_or_default();
    let selector = format!(
        "{}={}",
        gitseal_api::LABEL_CREATED_BY,
        target::created_by(&namespace, &es.name_any())
    );
    let metas: Api<PartialObjectMeta<Secret>> =
        Api::namespaced(secrets.clone().into_client(), &namespace);
    let list = metas
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::Fetch)?;
    let name = target::target_name(es);
    for meta in list.items.into_iter().filter(|m| m.name_any() != name) {
        let secret = Secret {
            metadata: meta.metadata,
            ..Secret::default()
        };
        if secret::delete_owned(secrets, &secret, Some(uid)).await? {
            tracing::info!(secret = secret.name_any(), "orphaned Secret deleted");
        }
    }
    Ok(())
}

/// The fetched keys of one sync, and the sources a definite not-found left out.
struct Fetched {
    data: DataMap,
    missing: Vec<String>,
}

/// Reads of one sync: stores resolved once, each remote path read once.
struct Sources<'a> {
    ctx: &'a Context,
    es: &'a ExternalSecret,
    namespace: String,
    providers: HashMap<(StoreKind, String), Arc<dyn SecretProvider>>,
    reads: HashMap<ReadKey, Option<Arc<SecretMap>>>,
}

/// One read of a sync: store kind and name, remote key, version.
type ReadKey = (StoreKind, String, String, Option<String>);

impl<'a> Sources<'a> {
    fn new(ctx: &'a Context, es: &'a ExternalSecret) -> Self {
        Self {
            ctx,
            es,
            namespace: es.namespace().unwrap_or_default(),
            providers: HashMap::new(),
            reads: HashMap::new(),
        }
    }

    /// The store an entry reads from: its own `sourceRef.storeRef`, else the spec's.
    fn store_ref(&self, own: Option<&'a SecretStoreRef>) -> Result<&'a SecretStoreRef, Error> {
        own.or(self.es.spec.secret_store_ref.as_ref())
            .ok_or_else(|| {
                Error::Sync("no secretStoreRef: neither in the spec nor in the entry".into())
            })
    }

    async fn provider(
        &mut self,
        reference: &SecretStoreRef,
    ) -> Result<Arc<dyn SecretProvider>, Error> {
        let key = (reference.kind, reference.name.clone());
        if let Some(provider) = self.providers.get(&key) {
            return Ok(provider.clone());
        }
        let class = &self.ctx.config.external_secrets.controller_class;
        let store = store::resolve(&self.ctx.client, &self.namespace, reference, class).await?;
        let provider = self
            .ctx
            .external
            .providers
            .get(self.ctx, &store, &self.namespace)
            .await?;
        self.providers.insert(key, provider.clone());
        Ok(provider)
    }

    /// The secret at `remote.key` (`None`: definitely not found), read at most once.
    async fn read(
        &mut self,
        reference: &SecretStoreRef,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Option<Arc<SecretMap>>, Error> {
        let key = (
            reference.kind,
            reference.name.clone(),
            remote.key.clone(),
            remote.version.clone(),
        );
        if let Some(read) = self.reads.get(&key) {
            return Ok(read.clone());
        }
        let provider = self.provider(reference).await?;
        let read = match provider
            .get_map(&remote.key, remote.version.as_deref())
            .await
        {
            Ok(map) => Some(Arc::new(map)),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(Error::Provider(e)),
        };
        self.reads.insert(key, read.clone());
        Ok(read)
    }

    async fn fetch(&mut self) -> Result<Fetched, Error> {
        let es = self.es;
        let mut fetched = Fetched {
            data: DataMap::new(),
            missing: Vec::new(),
        };
        let options = data::template_options(
            &self.ctx.config.external_secrets.template_left_delimiter,
            &self.ctx.config.external_secrets.template_right_delimiter,
        );
        for (i, from) in es.spec.data_from.iter().enumerate() {
            let reference =
                self.store_ref(from.source_ref.as_ref().and_then(|s| s.store_ref.as_ref()))?;
            let (map, conversion, decoding) = if let Some(extract) = &from.extract {
                let Some(secret) = self.read(reference, extract).await? else {
                    fetched.missing.push(format!("spec.dataFrom[{i}]"));
                    continue;
                };
                let map = secret
                    .extract(extract.property.as_deref())
                    .map_err(Error::Provider)?;
                let map: DataMap = map
                    .iter()
                    .map(|(k, v)| (k.to_owned(), zeroize::Zeroizing::new(v.as_bytes().to_vec())))
                    .collect();
                (map, extract.conversion_strategy, extract.decoding_strategy)
            } else if let Some(find) = &from.find {
                let provider = self.provider(reference).await?;
                let query = FindQuery {
                    path: find.path.clone(),
                    name_regexp: find.name.as_ref().map(|n| n.regexp.clone()),
                    tags: find.tags.clone(),
                };
                let found = provider.find(&query).await.map_err(Error::Provider)?;
                let map: DataMap = found
                    .into_iter()
                    .map(|(k, v)| (k, v.into_inner()))
                    .collect();
                (map, find.conversion_strategy, find.decoding_strategy)
            } else {
                return Err(Error::Sync(format!(
                    "spec.dataFrom[{i}]: generators are not supported"
                )));
            };
            let map = if from.rewrite.is_empty() {
                data::convert_keys(conversion, map)
            } else {
                data::rewrite(&from.rewrite, map, &options).map_err(Error::Sync)?
            };
            let map = data::decode_map(decoding, map).map_err(Error::Sync)?;
            fetched.data.extend(map);
        }
        for (i, entry) in es.spec.data.iter().enumerate() {
            let reference =
                self.store_ref(entry.source_ref.as_ref().and_then(|s| s.store_ref.as_ref()))?;
            let remote = &entry.remote_ref;
            let Some(secret) = self.read(reference, remote).await? else {
                fetched
                    .missing
                    .push(format!("spec.data[{i}] (key={})", remote.key));
                continue;
            };
            let value = secret
                .value(remote.property.as_deref())
                .map_err(Error::Provider)?;
            let value = data::decode(remote.decoding_strategy, value.as_bytes()).map_err(|e| {
                Error::Sync(format!("failure decoding key {}: {e}", entry.secret_key))
            })?;
            fetched.data.insert(entry.secret_key.clone(), value);
        }
        Ok(fetched)
    }
}
