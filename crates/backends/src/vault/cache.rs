//! [`VaultClients`]: one provider (so one token) per store and auth identity.

use std::sync::Arc;
use std::time::Duration;

use super::calls::CallObserver;
use super::{Credentials, VaultConfig, VaultProvider};
use crate::clients::Clients;
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

/// A cache of authenticated providers, one per [`VaultClientKey`]; never a login per sync.
pub struct VaultClients {
    clients: Clients<VaultClientKey, VaultProvider>,
    observer: Arc<dyn CallObserver>,
}

impl VaultClients {
    /// An empty cache; every provider it makes reports its calls to `observer`.
    pub fn new(observer: Arc<dyn CallObserver>) -> Self {
        Self {
            clients: Clients::new(),
            observer,
        }
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
        self.clients.get_or_try_insert(key, || {
            let (config, credentials) = make()?;
            VaultProvider::new(config, credentials, self.observer.clone())
        })
    }

    /// Number of cached providers.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no provider is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the provider for `key` and revokes its token (if we logged in for it).
    pub async fn remove(&self, key: &VaultClientKey) -> Result<(), ProviderError> {
        match self.clients.remove(key) {
            Some(provider) => provider.revoke().await,
            None => Ok(()),
        }
    }

    /// Drops the providers not used for `idle` and revokes their tokens; returns how many.
    /// Call it periodically (e.g. every few minutes).
    pub async fn evict_idle(&self, idle: Duration) -> usize {
        revoke(self.clients.take_idle(idle)).await
    }

    /// Drops every provider and revokes the tokens we logged in for (static tokens are
    /// left alone). Call it when the controller stops.
    pub async fn shutdown(&self) {
        revoke(self.clients.take_all()).await;
    }
}

/// Revokes the tokens of `providers` (best effort: a token that cannot be revoked still
/// expires); returns how many there were.
async fn revoke(providers: Vec<Arc<VaultProvider>>) -> usize {
    let count = providers.len();
    for provider in providers {
        let _ = provider.revoke().await;
    }
    count
}
