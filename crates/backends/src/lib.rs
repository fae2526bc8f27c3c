//! # gitseal-backends
//!
//! Asynchronous clients for the services outside the cluster that gitseal talks to:
//! key services that wrap SOPS data keys (AWS KMS) and, later, the secret providers that
//! ExternalSecrets read from (HashiCorp Vault KV, AWS Secrets Manager). Each backend sits
//! behind its own Cargo feature.

#[cfg(feature = "aws-kms")]
pub mod kms;
