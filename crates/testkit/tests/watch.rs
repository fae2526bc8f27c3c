//! Watches through kube-rs: resourceVersion semantics, bookmarks, 410 Gone for expired
//! versions, and kube-runtime's watcher, reflector and Controller surviving injected
//! stream failures.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use gitseal_testkit::{Config, TestServer};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;
use tokio::time::timeout;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "w"}}, "data": {"k": "v"}}),
    )
    .unwrap()
}

async fn eventually<F: Fn() -> bool>(what: &str, check: F) {
    gitseal_testkit::wait_for(what, || std::future::ready(check().then_some(()))).await
}

#[tokio::test]
async fn raw_watch_replays_from_a_resource_version_and_sends_bookmarks() {
    let config = Config {
        bookmark_interval: Duration::from_millis(100),
        ..Config::default()
    };
    let server = TestServer::start_with(config).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let first = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    cms.create(&PostParams::default(), &cm("b")).await.unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    cms.delete("b", &DeleteParams::default()).await.unwrap();

    // From `rv`: everything after it, in order, then bookmarks.
    let params = WatchParams {
        bookmarks: true,
        ..WatchParams::default()
    }
    .timeout(5);
    let mut stream = cms.watch(&params, &rv).await.unwrap().boxed();
    let mut seen = Vec::new();
    let mut bookmarks = 0;
    while let Ok(Some(event)) = timeout(Duration::from_secs(5), stream.try_next())
        .await
        .map(Result::unwrap)
    {
        match event {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.metadata.name.unwrap())),
            WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", o.metadata.name.unwrap())),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.metadata.name.unwrap())),
            WatchEvent::Bookmark(b) => {
                assert!(!b.metadata.resource_version.is_empty());
                bookmarks += 1;
                if bookmarks == 2 {
                    break;
                }
            }
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(seen, ["ADDED b", "MODIFIED a", "DELETED b"]);
    assert_eq!(bookmarks, 2);

    // A label-selected watch sees only matching objects.
    let params = WatchParams {
        bookmarks: false,
        ..WatchParams::default()
    }
    .labels("app=none")
    .timeout(1);
    let mut stream = cms.watch(&params, "0").await.unwrap().boxed();
    let next = timeout(Duration::from_secs(3), stream.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(next.is_none(), "{next:?}");
}

#[tokio::test]
async fn an_expired_resource_version_is_410_gone() {
    let server = TestServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let first = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    cms.create(&PostParams::default(), &cm("b")).await.unwrap();
    server.expire_resource_versions();
    let rv = first.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => assert_eq!(status.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}

#[tokio::test]
async fn watcher_and_reflector_follow_changes_across_stream_failures() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let secret = |name: &str| -> Secret {
        serde_json::from_value(json!({"metadata": {"name": name}, "stringData": {"k": "v"}}))
            .unwrap()
    };
    secrets
        .create(&PostParams::default(), &secret("before"))
        .await
        .unwrap();

    let (reader, writer) = reflector::store::<Secret>();
    let stream = reflector(writer, watcher(secrets.clone(), watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    reader.wait_until_ready().await.unwrap();
    eventually("the initial object", || reader.state().len() == 1).await;

    // Objects created after the start appear.
    secrets
        .create(&PostParams::default(), &secret("after"))
        .await
        .unwrap();
    eventually("the new object", || reader.state().len() == 2).await;

    // A dropped watch stream is resumed without losing a change.
    server.close_watches();
    secrets
        .create(&PostParams::default(), &secret("while-reconnecting"))
        .await
        .unwrap();
    eventually("the object created across a reconnect", || {
        reader.state().len() == 3
    })
    .await;

    // Expired versions force a relist, which still converges.
    server.expire_resource_versions();
    secrets
        .delete("before", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deletion across a relist", || reader.state().len() == 2).await;

    task.abort();

    // Failing lists are retried with backoff: a new watcher whose first two lists fail
    // still fills its store.
    server.fail_next(2, 500, Some("list"), Some("secrets"));
    let (reader, writer) = reflector::store::<Secret>();
    let stream = reflector(writer, watcher(secrets.clone(), watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    eventually("convergence after failed lists", || {
        reader.state().len() == 2
    })
    .await;
    assert_eq!(server.pending_faults(), 0, "both failing lists were served");
    task.abort();
}

#[tokio::test]
async fn a_controller_reconciles_every_object_including_after_restarts_of_its_watches() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        cms.create(&PostParams::default(), &cm(&format!("pre-{i}")))
            .await
            .unwrap();
    }
    let reconciled = Arc::new(AtomicUsize::new(0));
    let count = reconciled.clone();
    let api = cms.clone();
    // The controller marks each ConfigMap as seen; the test checks the marks.
    let controller = Controller::new(cms.clone(), watcher::Config::default())
        .run(
            move |object: Arc<ConfigMap>, _ctx: Arc<()>| {
                let api = api.clone();
                let count = count.clone();
                async move {
                    let name = object.metadata.name.clone().unwrap();
                    if object.data.as_ref().and_then(|d| d.get("seen")).is_none() {
                        api.patch(
                            &name,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"data": {"seen": "yes"}})),
                        )
                        .await?;
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok::<_, kube::Error>(Action::await_change())
                }
            },
            |_object, _error: &kube::Error, _ctx| Action::requeue(Duration::from_millis(50)),
            Arc::new(()),
        )
        .for_each(|_| async {});
    let task = tokio::spawn(controller);
    eventually("the five existing objects", || {
        reconciled.load(Ordering::SeqCst) == 5
    })
    .await;
    for i in 0..5 {
        cms.create(&PostParams::default(), &cm(&format!("post-{i}")))
            .await
            .unwrap();
        if i == 2 {
            server.close_watches();
            server.fail_next(1, 500, Some("patch"), None);
        }
    }
    eventually("the five new objects", || {
        reconciled.load(Ordering::SeqCst) == 10
    })
    .await;
    let all = cms.list(&Default::default()).await.unwrap();
    assert!(
        all.items
            .iter()
            .all(|c| c.data.as_ref().unwrap().get("seen").is_some())
    );
    task.abort();
}

#[tokio::test]
async fn streaming_lists_send_initial_events_then_the_end_bookmark() {
    let server = TestServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    for name in ["a", "b"] {
        cms.create(&PostParams::default(), &cm(name)).await.unwrap();
    }
    let params = WatchParams::default().initial_events().timeout(5);
    let mut stream = cms.watch(&params, "").await.unwrap().boxed();
    let mut added = Vec::new();
    loop {
        match stream
            .try_next()
            .await
            .unwrap()
            .expect("the stream ends after the bookmark")
        {
            WatchEvent::Added(o) => added.push(o.metadata.name.unwrap()),
            WatchEvent::Bookmark(b) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(added, ["a", "b"]);
}

#[tokio::test]
async fn the_journal_records_every_change_through_faults_and_compaction() {
    let server = TestServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client().await, "default");
    let cms: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let journal = server.journal("secrets");
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}))
            .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("other"))
        .await
        .unwrap();
    server.expire_resource_versions();
    server.close_watches();
    secrets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": null})),
        )
        .await
        .unwrap();
    secrets.delete("s", &DeleteParams::default()).await.unwrap();
    eventually("three changes recorded", || journal.changes().len() == 3).await;
    let changes = journal.changes();
    let seen: Vec<(&str, &str, &str, bool)> = changes
        .iter()
        .map(|c| {
            let data = c.object.get("data").is_some_and(|d| !d.is_null());
            (c.event_type, c.namespace.as_str(), c.name.as_str(), data)
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED", "default", "s", true),
            ("MODIFIED", "default", "s", false),
            ("DELETED", "default", "s", false),
        ]
    );
}
