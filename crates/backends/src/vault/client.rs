//! The Vault HTTP client: requests, error mapping, the token session.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use zeroize::Zeroizing;

use super::calls::{CallObserver, VaultCall};
use super::{
    Credential, Credentials, KvVersion, VaultAuth, VaultConfig, build_path, metadata_path,
};
use crate::provider::{FindQuery, ProviderError, SecretMap, SecretValue, go_json, wipe};

/// A token is dropped and a new login made up to this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(2);
/// After a failed renewal (other than a refusal), wait this long before trying again.
const RENEW_RETRY: Duration = Duration::from_secs(5);

/// A Vault token: wiped when dropped, no Debug.
struct Token(Zeroizing<String>);

impl Token {
    fn header(&self) -> Result<HeaderValue, ProviderError> {
        let mut value = HeaderValue::from_str(&self.0).map_err(|_| {
            ProviderError::Invalid("the Vault token is not a valid header value".into())
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

struct Lease {
    renewable: bool,
    ttl: Duration,
    next_renew: Instant,
    /// A little before expiry (at most [`EXPIRY_MARGIN`], at most ⅙ of the TTL, so after
    /// the renewal point).
    relogin_at: Instant,
}

impl Lease {
    fn new(renewable: bool, ttl: Duration, now: Instant) -> Option<Self> {
        // A TTL of 0 means the token does not expire.
        (!ttl.is_zero()).then(|| Self {
            renewable,
            ttl,
            next_renew: now + ttl * 2 / 3,
            relogin_at: now + ttl - EXPIRY_MARGIN.min(ttl / 6),
        })
    }
}

struct Session {
    token: Arc<Token>,
    generation: u64,
    /// We logged in for it: revoke it when done. Static tokens are not ours.
    owned: bool,
    lease: Option<Lease>,
}

#[derive(Default)]
struct Slot {
    session: Option<Session>,
    generation: u64,
}

struct Reply {
    status: StatusCode,
    body: Zeroizing<Vec<u8>>,
    retry_after: Option<Duration>,
}

/// A Vault KV provider for one store and auth identity; see the [module docs](super).
/// Cheap to share as `Arc<VaultProvider>`; concurrent calls share one token.
pub struct VaultProvider {
    http: reqwest::Client,
    base: Url,
    mount: Option<String>,
    version: KvVersion,
    namespace: Option<String>,
    auth_namespace: Option<String>,
    auth: VaultAuth,
    credentials: Credentials,
    observer: Arc<dyn CallObserver>,
    slot: tokio::sync::Mutex<Slot>,
}

fn trim_slashes(s: &str) -> &str {
    s.trim_matches('/')
}

impl VaultProvider {
    /// A provider for `config`, logging in with `credentials` on first use and reporting
    /// every call to `observer`. Fails with `Invalid` on a bad server URL, CA bundle or
    /// header.
    pub fn new(
        config: VaultConfig,
        credentials: Credentials,
        observer: Arc<dyn CallObserver>,
    ) -> Result<Self, ProviderError> {
        let mut base = Url::parse(&config.server).map_err(|e| {
            ProviderError::Invalid(format!("invalid Vault server {:?}: {e}", config.server))
        })?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(ProviderError::Invalid(format!(
                "invalid Vault server {:?}: expected http(s)://host[:port]",
                config.server
            )));
        }
        base.set_query(None);
        base.set_fragment(None);
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.pop_if_empty().push("v1");
        }

        let mut headers = HeaderMap::new();
        headers.insert("x-vault-request", HeaderValue::from_static("true"));
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ProviderError::Invalid(format!("invalid header name {name:?} in the Vault store"))
            })?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                ProviderError::Invalid(format!("invalid value of header {name} in the Vault store"))
            })?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)));
        if let Some(pem) = &config.ca_bundle {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                ProviderError::Invalid(format!("invalid caBundle of the Vault store: {e}"))
            })?;
            if certs.is_empty() {
                return Err(ProviderError::Invalid(
                    "the caBundle of the Vault store holds no PEM certificate".into(),
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| {
            ProviderError::Invalid(format!("Vault HTTP client: {}", crate::error_chain(&e)))
        })?;
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        Ok(Self {
            http,
            base,
            mount: config
                .path
                .as_deref()
                .map(trim_slashes)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            version: config.version,
            namespace: nonempty(&config.namespace),
            auth_namespace: nonempty(&config.auth_namespace),
            auth: config.auth,
            credentials,
            observer,
            slot: tokio::sync::Mutex::new(Slot::default()),
        })
    }

    // ---- HTTP ------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        call: VaultCall,
        method: Method,
        path: &str,
        query: Option<(&str, &str)>,
        body: Option<Zeroizing<Vec<u8>>>,
        token: Option<&Token>,
        namespace: Option<&str>,
    ) -> Result<Reply, ProviderError> {
        let result = self
            .send_inner(call, method, path, query, body, token, namespace)
            .await;
        let success = match &result {
            Ok(reply) => {
                reply.status.as_u16() < 400
                    || (reply.status == StatusCode::NOT_FOUND
                        && matches!(call, VaultCall::ReadSecretData | VaultCall::ListSecrets))
            }
            Err(_) => false,
        };
        self.observer.observe(call, success);
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_inner(
        &self,
        call: VaultCall,
        method: Method,
        path: &str,
        query: Option<(&str, &str)>,
        body: Option<Zeroizing<Vec<u8>>>,
        token: Option<&Token>,
        namespace: Option<&str>,
    ) -> Result<Reply, ProviderError> {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(path.split('/'));
        }
        if let Some((name, value)) = query {
            url.query_pairs_mut().append_pair(name, value);
        }
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.header("x-vault-token", token.header()?);
        }
        if let Some(namespace) = namespace {
            request = request.header("x-vault-namespace", namespace);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        let unavailable = |e: reqwest::Error| {
            ProviderError::Unavailable(format!("vault {call} {path}: {}", crate::error_chain(&e)))
        };
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(unavailable)?;
        Ok(Reply {
            status,
            body: Zeroizing::new(bytes.to_vec()),
            retry_after,
        })
    }

    fn status_error(call: VaultCall, path: &str, reply: &Reply) -> ProviderError {
        let errors = errors_of(&reply.body);
        let message = format!(
            "vault {call} {path}: HTTP {}{}{}",
            reply.status.as_u16(),
            if errors.is_empty() { "" } else { ": " },
            errors
        );
        match reply.status.as_u16() {
            400 if call == VaultCall::Login => ProviderError::Forbidden(message),
            403 => ProviderError::Forbidden(message),
            429 => ProviderError::Throttled {
                retry_after: reply.retry_after,
                message,
            },
            412 | 500..=599 => ProviderError::Unavailable(message),
            _ => ProviderError::Invalid(message),
        }
    }

    // ---- the token session -----------------------------------------------------------

    /// The current token, logging in or renewing first as needed.
    async fn token(&self) -> Result<(Arc<Token>, u64), ProviderError> {
        let mut slot = self.slot.lock().await;
        let now = Instant::now();
        if let Some(session) = &mut slot.session {
            let token = session.token.clone();
            let generation = session.generation;
            match &mut session.lease {
                None => return Ok((token, generation)),
                Some(lease) if now < lease.relogin_at => {
                    if !(lease.renewable && now >= lease.next_renew) {
                        return Ok((token, generation));
                    }
                    match self.renew(&token).await {
                        Ok(Some((ttl, renewable))) => {
                            // A TTL shorter than before: the max TTL caps it, so further
                            // renewals would not help; use it until it runs out.
                            let capped = ttl + Duration::from_secs(1) < lease.ttl;
                            if let Some(mut new) =
                                Lease::new(renewable && !capped, ttl, Instant::now())
                            {
                                new.ttl = new.ttl.max(lease.ttl);
                                *lease = new;
                            } else {
                                lease.renewable = false;
                            }
                            return Ok((token, generation));
                        }
                        Ok(None) => {
                            lease.renewable = false;
                            return Ok((token, generation));
                        }
                        Err(ProviderError::Forbidden(_)) => {}
                        Err(_) => {
                            lease.next_renew = now + RENEW_RETRY;
                            return Ok((token, generation));
                        }
                    }
                }
                Some(_) => {}
            }
            // Expired or refused: log in again (the old token is dead or nearly so).
            slot.session = None;
        }
        let session = self.login(slot.generation + 1).await?;
        slot.generation += 1;
        let result = (session.token.clone(), session.generation);
        slot.session = Some(session);
        Ok(result)
    }

    /// Forgets the token of `generation` (if still current), so the next call logs in.
    async fn invalidate(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot
            .session
            .as_ref()
            .is_some_and(|s| s.generation == generation)
        {
            slot.session = None;
        }
    }

    async fn login(&self, generation: u64) -> Result<Session, ProviderError> {
        let credential = self.credentials.fetch().await?;
        let mismatch = |given: &str| {
            ProviderError::Invalid(format!(
                "the credential source gave a {given} credential for Vault {} auth",
                self.auth.method()
            ))
        };
        let (mount, body) = match (&self.auth, credential) {
            (VaultAuth::Token, Credential::Token(token)) => {
                let text = std::str::from_utf8(token.as_bytes())
                    .map_err(|_| ProviderError::Invalid("the Vault token is not UTF-8".into()))?
                    .trim();
                if text.is_empty() {
                    return Err(ProviderError::Invalid("the Vault token is empty".into()));
                }
                return Ok(Session {
                    token: Arc::new(Token(Zeroizing::new(text.to_owned()))),
                    generation,
                    owned: false,
                    lease: None,
                });
            }
            (VaultAuth::AppRole { path }, Credential::AppRole { role_id, secret_id }) => {
                let secret_id = std::str::from_utf8(secret_id.as_bytes()).map_err(|_| {
                    ProviderError::Invalid("the AppRole secret_id is not UTF-8".into())
                })?;
                let body =
                    json_body(&[("role_id", role_id.trim()), ("secret_id", secret_id.trim())]);
                (path.as_str(), body)
            }
            (
                VaultAuth::Jwt { path, role }
                | VaultAuth::Kubernetes {
                    mount_path: path,
                    role,
                },
                Credential::Jwt(jwt),
            ) => {
                let jwt = std::str::from_utf8(jwt.as_bytes())
                    .map_err(|_| ProviderError::Invalid("the JWT is not UTF-8".into()))?;
                (
                    path.as_str(),
                    json_body(&[("role", role), ("jwt", jwt.trim())]),
                )
            }
            (_, Credential::Token(_)) => return Err(mismatch("token")),
            (_, Credential::AppRole { .. }) => return Err(mismatch("AppRole")),
            (_, Credential::Jwt(_)) => return Err(mismatch("JWT")),
        };
        let path = format!("auth/{}/login", trim_slashes(mount));
        let namespace = self.auth_namespace.as_deref().or(self.namespace.as_deref());
        let reply = self
            .send(
                VaultCall::Login,
                Method::POST,
                &path,
                None,
                Some(body),
                None,
                namespace,
            )
            .await?;
        if !reply.status.is_success() {
            return Err(Self::status_error(VaultCall::Login, &path, &reply));
        }
        let mut value = parse(&reply.body, VaultCall::Login, &path)?;
        let auth = &value["auth"];
        let token = auth["client_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(|t| Arc::new(Token(Zeroizing::new(t.to_owned()))));
        let ttl = Duration::from_secs(auth["lease_duration"].as_u64().unwrap_or(0));
        let renewable = auth["renewable"].as_bool().unwrap_or(false);
        wipe(&mut value);
        let token = token.ok_or_else(|| {
            ProviderError::Invalid(format!(
                "vault Login {path}: the response has no auth.client_token"
            ))
        })?;
        Ok(Session {
            token,
            generation,
            owned: true,
            lease: Lease::new(renewable, ttl, Instant::now()),
        })
    }

    /// `renew-self`: the new TTL and renewability, or `None` if the reply has no lease.
    async fn renew(&self, token: &Token) -> Result<Option<(Duration, bool)>, ProviderError> {
        let path = "auth/token/renew-self";
        let reply = self
            .send(
                VaultCall::RenewSelf,
                Method::POST,
                path,
                None,
                Some(Zeroizing::new(b"{}".to_vec())),
                Some(token),
                self.namespace.as_deref(),
            )
            .await?;
        if !reply.status.is_success() {
            return Err(Self::status_error(VaultCall::RenewSelf, path, &reply));
        }
        let mut value = parse(&reply.body, VaultCall::RenewSelf, path)?;
        let auth = &value["auth"];
        let result = auth["lease_duration"].as_u64().map(|ttl| {
            (
                Duration::from_secs(ttl),
                auth["renewable"].as_bool().unwrap_or(false),
            )
        });
        wipe(&mut value);
        Ok(result)
    }

    /// Revokes the token if we logged in for it (`revoke-self`); a static token is only
    /// forgotten. The next call logs in again.
    pub async fn revoke(&self) -> Result<(), ProviderError> {
        let session = self.slot.lock().await.session.take();
        let Some(session) = session else {
            return Ok(());
        };
        if !session.owned {
            return Ok(());
        }
        let path = "auth/token/revoke-self";
        let reply = self
            .send(
                VaultCall::RevokeSelf,
                Method::POST,
                path,
                None,
                None,
                Some(&session.token),
                self.namespace.as_deref(),
            )
            .await?;
        if reply.status.is_success() || reply.status == StatusCode::FORBIDDEN {
            // 403: the token is already gone.
            return Ok(());
        }
        Err(Self::status_error(VaultCall::RevokeSelf, path, &reply))
    }

    /// Whether a 403 means that the token itself was refused (not the policy).
    async fn token_refused(&self, reply: &Reply, token: &Token) -> bool {
        if errors_of(&reply.body).contains("invalid token") {
            return true;
        }
        match self
            .send(
                VaultCall::LookupSelf,
                Method::GET,
                "auth/token/lookup-self",
                None,
                None,
                Some(token),
                self.namespace.as_deref(),
            )
            .await
        {
            Ok(lookup) => lookup.status == StatusCode::FORBIDDEN,
            Err(_) => false,
        }
    }

    /// An authenticated request; on a refused token, one new login and one retry.
    async fn authed(
        &self,
        call: VaultCall,
        method: Method,
        path: &str,
        query: Option<(&str, &str)>,
    ) -> Result<Reply, ProviderError> {
        let namespace = self.namespace.as_deref();
        let (token, generation) = self.token().await?;
        let reply = self
            .send(
                call,
                method.clone(),
                path,
                query,
                None,
                Some(&token),
                namespace,
            )
            .await?;
        if reply.status != StatusCode::FORBIDDEN || !self.token_refused(&reply, &token).await {
            return Ok(reply);
        }
        self.invalidate(generation).await;
        let (token, _) = self.token().await?;
        self.send(call, method, path, query, None, Some(&token), namespace)
            .await
    }

    // ---- operations ------------------------------------------------------------------

    pub(super) async fn lookup_self(&self) -> Result<(), ProviderError> {
        let path = "auth/token/lookup-self";
        let reply = self
            .authed(VaultCall::LookupSelf, Method::GET, path, None)
            .await?;
        if reply.status.is_success() {
            return Ok(());
        }
        Err(Self::status_error(VaultCall::LookupSelf, path, &reply))
    }

    pub(super) async fn read(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<SecretMap, ProviderError> {
        let path = build_path(self.mount.as_deref(), self.version, key);
        let query = version.filter(|v| !v.is_empty()).map(|v| ("version", v));
        let reply = self
            .authed(VaultCall::ReadSecretData, Method::GET, &path, query)
            .await?;
        let not_found = || ProviderError::NotFound {
            key: key.to_owned(),
        };
        match reply.status {
            StatusCode::OK => {
                let mut value = parse(&reply.body, VaultCall::ReadSecretData, &path)?;
                let result = self.secret_data(key, &path, &mut value);
                wipe(&mut value);
                result
            }
            StatusCode::NO_CONTENT => Err(not_found()),
            StatusCode::NOT_FOUND => {
                if let Ok(mut value) = serde_json::from_slice::<Value>(&reply.body) {
                    let versioned = value["warnings"].as_array().is_some_and(|w| {
                        w.iter().any(|w| {
                            w.as_str()
                                .is_some_and(|w| w.contains("Invalid path for a versioned K/V"))
                        })
                    });
                    wipe(&mut value);
                    if versioned {
                        return Err(ProviderError::Invalid(format!(
                            "secret {key:?}: {path} is on a KV v2 mount but the store says version v1 (set version: v2)"
                        )));
                    }
                }
                Err(not_found())
            }
            _ => Err(Self::status_error(VaultCall::ReadSecretData, &path, &reply)),
        }
    }

    fn secret_data(
        &self,
        key: &str,
        path: &str,
        value: &mut Value,
    ) -> Result<SecretMap, ProviderError> {
        let invalid =
            |what: &str| ProviderError::Invalid(format!("secret {key:?} ({path}): {what}"));
        let data = value.get_mut("data").map(Value::take);
        match self.version {
            KvVersion::V2 => {
                let Some(Value::Object(mut outer)) = data else {
                    return Err(invalid("the response has no data field"));
                };
                let inner = outer.get_mut("data").map(Value::take);
                let has_metadata = outer.contains_key("metadata");
                outer.values_mut().for_each(wipe);
                match inner {
                    Some(Value::Object(map)) => Ok(SecretMap::from_object(key, map)),
                    Some(Value::Null) if has_metadata => Err(ProviderError::NotFound {
                        key: key.to_owned(),
                    }),
                    Some(mut other) => {
                        wipe(&mut other);
                        Err(invalid(
                            "data.data is not an object; is the mount KV v1? (set version: v1)",
                        ))
                    }
                    None => Err(invalid(
                        "the response has no data.data field; is the mount KV v1? (set version: v1)",
                    )),
                }
            }
            KvVersion::V1 => match data {
                Some(Value::Object(mut map)) => {
                    if looks_like_v2(&map) {
                        map.values_mut().for_each(wipe);
                        return Err(invalid(
                            "the response has the KV v2 shape (data and metadata) but the store says version v1 (set version: v2)",
                        ));
                    }
                    Ok(SecretMap::from_object(key, map))
                }
                Some(mut other) => {
                    wipe(&mut other);
                    Err(invalid("the response data is not an object"))
                }
                None => Err(invalid("the response has no data field")),
            },
        }
    }

    /// Names (relative to the mount) of the secrets under `dir` ("" or ending in `/`).
    async fn list_recursive(&self, dir: &str) -> Result<Vec<String>, ProviderError> {
        let mount = self.mount.as_deref();
        let mut names = Vec::new();
        let mut pending = vec![dir.to_owned()];
        while let Some(dir) = pending.pop() {
            let path = match (mount, self.version) {
                (Some(mount), version) => metadata_path(mount, version, &dir),
                (None, KvVersion::V1) if !dir.is_empty() => dir.clone(),
                (None, _) => {
                    return Err(ProviderError::Invalid(
                        "find needs the store's path (the KV mount)".into(),
                    ));
                }
            };
            let path = if path.ends_with('/') {
                path
            } else {
                format!("{path}/")
            };
            let reply = self
                .authed(
                    VaultCall::ListSecrets,
                    Method::GET,
                    &path,
                    Some(("list", "true")),
                )
                .await?;
            match reply.status {
                StatusCode::NOT_FOUND | StatusCode::NO_CONTENT => continue,
                s if s.is_success() => {}
                _ => return Err(Self::status_error(VaultCall::ListSecrets, &path, &reply)),
            }
            let value = parse(&reply.body, VaultCall::ListSecrets, &path)?;
            for key in value["data"]["keys"].as_array().into_iter().flatten() {
                let Some(key) = key.as_str() else { continue };
                let full = format!("{dir}{key}");
                if key.ends_with('/') {
                    pending.push(full);
                } else {
                    names.push(full);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// ESO's metadata map of a KV v2 secret: `custom_metadata` plus three system keys.
    async fn read_tags(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        let mount = self.mount.as_deref().unwrap_or_default();
        let path = metadata_path(mount, KvVersion::V2, name);
        let reply = self
            .authed(VaultCall::ReadSecretData, Method::GET, &path, None)
            .await?;
        match reply.status {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            _ => return Err(Self::status_error(VaultCall::ReadSecretData, &path, &reply)),
        }
        let value = parse(&reply.body, VaultCall::ReadSecretData, &path)?;
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let data = &value["data"];
        let mut tags = BTreeMap::new();
        for key in ["created_time", "current_version", "delete_version_after"] {
            if let Some(v) = data.get(key).filter(|v| !v.is_null()) {
                tags.insert(key.to_owned(), text(v));
            }
        }
        if let Some(custom) = data["custom_metadata"].as_object() {
            for (k, v) in custom {
                tags.insert(k.clone(), text(v));
            }
        }
        Ok(Some(tags))
    }

    pub(super) async fn find_secrets(
        &self,
        query: &FindQuery,
    ) -> Result<Vec<(String, SecretValue)>, ProviderError> {
        if self.version == KvVersion::V1 && !query.tags.is_empty() {
            return Err(ProviderError::Invalid(
                "cannot perform find by tag operations with kv version v1".into(),
            ));
        }
        let regex = match &query.name_regexp {
            Some(pattern) => Some(regex::Regex::new(pattern).map_err(|e| {
                ProviderError::Invalid(format!("invalid find.name.regexp {pattern:?}: {e}"))
            })?),
            None => None,
        };
        let dir = query
            .path
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| format!("{p}/"))
            .unwrap_or_default();
        let mut found = Vec::new();
        for name in self.list_recursive(&dir).await? {
            let matches = match &regex {
                Some(regex) => regex.is_match(&name),
                None if query.tags.is_empty() => true,
                None => match self.read_tags(&name).await? {
                    Some(tags) => query.tags.iter().all(|(k, v)| tags.get(k) == Some(v)),
                    None => false,
                },
            };
            if !matches {
                continue;
            }
            match self.read(&name, None).await {
                Ok(map) => found.push((name, map.to_json())),
                Err(ProviderError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }
}

fn looks_like_v2(map: &serde_json::Map<String, Value>) -> bool {
    map.len() == 2
        && matches!(map.get("data"), Some(Value::Object(_) | Value::Null))
        && map
            .get("metadata")
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key("version") && m.contains_key("created_time"))
}

fn parse(body: &[u8], call: VaultCall, path: &str) -> Result<Value, ProviderError> {
    serde_json::from_slice(body).map_err(|e| {
        ProviderError::Invalid(format!(
            "vault {call} {path}: the response is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// The `errors` of an error reply, joined, with whitespace collapsed.
fn errors_of(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let joined = value["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("; ");
    joined.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A JSON object of string fields, in a wiped buffer.
fn json_body(fields: &[(&str, &str)]) -> Zeroizing<Vec<u8>> {
    let mut map = serde_json::Map::new();
    for (k, v) in fields {
        map.insert((*k).to_owned(), Value::String((*v).to_owned()));
    }
    let mut value = Value::Object(map);
    let body = Zeroizing::new(go_json(&value));
    wipe(&mut value);
    body
}
