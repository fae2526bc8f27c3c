//! Leader election on a `coordination.k8s.io/v1` Lease, so that several replicas can run:
//! one writes Secrets and keys, all serve the HTTP API. A leader that cannot renew its
//! Lease within the lease duration stops leading before anyone else can take over.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::watch;

/// Campaigns for the Lease `namespace/name` as `identity` until `shutdown` fires, and
/// publishes whether this replica leads on `leading`. Releases the Lease on shutdown.
pub async fn campaign(
    client: kube::Client,
    namespace: String,
    name: String,
    identity: String,
    duration: Duration,
    leading: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &namespace);
    let retry = (duration / 3).max(Duration::from_millis(200));
    let mut last_renewed: Option<Instant> = None;
    loop {
        match try_acquire(&api, &name, &identity, duration).await {
            Ok(true) => {
                if !*leading.borrow() {
                    tracing::info!(lease = %name, "became the leader");
                }
                last_renewed = Some(Instant::now());
                leading.send_replace(true);
            }
            Ok(false) => {
                if *leading.borrow() {
                    tracing::warn!(lease = %name, "lost the leadership");
                }
                last_renewed = None;
                leading.send_replace(false);
            }
            Err(e) => {
                tracing::warn!(lease = %name, "leader election: {e}");
                // Step down before the Lease can expire for the others.
                if last_renewed.is_some_and(|t| t.elapsed() + retry >= duration) {
                    tracing::warn!(lease = %name, "could not renew the Lease in time; stepping down");
                    last_renewed = None;
                    leading.send_replace(false);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            _ = shutdown.changed() => break,
        }
    }
    if *leading.borrow() {
        leading.send_replace(false);
        release(&api, &name, &identity).await;
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// One round: create, renew or take over the Lease. `Ok(true)` when this replica holds it.
async fn try_acquire(
    api: &Api<Lease>,
    name: &str,
    identity: &str,
    duration: Duration,
) -> Result<bool, kube::Error> {
    let seconds = i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let Some(mut lease) = api.get_opt(name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(identity.to_owned()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let mine = holder.as_deref() == Some(identity);
    if !mine {
        let held_for = i64::from(spec.lease_duration_seconds.unwrap_or(seconds));
        let renewed = spec.renew_time.as_ref().map_or(0, |t| t.0.as_second());
        let expired = renewed + held_for < now().0.as_second();
        if holder.is_some() && !expired {
            return Ok(false);
        }
        spec.holder_identity = Some(identity.to_owned());
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(now());
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the Lease up so that another replica takes over at once.
async fn release(api: &Api<Lease>, name: &str, identity: &str) {
    let Ok(Some(mut lease)) = api.get_opt(name).await else {
        return;
    };
    let spec = lease.spec.get_or_insert_default();
    if spec.holder_identity.as_deref() != Some(identity) {
        return;
    }
    spec.holder_identity = None;
    if let Err(e) = api.replace(name, &PostParams::default(), &lease).await {
        tracing::debug!("releasing the Lease: {e}");
    }
}
