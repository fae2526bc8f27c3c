//! SecretStores and ClusterSecretStores get a `Ready` condition, as ESO's store controller
//! sets it (spec §2.1): the store's provider client is built and validated (Vault: a
//! token lookup through the cached client, so validation costs no login of its own), at
//! the store's `refreshInterval` or `--store-requeue-interval`. A ClusterSecretStore whose
//! credentials are read in each ExternalSecret's namespace ("referent authentication")
//! cannot be validated alone: `ValidationUnknown`, status True, as ESO.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use gitseal_api::{
    ClusterSecretStore, ExternalSecretCondition, SecretStore, SecretStoreSpec, StoreKind,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::external_secret::store::Store;
use super::{Reconciled, controller_for, drive};
use crate::config::Config;
use crate::context::Context;
use crate::{Error, metrics};

impl Reconciled for SecretStore {
    fn max_retries(_config: &Config) -> u32 {
        u32::MAX
    }
}

impl Reconciled for ClusterSecretStore {
    fn max_retries(_config: &Config) -> u32 {
        u32::MAX
    }
}

/// A store kind: its spec and status conditions.
trait StoreObject: Reconciled {
    const KIND: StoreKind;
    fn api(client: kube::Client, namespace: Option<&str>) -> Api<Self>;
    fn spec(&self) -> &SecretStoreSpec;
    fn conditions(&self) -> &[ExternalSecretCondition];
}

impl StoreObject for SecretStore {
    const KIND: StoreKind = StoreKind::SecretStore;
    fn api(client: kube::Client, namespace: Option<&str>) -> Api<Self> {
        Api::namespaced(client, namespace.unwrap_or_default())
    }
    fn spec(&self) -> &SecretStoreSpec {
        &self.spec
    }
    fn conditions(&self) -> &[ExternalSecretCondition] {
        self.status
            .as_ref()
            .map(|s| &s.conditions[..])
            .unwrap_or_default()
    }
}

impl StoreObject for ClusterSecretStore {
    const KIND: StoreKind = StoreKind::ClusterSecretStore;
    fn api(client: kube::Client, _namespace: Option<&str>) -> Api<Self> {
        Api::all(client)
    }
    fn spec(&self) -> &SecretStoreSpec {
        &self.spec
    }
    fn conditions(&self) -> &[ExternalSecretCondition] {
        self.status
            .as_ref()
            .map(|s| &s.conditions[..])
            .unwrap_or_default()
    }
}

/// Starts the SecretStore reconciler in `namespace` (`None`: all) until `stop`.
pub fn start_secret_stores(
    ctx: Arc<Context>,
    namespace: Option<String>,
    stop: watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    let objects = match namespace.as_deref() {
        None => Api::all(ctx.client.clone()),
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
    };
    let forget = ctx.clone();
    let controller = controller_for::<SecretStore>(&ctx, objects, None, "", move |o| {
        metrics::remove_condition(
            &forget.metrics.external_secrets.secret_store_condition,
            &o.name_any(),
            &o.namespace().unwrap_or_default(),
        );
    });
    drive(controller, reconcile::<SecretStore>, ctx, stop).boxed()
}

/// Starts the ClusterSecretStore reconciler until `stop` (cluster-scoped: once, whatever
/// the watched namespace; `namespace` other than the first is ignored by the caller).
pub fn start_cluster_secret_stores(
    ctx: Arc<Context>,
    _namespace: Option<String>,
    stop: watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    let forget = ctx.clone();
    let objects = Api::all(ctx.client.clone());
    let controller = controller_for::<ClusterSecretStore>(&ctx, objects, None, "", move |o| {
        metrics::remove_condition(
            &forget
                .metrics
                .external_secrets
                .cluster_secret_store_condition,
            &o.name_any(),
            "",
        );
    });
    drive(controller, reconcile::<ClusterSecretStore>, ctx, stop).boxed()
}

/// ESO's Ready reasons of a store.
fn outcome(result: &Result<bool, Error>) -> (bool, &'static str, &'static str) {
    match result {
        Ok(true) => (true, "Valid", "store validated"),
        Ok(false) => (
            true,
            "ValidationUnknown",
            "could not determine validation status",
        ),
        Err(Error::Provider(_)) => (false, "ValidationFailed", "unable to validate store"),
        Err(_) => (false, "InvalidProviderConfig", "unable to create client"),
    }
}

async fn reconcile<K>(meta: Arc<PartialObjectMeta<K>>, ctx: Arc<Context>) -> Result<Action, Error>
where
    K: StoreObject + DeserializeOwned,
    K: Resource<DynamicType = ()>,
{
    let api = K::api(ctx.client.clone(), meta.namespace().as_deref());
    let Some(object) = api.get_opt(&meta.name_any()).await.map_err(Error::Fetch)? else {
        return Ok(Action::await_change());
    };
    let class = &ctx.config.external_secrets.controller_class;
    let own_class = object.spec().controller.as_deref().unwrap_or_default();
    if !own_class.is_empty() && own_class != class {
        return Ok(Action::await_change());
    }
    let store = Store {
        kind: K::KIND,
        name: object.name_any(),
        namespace: object.namespace(),
        uid: object.uid().unwrap_or_default(),
        generation: object.meta().generation.unwrap_or_default(),
        spec: object.spec().clone(),
        annotations: object.annotations().clone(),
    };
    let result = validate(&ctx, &store).await;
    let (ready, reason, message) = outcome(&result);
    if let Err(e) = &result {
        ctx.event(&object, EventType::Warning, reason, &e.to_string())
            .await;
    }
    let family = match K::KIND {
        StoreKind::ClusterSecretStore => {
            &ctx.metrics.external_secrets.cluster_secret_store_condition
        }
        _ => &ctx.metrics.external_secrets.secret_store_condition,
    };
    metrics::set_condition(
        family,
        &store.name,
        &store.namespace.clone().unwrap_or_default(),
        ready,
    );
    write_ready(&api, &object, ready, reason, message).await?;
    let interval = match &object.spec().refresh_interval {
        Some(IntOrString::Int(seconds)) if *seconds > 0 => Duration::from_secs(*seconds as u64),
        Some(IntOrString::String(text)) => super::external_secret::refresh::parse_go_duration(text)
            .ok()
            .filter(|d| !d.is_zero())
            .unwrap_or(ctx.config.external_secrets.store_requeue_interval),
        _ => ctx.config.external_secrets.store_requeue_interval,
    };
    Ok(Action::requeue(interval.max(Duration::from_secs(1))))
}

/// Builds and validates the store's provider; `Ok(false)`: it cannot be validated
/// without an ExternalSecret's namespace.
async fn validate(ctx: &Context, store: &Store) -> Result<bool, Error> {
    let Some(namespace) = super::external_secret::provider::validation_namespace(store) else {
        return Ok(false);
    };
    let provider = ctx.external.providers.get(ctx, store, &namespace).await?;
    provider.validate().await?;
    Ok(true)
}

async fn write_ready<K: StoreObject>(
    api: &Api<K>,
    object: &K,
    ready: bool,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    let status_text = if ready { "True" } else { "False" };
    let previous = object.conditions().iter().find(|c| c.type_ == "Ready");
    if previous.is_some_and(|c| {
        c.status == status_text
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
    }) {
        return Ok(());
    }
    let condition = ExternalSecretCondition {
        type_: "Ready".into(),
        status: status_text.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: Some(Time(Timestamp::now())),
    };
    let capabilities = if ready { Some("ReadOnly") } else { None };
    let status = serde_json::json!({ "conditions": [condition], "capabilities": capabilities });
    super::status::patch(api, &object.name_any(), status).await
}
