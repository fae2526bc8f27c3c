//! The Vault provider against a real OpenBao dev server (skipped, with a notice, when the
//! `bao` binary is missing, unless `GITSEAL_REQUIRE_TOOLS=1`).

#![cfg(feature = "vault")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use gitseal_backends::provider::{FindQuery, ProviderError, SecretProvider};
use gitseal_backends::vault::{
    CallCounter, CallObserver, Credential, Credentials, KvVersion, NoObserver, VaultAuth,
    VaultCall, VaultClientKey, VaultClients, VaultConfig, VaultProvider,
};
use gitseal_testkit::openbao::OpenBao;

fn config(bao: &OpenBao, auth: VaultAuth, path: Option<&str>, version: KvVersion) -> VaultConfig {
    let mut config = VaultConfig::new(bao.url(), auth);
    config.path = path.map(str::to_owned);
    config.version = version;
    config.timeout = Duration::from_secs(10);
    config
}

fn root_provider(bao: &OpenBao, path: Option<&str>, version: KvVersion) -> VaultProvider {
    VaultProvider::new(
        config(bao, VaultAuth::Token, path, version),
        Credentials::token(bao.root_token().as_bytes()),
        Arc::new(NoObserver),
    )
    .unwrap()
}

fn text(value: gitseal_backends::provider::SecretValue) -> String {
    String::from_utf8(value.as_bytes().to_vec()).unwrap()
}

fn kind<T>(result: Result<T, ProviderError>) -> &'static str {
    match result {
        Ok(_) => "Ok",
        Err(e) => e.kind(),
    }
}

/// A policy `reader` that reads everything under `secret/` and `kv1/`.
fn reader_policy(bao: &OpenBao) {
    bao.bao_with_stdin(
        &["policy", "write", "reader", "-"],
        br#"path "secret/*" { capabilities = ["read", "list"] }
path "kv1/*" { capabilities = ["read", "list"] }"#,
    );
}

/// Enables AppRole with role `name` (policy `reader`, extra role settings) and returns
/// (role_id, secret_id).
fn approle(bao: &OpenBao, name: &str, settings: &[&str]) -> (String, String) {
    if !bao.bao(&["auth", "list"]).contains("approle/") {
        bao.bao(&["auth", "enable", "approle"]);
    }
    let role = format!("auth/approle/role/{name}");
    let mut args = vec!["write", role.as_str(), "token_policies=reader"];
    args.extend_from_slice(settings);
    bao.bao(&args);
    let role_id = bao.bao(&["read", "-field=role_id", &format!("{role}/role-id")]);
    let secret_id = bao.bao(&[
        "write",
        "-f",
        "-field=secret_id",
        &format!("{role}/secret-id"),
    ]);
    (role_id.trim().to_owned(), secret_id.trim().to_owned())
}

fn accessor_count(bao: &OpenBao) -> usize {
    let out = bao.bao(&["list", "-format=json", "auth/token/accessors"]);
    serde_json::from_str::<Vec<String>>(&out).unwrap().len()
}

#[tokio::test]
async fn kv_v2_reads_properties_versions_and_deletions() {
    let Some(bao) = OpenBao::start() else { return };
    bao.bao_with_stdin(
        &["kv", "put", "secret/app/json", "-"],
        br#"{"user":"u","db":{"port":5432,"hosts":["a","b"]},"a.b":"dotted","html":"<&>"}"#,
    );
    bao.bao(&["kv", "put", "secret/app/db", "password=one"]);
    bao.bao(&["kv", "put", "secret/app/db", "password=two"]);
    let vault = root_provider(&bao, Some("secret"), KvVersion::V2);
    vault.validate().await.unwrap();

    let map = vault.get_map("app/json", None).await.unwrap();
    assert_eq!(text(map.property("user").unwrap()), "u");
    assert_eq!(text(map.property("db.port").unwrap()), "5432");
    assert_eq!(text(map.property("db.hosts.1").unwrap()), "b");
    assert_eq!(text(map.property("a.b").unwrap()), "dotted");
    assert_eq!(
        text(map.value(None).unwrap()),
        r#"{"a.b":"dotted","db":{"hosts":["a","b"],"port":5432},"html":"\u003c\u0026\u003e","user":"u"}"#
    );
    assert_eq!(kind(map.property("db.nope")), "PropertyNotFound");
    // A key that already starts with the mount is not prefixed twice; no mount: the first
    // segment is the mount.
    let again = vault.get_map("secret/app/json", None).await.unwrap();
    assert_eq!(text(again.property("user").unwrap()), "u");
    let no_mount = root_provider(&bao, None, KvVersion::V2);
    let map = no_mount.get_map("secret/app/json", None).await.unwrap();
    assert_eq!(text(map.property("user").unwrap()), "u");

    // Versions.
    let latest = vault.get_map("app/db", None).await.unwrap();
    assert_eq!(text(latest.property("password").unwrap()), "two");
    let first = vault.get_map("app/db", Some("1")).await.unwrap();
    assert_eq!(text(first.property("password").unwrap()), "one");

    // Soft delete of the latest version, destroy of version 1: both NotFound.
    bao.bao(&["kv", "delete", "secret/app/db"]);
    let error = vault.get_map("app/db", None).await.err().unwrap();
    assert!(error.is_not_found(), "{error}");
    assert!(vault.get_map("app/db", Some("1")).await.is_ok());
    bao.bao(&["kv", "destroy", "-versions=1", "secret/app/db"]);
    assert_eq!(kind(vault.get_map("app/db", Some("1")).await), "NotFound");
    assert_eq!(kind(vault.get_map("app/missing", None).await), "NotFound");

    // A v1 store on the v2 mount is an error, never empty values (ESO #2455).
    let v1 = root_provider(&bao, Some("secret"), KvVersion::V1);
    let error = v1.get_map("app/json", None).await.err().unwrap();
    assert_eq!(error.kind(), "Invalid", "{error}");
    assert!(error.to_string().contains("set version: v2"), "{error}");
    let error = v1.get_map("data/app/json", None).await.err().unwrap();
    assert_eq!(error.kind(), "Invalid", "{error}");
    assert!(!error.to_string().contains("dotted"));

    // KV v1.
    bao.bao(&["secrets", "enable", "-path=kv1", "-version=1", "kv"]);
    bao.bao(&["kv", "put", "kv1/app", "user=v1user", "n=7"]);
    let kv1 = root_provider(&bao, Some("kv1"), KvVersion::V1);
    let map = kv1.get_map("app", None).await.unwrap();
    assert_eq!(text(map.property("user").unwrap()), "v1user");
    assert_eq!(
        text(map.value(None).unwrap()),
        r#"{"n":"7","user":"v1user"}"#
    );
    assert_eq!(kind(kv1.get_map("nope", None).await), "NotFound");
}

#[tokio::test]
async fn find_by_path_regexp_and_tags() {
    let Some(bao) = OpenBao::start() else { return };
    bao.bao(&["kv", "put", "secret/team/a", "k=a"]);
    bao.bao(&["kv", "put", "secret/team/sub/b", "k=b"]);
    bao.bao(&["kv", "put", "secret/other/c", "k=c"]);
    bao.bao(&["kv", "put", "secret/team/gone", "k=gone"]);
    bao.bao(&["kv", "delete", "secret/team/gone"]);
    bao.bao(&[
        "kv",
        "metadata",
        "put",
        "-custom-metadata=env=dev",
        "secret/team/a",
    ]);
    bao.bao(&[
        "kv",
        "metadata",
        "put",
        "-custom-metadata=env=development",
        "secret/other/c",
    ]);
    let vault = root_provider(&bao, Some("secret"), KvVersion::V2);
    let names = |found: Vec<(String, gitseal_backends::provider::SecretValue)>| {
        found.into_iter().map(|(n, _)| n).collect::<Vec<_>>()
    };

    let query = FindQuery {
        path: Some("team".into()),
        ..FindQuery::default()
    };
    let found = vault.find(&query).await.unwrap();
    assert_eq!(found[0].1.as_bytes(), br#"{"k":"a"}"#);
    assert_eq!(names(found), ["team/a", "team/sub/b"]);

    let query = FindQuery {
        name_regexp: Some("sub|c$".into()),
        ..FindQuery::default()
    };
    assert_eq!(
        names(vault.find(&query).await.unwrap()),
        ["other/c", "team/sub/b"]
    );

    let query = FindQuery {
        tags: [("env".to_owned(), "dev".to_owned())].into(),
        ..FindQuery::default()
    };
    assert_eq!(names(vault.find(&query).await.unwrap()), ["team/a"]);

    let query = FindQuery {
        path: Some("nothing".into()),
        ..FindQuery::default()
    };
    assert!(vault.find(&query).await.unwrap().is_empty());

    let bad = FindQuery {
        name_regexp: Some("(".into()),
        ..FindQuery::default()
    };
    assert_eq!(kind(vault.find(&bad).await), "Invalid");
    let v1 = root_provider(&bao, Some("secret"), KvVersion::V1);
    let tags = FindQuery {
        tags: [("env".to_owned(), "dev".to_owned())].into(),
        ..FindQuery::default()
    };
    assert_eq!(kind(v1.find(&tags).await), "Invalid");
}

#[tokio::test]
async fn forbidden_after_the_policy_is_removed() {
    let Some(bao) = OpenBao::start() else { return };
    bao.bao(&["kv", "put", "secret/app", "k=v"]);
    reader_policy(&bao);
    let token = bao.bao(&["token", "create", "-policy=reader", "-field=token"]);
    let vault = VaultProvider::new(
        config(&bao, VaultAuth::Token, Some("secret"), KvVersion::V2),
        Credentials::token(token.trim().as_bytes()),
        Arc::new(NoObserver),
    )
    .unwrap();
    assert!(vault.get_map("app", None).await.is_ok());
    bao.bao(&["policy", "delete", "reader"]);
    let error = vault.get_map("app", None).await.err().unwrap();
    assert_eq!(error.kind(), "Forbidden", "{error}");
    assert!(error.to_string().contains("permission denied"), "{error}");
    vault.validate().await.unwrap();

    // A garbage static token: Forbidden, for reads and validation alike.
    let garbage = VaultProvider::new(
        config(&bao, VaultAuth::Token, Some("secret"), KvVersion::V2),
        Credentials::token(b"s.garbage"),
        Arc::new(NoObserver),
    )
    .unwrap();
    assert_eq!(kind(garbage.get_map("app", None).await), "Forbidden");
    assert_eq!(kind(garbage.validate().await), "Forbidden");
    // Unreachable server: Unavailable.
    let mut down = config(&bao, VaultAuth::Token, Some("secret"), KvVersion::V2);
    down.server = "http://127.0.0.1:1".into();
    let down = VaultProvider::new(down, Credentials::token(b"t"), Arc::new(NoObserver)).unwrap();
    assert_eq!(kind(down.get_map("app", None).await), "Unavailable");
}

#[tokio::test]
async fn approle_logs_in_once_and_revokes_on_shutdown() {
    let Some(bao) = OpenBao::start() else { return };
    reader_policy(&bao);
    bao.bao(&["kv", "put", "secret/app", "a=1", "b=2", "c=3", "d=4", "e=5"]);
    let (role_id, secret_id) = approle(&bao, "app", &[]);
    let audit = bao.enable_audit();
    let counter = Arc::new(CallCounter::new());
    let clients = VaultClients::new(counter.clone() as Arc<dyn CallObserver>);
    let key = VaultClientKey {
        store: "SecretStore/default/vault".into(),
        server: bao.url(),
        auth_method: "appRole".into(),
        role: "app".into(),
        ..VaultClientKey::default()
    };
    let make = || {
        Ok((
            config(
                &bao,
                VaultAuth::AppRole {
                    path: "approle".into(),
                },
                Some("secret"),
                KvVersion::V2,
            ),
            Credentials::approle(&role_id, secret_id.as_bytes()),
        ))
    };
    for _ in 0..100 {
        let vault = clients.get_or_insert_with(&key, make).unwrap();
        vault.get_map("app", None).await.unwrap();
    }
    assert_eq!(clients.len(), 1);
    assert_eq!(audit.count("auth/approle/login", "update"), 1);
    assert_eq!(counter.count(VaultCall::Login, true), 1);
    assert_eq!(counter.count(VaultCall::ReadSecretData, true), 100);
    assert_eq!(audit.count("secret/data/app", "read"), 100);

    // Five properties from one path: one read.
    let vault = clients.get_or_insert_with(&key, make).unwrap();
    let map = vault.get_map("app", None).await.unwrap();
    let values: Vec<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|p| text(map.property(p).unwrap()))
        .collect();
    assert_eq!(values, ["1", "2", "3", "4", "5"]);
    assert_eq!(audit.count("secret/data/app", "read"), 101);

    // The token is revoked behind our back: one re-login, the read succeeds.
    bao.bao(&["token", "revoke", "-mode=path", "auth/approle/login"]);
    vault.get_map("app", None).await.unwrap();
    assert_eq!(audit.count("auth/approle/login", "update"), 2);

    // Shutdown revokes the token we created.
    let before = accessor_count(&bao);
    clients.shutdown().await;
    assert!(clients.is_empty());
    assert_eq!(counter.count(VaultCall::RevokeSelf, true), 1);
    assert_eq!(audit.count("auth/token/revoke-self", "update"), 1);
    assert_eq!(accessor_count(&bao), before - 1);

    // A bad secret_id: Forbidden.
    let bad = VaultProvider::new(
        config(
            &bao,
            VaultAuth::AppRole {
                path: "approle".into(),
            },
            Some("secret"),
            KvVersion::V2,
        ),
        Credentials::approle(&role_id, b"wrong"),
        Arc::new(NoObserver),
    )
    .unwrap();
    assert_eq!(kind(bad.get_map("app", None).await), "Forbidden");
}

#[tokio::test]
async fn short_tokens_are_renewed_then_replaced_at_max_ttl() {
    let Some(bao) = OpenBao::start() else { return };
    reader_policy(&bao);
    bao.bao(&["kv", "put", "secret/app", "k=v"]);
    let (role_id, secret_id) = approle(&bao, "short", &["token_ttl=4s", "token_max_ttl=12s"]);
    let audit = bao.enable_audit();
    let counter = Arc::new(CallCounter::new());
    let vault = VaultProvider::new(
        config(
            &bao,
            VaultAuth::AppRole {
                path: "approle".into(),
            },
            Some("secret"),
            KvVersion::V2,
        ),
        Credentials::approle(&role_id, secret_id.as_bytes()),
        counter.clone(),
    )
    .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(9) {
        vault.get_map("app", None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(audit.count("auth/approle/login", "update"), 1);
    let renewals = audit.count("auth/token/renew-self", "update");
    assert!(renewals >= 2, "renewals: {renewals}");
    while start.elapsed() < Duration::from_secs(15) {
        vault.get_map("app", None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The max TTL ran out: exactly one new login, no failed call.
    assert_eq!(audit.count("auth/approle/login", "update"), 2);
    for call in VaultCall::ALL {
        assert_eq!(counter.count(call, false), 0, "{call} failed");
    }
    vault.revoke().await.unwrap();
}

/// An RS256 JWT signed with a fresh key; returns (public key PEM, JWT).
fn signed_jwt() -> (String, String) {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = key.public_key().as_der().unwrap();
    let public = pem::encode(&pem::Pem::new("PUBLIC KEY", der.as_ref().to_vec()));
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = b64.encode(
        format!(
            r#"{{"sub":"gitseal","aud":"vault","iat":{now},"nbf":{now},"exp":{}}}"#,
            now + 600
        )
        .as_bytes(),
    );
    let message = format!("{header}.{claims}");
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        message.as_bytes(),
        &mut signature,
    )
    .unwrap();
    (public, format!("{message}.{}", b64.encode(signature)))
}

#[tokio::test]
async fn jwt_auth_and_credential_mismatch() {
    let Some(bao) = OpenBao::start() else { return };
    reader_policy(&bao);
    bao.bao(&["kv", "put", "secret/app", "k=v"]);
    let (public, jwt) = signed_jwt();
    bao.bao(&["auth", "enable", "jwt"]);
    bao.bao(&[
        "write",
        "auth/jwt/config",
        &format!("jwt_validation_pubkeys={public}"),
    ]);
    bao.bao(&[
        "write",
        "auth/jwt/role/gitseal",
        "role_type=jwt",
        "bound_audiences=vault",
        "user_claim=sub",
        "token_policies=reader",
    ]);
    let audit = bao.enable_audit();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let jwt_source = Credentials::new(move || {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let jwt = jwt.clone();
        async move { Ok(Credential::Jwt(jwt.into_bytes().into())) }
    });
    let auth = VaultAuth::Jwt {
        path: "jwt".into(),
        role: "gitseal".into(),
    };
    let vault = VaultProvider::new(
        config(&bao, auth, Some("secret"), KvVersion::V2),
        jwt_source,
        Arc::new(NoObserver),
    )
    .unwrap();
    vault.validate().await.unwrap();
    for _ in 0..5 {
        let map = vault.get_map("app", None).await.unwrap();
        assert_eq!(text(map.property("k").unwrap()), "v");
    }
    assert_eq!(audit.count("auth/jwt/login", "update"), 1);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Kubernetes auth takes a JWT too; a token credential for it is a configuration error.
    let kubernetes = VaultAuth::Kubernetes {
        mount_path: "kubernetes".into(),
        role: "r".into(),
    };
    let mismatch = VaultProvider::new(
        config(&bao, kubernetes, Some("secret"), KvVersion::V2),
        Credentials::token(b"t"),
        Arc::new(NoObserver),
    )
    .unwrap();
    assert_eq!(kind(mismatch.get_map("app", None).await), "Invalid");
}

#[tokio::test]
async fn tls_namespace_eviction_and_throttling() {
    let Some(bao) = OpenBao::start_tls() else {
        return;
    };
    bao.bao(&["namespace", "create", "team"]);
    bao.bao(&["secrets", "enable", "-ns=team", "-path=secret", "kv-v2"]);
    bao.bao(&["kv", "put", "-ns=team", "secret/app", "k=in-team"]);
    bao.bao(&["kv", "put", "secret/app", "k=in-root"]);

    let mut team = config(&bao, VaultAuth::Token, Some("secret"), KvVersion::V2);
    team.ca_bundle = Some(bao.ca_pem().into_bytes());
    team.namespace = Some("team".into());
    team.headers = vec![("X-Gitseal-Test".into(), "1".into())];
    let vault = VaultProvider::new(
        team.clone(),
        Credentials::token(bao.root_token().as_bytes()),
        Arc::new(NoObserver),
    )
    .unwrap();
    let map = vault.get_map("app", None).await.unwrap();
    assert_eq!(text(map.property("k").unwrap()), "in-team");

    // Without the CA the server is not trusted.
    let mut untrusted = team.clone();
    untrusted.ca_bundle = None;
    let untrusted = VaultProvider::new(
        untrusted,
        Credentials::token(bao.root_token().as_bytes()),
        Arc::new(NoObserver),
    )
    .unwrap();
    assert_eq!(kind(untrusted.get_map("app", None).await), "Unavailable");
    let mut bad_ca = team.clone();
    bad_ca.ca_bundle = Some(b"not a PEM".to_vec());
    assert_eq!(
        kind(VaultProvider::new(
            bad_ca,
            Credentials::token(b"t"),
            Arc::new(NoObserver)
        )),
        "Invalid"
    );

    // An idle client is evicted and its token revoked.
    reader_policy(&bao);
    let (role_id, secret_id) = approle(&bao, "app", &[]);
    let counter = Arc::new(CallCounter::new());
    let clients = VaultClients::new(counter.clone());
    let key = VaultClientKey {
        store: "ClusterSecretStore/vault".into(),
        ..VaultClientKey::default()
    };
    let mut root = config(
        &bao,
        VaultAuth::AppRole {
            path: "approle".into(),
        },
        Some("secret"),
        KvVersion::V2,
    );
    root.ca_bundle = Some(bao.ca_pem().into_bytes());
    let provider = clients
        .get_or_insert_with(&key, || {
            Ok((root, Credentials::approle(&role_id, secret_id.as_bytes())))
        })
        .unwrap();
    let map = provider.get_map("app", None).await.unwrap();
    assert_eq!(text(map.property("k").unwrap()), "in-root");
    assert_eq!(clients.evict_idle(Duration::from_secs(3600)).await, 0);
    assert_eq!(clients.evict_idle(Duration::ZERO).await, 1);
    assert_eq!(counter.count(VaultCall::RevokeSelf, true), 1);

    // A rate-limit quota: 429 → Throttled, with the Retry-After the server sends.
    bao.bao(&[
        "write",
        "sys/quotas/config",
        "enable_rate_limit_response_headers=true",
    ]);
    bao.bao(&["write", "sys/quotas/rate-limit/rl", "rate=1"]);
    let mut throttled = None;
    for _ in 0..20 {
        if let Err(e) = vault.get_map("app", None).await {
            throttled = Some(e);
            break;
        }
    }
    match throttled {
        Some(ProviderError::Throttled { retry_after, .. }) => assert!(retry_after.is_some()),
        other => panic!("expected Throttled, got {other:?}"),
    }
}
