//! [`AwsSmClients`]: one provider (so one set of credentials) per store and identity.

use super::*;

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

struct Cached {
    provider: Arc<AwsSecretsManager>,
    last_used: Instant,
}

/// A cache of providers, one per [`AwsSmClientKey`], so one SDK client (with its
/// credentials cache) per store and identity.
pub struct AwsSmClients {
    clients: Mutex<HashMap<AwsSmClientKey, Cached>>,
    observer: Arc<dyn AwsSmCallObserver>,
}

impl AwsSmClients {
    /// An empty cache; every provider it makes reports its calls to `observer`.
    pub fn new(observer: Arc<dyn AwsSmCallObserver>) -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            observer,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AwsSmClientKey, Cached>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
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
        let mut clients = self.lock();
        if let Some(cached) = clients.get_mut(key) {
            cached.last_used = Instant::now();
            return Ok(cached.provider.clone());
        }
        let provider = Arc::new(AwsSecretsManager::new(make()?, self.observer.clone()));
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

    /// Drops the provider for `key`; returns whether there was one.
    pub fn remove(&self, key: &AwsSmClientKey) -> bool {
        self.lock().remove(key).is_some()
    }

    /// Drops the providers not used for `idle`; returns how many.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let mut clients = self.lock();
        let before = clients.len();
        clients.retain(|_, c| now.duration_since(c.last_used) < idle);
        before - clients.len()
    }

    /// Drops every provider.
    pub fn clear(&self) {
        self.lock().clear();
    }
}
