//! When ExternalSecrets sync, and how their reads are shared: the part of the controller
//! built for thousands of ExternalSecrets (ESO users wait 5–15 minutes behind refreshes,
//! #4180; every ExternalSecret reads on its own, #735; restarts synchronise everyone,
//! #4231; AWS throttles the call volume, #4065).
//!
//! - **Admission** ([`admission`]): a fixed number of syncs run at once; new, changed and
//!   on-demand ExternalSecrets ([`Lane::Priority`]) are admitted before periodic refreshes;
//!   the others hold tickets (not futures) and are woken when a slot is theirs.
//! - **Timing**: each ExternalSecret's next refresh is `status.refreshTime + interval` (so
//!   a restart refetches nothing that is not due) plus a jitter of its own within the
//!   refresh window ([`jitter`]), so a bulk apply does not come due all at once.
//! - **Stores** ([`gate`]): per store a token bucket and a bound on calls in flight
//!   (flags, or annotations on the store); a throttling answer closes the store for a
//!   backoff, and the ExternalSecrets on it wait instead of failing.
//! - **Reads** ([`reads`]): one provider read per remote secret per refresh window,
//!   shared by every ExternalSecret that takes values from it, keyed by client (store and
//!   auth identity), key and version; due keys of a batching provider go in one call.
//! - **On demand**: [`Scheduler::refresh_remote`] refreshes at once every ExternalSecret
//!   that reads a given remote secret.

pub mod admission;
pub mod gate;
pub mod reads;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gitseal_api::StoreKind;
use gitseal_backends::provider::ProviderError;
use tokio::sync::broadcast;
use tokio::time::Instant;

pub use admission::{Admission, Lane, Slot, Ticket};
pub use gate::{Gate, Limits};
pub use reads::{MAX_WINDOW, Read, Reads, Request};

/// A store as a refresh request names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreTarget {
    /// `SecretStore` or `ClusterSecretStore`.
    pub kind: StoreKind,
    /// The store's name.
    pub name: String,
    /// A SecretStore's namespace (`None` for a ClusterSecretStore).
    pub namespace: Option<String>,
}

/// One remote secret an ExternalSecret reads: store, key, version.
pub type RemoteRead = (StoreTarget, String, Option<String>);

/// A [`RemoteRead`] as the scheduler keeps it: store (shared), key, version.
type TrackedRead = (Arc<StoreTarget>, Box<str>, Option<Box<str>>);

/// What the scheduler remembers of one ExternalSecret (no values). Kept small: there is
/// one per ExternalSecret, ten thousand and more; namespaces and stores are shared.
struct Tracked {
    namespace: Arc<str>,
    name: Box<str>,
    /// A hash of its `syncedResourceVersion` when last reconciled.
    version: u64,
    /// The remote secrets its spec reads.
    reads: Box<[TrackedRead]>,
    /// When its next refresh is due.
    due: Option<Instant>,
    /// A refresh was asked for on demand.
    forced: bool,
}

/// Schedules ExternalSecret syncs and shares their reads.
pub struct Scheduler {
    admission: Admission,
    defaults: Limits,
    gates: Mutex<HashMap<StoreTarget, Arc<Gate>>>,
    reads: Reads,
    tracked: Mutex<HashMap<String, Tracked>>,
    /// The namespaces and stores of the tracked ExternalSecrets, one copy each.
    shared: Mutex<Shared>,
    wake: broadcast::Sender<(String, String)>,
    /// Wakes an object whose ticket got a slot.
    waker: Box<dyn Fn(&Ticket) + Send + Sync>,
    /// ExternalSecret reconcilers running in this process (0 on a replica that does not lead).
    running: std::sync::atomic::AtomicUsize,
}

/// Marks an ExternalSecret reconciler as running; when the last one stops, what the
/// scheduler knew of the ExternalSecrets is dropped.
pub struct Running<'a>(&'a Scheduler);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.tracked.lock().expect("lock").clear();
            *self.0.shared.lock().expect("lock") = Shared::default();
        }
    }
}

/// The refresh window of an ExternalSecret refreshing every `interval`: half of it, at
/// most [`MAX_WINDOW`] (and that for one that never refreshes). Reads this recent serve
/// it; its jitter stays within half of it.
///
/// Serving an older read never makes data older than the interval: `refreshTime` is the
/// time of the read, so the next refresh comes that much sooner. And it aligns the
/// ExternalSecrets that read a secret on the same read, cycle after cycle.
pub fn window(interval: Duration) -> Duration {
    if interval.is_zero() {
        MAX_WINDOW
    } else {
        (interval / 2).min(MAX_WINDOW)
    }
}

/// The jitter of the ExternalSecret `uid`: a fixed share of half its window, so that
/// ExternalSecrets applied together come due apart, while their reads still meet.
pub fn jitter(uid: &str, interval: Duration) -> Duration {
    let mut hasher = DefaultHasher::new();
    uid.hash(&mut hasher);
    let share = (hasher.finish() % 10_000) as f64 / 10_000.0;
    window(interval).mul_f64(share / 2.0)
}

/// One copy of each namespace and store the tracked ExternalSecrets name.
#[derive(Default)]
struct Shared {
    namespaces: std::collections::HashSet<Arc<str>>,
    stores: std::collections::HashSet<Arc<StoreTarget>>,
}

impl Shared {
    fn namespace(&mut self, namespace: &str) -> Arc<str> {
        if let Some(shared) = self.namespaces.get(namespace) {
            return shared.clone();
        }
        let shared: Arc<str> = namespace.into();
        self.namespaces.insert(shared.clone());
        shared
    }

    fn store(&mut self, store: StoreTarget) -> Arc<StoreTarget> {
        if let Some(shared) = self.stores.get(&store) {
            return shared.clone();
        }
        let shared = Arc::new(store);
        self.stores.insert(shared.clone());
        shared
    }
}

/// A hash of an ExternalSecret's `syncedResourceVersion` (only ever compared).
fn hash(version: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    version.hash(&mut hasher);
    hasher.finish()
}

/// Runs a provider call that the shared reads do not cover (a `find` listing) through
/// the store's gate, telling the gate about throttling.
pub async fn gated<T>(
    gate: &Gate,
    call: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    let _permit = gate
        .pass()
        .await
        .map_err(|refused| ProviderError::Throttled {
            retry_after: Some(refused.wait()),
            message: "the store is backing off".into(),
        })?;
    match call.await {
        Err(ProviderError::Throttled {
            retry_after,
            message,
        }) => Err(ProviderError::Throttled {
            retry_after: Some(gate.throttled(retry_after)),
            message,
        }),
        other => {
            gate.succeeded();
            other
        }
    }
}

impl Scheduler {
    /// `slots` syncs at once; stores get `defaults` unless their annotations say otherwise.
    pub fn new(slots: usize, defaults: Limits) -> Self {
        let wake = broadcast::channel(4096).0;
        Self {
            admission: Admission::new(slots),
            defaults,
            gates: Mutex::default(),
            reads: Reads::default(),
            tracked: Mutex::default(),
            shared: Mutex::default(),
            waker: {
                let wake = wake.clone();
                Box::new(move |(_, namespace, name): &Ticket| {
                    let _ = wake.send((namespace.clone(), name.clone()));
                })
            },
            wake,
            running: Default::default(),
        }
    }

    /// Marks an ExternalSecret reconciler as running until the guard is dropped.
    pub fn run(&self) -> Running<'_> {
        self.running
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Running(self)
    }

    /// The lane of the ExternalSecret `uid` whose `syncedResourceVersion` would now be
    /// `version`: priority when it is new to this process, changed, or asked for.
    pub fn lane(&self, uid: &str, version: &str) -> Lane {
        match self.tracked.lock().expect("lock").get(uid) {
            Some(t) if t.version == hash(version) && !t.forced => Lane::Periodic,
            _ => Lane::Priority,
        }
    }

    /// A sync slot for the ExternalSecret `ticket` (uid, namespace, name) in `lane`, or
    /// `None`: it holds a ticket, and is woken (see [`Scheduler::subscribe`]) when a slot
    /// is reserved for it.
    pub fn try_admit(&self, lane: Lane, ticket: Ticket) -> Option<Slot<'_>> {
        self.admission.try_admit(lane, ticket, &*self.waker)
    }

    /// The gate of `store`, with the limits its `annotations` set (a new gate when they
    /// changed). Invalid annotations are logged and ignored.
    pub fn gate(
        &self,
        store: &StoreTarget,
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Arc<Gate> {
        let (limits, invalid) = self.defaults.with_annotations(annotations);
        let mut gates = self.gates.lock().expect("lock");
        if let Some(gate) = gates.get(store)
            && gate.limits() == limits
        {
            return gate.clone();
        }
        for problem in invalid {
            tracing::warn!(store = store.name, "ignored store annotation {problem}");
        }
        let gate = Arc::new(Gate::new(limits));
        gates.insert(store.clone(), gate.clone());
        gate
    }

    /// Reads through the shared reads; keys of the same store whose ExternalSecrets are
    /// due within the window (so the read still serves them) come along when the
    /// provider batches.
    pub async fn read(&self, request: Request<'_>) -> Result<Read, ProviderError> {
        let store = request.store.clone();
        let horizon = Instant::now() + request.window;
        self.reads
            .read(request, || self.due_keys(&store, horizon))
            .await
    }

    /// Unversioned keys of `store` read by ExternalSecrets due before `horizon`.
    fn due_keys(&self, store: &StoreTarget, horizon: Instant) -> Vec<String> {
        let tracked = self.tracked.lock().expect("lock");
        let mut keys = BTreeSet::new();
        for object in tracked.values() {
            if object.due.is_some_and(|due| due <= horizon) {
                for (s, key, version) in &object.reads {
                    if **s == *store && version.is_none() {
                        keys.insert(key.to_string());
                    }
                }
            }
        }
        keys.into_iter().collect()
    }

    /// Records the ExternalSecret `uid` after a reconcile: its `version`, the remote
    /// secrets it reads, and when it is next due (`None`: only on a change).
    pub fn track(
        &self,
        uid: &str,
        (namespace, name): (&str, &str),
        version: String,
        reads: Vec<RemoteRead>,
        next: Option<Duration>,
    ) {
        let due = next.map(|after| Instant::now() + after);
        let tracked = {
            let mut shared = self.shared.lock().expect("lock");
            Tracked {
                namespace: shared.namespace(namespace),
                name: name.into(),
                version: hash(&version),
                reads: reads
                    .into_iter()
                    .map(|(store, key, version)| {
                        (shared.store(store), key.into(), version.map(Into::into))
                    })
                    .collect(),
                due,
                forced: false,
            }
        };
        self.tracked
            .lock()
            .expect("lock")
            .insert(uid.to_owned(), tracked);
    }

    /// Whether a refresh of `uid` was asked for on demand (and clears the request).
    pub fn take_forced(&self, uid: &str) -> bool {
        self.tracked
            .lock()
            .expect("lock")
            .get_mut(uid)
            .is_some_and(|t| std::mem::take(&mut t.forced))
    }

    /// Forgets a deleted ExternalSecret (a slot reserved for it goes on).
    pub fn forget(&self, uid: &str) {
        self.tracked.lock().expect("lock").remove(uid);
        if let Some(next) = self.admission.forget(uid) {
            (self.waker)(&next);
        }
    }

    /// ExternalSecrets to reconcile now (on demand, or a slot is theirs): (namespace, name).
    pub fn subscribe(&self) -> broadcast::Receiver<(String, String)> {
        self.wake.subscribe()
    }

    /// Refreshes at once every ExternalSecret that reads `key` from `store` (what was
    /// read of it is dropped first, so the first of them reads anew and the others share
    /// that read); returns how many, or `None` when no ExternalSecret reconciler runs in
    /// this process (a replica that does not lead).
    pub fn refresh_remote(&self, store: &StoreTarget, key: &str) -> Option<usize> {
        if self.running.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            return None;
        }
        self.reads.invalidate(store, key);
        let mut tracked = self.tracked.lock().expect("lock");
        let mut count = 0;
        for object in tracked.values_mut() {
            if object
                .reads
                .iter()
                .any(|(s, k, _)| **s == *store && &**k == key)
            {
                object.forced = true;
                let _ = self
                    .wake
                    .send((object.namespace.to_string(), object.name.to_string()));
                count += 1;
            }
        }
        Some(count)
    }

    /// Drops reads older than [`MAX_WINDOW`], and namespaces and stores no tracked
    /// ExternalSecret names any more.
    pub fn expire_reads(&self) {
        self.reads.expire();
        let mut shared = self.shared.lock().expect("lock");
        shared.namespaces.retain(|n| Arc::strong_count(n) > 1);
        shared.stores.retain(|s| Arc::strong_count(s) > 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_jitter_stay_small() {
        let hour = Duration::from_secs(3600);
        assert_eq!(window(hour), MAX_WINDOW);
        assert_eq!(window(Duration::from_secs(20)), Duration::from_secs(10));
        assert_eq!(window(Duration::ZERO), MAX_WINDOW);
        let spread: BTreeSet<_> = (0..100)
            .map(|i| jitter(&format!("uid-{i}"), hour))
            .collect();
        assert!(spread.len() > 90, "jitter spreads objects");
        assert!(spread.iter().all(|j| *j < MAX_WINDOW / 2));
        assert_eq!(jitter("a", hour), jitter("a", hour));
    }

    fn store(name: &str) -> StoreTarget {
        StoreTarget {
            kind: StoreKind::ClusterSecretStore,
            name: name.into(),
            namespace: None,
        }
    }

    #[test]
    fn lanes_and_on_demand_refreshes() {
        let limits = Limits {
            rate: 10.0,
            burst: 10,
            concurrency: 2,
        };
        let scheduler = Scheduler::new(2, limits);
        assert_eq!(scheduler.refresh_remote(&store("aws"), "app/a"), None);
        let running = scheduler.run();
        assert_eq!(scheduler.lane("u1", "1-a"), Lane::Priority);
        let reads = vec![(store("aws"), "app/a".to_owned(), None)];
        scheduler.track("u1", ("ns", "es1"), "1-a".into(), reads.clone(), None);
        scheduler.track("u2", ("ns", "es2"), "1-a".into(), vec![], None);
        assert_eq!(scheduler.lane("u1", "1-a"), Lane::Periodic);
        assert_eq!(scheduler.lane("u1", "2-a"), Lane::Priority);
        let mut woken = scheduler.subscribe();
        assert_eq!(scheduler.refresh_remote(&store("aws"), "app/b"), Some(0));
        assert_eq!(scheduler.refresh_remote(&store("other"), "app/a"), Some(0));
        assert_eq!(scheduler.refresh_remote(&store("aws"), "app/a"), Some(1));
        assert_eq!(woken.try_recv().unwrap(), ("ns".into(), "es1".into()));
        assert_eq!(scheduler.lane("u1", "1-a"), Lane::Priority);
        assert!(scheduler.take_forced("u1"));
        assert!(!scheduler.take_forced("u1"));
        scheduler.track("u3", ("ns", "es3"), "1-a".into(), reads, None);
        let shared = |s: &Scheduler| {
            let shared = s.shared.lock().unwrap();
            (shared.namespaces.len(), shared.stores.len())
        };
        assert_eq!(
            shared(&scheduler),
            (1, 1),
            "one copy of the namespace and store"
        );
        scheduler.forget("u1");
        scheduler.forget("u3");
        assert_eq!(scheduler.refresh_remote(&store("aws"), "app/a"), Some(0));
        scheduler.expire_reads();
        assert_eq!(
            shared(&scheduler),
            (1, 0),
            "the store went with its last reader"
        );
        // Reconcilers stopped (leadership lost): nothing is known, nothing refreshed here.
        scheduler.track("u2", ("ns", "es2"), "1-a".into(), vec![], None);
        drop(running);
        assert_eq!(scheduler.lane("u2", "1-a"), Lane::Priority);
        assert_eq!(scheduler.refresh_remote(&store("aws"), "app/a"), None);
    }
}
