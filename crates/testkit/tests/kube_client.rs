//! Conformance of the test API server, driven through kube-rs: every verb, the metadata
//! the server sets, selectors, paging, patches, server-side apply, finalizers, garbage
//! collection, CRDs with status and validation, RBAC-lite and fault injection.

mod common;

use std::collections::BTreeMap;

use common::widget_crd;
use gitseal_testkit::{Rule, TestServer};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "labels": {"app": "demo"}},
        "stringData": data.iter().cloned().collect::<BTreeMap<_, _>>(),
    }))
    .unwrap()
}

fn status_code(error: kube::Error) -> u16 {
    match error {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_get_update_and_the_metadata_the_server_sets() {
    let server = TestServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client().await, "default");
    let created = secrets
        .create(
            &PostParams::default(),
            &secret("db", &[("password", "hunter2")]),
        )
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.as_ref().is_some_and(|u| u.len() == 36));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert!(meta.generation.is_none(), "Secrets have no generation");
    assert_eq!(
        meta.managed_fields.as_ref().unwrap()[0].manager.as_deref(),
        Some("unknown")
    );
    // stringData is folded into data; the type defaults to Opaque.
    assert_eq!(created.data.as_ref().unwrap()["password"].0, b"hunter2");
    assert!(created.string_data.is_none());
    assert_eq!(created.type_.as_deref(), Some("Opaque"));

    let fetched = secrets.get("db").await.unwrap();
    assert_eq!(fetched.metadata.resource_version, meta.resource_version);
    assert_eq!(
        status_code(
            secrets
                .create(&PostParams::default(), &secret("db", &[]))
                .await
                .unwrap_err()
        ),
        409
    );
    assert_eq!(status_code(secrets.get("missing").await.unwrap_err()), 404);

    // Update with the current resourceVersion works and bumps it; a stale one is a 409.
    let mut changed = fetched.clone();
    changed
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("tier".into(), "db".into());
    let updated = secrets
        .replace("db", &PostParams::default(), &changed)
        .await
        .unwrap();
    let (old_rv, new_rv): (u64, u64) = (
        meta.resource_version.as_ref().unwrap().parse().unwrap(),
        updated
            .metadata
            .resource_version
            .as_ref()
            .unwrap()
            .parse()
            .unwrap(),
    );
    assert!(new_rv > old_rv);
    assert_eq!(
        status_code(
            secrets
                .replace("db", &PostParams::default(), &changed)
                .await
                .unwrap_err()
        ),
        409
    );
    // A no-op update does not change the resourceVersion.
    let same = secrets
        .replace("db", &PostParams::default(), &updated)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        updated.metadata.resource_version
    );

    // generateName.
    let mut generated = secret("", &[]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let generated = secrets
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = generated.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // Objects in a namespace that does not exist are refused.
    let elsewhere: Api<Secret> = Api::namespaced(server.client().await, "nope");
    assert_eq!(
        status_code(
            elsewhere
                .create(&PostParams::default(), &secret("x", &[]))
                .await
                .unwrap_err()
        ),
        404
    );
    // An invalid name is a 422.
    assert_eq!(
        status_code(
            secrets
                .create(&PostParams::default(), &secret("Not_Valid", &[]))
                .await
                .unwrap_err()
        ),
        422
    );
}

#[tokio::test]
async fn immutable_secrets_refuse_data_changes() {
    let server = TestServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client().await, "default");
    let mut s = secret("frozen", &[("k", "v")]);
    s.immutable = Some(true);
    secrets.create(&PostParams::default(), &s).await.unwrap();
    let patch = Patch::Merge(json!({"stringData": {"k": "other"}}));
    let error = secrets
        .patch("frozen", &PatchParams::default(), &patch)
        .await
        .unwrap_err();
    match error {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422);
            assert!(
                status
                    .message
                    .contains("field is immutable when `immutable` is set"),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }
    // Labels may still change.
    let patch = Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}}));
    secrets
        .patch("frozen", &PatchParams::default(), &patch)
        .await
        .unwrap();
}

#[tokio::test]
async fn list_with_selectors_and_paging() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap(),
        )
        .await
        .unwrap();
    for ns in ["default", "team-a"] {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        for i in 0..5 {
            let cm: ConfigMap = serde_json::from_value(json!({"metadata": {
                "name": format!("cm-{i}"),
                "labels": {"index": i.to_string(), "parity": if i % 2 == 0 { "even" } else { "odd" }}}}))
            .unwrap();
            cms.create(&PostParams::default(), &cm).await.unwrap();
        }
    }
    let all: Api<ConfigMap> = Api::all(client.clone());
    let names = |list: kube::core::ObjectList<ConfigMap>| {
        list.items
            .into_iter()
            .map(|c| {
                format!(
                    "{}/{}",
                    c.metadata.namespace.unwrap(),
                    c.metadata.name.unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        10
    );
    let even = all
        .list(&ListParams::default().labels("parity=even"))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 6);
    let set = all
        .list(&ListParams::default().labels("index in (1,3),parity!=even"))
        .await
        .unwrap();
    assert_eq!(
        names(set),
        ["default/cm-1", "default/cm-3", "team-a/cm-1", "team-a/cm-3"]
    );
    let exists = all
        .list(&ListParams::default().labels("!parity"))
        .await
        .unwrap();
    assert!(exists.items.is_empty());
    let by_name = all
        .list(&ListParams::default().fields("metadata.name=cm-2"))
        .await
        .unwrap();
    assert_eq!(names(by_name), ["default/cm-2", "team-a/cm-2"]);
    let by_ns = all
        .list(&ListParams::default().fields("metadata.namespace=team-a"))
        .await
        .unwrap();
    assert_eq!(by_ns.items.len(), 5);

    // limit/continue walks every object exactly once.
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(3);
    loop {
        let page = all.list(&params).await.unwrap();
        let token = page.metadata.continue_.clone();
        let remaining = page.metadata.remaining_item_count;
        seen.extend(names(page));
        match token.filter(|t| !t.is_empty()) {
            Some(token) => {
                assert!(remaining.unwrap() > 0);
                params = ListParams::default().limit(3).continue_token(&token);
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 10);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 10);
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    let server = TestServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}))
            .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let pp = PatchParams::default();
    let merged = cms
        .patch(
            "c",
            &pp,
            &Patch::Merge(json!({"data": {"a": null, "c": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.data.unwrap(),
        BTreeMap::from([("b".into(), "2".into()), ("c".into(), "3".into())])
    );
    let json_patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/data/b", "value": "20"},
        {"op": "add", "path": "/metadata/labels", "value": {"x": "1"}},
    ]))
    .unwrap();
    let patched = cms
        .patch("c", &pp, &Patch::<()>::Json(json_patch))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["b"], "20");
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/b", "value": "nope"}]))
            .unwrap();
    assert_eq!(
        status_code(
            cms.patch("c", &pp, &Patch::<()>::Json(failing))
                .await
                .unwrap_err()
        ),
        422
    );
    let strategic = cms
        .patch(
            "c",
            &pp,
            &Patch::Strategic(json!({"metadata": {"finalizers": ["example.com/keep"]}})),
        )
        .await
        .unwrap();
    assert_eq!(strategic.metadata.finalizers.unwrap(), ["example.com/keep"]);
    // A patch naming a stale resourceVersion is refused.
    let stale = Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "data": {"z": "1"}}));
    assert_eq!(
        status_code(cms.patch("c", &pp, &stale).await.unwrap_err()),
        409
    );
}

#[tokio::test]
async fn server_side_apply_tracks_owners_and_conflicts() {
    let server = TestServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let alice = PatchParams::apply("alice");
    let applied = cms
        .patch("shared", &alice, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"a": "1", "b": "2"}})))
        .await
        .unwrap();
    let managers = applied.metadata.managed_fields.unwrap();
    assert_eq!(managers.len(), 1);
    assert_eq!(managers[0].manager.as_deref(), Some("alice"));
    assert_eq!(managers[0].operation.as_deref(), Some("Apply"));

    // Bob applying a different value of alice's field conflicts, naming her and the field.
    let bob = PatchParams::apply("bob");
    let conflicting = Patch::Apply(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"a": "9"}}),
    );
    match cms.patch("shared", &bob, &conflicting).await.unwrap_err() {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409);
            assert!(
                status.message.contains("conflict with \"alice\"")
                    && status.message.contains(".data.a"),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }
    // The same value is shared ownership, not a conflict; forcing takes a field over.
    cms.patch("shared", &bob, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"b": "2"}})))
        .await
        .unwrap();
    let forced = Patch::Apply(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"a": "9", "b": "2"}}),
    );
    let forced = cms
        .patch("shared", &bob.clone().force(), &forced)
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["a"], "9");

    // Alice drops field b from her configuration: bob still owns it, so it stays; she
    // drops field c that only she owned, so it goes.
    cms.patch("shared", &alice, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"c": "3"}})))
        .await
        .unwrap();
    let after = cms.patch("shared", &alice, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"d": "4"}})))
        .await
        .unwrap();
    let data = after.data.unwrap();
    assert_eq!(data.get("b").map(String::as_str), Some("2"));
    assert!(!data.contains_key("c"), "{data:?}");
    assert_eq!(data.get("d").map(String::as_str), Some("4"));
    // Apply without a field manager is refused.
    assert!(
        cms.patch("shared", &PatchParams::default(), &conflicting)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn finalizers_and_garbage_collection() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");

    // A finalizer holds the object with a deletionTimestamp until it is removed.
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/f"]}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &held).await.unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let terminating = cms.get("held").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(status_code(cms.get("held").await.unwrap_err()), 404);

    // Background: the dependent goes with its owner.
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let owner_ref = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.clone().unwrap(), "controller": true}]);
    let mut dependent = secret("dependent", &[("k", "v")]);
    dependent.metadata.owner_references = Some(serde_json::from_value(owner_ref.clone()).unwrap());
    secrets
        .create(&PostParams::default(), &dependent)
        .await
        .unwrap();
    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    assert_eq!(
        status_code(secrets.get("dependent").await.unwrap_err()),
        404
    );

    // Orphan: the dependent stays, without the reference.
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner2"}})).unwrap(),
        )
        .await
        .unwrap();
    let mut dependent = secret("kept", &[("k", "v")]);
    dependent.metadata.owner_references = Some(serde_json::from_value(json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": owner.metadata.uid.unwrap()}])).unwrap());
    secrets
        .create(&PostParams::default(), &dependent)
        .await
        .unwrap();
    cms.delete(
        "owner2",
        &DeleteParams {
            propagation_policy: Some(PropagationPolicy::Orphan),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let kept = secrets.get("kept").await.unwrap();
    assert!(
        kept.metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );

    // Foreground: dependents are deleted before the owner.
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner3"}})).unwrap(),
        )
        .await
        .unwrap();
    let mut dependent = secret("fg", &[("k", "v")]);
    dependent.metadata.owner_references = Some(serde_json::from_value(json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner3", "uid": owner.metadata.uid.unwrap()}])).unwrap());
    secrets
        .create(&PostParams::default(), &dependent)
        .await
        .unwrap();
    cms.delete("owner3", &DeleteParams::foreground())
        .await
        .unwrap();
    assert_eq!(status_code(secrets.get("fg").await.unwrap_err()), 404);
    assert_eq!(status_code(cms.get("owner3").await.unwrap_err()), 404);

    // A uid precondition that does not match refuses the delete.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "pre"}})).unwrap(),
    )
    .await
    .unwrap();
    let wrong = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("other".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        status_code(cms.delete("pre", &wrong).await.unwrap_err()),
        409
    );

    // Deleting a namespace deletes what is in it.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
        )
        .await
        .unwrap();
    let doomed: Api<Secret> = Api::namespaced(client.clone(), "doomed");
    doomed
        .create(&PostParams::default(), &secret("s", &[]))
        .await
        .unwrap();
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(status_code(doomed.get("s").await.unwrap_err()), 404);
    assert_eq!(
        status_code(namespaces.get("doomed").await.unwrap_err()),
        404
    );
}

#[tokio::test]
async fn custom_resources_with_status_generation_and_validation() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .create(
            &PostParams::default(),
            &serde_json::from_value(widget_crd()).unwrap(),
        )
        .await
        .unwrap();
    let established = crd.status.unwrap().conditions.unwrap();
    assert!(
        established
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let widget = |size: serde_json::Value| -> DynamicObject {
        serde_json::from_value(
            json!({"metadata": {"name": "w"}, "apiVersion": "example.com/v1",
            "kind": "Widget", "spec": {"size": size, "unknown": 1, "color": "red"},
            "status": {"ready": true}}),
        )
        .unwrap()
    };
    let created = widgets
        .create(&PostParams::default(), &widget(json!(3)))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    // Status is ignored on create when the status subresource is on; unknown fields are pruned.
    assert!(created.data.get("status").is_none());
    assert!(created.data["spec"].get("unknown").is_none());
    // Kept as kube-apiserver keeps custom resources: every map's keys in sorted order
    // ("size" was sent before "color", "metadata" before "apiVersion"), read alone or
    // in a list.
    let raw = |path: &str| {
        let request = http::Request::get(path).body(Vec::new()).unwrap();
        let client = client.clone();
        async move { client.request_text(request).await.unwrap() }
    };
    let path = "/apis/example.com/v1/namespaces/default/widgets";
    let one: serde_json::Value = serde_json::from_str(&raw(&format!("{path}/w")).await).unwrap();
    let list: serde_json::Value = serde_json::from_str(&raw(path).await).unwrap();
    for object in [&one, &list["items"][0]] {
        assert!(keys_sorted(object), "{object}");
    }

    // Validation errors are 422 with the field named.
    let mut bad = widget(json!("big"));
    bad.metadata.name = Some("bad".into());
    match widgets
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err()
    {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422);
            assert!(
                status
                    .message
                    .contains("spec.size in body must be of type integer"),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }

    // A spec change bumps the generation; a status write does not, and does not touch spec.
    let pp = PatchParams::default();
    let changed = widgets
        .patch("w", &pp, &Patch::Merge(json!({"spec": {"size": 4}})))
        .await
        .unwrap();
    assert_eq!(changed.metadata.generation, Some(2));
    let status = widgets
        .patch_status(
            "w",
            &pp,
            &Patch::Merge(json!({"spec": {"size": 99}, "status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(status.metadata.generation, Some(2));
    assert_eq!(status.data["spec"]["size"], 4);
    assert_eq!(status.data["status"]["ready"], true);
    // And a main-resource write does not touch status.
    let relabeled = widgets
        .patch(
            "w",
            &pp,
            &Patch::Merge(json!({"status": {"ready": false}, "metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(relabeled.data["status"]["ready"], true);
    assert_eq!(relabeled.metadata.generation, Some(2));
    // Strategic merge patch is not supported for custom resources, as upstream.
    assert_eq!(
        status_code(
            widgets
                .patch("w", &pp, &Patch::Strategic(json!({"spec": {"size": 5}})))
                .await
                .unwrap_err()
        ),
        415
    );
    // Update without a resourceVersion is refused for custom resources.
    let mut unconditional = widgets.get("w").await.unwrap();
    unconditional.metadata.resource_version = None;
    assert_eq!(
        status_code(
            widgets
                .replace("w", &PostParams::default(), &unconditional)
                .await
                .unwrap_err()
        ),
        422
    );

    // Deleting the CRD removes the resource.
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(status_code(widgets.get("w").await.unwrap_err()), 404);
}

#[tokio::test]
async fn rbac_lite_tokens() {
    let server = TestServer::start().await.unwrap();
    let reader = server.add_token(vec![
        Rule::new("", &["secrets"], &["get", "list"]).in_namespaces(&["default"]),
    ]);
    let admin: Api<Secret> = Api::namespaced(server.client().await, "default");
    admin
        .create(&PostParams::default(), &secret("s", &[]))
        .await
        .unwrap();
    let limited: Api<Secret> = Api::namespaced(server.client_with_token(&reader).await, "default");
    limited.get("s").await.unwrap();
    limited.list(&ListParams::default()).await.unwrap();
    match limited
        .delete("s", &DeleteParams::default())
        .await
        .unwrap_err()
    {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 403);
            assert!(
                status
                    .message
                    .contains("cannot delete resource \"secrets\""),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }
    let other_ns: Api<Secret> =
        Api::namespaced(server.client_with_token(&reader).await, "kube-system");
    assert_eq!(
        status_code(other_ns.list(&ListParams::default()).await.unwrap_err()),
        403
    );
    let stranger: Api<Secret> =
        Api::namespaced(server.client_with_token("wrong-token").await, "default");
    assert_eq!(status_code(stranger.get("s").await.unwrap_err()), 401);
}

#[tokio::test]
async fn injected_faults_and_latency() {
    let server = TestServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client().await, "default");
    server.fail_next(2, 500, Some("list"), Some("secrets"));
    assert_eq!(
        status_code(secrets.list(&ListParams::default()).await.unwrap_err()),
        500
    );
    // Other verbs are not affected.
    secrets
        .create(&PostParams::default(), &secret("s", &[]))
        .await
        .unwrap();
    assert_eq!(
        status_code(secrets.list(&ListParams::default()).await.unwrap_err()),
        500
    );
    secrets.list(&ListParams::default()).await.unwrap();
    // kube-rs retries a 429 by itself: the fault is served and the call still succeeds.
    server.fail_next(1, 429, None, None);
    secrets.get("s").await.unwrap();
    assert_eq!(server.pending_faults(), 0);
    server.fail_next(1, 409, Some("update"), None);
    let current = secrets.get("s").await.unwrap();
    assert_eq!(
        status_code(
            secrets
                .replace("s", &PostParams::default(), &current)
                .await
                .unwrap_err()
        ),
        409
    );
    server.set_latency(std::time::Duration::from_millis(200));
    let started = std::time::Instant::now();
    secrets.get("s").await.unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
}

#[tokio::test]
async fn other_built_in_kinds_dry_run_and_deletecollection() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{Service, ServiceAccount};
    use k8s_openapi::api::events::v1::Event;
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;

    // Leases, as leader election uses them: create, then a conditional update.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}))
    .unwrap();
    let mut lease = leases.create(&PostParams::default(), &lease).await.unwrap();
    lease.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let taken = leases
        .replace("leader", &PostParams::default(), &lease)
        .await
        .unwrap();
    assert_eq!(taken.spec.unwrap().holder_identity.as_deref(), Some("b"));
    assert_eq!(
        status_code(
            leases
                .replace("leader", &PostParams::default(), &lease)
                .await
                .unwrap_err()
        ),
        409
    );

    // events.k8s.io Events, ServiceAccounts and Services are served.
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let event: Event = serde_json::from_value(json!({"metadata": {"generateName": "unsealed-"},
        "eventTime": "2026-11-23T00:00:00.000000Z", "reason": "Unsealed", "action": "Unseal",
        "reportingController": "gitseal", "reportingInstance": "gitseal-0", "type": "Normal",
        "regarding": {"kind": "SealedSecret", "name": "x", "namespace": "default"}}))
    .unwrap();
    events.create(&PostParams::default(), &event).await.unwrap();
    assert_eq!(
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "gitseal"}})).unwrap(),
        )
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let service: Service = serde_json::from_value(json!({"metadata": {"name": "gitseal"},
        "spec": {"ports": [{"name": "http", "port": 8080}]}}))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let patched = services
        .patch(
            "gitseal",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"ports": [{"name": "metrics", "port": 8081}]}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.spec.unwrap().ports.unwrap().len(),
        2,
        "ports merge by their key"
    );

    // dryRun=All answers without storing.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    secrets
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &secret("dry", &[]),
        )
        .await
        .unwrap();
    assert_eq!(status_code(secrets.get("dry").await.unwrap_err()), 404);

    // deletecollection with a label selector deletes exactly the matching objects.
    for name in ["a", "b"] {
        secrets
            .create(&PostParams::default(), &secret(name, &[]))
            .await
            .unwrap();
    }
    let mut other = secret("c", &[]);
    other.metadata.labels = Some([("app".to_owned(), "other".to_owned())].into());
    secrets
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    secrets
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=demo"),
        )
        .await
        .unwrap();
    let left: Vec<String> = secrets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["c"]);
}

/// Whether the keys of every map in `value` are in sorted order.
fn keys_sorted(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b) && map.values().all(keys_sorted)
        }
        serde_json::Value::Array(items) => items.iter().all(keys_sorted),
        _ => true,
    }
}
