//! # gitseal-backends
//!
//! Asynchronous clients for the services outside the cluster that gitseal talks to:
//! key services that wrap SOPS data keys (age identities, AWS KMS) and the secret
//! providers that ExternalSecrets read from (HashiCorp Vault / OpenBao KV, AWS Secrets
//! Manager).
//! Each network backend sits behind its own Cargo feature.
//!
//! | you want to…                                          | use                              |
//! |-------------------------------------------------------|----------------------------------|
//! | recover a SOPS file's data key                        | [`key::KeyServices::recover`], then `gitseal_crypto::sops::file::open` |
//! | wrap a new data key for an age recipient              | [`key::AgeService`] ([`key::KeyService::wrap`]) |
//! | wrap or unwrap with AWS KMS (one client per region, profile, role) | `kms::KmsService` (feature `aws-kms`) |
//! | read ExternalSecret values from any provider          | [`provider::SecretProvider`] → [`provider::SecretMap`] |
//! | read Vault / OpenBao KV v1 or v2 (one cached, renewed token per store and identity) | `vault::VaultClients` → `vault::VaultProvider` (feature `vault`) |
//! | read AWS Secrets Manager (one client per store and identity; STS role chains, web identity) | `aws_sm::AwsSmClients` → `aws_sm::AwsSecretsManager` (feature `aws-secretsmanager`) |
//!
//! Errors are [`key::KeyServiceError`]: `NotFound`, `AccessDenied`, `Unavailable` or
//! `Invalid`, with a stable [`kind`](key::KeyServiceError::kind); secret providers return
//! [`provider::ProviderError`], whose only variant that may delete anything is `NotFound`.

#[cfg(feature = "aws-secretsmanager")]
pub mod aws_sm;
#[cfg(any(feature = "vault", feature = "aws-secretsmanager"))]
mod clients;
#[cfg(any(feature = "vault", feature = "aws-secretsmanager"))]
mod digest;
pub mod key;
#[cfg(feature = "aws-kms")]
pub mod kms;
pub mod provider;
#[cfg(feature = "vault")]
pub mod vault;

/// An error and its sources in one line (`a: b: c`), for messages of the clients' errors.
#[cfg(any(feature = "aws-kms", feature = "vault", feature = "aws-secretsmanager"))]
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
