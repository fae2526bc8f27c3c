//! The gate in front of one store: a token bucket, a bound on calls in flight, and a
//! backoff that a throttling answer starts, so a throttled store is left alone instead of
//! every ExternalSecret on it failing and retrying on its own.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Annotation on a SecretStore or ClusterSecretStore: provider calls per second.
pub const ANNOTATION_RATE_LIMIT: &str = "gitseal.dev/rate-limit";
/// Annotation on a store: calls in a burst above the rate.
pub const ANNOTATION_BURST: &str = "gitseal.dev/burst";
/// Annotation on a store: provider calls in flight at once.
pub const ANNOTATION_CONCURRENCY: &str = "gitseal.dev/concurrency";

/// The longest a call waits for a token before the sync is put off instead.
const MAX_WAIT: Duration = Duration::from_secs(10);
/// The first backoff after a throttling answer without `Retry-After`; doubles up to
/// [`MAX_BACKOFF`] while throttling goes on.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How fast calls to one store may go.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Calls per second.
    pub rate: f64,
    /// Calls above the rate in a burst.
    pub burst: u32,
    /// Calls in flight at once.
    pub concurrency: u32,
}

impl Limits {
    /// `self`, with what the store's annotations set instead (invalid values are ignored
    /// and reported in the second element).
    pub fn with_annotations(self, annotations: &BTreeMap<String, String>) -> (Self, Vec<String>) {
        let mut limits = self;
        let mut invalid = Vec::new();
        let mut read = |name: &str| -> Option<f64> {
            let text = annotations.get(name)?;
            match text.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Some(v),
                _ => {
                    invalid.push(format!("{name}: {text:?} is not a positive number"));
                    None
                }
            }
        };
        if let Some(rate) = read(ANNOTATION_RATE_LIMIT) {
            limits.rate = rate;
        }
        if let Some(burst) = read(ANNOTATION_BURST) {
            limits.burst = burst.max(1.0).min(f64::from(u32::MAX)) as u32;
        }
        if let Some(concurrency) = read(ANNOTATION_CONCURRENCY) {
            limits.concurrency = concurrency.clamp(1.0, 1024.0) as u32;
        }
        (limits, invalid)
    }
}

/// The gate of one store.
pub struct Gate {
    limits: Limits,
    state: Mutex<State>,
    in_flight: Semaphore,
}

struct State {
    /// Tokens now (negative: reserved ahead).
    tokens: f64,
    updated: Instant,
    /// No calls before this (after throttling).
    closed_until: Option<Instant>,
    /// The backoff the next throttling answer starts.
    backoff: Duration,
}

/// Why a call may not go now.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// The store is backing off after throttling for this much longer.
    BackingOff(Duration),
    /// The token bucket would make the call wait this long (more than is worth waiting).
    Busy(Duration),
}

impl Refused {
    /// How long to put the sync off.
    pub fn wait(&self) -> Duration {
        match self {
            Refused::BackingOff(d) | Refused::Busy(d) => *d,
        }
    }
}

impl Gate {
    /// A gate with `limits`, its bucket full.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: Mutex::new(State {
                tokens: f64::from(limits.burst.max(1)),
                updated: Instant::now(),
                closed_until: None,
                backoff: FIRST_BACKOFF,
            }),
            in_flight: Semaphore::new(limits.concurrency.max(1) as usize),
        }
    }

    /// The gate's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Waits for a free call slot and a token, or says why the call should be put off
    /// (checked once the slot is ours, so calls queued behind a throttled one do not go).
    pub async fn pass(&self) -> Result<SemaphorePermit<'_>, Refused> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| Refused::Busy(MAX_WAIT))?;
        let wait = {
            let mut state = self.state.lock().expect("lock");
            let now = Instant::now();
            if let Some(until) = state.closed_until {
                if until > now {
                    return Err(Refused::BackingOff(until - now));
                }
                state.closed_until = None;
            }
            let rate = self.limits.rate.max(0.001);
            let elapsed = now.duration_since(state.updated).as_secs_f64();
            state.tokens = (state.tokens + elapsed * rate).min(f64::from(self.limits.burst.max(1)));
            state.updated = now;
            let wait = Duration::from_secs_f64(((1.0 - state.tokens) / rate).max(0.0));
            if wait > MAX_WAIT {
                return Err(Refused::Busy(wait));
            }
            state.tokens -= 1.0;
            wait
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(permit)
    }

    /// The store answered "slow down": no calls for `retry_after`, or for a backoff that
    /// doubles while throttling goes on.
    pub fn throttled(&self, retry_after: Option<Duration>) -> Duration {
        let mut state = self.state.lock().expect("lock");
        let backoff = retry_after.unwrap_or(state.backoff).min(MAX_BACKOFF);
        state.backoff = (backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
        state.closed_until = Some(Instant::now() + backoff);
        backoff
    }

    /// A call went through: the next throttling starts the backoff afresh.
    pub fn succeeded(&self) {
        self.state.lock().expect("lock").backoff = FIRST_BACKOFF;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: f64, burst: u32) -> Limits {
        Limits {
            rate,
            burst,
            concurrency: 4,
        }
    }

    #[test]
    fn annotations_override_the_flags() {
        let annotations = BTreeMap::from([
            (ANNOTATION_RATE_LIMIT.to_owned(), "2.5".to_owned()),
            (ANNOTATION_CONCURRENCY.to_owned(), "x".to_owned()),
        ]);
        let (got, invalid) = limits(10.0, 20).with_annotations(&annotations);
        assert_eq!(
            got,
            Limits {
                rate: 2.5,
                ..limits(10.0, 20)
            }
        );
        assert_eq!(invalid.len(), 1);
        assert!(invalid[0].contains(ANNOTATION_CONCURRENCY));
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_paces_calls_after_the_burst() {
        let gate = Gate::new(limits(10.0, 2));
        let start = Instant::now();
        for _ in 0..4 {
            drop(gate.pass().await.unwrap());
        }
        // Two from the burst, then one every 100 ms.
        let spent = start.elapsed();
        assert!(spent >= Duration::from_millis(190) && spent < Duration::from_millis(260));
        // A caller that would wait more than MAX_WAIT is told to come back later.
        let slow = Gate::new(limits(0.01, 1));
        drop(slow.pass().await.unwrap());
        assert!(matches!(slow.pass().await, Err(Refused::Busy(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_closes_the_gate_with_a_growing_backoff() {
        let gate = Gate::new(limits(100.0, 10));
        assert_eq!(gate.throttled(None), Duration::from_secs(1));
        assert!(matches!(gate.pass().await, Err(Refused::BackingOff(_))));
        tokio::time::advance(Duration::from_millis(1001)).await;
        drop(gate.pass().await.unwrap());
        assert_eq!(gate.throttled(None), Duration::from_secs(2));
        assert_eq!(
            gate.throttled(Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        gate.succeeded();
        assert_eq!(gate.throttled(None), Duration::from_secs(1));
    }
}
