//! # gitseal-backends
//!
//! Asynchronous clients for the services outside the cluster that gitseal talks to:
//! key services that wrap SOPS data keys (AWS KMS, …) and secret providers that
//! ExternalSecrets read from (HashiCorp Vault KV, AWS Secrets Manager). Each backend sits
//! behind its own Cargo feature. The first backends arrive with the SOPS and
//! ExternalSecret issues; the crate exists now so that the workspace layout is final.
