//! HashiCorp Vault (and OpenBao) KV v1/v2 as a [`SecretProvider`], with one authenticated,
//! cached and renewed token per store and auth identity.
//!
//! | you want to…                                              | use                                  |
//! |-----------------------------------------------------------|--------------------------------------|
//! | a provider for a SecretStore (cached across syncs)        | [`VaultClients::get_or_insert_with`] with a [`VaultClientKey`] |
//! | a one-off provider (tests, the CLI)                       | [`VaultProvider::new`]               |
//! | say where the token / JWT / secret_id comes from          | [`Credentials`] (called at login time only) |
//! | count calls for `externalsecret_provider_api_calls_count` | a [`CallObserver`], e.g. [`CallCounter`] |
//! | revoke the tokens we created when the controller stops    | [`VaultClients::shutdown`]           |
//!
//! ## Wire behaviour
//!
//! * Reads: KV v2 `GET <mount>/data/<key>[?version=N]`, KV v1 `GET <mount>/<key>`; the path
//!   is built as ESO's `buildPath` does (a key that already starts with `<mount>/`, or
//!   `<mount>/data/` on v2, is not prefixed again; without a store `path` the first
//!   segment of the key is the mount). A 404, or a KV v2 version that is soft-deleted or
//!   destroyed (`data.data: null`), is [`ProviderError::NotFound`]. A KV v1 store pointed
//!   at a v2 mount is [`ProviderError::Invalid`], never empty values (ESO #2455): detected
//!   from the 404 warning `Invalid path for a versioned K/V secrets engine`, or from a
//!   `{data, metadata}` response shape.
//! * `find`: recursive `LIST <mount>/metadata/<path>/` (v1: `<mount>/<path>/`) with
//!   `?list=true`, then the name regexp (unanchored) on the name relative to the mount, or
//!   the tags against each candidate's metadata (`custom_metadata` plus `created_time`,
//!   `current_version`, `delete_version_after`, as ESO), then one read per match; matches
//!   deleted in between are skipped. KV v2 needs the store's `path`; tags need v2.
//! * Every request carries `X-Vault-Request: true`, the store's extra headers, the store's
//!   namespace as `X-Vault-Namespace` (logins use `auth_namespace` if set), and times out
//!   after [`VaultConfig::timeout`] (30 s by default). A `ca_bundle` replaces the system
//!   roots.
//! * Errors: 404 → `NotFound` (reads only), 403 → `Forbidden`, 429 → `Throttled` (with
//!   `Retry-After`), 5xx, 412, timeouts and connection errors → `Unavailable`, 400 and other
//!   4xx → `Invalid`; a 400 on login (bad role or credentials) → `Forbidden`.
//!
//! ## Tokens
//!
//! A provider logs in on first use and keeps the token. A renewable token is renewed with
//! `renew-self` once ⅔ of its TTL has passed (lazily, on the next call); when the TTL runs
//! out (max TTL reached, or renewal refused) it logs in again. A 403 whose errors say
//! `invalid token` — or, since OpenBao and older Vaults only say `permission denied`, a 403
//! after which `lookup-self` with the same token is refused too — drops the token, logs in
//! once more and retries the request once. Tokens we obtained by logging in are revoked
//! (`revoke-self`) by [`VaultProvider::revoke`], [`VaultClients::remove`],
//! [`VaultClients::evict_idle`] and [`VaultClients::shutdown`]; a static token
//! (`tokenSecretRef`) is neither renewed nor revoked, as ESO does.
//!
//! Validation uses `lookup-self`, never `sys/health` or `sys/seal-status` (which differ
//! between Vault and OpenBao and need no token).
//!
//! ## Why not `vaultrs`
//!
//! `vaultrs` 0.8 (on `rustify` 0.7, reqwest 0.13) was evaluated. Its typed endpoints turn
//! every status ≥ 400 into `ClientError::APIError { code, errors }` and drop the body, so
//! the `warnings` of a 404 (a v1 store on a v2 mount) and the `data`/`metadata` shape
//! checks are out of reach; `kv1::get` deserializes into the caller's type so the shape
//! cannot be inspected either; the namespace is per client while a login needs another
//! one; and it would add `rustify` and its dependencies for about eight endpoints. So the
//! endpoints are spoken directly with `reqwest` (already in the workspace).
//!
//! ## Secrets in memory
//!
//! Tokens, credentials and values are kept in zeroizing types without `Debug` and never
//! appear in errors or logs. Buffers owned by `reqwest`/`hyper` (the raw response chunks,
//! the login request body, the header value carrying the token) are freed without being
//! wiped.
//!
//! ```no_run
//! use std::sync::Arc;
//! use gitseal_backends::provider::SecretProvider;
//! use gitseal_backends::vault::*;
//!
//! # async fn demo() -> Result<(), gitseal_backends::provider::ProviderError> {
//! let counter = Arc::new(CallCounter::new());
//! let clients = VaultClients::new(counter.clone());
//! let key = VaultClientKey {
//!     store: "SecretStore/default/vault".into(),
//!     server: "https://vault:8200".into(),
//!     auth_method: "appRole".into(),
//!     credential_digest: Some(CredentialDigest::of(b"role-id\0secret-id")),
//!     ..VaultClientKey::default()
//! };
//! let provider = clients.get_or_insert_with(&key, || {
//!     let mut config = VaultConfig::new("https://vault:8200", VaultAuth::AppRole { path: "approle".into() });
//!     config.path = Some("secret".into());
//!     Ok((config, Credentials::approle("role-id", b"secret-id")))
//! })?;
//! let map = provider.get_map("app/db", None).await?; // one read …
//! let user = map.property("user")?;                  // … many properties
//! let password = map.property("password")?;
//! # drop((user, password));
//! clients.shutdown().await; // revokes the tokens we created
//! # Ok(()) }
//! ```

mod cache;
mod calls;
mod client;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use cache::{CredentialDigest, VaultClientKey, VaultClients};
pub use calls::{CallCounter, CallObserver, NoObserver, PROVIDER_LABEL, VaultCall, status_label};
pub use client::VaultProvider;

use crate::provider::{BoxFuture, ProviderError, SecretProvider, SecretValue};

/// KV secrets engine version of the store (`spec.provider.vault.version`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KvVersion {
    /// KV v1: `<mount>/<key>`, no versions, no metadata.
    V1,
    /// KV v2 (the default): `<mount>/data/<key>`.
    #[default]
    V2,
}

/// How the provider authenticates (`spec.provider.vault.auth`). The secret material comes
/// from [`Credentials`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VaultAuth {
    /// A static token (`tokenSecretRef`): [`Credential::Token`]. Never renewed or revoked.
    Token,
    /// AppRole: `POST auth/<path>/login {role_id, secret_id}` ([`Credential::AppRole`]).
    AppRole {
        /// Mount path (ESO default `approle`).
        path: String,
    },
    /// JWT: `POST auth/<path>/login {role, jwt}` ([`Credential::Jwt`]).
    Jwt {
        /// Mount path (ESO default `jwt`).
        path: String,
        /// Vault role.
        role: String,
    },
    /// Kubernetes: `POST auth/<mount_path>/login {role, jwt}` ([`Credential::Jwt`], a
    /// service account token the caller obtained, e.g. by TokenRequest).
    Kubernetes {
        /// Mount path (ESO default `kubernetes`).
        mount_path: String,
        /// Vault role.
        role: String,
    },
}

impl VaultAuth {
    fn method(&self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::AppRole { .. } => "appRole",
            Self::Jwt { .. } => "jwt",
            Self::Kubernetes { .. } => "kubernetes",
        }
    }
}

/// A Vault SecretStore's connection settings. `Debug` leaves out header values.
#[derive(Clone)]
#[non_exhaustive]
pub struct VaultConfig {
    /// `https://vault.example.com:8200` (a path prefix is kept; `/v1/` is appended).
    pub server: String,
    /// KV mount (`path`); `None`: the first segment of each key is the mount.
    pub path: Option<String>,
    /// KV version.
    pub version: KvVersion,
    /// Namespace for every request (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    /// Namespace for the login only (`auth.namespace`); `None`: [`VaultConfig::namespace`].
    pub auth_namespace: Option<String>,
    /// PEM CA certificates that replace the system roots.
    pub ca_bundle: Option<Vec<u8>>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Timeout of every request.
    pub timeout: Duration,
    /// Auth method.
    pub auth: VaultAuth,
}

impl std::fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultConfig")
            .field("server", &self.server)
            .field("path", &self.path)
            .field("version", &self.version)
            .field("namespace", &self.namespace)
            .field("auth_namespace", &self.auth_namespace)
            .field("ca_bundle", &self.ca_bundle.as_ref().map(Vec::len))
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("auth", &self.auth)
            .finish()
    }
}

impl VaultConfig {
    /// KV v2, no mount, no namespace, 30 s timeout.
    pub fn new(server: impl Into<String>, auth: VaultAuth) -> Self {
        Self {
            server: server.into(),
            path: None,
            version: KvVersion::V2,
            namespace: None,
            auth_namespace: None,
            ca_bundle: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
            auth,
        }
    }
}

/// Login material, as the credential source hands it over. No Debug, no Clone.
#[non_exhaustive]
pub enum Credential {
    /// A static Vault token, for [`VaultAuth::Token`].
    Token(SecretValue),
    /// AppRole role_id and secret_id, for [`VaultAuth::AppRole`].
    AppRole {
        /// `role_id` (not secret, but often kept in the same Secret).
        role_id: String,
        /// `secret_id`.
        secret_id: SecretValue,
    },
    /// A JWT, for [`VaultAuth::Jwt`] and [`VaultAuth::Kubernetes`].
    Jwt(SecretValue),
}

type CredentialFn = dyn Fn() -> BoxFuture<'static, Result<Credential, ProviderError>> + Send + Sync;

/// Where login material comes from: an async function called at login time only (so a
/// Kubernetes TokenRequest or Secret read happens once per login, not per sync).
#[derive(Clone)]
pub struct Credentials(Arc<CredentialFn>);

impl Credentials {
    /// Calls `source` at each login.
    pub fn new<F, Fut>(source: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Credential, ProviderError>> + Send + 'static,
    {
        Self(Arc::new(move || Box::pin(source())))
    }

    /// Always the static token `token`.
    pub fn token(token: &[u8]) -> Self {
        let token = Arc::new(zeroize::Zeroizing::new(token.to_vec()));
        Self::new(move || {
            let value = SecretValue::new(token.to_vec());
            async move { Ok(Credential::Token(value)) }
        })
    }

    /// Always this AppRole `role_id` and `secret_id`.
    pub fn approle(role_id: &str, secret_id: &[u8]) -> Self {
        let role_id = role_id.to_owned();
        let secret_id = Arc::new(zeroize::Zeroizing::new(secret_id.to_vec()));
        Self::new(move || {
            let credential = Credential::AppRole {
                role_id: role_id.clone(),
                secret_id: SecretValue::new(secret_id.to_vec()),
            };
            async move { Ok(credential) }
        })
    }

    /// Always the JWT `jwt`.
    pub fn jwt(jwt: &[u8]) -> Self {
        let jwt = Arc::new(zeroize::Zeroizing::new(jwt.to_vec()));
        Self::new(move || {
            let value = SecretValue::new(jwt.to_vec());
            async move { Ok(Credential::Jwt(value)) }
        })
    }

    fn fetch(&self) -> BoxFuture<'static, Result<Credential, ProviderError>> {
        (self.0)()
    }
}

impl SecretProvider for VaultProvider {
    fn get_map<'a>(
        &'a self,
        key: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<crate::provider::SecretMap, ProviderError>> {
        Box::pin(self.read(key, version))
    }

    fn find<'a>(
        &'a self,
        query: &'a crate::provider::FindQuery,
    ) -> BoxFuture<'a, Result<Vec<(String, SecretValue)>, ProviderError>> {
        Box::pin(self.find_secrets(query))
    }

    fn validate(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(self.lookup_self())
    }
}

/// ESO's `buildPath`: the API path (without `/v1/`) of `key`'s data.
pub fn build_path(mount: Option<&str>, version: KvVersion, key: &str) -> String {
    let mut out = key;
    if let Some(mount) = mount {
        let cut = format!("{mount}/");
        if let Some(rest) = out.strip_prefix(&cut) {
            out = rest;
            if version == KvVersion::V2
                && let Some(rest) = out.strip_prefix("data/")
            {
                out = rest;
            }
        }
        return match version {
            KvVersion::V2 => format!("{mount}/data/{out}"),
            KvVersion::V1 => format!("{mount}/{out}"),
        };
    }
    if version == KvVersion::V2 && !out.contains("/data/") {
        return match out.split_once('/') {
            Some((first, rest)) => format!("{first}/data/{rest}"),
            None => format!("{out}/data"),
        };
    }
    out.to_owned()
}

/// ESO's `buildMetadataPath` for a store with a mount: `<mount>/metadata/<key>` (v2) or
/// `<mount>/<key>` (v1).
fn metadata_path(mount: &str, version: KvVersion, key: &str) -> String {
    match version {
        KvVersion::V1 => format!("{mount}/{key}"),
        KvVersion::V2 => {
            let mut out = key;
            if let Some(rest) = out.strip_prefix(&format!("{mount}/")) {
                out = rest.strip_prefix("data/").unwrap_or(rest);
            }
            format!("{mount}/metadata/{out}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_path_matches_eso() {
        use KvVersion::*;
        let cases = [
            (Some("secret/path"), V2, "foo", "secret/path/data/foo"),
            (Some("secret/path"), V1, "foo", "secret/path/foo"),
            (
                Some("secret/path"),
                V2,
                "secret/path/foo",
                "secret/path/data/foo",
            ),
            (
                Some("secret/path"),
                V2,
                "secret/path/data/foo",
                "secret/path/data/foo",
            ),
            (
                Some("secret/path"),
                V1,
                "secret/path/foo",
                "secret/path/foo",
            ),
            (None, V2, "secret/path/foo", "secret/data/path/foo"),
            (None, V2, "secret/path/data/foo", "secret/path/data/foo"),
            (None, V1, "secret/path/foo", "secret/path/foo"),
            (Some("secret"), V2, "app/db", "secret/data/app/db"),
            (
                Some("secret"),
                V2,
                "secret/secret/x",
                "secret/data/secret/x",
            ),
        ];
        for (mount, version, key, want) in cases {
            assert_eq!(
                build_path(mount, version, key),
                want,
                "{mount:?} {version:?} {key}"
            );
        }
        assert_eq!(metadata_path("secret", V2, "a/"), "secret/metadata/a/");
        assert_eq!(
            metadata_path("secret", V2, "secret/data/a"),
            "secret/metadata/a"
        );
        assert_eq!(metadata_path("kv", V1, "a/"), "kv/a/");
    }
}
