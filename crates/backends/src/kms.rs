//! AWS KMS as a SOPS key service: `Encrypt`/`Decrypt` of a data key (or Shamir share)
//! with the key's ARN and encryption context, as sops does. Credentials come from the
//! default AWS chain (environment, shared profile, SSO, web identity, instance metadata),
//! or the entry's `aws_profile`; an entry's `role` is assumed first (session name
//! `sops@<hostname>`). The region is the ARN's; `AWS_ENDPOINT_URL_KMS` (or
//! `AWS_ENDPOINT_URL`) points the client at another endpoint, e.g. an emulator.
//!
//! [`KmsService`] builds one AWS configuration and client per region, profile and role
//! ([`ClientKey`]) and reuses it for every later call.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use aws_config::BehaviorVersion;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gitseal_crypto::SecretBytes;
use gitseal_crypto::sops::metadata;

use crate::key::{KeyService, KeyServiceError};

/// A KMS key as a SOPS file names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsKey {
    /// Key or alias ARN.
    pub arn: String,
    /// Role ARN to assume first (empty: none).
    pub role: String,
    /// Encryption context, sorted by key.
    pub context: Vec<(String, String)>,
    /// Shared-config profile (empty: the default chain).
    pub profile: String,
}

/// The error type of the KMS functions (an alias kept for callers of earlier versions).
pub type KmsError = KeyServiceError;

impl From<&metadata::KmsKey> for KmsKey {
    fn from(entry: &metadata::KmsKey) -> Self {
        Self {
            arn: entry.arn.clone(),
            role: entry.role.clone(),
            context: entry.context.clone(),
            profile: entry.aws_profile.clone(),
        }
    }
}

/// The region of a KMS ARN (`arn:aws[-partition]:kms:<region>:<account>:(key|alias)/...`).
pub fn region_of(arn: &str) -> Result<&str, KeyServiceError> {
    let invalid = || {
        KeyServiceError::Invalid(format!(
            "invalid KMS ARN {arn:?}: expected arn:aws:kms:<region>:<account>:key/<id> or :alias/<name>"
        ))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "kms", region, account, resource]
            if partition.starts_with("aws")
                && !region.is_empty()
                && account.bytes().all(|b| b.is_ascii_digit())
                && (resource.starts_with("key/") || resource.starts_with("alias/")) =>
        {
            Ok(region)
        }
        _ => Err(invalid()),
    }
}

/// What a KMS client is built for: one AWS configuration and client per region, profile
/// and role.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// The region (the key ARN's).
    pub region: String,
    /// Shared-config profile (empty: the default chain).
    pub profile: String,
    /// Role assumed first (empty: none).
    pub role: String,
}

impl ClientKey {
    /// The client `key` is used through.
    pub fn of(key: &KmsKey) -> Result<Self, KeyServiceError> {
        Ok(Self {
            region: region_of(&key.arn)?.to_owned(),
            profile: key.profile.clone(),
            role: key.role.clone(),
        })
    }
}

/// Clients built once per key and shared: cloning a client is cheap (an `Arc`), building
/// one loads configuration and credentials.
pub struct ClientCache<K, C> {
    clients: Mutex<HashMap<K, C>>,
}

impl<K, C> Default for ClientCache<K, C> {
    fn default() -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, C: Clone> ClientCache<K, C> {
    /// The client for `key`, built with `make` the first time. When two callers race, both
    /// get the client stored first.
    pub async fn get_or_try_insert<F, Fut, E>(&self, key: &K, make: F) -> Result<C, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, E>>,
    {
        if let Some(client) = self.lock().get(key) {
            return Ok(client.clone());
        }
        let client = make().await?;
        Ok(self.lock().entry(key.clone()).or_insert(client).clone())
    }

    /// Number of clients held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no client is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, C>> {
        // The map stays consistent even if a holder panicked: entries are whole clients.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// AWS KMS as a [`KeyService`]: `Encrypt`/`Decrypt` with the key's ARN and encryption
/// context, through one cached client per region, profile and role. Keep one for the
/// life of the program.
#[derive(Default)]
pub struct KmsService {
    clients: ClientCache<ClientKey, aws_sdk_kms::Client>,
    endpoint: Option<String>,
    credentials: Option<aws_sdk_kms::config::Credentials>,
}

impl KmsService {
    /// A service with no client yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `url` instead of the region's endpoint (an emulator, a VPC endpoint).
    pub fn with_endpoint(mut self, url: Option<String>) -> Self {
        self.endpoint = url;
        self
    }

    /// Signs with these static credentials instead of the default chain's (Flux's
    /// `sops.aws-kms` entry).
    pub fn with_static_credentials(
        mut self,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
    ) -> Self {
        self.credentials = Some(aws_sdk_kms::config::Credentials::new(
            access_key_id,
            secret_access_key,
            session_token.map(str::to_owned),
            None,
            "gitseal-static",
        ));
        self
    }

    /// The client for `key`, built on first use.
    pub async fn client(&self, key: &KmsKey) -> Result<aws_sdk_kms::Client, KeyServiceError> {
        let id = ClientKey::of(key)?;
        self.clients
            .get_or_try_insert(&id, || self.build_client(&id))
            .await
    }

    /// Number of clients built so far.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }
}

impl KmsService {
    async fn build_client(&self, id: &ClientKey) -> Result<aws_sdk_kms::Client, KeyServiceError> {
        build_client(id, self.endpoint.as_deref(), self.credentials.clone()).await
    }
}

async fn build_client(
    id: &ClientKey,
    endpoint: Option<&str>,
    credentials: Option<aws_sdk_kms::config::Credentials>,
) -> Result<aws_sdk_kms::Client, KeyServiceError> {
    let region = aws_config::Region::new(id.region.clone());
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region.clone());
    if !id.profile.is_empty() {
        loader = loader.profile_name(&id.profile);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    let mut config = loader.load().await;
    if !id.role.is_empty() {
        let provider = aws_config::sts::AssumeRoleProvider::builder(&id.role)
            .session_name(session_name())
            .region(region)
            .configure(&config)
            .build()
            .await;
        config = config
            .into_builder()
            .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(
                provider,
            ))
            .build();
    }
    // The endpoint is KMS's only: an assumed role's STS calls go to STS.
    let mut kms = aws_sdk_kms::config::Builder::from(&config);
    if let Some(url) = endpoint {
        kms = kms.endpoint_url(url);
    }
    Ok(aws_sdk_kms::Client::from_conf(kms.build()))
}

/// A failed call, typed by what the service said.
fn call_error<E>(operation: &str, arn: &str, error: &SdkError<E>) -> KeyServiceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = format!(
        "KMS {operation} with {arn} failed: {}",
        crate::error_chain(error)
    );
    let code = error.as_service_error().and_then(|e| e.code());
    match code {
        Some("NotFoundException") => KeyServiceError::NotFound(message),
        Some(
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "InvalidSignatureException"
            | "IncompleteSignature",
        ) => KeyServiceError::AccessDenied(message),
        Some(
            "KMSInternalException"
            | "DependencyTimeoutException"
            | "KeyUnavailableException"
            | "ThrottlingException"
            | "LimitExceededException"
            | "ServiceUnavailableException",
        ) => KeyServiceError::Unavailable(message),
        Some(_) => KeyServiceError::Invalid(message),
        // Not an answer of the service: no connection, timeout, no credentials.
        None => KeyServiceError::Unavailable(message),
    }
}

fn empty_response(operation: &str, arn: &str, what: &str) -> KeyServiceError {
    KeyServiceError::Unavailable(format!(
        "KMS {operation} with {arn} failed: no {what} in the response"
    ))
}

/// `sops@<hostname>`, limited to the characters and length STS accepts.
fn session_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = format!("sops@{}", host.trim())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(*c))
        .take(64)
        .collect();
    clean
}

impl KeyService for KmsService {
    type Key = KmsKey;

    /// Encrypts the data key (or share); returns the base64 blob sops stores as `enc`.
    async fn wrap(&self, key: &KmsKey, data_key: &[u8]) -> Result<String, KeyServiceError> {
        let client = self.client(key).await?;
        let mut request = client
            .encrypt()
            .key_id(&key.arn)
            .plaintext(Blob::new(data_key.to_vec()));
        for (k, v) in &key.context {
            request = request.encryption_context(k, v);
        }
        let response = request
            .send()
            .await
            .map_err(|e| call_error("Encrypt", &key.arn, &e))?;
        let blob = response
            .ciphertext_blob()
            .ok_or_else(|| empty_response("Encrypt", &key.arn, "ciphertext"))?;
        Ok(STANDARD.encode(blob.as_ref()))
    }

    /// Decrypts the base64 `enc` back into the data key (or share).
    async fn unwrap(&self, key: &KmsKey, enc: &str) -> Result<SecretBytes, KeyServiceError> {
        let blob = STANDARD.decode(enc.trim()).map_err(|_| {
            KeyServiceError::Invalid(format!("the KMS ciphertext of {} is not base64", key.arn))
        })?;
        let client = self.client(key).await?;
        let mut request = client
            .decrypt()
            .key_id(&key.arn)
            .ciphertext_blob(Blob::new(blob));
        for (k, v) in &key.context {
            request = request.encryption_context(k, v);
        }
        let response = request
            .send()
            .await
            .map_err(|e| call_error("Decrypt", &key.arn, &e))?;
        let plaintext = response
            .plaintext
            .ok_or_else(|| empty_response("Decrypt", &key.arn, "plaintext"))?;
        Ok(SecretBytes::new(plaintext.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_come_from_the_arn() {
        assert_eq!(
            region_of("arn:aws:kms:eu-west-1:123456789012:key/abc").unwrap(),
            "eu-west-1"
        );
        assert_eq!(
            region_of("arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/prod").unwrap(),
            "us-gov-west-1"
        );
        assert!(region_of("arn:aws:s3:::bucket").is_err());
        assert!(region_of("key/abc").is_err());
    }

    #[test]
    fn the_cache_builds_once_per_key() {
        let cache: ClientCache<&str, std::sync::Arc<u32>> = ClientCache::default();
        let built = std::sync::atomic::AtomicU32::new(0);
        let get = |key: &'static str| {
            block_on(cache.get_or_try_insert(&key, || async {
                let n = built.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, ()>(std::sync::Arc::new(n))
            }))
            .unwrap()
        };
        let a = get("a");
        assert!(
            std::sync::Arc::ptr_eq(&a, &get("a")),
            "same key, same client"
        );
        let b = get("b");
        assert!(
            !std::sync::Arc::ptr_eq(&a, &b),
            "another key, another client"
        );
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(cache.len(), 2);
        // A failed build is not cached.
        let failed = block_on(cache.get_or_try_insert(&"c", || async { Err::<_, ()>(()) }));
        assert!(failed.is_err() && cache.len() == 2);
    }

    fn key(arn: &str, role: &str, profile: &str) -> KmsKey {
        KmsKey {
            arn: arn.into(),
            role: role.into(),
            context: vec![("env".into(), "prod".into())],
            profile: profile.into(),
        }
    }

    #[test]
    fn one_client_per_region_profile_and_role() {
        // Building a client makes no network call: credentials are resolved on first use.
        let service = KmsService::new();
        let one = "arn:aws:kms:eu-west-1:123456789012:key/one";
        let two = "arn:aws:kms:eu-west-1:123456789012:alias/two";
        let role = "arn:aws:iam::123456789012:role/sops";
        block_on(async {
            service.client(&key(one, "", "")).await.unwrap();
            service.client(&key(two, "", "")).await.unwrap();
            assert_eq!(service.clients(), 1, "same region, profile and role");
            service.client(&key(one, role, "")).await.unwrap();
            assert_eq!(service.clients(), 2, "another role");
            service.client(&key(one, "", "gitseal-test")).await.unwrap();
            assert_eq!(service.clients(), 3, "another profile");
            service
                .client(&key("arn:aws:kms:us-east-1:123456789012:key/x", "", ""))
                .await
                .unwrap();
            assert_eq!(service.clients(), 4, "another region");
            service.client(&key(two, role, "")).await.unwrap();
            assert_eq!(service.clients(), 4);
        });
        let error = block_on(service.client(&key("key/abc", "", "")))
            .err()
            .unwrap();
        assert_eq!(error.kind(), "Invalid");
    }

    #[test]
    fn bad_ciphertext_is_invalid_before_any_call() {
        let service = KmsService::new();
        let arn = "arn:aws:kms:eu-west-1:123456789012:key/one";
        let error = block_on(service.unwrap(&key(arn, "", ""), "%%%"))
            .err()
            .unwrap();
        assert_eq!(error.kind(), "Invalid");
        assert!(error.to_string().contains(arn));
        assert_eq!(service.clients(), 0);
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn session_names_are_sts_safe() {
        let name = session_name();
        assert!(name.starts_with("sops@") && name.len() <= 64);
    }
}
