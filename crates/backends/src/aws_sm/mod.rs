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
//! * `validate`: `ListSecrets` with `MaxResults` 1.
//! * Errors: `ResourceNotFoundException`, or an `InvalidRequestException` saying the secret
//!   is marked for deletion → `NotFound`; access denied, unrecognized or expired
//!   credentials, credentials that cannot be obtained → `Forbidden`; throttling and HTTP
//!   429 → `Throttled`; `DecryptionFailure`, `InvalidParameterException` and other 4xx →
//!   `Invalid`; `InternalServiceError`, 5xx, timeouts, connection errors → `Unavailable`.
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
//! The SDK's standard retry policy applies (3 attempts, with backoff, for throttling and
//! transient errors); an observer sees one call per SDK operation, not per attempt.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

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
    /// Timeout of every API call, retries included (30 s by default).
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

mod cache;
mod calls;
mod error;
mod web_identity;

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
        match (output.secret_string.take(), output.secret_binary.take()) {
            (Some(text), _) => Ok(SecretMap::raw(key, text.into_bytes())),
            (None, Some(binary)) => Ok(SecretMap::raw(key, binary.into_inner())),
            (None, None) => Err(ProviderError::Invalid(format!(
                "secret {key:?}: neither SecretString nor SecretBinary in the response"
            ))),
        }
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
                match self.batch(client, chunk, &mut values).await {
                    Ok(()) => continue,
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

    async fn batch(
        &self,
        client: &Client,
        chunk: &[(String, String)],
        values: &mut BTreeMap<String, SecretValue>,
    ) -> Result<(), Batch> {
        let names: HashMap<&str, &str> = chunk
            .iter()
            .map(|(name, arn)| (arn.as_str(), name.as_str()))
            .collect();
        let mut token: Option<String> = None;
        loop {
            let result = client
                .batch_get_secret_value()
                .set_secret_id_list(Some(chunk.iter().map(|(_, arn)| arn.clone()).collect()))
                .set_next_token(token.take())
                .send()
                .await;
            self.observer
                .observe(AwsSmCall::BatchGetSecretValue, result.is_ok());
            let mut output = match result {
                Ok(output) => output,
                Err(e) if unsupported(&e) => return Err(Batch::Unsupported),
                Err(e) => {
                    let first = chunk.first().map(|(n, _)| n.as_str()).unwrap_or("");
                    return Err(Batch::Failed(call_error("BatchGetSecretValue", first, &e)));
                }
            };
            for entry in output.secret_values.take().unwrap_or_default() {
                let name = entry
                    .arn
                    .as_deref()
                    .and_then(|arn| names.get(arn).copied())
                    .or(entry.name.as_deref())
                    .unwrap_or_default()
                    .to_owned();
                if let Some(payload) = payload(entry.secret_string, entry.secret_binary) {
                    values.insert(name, payload);
                }
            }
            for error in output.errors() {
                let code = error.error_code().unwrap_or_default();
                let message = error.message().unwrap_or_default();
                if code == "ResourceNotFoundException" || deleted(code, message) {
                    continue;
                }
                let id = error.secret_id().unwrap_or_default();
                let name = names.get(id).copied().unwrap_or(id);
                return Err(Batch::Failed(classify(
                    Some(code),
                    None,
                    format!(
                        "AWS Secrets Manager BatchGetSecretValue of {name:?} failed: {code}: {message}"
                    ),
                    name,
                )));
            }
            match output.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(()),
            }
        }
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

enum Batch {
    Unsupported,
    Failed(ProviderError),
}

fn payload(
    text: Option<String>,
    binary: Option<aws_sdk_secretsmanager::primitives::Blob>,
) -> Option<SecretValue> {
    match (text, binary) {
        (Some(text), _) => Some(SecretValue::new(text.into_bytes())),
        (None, Some(binary)) => Some(SecretValue::new(binary.into_inner())),
        (None, None) => None,
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
}

async fn build_client(config: &AwsSmConfig) -> Result<Client, ProviderError> {
    let region = aws_config::Region::new(config.region.clone());
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5).min(config.timeout))
        .operation_timeout(config.timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(timeouts);
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
