//! Metadata-only answers (`Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`),
//! as kube-rs sends them for `Api<PartialObjectMeta<K>>` and client-go's metadata informers
//! do: objects reduced to their metadata on the wire, so a Secret's data never leaves the
//! server, while the stored objects keep it.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use gitseal_testkit::TestServer;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio::time::timeout;

const METADATA: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const METADATA_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
/// Base64 of the Secrets' value: must not appear in any metadata-only answer.
const ENCODED_VALUE: &str = "aHVudGVyMg==";

/// Creates an owner ConfigMap and a Secret `name` it owns, with labels, annotations and
/// data; returns the owner's uid.
async fn owned_secret(client: &kube::Client, name: &str) -> String {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner_name = format!("{name}-owner");
    let owner = match cms.get_opt(&owner_name).await.unwrap() {
        Some(owner) => owner,
        None => cms
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": owner_name}})).unwrap(),
            )
            .await
            .unwrap(),
    };
    let uid = owner.metadata.uid.unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": {"app": "demo"},
            "annotations": {"gitseal.dev/source": "sealed"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner_name, "uid": uid, "controller": true}],
        },
        "stringData": {"password": "hunter2"},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    uid
}

fn assert_full_metadata(meta: &PartialObjectMeta<Secret>, owner_uid: &str) {
    let types = meta.types.as_ref().expect("apiVersion and kind");
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        ("meta.k8s.io/v1", "PartialObjectMetadata")
    );
    let m = &meta.metadata;
    assert_eq!(m.labels.as_ref().unwrap()["app"], "demo");
    assert_eq!(
        m.annotations.as_ref().unwrap()["gitseal.dev/source"],
        "sealed"
    );
    let owners = m.owner_references.as_ref().unwrap();
    assert_eq!(owners[0].uid, owner_uid);
    assert_eq!(owners[0].controller, Some(true));
    assert!(m.resource_version.as_ref().is_some_and(|rv| !rv.is_empty()));
    assert!(m.uid.is_some() && m.creation_timestamp.is_some());
}

/// A GET with an explicit `Accept` header: the body, or the error's code.
async fn raw_get(client: &kube::Client, path: &str, accept: &str) -> Result<String, u16> {
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .unwrap();
    client.request_text(request).await.map_err(|e| match e {
        kube::Error::Api(status) => status.code,
        other => panic!("request failed: {other}"),
    })
}

/// Parses a metadata-only answer, checking that the Secret's data is not in it.
fn parse_reduced(text: &str) -> Value {
    assert!(!text.contains(ENCODED_VALUE), "Secret data leaked: {text}");
    serde_json::from_str(text).unwrap()
}

type MetaStream = BoxStream<'static, watcher::Result<watcher::Event<PartialObjectMeta<Secret>>>>;

async fn next_event(stream: &mut MetaStream) -> watcher::Event<PartialObjectMeta<Secret>> {
    timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("a watch event in time")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn partial_object_meta_list_get_and_patch() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;
    let owner = owned_secret(&client, "db").await;
    owned_secret(&client, "cache").await;
    let metas: Api<PartialObjectMeta<Secret>> = Api::namespaced(client.clone(), "default");

    let list = metas.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 2);
    assert!(list.metadata.resource_version.is_some());
    let db = list
        .items
        .iter()
        .find(|m| m.metadata.name.as_deref() == Some("db"))
        .unwrap();
    assert_full_metadata(db, &owner);

    // Paging keeps the list metadata.
    let page = metas.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.metadata.continue_.is_some());

    let got = metas.get("db").await.unwrap();
    assert_full_metadata(&got, &owner);
    assert_eq!(got.metadata.resource_version, db.metadata.resource_version);

    // A patch through the metadata API answers metadata too.
    let patched = metas
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "db"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.as_ref().unwrap()["tier"], "db");
    assert_full_metadata(&patched, &owner);

    // The stored Secret keeps its data.
    let secret = Api::<Secret>::namespaced(client, "default")
        .get("db")
        .await
        .unwrap();
    assert_eq!(secret.data.unwrap()["password"].0, b"hunter2");
    assert_eq!(secret.metadata.labels.unwrap()["tier"], "db");
}

#[tokio::test]
async fn raw_metadata_answers_carry_no_secret_data() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;
    owned_secret(&client, "db").await;
    let list_path = "/api/v1/namespaces/default/secrets";
    let get_path = &format!("{list_path}/db");

    // The Accept header may offer several types; the first JSON one wins.
    let accept = format!("{METADATA_LIST},application/json");
    let list = parse_reduced(&raw_get(&client, list_path, &accept).await.unwrap());
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert!(list["metadata"]["resourceVersion"].is_string());
    let item = &list["items"][0];
    assert_eq!(item["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(item["kind"], "PartialObjectMetadata");
    assert_eq!(item["metadata"]["name"], "db");
    assert_eq!(item["metadata"]["labels"]["app"], "demo");
    assert!(item.get("data").is_none() && item.get("type").is_none());

    // client-go's metadata client offers protobuf first, which the server skips.
    let accept = format!(
        "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,{METADATA},application/json"
    );
    let object = parse_reduced(&raw_get(&client, get_path, &accept).await.unwrap());
    assert_eq!(object["kind"], "PartialObjectMetadata");
    assert!(object["metadata"]["ownerReferences"].is_array());
    assert!(object.get("data").is_none());

    // The form must fit the answer, as upstream: 406 otherwise.
    assert_eq!(raw_get(&client, list_path, METADATA).await, Err(406));
    assert_eq!(raw_get(&client, get_path, METADATA_LIST).await, Err(406));

    // A watch: every event object, the initial-events-end bookmark included, is reduced.
    let watch = format!(
        "{list_path}?watch=true&timeoutSeconds=1&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
    );
    let text = raw_get(&client, &watch, METADATA).await.unwrap();
    let events: Vec<Value> = text.lines().map(parse_reduced).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "BOOKMARK"]);
    for event in &events {
        assert_eq!(event["object"]["kind"], "PartialObjectMetadata");
        assert!(event["object"]["metadata"]["resourceVersion"].is_string());
    }

    // Without it, the object is whole: the reduction happens on the wire only.
    let text = raw_get(&client, get_path, "application/json")
        .await
        .unwrap();
    let whole: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(whole["kind"], "Secret");
    assert_eq!(whole["data"]["password"], ENCODED_VALUE);
}

#[tokio::test]
async fn watcher_on_partial_object_meta_sees_metadata_changes() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;
    let owner = owned_secret(&client, "before").await;
    let metas: Api<PartialObjectMeta<Secret>> = Api::namespaced(client.clone(), "default");

    // List-then-watch, and a streaming list (initial events ended by a bookmark).
    let configs = [
        watcher::Config::default(),
        watcher::Config::default().streaming_lists(),
    ];
    for (i, config) in configs.into_iter().enumerate() {
        let mut stream: MetaStream = watcher(metas.clone(), config).boxed();
        let mut initial = BTreeMap::new();
        loop {
            match next_event(&mut stream).await {
                watcher::Event::Init => {}
                watcher::Event::InitApply(meta) => {
                    initial.insert(meta.metadata.name.clone().unwrap(), meta);
                }
                watcher::Event::InitDone => break,
                other => panic!("unexpected event {other:?}"),
            }
        }
        assert_eq!(initial.len(), i + 1, "{:?}", initial.keys());
        assert_full_metadata(&initial["before"], &owner);

        // A Secret created while watching arrives, then a metadata change to it.
        let name = format!("after-{i}");
        let owner = owned_secret(&client, &name).await;
        let watcher::Event::Apply(created) = next_event(&mut stream).await else {
            panic!("expected an Apply event");
        };
        assert_eq!(created.metadata.name.as_deref(), Some(name.as_str()));
        assert_full_metadata(&created, &owner);
        metas
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"seen": "yes"}}})),
            )
            .await
            .unwrap();
        let watcher::Event::Apply(changed) = next_event(&mut stream).await else {
            panic!("expected an Apply event");
        };
        assert_eq!(
            changed.metadata.annotations.as_ref().unwrap()["seen"],
            "yes"
        );
        assert_full_metadata(&changed, &owner);
        assert_ne!(
            changed.metadata.resource_version,
            created.metadata.resource_version
        );
    }
}
