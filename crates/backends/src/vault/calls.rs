//! Counting Vault API calls for `externalsecret_provider_api_calls_count{provider, call, status}`.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The `provider` label ESO uses for Vault.
pub const PROVIDER_LABEL: &str = "HashiCorp/Vault";

/// One kind of Vault API call; [`VaultCall::as_str`] is the `call` label (ESO's names,
/// plus `RenewSelf`, which ESO never makes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum VaultCall {
    /// `POST auth/<mount>/login`.
    Login,
    /// `GET auth/token/lookup-self` (validation, or checking a 403).
    LookupSelf,
    /// `POST auth/token/renew-self`.
    RenewSelf,
    /// `POST auth/token/revoke-self`.
    RevokeSelf,
    /// A KV read (data, or metadata for tags), as ESO counts it.
    ReadSecretData,
    /// A KV `LIST` (for `find`).
    ListSecrets,
}

impl VaultCall {
    /// Every call kind.
    pub const ALL: [VaultCall; 6] = [
        Self::Login,
        Self::LookupSelf,
        Self::RenewSelf,
        Self::RevokeSelf,
        Self::ReadSecretData,
        Self::ListSecrets,
    ];

    /// The metric's `call` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "Login",
            Self::LookupSelf => "LookupSelf",
            Self::RenewSelf => "RenewSelf",
            Self::RevokeSelf => "RevokeSelf",
            Self::ReadSecretData => "ReadSecretData",
            Self::ListSecrets => "ListSecrets",
        }
    }
}

impl std::fmt::Display for VaultCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The metric's `status` label: `success` or `error` (as ESO).
pub fn status_label(success: bool) -> &'static str {
    if success { "success" } else { "error" }
}

/// Told about every Vault API call as it completes. A 404 on a read or list counts as a
/// success (the Go client ESO uses returns no error for it).
pub trait CallObserver: Send + Sync {
    /// `call` finished, successfully or not.
    fn observe(&self, call: VaultCall, success: bool);
}

/// Ignores calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl CallObserver for NoObserver {
    fn observe(&self, _call: VaultCall, _success: bool) {}
}

/// Counts calls per kind and outcome; share it as `Arc<CallCounter>`.
#[derive(Debug, Default)]
pub struct CallCounter {
    counts: Mutex<BTreeMap<(VaultCall, bool), u64>>,
}

impl CallCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many `call`s ended with `success`.
    pub fn count(&self, call: VaultCall, success: bool) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&(call, success)).copied().unwrap_or(0)
    }

    /// How many `call`s were made, successful or not.
    pub fn total(&self, call: VaultCall) -> u64 {
        self.count(call, true) + self.count(call, false)
    }

    /// Every (call, success, count) seen so far.
    pub fn snapshot(&self) -> Vec<(VaultCall, bool, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.iter().map(|(&(c, s), &n)| (c, s, n)).collect()
    }
}

impl CallObserver for CallCounter {
    fn observe(&self, call: VaultCall, success: bool) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry((call, success)).or_default() += 1;
    }
}
