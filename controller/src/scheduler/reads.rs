//! Shared reads: one provider read per remote secret per refresh window, however many
//! ExternalSecrets take values from it.
//!
//! A read is keyed by the provider client (one per store *and* auth identity, so no
//! namespace ever reads through another's permissions), the remote key and the version.
//! Reads in flight are joined; a finished read serves whoever asks within their window;
//! a miss on a batching provider (AWS) takes along the keys that are due soon, up to the
//! provider's batch size. Values are dropped (and wiped) once older than [`MAX_WINDOW`];
//! errors are never kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use gitseal_backends::provider::{ProviderError, SecretMap, SecretProvider};
use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

use super::StoreTarget;
use super::gate::{Gate, Refused};

/// The longest a read value is kept.
pub const MAX_WINDOW: Duration = Duration::from_secs(60);

/// A read: the secret (`None`: definitely not found) and when it was read.
#[derive(Clone)]
pub struct Read {
    /// The secret's data; `None` for a definite not-found.
    pub value: Option<Arc<SecretMap>>,
    /// When the provider answered.
    pub fetched: Timestamp,
}

type Outcome = Result<Read, ProviderError>;
type Call = Shared<BoxFuture<'static, Arc<Vec<Outcome>>>>;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    /// The provider client's address; the entry holds the client, so it stays unique.
    provider: usize,
    key: String,
    version: Option<String>,
}

enum State {
    /// In flight: the call and this key's place in its answer.
    Pending {
        call: Call,
        index: usize,
        id: u64,
    },
    Ready {
        at: Instant,
        read: Read,
    },
}

struct Entry {
    _provider: Arc<dyn SecretProvider>,
    store: StoreTarget,
    state: State,
}

/// The shared reads of every store.
#[derive(Default)]
pub struct Reads {
    entries: Arc<Mutex<HashMap<Key, Entry>>>,
    next_id: std::sync::atomic::AtomicU64,
    swept: Mutex<Option<Instant>>,
}

/// What one read asks for.
pub struct Request<'a> {
    /// The client of the store and identity.
    pub provider: &'a Arc<dyn SecretProvider>,
    /// The store's gate.
    pub gate: &'a Arc<Gate>,
    /// The store.
    pub store: &'a StoreTarget,
    /// The remote key.
    pub key: &'a str,
    /// The version, if any.
    pub version: Option<&'a str>,
    /// How old a read may be and still serve.
    pub window: Duration,
    /// Whether an earlier read must not serve (the ExternalSecret changed).
    pub fresh: bool,
}

impl Reads {
    /// Reads `request.key`, sharing with every other reader of the same client, key and
    /// version; `due_soon` names keys of the store worth taking along in a batch.
    pub async fn read(
        &self,
        request: Request<'_>,
        due_soon: impl FnOnce() -> Vec<String>,
    ) -> Outcome {
        let provider_id = Arc::as_ptr(request.provider) as *const () as usize;
        let key = Key {
            provider: provider_id,
            key: request.key.to_owned(),
            version: request.version.map(str::to_owned),
        };
        let (call, index) = {
            let mut entries = self.entries.lock().expect("lock");
            match entries.get(&key).map(|e| &e.state) {
                Some(State::Ready { at, read })
                    if !request.fresh && at.elapsed() <= request.window =>
                {
                    return Ok(read.clone());
                }
                Some(State::Pending { call, index, .. }) => (call.clone(), *index),
                _ => {
                    self.sweep(&mut entries);
                    let mut keys = vec![request.key.to_owned()];
                    let batch = request.provider.batch_size();
                    if request.version.is_none() && batch > 1 {
                        for other in due_soon() {
                            if keys.len() >= batch {
                                break;
                            }
                            let other_key = Key {
                                key: other.clone(),
                                version: None,
                                provider: provider_id,
                            };
                            let wanted = match entries.get(&other_key).map(|e| &e.state) {
                                None => true,
                                Some(State::Ready { at, .. }) => at.elapsed() > request.window / 2,
                                Some(State::Pending { .. }) => false,
                            };
                            if wanted && !keys.contains(&other) {
                                keys.push(other);
                            }
                        }
                    }
                    let id = self
                        .next_id
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let call = self.call(&request, keys.clone(), provider_id, id);
                    for (index, k) in keys.into_iter().enumerate() {
                        let entry = Entry {
                            _provider: request.provider.clone(),
                            store: request.store.clone(),
                            state: State::Pending {
                                call: call.clone(),
                                index,
                                id,
                            },
                        };
                        let version = if index == 0 {
                            key.version.clone()
                        } else {
                            None
                        };
                        entries.insert(
                            Key {
                                provider: provider_id,
                                key: k,
                                version,
                            },
                            entry,
                        );
                    }
                    (call, 0)
                }
            }
        };
        let answers = call.await;
        answers.get(index).cloned().unwrap_or_else(|| {
            Err(ProviderError::Unavailable(
                "a shared read lost its answer".into(),
            ))
        })
    }

    /// The provider call for `keys` (the first with the request's version), through the
    /// gate; it files its answers itself, so they land even if the caller went away.
    fn call(&self, request: &Request<'_>, keys: Vec<String>, provider_id: usize, id: u64) -> Call {
        let provider = request.provider.clone();
        let gate = request.gate.clone();
        let version = request.version.map(str::to_owned);
        let entries = self.entries.clone();
        async move {
            let answers: Vec<Outcome> = match gate.pass().await {
                Err(refused) => {
                    let message = match refused {
                        Refused::BackingOff(_) => "the store is backing off after throttling",
                        Refused::Busy(_) => "the store's rate limit is used up",
                    };
                    let error = ProviderError::Throttled {
                        retry_after: Some(refused.wait()),
                        message: message.into(),
                    };
                    keys.iter().map(|_| Err(error.clone())).collect()
                }
                Ok(_permit) => {
                    let results = if keys.len() == 1 {
                        vec![provider.get_map(&keys[0], version.as_deref()).await]
                    } else {
                        provider.get_many(&keys).await
                    };
                    let fetched = Timestamp::now();
                    let mut throttled = None;
                    let answers: Vec<Outcome> = results
                        .into_iter()
                        .map(|result| match result {
                            Ok(map) => Ok(Read {
                                value: Some(Arc::new(map)),
                                fetched,
                            }),
                            Err(e) if e.is_not_found() => Ok(Read {
                                value: None,
                                fetched,
                            }),
                            Err(ProviderError::Throttled { retry_after, .. }) => {
                                let wait =
                                    *throttled.get_or_insert_with(|| gate.throttled(retry_after));
                                Err(ProviderError::Throttled {
                                    retry_after: Some(wait),
                                    message: "the store is throttling calls".into(),
                                })
                            }
                            Err(e) => Err(e),
                        })
                        .collect();
                    if throttled.is_none() {
                        gate.succeeded();
                    }
                    answers
                }
            };
            let now = Instant::now();
            let mut map = entries.lock().expect("lock");
            for (index, (k, answer)) in keys.into_iter().zip(&answers).enumerate() {
                let key = Key {
                    provider: provider_id,
                    key: k,
                    version: if index == 0 { version.clone() } else { None },
                };
                let ours = matches!(
                    map.get(&key).map(|e| &e.state),
                    Some(State::Pending { id: i, .. }) if *i == id
                );
                if !ours {
                    continue;
                }
                match answer {
                    Ok(read) => {
                        if let Some(entry) = map.get_mut(&key) {
                            entry.state = State::Ready {
                                at: now,
                                read: read.clone(),
                            };
                        }
                    }
                    Err(_) => {
                        map.remove(&key);
                    }
                }
            }
            Arc::new(answers)
        }
        .boxed()
        .shared()
    }

    /// Drops what was read of `key` from `store` (every identity and version), so that the
    /// next read goes to the provider.
    pub fn invalidate(&self, store: &StoreTarget, key: &str) {
        self.entries.lock().expect("lock").retain(|k, e| {
            !(k.key == key && &e.store == store && matches!(e.state, State::Ready { .. }))
        });
    }

    /// Drops reads older than [`MAX_WINDOW`].
    pub fn expire(&self) {
        *self.swept.lock().expect("lock") = None;
        self.sweep(&mut self.entries.lock().expect("lock"));
    }

    /// Drops reads older than [`MAX_WINDOW`], at most once a second.
    fn sweep(&self, entries: &mut HashMap<Key, Entry>) {
        let mut swept = self.swept.lock().expect("lock");
        if swept.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *swept = Some(Instant::now());
        entries.retain(|_, e| match &e.state {
            State::Ready { at, .. } => at.elapsed() <= MAX_WINDOW,
            State::Pending { .. } => true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::Limits;
    use gitseal_api::StoreKind;
    use gitseal_backends::provider::{BoxFuture as ProviderFuture, FindQuery, SecretValue};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A provider over fixed secrets that counts calls and keys; `delay` makes calls
    /// overlap.
    struct Counting {
        batch: usize,
        calls: AtomicUsize,
        keys: Mutex<Vec<Vec<String>>>,
        throttle: std::sync::atomic::AtomicBool,
    }

    impl Counting {
        fn new(batch: usize) -> Arc<Self> {
            Arc::new(Self {
                batch,
                calls: AtomicUsize::new(0),
                keys: Mutex::default(),
                throttle: Default::default(),
            })
        }

        fn answer(&self, key: &str) -> Result<SecretMap, ProviderError> {
            if self.throttle.load(Ordering::SeqCst) {
                return Err(ProviderError::Throttled {
                    retry_after: None,
                    message: "slow down".into(),
                });
            }
            match key {
                "missing" => Err(ProviderError::NotFound { key: key.into() }),
                "broken" => Err(ProviderError::Unavailable("503".into())),
                _ => Ok(SecretMap::raw(key, format!("value of {key}").into_bytes())),
            }
        }
    }

    impl SecretProvider for Counting {
        fn get_map<'a>(
            &'a self,
            key: &'a str,
            _version: Option<&'a str>,
        ) -> ProviderFuture<'a, Result<SecretMap, ProviderError>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                self.keys.lock().unwrap().push(vec![key.to_owned()]);
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.answer(key)
            })
        }

        fn batch_size(&self) -> usize {
            self.batch
        }

        fn get_many<'a>(
            &'a self,
            keys: &'a [String],
        ) -> ProviderFuture<'a, Vec<Result<SecretMap, ProviderError>>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                self.keys.lock().unwrap().push(keys.to_vec());
                keys.iter().map(|k| self.answer(k)).collect()
            })
        }

        fn find<'a>(
            &'a self,
            _query: &'a FindQuery,
        ) -> ProviderFuture<'a, Result<Vec<(String, SecretValue)>, ProviderError>> {
            Box::pin(async { Ok(Vec::new()) })
        }

        fn validate(&self) -> ProviderFuture<'_, Result<(), ProviderError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn store() -> StoreTarget {
        StoreTarget {
            kind: StoreKind::ClusterSecretStore,
            name: "aws".into(),
            namespace: None,
        }
    }

    fn gate() -> Arc<Gate> {
        Arc::new(Gate::new(Limits {
            rate: 1000.0,
            burst: 1000,
            concurrency: 8,
        }))
    }

    async fn read(
        reads: &Reads,
        provider: &Arc<dyn SecretProvider>,
        gate: &Arc<Gate>,
        key: &str,
        fresh: bool,
        due: Vec<String>,
    ) -> Outcome {
        let store = store();
        let request = Request {
            provider,
            gate,
            store: &store,
            key,
            version: None,
            window: Duration::from_secs(10),
            fresh,
        };
        reads.read(request, || due).await
    }

    fn text(read: &Outcome) -> String {
        let value = read.as_ref().unwrap().value.as_ref().unwrap();
        String::from_utf8(value.value(None).unwrap().as_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn concurrent_and_recent_readers_share_one_read() {
        let counting = Counting::new(1);
        let provider: Arc<dyn SecretProvider> = counting.clone();
        let (reads, gate) = (Reads::default(), gate());
        let all = futures::future::join_all(
            (0..50).map(|_| read(&reads, &provider, &gate, "app/a", false, vec![])),
        )
        .await;
        assert!(all.iter().all(|r| text(r) == "value of app/a"));
        assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
        // Within the window the read serves; a changed ExternalSecret reads anew; an
        // on-demand refresh drops what was read.
        read(&reads, &provider, &gate, "app/a", false, vec![])
            .await
            .unwrap();
        assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
        read(&reads, &provider, &gate, "app/a", true, vec![])
            .await
            .unwrap();
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
        reads.invalidate(&store(), "app/a");
        read(&reads, &provider, &gate, "app/a", false, vec![])
            .await
            .unwrap();
        assert_eq!(counting.calls.load(Ordering::SeqCst), 3);
        // Another client (another identity) never sees this one's reads.
        let other: Arc<dyn SecretProvider> = Counting::new(1);
        read(&reads, &other, &gate, "app/a", false, vec![])
            .await
            .unwrap();
        assert_eq!(counting.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn not_found_is_kept_errors_are_not() {
        let counting = Counting::new(1);
        let provider: Arc<dyn SecretProvider> = counting.clone();
        let (reads, gate) = (Reads::default(), gate());
        for _ in 0..2 {
            let missing = read(&reads, &provider, &gate, "missing", false, vec![]).await;
            assert!(missing.unwrap().value.is_none());
        }
        assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
        for _ in 0..2 {
            let broken = read(&reads, &provider, &gate, "broken", false, vec![]).await;
            assert!(matches!(broken, Err(ProviderError::Unavailable(_))));
        }
        assert_eq!(counting.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn due_keys_ride_along_in_batches() {
        let counting = Counting::new(20);
        let provider: Arc<dyn SecretProvider> = counting.clone();
        let (reads, gate) = (Reads::default(), gate());
        let due: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
        for key in &due {
            let got = read(&reads, &provider, &gate, key, false, due.clone()).await;
            assert_eq!(text(&got), format!("value of {key}"));
        }
        // 50 keys due together: three calls of at most 20.
        let batches = counting.keys.lock().unwrap().clone();
        assert_eq!(batches.len(), 3, "{batches:?}");
        assert!(batches.iter().all(|b| b.len() <= 20));
    }

    #[tokio::test]
    async fn throttling_closes_the_store() {
        let counting = Counting::new(1);
        let provider: Arc<dyn SecretProvider> = counting.clone();
        let (reads, gate) = (Reads::default(), gate());
        counting.throttle.store(true, Ordering::SeqCst);
        let first = read(&reads, &provider, &gate, "app/a", false, vec![]).await;
        assert!(matches!(
            first,
            Err(ProviderError::Throttled { retry_after: Some(d), .. }) if d == Duration::from_secs(1)
        ));
        // Backing off: no call reaches the provider.
        for _ in 0..10 {
            let again = read(&reads, &provider, &gate, "app/a", false, vec![]).await;
            assert!(matches!(again, Err(ProviderError::Throttled { .. })));
        }
        assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
    }
}
