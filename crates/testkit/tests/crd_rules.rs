//! Conformance of custom resources with structural defaults and CEL validation rules
//! (`x-kubernetes-validations`), through `kubectl` and kube-rs against one in-process
//! server: defaults read back, rule failures worded as the real server words them, CRDs
//! whose rules do not compile refused, and a CRD served in two versions.

use futures::{StreamExt, TryStreamExt};
use gitseal_testkit::TestServer;

mod common;
use common::{Kubectl, kubectl};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("gitseal-testkit-{name}-"))
        .tempdir()
        .unwrap()
}

/// An ExternalSecret-like schema with defaults and rules at the spec, list, item and
/// field levels; `refresh` is the default of `spec.refreshInterval`.
fn vault_schema(refresh: &str) -> Value {
    json!({"openAPIV3Schema": {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.metadata.name != 'reserved'", "message": "the name is reserved"}],
        "properties": {"spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "has(self.data) || has(self.dataFrom)", "message": "either data or dataFrom should be specified"},
                {"rule": "self.refreshInterval != '0s'", "reason": "FieldValueForbidden", "fieldPath": ".refreshInterval",
                 "messageExpression": "'refreshInterval ' + self.refreshInterval + ' is not allowed'"},
                {"rule": "self.target.creationPolicy == oldSelf.target.creationPolicy", "message": "creationPolicy is immutable"},
            ],
            "properties": {
                "refreshInterval": {"type": "string", "default": refresh},
                "target": {"type": "object", "default": {}, "properties": {
                    "creationPolicy": {"type": "string", "default": "Owner", "enum": ["Owner", "Merge", "None"]},
                    "deletionPolicy": {"type": "string", "default": "Retain"}}},
                "data": {
                    "type": "array",
                    "x-kubernetes-validations": [{"rule": "self.all(d, d.remoteRef.key != '')"}],
                    "items": {
                        "type": "object",
                        "required": ["secretKey"],
                        "x-kubernetes-validations": [
                            {"rule": "self.secretKey.lowerAscii() == self.secretKey", "message": "secretKey must be lower case"}],
                        "properties": {
                            "secretKey": {"type": "string", "x-kubernetes-validations": [
                                {"rule": "self.matches('^[-._a-zA-Z0-9]+$')", "message": "secretKey must be a valid key"}]},
                            "remoteRef": {"type": "object", "default": {}, "properties": {
                                "key": {"type": "string"},
                                "version": {"type": "string", "default": "latest"},
                                "conversionStrategy": {"type": "string", "default": "Default"}}}}}},
                "dataFrom": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "value": {"type": "string", "default": "none"}}}}}}}}})
}

/// `vaults.example.com`: `v1beta1` (listed first, not stored) and `v1` (stored), served
/// both, no conversion; `v1beta1` defaults `refreshInterval` differently.
fn vault_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "vaults.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "vaults", "singular": "vault", "kind": "Vault", "shortNames": ["vlt"]},
            "conversion": {"strategy": "None"},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "schema": vault_schema("30m")},
                {"name": "v1", "served": true, "storage": true, "schema": vault_schema("1h")},
            ]
        }
    })
}

const VALID: &str = "apiVersion: example.com/v1
kind: Vault
metadata:
  name: ok
spec:
  data:
  - secretKey: password
    remoteRef: {key: db/password}
  labels:
    team: {}
";

const NO_DATA: &str = "apiVersion: example.com/v1
kind: Vault
metadata:
  name: empty
spec:
  refreshInterval: 5m
";

const BAD_ITEMS: &str = "apiVersion: example.com/v1
kind: Vault
metadata:
  name: items
spec:
  data:
  - secretKey: Password
    remoteRef: {key: a}
  - secretKey: not valid
    remoteRef: {key: b}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_and_cel_rules_through_kubectl_and_kube() {
    if kubectl().is_none() {
        return;
    }
    let server = TestServer::start().await.unwrap();
    let tmp = temp_dir("crd-rules");
    let k = Kubectl::new(&server, tmp.path());
    let crd = k.file("crd.json", &vault_crd().to_string());
    k.ok(&["apply", "-f", &crd]).await;

    // Defaults at every level whose parent exists: spec, an object defaulted to `{}` and
    // then defaulted inside, list items, map values.
    let valid = k.file("valid.yaml", VALID);
    assert_eq!(
        k.ok(&["apply", "-f", &valid]).await.trim(),
        "vault.example.com/ok created"
    );
    let read: Value =
        serde_json::from_str(&k.ok(&["get", "vault", "ok", "-o", "json"]).await).unwrap();
    assert_eq!(read["apiVersion"], "example.com/v1");
    assert_eq!(
        read["spec"],
        json!({
            "data": [{"secretKey": "password", "remoteRef": {"key": "db/password", "version": "latest", "conversionStrategy": "Default"}}],
            "labels": {"team": {"value": "none"}},
            "refreshInterval": "1h",
            "target": {"creationPolicy": "Owner", "deletionPolicy": "Retain"},
        })
    );

    // A spec-level rule: the real server's wording, through kubectl's stderr.
    let no_data = k.file("no-data.yaml", NO_DATA);
    let (ok, _, err) = k.run(&["apply", "-f", &no_data]).await;
    assert!(!ok);
    assert!(
        err.contains(
            "The Vault \"empty\" is invalid: spec: Invalid value: \"object\": either data or dataFrom should be specified"
        ),
        "{err}"
    );

    // Item- and field-level rules, and a list-level rule that fails to evaluate.
    let bad_items = k.file("bad-items.yaml", BAD_ITEMS);
    let (ok, _, err) = k.run(&["apply", "-f", &bad_items]).await;
    assert!(!ok);
    for line in [
        "spec.data[0]: Invalid value: \"object\": secretKey must be lower case",
        "spec.data[1].secretKey: Invalid value: \"string\": secretKey must be a valid key",
    ] {
        assert!(err.contains(line), "{line} not in {err}");
    }

    // Through kube-rs: the Status, its message and causes.
    let client = server.client().await;
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Vault");
    let vaults: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "vaults"),
    );
    let object = |name: &str, spec: Value| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Vault",
            "metadata": {"name": name}, "spec": spec}))
        .unwrap()
    };
    let status = |result: kube::Result<DynamicObject>| match result.unwrap_err() {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other:?}"),
    };
    let pp = PostParams::default();
    let s = status(vaults.create(&pp, &object("x", json!({}))).await);
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        s.message,
        "Vault.example.com \"x\" is invalid: spec: Invalid value: \"object\": either data or dataFrom should be specified"
    );
    let details = s.details.unwrap();
    assert_eq!(
        (details.kind.as_str(), details.group.as_str()),
        ("Vault", "example.com")
    );
    assert_eq!(details.causes.len(), 1);
    assert_eq!(details.causes[0].reason, "FieldValueInvalid");
    assert_eq!(details.causes[0].field, "spec");
    assert_eq!(
        details.causes[0].message,
        "Invalid value: \"object\": either data or dataFrom should be specified"
    );

    // reason + fieldPath + messageExpression; a root-level rule; an evaluation error.
    let s = status(
        vaults
            .create(
                &pp,
                &object(
                    "reserved",
                    json!({"dataFrom": [{}], "refreshInterval": "0s"}),
                ),
            )
            .await,
    );
    assert_eq!(
        s.message,
        "Vault.example.com \"reserved\" is invalid: [<nil>: Invalid value: \"object\": the name is reserved, spec.refreshInterval: Forbidden: refreshInterval 0s is not allowed]"
    );
    let causes = s.details.unwrap().causes;
    assert_eq!(causes[1].reason, "FieldValueForbidden");
    assert_eq!(causes[1].field, "spec.refreshInterval");
    let s = status(
        vaults
            .create(&pp, &object("nokey", json!({"data": [{"secretKey": "a"}]})))
            .await,
    );
    assert_eq!(
        s.message,
        "Vault.example.com \"nokey\" is invalid: spec.data: Invalid value: \"array\": no such key: key evaluating rule: self.all(d, d.remoteRef.key != '')"
    );
    // A schema error keeps the rules from running, as upstream.
    let s = status(
        vaults
            .create(&pp, &object("typed", json!({"refreshInterval": 5})))
            .await,
    );
    assert_eq!(
        s.message,
        "Vault.example.com \"typed\" is invalid: [spec.refreshInterval: Invalid value: \"integer\": spec.refreshInterval in body must be of type string: \"integer\", <nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]"
    );

    // A transition rule runs on update, with the old object.
    let changed = k.file(
        "changed.yaml",
        &format!("{VALID}  target: {{creationPolicy: Merge}}\n"),
    );
    let (ok, _, err) = k.run(&["apply", "-f", &changed]).await;
    assert!(!ok);
    assert!(
        err.contains("spec: Invalid value: \"object\": creationPolicy is immutable"),
        "{err}"
    );

    // A CRD whose rule does not compile is refused.
    let mut broken = vault_crd();
    broken["metadata"]["name"] = json!("brokens.example.com");
    broken["spec"]["names"] = json!({"plural": "brokens", "kind": "Broken"});
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {
        "type": "object", "x-kubernetes-validations": [{"rule": "self.a ==", "message": "m"}]}}}});
    broken["spec"]["versions"] =
        json!([{"name": "v1", "served": true, "storage": true, "schema": schema}]);
    let broken_file = k.file("broken.json", &broken.to_string());
    let (ok, _, err) = k.run(&["apply", "-f", &broken_file]).await;
    assert!(!ok);
    assert!(
        err.contains(
            "The CustomResourceDefinition \"brokens.example.com\" is invalid: spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.a ==\", Message:\"m\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:"
        ),
        "{err}"
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let s = match crds
        .create(&pp, &serde_json::from_value(broken).unwrap())
        .await
        .unwrap_err()
    {
        kube::Error::Api(status) => status,
        other => panic!("{other:?}"),
    };
    assert_eq!(s.code, 422);
    assert!(s.message.contains("compilation failed"), "{}", s.message);
    assert!(crds.get_opt("brokens.example.com").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_served_in_two_versions() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(vault_crd()).unwrap(),
    )
    .await
    .unwrap();
    let api = |version: &str| -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("example.com", version, "Vault");
        Api::namespaced_with(
            client.clone(),
            "default",
            &ApiResource::from_gvk_with_plural(&gvk, "vaults"),
        )
    };
    let (v1, beta) = (api("v1"), api("v1beta1"));
    let object = |version: &str, name: &str| -> DynamicObject {
        serde_json::from_value(
            json!({"apiVersion": format!("example.com/{version}"), "kind": "Vault",
            "metadata": {"name": name}, "spec": {"dataFrom": [{"extract": {"key": "k"}}]}}),
        )
        .unwrap()
    };

    // Created through v1beta1 (its schema's defaults), read through v1.
    let created = beta
        .create(&PostParams::default(), &object("v1beta1", "a"))
        .await
        .unwrap();
    assert_eq!(
        created.types.as_ref().unwrap().api_version,
        "example.com/v1beta1"
    );
    assert_eq!(created.data["spec"]["refreshInterval"], "30m");
    let read = v1.get("a").await.unwrap();
    assert_eq!(read.types.as_ref().unwrap().api_version, "example.com/v1");
    assert_eq!(read.data["spec"]["refreshInterval"], "30m");
    // The v1beta1 schema validates v1beta1 writes.
    let mut bad = object("v1beta1", "b");
    bad.data["spec"] = json!({});
    assert!(beta.create(&PostParams::default(), &bad).await.is_err());

    // Lists in both versions.
    for (api, version) in [(&v1, "v1"), (&beta, "v1beta1")] {
        let list = api.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), 1);
        assert_eq!(
            list.items[0].types.as_ref().unwrap().api_version,
            format!("example.com/{version}")
        );
    }

    // Watches in both versions see an object created through the other one.
    let rv = beta
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut beta_events = beta
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    let mut v1_events = v1
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    v1.create(&PostParams::default(), &object("v1", "c"))
        .await
        .unwrap();
    for (events, version) in [(&mut beta_events, "v1beta1"), (&mut v1_events, "v1")] {
        match events.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(o) => {
                assert_eq!(o.metadata.name.as_deref(), Some("c"));
                assert_eq!(
                    o.types.unwrap().api_version,
                    format!("example.com/{version}")
                );
                // Written through v1: v1's default.
                assert_eq!(o.data["spec"]["refreshInterval"], "1h");
            }
            other => panic!("{other:?}"),
        }
    }

    // Updating the CRD updates the schema it serves; a rule that does not compile is
    // refused on update too.
    let default_at = "/spec/versions/1/schema/openAPIV3Schema/properties/spec/properties/refreshInterval/default";
    let patch = |value: Value| -> Patch<Value> {
        Patch::Json(
            serde_json::from_value(json!([{"op": "replace", "path": default_at, "value": value}]))
                .unwrap(),
        )
    };
    crds.patch(
        "vaults.example.com",
        &PatchParams::default(),
        &patch(json!("2h")),
    )
    .await
    .unwrap();
    let created = v1
        .create(&PostParams::default(), &object("v1", "f"))
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["refreshInterval"], "2h");
    let rules_at =
        "/spec/versions/1/schema/openAPIV3Schema/properties/spec/x-kubernetes-validations/0/rule";
    let broken: Patch<Value> = Patch::Json(
        serde_json::from_value(
            json!([{"op": "replace", "path": rules_at, "value": "has(self.data"}]),
        )
        .unwrap(),
    );
    match crds
        .patch("vaults.example.com", &PatchParams::default(), &broken)
        .await
        .unwrap_err()
    {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422);
            assert!(
                status.message.contains(
                    "spec.versions[1].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"has(self.data\""
                ),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }
    v1.delete("f", &Default::default()).await.unwrap();

    // kubectl: the short name resolves to the preferred version, v1, though v1beta1 is
    // listed first; a v1beta1 manifest is applied through v1beta1 and its schema.
    if kubectl().is_none() {
        return;
    }
    let tmp = temp_dir("crd-versions");
    let k = Kubectl::new(&server, tmp.path());
    let table = k.ok(&["get", "vlt"]).await;
    assert!(
        table.starts_with("NAME") && table.contains("a") && table.contains("c"),
        "{table}"
    );
    assert_eq!(
        k.ok(&["get", "vlt", "a", "-o", "jsonpath={.apiVersion}"])
            .await,
        "example.com/v1"
    );
    let manifest = k.file(
        "beta.yaml",
        "apiVersion: example.com/v1beta1\nkind: Vault\nmetadata:\n  name: d\nspec:\n  dataFrom: [{}]\n",
    );
    assert_eq!(
        k.ok(&["apply", "-f", &manifest]).await.trim(),
        "vault.example.com/d created"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "vaults.v1beta1.example.com",
            "d",
            "-o",
            "jsonpath={.apiVersion} {.spec.refreshInterval}"
        ])
        .await,
        "example.com/v1beta1 30m"
    );
    let bad = k.file(
        "beta-bad.yaml",
        "apiVersion: example.com/v1beta1\nkind: Vault\nmetadata:\n  name: e\nspec:\n  refreshInterval: 1m\n",
    );
    let (ok, _, err) = k.run(&["apply", "-f", &bad]).await;
    assert!(!ok);
    assert!(
        err.contains(
            "spec: Invalid value: \"object\": either data or dataFrom should be specified"
        ),
        "{err}"
    );
}
