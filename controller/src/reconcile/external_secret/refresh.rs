//! When an ExternalSecret is synced again: ESO's rules (spec §1.2), byte for byte where a
//! user can see them — `refreshInterval` as a Go duration, `refreshPolicy`, and
//! `status.syncedResourceVersion` as `<generation>-<sha3-224 of labels and annotations>`,
//! so that `kubectl annotate es x force-sync=$(date +%s)` forces a sync and a status
//! written by ESO is understood after a migration.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use gitseal_api::{ExternalSecret, RefreshPolicy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use sha3::{Digest, Sha3_224};

/// ESO's CRD default of `spec.refreshInterval`.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

/// Parses a Go duration (`time.ParseDuration`): `0`, `90s`, `1h30m`, `1.5h`, `300ms`; a
/// negative one counts as zero (no periodic refresh), as in ESO.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {text:?}"))?;
        let (number, tail) = rest.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("time: missing unit in duration {text:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        total += number.parse::<f64>().map_err(|_| invalid())? * scale;
        rest = tail;
    }
    // Go's limit: about 2562047 hours.
    if !total.is_finite() || total > 9.2e9 {
        return Err(invalid());
    }
    Ok(if negative {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(total)
    })
}

/// The refresh interval of `es` (`0`: sync once), or why it cannot be read.
pub fn interval(es: &ExternalSecret) -> Result<Duration, String> {
    match es.spec.refresh_interval.as_deref() {
        None | Some("") => Ok(DEFAULT_REFRESH_INTERVAL),
        Some(text) => parse_go_duration(text),
    }
}

/// Go's `fmt.Sprintf("%+v", map[string]string)`: `map[a:1 b:2]`, keys sorted.
fn go_string_map(out: &mut String, map: Option<&BTreeMap<String, String>>) {
    out.push_str("map[");
    for (i, (key, value)) in map.into_iter().flatten().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{key}:{value}");
    }
    out.push(']');
}

/// Lowercase hex SHA3-224 of `text`: ESO's `ObjectHash` of a value whose `%+v` is `text`.
pub fn object_hash(text: &[u8]) -> String {
    hex::encode(Sha3_224::digest(text))
}

/// ESO's `syncedResourceVersion` of `es` now: `<generation>-<hash of labels and
/// annotations>`; any label or annotation change (force-sync) changes it.
pub fn resource_version(es: &ExternalSecret) -> String {
    metadata_version(&es.metadata)
}

/// [`resource_version`] of an ExternalSecret whose metadata is `metadata`.
pub fn metadata_version(metadata: &ObjectMeta) -> String {
    let mut text = String::from("{annotations:");
    go_string_map(&mut text, metadata.annotations.as_ref());
    text.push_str(" labels:");
    go_string_map(&mut text, metadata.labels.as_ref());
    text.push('}');
    format!(
        "{}-{}",
        metadata.generation.unwrap_or_default(),
        object_hash(text.as_bytes())
    )
}

/// The `syncedResourceVersion` of the last sync of `es` (`None`: it never synced).
pub fn synced_version(es: &ExternalSecret) -> Option<&str> {
    es.status
        .as_ref()
        .and_then(|s| s.synced_resource_version.as_deref())
        .filter(|v| !v.is_empty())
}

/// Whether the spec or metadata of `es` changed since its last sync (never for one that
/// has not synced).
pub fn changed_since_sync(es: &ExternalSecret) -> bool {
    synced_version(es).is_some_and(|v| v != resource_version(es))
}

/// Whether `es` is due for a sync at `now` by its refresh policy (not counting a target
/// Secret that must be repaired, which the caller checks).
pub fn due(es: &ExternalSecret, interval: Duration, now: Timestamp) -> bool {
    let status = es.status.as_ref();
    let synced = synced_version(es);
    let refreshed = status.and_then(|s| s.refresh_time.as_ref()).map(|t| t.0);
    let (Some(synced), Some(refreshed)) = (synced, refreshed) else {
        // Never synced (or ESO's "zero time"): always due, except Periodic with
        // interval 0 after a sync, handled below.
        return !(synced.is_some()
            && interval.is_zero()
            && matches!(es.spec.refresh_policy, None | Some(RefreshPolicy::Periodic)));
    };
    match es.spec.refresh_policy {
        Some(RefreshPolicy::CreatedOnce) => false,
        Some(RefreshPolicy::OnChange) => synced != resource_version(es),
        _ => {
            if interval.is_zero() {
                false
            } else if synced != resource_version(es) || refreshed > now {
                true
            } else {
                next(refreshed, interval) <= now
            }
        }
    }
}

/// When a Periodic ExternalSecret refreshed at `refreshed` is next due.
fn next(refreshed: Timestamp, interval: Duration) -> Timestamp {
    let interval = k8s_openapi::jiff::SignedDuration::try_from(interval)
        .unwrap_or(k8s_openapi::jiff::SignedDuration::MAX);
    refreshed.saturating_add(interval).unwrap_or(Timestamp::MAX)
}

/// How long until `es` is next due, after a sync or a skipped one (`None`: never, for
/// `refreshInterval: 0` and the CreatedOnce/OnChange policies, which wait for a change).
pub fn requeue_after(es: &ExternalSecret, interval: Duration, now: Timestamp) -> Option<Duration> {
    if interval.is_zero()
        || matches!(
            es.spec.refresh_policy,
            Some(RefreshPolicy::CreatedOnce | RefreshPolicy::OnChange)
        )
    {
        return None;
    }
    let refreshed = es
        .status
        .as_ref()
        .and_then(|s| s.refresh_time.as_ref())
        .map(|t| t.0);
    Some(match refreshed {
        Some(refreshed) if refreshed <= now => {
            let at = next(refreshed, interval);
            Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
        }
        _ => interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitseal_api::ExternalSecretStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn go_durations() {
        let ok = |t: &str| parse_go_duration(t).unwrap();
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("1h0m0s"), Duration::from_secs(3600));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("300ms"), Duration::from_millis(300));
        assert_eq!(ok("15s"), Duration::from_secs(15));
        assert_eq!(ok("-5m"), Duration::ZERO);
        for bad in ["", "1", "1d", "h", "1.2.3s", "5 m", "-"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    fn es(policy: Option<RefreshPolicy>, synced: Option<&str>, at: Option<i64>) -> ExternalSecret {
        let mut es: ExternalSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "prod", "generation": 2,
                         "annotations": {"force-sync": "1"}, "labels": {"app": "db"}},
            "spec": {"secretStoreRef": {"name": "vault"},
                     "data": [{"secretKey": "p", "remoteRef": {"key": "db"}}]}
        }))
        .unwrap();
        es.spec.refresh_policy = policy;
        es.status = Some(ExternalSecretStatus {
            synced_resource_version: synced.map(str::to_owned),
            refresh_time: at.map(|s| Time(Timestamp::from_second(s).unwrap())),
            ..ExternalSecretStatus::default()
        });
        es
    }

    #[test]
    fn the_resource_version_is_esos() {
        // Go: fmt.Sprintf("%+v", struct{annotations, labels map[string]string}{...})
        let text = b"{annotations:map[force-sync:1] labels:map[app:db]}";
        let e = es(None, None, None);
        assert_eq!(resource_version(&e), format!("2-{}", object_hash(text)));
        // ESO's data hash of {foo: "bar"}: the hash of "map[foo:[98 97 114]]".
        assert_eq!(object_hash(b"").len(), 56);
    }

    #[test]
    fn refresh_policies_follow_eso() {
        let hour = Duration::from_secs(3600);
        let now = Timestamp::from_second(10_000).unwrap();
        let current = resource_version(&es(None, None, None));
        let current = Some(current.as_str());
        // Never synced: due under every policy.
        for p in [
            None,
            Some(RefreshPolicy::CreatedOnce),
            Some(RefreshPolicy::OnChange),
        ] {
            assert!(due(&es(p, None, None), hour, now));
        }
        // Periodic: due once the interval has passed, or on a change.
        assert!(!due(&es(None, current, Some(9_000)), hour, now));
        assert!(due(&es(None, current, Some(6_400)), hour, now));
        assert!(due(&es(None, Some("1-x"), Some(9_000)), hour, now));
        assert!(due(&es(None, current, Some(20_000)), hour, now), "future");
        // refreshInterval 0: once, then never, not even on a change.
        assert!(!due(
            &es(None, Some("1-x"), Some(9_000)),
            Duration::ZERO,
            now
        ));
        assert!(due(&es(None, None, None), Duration::ZERO, now));
        // CreatedOnce never again; OnChange only on a change.
        let once = Some(RefreshPolicy::CreatedOnce);
        assert!(!due(&es(once, Some("1-x"), Some(1)), hour, now));
        let change = Some(RefreshPolicy::OnChange);
        assert!(!due(&es(change, current, Some(1)), hour, now));
        assert!(due(&es(change, Some("1-x"), Some(1)), hour, now));
        // Requeue: the rest of the interval.
        assert_eq!(
            requeue_after(&es(None, current, Some(9_000)), hour, now),
            Some(Duration::from_secs(2600))
        );
        assert_eq!(
            requeue_after(&es(once, current, Some(9_000)), hour, now),
            None
        );
        assert_eq!(
            requeue_after(&es(None, current, Some(9_000)), Duration::ZERO, now),
            None
        );
    }
}
