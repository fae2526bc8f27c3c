//! The controller's errors, typed by what failed: [`Error::kind`] is the `reason` label of
//! `sealed_secrets_controller_unseal_errors_total` (upstream's values), and
//! [`Error::event_reason`] the reason of the Warning event it raises.

/// Errors of the controller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call outside a reconcile failed (start-up, keys).
    #[error("{0}")]
    Kube(#[from] kube::Error),
    /// Reading the reconciled object or its Secret failed (transient: retried).
    #[error("{0}")]
    Fetch(#[source] kube::Error),
    /// Creating or replacing the Secret failed (transient: retried).
    #[error("{0}")]
    Write(#[source] kube::Error),
    /// Writing the object's status failed (transient: retried).
    #[error("{0}")]
    Status(#[source] kube::Error),
    /// The SealedSecret cannot be unsealed (the message names items, never values).
    #[error("{0}")]
    Unseal(String),
    /// The Secret exists and belongs to someone else: it is left alone.
    #[error("Resource \"{secret}\" already exists and is not managed by {by}")]
    Unmanaged {
        /// The Secret's name.
        secret: String,
        /// The kind that would have written it (`SealedSecret`).
        by: &'static str,
    },
    /// The Secret is immutable and would have to change.
    #[error("{0}")]
    Immutable(String),
    /// A SopsSecret cannot be decrypted or turned into Secrets (the message names keys and
    /// paths, never values).
    #[error("{0}")]
    Decrypt(String),
    /// A secret provider failed (ExternalSecrets); the message names keys, never values.
    #[error("{0}")]
    Provider(#[from] gitseal_backends::provider::ProviderError),
    /// An ExternalSecret cannot be synced as written (its store, template or keys).
    #[error("{0}")]
    Sync(String),
    /// A sealing key could not be made or read.
    #[error("sealing key: {0}")]
    Key(#[from] gitseal_crypto::KeyError),
    /// A flag has an invalid value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Anything else (I/O on the listeners, a crashed task).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// What failed, as the `reason` label of the error counter: upstream's `fetch`,
    /// `unseal`, `update`, `unmanaged` and `status`, plus `kube`, `key`, `config` and
    /// `internal` for what happens outside a reconcile.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Fetch(_) => "fetch",
            Error::Write(_) | Error::Immutable(_) => "update",
            Error::Status(_) => "status",
            Error::Unseal(_) => "unseal",
            Error::Decrypt(_) => "decrypt",
            Error::Unmanaged { .. } => "unmanaged",
            Error::Provider(_) => "provider",
            Error::Sync(_) => "sync",
            Error::Key(_) => "key",
            Error::Config(_) => "config",
            Error::Internal(_) => "internal",
        }
    }

    /// The reason of the Warning event a failed reconcile publishes, `None` for failures
    /// that publish none (reads and status writes, as upstream).
    pub fn event_reason(&self) -> Option<&'static str> {
        match self.kind() {
            "unseal" => Some("ErrUnsealFailed"),
            "decrypt" => Some("DecryptionFailed"),
            "update" | "unmanaged" => Some("ErrUpdateFailed"),
            _ => None,
        }
    }

    /// Whether the failure is the API server's (a read or write that may well work next
    /// time): retried without limit, and the object's status is left alone.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Kube(_) | Error::Fetch(_) | Error::Write(_) | Error::Status(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_upstreams_metric_reasons() {
        let api = || kube::Error::LinesCodecMaxLineLengthExceeded;
        let cases = [
            (Error::Fetch(api()), "fetch", None, true),
            (Error::Write(api()), "update", Some("ErrUpdateFailed"), true),
            (Error::Status(api()), "status", None, true),
            (
                Error::Unseal("x".into()),
                "unseal",
                Some("ErrUnsealFailed"),
                false,
            ),
            (
                Error::Unmanaged {
                    secret: "s".into(),
                    by: "SealedSecret",
                },
                "unmanaged",
                Some("ErrUpdateFailed"),
                false,
            ),
            (
                Error::Immutable("x".into()),
                "update",
                Some("ErrUpdateFailed"),
                false,
            ),
        ];
        for (error, kind, reason, transient) in cases {
            assert_eq!(error.kind(), kind, "{error:?}");
            assert_eq!(error.event_reason(), reason, "{error:?}");
            assert_eq!(error.is_transient(), transient, "{error:?}");
        }
        let unmanaged = Error::Unmanaged {
            secret: "db".into(),
            by: "SealedSecret",
        };
        assert_eq!(
            unmanaged.to_string(),
            "Resource \"db\" already exists and is not managed by SealedSecret"
        );
    }
}
