//! Bitnami Sealed Secrets: scopes, keys and the hybrid RSA-OAEP + AES-GCM envelope.
//!
//! Sealing needs only the controller's certificate; unsealing needs its private keys.

mod envelope;
mod keys;
mod scope;
mod unseal;

pub use envelope::{Keyring, decode, seal, seal_bytes, unseal, unseal_bytes_indexed};
pub use keys::{Certificate, PrivateKey, PublicKey};
pub use scope::{ANNOTATION_CLUSTER_WIDE, ANNOTATION_NAMESPACE_WIDE, Scope, UnknownScope};
pub use unseal::{UnsealFailure, UnsealedItems, trial_order};
