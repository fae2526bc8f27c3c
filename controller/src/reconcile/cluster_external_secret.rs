//! ClusterExternalSecrets fan out: one ExternalSecret (named `externalSecretName`, else
//! the ClusterExternalSecret's name) in every namespace its selectors pick, controlled by
//! it, as ESO does (spec §1.9). ExternalSecrets it does not control are never
//! overwritten (the namespace is reported failed instead), and it removes only its own
//! from namespaces that stop matching. Namespaces are rescanned on every Namespace change
//! and at `refreshTime` (default 1h).

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use gitseal_api::{
    ANNOTATION_FORCE_SYNC, ClusterExternalSecret, ClusterExternalSecretNamespaceFailure,
    ExternalSecret, ExternalSecretCondition,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use tokio::sync::watch;

use super::external_secret::refresh::parse_go_duration;
use super::external_secret::store::selector_matches;
use super::{Reconciled, controller_for, drive};
use crate::Error;
use crate::config::Config;
use crate::context::Context;

impl Reconciled for ClusterExternalSecret {
    fn max_retries(_config: &Config) -> u32 {
        u32::MAX
    }
}

/// Starts the ClusterExternalSecret reconciler until `stop`.
pub fn start(
    ctx: Arc<Context>,
    _namespace: Option<String>,
    stop: watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    let objects = Api::all(ctx.client.clone());
    let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(ctx.client.clone());
    let rescan = watcher(namespaces, watcher::Config::default())
        .default_backoff()
        .touched_objects()
        .map(|_| ());
    let controller = controller_for::<ClusterExternalSecret>(&ctx, objects, None, "", |_| {})
        .reconcile_all_on(rescan);
    drive(controller, reconcile, ctx, stop).boxed()
}

/// Whether a namespace named `name` with `labels` is picked by `ces` (any selector, or
/// the name listed).
fn picked(
    ces: &ClusterExternalSecret,
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    let spec = &ces.spec;
    spec.namespaces.iter().any(|n| n == name)
        || spec
            .namespace_selector
            .iter()
            .chain(&spec.namespace_selectors)
            .any(|s| selector_matches(s, labels))
}

async fn reconcile(
    meta: Arc<PartialObjectMeta<ClusterExternalSecret>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let api: Api<ClusterExternalSecret> = Api::all(ctx.client.clone());
    let Some(ces) = api.get_opt(&meta.name_any()).await.map_err(Error::Fetch)? else {
        return Ok(Action::await_change());
    };
    if ces.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = ces
        .spec
        .external_secret_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| ces.name_any());
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let all = namespaces
        .list_metadata(&ListParams::default())
        .await
        .map_err(Error::Fetch)?;
    let mut provisioned = Vec::new();
    let mut failed = Vec::new();
    let mut wanted = BTreeSet::new();
    for namespace in &all.items {
        let ns = namespace.name_any();
        let mut labels = namespace.labels().clone();
        labels.insert("kubernetes.io/metadata.name".into(), ns.clone());
        if namespace.metadata.deletion_timestamp.is_some() || !picked(&ces, &ns, &labels) {
            continue;
        }
        wanted.insert(ns.clone());
        match provision(&ctx, &ces, &ns, &name).await {
            Ok(()) => provisioned.push(ns),
            Err(reason) => failed.push(ClusterExternalSecretNamespaceFailure {
                namespace: ns,
                reason: Some(reason),
            }),
        }
    }
    // Remove ours where the namespace no longer matches (or the name changed).
    let previous = ces.status.clone().unwrap_or_default();
    for ns in previous
        .provisioned_namespaces
        .iter()
        .filter(|n| !wanted.contains(*n))
    {
        remove_owned(
            &ctx,
            &ces,
            ns,
            previous.external_secret_name.as_deref().unwrap_or(&name),
        )
        .await?;
    }
    if previous
        .external_secret_name
        .as_deref()
        .is_some_and(|old| old != name)
    {
        for ns in &wanted {
            remove_owned(
                &ctx,
                &ces,
                ns,
                previous.external_secret_name.as_deref().unwrap_or_default(),
            )
            .await?;
        }
    }
    let ready = failed.is_empty();
    let condition = ExternalSecretCondition {
        type_: "Ready".into(),
        status: if ready { "True" } else { "False" }.into(),
        reason: None,
        message: Some(if ready {
            "all ExternalSecrets are provisioned".into()
        } else {
            "one or more namespaces failed".into()
        }),
        last_transition_time: previous
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready" && c.status == if ready { "True" } else { "False" })
            .and_then(|c| c.last_transition_time.clone())
            .or_else(|| Some(Time(Timestamp::now()))),
    };
    let status = serde_json::json!({
        "externalSecretName": name,
        "provisionedNamespaces": provisioned,
        "failedNamespaces": failed,
        "conditions": [condition],
    });
    super::status::patch(&api, &ces.name_any(), status).await?;
    let rescan = ces
        .spec
        .refresh_time
        .as_deref()
        .and_then(|t| parse_go_duration(t).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(ctx.config.external_secrets.cluster_external_secret_rescan);
    Ok(Action::requeue(rescan))
}

fn controller_reference(ces: &ClusterExternalSecret) -> OwnerReference {
    OwnerReference {
        api_version: ClusterExternalSecret::api_version(&()).into_owned(),
        kind: ClusterExternalSecret::kind(&()).into_owned(),
        name: ces.name_any(),
        uid: ces.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn controlled_by(es: &ExternalSecret, ces: &ClusterExternalSecret) -> bool {
    es.owner_references()
        .iter()
        .any(|r| r.controller == Some(true) && Some(&r.uid) == ces.uid().as_ref())
}

/// Creates or updates the ExternalSecret `name` in `namespace`; `Err`: why not.
async fn provision(
    ctx: &Context,
    ces: &ClusterExternalSecret,
    namespace: &str,
    name: &str,
) -> Result<(), String> {
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), namespace);
    let existing = api.get_opt(name).await.map_err(|e| e.to_string())?;
    let metadata = ces
        .spec
        .external_secret_metadata
        .clone()
        .unwrap_or_default();
    let mut annotations = metadata.annotations;
    if let Some(force) = ces.annotations().get(ANNOTATION_FORCE_SYNC) {
        annotations.insert(ANNOTATION_FORCE_SYNC.into(), force.clone());
    }
    let mut desired = ExternalSecret::new(name, ces.spec.external_secret_spec.clone());
    desired.metadata.namespace = Some(namespace.into());
    desired.metadata.labels = Some(metadata.labels);
    desired.metadata.annotations = Some(annotations);
    desired.metadata.owner_references = Some(vec![controller_reference(ces)]);
    match existing {
        None => api
            .create(&PostParams::default(), &desired)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Some(existing) if !controlled_by(&existing, ces) => {
            Err("external secret already exists in namespace".into())
        }
        Some(existing) => {
            let spec = |es: &ExternalSecret| serde_json::to_value(&es.spec).ok();
            if spec(&existing) == spec(&desired)
                && existing.metadata.labels == desired.metadata.labels
                && existing.metadata.annotations == desired.metadata.annotations
            {
                return Ok(());
            }
            desired.metadata.resource_version = existing.metadata.resource_version.clone();
            desired.status = existing.status;
            api.replace(name, &PostParams::default(), &desired)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

/// Deletes the ExternalSecret `name` in `namespace` if `ces` controls it.
async fn remove_owned(
    ctx: &Context,
    ces: &ClusterExternalSecret,
    namespace: &str,
    name: &str,
) -> Result<(), Error> {
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), namespace);
    match api.get_opt(name).await.map_err(Error::Fetch)? {
        Some(es) if controlled_by(&es, ces) => {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                Err(e) => Err(Error::Write(e)),
            }
        }
        _ => Ok(()),
    }
}
