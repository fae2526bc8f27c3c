//! `POST /v1/refresh`: refreshes at once every ExternalSecret that reads one remote
//! secret, for callers that know a secret just changed (a CI job after
//! `aws secretsmanager put-secret-value`, an AWS EventBridge rule on Secrets Manager's
//! CloudTrail events) — on-demand refresh without Vault Enterprise events.
//!
//! The body names the store and the key: `{"store": {"kind": "ClusterSecretStore",
//! "name": "aws"}, "key": "prod/db"}` (`kind` defaults to `SecretStore`, which needs a
//! `namespace`). The answer is `200 {"refreshed": N}`.
//!
//! Callers authenticate with a bearer token, checked against either source configured
//! (the endpoint is off, 404, with neither):
//! - `--refresh-token-secret <namespace>/<name>`: the key `token` of that Secret, read
//!   through the API (cached [`TOKEN_CACHE`] at most), compared in constant time;
//! - `--refresh-service-accounts <ns:name,...>`: a service account token, checked by the
//!   API server's TokenReview; an authenticated account not listed gets 403.
//!
//! Missing or bad credentials get 401 with `WWW-Authenticate: Bearer`. The token is never
//! logged nor echoed, and the request body is read only once the caller is authenticated.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gitseal_api::StoreKind;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api as KubeApi, PostParams};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::{Api, rate_limited};
use crate::config::{RefreshArgs, dns_label, dns_subdomain};
use crate::scheduler::StoreTarget;

/// The path of the endpoint.
pub const PATH: &str = "/v1/refresh";
/// The largest request body of `/v1/refresh`: 16 KiB (a store and a key; then 413).
pub const MAX_BODY: usize = 16 << 10;
/// How long a token read from `--refresh-token-secret` is used before it is read again.
pub const TOKEN_CACHE: Duration = Duration::from_secs(5);
/// The longest `key` accepted.
const MAX_KEY: usize = 2048;
/// The realm of the `WWW-Authenticate` challenges.
const CHALLENGE: &str = "Bearer realm=\"gitseal\"";
const CHALLENGE_INVALID: &str = "Bearer realm=\"gitseal\", error=\"invalid_token\"";

/// How `/v1/refresh` authenticates its callers: the flags, and the token last read from
/// the token Secret.
pub struct Refresher {
    args: RefreshArgs,
    /// The usernames of the accepted service accounts
    /// (`system:serviceaccount:<ns>:<name>`).
    usernames: Vec<String>,
    /// The token Secret's token and when it was read.
    cached: Mutex<Option<(Instant, Zeroizing<Vec<u8>>)>>,
}

/// Who the caller turned out to be.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Allowed, as this (for the logs: "the token Secret" or a username).
    Allowed(String),
    /// Authenticated, not allowed (a service account not listed).
    Forbidden(String),
    /// No credential, or one that no source accepts.
    Unauthenticated,
    /// A source could not be asked (the API server failed).
    Unavailable,
}

impl Refresher {
    /// The authentication of `/v1/refresh` under `args`.
    pub fn new(args: &RefreshArgs) -> Self {
        let usernames = args
            .refresh_service_accounts
            .0
            .iter()
            .map(|a| format!("system:serviceaccount:{}:{}", a.namespace, a.name))
            .collect();
        Self {
            args: args.clone(),
            usernames,
            cached: Mutex::default(),
        }
    }

    /// Whether a credential source is configured (else the endpoint answers 404).
    pub fn enabled(&self) -> bool {
        self.args.refresh_token_secret.is_some() || !self.usernames.is_empty()
    }

    /// Checks `token` against every configured source.
    async fn check(&self, client: &kube::Client, token: &str) -> Verdict {
        let mut unavailable = false;
        if self.args.refresh_token_secret.is_some() {
            match self.secret_token(client).await {
                // An empty token refuses everything.
                Ok(expected) if !expected.is_empty() => {
                    if bool::from(expected.as_slice().ct_eq(token.as_bytes())) {
                        return Verdict::Allowed("the token Secret".into());
                    }
                }
                Ok(_) => {}
                Err(()) => unavailable = true,
            }
        }
        if !self.usernames.is_empty() {
            match self.review(client, token).await {
                Ok(Some(username)) if self.usernames.contains(&username) => {
                    return Verdict::Allowed(username);
                }
                Ok(Some(username)) => return Verdict::Forbidden(username),
                Ok(None) => {}
                Err(()) => unavailable = true,
            }
        }
        if unavailable {
            Verdict::Unavailable
        } else {
            Verdict::Unauthenticated
        }
    }

    /// The key `token` of the token Secret (empty when the Secret or the key is missing),
    /// from the cache when read less than [`TOKEN_CACHE`] ago; `Err` when the API failed
    /// (logged).
    async fn secret_token(&self, client: &kube::Client) -> Result<Zeroizing<Vec<u8>>, ()> {
        let Some(secret) = &self.args.refresh_token_secret else {
            return Ok(Zeroizing::default());
        };
        if let Some((at, token)) = &*self.cached.lock().expect("token cache lock")
            && at.elapsed() < TOKEN_CACHE
        {
            return Ok(token.clone());
        }
        let api: KubeApi<Secret> = KubeApi::namespaced(client.clone(), &secret.namespace);
        let token = match api.get_opt(&secret.name).await {
            Ok(Some(mut object)) => {
                let token = object
                    .data
                    .as_mut()
                    .and_then(|data| data.remove("token"))
                    .map(|value| Zeroizing::new(value.0))
                    .unwrap_or_default();
                // The rest of the Secret is not kept either.
                if let Some(data) = object.data.as_mut() {
                    for value in data.values_mut() {
                        value.0.zeroize();
                    }
                }
                let trimmed = token.trim_ascii();
                if trimmed.is_empty() {
                    tracing::warn!(
                        secret = %format!("{}/{}", secret.namespace, secret.name),
                        "/v1/refresh: the token Secret has no or an empty `token`: every request is refused"
                    );
                }
                Zeroizing::new(trimmed.to_vec())
            }
            Ok(None) => {
                tracing::warn!(
                    secret = %format!("{}/{}", secret.namespace, secret.name),
                    "/v1/refresh: the token Secret does not exist: every request is refused"
                );
                Zeroizing::default()
            }
            Err(e) => {
                tracing::warn!(
                    secret = %format!("{}/{}", secret.namespace, secret.name),
                    "/v1/refresh: cannot read the token Secret: {e}"
                );
                return Err(());
            }
        };
        *self.cached.lock().expect("token cache lock") = Some((Instant::now(), token.clone()));
        Ok(token)
    }

    /// The username `token` authenticates as by TokenReview (`None`: not authenticated);
    /// `Err` when the API failed (logged).
    async fn review(&self, client: &kube::Client, token: &str) -> Result<Option<String>, ()> {
        let mut review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                ..TokenReviewSpec::default()
            },
            ..TokenReview::default()
        };
        let api: KubeApi<TokenReview> = KubeApi::all(client.clone());
        let result = api.create(&PostParams::default(), &review).await;
        review.spec.token.zeroize();
        let mut answer = match result {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!("/v1/refresh: TokenReview failed: {e}");
                return Err(());
            }
        };
        answer.spec.token.zeroize();
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Ok(None);
        }
        Ok(status.user.and_then(|u| u.username))
    }
}

/// The request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    store: StoreBody,
    key: String,
}

/// The request body's `store`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreBody {
    #[serde(default)]
    kind: Option<String>,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// Reads and checks a request body: the store and the key to refresh.
fn parse_request(body: &[u8]) -> Result<(StoreTarget, String), String> {
    let body: Body = serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))?;
    let kind = match body.store.kind.as_deref() {
        None => StoreKind::default(),
        Some(text) => StoreKind::from_wire(text).ok_or_else(|| {
            format!(
                "store.kind {text:?} is neither {}",
                StoreKind::VALUES.join(" nor ")
            )
        })?,
    };
    let name = body.store.name;
    if !dns_subdomain(&name) {
        return Err(format!(
            "store.name {name:?} is not a valid name (lowercase letters, digits, '-' and '.')"
        ));
    }
    let namespace = match (kind, body.store.namespace) {
        (StoreKind::SecretStore, Some(ns)) if dns_label(&ns) => Some(ns),
        (StoreKind::SecretStore, Some(ns)) => {
            return Err(format!("store.namespace {ns:?} is not a valid namespace"));
        }
        (StoreKind::SecretStore, None) => {
            return Err("store.namespace is required for a SecretStore".into());
        }
        (StoreKind::ClusterSecretStore, Some(_)) => {
            return Err("store.namespace is not allowed for a ClusterSecretStore".into());
        }
        (StoreKind::ClusterSecretStore, None) => None,
    };
    let key = body.key;
    if key.is_empty() || key.len() > MAX_KEY || key.chars().any(char::is_control) {
        return Err(format!(
            "key must be 1 to {MAX_KEY} bytes without control characters"
        ));
    }
    Ok((
        StoreTarget {
            kind,
            name,
            namespace,
        },
        key,
    ))
}

/// The bearer token of `Authorization`, if there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A JSON answer.
fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{value}\n"),
    )
        .into_response()
}

/// A JSON error answer: `{"error": message}`.
fn error(status: StatusCode, message: &str) -> Response {
    json(status, serde_json::json!({ "error": message }))
}

/// A 401 with its challenge.
fn unauthorized(challenge: &'static str, message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// `POST /v1/refresh`.
pub(super) async fn refresh(State(api): State<Api>, request: Request) -> Response {
    if !api.refresher.enabled() {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    let headers = request.headers();
    if let Some(refused) = rate_limited(&api, PATH, headers) {
        return refused;
    }
    let Some(token) = bearer(headers) else {
        return unauthorized(CHALLENGE, "a bearer token is required");
    };
    match api.refresher.check(&api.ctx.client, token).await {
        Verdict::Allowed(who) => tracing::debug!(caller = %who, "/v1/refresh: authenticated"),
        Verdict::Forbidden(who) => {
            tracing::info!(caller = %who, "/v1/refresh: refused, not a listed service account");
            return error(
                StatusCode::FORBIDDEN,
                "this service account may not refresh",
            );
        }
        Verdict::Unauthenticated => {
            tracing::debug!("/v1/refresh: refused, invalid credential");
            return unauthorized(CHALLENGE_INVALID, "invalid bearer token");
        }
        Verdict::Unavailable => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot check the credential now",
            );
        }
    }
    let body = match axum::body::to_bytes(request.into_body(), MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body too large (at most {MAX_BODY} bytes)"),
            );
        }
    };
    let (store, key) = match parse_request(&body) {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let Some(refreshed) = api.ctx.external.scheduler.refresh_remote(&store, &key) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this replica does not reconcile ExternalSecrets now (it is not the leader); \
             send the request to the leader",
        );
    };
    tracing::info!(
        kind = %store.kind,
        store = %store.name,
        namespace = store.namespace.as_deref().unwrap_or(""),
        key,
        refreshed,
        "/v1/refresh: ExternalSecrets refreshed"
    );
    json(
        StatusCode::OK,
        serde_json::json!({ "refreshed": refreshed }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(StoreTarget, String), String> {
        parse_request(text.as_bytes())
    }

    #[test]
    fn bodies_name_a_store_and_a_key() {
        let (store, key) =
            parse(r#"{"store": {"kind": "ClusterSecretStore", "name": "aws"}, "key": "prod/db"}"#)
                .unwrap();
        assert_eq!(
            store,
            StoreTarget {
                kind: StoreKind::ClusterSecretStore,
                name: "aws".into(),
                namespace: None
            }
        );
        assert_eq!(key, "prod/db");
        // `kind` defaults to SecretStore, as ESO's storeRef.
        let (store, key) =
            parse(r#"{"store": {"name": "vault", "namespace": "team-a"}, "key": "arn:aws:secretsmanager:us-east-1:1:secret:x"}"#)
                .unwrap();
        assert_eq!(store.kind, StoreKind::SecretStore);
        assert_eq!(store.namespace.as_deref(), Some("team-a"));
        assert_eq!(key, "arn:aws:secretsmanager:us-east-1:1:secret:x");
        let (store, _) = parse(
            r#"{"store": {"kind": "SecretStore", "name": "v.1", "namespace": "a"}, "key": "k"}"#,
        )
        .unwrap();
        assert_eq!(store.name, "v.1");
    }

    #[test]
    fn bad_bodies_are_refused_with_a_clear_message() {
        for (body, expected) in [
            ("", "invalid body"),
            ("nope", "invalid body"),
            ("[]", "invalid body"),
            (r#"{"key": "k"}"#, "missing field `store`"),
            (
                r#"{"store": {"name": "a", "namespace": "n"}}"#,
                "missing field `key`",
            ),
            (
                r#"{"store": {"namespace": "n"}, "key": "k"}"#,
                "missing field `name`",
            ),
            (
                r#"{"store": {"name": "a", "namespace": "n"}, "key": "k", "extra": 1}"#,
                "unknown field `extra`",
            ),
            (
                r#"{"store": {"name": "a", "namespace": "n"}, "key": 3}"#,
                "invalid type",
            ),
            (
                r#"{"store": {"kind": "Vault", "name": "a"}, "key": "k"}"#,
                "store.kind \"Vault\" is neither SecretStore nor ClusterSecretStore",
            ),
            (
                r#"{"store": {"kind": "", "name": "a", "namespace": "n"}, "key": "k"}"#,
                "store.kind \"\"",
            ),
            (
                r#"{"store": {"name": "a"}, "key": "k"}"#,
                "store.namespace is required for a SecretStore",
            ),
            (
                r#"{"store": {"kind": "ClusterSecretStore", "name": "a", "namespace": "n"}, "key": "k"}"#,
                "store.namespace is not allowed for a ClusterSecretStore",
            ),
            (
                r#"{"store": {"name": "a", "namespace": "N_s"}, "key": "k"}"#,
                "store.namespace \"N_s\" is not a valid namespace",
            ),
            (
                r#"{"store": {"name": "a", "namespace": "a.b"}, "key": "k"}"#,
                "is not a valid namespace",
            ),
            (
                r#"{"store": {"name": "", "namespace": "n"}, "key": "k"}"#,
                "store.name \"\" is not a valid name",
            ),
            (
                r#"{"store": {"name": "-a", "namespace": "n"}, "key": "k"}"#,
                "is not a valid name",
            ),
            (
                r#"{"store": {"name": "a", "namespace": "n"}, "key": ""}"#,
                "key must be 1 to 2048 bytes",
            ),
            (
                r#"{"store": {"name": "a", "namespace": "n"}, "key": "a\nb"}"#,
                "without control characters",
            ),
        ] {
            let message = parse(body)
                .err()
                .unwrap_or_else(|| panic!("{body:?} refused"));
            assert!(message.contains(expected), "{body:?}: {message:?}");
        }
        let long = format!(
            r#"{{"store": {{"name": "a", "namespace": "n"}}, "key": "{}"}}"#,
            "k".repeat(MAX_KEY + 1)
        );
        assert!(parse(&long).is_err());
        let longest = format!(
            r#"{{"store": {{"name": "a", "namespace": "n"}}, "key": "{}"}}"#,
            "k".repeat(MAX_KEY)
        );
        assert!(parse(&longest).is_ok());
        assert!(longest.len() < MAX_BODY);
    }

    #[test]
    fn only_bearer_tokens_are_read() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert_eq!(bearer(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&headers("Basic YTpi")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&headers("Bearer")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn the_endpoint_is_off_without_a_credential_source() {
        use clap::Parser;
        let config = crate::Config::try_parse_from(["c"]).unwrap();
        assert!(!Refresher::new(&config.refresh).enabled());
        let config =
            crate::Config::try_parse_from(["c", "--refresh-token-secret", "gitseal/refresh"])
                .unwrap();
        assert!(Refresher::new(&config.refresh).enabled());
        let config =
            crate::Config::try_parse_from(["c", "--refresh-service-accounts", "ci:refresher"])
                .unwrap();
        let refresher = Refresher::new(&config.refresh);
        assert!(refresher.enabled());
        assert_eq!(
            refresher.usernames,
            ["system:serviceaccount:ci:refresher".to_owned()]
        );
    }
}
