//! The service proxy routes as a cluster does: Service port by name or number, then the
//! ready endpoints of its EndpointSlices, or of its legacy `Endpoints` object when it has
//! no EndpointSlice.

use std::net::SocketAddr;

use gitseal_testkit::TestServer;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const NS: &str = "default";

/// A local HTTP server answering every request with `<tag> <path>`.
async fn backend(tag: &'static str) -> SocketAddr {
    let app = axum::Router::new()
        .fallback(move |uri: axum::http::Uri| async move { format!("{tag} {}", uri.path()) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A client of `server` that does not retry 503 answers (kube-rs retries them by default,
/// with backoff), so a 503 from the proxy comes back at once.
async fn client(server: &TestServer) -> kube::Client {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

async fn create<K>(client: &kube::Client, object: Value)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), NS);
    let object: K = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
}

/// `GET /api/v1/namespaces/default/services/<service>/proxy/who`: the answer, or the status
/// code and message of the API error.
async fn proxy(client: &kube::Client, service: &str) -> Result<String, (u16, String)> {
    let request = http::Request::get(format!(
        "/api/v1/namespaces/{NS}/services/{service}/proxy/who"
    ))
    .body(Vec::new())
    .unwrap();
    client.request_text(request).await.map_err(|e| match e {
        kube::Error::Api(status) => (status.code, status.message),
        other => panic!("expected an API error, got {other:?}"),
    })
}

fn slice(name: &str, service: &str, port_name: &str, port: u16, ready: Option<bool>) -> Value {
    let mut endpoint = json!({"addresses": ["127.0.0.1"]});
    if let Some(ready) = ready {
        endpoint["conditions"] = json!({"ready": ready});
    }
    json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [endpoint],
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
    })
}

#[tokio::test]
async fn the_service_port_is_chosen_by_name_or_number_and_defaults_to_the_first() {
    let server = TestServer::start().await.unwrap();
    let client = client(&server).await;
    let (metrics, http) = (backend("metrics").await, backend("http").await);
    create::<Service>(
        &client,
        json!({"metadata": {"name": "app"}, "spec": {"ports": [
            {"name": "metrics", "port": 8081},
            {"name": "http", "port": 8080},
        ]}}),
    )
    .await;
    create::<EndpointSlice>(
        &client,
        json!({
            "metadata": {"name": "app-x1", "labels": {"kubernetes.io/service-name": "app"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
            "ports": [
                {"name": "http", "port": http.port()},
                {"name": "metrics", "port": metrics.port()},
            ],
        }),
    )
    .await;

    assert_eq!(proxy(&client, "http:app:http").await.unwrap(), "http /who");
    assert_eq!(proxy(&client, "app:http").await.unwrap(), "http /who");
    assert_eq!(proxy(&client, "app:8080").await.unwrap(), "http /who");
    assert_eq!(proxy(&client, "app:metrics").await.unwrap(), "metrics /who");
    assert_eq!(proxy(&client, "app:8081").await.unwrap(), "metrics /who");
    assert_eq!(proxy(&client, "app").await.unwrap(), "metrics /who");

    let (code, message) = proxy(&client, "app:9090").await.unwrap_err();
    assert_eq!(code, 503);
    assert!(message.contains("no service port \"9090\""), "{message}");
    let (code, message) = proxy(&client, "https:app:http").await.unwrap_err();
    assert_eq!(code, 400);
    assert!(message.contains("https"), "{message}");
    let (code, _) = proxy(&client, "missing:http").await.unwrap_err();
    assert_eq!(code, 404);
}

#[tokio::test]
async fn legacy_endpoints_serve_when_there_is_no_endpoint_slice() {
    let server = TestServer::start().await.unwrap();
    let client = client(&server).await;
    let (legacy, sliced, not_ready) = (
        backend("legacy").await,
        backend("sliced").await,
        backend("not-ready").await,
    );
    create::<Service>(
        &client,
        json!({"metadata": {"name": "app"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    // The first subset has only a not-ready address; the second a ready one.
    create::<Endpoints>(
        &client,
        json!({"metadata": {"name": "app"}, "subsets": [
            {"notReadyAddresses": [{"ip": "127.0.0.1"}], "ports": [{"port": not_ready.port()}]},
            {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": legacy.port()}]},
        ]}),
    )
    .await;
    assert_eq!(proxy(&client, "app").await.unwrap(), "legacy /who");
    assert_eq!(proxy(&client, "app:80").await.unwrap(), "legacy /who");

    // Once the Service has an EndpointSlice, the Endpoints object is not read.
    create::<EndpointSlice>(&client, slice("app-a", "app", "", sliced.port(), None)).await;
    assert_eq!(proxy(&client, "app").await.unwrap(), "sliced /who");
}

#[tokio::test]
async fn endpoints_that_are_not_ready_are_skipped() {
    let server = TestServer::start().await.unwrap();
    let client = client(&server).await;
    let (ready, not_ready) = (backend("ready").await, backend("not-ready").await);
    create::<Service>(
        &client,
        json!({"metadata": {"name": "app"}, "spec": {"ports": [{"name": "http", "port": 80}]}}),
    )
    .await;
    // Listed first (by name), but not ready.
    create::<EndpointSlice>(
        &client,
        slice("app-a", "app", "http", not_ready.port(), Some(false)),
    )
    .await;
    create::<EndpointSlice>(
        &client,
        slice("app-b", "app", "http", ready.port(), Some(true)),
    )
    .await;
    // Another Service's slice and a slice without the Service's port name do not count.
    create::<EndpointSlice>(
        &client,
        slice("other", "other", "http", not_ready.port(), None),
    )
    .await;
    create::<EndpointSlice>(
        &client,
        slice("app-c", "app", "grpc", not_ready.port(), None),
    )
    .await;
    assert_eq!(proxy(&client, "app:http").await.unwrap(), "ready /who");

    // The last ready endpoint goes: nothing is left.
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    slices
        .patch(
            "app-b",
            &PatchParams::default(),
            &Patch::Merge(json!({"endpoints": [
                {"addresses": ["127.0.0.1"], "conditions": {"ready": false}}
            ]})),
        )
        .await
        .unwrap();
    let (code, message) = proxy(&client, "app:http").await.unwrap_err();
    assert_eq!(code, 503);
    assert_eq!(message, "no endpoints available for service \"app\"");
}

#[tokio::test]
async fn a_service_without_endpoints_answers_503() {
    let server = TestServer::start().await.unwrap();
    let client = client(&server).await;
    create::<Service>(
        &client,
        json!({"metadata": {"name": "app"}, "spec": {"ports": [{"name": "http", "port": 80}]}}),
    )
    .await;
    let (code, message) = proxy(&client, "http:app:http").await.unwrap_err();
    assert_eq!(code, 503);
    assert_eq!(message, "no endpoints available for service \"app\"");
    // An Endpoints object without addresses is no better.
    create::<Endpoints>(&client, json!({"metadata": {"name": "app"}})).await;
    let (code, _) = proxy(&client, "http:app:http").await.unwrap_err();
    assert_eq!(code, 503);
}

#[tokio::test]
async fn add_service_endpoint_puts_a_listener_behind_a_service() {
    let server = TestServer::start().await.unwrap();
    let client = client(&server).await;
    let addr = backend("controller").await;
    create::<Service>(
        &client,
        json!({"metadata": {"name": "sealed-secrets-controller"},
               "spec": {"ports": [{"name": "http", "port": 8080}]}}),
    )
    .await;
    server
        .add_service_endpoint(NS, "sealed-secrets-controller", addr)
        .unwrap();
    assert_eq!(
        proxy(&client, "http:sealed-secrets-controller:http")
            .await
            .unwrap(),
        "controller /who"
    );
    // The EndpointSlice is an ordinary object, listed by its label.
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let listed = slices
        .list(
            &kube::api::ListParams::default()
                .labels("kubernetes.io/service-name=sealed-secrets-controller"),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    // No Service, no endpoints.
    assert_eq!(
        server
            .add_service_endpoint(NS, "missing", addr)
            .unwrap_err()
            .code,
        404
    );
}
