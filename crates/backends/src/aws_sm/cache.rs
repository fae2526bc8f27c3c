//! [`AwsSmClients`]: one provider (so one set of credentials) per store and identity.

use super::*;
use crate::clients::Clients;

/// What a cached provider is for: everything that makes two stores or two identities
/// different. Any change yields a new provider (and new credentials).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AwsSmClientKey {
    /// The store: kind, namespace, name, and its generation or a hash of its spec.
    pub store: String,
    /// The region.
    pub region: String,
    /// The endpoint, if any.
    pub endpoint: String,
    /// `additionalRoles` then `role`, in order.
    pub role_chain: Vec<String>,
    /// The external ID.
    pub external_id: String,
    /// The auth method (`secretRef`, `jwt`, default chain).
    pub auth_method: String,
    /// The referenced Secret or service account (`namespace/name[/key]`).
    pub credential_ref: String,
    /// A digest of static credential material read from a Secret.
    pub credential_digest: Option<CredentialDigest>,
}

/// A cache of providers, one per [`AwsSmClientKey`], so one SDK client (with its
/// credentials cache) per store and identity.
pub struct AwsSmClients {
    clients: Clients<AwsSmClientKey, AwsSecretsManager>,
    observer: Arc<dyn AwsSmCallObserver>,
}

impl AwsSmClients {
    /// An empty cache; every provider it makes reports its calls to `observer`.
    pub fn new(observer: Arc<dyn AwsSmCallObserver>) -> Self {
        Self {
            clients: Clients::new(),
            observer,
        }
    }

    /// The provider for `key`, made from `make`'s configuration if there is none yet. No
    /// network call happens here.
    pub fn get_or_insert_with<F>(
        &self,
        key: &AwsSmClientKey,
        make: F,
    ) -> Result<Arc<AwsSecretsManager>, ProviderError>
    where
        F: FnOnce() -> Result<AwsSmConfig, ProviderError>,
    {
        self.clients.get_or_try_insert(key, || {
            Ok(AwsSecretsManager::new(make()?, self.observer.clone()))
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

    /// Drops the provider for `key`; returns whether there was one.
    pub fn remove(&self, key: &AwsSmClientKey) -> bool {
        self.clients.remove(key).is_some()
    }

    /// Drops the providers not used for `idle`; returns how many.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        self.clients.take_idle(idle).len()
    }

    /// Drops every provider.
    pub fn clear(&self) {
        self.clients.take_all();
    }
}
