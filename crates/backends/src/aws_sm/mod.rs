//! AWS Secrets Manager as a [`SecretProvider`], as ESO's `aws` provider with
//! `service: SecretsManager` reads it.
//!
//! | you want to…                                              | use                                  |
//! |-----------------------------------------------------------|--------------------------------------|
//! | a provider for a SecretStore (cached across syncs)        | [`AwsSmClients::get_or_insert_with`] with an [`AwsSmClientKey`] |
//! | a one-off provider (tests, the CLI)                       | [`AwsSecretsManager::new`]           |
//! | say where credentials come from                           | [`AwsCredentials`]                   |
//! | count calls for `externalsecret_provider_api_calls_count` | an [`AwsSmCallObserver`], e.g. [`AwsSmCallCounter`] |
//!
//! ## Wire behaviour
//!
//! * `get_map(key, version)`: one `GetSecretValue` of `prefix + key`; `version`
//!   `uuid/<id>` is a `VersionId`, anything else a `VersionStage` (default `AWSCURRENT`).
//!   The map is [`SecretMap::raw`] of the `SecretString` (or `SecretBinary`): without a
//!   property the raw payload; with one, a dotted property as a literal key first, then a
//!   gjson path (the subset of [`crate::provider`]), as ESO does. Wildcards, queries and
//!   modifiers are [`ProviderError::Invalid`] (ESO supports them).
//! * `find`: `ListSecrets` pages (server-side `name` filter on `prefix + path`, `tag-key`
//!   and `tag-value` filters for tags), then exact client-side checks (the name starts with
//!   `prefix + path`, the unanchored name regexp, every tag with exactly its value; AWS
//!   filters are prefix matches), then `BatchGetSecretValue` by ARN, 20 per call (or one
//!   `GetSecretValue` per secret where the service does not know `BatchGetSecretValue`).
//!   Names are the full secret names. Secrets scheduled for deletion are skipped.
//! * `get_many(keys)`: the current versions of many keys, one `BatchGetSecretValue` per 20
//!   distinct keys (`SecretIdList` of `prefix + key`), each returned secret matched back to
//!   its key by name (by ARN, full or partial, when a key is an ARN). Each key's map is what
//!   `get_map(key, None)` gives, byte for byte; per-secret `Errors` entries are classified as
//!   `GetSecretValue` errors (a missing secret or one marked for deletion → that key's
//!   `NotFound`), and a key in neither list is `NotFound`. A failure of the whole call
//!   (throttling, an outage) is every key of that call's error. Where the service does not
//!   know `BatchGetSecretValue`, one `GetSecretValue` per key.
//! * `validate`: `ListSecrets` with `MaxResults` 1.
//! * Errors: `ResourceNotFoundException`, or an `InvalidRequestException` saying the secret
//!   is marked for deletion → `NotFound`; access denied, unrecognized or expired
//!   credentials, credentials that cannot be obtained → `Forbidden`; `ThrottlingException`,
//!   `TooManyRequestsException`, `RequestLimitExceeded` and HTTP 429 → `Throttled` (with the
//!   `Retry-After` the service sent, if any); `DecryptionFailure`,
//!   `InvalidParameterException` and other 4xx → `Invalid`; `InternalServiceError`,
//!   `ServiceUnavailableException`, 5xx, timeouts, connection errors → `Unavailable`. STS
//!   throttling or outages while obtaining web identity credentials are `Throttled` and
//!   `Unavailable` too, not `Forbidden`.
//!
//! ## Credentials
//!
//! The base credentials ([`AwsCredentials`]) are static keys, a web identity (a service
//! account JWT exchanged with STS `AssumeRoleWithWebIdentity`, session name `gitseal`; the
//! token is requested only when credentials are obtained or refreshed) or the SDK's
//! default chain. Then each of [`AwsSmConfig::additional_roles`] and finally
//! [`AwsSmConfig::role`] is assumed with STS `AssumeRole` (session name `gitseal`; the
//! [`AwsSmConfig::external_id`] goes with the last role). The SDK client caches the final
//! credentials until shortly before they expire. STS calls go to
//! [`AwsSmConfig::endpoint`] too when it is set.
//!
//! The SDK does not retry: every operation is exactly one request (Secrets Manager and STS
//! alike), so throttling and transient failures reach the caller at once as `Throttled` /
//! `Unavailable`, and the controller's per-store backoff decides when to try again. An
//! observer sees one call per request.
//!
//! ```no_run
//! use std::sync::Arc;
//! use gitseal_backends::aws_sm::*;
//! use gitseal_backends::provider::{SecretProvider, SecretValue};
//!
//! # async fn demo() -> Result<(), gitseal_backends::provider::ProviderError> {
//! let counter = Arc::new(AwsSmCallCounter::new());
//! let clients = AwsSmClients::new(counter.clone());
//! let key = AwsSmClientKey {
//!     store: "SecretStore/default/aws".into(),
//!     region: "eu-west-1".into(),
//!     auth_method: "secretRef".into(),
//!     credential_digest: Some(CredentialDigest::of(b"AKID\0secret")),
//!     ..AwsSmClientKey::default()
//! };
//! let provider = clients.get_or_insert_with(&key, || {
//!     let credentials = AwsCredentials::Static {
//!         access_key_id: "AKID".into(),
//!         secret_access_key: SecretValue::new(b"secret".to_vec()),
//!         session_token: None,
//!     };
//!     let mut config = AwsSmConfig::new("eu-west-1", credentials);
//!     config.role = Some("arn:aws:iam::123456789012:role/reader".into());
//!     Ok(config)
//! })?;
//! let map = provider.get_map("app/db", None).await?; // one GetSecretValue …
//! let user = map.property("user")?;                  // … many properties
//! let password = map.property("password")?;
//! # drop((user, password));
//! # Ok(()) }
//! ```
//!
//! ## Secrets in memory
//!
//! Values are returned as [`SecretValue`]s. The SDK's own buffers (response bodies, the
//! `String` of a `SecretString`, static keys handed to the SDK) are not wiped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use tokio::sync::OnceCell;

pub use crate::digest::CredentialDigest;
use crate::provider::{
    BoxFuture, FindQuery, ProviderError, SecretMap, SecretProvider, SecretValue,
};

/// The `provider` label ESO uses for AWS Secrets Manager.
pub const PROVIDER_LABEL: &str = "AWS/SecretsManager";

/// The STS session name of every assumed role.
pub const SESSION_NAME: &str = "gitseal";

/// How many ARNs one `BatchGetSecretValue` takes.
const BATCH_SIZE: usize = 20;

/// A function returning a web identity token (a service account JWT).
pub type TokenSource =
    dyn Fn() -> BoxFuture<'static, Result<SecretValue, ProviderError>> + Send + Sync;

/// The base credentials. No `Debug` (it would show secrets); see [`AwsSmConfig`]'s.
#[non_exhaustive]
pub enum AwsCredentials {
    /// Static keys (`secretRef`).
    Static {
        /// `AWS_ACCESS_KEY_ID`.
        access_key_id: String,
        /// `AWS_SECRET_ACCESS_KEY`.
        secret_access_key: SecretValue,
        /// `AWS_SESSION_TOKEN`, for temporary keys.
        session_token: Option<SecretValue>,
    },
    /// STS `AssumeRoleWithWebIdentity` of `role_arn` with a token from `token` (called
    /// only when credentials are obtained or refreshed).
    WebIdentity {
        /// The role to assume.
        role_arn: String,
        /// Where the JWT comes from.
        token: Arc<TokenSource>,
    },
    /// The SDK's default chain (environment, profile, web identity file, IMDS…).
    DefaultChain,
}

impl AwsCredentials {
    fn kind(&self) -> &'static str {
        match self {
            Self::Static { .. } => "Static",
            Self::WebIdentity { .. } => "WebIdentity",
            Self::DefaultChain => "DefaultChain",
        }
    }
}

/// An AWS Secrets Manager SecretStore's settings. `Debug` leaves out credentials.
#[non_exhaustive]
pub struct AwsSmConfig {
    /// The region, e.g. `eu-west-1`.
    pub region: String,
    /// Another endpoint (e.g. a local emulator), also used for STS; `None`: the SDK's
    /// default, including `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    /// Prepended to every key (ESO's `prefix`).
    pub prefix: Option<String>,
    /// The base credentials.
    pub credentials: AwsCredentials,
    /// The role assumed last (ESO's `role`).
    pub role: Option<String>,
    /// Roles assumed in order before `role` (ESO's `additionalRoles`).
    pub additional_roles: Vec<String>,
    /// The external ID passed when assuming the last role.
    pub external_id: Option<String>,
    /// Timeout of every API call (30 s by default; the SDK makes one attempt per call).
    pub timeout: Duration,
}

impl AwsSmConfig {
    /// No endpoint, prefix or roles.
    pub fn new(region: impl Into<String>, credentials: AwsCredentials) -> Self {
        Self {
            region: region.into(),
            endpoint: None,
            prefix: None,
            credentials,
            role: None,
            additional_roles: Vec::new(),
            external_id: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// The roles in the order they are assumed.
    fn role_chain(&self) -> Vec<&str> {
        let mut chain: Vec<&str> = self.additional_roles.iter().map(String::as_str).collect();
        chain.extend(self.role.as_deref());
        chain
    }
}

impl std::fmt::Debug for AwsSmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let credentials = match &self.credentials {
            AwsCredentials::Static { access_key_id, .. } => format!("Static({access_key_id})"),
            AwsCredentials::WebIdentity { role_arn, .. } => format!("WebIdentity({role_arn})"),
            other => other.kind().to_owned(),
        };
        f.debug_struct("AwsSmConfig")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("credentials", &credentials)
            .field("role", &self.role)
            .field("additional_roles", &self.additional_roles)
            .field("external_id", &self.external_id.as_ref().map(|_| "…"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

mod batch;
mod cache;
mod calls;
mod error;
mod web_identity;

use batch::{Batch, Ids};
pub use cache::{AwsSmClientKey, AwsSmClients};
pub use calls::{AwsSmCall, AwsSmCallCounter, AwsSmCallObserver, NoAwsSmObserver};
use error::*;
use web_identity::WebIdentity;

/// AWS Secrets Manager as a [`SecretProvider`]. The SDK client is built on first use.
pub struct AwsSecretsManager {
    config: AwsSmConfig,
    client: OnceCell<Client>,
    observer: Arc<dyn AwsSmCallObserver>,
    /// Set once the service said it does not know `BatchGetSecretValue`.
    no_batch: AtomicBool,
}

impl std::fmt::Debug for AwsSecretsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSecretsManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AwsSecretsManager {
    /// A provider for `config`, reporting calls to `observer`. No network call happens
    /// here.
    pub fn new(config: AwsSmConfig, observer: Arc<dyn AwsSmCallObserver>) -> Self {
        Self {
            config,
            client: OnceCell::new(),
            observer,
            no_batch: AtomicBool::new(false),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AwsSmConfig {
        &self.config
    }

    async fn client(&self) -> Result<&Client, ProviderError> {
        self.client
            .get_or_try_init(|| build_client(&self.config))
            .await
    }

    fn secret_id(&self, key: &str) -> String {
        format!("{}{key}", self.config.prefix.as_deref().unwrap_or(""))
    }

    async fn read(&self, key: &str, version: Option<&str>) -> Result<SecretMap, ProviderError> {
        let client = self.client().await?;
        let id = self.secret_id(key);
        let mut request = client.get_secret_value().secret_id(&id);
        request = match version {
            Some(v) if v.starts_with("uuid/") => request.version_id(&v["uuid/".len()..]),
            Some(v) if !v.is_empty() => request.version_stage(v),
            _ => request.version_stage("AWSCURRENT"),
        };
        let result = request.send().await;
        self.observer
            .observe(AwsSmCall::GetSecretValue, result.is_ok());
        let mut output = result.map_err(|e| call_error("GetSecretValue", key, &e))?;
        payload_bytes(output.secret_string.take(), output.secret_binary.take())
            .map(|bytes| SecretMap::raw(key, bytes))
            .ok_or_else(|| neither(key))
    }

    /// [`SecretProvider::get_many`]: distinct ids in chunks of [`BATCH_SIZE`], one
    /// `BatchGetSecretValue` each (or `GetSecretValue` per key where unsupported).
    async fn read_many(&self, keys: &[String]) -> Vec<Result<SecretMap, ProviderError>> {
        let mut results: Vec<Option<Result<SecretMap, ProviderError>>> =
            keys.iter().map(|_| None).collect();
        // Distinct secret ids in first-seen order, each with the positions of its keys.
        let mut ids: Vec<(String, Vec<usize>)> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            let id = self.secret_id(key);
            match seen.get(&id) {
                Some(&n) => ids[n].1.push(i),
                None => {
                    seen.insert(id.clone(), ids.len());
                    ids.push((id, vec![i]));
                }
            }
        }
        let client = match self.client().await {
            Ok(client) => client,
            Err(e) => return keys.iter().map(|key| Err(for_key(&e, key))).collect(),
        };
        for chunk in ids.chunks(BATCH_SIZE) {
            if !self.no_batch.load(Ordering::Relaxed) {
                let wanted: Vec<(&str, &str)> = chunk
                    .iter()
                    .map(|(id, positions)| {
                        let key = positions.first().map_or(id.as_str(), |&i| keys[i].as_str());
                        (id.as_str(), key)
                    })
                    .collect();
                match self.batch_get(client, &wanted, Ids::Keys).await {
                    Ok(outcomes) => {
                        for ((_, positions), outcome) in chunk.iter().zip(outcomes) {
                            for &i in positions {
                                results[i] = Some(match &outcome {
                                    Ok(bytes) => Ok(SecretMap::raw(&keys[i], bytes.to_vec())),
                                    Err(e) => Err(for_key(e, &keys[i])),
                                });
                            }
                        }
                        continue;
                    }
                    Err(Batch::Unsupported) => self.no_batch.store(true, Ordering::Relaxed),
                    // A whole call "not found" says nothing definite about each key: ask
                    // for them one by one rather than report them all deleted.
                    Err(Batch::Failed(e)) if e.is_not_found() => {}
                    Err(Batch::Failed(e)) => {
                        for (_, positions) in chunk {
                            for &i in positions {
                                results[i] = Some(Err(for_key(&e, &keys[i])));
                            }
                        }
                        continue;
                    }
                }
            }
            for (_, positions) in chunk {
                for &i in positions {
                    results[i] = Some(self.read(&keys[i], None).await);
                }
            }
        }
        results
            .into_iter()
            .zip(keys)
            .map(|(result, key)| {
                result.unwrap_or_else(|| {
                    Err(ProviderError::Unavailable(format!(
                        "secret {key:?} was not read"
                    )))
                })
            })
            .collect()
    }

    async fn list(&self, query: &FindQuery) -> Result<Vec<(String, String)>, ProviderError> {
        let client = self.client().await?;
        let name_prefix = self.secret_id(query.path.as_deref().unwrap_or(""));
        let regex =
            match &query.name_regexp {
                Some(re) => Some(regex::Regex::new(re).map_err(|e| {
                    ProviderError::Invalid(format!("invalid name regexp {re:?}: {e}"))
                })?),
                None => None,
            };
        let mut filters = Vec::new();
        if !name_prefix.is_empty() {
            filters.push(filter(FilterNameStringType::Name, &name_prefix)?);
        }
        for (key, value) in &query.tags {
            filters.push(filter(FilterNameStringType::TagKey, key)?);
            filters.push(filter(FilterNameStringType::TagValue, value)?);
        }
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let result = client
                .list_secrets()
                .max_results(100)
                .set_filters((!filters.is_empty()).then(|| filters.clone()))
                .set_next_token(token.take())
                .send()
                .await;
            self.observer
                .observe(AwsSmCall::ListSecrets, result.is_ok());
            let output = result.map_err(|e| call_error("ListSecrets", &name_prefix, &e))?;
            for entry in output.secret_list() {
                let (Some(name), Some(arn)) = (entry.name(), entry.arn()) else {
                    continue;
                };
                if entry.deleted_date().is_some() || !name.starts_with(&name_prefix) {
                    continue;
                }
                if regex.as_ref().is_some_and(|re| !re.is_match(name)) {
                    continue;
                }
                let tags_match = query.tags.iter().all(|(key, value)| {
                    entry
                        .tags()
                        .iter()
                        .any(|t| t.key() == Some(key.as_str()) && t.value() == Some(value.as_str()))
                });
                if tags_match {
                    found.push((name.to_owned(), arn.to_owned()));
                }
            }
            match output.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    async fn find_secrets(
        &self,
        query: &FindQuery,
    ) -> Result<Vec<(String, SecretValue)>, ProviderError> {
        let secrets = self.list(query).await?;
        let client = self.client().await?;
        let mut values: BTreeMap<String, SecretValue> = BTreeMap::new();
        for chunk in secrets.chunks(BATCH_SIZE) {
            if !self.no_batch.load(Ordering::Relaxed) {
                let wanted: Vec<(&str, &str)> = chunk
                    .iter()
                    .map(|(name, arn)| (arn.as_str(), name.as_str()))
                    .collect();
                match self.batch_get(client, &wanted, Ids::Listed).await {
                    Ok(outcomes) => {
                        // Not found, deleted or without a payload: skipped, as by single reads.
                        for ((name, _), outcome) in chunk.iter().zip(outcomes) {
                            if let Ok(bytes) = outcome {
                                values.insert(name.clone(), bytes.into());
                            }
                        }
                        continue;
                    }
                    Err(Batch::Unsupported) => self.no_batch.store(true, Ordering::Relaxed),
                    Err(Batch::Failed(e)) => return Err(e),
                }
            }
            for (name, arn) in chunk {
                let result = client.get_secret_value().secret_id(arn).send().await;
                self.observer
                    .observe(AwsSmCall::GetSecretValue, result.is_ok());
                match result.map_err(|e| call_error("GetSecretValue", name, &e)) {
                    Ok(mut output) => {
                        if let Some(payload) =
                            payload(output.secret_string.take(), output.secret_binary.take())
                        {
                            values.insert(name.clone(), payload);
                        }
                    }
                    // Deleted between the list and the read.
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(values.into_iter().collect())
    }

    async fn check(&self) -> Result<(), ProviderError> {
        let client = self.client().await?;
        let result = client.list_secrets().max_results(1).send().await;
        self.observer
            .observe(AwsSmCall::ListSecrets, result.is_ok());
        result
            .map(|_| ())
            .map_err(|e| call_error("ListSecrets", "", &e))
    }
}

/// The payload of a `GetSecretValue` or `BatchGetSecretValue` answer: the `SecretString`
/// as UTF-8, else the `SecretBinary` (the one source of [`SecretMap::raw`] payloads, so a
/// single and a batched read give the same map).
fn payload_bytes(
    text: Option<String>,
    binary: Option<aws_sdk_secretsmanager::primitives::Blob>,
) -> Option<Vec<u8>> {
    match (text, binary) {
        (Some(text), _) => Some(text.into_bytes()),
        (None, Some(binary)) => Some(binary.into_inner()),
        (None, None) => None,
    }
}

fn payload(
    text: Option<String>,
    binary: Option<aws_sdk_secretsmanager::primitives::Blob>,
) -> Option<SecretValue> {
    payload_bytes(text, binary).map(SecretValue::new)
}

fn neither(key: &str) -> ProviderError {
    ProviderError::Invalid(format!(
        "secret {key:?}: neither SecretString nor SecretBinary in the response"
    ))
}

/// `error` as the error of `key`: a `NotFound` names `key`, anything else is as is.
fn for_key(error: &ProviderError, key: &str) -> ProviderError {
    match error {
        ProviderError::NotFound { .. } => ProviderError::NotFound {
            key: key.to_owned(),
        },
        other => other.clone(),
    }
}

fn filter(key: FilterNameStringType, value: &str) -> Result<Filter, ProviderError> {
    Ok(Filter::builder().key(key).values(value).build())
}

impl SecretProvider for AwsSecretsManager {
    fn get_map<'a>(
        &'a self,
        key: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<SecretMap, ProviderError>> {
        Box::pin(self.read(key, version))
    }

    fn find<'a>(
        &'a self,
        query: &'a FindQuery,
    ) -> BoxFuture<'a, Result<Vec<(String, SecretValue)>, ProviderError>> {
        Box::pin(self.find_secrets(query))
    }

    fn validate(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(self.check())
    }

    fn batch_size(&self) -> usize {
        BATCH_SIZE
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Vec<Result<SecretMap, ProviderError>>> {
        Box::pin(self.read_many(keys))
    }
}

async fn build_client(config: &AwsSmConfig) -> Result<Client, ProviderError> {
    let region = aws_config::Region::new(config.region.clone());
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5).min(config.timeout))
        .operation_timeout(config.timeout)
        .build();
    // One attempt per operation, no SDK retries: the controller's scheduler backs off per
    // store and must see throttling (and outages) itself, at once; SDK retries would hide
    // them behind up to 3 attempts and their own backoff, multiplying the load on a
    // throttled account. Everything built from this configuration (the Secrets Manager
    // client, the STS clients of web identity and assumed roles) inherits it.
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(timeouts)
        .retry_config(aws_config::retry::RetryConfig::disabled());
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let mut sdk = match &config.credentials {
        AwsCredentials::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } => {
            let text = |v: &SecretValue| {
                String::from_utf8(v.as_bytes().to_vec()).map_err(|_| {
                    ProviderError::Invalid("AWS credentials are not valid UTF-8".into())
                })
            };
            let credentials = aws_credential_types::Credentials::new(
                access_key_id.clone(),
                text(secret_access_key)?,
                session_token.as_ref().map(text).transpose()?,
                None,
                "gitseal-static",
            );
            loader.credentials_provider(credentials).load().await
        }
        AwsCredentials::WebIdentity { role_arn, token } => {
            let base = loader.no_credentials().load().await;
            let provider = WebIdentity {
                sts: aws_sdk_sts::Client::new(&base),
                role_arn: role_arn.clone(),
                token: token.clone(),
            };
            base.into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build()
        }
        AwsCredentials::DefaultChain => loader.load().await,
    };
    let chain = config.role_chain();
    for (i, role) in chain.iter().enumerate() {
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(*role)
            .session_name(SESSION_NAME)
            .region(region.clone())
            .configure(&sdk);
        if i + 1 == chain.len()
            && let Some(external_id) = &config.external_id
        {
            builder = builder.external_id(external_id);
        }
        let provider = builder.build().await;
        sdk = sdk
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
    }
    Ok(Client::new(&sdk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let kind = |code: Option<&str>, status: Option<u16>| {
            classify(code, status, "m".into(), "k").kind()
        };
        assert_eq!(
            kind(Some("ResourceNotFoundException"), Some(400)),
            "NotFound"
        );
        assert_eq!(kind(Some("AccessDeniedException"), Some(400)), "Forbidden");
        assert_eq!(
            kind(Some("UnrecognizedClientException"), Some(400)),
            "Forbidden"
        );
        assert_eq!(kind(Some("ThrottlingException"), Some(400)), "Throttled");
        assert_eq!(kind(None, Some(429)), "Throttled");
        assert_eq!(kind(Some("DecryptionFailure"), Some(400)), "Invalid");
        assert_eq!(
            kind(Some("InvalidParameterException"), Some(400)),
            "Invalid"
        );
        assert_eq!(kind(Some("InternalServiceError"), Some(500)), "Unavailable");
        assert_eq!(kind(None, Some(503)), "Unavailable");
        assert_eq!(kind(None, None), "Unavailable");
        assert!(deleted(
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was marked for deletion."
        ));
    }

    #[test]
    fn key_errors_and_codes() {
        let moved = for_key(&ProviderError::NotFound { key: "x".into() }, "y");
        assert!(matches!(moved, ProviderError::NotFound { key } if key == "y"));
        assert_eq!(
            for_key(&ProviderError::Unavailable("u".into()), "y").kind(),
            "Unavailable"
        );
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(
            classify(
                Some("ServiceUnavailableException"),
                Some(400),
                "m".into(),
                "k"
            )
            .kind(),
            "Unavailable"
        );
        for code in [
            "TooManyRequestsException",
            "RequestLimitExceeded",
            "Throttling",
        ] {
            assert_eq!(
                classify(Some(code), Some(400), "m".into(), "k").kind(),
                "Throttled"
            );
        }
    }

    #[test]
    fn transient_credential_failures() {
        let kind = |source: ProviderError| {
            let error = CredentialsError::provider_error(source);
            credentials_error(&error, "m".into()).kind()
        };
        let throttled = ProviderError::Throttled {
            retry_after: None,
            message: "sts".into(),
        };
        assert_eq!(kind(throttled), "Throttled");
        assert_eq!(
            kind(ProviderError::Unavailable("sts".into())),
            "Unavailable"
        );
        assert_eq!(kind(ProviderError::Forbidden("denied".into())), "Forbidden");
        // Never NotFound: that could delete target Secrets.
        assert_eq!(
            kind(ProviderError::NotFound { key: "t".into() }),
            "Forbidden"
        );
        let timed_out = CredentialsError::provider_timed_out(Duration::from_secs(5));
        assert_eq!(
            credentials_error(&timed_out, "m".into()).kind(),
            "Unavailable"
        );
    }

    #[test]
    fn batch_fallback_detection() {
        assert!(unknown_operation(
            Some("UnknownOperationException"),
            Some(400)
        ));
        assert!(unknown_operation(Some("InvalidAction"), Some(400)));
        assert!(unknown_operation(None, Some(404)));
        assert!(unknown_operation(None, Some(501)));
        assert!(!unknown_operation(Some("AccessDeniedException"), Some(400)));
        assert!(!unknown_operation(
            Some("ResourceNotFoundException"),
            Some(400)
        ));
        assert!(!unknown_operation(None, Some(500)));
        assert!(!unknown_operation(None, None));
    }

    #[test]
    fn config_debug_hides_secrets() {
        let mut config = AwsSmConfig::new(
            "eu-west-1",
            AwsCredentials::Static {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: SecretValue::new(b"very-secret".to_vec()),
                session_token: Some(SecretValue::new(b"tok-secret".to_vec())),
            },
        );
        config.external_id = Some("ext-secret".into());
        let text = format!("{config:?}");
        assert!(text.contains("AKIDEXAMPLE"));
        assert!(!text.contains("very-secret") && !text.contains("tok-secret"));
        assert!(!text.contains("ext-secret"));
    }

    #[test]
    fn role_chain_order() {
        let mut config = AwsSmConfig::new("r", AwsCredentials::DefaultChain);
        config.additional_roles = vec!["a".into(), "b".into()];
        config.role = Some("c".into());
        assert_eq!(config.role_chain(), ["a", "b", "c"]);
    }
}
