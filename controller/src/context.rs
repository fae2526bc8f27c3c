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
    retries: Mutex<HashMap<(String, String), u32>>,
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
        Self {
            instance,
            client,
            config,
            keyring,
            metrics,
            pool: Arc::new(Semaphore::new(cpus)),
            retries: Mutex::default(),
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
        let accept_v1 = self.config.accept_deprecated_v1_data;
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            crate::unseal::unseal(&ss, &keys, preferred.as_deref(), accept_v1)
        })
        .await
        .unwrap_or_else(|_| {
            Err(UnsealFailure {
                message: "internal error: the decryption task failed".into(),
                rsa_operations: 0,
            })
        });
        let spent = match &result {
            Ok(u) => u.rsa_operations,
            Err(f) => f.rsa_operations,
        };
        self.metrics.rsa_operations.inc_by(spent);
        result
    }

    /// Publishes a core/v1 event about `ss` from component `sealed-secrets`, as upstream
    /// does (and logs it); failures to publish are only logged. Nothing is cached.
    pub async fn event(&self, ss: &SealedSecret, type_: EventType, reason: &str, note: &str) {
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
        let namespace = ss.namespace().unwrap_or_default();
        let event = Event {
            metadata: ObjectMeta {
                // client-go's naming: <object>.<unix nanoseconds in hex>
                name: Some(format!("{}.{:x}", ss.name_any(), now.as_nanosecond())),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ss.object_ref(&()),
            type_: Some(type_.into()),
            reason: Some(reason.into()),
            message: Some(note.into()),
            action: Some("Unseal".into()),
            source: Some(EventSource {
                component: Some("sealed-secrets".into()),
                host: None,
            }),
            reporting_component: Some("sealed-secrets".into()),
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

    /// Counts a failed attempt for `ss`; returns the count so far.
    pub fn count_retry(&self, ss: &impl ResourceExt) -> u32 {
        let mut retries = self.retries.lock().expect("retries lock");
        let count = retries.entry(key(ss)).or_default();
        *count += 1;
        *count
    }

    /// Resets the failure count of `ss`.
    pub fn forget_retries(&self, ss: &impl ResourceExt) {
        self.retries.lock().expect("retries lock").remove(&key(ss));
    }
}

fn key(ss: &impl ResourceExt) -> (String, String) {
    (ss.namespace().unwrap_or_default(), ss.name_any())
}
