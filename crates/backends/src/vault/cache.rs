//! [`VaultClients`]: one provider (so one token) per store and auth identity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::calls::CallObserver;
use super::{Credentials, VaultConfig, VaultProvider};
pub use crate::digest::CredentialDigest;
use crate::provider::ProviderError;

/// What a cached provider is for: the caller fills in everything that makes two stores or
/// two identities different. Any change (store generation, server, namespace, auth method,
/// mount, role, referenced Secret or service account, credential digest) yields a new
/// provider and a new login; the old one is revoked when evicted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct VaultClientKey {
    /// The store: kind, namespace, name, and its generation or a hash of its spec.
    pub store: String,
    /// `spec.provider.vault.server`.
    pub server: String,
    /// `spec.provider.vault.namespace`.
    pub namespace: String,
    /// `auth.namespace`.
    pub auth_namespace: String,
    /// The auth method (`tokenSecretRef`, `appRole`, `jwt`, `kubernetes`).
    pub auth_method: String,
    /// The auth mount path.
    pub auth_mount: String,
    /// The Vault role.
    pub role: String,
    /// The referenced Secret or service account (`namespace/name[/key]`), and for referent
    /// auth the namespace of the ExternalSecret.
    pub credential_ref: String,
    /// A digest of static credential material read from a Secret.
    pub credential_digest: Option<CredentialDigest>,
}

struct Cached {
    provider: Arc<VaultProvider>,
    last_used: Instant,
}

/// A cache of authenticated providers, one per [`VaultClientKey`]; never a login per sync.
pub struct VaultClients {
    clients: Mutex<HashMap<VaultClientKey, Cached>>,
    observer: Arc<dyn CallObserver>,
}

impl VaultClients {
    /// An empty cache; every provider it makes reports its calls to `observer`.
    pub fn new(observer: Arc<dyn CallObserver>) -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            observer,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<VaultClientKey, Cached>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The provider for `key`, made with `make` (config and credential source) if there
    /// is none yet. No network call happens here; the login happens on first use.
    pub fn get_or_insert_with<F>(
        &self,
        key: &VaultClientKey,
        make: F,
    ) -> Result<Arc<VaultProvider>, ProviderError>
    where
        F: FnOnce() -> Result<(VaultConfig, Credentials), ProviderError>,
    {
        let mut clients = self.lock();
        if let Some(cached) = clients.get_mut(key) {
            cached.last_used = Instant::now();
            return Ok(cached.provider.clone());
        }
        let (config, credentials) = make()?;
        let provider = Arc::new(VaultProvider::new(
            config,
            credentials,
            self.observer.clone(),
        )?);
        clients.insert(
            key.clone(),
            Cached {
                provider: provider.clone(),
                last_used: Instant::now(),
            },
        );
        Ok(provider)
    }

    /// Number of cached providers.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no provider is cached.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops the provider for `key` and revokes its token (if we logged in for it).
    pub async fn remove(&self, key: &VaultClientKey) -> Result<(), ProviderError> {
        let cached = self.lock().remove(key);
        match cached {
            Some(cached) => cached.provider.revoke().await,
            None => Ok(()),
        }
    }

    /// Drops the providers not used for `idle` and revokes their tokens; returns how many.
    /// Call it periodically (e.g. every few minutes).
    pub async fn evict_idle(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let evicted: Vec<Arc<VaultProvider>> = {
            let mut clients = self.lock();
            let keys: Vec<VaultClientKey> = clients
                .iter()
                .filter(|(_, c)| now.duration_since(c.last_used) >= idle)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter()
                .filter_map(|k| clients.remove(k))
                .map(|c| c.provider)
                .collect()
        };
        let count = evicted.len();
        for provider in evicted {
            // Best effort: a token that cannot be revoked still expires.
            let _ = provider.revoke().await;
        }
        count
    }

    /// Drops every provider and revokes the tokens we logged in for (static tokens are
    /// left alone). Call it when the controller stops.
    pub async fn shutdown(&self) {
        let all: Vec<Arc<VaultProvider>> = self.lock().drain().map(|(_, c)| c.provider).collect();
        for provider in all {
            let _ = provider.revoke().await;
        }
    }
}
