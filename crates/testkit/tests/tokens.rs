//! Service account tokens (TokenRequest, TokenReview, bearer authentication with RBAC from
//! Roles and bindings) and protobuf bodies, over raw HTTP with a kube-rs client.

mod common;

use gitseal_testkit::{Rule, TestServer};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use kube::api::{ListParams, PostParams};
use prost::Message;
use serde_json::{Value, json};

async fn post(client: &kube::Client, path: &str, body: Value) -> Result<Value, kube::Error> {
    let request = http::Request::post(path)
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    client.request::<Value>(request).await
}

async fn get(client: &kube::Client, path: &str) -> Value {
    let request = http::Request::get(path).body(Vec::new()).unwrap();
    client.request::<Value>(request).await.unwrap()
}

fn code(error: kube::Error) -> u16 {
    match error {
        kube::Error::Api(status) => status.code,
        other => panic!("{other:?}"),
    }
}

async fn create_service_account(client: &kube::Client, namespace: &str, name: &str) {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    accounts.create(&PostParams::default(), &sa).await.unwrap();
}

async fn request_token(client: &kube::Client, audiences: &[&str]) -> Value {
    post(
        client,
        "/api/v1/namespaces/default/serviceaccounts/vault-auth/token",
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"audiences": audiences, "expirationSeconds": 3600}}),
    )
    .await
    .unwrap()
}

async fn review(client: &kube::Client, token: &str, audiences: &[&str]) -> Value {
    let review = post(
        client,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
               "spec": {"token": token, "audiences": audiences}}),
    )
    .await
    .unwrap();
    assert_eq!(review["kind"], "TokenReview");
    review["status"].clone()
}

#[tokio::test]
async fn token_request_then_token_review() {
    let server = TestServer::start().await.unwrap();
    let admin = server.client().await;
    create_service_account(&admin, "default", "vault-auth").await;

    let answer = request_token(&admin, &["vault"]).await;
    assert_eq!(answer["kind"], "TokenRequest");
    let token = answer["status"]["token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let expires = answer["status"]["expirationTimestamp"].as_str().unwrap();
    let expires = humantime::parse_rfc3339(expires).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((3500..=3600).contains(&left), "{left}");

    let status = review(&admin, &token, &["vault"]).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["username"],
        "system:serviceaccount:default:vault-auth"
    );
    assert!(
        status["user"]["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("system:serviceaccounts:default"))
    );
    assert_eq!(status["audiences"], json!(["vault"]));
    // Without audiences in the review, the token's own count.
    assert_eq!(review(&admin, &token, &[]).await["authenticated"], true);

    // A made-up token, a tampered one, and one for another audience are refused.
    let made_up = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    assert_eq!(review(&admin, made_up, &[]).await["authenticated"], false);
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(review(&admin, &tampered, &[]).await["authenticated"], false);
    let other = review(&admin, &token, &["sts.amazonaws.com"]).await;
    assert_eq!(other["authenticated"], false, "{other}");

    // No token for a missing service account, nor below upstream's 10-minute minimum.
    let missing = post(
        &admin,
        "/api/v1/namespaces/default/serviceaccounts/nobody/token",
        json!({"spec": {}}),
    )
    .await
    .unwrap_err();
    assert_eq!(code(missing), 404);
    let short = post(
        &admin,
        "/api/v1/namespaces/default/serviceaccounts/vault-auth/token",
        json!({"spec": {"expirationSeconds": 60}}),
    )
    .await
    .unwrap_err();
    assert_eq!(code(short), 422);

    // A deleted (or re-created) service account invalidates its tokens.
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    accounts
        .delete("vault-auth", &Default::default())
        .await
        .unwrap();
    assert_eq!(review(&admin, &token, &[]).await["authenticated"], false);
    create_service_account(&admin, "default", "vault-auth").await;
    assert_eq!(review(&admin, &token, &[]).await["authenticated"], false);
}

#[tokio::test]
async fn service_account_tokens_authenticate_with_rbac() {
    let server = TestServer::start().await.unwrap();
    let admin = server.client().await;
    create_service_account(&admin, "default", "vault-auth").await;
    let token = request_token(&admin, &[]).await["status"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let secrets: Api<Secret> = Api::namespaced(server.client_with_token(&token).await, "default");
    assert_eq!(
        code(secrets.list(&ListParams::default()).await.unwrap_err()),
        403
    );

    // A Role bound to the service account grants its rules in the binding's namespace.
    post(
        &admin,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "reader"},
               "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}),
    )
    .await
    .unwrap();
    post(
        &admin,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "vault-auth", "namespace": "default"}],
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}}),
    )
    .await
    .unwrap();
    secrets.list(&ListParams::default()).await.unwrap();
    let elsewhere: Api<Secret> =
        Api::namespaced(server.client_with_token(&token).await, "kube-system");
    match elsewhere.list(&ListParams::default()).await.unwrap_err() {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 403);
            assert!(
                status
                    .message
                    .contains("User \"system:serviceaccount:default:vault-auth\""),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }

    // A ClusterRole bound cluster-wide lets it review tokens (Vault's Kubernetes auth).
    let sa_client = server.client_with_token(&token).await;
    let denied = post(
        &sa_client,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        json!({"spec": {"token": token}}),
    )
    .await
    .unwrap_err();
    assert_eq!(code(denied), 403);
    post(
        &admin,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "auth-delegator"},
               "rules": [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}]}),
    )
    .await
    .unwrap();
    post(
        &admin,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "vault-auth"},
               "subjects": [{"kind": "ServiceAccount", "name": "vault-auth", "namespace": "default"}],
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "auth-delegator"}}),
    )
    .await
    .unwrap();
    assert_eq!(review(&sa_client, &token, &[]).await["authenticated"], true);

    // Unknown bearer tokens are still 401.
    let stranger: Api<Secret> = Api::namespaced(server.client_with_token("a.b.c").await, "default");
    assert_eq!(
        code(stranger.list(&ListParams::default()).await.unwrap_err()),
        401
    );
}

#[tokio::test]
async fn granted_records_what_restricted_tokens_were_allowed_everywhere() {
    let server = TestServer::start().await.unwrap();
    let admin = server.client().await;
    create_service_account(&admin, "default", "vault-auth").await;
    let limited = server.add_token(vec![
        Rule::new(
            "",
            &["serviceaccounts/token", "secrets"],
            &["create", "list"],
        )
        .in_namespaces(&["default"]),
        Rule::new("", &["services/proxy"], &["get"]),
    ]);
    let client = server.client_with_token(&limited).await;
    // Full access is not recorded.
    Api::<Secret>::namespaced(admin.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(server.granted().is_empty());
    // The resource API, the token endpoints and the service proxy all record.
    Api::<Secret>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(request_token(&client, &[]).await["status"]["token"].is_string());
    let proxied = http::Request::get("/api/v1/namespaces/default/services/web/proxy/x")
        .body(Vec::new())
        .unwrap();
    // Allowed, then not found: no such Service.
    assert_eq!(
        code(client.request::<Value>(proxied).await.unwrap_err()),
        404
    );
    // Refusals are not recorded.
    let refused = post(
        &client,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        json!({"spec": {"token": limited}}),
    )
    .await
    .unwrap_err();
    assert_eq!(code(refused), 403);
    assert_eq!(
        code(
            Api::<Secret>::namespaced(client, "kube-system")
                .list(&ListParams::default())
                .await
                .unwrap_err()
        ),
        403
    );
    let triple = |v: &str, r: &str| (v.to_owned(), String::new(), r.to_owned());
    assert_eq!(
        server.granted(),
        [
            triple("create", "serviceaccounts/token"),
            triple("get", "services/proxy"),
            triple("list", "secrets"),
        ]
        .into_iter()
        .collect()
    );
}

#[tokio::test]
async fn discovery_lists_token_endpoints() {
    let server = TestServer::start().await.unwrap();
    let admin = server.client().await;
    let core = get(&admin, "/api/v1").await;
    let token = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .expect("serviceaccounts/token in /api/v1");
    assert_eq!(token["kind"], "TokenRequest");
    assert_eq!(token["group"], "authentication.k8s.io");
    let groups = get(&admin, "/apis").await;
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "authentication.k8s.io"),
        "{groups}"
    );
    let authn = get(&admin, "/apis/authentication.k8s.io/v1").await;
    assert_eq!(authn["resources"][0]["name"], "tokenreviews");
    assert_eq!(authn["resources"][0]["verbs"], json!(["create"]));
}

/// A protobuf body in, a protobuf answer out when the client accepts nothing else.
#[tokio::test]
async fn protobuf_bodies_and_answers() {
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};

    let server = TestServer::start().await.unwrap();
    let admin = server.client().await;
    let secret = core::Secret {
        metadata: Some(meta::ObjectMeta {
            name: Some("pb".into()),
            ..Default::default()
        }),
        data: [("a".to_owned(), b"b".to_vec())].into(),
        ..Default::default()
    };
    let mut body = b"k8s\0".to_vec();
    Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Secret".into()),
        }),
        raw: Some(secret.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    }
    .encode(&mut body)
    .unwrap();
    let request = http::Request::post("/api/v1/namespaces/default/secrets")
        .header("Content-Type", "application/vnd.kubernetes.protobuf")
        .header("Accept", "application/vnd.kubernetes.protobuf")
        .body(body)
        .unwrap();
    let response = admin
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.kubernetes.protobuf"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let envelope = Unknown::decode(bytes.strip_prefix(b"k8s\0").unwrap()).unwrap();
    assert_eq!(envelope.type_meta.unwrap().kind.as_deref(), Some("Secret"));
    let created = core::Secret::decode(envelope.raw.unwrap().as_slice()).unwrap();
    assert_eq!(created.r#type.as_deref(), Some("Opaque"));
    assert_eq!(created.data["a"], b"b");
    assert!(created.metadata.unwrap().uid.is_some());

    // The store holds it as JSON like any other Secret.
    let secrets: Api<Secret> = Api::namespaced(admin, "default");
    let stored = secrets.get("pb").await.unwrap();
    assert_eq!(stored.data.unwrap()["a"].0, b"b");
}
