//! The SopsSecret reconciler's metrics: sops-secrets-operator's counters (their names as
//! the operator spells them, so that existing alerts keep working) and gitseal's count of
//! decryptions and of Secrets written without a verified MAC. No per-object series.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// Metrics of the SopsSecret reconciler.
#[derive(Clone, Default)]
pub struct SopsSecretMetrics {
    /// Reconciles that left every Secret as the SopsSecret says.
    pub successes: Counter,
    /// Reconciles that failed.
    pub failures: Counter,
    /// Reconciles skipped because the SopsSecret is suspended.
    pub suspends: Counter,
    /// SopsSecrets decrypted (a reconcile whose Secrets were current decrypts nothing).
    pub decryptions: Counter,
    /// Decryptions whose MAC did not verify (the Secrets were written or refused as
    /// `--sops-require-mac` says).
    pub mac_unverified: Counter,
}

impl SopsSecretMetrics {
    /// Registers the operator's counters and gitseal's.
    pub fn register(self, registry: &mut Registry) -> Self {
        registry.register(
            "sopssecrets_reconcilation_successes",
            "Number of SopsSecrets reconcilations",
            self.successes.clone(),
        );
        registry.register(
            "sopssecrets_reconcilation_failures",
            "Number of SopsSecrets reconcilation failures",
            self.failures.clone(),
        );
        registry.register(
            "sopssecrets_reconcilation_suspends",
            "Number of SopsSecrets reconcilations suspends",
            self.suspends.clone(),
        );
        let own = registry.sub_registry_with_prefix(super::OWN_PREFIX);
        own.register(
            "sops_decryptions",
            "SopsSecrets decrypted (none for SopsSecrets whose Secrets are current)",
            self.decryptions.clone(),
        );
        own.register(
            "sops_mac_unverified",
            "SopsSecret decryptions whose MAC did not verify",
            self.mac_unverified.clone(),
        );
        self
    }
}
