//! Key services: what wraps and unwraps a SOPS data key (or Shamir share) for one master
//! key — local age identities ([`AgeService`]) or AWS KMS
//! ([`KmsService`](crate::kms::KmsService)) — and [`KeyServices`], which recovers a file's
//! data key through them.
//!
//! The trait is async because KMS is a network call; the controller awaits it on its
//! tokio runtime, the CLI blocks on a current-thread runtime. The futures are `Send`.
//!
//! ```
//! use gitseal_backends::key::{AgeService, KeyService, KeyServices};
//! use gitseal_crypto::keys::age::AgeIdentities;
//! use gitseal_crypto::sops::file;
//! use gitseal_crypto::sops::metadata::{AgeKey, KeyGroup, Metadata};
//! use gitseal_crypto::DataKey;
//!
//! # tokio_test(async {
//! let identities = AgeIdentities::generate();
//! let recipient = identities.recipients().remove(0);
//! let age = AgeService::new(identities);
//!
//! // Sealing: wrap a new data key for the recipient.
//! let key = DataKey::generate();
//! let enc = age.wrap(&recipient, key.expose()).await?;
//! let metadata = Metadata {
//!     key_groups: vec![KeyGroup { age: vec![AgeKey { recipient, enc }], ..KeyGroup::default() }],
//!     ..Metadata::default()
//! };
//! // Opening: recover it through the services, then `file::open`.
//! let recovered = KeyServices::new().with_age(&age).recover(&metadata).await?;
//! assert_eq!(recovered.expose(), key.expose());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # });
//! # fn tokio_test<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::future::Future;

use gitseal_crypto::keys::age::{self as agekeys, AgeIdentities};
use gitseal_crypto::sops::file::{RecoverError, Recovery};
use gitseal_crypto::sops::metadata::{KeyGroup, Metadata};
use gitseal_crypto::{AgeError, DataKey, SecretBytes};

/// What went wrong in a key service. Messages name the key, never key material.
///
/// Only [`KeyServiceError::NotFound`] says that the key definitely does not exist.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyServiceError {
    /// The key does not exist (e.g. KMS `NotFoundException`).
    #[error("{0}")]
    NotFound(String),
    /// The key exists, but the caller may not use it, or holds no identity for it.
    #[error("{0}")]
    AccessDenied(String),
    /// The service could not be reached or failed; retrying may help.
    #[error("{0}")]
    Unavailable(String),
    /// The request is malformed: a bad key name or ARN, a corrupt wrapped key, a
    /// ciphertext that is not this key's or not for this encryption context.
    #[error("{0}")]
    Invalid(String),
}

impl KeyServiceError {
    /// A short stable name for metrics and event reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "NotFound",
            Self::AccessDenied(_) => "AccessDenied",
            Self::Unavailable(_) => "Unavailable",
            Self::Invalid(_) => "Invalid",
        }
    }
}

/// Wraps and unwraps a data key (or Shamir share) with one kind of master key.
pub trait KeyService {
    /// How the service names a master key: an age recipient, a KMS key.
    type Key: ?Sized + Sync;

    /// Encrypts `data_key` for `key`; returns the text sops stores as the key's `enc`.
    fn wrap(
        &self,
        key: &Self::Key,
        data_key: &[u8],
    ) -> impl Future<Output = Result<String, KeyServiceError>> + Send;

    /// Decrypts the `enc` stored for `key` back into the data key (or share).
    fn unwrap(
        &self,
        key: &Self::Key,
        enc: &str,
    ) -> impl Future<Output = Result<SecretBytes, KeyServiceError>> + Send;
}

/// age: wraps for any `age1...` recipient; unwraps with the identities it holds.
#[derive(Default)]
pub struct AgeService {
    identities: AgeIdentities,
}

impl AgeService {
    /// A service unwrapping with `identities`.
    pub fn new(identities: AgeIdentities) -> Self {
        Self { identities }
    }

    /// The identities it unwraps with.
    pub fn identities(&self) -> &AgeIdentities {
        &self.identities
    }
}

fn age_error(error: AgeError) -> KeyServiceError {
    match error {
        AgeError::NoMatchingIdentity => KeyServiceError::AccessDenied(error.to_string()),
        other => KeyServiceError::Invalid(other.to_string()),
    }
}

impl KeyService for AgeService {
    /// An `age1...` recipient.
    type Key = str;

    fn wrap(
        &self,
        key: &str,
        data_key: &[u8],
    ) -> impl Future<Output = Result<String, KeyServiceError>> + Send {
        let result = agekeys::wrap(data_key, key).map_err(age_error);
        std::future::ready(result)
    }

    fn unwrap(
        &self,
        _key: &str,
        enc: &str,
    ) -> impl Future<Output = Result<SecretBytes, KeyServiceError>> + Send {
        let result = agekeys::unwrap(enc, &self.identities).map_err(age_error);
        std::future::ready(result)
    }
}

/// The key services a data key is recovered through; a key type without a service is
/// reported as not usable.
#[derive(Clone, Copy, Default)]
pub struct KeyServices<'a> {
    age: Option<&'a AgeService>,
    #[cfg(feature = "aws-kms")]
    kms: Option<&'a crate::kms::KmsService>,
}

impl<'a> KeyServices<'a> {
    /// No services yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Unwrap age keys with `age`.
    pub fn with_age(mut self, age: &'a AgeService) -> Self {
        self.age = Some(age);
        self
    }

    /// Unwrap AWS KMS keys with `kms`.
    #[cfg(feature = "aws-kms")]
    pub fn with_kms(mut self, kms: &'a crate::kms::KmsService) -> Self {
        self.kms = Some(kms);
        self
    }

    /// Recovers `metadata`'s data key: in each key group the age keys, then the KMS keys,
    /// are tried until one unwraps; with several groups the shares are combined. The
    /// error lists what was tried, per group.
    pub async fn recover(&self, metadata: &Metadata) -> Result<DataKey, RecoverError> {
        let mut recovery = Recovery::new(metadata);
        while let Some((index, group)) = recovery.pending() {
            match self.group_part(group).await {
                Ok(part) => recovery.unwrapped(index, part),
                Err(reason) => recovery.failed(index, reason),
            }
        }
        recovery.finish()
    }

    async fn group_part(&self, group: &KeyGroup) -> Result<SecretBytes, String> {
        let mut tried = Vec::new();
        for key in &group.age {
            let result = match self.age {
                Some(age) => age.unwrap(&key.recipient, &key.enc).await,
                None => Err(KeyServiceError::AccessDenied(String::new())),
            };
            match result {
                Ok(part) => return Ok(part),
                Err(_) => tried.push(format!("age {}: no matching identity", key.recipient)),
            }
        }
        for entry in &group.kms {
            #[cfg(feature = "aws-kms")]
            if let Some(kms) = self.kms {
                match kms
                    .unwrap(&crate::kms::KmsKey::from(entry), &entry.enc)
                    .await
                {
                    Ok(part) => return Ok(part),
                    Err(e) => tried.push(format!("kms: {e}")),
                }
                continue;
            }
            tried.push(format!("kms {}: no AWS KMS key service", entry.arn));
        }
        for key_type in group.other_types() {
            tried.push(format!("{key_type}: not supported by gitseal"));
        }
        if tried.is_empty() {
            return Err("no keys".into());
        }
        Err(tried.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitseal_crypto::sops::file::split_key;
    use gitseal_crypto::sops::metadata::AgeKey;

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn age_wraps_and_unwraps() {
        let identities = AgeIdentities::generate();
        let recipient = identities.recipients().remove(0);
        let service = AgeService::new(identities);
        let enc = block_on(service.wrap(&recipient, &[7u8; 32])).unwrap();
        let key = block_on(service.unwrap(&recipient, &enc)).unwrap();
        assert_eq!(key.expose(), &[7u8; 32]);
    }

    #[test]
    fn age_errors_are_typed() {
        let service = AgeService::default();
        let error = block_on(service.wrap("age1nope", &[7u8; 32]))
            .err()
            .unwrap();
        assert_eq!(error.kind(), "Invalid");
        let other = AgeIdentities::generate().recipients().remove(0);
        let enc = block_on(service.wrap(&other, &[7u8; 32])).unwrap();
        let error = block_on(service.unwrap(&other, &enc)).err().unwrap();
        assert_eq!(error.kind(), "AccessDenied");
        let error = block_on(service.unwrap(&other, "not age")).err().unwrap();
        assert_eq!(error.kind(), "Invalid");
    }

    fn group(service: &AgeService, recipient: &str, part: &SecretBytes) -> KeyGroup {
        KeyGroup {
            age: vec![AgeKey {
                recipient: recipient.to_owned(),
                enc: block_on(service.wrap(recipient, part.expose())).unwrap(),
            }],
            ..KeyGroup::default()
        }
    }

    #[test]
    fn recovers_through_shamir_groups() {
        let mine = AgeIdentities::generate();
        let my_recipient = mine.recipients().remove(0);
        let theirs = AgeIdentities::generate().recipients().remove(0);
        let service = AgeService::new(mine);
        let key = DataKey::generate();
        let (parts, threshold) = split_key(&key, 3, 2).unwrap();
        let metadata = Metadata {
            key_groups: vec![
                group(&service, &my_recipient, &parts[0]),
                group(&service, &theirs, &parts[1]),
                group(&service, &my_recipient, &parts[2]),
            ],
            shamir_threshold: threshold,
            ..Metadata::default()
        };
        let services = KeyServices::new().with_age(&service);
        let recovered = block_on(services.recover(&metadata)).unwrap();
        assert_eq!(recovered.expose(), key.expose());

        // Without the identities, every group reports what it tried.
        let error = block_on(KeyServices::new().recover(&metadata))
            .err()
            .unwrap();
        let text = error.to_string();
        assert!(text.contains(&format!("group 2: age {theirs}: no matching identity")));
        assert!(text.contains("recovered 0 of the 2 key-group shares needed"));
    }
}
