//! The reconcilers: one kube [`Controller`] per enabled kind and watched namespace, all
//! built the same way by [`controller`] and sharing [`error_policy`].
//!
//! - [`sealed_secret`]: SealedSecret → Secret.
//! - [`secret`]: the one Secret writer every reconciler uses.
//! - [`status`]: status conditions for any kind.
//!
//! Adding a kind: a module with its `reconcile` and a `start` function like
//! [`sealed_secret::start`], [`Reconciled`] (and [`status::Conditioned`]) for its type, and
//! one line in [`enabled`]. See `docs/design/002-controller-spine.md`.

pub mod cluster_external_secret;
pub mod external_secret;
pub mod sealed_secret;
pub mod secret;
pub mod secret_store;
pub mod sops_secret;
pub mod status;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::{NamespaceResourceScope, PartialObjectMeta};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::Error;
use crate::config::Config;
use crate::context::Context;

pub use secret::DIGEST_ANNOTATION;

/// A kind the controller reconciles.
pub trait Reconciled:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
    /// Failed attempts (other than the API server's) before the object waits for its next
    /// change.
    fn max_retries(config: &Config) -> u32;

    /// Whether the watch cache keeps only what triggers a reconcile of this kind (name,
    /// namespace, uid, versions, annotations without kubectl's last-applied record, which
    /// repeats the whole object: for SealedSecrets and SopsSecrets, all their ciphertext).
    /// For kinds whose reconciles read the object whole and hash no cached label or
    /// annotation.
    const SLIM_CACHE: bool = false;
}

/// Starts the reconcilers of one kind in one namespace (`None`: all) until `stop`.
pub type Start = fn(Arc<Context>, Option<String>, watch::Receiver<bool>) -> BoxFuture<'static, ()>;

/// Whether a kind lives in namespaces (started once per watched namespace) or in the
/// cluster (started once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Namespaced.
    Namespaced,
    /// Cluster-scoped.
    Cluster,
}

/// The enabled kinds and how each starts: one line per kind.
pub fn enabled(config: &Config) -> Vec<(&'static str, Start, Scope)> {
    let mut kinds: Vec<(&'static str, Start, Scope)> = vec![(
        gitseal_api::SEALED_SECRET_KIND,
        sealed_secret::start,
        Scope::Namespaced,
    )];
    if config.sops_secrets.enable_sops_secrets {
        kinds.push((
            gitseal_api::SOPS_SECRET_KIND,
            sops_secret::start,
            Scope::Namespaced,
        ));
    }
    let external = &config.external_secrets;
    if external.enable_external_secrets {
        kinds.push((
            gitseal_api::EXTERNAL_SECRET_KIND,
            external_secret::start,
            Scope::Namespaced,
        ));
        kinds.push((
            gitseal_api::SECRET_STORE_KIND,
            secret_store::start_secret_stores,
            Scope::Namespaced,
        ));
        if external.enable_cluster_store_reconciler {
            kinds.push((
                gitseal_api::CLUSTER_SECRET_STORE_KIND,
                secret_store::start_cluster_secret_stores,
                Scope::Cluster,
            ));
        }
        if external.enable_cluster_external_secret_reconciler {
            kinds.push((
                gitseal_api::CLUSTER_EXTERNAL_SECRET_KIND,
                cluster_external_secret::start,
                Scope::Cluster,
            ));
        }
    }
    kinds
}

/// Runs every enabled reconciler in every watched namespace until `stop`, once the
/// sealing keys are there (the leader just made one if there was none). Shared reads
/// older than a minute and provider clients idle for an hour are dropped, and every
/// client's token is revoked when they stop.
pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    let mut keys = ctx.keyring.subscribe();
    let mut stopped = stop.clone();
    tokio::select! {
        _ = keys.wait_for(|_| ctx.keyring.snapshot().latest().is_some()) => {}
        // Stopped before a key came: nothing was started, nothing to wait for.
        _ = stopped.wait_for(|s| *s) => return,
    }
    let mut runs = Vec::new();
    for (_kind, start, scope) in enabled(&ctx.config) {
        match scope {
            Scope::Cluster => runs.push(start(ctx.clone(), None, stop.clone())),
            Scope::Namespaced => {
                for namespace in namespaces(&ctx.config) {
                    runs.push(start(ctx.clone(), namespace, stop.clone()));
                }
            }
        }
    }
    let evict = {
        let ctx = ctx.clone();
        let mut stop = stop.clone();
        async move {
            let mut tick = tokio::time::interval(crate::scheduler::MAX_WINDOW);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        ctx.external.scheduler.expire_reads();
                        ctx.external.providers.evict_idle(Duration::from_secs(3600)).await;
                    }
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                }
            }
        }
    };
    futures::future::join(futures::future::join_all(runs), evict).await;
    ctx.external.providers.shutdown().await;
}

/// The namespaces to watch: `[None]` for all.
pub fn namespaces(config: &Config) -> Vec<Option<String>> {
    let additional = config.additional_namespaces();
    if config.watch.all_namespaces && additional.is_empty() {
        return vec![None];
    }
    let mut list = vec![config.controller_namespace()];
    for namespace in additional {
        if !list.contains(&namespace) {
            list.push(namespace);
        }
    }
    list.into_iter().map(Some).collect()
}

/// The controller for `K` in `namespace` (`None`: all): a metadata-only watch of `K` with
/// `label_selector` that triggers on spec and annotation changes, and, with `own_secrets`,
/// a metadata-only watch of Secrets that maps them back to their owner. Secret data never
/// enters a cache; `K` is read whole when reconciled. `on_delete` runs for every deleted
/// `K` (after its failure count is forgotten).
pub fn controller<K: Reconciled<Scope = NamespaceResourceScope>>(
    ctx: &Arc<Context>,
    namespace: Option<&str>,
    label_selector: &str,
    own_secrets: bool,
    on_delete: impl Fn(&PartialObjectMeta<K>) + Send + Sync + 'static,
) -> Controller<PartialObjectMeta<K>> {
    let client = ctx.client.clone();
    let (objects, secrets): (Api<PartialObjectMeta<K>>, Api<PartialObjectMeta<Secret>>) =
        match namespace {
            None => (Api::all(client.clone()), Api::all(client)),
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client, ns),
            ),
        };
    controller_for(
        ctx,
        objects,
        own_secrets.then_some(secrets),
        label_selector,
        on_delete,
    )
}

/// [`controller`] for the objects `objects` lists (cluster-scoped kinds: `Api::all`),
/// owning the Secrets `secrets` lists, if any.
pub fn controller_for<K: Reconciled>(
    ctx: &Arc<Context>,
    objects: Api<PartialObjectMeta<K>>,
    secrets: Option<Api<PartialObjectMeta<Secret>>>,
    label_selector: &str,
    on_delete: impl Fn(&PartialObjectMeta<K>) + Send + Sync + 'static,
) -> Controller<PartialObjectMeta<K>> {
    let mut config = watcher::Config::default();
    if !label_selector.is_empty() {
        config = config.labels(label_selector);
    }
    let (reader, mut writer) = reflector::store();
    let cached = reader.clone();
    let deleted = ctx.clone();
    let trigger = watcher(objects, config.clone())
        .default_backoff()
        .modify(|o: &mut PartialObjectMeta<K>| {
            // apiVersion and kind are the kind's own, known statically.
            o.types = None;
            let meta = o.meta_mut();
            meta.managed_fields = None;
            // A changed record comes with a changed spec (generation) or annotation, so
            // the trigger below still sees every change that matters.
            if K::SLIM_CACHE {
                meta.labels = None;
                meta.owner_references = None;
                if let Some(annotations) = meta.annotations.as_mut() {
                    annotations.remove(gitseal_api::ANNOTATION_LAST_APPLIED);
                }
            }
        })
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(o) = event {
                deleted.forget_retries(o);
                on_delete(o);
            }
        })
        .map_ok(move |event| {
            // Judged against the cached copy before the event replaces it, so that no
            // second record of every object is kept for it.
            let triggers = match &event {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => cached
                    .get(&ObjectRef::from_obj(o))
                    .is_none_or(|old| spec_or_annotations_changed(&old, o)),
                _ => true,
            };
            writer.apply_watcher_event(&event);
            (event, triggers)
        })
        .try_filter_map(|(event, triggers)| std::future::ready(Ok(triggers.then_some(event))))
        .applied_objects();
    let workers = workers(&ctx.config) as u16;
    let mut controller = Controller::for_stream(trigger, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(workers));
    if let Some(secrets) = secrets {
        // Events of the reconcilers' own writes trigger nothing (see `secret::Echoes`).
        let echoes = ctx.clone();
        let owned = watcher(secrets, config.page_size(SECRET_LIST_PAGE))
            .default_backoff()
            .try_filter(move |event| {
                std::future::ready(!echoes.echoes.is_echo(&K::kind(&()), event))
            })
            .touched_objects();
        controller = controller.owns_stream(owned);
    }
    controller
}

/// Secrets per page of the owned-Secret watches' lists (kube's default: 500). Each lists
/// every Secret of the namespace (or cluster) with its managedFields, parsed a page at a
/// time, and each connection keeps a read buffer as large as the largest page it read.
/// The watched kinds keep 500: a new object is seen only once its kind's list is done, and
/// more pages delay that under load (docs/benchmarks.md, "SopsSecrets at scale").
const SECRET_LIST_PAGE: u32 = 250;

/// Reconciles at once per kind (`--workers`, 0: four per CPU).
pub fn workers(config: &Config) -> usize {
    match config.watch.workers {
        0 => 4 * std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => usize::from(n),
    }
}

/// Runs `controller` with `reconcile` and the shared [`error_policy`] until `stop`.
pub async fn drive<K, F, Fut>(
    controller: Controller<PartialObjectMeta<K>>,
    reconcile: F,
    ctx: Arc<Context>,
    mut stop: watch::Receiver<bool>,
) where
    K: Reconciled,
    F: FnMut(Arc<PartialObjectMeta<K>>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let mut stopped = stop.clone();
    let run = controller
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run(reconcile, error_policy::<K>, ctx)
        .for_each(|_| std::future::ready(()));
    // In-flight reconciles get a grace period; a controller that cannot drain (its watch
    // forbidden, say) does not hold up the shutdown beyond it.
    let deadline = async move {
        let _ = stopped.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        _ = run => {}
        _ = deadline => tracing::warn!(
            kind = %K::kind(&()),
            "reconciler did not stop within {SHUTDOWN_GRACE:?}; abandoned"
        ),
    }
}

/// How long in-flight reconciles may run on after a stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Reconcile on spec changes (generation) and on annotation changes (they set the scope),
/// and when the name now stands for another object (deleted and created again while the
/// watch was down); status writes and other metadata changes are ignored, as upstream.
fn spec_or_annotations_changed<K: Resource>(
    old: &PartialObjectMeta<K>,
    new: &PartialObjectMeta<K>,
) -> bool {
    old.meta().generation != new.meta().generation
        || old.meta().annotations != new.meta().annotations
        || old.meta().uid != new.meta().uid
}

/// What to do after a failed reconcile of any kind (see [`retry_action`]); counts the
/// failure against the object (kind, namespace, name).
pub fn error_policy<K: Reconciled>(
    object: Arc<PartialObjectMeta<K>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(
        kind = %K::kind(&()),
        namespace = object.namespace().unwrap_or_default(),
        name = object.name_any(),
        "reconcile failed: {error}"
    );
    let attempt = ctx.count_retry(object.as_ref());
    retry_action(error, attempt, K::max_retries(&ctx.config))
}

/// After failed attempt number `attempt`: transient API errors are retried with backoff
/// without limit (nothing is lost); decryption and ownership failures `max_retries` times,
/// then wait for the next change; immutable conflicts are not retried. Failures of a
/// secret provider back off from 1 s (as ESO), so that a failing store is not hammered;
/// the others from 5 ms (as sealed-secrets).
pub fn retry_action(error: &Error, attempt: u32, max_retries: u32) -> Action {
    let base: u64 = match error {
        Error::Provider(_) | Error::Sync(_) | Error::Decrypt(_) => 1000,
        _ => 5,
    };
    let backoff = Duration::from_millis(base.saturating_mul(1 << attempt.min(17))).min(
        Duration::from_secs(300), // upstream: 5 ms doubling to 1000 s; 5 min keeps it responsive
    );
    match error {
        Error::Immutable(_) => Action::await_change(),
        Error::Unseal(_) | Error::Unmanaged { .. } if attempt > max_retries => {
            Action::await_change()
        }
        _ => Action::requeue(backoff),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn retries_back_off_and_give_up_as_upstream() {
        let unseal = Error::Unseal("no key could decrypt secret (a)".into());
        assert_eq!(
            retry_action(&unseal, 1, 5),
            Action::requeue(Duration::from_millis(10))
        );
        assert_eq!(
            retry_action(&unseal, 5, 5),
            Action::requeue(Duration::from_millis(160))
        );
        assert_eq!(retry_action(&unseal, 6, 5), Action::await_change());
        let unmanaged = Error::Unmanaged {
            secret: "db".into(),
            by: "SealedSecret",
        };
        assert_eq!(retry_action(&unmanaged, 6, 5), Action::await_change());
        // The API server's failures never give up, and the backoff is capped.
        let api = Error::Write(kube::Error::LinesCodecMaxLineLengthExceeded);
        assert_eq!(
            retry_action(&api, 100, 5),
            Action::requeue(Duration::from_secs(300))
        );
        assert_eq!(
            retry_action(&Error::Immutable("x".into()), 1, 5),
            Action::await_change()
        );
        let provider = Error::Sync("store not found".into());
        assert_eq!(
            retry_action(&provider, 1, u32::MAX),
            Action::requeue(Duration::from_secs(2))
        );
    }

    #[test]
    fn only_spec_annotation_and_identity_changes_trigger() {
        use kube::core::ObjectMeta;
        use kube::core::PartialObjectMetaExt;
        let object = |generation: i64, annotation: &str, uid: &str, rv: &str| {
            ObjectMeta {
                name: Some("db".into()),
                namespace: Some("prod".into()),
                generation: Some(generation),
                annotations: Some([("a".to_owned(), annotation.to_owned())].into()),
                uid: Some(uid.into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            }
            .into_response_partial::<gitseal_api::SealedSecret>()
        };
        let old = object(1, "x", "u1", "10");
        let changed = |new| spec_or_annotations_changed(&old, &new);
        assert!(!changed(object(1, "x", "u1", "11")), "a status write");
        assert!(changed(object(2, "x", "u1", "11")), "a spec change");
        assert!(changed(object(1, "y", "u1", "11")), "an annotation change");
        assert!(
            changed(object(1, "x", "u2", "11")),
            "deleted and created again"
        );
    }

    #[test]
    fn watched_namespaces() {
        let parse = |flags: &[&str]| {
            let mut args = vec!["c", "--namespace", "kube-system"];
            args.extend_from_slice(flags);
            namespaces(&Config::try_parse_from(args).unwrap())
        };
        assert_eq!(parse(&[]), vec![None]);
        assert_eq!(
            parse(&["--all-namespaces=false"]),
            vec![Some("kube-system".to_owned())]
        );
        assert_eq!(
            parse(&["--additional-namespaces", "a, kube-system,b"]),
            ["kube-system", "a", "b"].map(|n| Some(n.to_owned()))
        );
    }
}
