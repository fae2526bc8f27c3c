//! Status conditions for any reconciled kind, by upstream's rule (spec §3.4): a condition
//! is written only when its status or message changes or `observedGeneration` lags, so
//! that status writes do not trigger reconciles of their own or load the API server.
//!
//! A kind takes part by implementing [`Conditioned`]: where its conditions and observed
//! generation are, and how its status object is built.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// A status condition (`type`, `status`, times, `reason`, `message`): the shape the
/// SealedSecret CRD defines, shared by gitseal's kinds.
pub type Condition = gitseal_api::SealedSecretCondition;

/// A kind whose status carries [`Condition`]s and an `observedGeneration`.
pub trait Conditioned:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
{
    /// The status object written under `status`.
    type Status: Serialize;

    /// The current conditions.
    fn conditions(&self) -> &[Condition];

    /// The current `status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;

    /// The status to write.
    fn status(observed_generation: Option<i64>, conditions: Vec<Condition>) -> Self::Status;
}

impl Conditioned for gitseal_api::SealedSecret {
    type Status = gitseal_api::SealedSecretStatus;

    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default()
    }

    fn observed_generation(&self) -> Option<i64> {
        self.status.as_ref().and_then(|s| s.observed_generation)
    }

    fn status(observed_generation: Option<i64>, conditions: Vec<Condition>) -> Self::Status {
        gitseal_api::SealedSecretStatus {
            observed_generation,
            conditions: Some(conditions),
        }
    }
}

/// The conditions after setting `type_` from `result` (`Ok`: `True`; `Err(message)`:
/// `False` with the message) at `now`, or `None` when nothing needs writing.
pub fn next_conditions(
    old: &[Condition],
    observed_generation: Option<i64>,
    generation: Option<i64>,
    type_: &str,
    result: Result<(), String>,
    now: Time,
) -> Option<Vec<Condition>> {
    let status_text = if result.is_ok() { "True" } else { "False" };
    let message = result.err();
    let mut conditions = old.to_vec();
    let position = conditions.iter().position(|c| c.type_ == type_);
    let changed = match position {
        Some(i) => conditions[i].status != status_text || conditions[i].message != message,
        None => true,
    };
    if !changed && observed_generation == generation {
        return None;
    }
    let condition = match position {
        Some(i) => &mut conditions[i],
        None => {
            conditions.push(Condition {
                type_: type_.into(),
                ..Condition::default()
            });
            conditions.last_mut().expect("just pushed")
        }
    };
    if condition.status != status_text {
        condition.last_transition_time = Some(now.clone());
    }
    condition.status = status_text.into();
    condition.message = message;
    condition.last_update_time = Some(now);
    Some(conditions)
}

/// Sets the condition `type_` of `object` from `result` when it changes (see the module
/// documentation). An object deleted meanwhile is not an error.
pub async fn write<K: Conditioned>(
    client: &kube::Client,
    object: &K,
    type_: &str,
    result: Result<(), String>,
) -> Result<(), Error> {
    let generation = object.meta().generation;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let Some(conditions) = next_conditions(
        object.conditions(),
        object.observed_generation(),
        generation,
        type_,
        result,
        now,
    ) else {
        return Ok(());
    };
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
    let status = serde_json::json!(K::status(generation, conditions));
    patch(&api, &object.name_any(), status).await
}

/// Merge-patches `status` into the status of the object `name` of `api` (any kind). An
/// object deleted meanwhile is not an error.
pub async fn patch<K>(api: &Api<K>, name: &str, status: serde_json::Value) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let body = serde_json::json!({ "status": status });
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()), // deleted meanwhile
        Err(e) => Err(Error::Status(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).unwrap())
    }

    #[test]
    fn conditions_change_only_when_they_must() {
        let first = next_conditions(&[], None, Some(1), "Synced", Ok(()), at(10)).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].status, "True");
        assert_eq!(first[0].last_transition_time, Some(at(10)));
        // Same result, generation observed: nothing to write.
        assert!(next_conditions(&first, Some(1), Some(1), "Synced", Ok(()), at(20)).is_none());
        // Same result, new generation: written, transition time kept.
        let again = next_conditions(&first, Some(1), Some(2), "Synced", Ok(()), at(20)).unwrap();
        assert_eq!(again[0].last_transition_time, Some(at(10)));
        assert_eq!(again[0].last_update_time, Some(at(20)));
        // Failure: status, message and transition time change.
        let failed = next_conditions(
            &again,
            Some(2),
            Some(2),
            "Synced",
            Err("no key".into()),
            at(30),
        )
        .unwrap();
        assert_eq!(failed[0].status, "False");
        assert_eq!(failed[0].message.as_deref(), Some("no key"));
        assert_eq!(failed[0].last_transition_time, Some(at(30)));
        // Another message is a change too; another type is added beside.
        let other = Err("other".into());
        assert!(next_conditions(&failed, Some(2), Some(2), "Synced", other, at(40)).is_some());
        let two = next_conditions(&failed, Some(2), Some(2), "Ready", Ok(()), at(40)).unwrap();
        assert_eq!(two.len(), 2);
    }
}
