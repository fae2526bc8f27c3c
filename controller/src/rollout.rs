//! Rotation that reaches the pods: Deployments, StatefulSets and DaemonSets that name the
//! Secrets they depend on in the annotation
//! [`ANNOTATION_RESTART_ON_SECRET_CHANGE`] (comma-separated Secret names) get their pod
//! template annotated — a rolling restart — when one of those Secrets changes its data.
//!
//! - **Debounced**: [`Rollout::secret_changed`] only records the change; a background task
//!   waits the debounce, merging every change that arrives meanwhile, then makes one pass
//!   per namespace. Several Secrets rotating together cause one restart.
//! - **Once per change, never a loop**: the value written under
//!   [`ANNOTATION_RESTARTED_FOR`] is a digest of the data digests of *all* the Secrets the
//!   workload names; the workload is patched only when that value differs from the one its
//!   pod template carries, so repeating a pass for the same data does nothing.
//! - **Cheap reads**: workloads are listed and Secrets read metadata-only (a Secret's data
//!   digest is its `reconcile.external-secrets.io/data-hash` annotation, else
//!   `gitseal.dev/digest`, else its resourceVersion); only the workloads to check are read
//!   in full, one at a time.
//! - **Errors** are logged and the namespace is tried once more after the debounce.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use gitseal_api::{
    ANNOTATION_DATA_HASH, ANNOTATION_RESTART_ON_SECRET_CHANGE, ANNOTATION_RESTARTED_AT,
    ANNOTATION_RESTARTED_FOR,
};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Secret};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::mpsc;

use crate::reconcile::secret::DIGEST_ANNOTATION;

/// The data digest of a Secret that does not exist.
const ABSENT: &str = "absent";
/// Field manager of the restart patches.
const FIELD_MANAGER: &str = "gitseal-controller";

/// Restarts the workloads that depend on Secrets whose data changed. Cheap to call; the
/// work happens on a background task that ends when the `Rollout` is dropped.
pub struct Rollout {
    changes: mpsc::UnboundedSender<(String, String)>,
    /// The task's inputs until it is spawned (in [`Rollout::new`] when a Tokio runtime
    /// runs, else at the first change).
    idle: Mutex<Option<Worker>>,
}

impl Rollout {
    /// A restarter that writes through `client`, waiting `debounce` after a change before it patches.
    pub fn new(client: kube::Client, debounce: Duration) -> Self {
        let (changes, receiver) = mpsc::unbounded_channel();
        let rollout = Self {
            changes,
            idle: Mutex::new(Some(Worker {
                client,
                debounce,
                receiver,
            })),
        };
        rollout.spawn();
        rollout
    }

    /// Notes that Secret `namespace/name` now has new data; workloads that name it are restarted after the debounce.
    pub fn secret_changed(&self, namespace: &str, name: &str) {
        if self
            .changes
            .send((namespace.to_owned(), name.to_owned()))
            .is_err()
        {
            tracing::warn!(namespace, secret = name, "workload restarts stopped");
            return;
        }
        self.spawn();
    }

    /// Spawns the background task unless it runs already (or no runtime is available).
    fn spawn(&self) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        if idle.is_none() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                if let Some(worker) = idle.take() {
                    handle.spawn(worker.run());
                }
            }
            Err(_) => tracing::debug!("no Tokio runtime yet: workload restarts start later"),
        }
    }
}

/// The background task's state.
struct Worker {
    client: kube::Client,
    debounce: Duration,
    receiver: mpsc::UnboundedReceiver<(String, String)>,
}

/// What a namespace waits for: the Secrets that changed, and whether its pass failed once.
#[derive(Default)]
struct Pending {
    secrets: BTreeSet<String>,
    retry: bool,
}

impl Worker {
    /// Collects changes, waits the debounce, and runs one pass per namespace; returns
    /// when the [`Rollout`] is dropped.
    async fn run(mut self) {
        let mut pending: BTreeMap<String, Pending> = BTreeMap::new();
        loop {
            if pending.is_empty() {
                match self.receiver.recv().await {
                    Some(change) => note(&mut pending, change),
                    None => return,
                }
            }
            let deadline = tokio::time::Instant::now() + self.debounce;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    change = self.receiver.recv() => match change {
                        Some(change) => note(&mut pending, change),
                        None => return,
                    },
                }
            }
            for (namespace, work) in std::mem::take(&mut pending) {
                if let Err(e) = pass(&self.client, &namespace, &work.secrets).await {
                    if work.retry {
                        tracing::warn!(%namespace, "restarting workloads failed again, giving up: {e}");
                    } else {
                        tracing::warn!(%namespace, "restarting workloads failed, retrying: {e}");
                        let again = pending.entry(namespace).or_default();
                        again.secrets.extend(work.secrets);
                        again.retry = true;
                    }
                }
            }
        }
    }
}

/// Records a change; a new change gives its namespace a fresh retry.
fn note(pending: &mut BTreeMap<String, Pending>, (namespace, name): (String, String)) {
    let entry = pending.entry(namespace).or_default();
    entry.secrets.insert(name);
    entry.retry = false;
}

/// One pass over the workloads of `namespace` after `changed` Secrets changed. Every
/// workload is tried; the first error is returned.
async fn pass(
    client: &kube::Client,
    namespace: &str,
    changed: &BTreeSet<String>,
) -> Result<(), kube::Error> {
    let mut digests = Digests::new(client, namespace);
    let results = [
        restart_kind::<Deployment>(client, namespace, changed, &mut digests, |d| {
            d.spec.as_ref().map(|s| &s.template)
        })
        .await,
        restart_kind::<StatefulSet>(client, namespace, changed, &mut digests, |s| {
            s.spec.as_ref().map(|s| &s.template)
        })
        .await,
        restart_kind::<DaemonSet>(client, namespace, changed, &mut digests, |d| {
            d.spec.as_ref().map(|s| &s.template)
        })
        .await,
    ];
    results.into_iter().collect()
}

/// The data digests of a namespace's Secrets, each read once per pass.
struct Digests {
    api: Api<Secret>,
    known: HashMap<String, String>,
}

impl Digests {
    fn new(client: &kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client.clone(), namespace),
            known: HashMap::new(),
        }
    }

    /// The data digest of Secret `name` (metadata-only read).
    async fn of(&mut self, name: &str) -> Result<String, kube::Error> {
        if let Some(digest) = self.known.get(name) {
            return Ok(digest.clone());
        }
        let meta = self.api.get_metadata_opt(name).await?;
        let digest = secret_digest(meta.as_ref().map(|m| &m.metadata));
        self.known.insert(name.to_owned(), digest.clone());
        Ok(digest)
    }
}

/// Restarts the workloads of kind `K` in `namespace` that name one of `changed`.
async fn restart_kind<K>(
    client: &kube::Client,
    namespace: &str,
    changed: &BTreeSet<String>,
    digests: &mut Digests,
    template: fn(&K) -> Option<&PodTemplateSpec>,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let workloads = api.list_metadata(&ListParams::default()).await?;
    let mut result = Ok(());
    for workload in workloads.items {
        let Some(names) = workload
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_RESTART_ON_SECRET_CHANGE))
            .map(|v| secret_names(v))
        else {
            continue;
        };
        if names.is_disjoint(changed) {
            continue;
        }
        let name = workload.name_any();
        if let Err(e) = restart(&api, &name, &names, digests, template).await {
            tracing::warn!(kind = %K::kind(&()), %namespace, %name, "restart failed: {e}");
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    result
}

/// Patches the pod template of workload `name` unless it was restarted for the current
/// data of `secrets` already.
async fn restart<K>(
    api: &Api<K>,
    name: &str,
    secrets: &BTreeSet<String>,
    digests: &mut Digests,
    template: fn(&K) -> Option<&PodTemplateSpec>,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut data = BTreeMap::new();
    for secret in secrets {
        data.insert(secret.clone(), digests.of(secret).await?);
    }
    let value = restart_value(&data);
    let Some(workload) = api.get_opt(name).await? else {
        return Ok(()); // deleted since the list
    };
    let current = template(&workload)
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(ANNOTATION_RESTARTED_FOR));
    if current.map(String::as_str) == Some(value.as_str()) {
        return Ok(());
    }
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        ANNOTATION_RESTARTED_FOR: value,
        ANNOTATION_RESTARTED_AT: now,
    }}}}});
    match api
        .patch(
            name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            },
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    }
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    tracing::info!(
        kind = %K::kind(&()),
        namespace = %workload.namespace().unwrap_or_default(),
        %name,
        secrets = %secrets.join(","),
        "restarted workload after a secret changed"
    );
    Ok(())
}

/// The Secret names of a [`ANNOTATION_RESTART_ON_SECRET_CHANGE`] value: comma-separated,
/// whitespace trimmed; empty entries and entries that cannot be Secret names are ignored.
fn secret_names(annotation: &str) -> BTreeSet<String> {
    annotation
        .split(',')
        .map(str::trim)
        .filter(|n| {
            !n.is_empty()
                && n.len() <= 253
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        })
        .map(str::to_owned)
        .collect()
}

/// The data digest of a Secret from its metadata (`None`: the Secret does not exist).
fn secret_digest(meta: Option<&ObjectMeta>) -> String {
    let Some(meta) = meta else {
        return ABSENT.to_owned();
    };
    let annotations = meta.annotations.as_ref();
    annotations
        .and_then(|a| a.get(ANNOTATION_DATA_HASH))
        .or_else(|| annotations.and_then(|a| a.get(DIGEST_ANNOTATION)))
        .or(meta.resource_version.as_ref())
        .cloned()
        .unwrap_or_else(|| ABSENT.to_owned())
}

/// The restart value of a workload: a short hex SHA-256 over its Secrets' names and data
/// digests, in name order.
fn restart_value(digests: &BTreeMap<String, String>) -> String {
    let mut input = Vec::new();
    for (name, digest) in digests {
        input.extend_from_slice(name.as_bytes());
        input.push(0);
        input.extend_from_slice(digest.as_bytes());
        input.push(b'\n');
    }
    hex::encode(&gitseal_crypto::primitives::sha256(&input)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
            .collect()
    }

    #[test]
    fn names_are_trimmed_deduplicated_and_checked() {
        let names = secret_names(" db, api ,,db,  Bad/Name , x.y-z ,");
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["api", "db", "x.y-z"]
        );
        assert!(secret_names("").is_empty());
        assert!(secret_names(" , ").is_empty());
    }

    #[test]
    fn the_value_is_stable_and_independent_of_order() {
        let a = restart_value(&digests(&[("db", "h1"), ("api", "7")]));
        let b = restart_value(&digests(&[("api", "7"), ("db", "h1")]));
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, restart_value(&digests(&[("db", "h1"), ("api", "7")])));
    }

    #[test]
    fn the_value_changes_with_any_digest_or_name() {
        let base = restart_value(&digests(&[("db", "h1"), ("api", "7")]));
        assert_ne!(base, restart_value(&digests(&[("db", "h2"), ("api", "7")])));
        assert_ne!(base, restart_value(&digests(&[("db", "h1"), ("api", "8")])));
        assert_ne!(
            base,
            restart_value(&digests(&[("db", "h1"), ("api", ABSENT)]))
        );
        assert_ne!(base, restart_value(&digests(&[("db", "h1")])));
        // No ambiguity between where a name ends and its digest begins.
        assert_ne!(
            restart_value(&digests(&[("ab", "c")])),
            restart_value(&digests(&[("a", "bc")]))
        );
    }

    #[test]
    fn the_digest_prefers_the_data_hash_then_gitseal_then_the_version() {
        let meta = |annotations: &[(&str, &str)]| ObjectMeta {
            resource_version: Some("42".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        };
        let both = meta(&[(ANNOTATION_DATA_HASH, "h1"), (DIGEST_ANNOTATION, "k:mac")]);
        assert_eq!(secret_digest(Some(&both)), "h1");
        assert_eq!(
            secret_digest(Some(&meta(&[(DIGEST_ANNOTATION, "k:mac")]))),
            "k:mac"
        );
        assert_eq!(secret_digest(Some(&meta(&[]))), "42");
        assert_eq!(secret_digest(Some(&ObjectMeta::default())), ABSENT);
        assert_eq!(secret_digest(None), ABSENT);
    }

    /// A client that must never be used (nothing listens there).
    fn unused_client() -> kube::Client {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    #[tokio::test]
    async fn the_task_is_spawned_in_new_under_a_runtime() {
        let rollout = Rollout::new(unused_client(), Duration::from_millis(10));
        assert!(rollout.idle.lock().unwrap().is_none());
    }

    #[test]
    fn without_a_runtime_the_task_waits_for_one() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = {
            let _inside = runtime.enter(); // a client needs a runtime, a Rollout does not
            unused_client()
        };
        let rollout = Rollout::new(client, Duration::from_secs(3600));
        assert!(rollout.idle.lock().unwrap().is_some());
        runtime.block_on(async {
            rollout.secret_changed("ns", "db");
            assert!(
                rollout.idle.lock().unwrap().is_none(),
                "spawned at the change"
            );
        });
    }

    #[tokio::test]
    async fn the_task_ends_when_the_rollout_is_dropped() {
        for pending in [false, true] {
            let (changes, receiver) = mpsc::unbounded_channel();
            let worker = Worker {
                client: unused_client(),
                debounce: Duration::from_secs(3600),
                receiver,
            };
            if pending {
                // Dropped during the debounce: no pass is made.
                changes.send(("ns".into(), "db".into())).unwrap();
            }
            let run = tokio::spawn(worker.run());
            tokio::task::yield_now().await;
            drop(changes);
            tokio::time::timeout(Duration::from_secs(5), run)
                .await
                .expect("the task ends")
                .unwrap();
        }
    }
}
