//! Call counting: which Secrets Manager operations ran, for
//! `externalsecret_provider_api_calls_count`.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One kind of Secrets Manager call; [`AwsSmCall::as_str`] is the metric's `call` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AwsSmCall {
    /// `GetSecretValue`.
    GetSecretValue,
    /// `BatchGetSecretValue`.
    BatchGetSecretValue,
    /// `ListSecrets` (for `find` and `validate`).
    ListSecrets,
}

impl AwsSmCall {
    /// Every call kind.
    pub const ALL: [AwsSmCall; 3] = [
        Self::GetSecretValue,
        Self::BatchGetSecretValue,
        Self::ListSecrets,
    ];

    /// The metric's `call` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GetSecretValue => "GetSecretValue",
            Self::BatchGetSecretValue => "BatchGetSecretValue",
            Self::ListSecrets => "ListSecrets",
        }
    }
}

impl std::fmt::Display for AwsSmCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Told about every Secrets Manager call as it completes (STS calls are not reported).
pub trait AwsSmCallObserver: Send + Sync {
    /// `call` finished, successfully or not.
    fn observe(&self, call: AwsSmCall, success: bool);
}

/// Ignores calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAwsSmObserver;

impl AwsSmCallObserver for NoAwsSmObserver {
    fn observe(&self, _call: AwsSmCall, _success: bool) {}
}

/// Counts calls per kind and outcome; share it as `Arc<AwsSmCallCounter>`.
#[derive(Debug, Default)]
pub struct AwsSmCallCounter {
    counts: Mutex<BTreeMap<(AwsSmCall, bool), u64>>,
}

impl AwsSmCallCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many `call`s ended with `success`.
    pub fn count(&self, call: AwsSmCall, success: bool) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&(call, success)).copied().unwrap_or(0)
    }

    /// How many `call`s were made, successful or not.
    pub fn total(&self, call: AwsSmCall) -> u64 {
        self.count(call, true) + self.count(call, false)
    }

    /// Every (call, success, count) seen so far.
    pub fn snapshot(&self) -> Vec<(AwsSmCall, bool, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.iter().map(|(&(c, s), &n)| (c, s, n)).collect()
    }
}

impl AwsSmCallObserver for AwsSmCallCounter {
    fn observe(&self, call: AwsSmCall, success: bool) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry((call, success)).or_default() += 1;
    }
}
