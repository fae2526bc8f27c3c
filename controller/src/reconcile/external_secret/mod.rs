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

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
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
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use tokio::sync::{broadcast, watch};

use self::data::DataMap;
use super::secret::{self, Applied, SecretData, Writer};
use super::{Reconciled, controller, drive};
use crate::config::Config;
use crate::context::Context;
use crate::{Error, scheduler};

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
    /// When each ExternalSecret syncs, and the reads they share.
    pub scheduler: crate::scheduler::Scheduler,
    /// The sources a definite not-found left out on the last sync, per ExternalSecret uid.
    not_found: Mutex<HashMap<String, Vec<String>>>,
    /// Stores resolved for a namespace, with their clients, for [`CLIENT_REUSE`].
    clients: Mutex<HashMap<ClientKey, (tokio::time::Instant, Client)>>,
}

/// An ExternalSecret's namespace, and the kind and name of a store it uses.
type ClientKey = (String, StoreKind, String);

/// How long a store resolved for a namespace (its spec, the namespace's permission to use
/// it, its credentials) is reused before it is read again: a few seconds, so that a
/// thousand ExternalSecrets on one store do not each read the store and its credential
/// Secret, while a changed store or rotated credential is seen almost at once.
const CLIENT_REUSE: Duration = Duration::from_secs(5);

impl Shared {
    /// Nothing kept yet; provider calls are counted in `metrics`; syncs at once and store
    /// limits from `config`.
    pub fn new(metrics: crate::metrics::ExternalSecretMetrics, config: &Config) -> Self {
        let external = &config.external_secrets;
        let limits = crate::scheduler::Limits {
            rate: external.store_rate_limit,
            burst: external.store_burst,
            concurrency: external.store_concurrency,
        };
        Self {
            providers: provider::Providers::new(metrics),
            scheduler: crate::scheduler::Scheduler::new(super::workers(config), limits),
            not_found: Mutex::default(),
            clients: Mutex::default(),
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
    // Reconciles either get one of the scheduler's slots or leave a ticket and end at
    // once; room beyond the slots lets them do that while the slots are busy.
    let workers = super::workers(&ctx.config);
    let runner = kube::runtime::controller::Config::default()
        .concurrency(u16::try_from(workers * 4).unwrap_or(u16::MAX));
    let controller = controller::<ExternalSecret>(
        &ctx,
        namespace.as_deref(),
        "",
        true,
        move |object: &PartialObjectMeta<ExternalSecret>| {
            let (name, namespace) = (object.name_any(), object.namespace().unwrap_or_default());
            forget.metrics.external_secrets.forget(&name, &namespace);
            if let Some(uid) = object.uid() {
                forget.external.not_found.lock().expect("lock").remove(&uid);
                forget.external.scheduler.forget(&uid);
            }
        },
    )
    .with_config(runner)
    .reconcile_on(on_demand(&ctx, namespace.clone()));
    async move {
        let scheduler = ctx.clone();
        let _running = scheduler.external.scheduler.run();
        learn(&ctx, namespace.as_deref()).await;
        drive(controller, reconcile, ctx, stop).await;
    }
    .boxed()
}

/// Tells the scheduler, before the first reconcile, what every existing ExternalSecret
/// reads and when it is due (one paginated list): so that their first reconciles after a
/// start wait in the periodic lane behind new and changed ones, and due reads are batched
/// from the start. A failure only costs that.
async fn learn(ctx: &Context, namespace: Option<&str>) {
    let api: Api<ExternalSecret> = match namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let now = Timestamp::now();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!("listing ExternalSecrets to schedule them failed: {e}");
                return;
            }
        };
        for es in &page.items {
            let synced = refresh::synced_version(es).unwrap_or_default().to_owned();
            let next = refresh::interval(es).ok().map(|interval| {
                if refresh::due(es, interval, now) {
                    Some(Duration::ZERO)
                } else {
                    refresh::requeue_after(es, interval, now)
                }
            });
            track_as(ctx, es, synced, next.flatten());
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return,
        }
    }
}

/// The ExternalSecrets in `namespace` (`None`: all) that a refresh on demand names.
fn on_demand(
    ctx: &Context,
    namespace: Option<String>,
) -> impl futures::Stream<Item = ObjectRef<PartialObjectMeta<ExternalSecret>>> + Send + 'static {
    let receiver = ctx.external.scheduler.subscribe();
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(named) => return Some((named, receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .filter(move |(ns, _)| std::future::ready(namespace.as_ref().is_none_or(|n| n == ns)))
    .map(|(ns, name)| ObjectRef::new(&name).within(&ns))
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

/// Reconciles one ExternalSecret once the scheduler admits it (new, changed and
/// on-demand ones first): read it whole, decide whether a sync is due (or the target needs
/// repair), sync, write the status.
pub async fn reconcile(
    meta: Arc<PartialObjectMeta<ExternalSecret>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let scheduler = &ctx.external.scheduler;
    let uid = meta.uid().unwrap_or_default();
    let lane = scheduler.lane(&uid, &refresh::metadata_version(meta.meta()));
    let ticket = (uid, meta.namespace().unwrap_or_default(), meta.name_any());
    let Some(_slot) = scheduler.try_admit(lane, ticket) else {
        // Waiting with a ticket: woken when a slot is reserved for it.
        return Ok(Action::requeue(UNWOKEN));
    };
    reconcile_admitted(meta, ctx.clone()).await
}

/// When an ExternalSecret waiting for a slot looks again if it was not woken (a lost
/// wake-up; normally it is woken long before).
const UNWOKEN: Duration = Duration::from_secs(60);

async fn reconcile_admitted(
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
    let uid = es.uid().unwrap_or_default();
    // Asked for on demand, or a not-found to confirm: sync whatever the interval says.
    let forced = ctx.external.scheduler.take_forced(&uid) | confirming(&ctx, &es);
    let interval = refresh::interval(&es);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = secrets
        .get_opt(&target::target_name(&es))
        .await
        .map_err(Error::Fetch)?
        .map(SecretData::new);
    if let Ok(interval) = &interval
        && !forced
        && !refresh::due(&es, *interval, now)
        && target::is_valid(existing.as_deref(), es.spec.target.creation_policy)
    {
        timer.outcome("skipped");
        ctx.forget_retries(meta.as_ref());
        return Ok(requeue(&ctx, &es, *interval, now));
    }
    let result = match &interval {
        Ok(interval) => sync(&ctx, &es, existing, *interval)
            .await
            .map(|o| (o, *interval)),
        Err(e) => Err(Error::Sync(format!("spec.refreshInterval: {e}"))),
    };
    let interval = interval.ok().filter(|i| !i.is_zero());
    match result {
        Ok(((outcome, fetched), interval)) => {
            // The data is as old as its oldest read (a shared read may be a little older
            // than this sync); the next refresh counts from there.
            let now = fetched.unwrap_or(now);
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
            Ok(requeue(&ctx, &synced, interval, now))
        }
        Err(Error::Provider(ProviderError::Throttled { retry_after, .. })) => {
            // The store asked to slow down: its gate is closed for a backoff. Wait it out
            // (with this object's jitter) without failing the object or touching its Secret.
            timer.outcome("throttled");
            let after = retry_after.unwrap_or(Duration::from_secs(1))
                + scheduler::jitter(&uid, interval.unwrap_or(Duration::from_secs(10)));
            track(&ctx, &es, Some(after));
            Ok(Action::requeue(after))
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
            if matches!(error, Error::Provider(ProviderError::NotFound { .. }))
                && confirming(&ctx, &es)
            {
                // Looked at again soon: a second not-found confirms it (and only then may
                // the deletion policy act); the Secret is kept meanwhile.
                let recheck = interval.unwrap_or(NOT_FOUND_RECHECK).min(NOT_FOUND_RECHECK);
                return Ok(Action::requeue(recheck.max(Duration::from_secs(1))));
            }
            Err(error)
        }
    }
}

/// Whether the last sync of `es` saw a not-found that the next one must confirm with a
/// read of its own before the deletion policy acts (never under `Retain`, which does not
/// act on it).
fn confirming(ctx: &Context, es: &ExternalSecret) -> bool {
    es.spec.target.deletion_policy != DeletionPolicy::Retain
        && es.uid().is_some_and(|uid| {
            let seen = ctx.external.not_found.lock().expect("lock");
            seen.contains_key(&uid)
        })
}

/// When to look again after a sync or a skip: at the next refresh plus this object's
/// jitter (never for `refreshInterval: 0`, CreatedOnce and OnChange, which wait for a
/// change); the scheduler learns it too.
fn requeue(ctx: &Context, es: &ExternalSecret, interval: Duration, now: Timestamp) -> Action {
    let uid = es.uid().unwrap_or_default();
    let after = refresh::requeue_after(es, interval, now)
        .map(|after| after.max(Duration::from_millis(100)) + scheduler::jitter(&uid, interval));
    track(ctx, es, after);
    match after {
        None => Action::await_change(),
        Some(after) => Action::requeue(after),
    }
}

/// Tells the scheduler what `es` (as it is now) reads and when it is next due.
fn track(ctx: &Context, es: &ExternalSecret, next: Option<Duration>) {
    track_as(ctx, es, refresh::resource_version(es), next);
}

/// [`track`], with the `syncedResourceVersion` it was handled at.
fn track_as(ctx: &Context, es: &ExternalSecret, version: String, next: Option<Duration>) {
    let namespace = es.namespace().unwrap_or_default();
    ctx.external.scheduler.track(
        &es.uid().unwrap_or_default(),
        (&namespace, &es.name_any()),
        version,
        remote_reads(es),
        next,
    );
}

/// The remote secrets the spec of `es` reads by key (`find` lists are not counted).
fn remote_reads(es: &ExternalSecret) -> Vec<scheduler::RemoteRead> {
    let namespace = es.namespace().unwrap_or_default();
    let target = |own: Option<&SecretStoreRef>| {
        let reference = own.or(es.spec.secret_store_ref.as_ref())?;
        Some(scheduler::StoreTarget {
            kind: reference.kind,
            name: reference.name.clone(),
            namespace: (reference.kind != StoreKind::ClusterSecretStore).then(|| namespace.clone()),
        })
    };
    let from = es.spec.data_from.iter().filter_map(|f| {
        let store = target(f.source_ref.as_ref().and_then(|s| s.store_ref.as_ref()))?;
        let extract = f.extract.as_ref()?;
        Some((store, extract.key.clone(), extract.version.clone()))
    });
    let data = es.spec.data.iter().filter_map(|d| {
        let store = target(d.source_ref.as_ref().and_then(|s| s.store_ref.as_ref()))?;
        Some((
            store,
            d.remote_ref.key.clone(),
            d.remote_ref.version.clone(),
        ))
    });
    let mut reads: Vec<_> = from.chain(data).collect();
    reads.sort_by(|a, b| (&a.1, &a.2, &a.0.name).cmp(&(&b.1, &b.2, &b.0.name)));
    reads.dedup();
    reads
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
    ctx.metrics
        .external_secrets
        .set_ready(&es.name_any(), &namespace, ready);
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

/// One sync: fetch, apply the deletion policy to what is missing, template, write. Also
/// says when the oldest value it used was read.
async fn sync(
    ctx: &Context,
    es: &ExternalSecret,
    existing: Option<SecretData>,
    interval: Duration,
) -> Result<(Outcome, Option<Timestamp>), Error> {
    let mut sources = Sources::new(ctx, es, interval);
    let fetched = sources.fetch().await;
    let read_at = sources.oldest;
    drop(sources);
    let outcome = write(ctx, es, existing, fetched?).await?;
    Ok((outcome, read_at))
}

/// The second half of a sync: from fetched values to the target Secret.
async fn write(
    ctx: &Context,
    es: &ExternalSecret,
    existing: Option<SecretData>,
    fetched: Fetched,
) -> Result<Outcome, Error> {
    let namespace = es.namespace().unwrap_or_default();
    let uid = es.uid().unwrap_or_default();
    let target = &es.spec.target;
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
    // Orphans are looked for after a change to a synced ExternalSecret (its target may
    // have been renamed), not on its first sync: a label-selected list scans the whole
    // namespace on the API server, and ten thousand new ExternalSecrets would make that
    // quadratic.
    if target.creation_policy == CreationPolicy::Owner && refresh::changed_since_sync(es) {
        delete_orphans(&secrets, es, &uid).await?;
    }
    let writer = Writer {
        kind: "ExternalSecret",
        ownership: &|existing: &Secret| target::ownership(es, existing),
        digest: Some((ANNOTATION_DATA_HASH, &target::data_hash)),
        field_manager: Some(target::field_manager(&es.name_any())),
        echoes: &ctx.echoes,
    };
    // Workloads that ask for it restart when the data of an existing Secret changes.
    let rotated = existing
        .as_deref()
        .is_some_and(|old| target::data_hash(old) != target::data_hash(&desired));
    let name = desired.name_any();
    let applied = secret::apply(&secrets, existing, desired, &writer).await?;
    if rotated && applied == Applied::Updated {
        ctx.rollout.secret_changed(&namespace, &name);
    }
    Ok(Outcome::Synced(applied))
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

/// Reads of one sync: stores resolved once, each remote path read once — through the
/// scheduler's shared reads, so that other ExternalSecrets' reads of the same secret in
/// the refresh window serve too (unless this one changed: then it reads anew).
struct Sources<'a> {
    ctx: &'a Context,
    es: &'a ExternalSecret,
    namespace: String,
    providers: HashMap<(StoreKind, String), Client>,
    reads: HashMap<ReadKey, Option<Arc<SecretMap>>>,
    /// How old a shared read may be.
    window: Duration,
    /// Whether shared reads may not serve: the spec or metadata changed since the last
    /// sync, or the last sync saw a not-found that this one must confirm.
    fresh: bool,
    /// When the oldest value used was read.
    oldest: Option<Timestamp>,
}

/// A store's client as one sync uses it.
#[derive(Clone)]
struct Client {
    provider: Arc<dyn SecretProvider>,
    gate: Arc<scheduler::Gate>,
    store: scheduler::StoreTarget,
}

/// One read of a sync: store kind and name, remote key, version.
type ReadKey = (StoreKind, String, String, Option<String>);

impl<'a> Sources<'a> {
    fn new(ctx: &'a Context, es: &'a ExternalSecret, interval: Duration) -> Self {
        Self {
            ctx,
            es,
            namespace: es.namespace().unwrap_or_default(),
            providers: HashMap::new(),
            reads: HashMap::new(),
            window: scheduler::window(interval),
            // A not-found is confirmed only by a read of its own, never by a shared one.
            fresh: confirming(ctx, es) || refresh::changed_since_sync(es),
            oldest: None,
        }
    }

    /// The store an entry reads from: its own `sourceRef.storeRef`, else the spec's.
    fn store_ref(&self, own: Option<&'a SecretStoreRef>) -> Result<&'a SecretStoreRef, Error> {
        own.or(self.es.spec.secret_store_ref.as_ref())
            .ok_or_else(|| {
                Error::Sync("no secretStoreRef: neither in the spec nor in the entry".into())
            })
    }

    async fn provider(&mut self, reference: &SecretStoreRef) -> Result<Client, Error> {
        let key = (reference.kind, reference.name.clone());
        if let Some(client) = self.providers.get(&key) {
            return Ok(client.clone());
        }
        let shared_key = (
            self.namespace.clone(),
            reference.kind,
            reference.name.clone(),
        );
        let reused = {
            let clients = self.ctx.external.clients.lock().expect("lock");
            clients
                .get(&shared_key)
                .filter(|(at, _)| at.elapsed() < CLIENT_REUSE)
                .map(|(_, client)| client.clone())
        };
        if let Some(client) = reused {
            self.providers.insert(key, client.clone());
            return Ok(client);
        }
        let class = &self.ctx.config.external_secrets.controller_class;
        let store = store::resolve(&self.ctx.client, &self.namespace, reference, class).await?;
        let provider = self
            .ctx
            .external
            .providers
            .get(self.ctx, &store, &self.namespace)
            .await?;
        let target = store.target();
        let client = Client {
            provider,
            gate: self
                .ctx
                .external
                .scheduler
                .gate(&target, &store.annotations),
            store: target,
        };
        self.providers.insert(key, client.clone());
        let mut clients = self.ctx.external.clients.lock().expect("lock");
        clients.retain(|_, (at, _)| at.elapsed() < CLIENT_REUSE);
        clients.insert(shared_key, (tokio::time::Instant::now(), client.clone()));
        Ok(client)
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
        let client = self.provider(reference).await?;
        let read = self
            .ctx
            .external
            .scheduler
            .read(scheduler::Request {
                provider: &client.provider,
                gate: &client.gate,
                store: &client.store,
                key: &remote.key,
                version: remote.version.as_deref(),
                window: self.window,
                fresh: self.fresh,
            })
            .await
            .map_err(Error::Provider)?;
        self.oldest = Some(self.oldest.map_or(read.fetched, |t| t.min(read.fetched)));
        self.reads.insert(key, read.value.clone());
        Ok(read.value)
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
                let client = self.provider(reference).await?;
                let query = FindQuery {
                    path: find.path.clone(),
                    name_regexp: find.name.as_ref().map(|n| n.regexp.clone()),
                    tags: find.tags.clone(),
                };
                let found = scheduler::gated(&client.gate, client.provider.find(&query))
                    .await
                    .map_err(Error::Provider)?;
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
