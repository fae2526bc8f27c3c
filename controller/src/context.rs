//! What every reconcile and HTTP handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gitseal_api::SealedSecret;
use k8s_openapi::api::core::v1::{Event, EventSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::keyring::{Keyring, Keys};
use crate::metrics::Metrics;
use crate::unseal::{UnsealFailure, Unsealed};

/// Shared state of the controller.
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// The flags.
    pub config: Config,
    /// The sealing keys.
    pub keyring: Arc<Keyring>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    instance: String,
    /// Decryptions in flight, at most one per CPU, off the async runtime.
    pool: Arc<Semaphore>,
    /// Failed attempts per object.
    pub retries: Retries,
    /// What the ExternalSecret reconciler keeps between syncs (provider clients).
    pub external: crate::reconcile::external_secret::Shared,
    /// Restarts the workloads that depend on Secrets whose data changed.
    pub rollout: crate::rollout::Rollout,
    /// Secret writes whose watch events are not to trigger their owners again.
    pub echoes: crate::reconcile::secret::Echoes,
    /// The keys SopsSecrets are decrypted with.
    pub sops_keys: Arc<crate::sops_keys::SopsKeys>,
}

impl Context {
    /// A context for `client`; `instance` names this replica in events.
    pub fn new(
        client: kube::Client,
        config: Config,
        keyring: Arc<Keyring>,
        metrics: Arc<Metrics>,
        instance: String,
    ) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let external = crate::reconcile::external_secret::Shared::new(
            metrics.external_secrets.clone(),
            &config,
        );
        let rollout =
            crate::rollout::Rollout::new(client.clone(), config.external_secrets.rollout_debounce);
        let sops_keys = Arc::new(crate::sops_keys::SopsKeys::new(
            &config.controller_namespace(),
            config.sops_secrets.sops_kms_endpoint_url.clone(),
        ));
        Self {
            external,
            rollout,
            instance,
            client,
            config,
            keyring,
            metrics,
            pool: Arc::new(Semaphore::new(cpus)),
            retries: Retries::default(),
            echoes: Default::default(),
            sops_keys,
        }
    }

    /// Unseals `ss` on the decryption pool.
    pub async fn unseal(
        &self,
        ss: &SealedSecret,
        keys: Arc<Keys>,
        preferred: Option<String>,
    ) -> Result<Unsealed, UnsealFailure> {
        let permit = self.pool.clone().acquire_owned().await;
        let ss = ss.clone();
        let accept_v1 = self.config.sealed_secrets.accept_deprecated_v1_data;
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            crate::unseal::unseal(&ss, &keys, preferred.as_deref(), accept_v1)
        })
        .await
        .unwrap_or_else(|_| {
            Err(UnsealFailure::new(
                "internal error: the decryption task failed",
                0,
            ))
        });
        let spent = match &result {
            Ok(u) => u.opened.rsa_operations,
            Err(f) => f.rsa_operations,
        };
        self.metrics.sealed_secrets.rsa_operations.inc_by(spent);
        result
    }

    /// Publishes a core/v1 event about `object` from upstream's component for its kind
    /// (`sealed-secrets`, `external-secrets`), as upstream does (and logs it); failures to publish are only logged. Nothing is cached.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        let type_ = match type_ {
            EventType::Warning => {
                tracing::warn!(reason, "{note}");
                "Warning"
            }
            EventType::Normal => {
                tracing::info!(reason, "{note}");
                "Normal"
            }
        };
        let now = k8s_openapi::jiff::Timestamp::now();
        // Events about cluster-scoped objects live in `default`, as client-go puts them.
        let namespace = object.namespace().unwrap_or_else(|| "default".into());
        // The component upstream's recorder names for the kind.
        let (component, action) = match K::group(&()).as_ref() {
            gitseal_api::EXTERNAL_SECRETS_GROUP => ("external-secrets", "Sync"),
            gitseal_api::SOPS_SECRETS_GROUP => ("sops-secrets", "Decrypt"),
            _ => ("sealed-secrets", "Unseal"),
        };
        let event = Event {
            metadata: ObjectMeta {
                // client-go's naming: <object>.<unix nanoseconds in hex>
                name: Some(format!("{}.{:x}", object.name_any(), now.as_nanosecond())),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: object.object_ref(&()),
            type_: Some(type_.into()),
            reason: Some(reason.into()),
            message: Some(note.into()),
            action: Some(action.into()),
            source: Some(EventSource {
                component: Some(component.into()),
                host: None,
            }),
            reporting_component: Some(component.into()),
            reporting_instance: Some(self.instance.clone()),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!("publishing an event failed: {e}");
        }
    }

    /// Counts a failed attempt for `object`; returns the count so far.
    pub fn count_retry<K: Resource<DynamicType = ()>>(&self, object: &K) -> u32 {
        self.retries.count(object)
    }

    /// Resets the failure count of `object` (it reconciled, or it was deleted).
    pub fn forget_retries<K: Resource<DynamicType = ()>>(&self, object: &K) {
        self.retries.forget(object);
    }
}

/// Failed attempts per object, for the error policy's backoff and retry limit.
#[derive(Default)]
pub struct Retries(Mutex<HashMap<RetryKey, u32>>);

impl Retries {
    /// Counts a failed attempt for `object`; returns the count so far.
    pub fn count<K: Resource<DynamicType = ()>>(&self, object: &K) -> u32 {
        let mut retries = self.0.lock().expect("retries lock");
        let count = retries.entry(RetryKey::of(object)).or_default();
        *count += 1;
        *count
    }

    /// Resets the failure count of `object`.
    pub fn forget<K: Resource<DynamicType = ()>>(&self, object: &K) {
        self.0
            .lock()
            .expect("retries lock")
            .remove(&RetryKey::of(object));
    }

    /// How many objects have failures counted.
    pub fn len(&self) -> usize {
        self.0.lock().expect("retries lock").len()
    }

    /// Whether no object has failures counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Failure counts are per object: kind, namespace and name (a SealedSecret and a future
/// SopsSecret of the same name count apart).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RetryKey {
    kind: String,
    namespace: String,
    name: String,
}

impl RetryKey {
    fn of<K: Resource<DynamicType = ()>>(object: &K) -> Self {
        Self {
            kind: K::kind(&()).into_owned(),
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::{PartialObjectMeta, PartialObjectMetaExt};

    fn object<K: Resource<DynamicType = ()>>(ns: &str, name: &str) -> PartialObjectMeta<K> {
        ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            ..ObjectMeta::default()
        }
        .into_response_partial::<K>()
    }

    #[test]
    fn retries_count_per_kind_namespace_and_name() {
        let retries = Retries::default();
        let ss = object::<SealedSecret>("prod", "db");
        assert_eq!(retries.count(&ss), 1);
        assert_eq!(retries.count(&ss), 2);
        // Same name, other namespace or other kind: counted apart.
        assert_eq!(retries.count(&object::<SealedSecret>("dev", "db")), 1);
        assert_eq!(
            retries.count(&object::<k8s_openapi::api::core::v1::Secret>("prod", "db")),
            1
        );
        assert_eq!(retries.len(), 3);
        retries.forget(&ss);
        assert_eq!(retries.count(&ss), 1, "forgotten, counts from one again");
        retries.forget(&ss);
        assert_eq!(retries.len(), 2);
    }
}
