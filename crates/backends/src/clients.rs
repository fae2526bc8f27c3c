//! [`Clients`]: the one cache of providers per store and identity behind
//! `vault::VaultClients` and `aws_sm::AwsSmClients`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::provider::ProviderError;

/// Providers `P`, one per key `K` (everything that makes two stores or two identities
/// different), each with the time it was last handed out.
pub(crate) struct Clients<K, P> {
    clients: Mutex<HashMap<K, (Arc<P>, Instant)>>,
}

impl<K: Clone + Eq + Hash, P> Clients<K, P> {
    pub(crate) fn new() -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (Arc<P>, Instant)>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The provider for `key`, made by `make` if there is none yet.
    pub(crate) fn get_or_try_insert(
        &self,
        key: &K,
        make: impl FnOnce() -> Result<P, ProviderError>,
    ) -> Result<Arc<P>, ProviderError> {
        let mut clients = self.lock();
        if let Some((provider, last_used)) = clients.get_mut(key) {
            *last_used = Instant::now();
            return Ok(provider.clone());
        }
        let provider = Arc::new(make()?);
        clients.insert(key.clone(), (provider.clone(), Instant::now()));
        Ok(provider)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Takes the provider for `key` out, if there is one.
    pub(crate) fn remove(&self, key: &K) -> Option<Arc<P>> {
        self.lock().remove(key).map(|(provider, _)| provider)
    }

    /// Takes out the providers not handed out for `idle`.
    pub(crate) fn take_idle(&self, idle: Duration) -> Vec<Arc<P>> {
        let now = Instant::now();
        let mut clients = self.lock();
        let idle_keys: Vec<K> = clients
            .iter()
            .filter(|(_, (_, last_used))| now.duration_since(*last_used) >= idle)
            .map(|(key, _)| key.clone())
            .collect();
        idle_keys
            .iter()
            .filter_map(|key| clients.remove(key))
            .map(|(provider, _)| provider)
            .collect()
    }

    /// Takes every provider out.
    pub(crate) fn take_all(&self) -> Vec<Arc<P>> {
        self.lock()
            .drain()
            .map(|(_, (provider, _))| provider)
            .collect()
    }
}
