//! Server-side printing: `kubectl get` asks for a `meta.k8s.io` Table and prints the
//! columns the server defines, a CRD's `additionalPrinterColumns` (evaluated with their
//! JSONPaths, `-o wide` adding those of priority > 0) or the columns of built-in kinds;
//! clients that do not ask for a Table still get objects.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use gitseal_testkit::TestServer;

mod common;
use common::{Kubectl, kubectl};
use serde_json::{Value, json};

/// The lines of kubectl's table output with runs of spaces collapsed to one.
fn lines(output: &str) -> Vec<String> {
    output
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// `externalsecrets.example.com` (short name `es`): `v1` with printer columns from spec,
/// from a condition picked by a filter, a date, and a wide-only integer; `v1beta1`
/// without columns.
fn crd() -> Value {
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "refreshInterval": {"type": "string"},
            "replicas": {"type": "integer"},
            "secretStoreRef": {"type": "object", "properties": {"name": {"type": "string"}, "kind": {"type": "string"}}}}},
        "status": {"type": "object", "properties": {
            "refreshTime": {"type": "string", "format": "date-time"},
            "conditions": {"type": "array", "items": {"type": "object", "properties": {
                "type": {"type": "string"}, "status": {"type": "string"}, "reason": {"type": "string"}}}}}}}}});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "externalsecrets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "externalsecrets", "singular": "externalsecret", "kind": "ExternalSecret", "shortNames": ["es"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema,
                 "additionalPrinterColumns": [
                    {"name": "Store", "type": "string", "jsonPath": ".spec.secretStoreRef.name"},
                    {"name": "Refresh Interval", "type": "string", "jsonPath": ".spec.refreshInterval"},
                    {"name": "Status", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1},
                    {"name": "Last Sync", "type": "date", "jsonPath": ".status.refreshTime"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]},
                {"name": "v1beta1", "served": true, "storage": false, "schema": schema},
            ]
        }
    })
}

fn three_days_ago() -> String {
    let then = SystemTime::now() - Duration::from_secs(3 * 86_400);
    humantime::format_rfc3339_seconds(then).to_string()
}

fn external_secret(namespace: &str, name: &str, synced: bool) -> Value {
    let mut es = json!({
        "apiVersion": "example.com/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"refreshInterval": "1h", "replicas": 2, "secretStoreRef": {"name": "vault", "kind": "SecretStore"}},
    });
    if synced {
        es["status"] = json!({"refreshTime": three_days_ago(), "conditions": [
            {"type": "Synced", "status": "True", "reason": "Other"},
            {"type": "Ready", "status": "True", "reason": "SecretSynced"}]});
    }
    es
}

/// A GET with an explicit `Accept` header: the JSON body, or the error's code.
async fn raw_get(client: &kube::Client, path: &str, accept: &str) -> Result<Value, u16> {
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .unwrap();
    match client.request_text(request).await {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap()),
        Err(kube::Error::Api(status)) => Err(status.code),
        Err(other) => panic!("request failed: {other}"),
    }
}

const KUBECTL_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_prints_printer_columns_and_builtin_columns() {
    if kubectl().is_none() {
        return;
    }
    let server = TestServer::start().await.unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("gitseal-testkit-printing-")
        .tempdir()
        .unwrap();
    let k = Kubectl::new(&server, tmp.path());
    k.ok(&["apply", "-f", &k.file("crd.json", &crd().to_string())])
        .await;
    for ns in ["team-a", "team-b"] {
        k.ok(&["create", "namespace", ns]).await;
    }
    for (ns, name, synced) in [
        ("team-a", "db", true),
        ("team-a", "pending", false),
        ("team-b", "api", true),
    ] {
        let file = k.file(
            &format!("{ns}-{name}.json"),
            &external_secret(ns, name, synced).to_string(),
        );
        k.ok(&["apply", "-f", &file]).await;
    }

    // The plural in one namespace: the columns in order, values from spec and from the
    // Ready condition (not the first one), dates as ages, missing values as empty cells.
    let out = lines(&k.ok(&["get", "externalsecrets", "-n", "team-a"]).await);
    assert_eq!(
        out[0], "NAME STORE REFRESH INTERVAL STATUS READY LAST SYNC AGE",
        "{out:?}"
    );
    assert!(
        out[1].starts_with("db vault 1h SecretSynced True 3d "),
        "{out:?}"
    );
    assert!(out[2].starts_with("pending vault 1h "), "{out:?}");
    assert_eq!(out[2].split(' ').count(), 4, "{out:?}");
    assert_eq!(out.len(), 3);

    // The short name across namespaces: kubectl adds NAMESPACE from the rows' metadata.
    let out = lines(&k.ok(&["get", "es", "-A"]).await);
    assert_eq!(
        out[0],
        "NAMESPACE NAME STORE REFRESH INTERVAL STATUS READY LAST SYNC AGE"
    );
    assert!(
        out[1].starts_with("team-a db vault 1h SecretSynced True 3d "),
        "{out:?}"
    );
    assert!(
        out[3].starts_with("team-b api vault 1h SecretSynced True 3d "),
        "{out:?}"
    );

    // -o wide adds the columns of priority > 0.
    let out = lines(&k.ok(&["get", "es", "-n", "team-a", "-o", "wide"]).await);
    assert_eq!(
        out[0],
        "NAME STORE REFRESH INTERVAL STATUS READY REPLICAS LAST SYNC AGE"
    );
    assert!(
        out[1].starts_with("db vault 1h SecretSynced True 2 3d "),
        "{out:?}"
    );

    // One object, and a version without columns (Name and Age).
    let out = lines(&k.ok(&["get", "es", "db", "-n", "team-a"]).await);
    assert_eq!(out.len(), 2);
    assert!(
        out[1].starts_with("db vault 1h SecretSynced True 3d "),
        "{out:?}"
    );
    let out = lines(
        &k.ok(&["get", "externalsecrets.v1beta1.example.com", "-n", "team-a"])
            .await,
    );
    assert_eq!(out[0], "NAME AGE");
    assert!(out[1].starts_with("db "), "{out:?}");

    // get -w: the list, then a Table of one row per event, printed in the same columns.
    let mut watch = Command::new(kubectl().unwrap())
        .env("KUBECONFIG", &k.kubeconfig)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .args(["get", "es", "-n", "team-a", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || {
        tokio::task::block_in_place(|| rx.recv_timeout(Duration::from_secs(20)))
            .map(|l| lines(&l).remove(0))
            .expect("a line from kubectl get -w")
    };
    assert_eq!(
        next(),
        "NAME STORE REFRESH INTERVAL STATUS READY LAST SYNC AGE"
    );
    assert!(next().starts_with("db vault 1h SecretSynced True 3d "));
    assert!(next().starts_with("pending vault 1h "));
    let late = k.file(
        "late.json",
        &external_secret("team-a", "late", true).to_string(),
    );
    k.ok(&["apply", "-f", &late]).await;
    let line = next();
    assert!(
        line.starts_with("late vault 1h SecretSynced True 3d "),
        "{line}"
    );
    let _ = watch.kill();
    let _ = watch.wait();

    // Built-in kinds.
    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "team-a",
        "--from-literal=user=u",
        "--from-literal=password=p",
    ])
    .await;
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team-a",
        "--from-literal=a=b",
    ])
    .await;
    let out = lines(&k.ok(&["get", "secrets", "-n", "team-a"]).await);
    assert_eq!(out[0], "NAME TYPE DATA AGE");
    assert!(out[1].starts_with("creds Opaque 2 "), "{out:?}");
    let out = lines(&k.ok(&["get", "cm", "-n", "team-a"]).await);
    assert_eq!(out[0], "NAME DATA AGE");
    assert!(out[1].starts_with("settings 1 "), "{out:?}");
    let out = lines(&k.ok(&["get", "namespace", "team-b"]).await);
    assert_eq!(out[0], "NAME STATUS AGE");
    assert!(out[1].starts_with("team-b Active "), "{out:?}");
    k.ok(&["create", "serviceaccount", "robot", "-n", "team-a"])
        .await;
    let out = lines(&k.ok(&["get", "sa", "-n", "team-a"]).await);
    assert_eq!(out[0], "NAME SECRETS AGE");
    assert!(out[1].starts_with("robot 0 "), "{out:?}");
    let out = lines(&k.ok(&["get", "crd"]).await);
    assert_eq!(out[0], "NAME CREATED AT");
    assert!(
        out[1].starts_with("externalsecrets.example.com 20"),
        "{out:?}"
    );

    // Output that is not a Table is unaffected.
    let json: Value =
        serde_json::from_str(&k.ok(&["get", "es", "-n", "team-a", "-o", "json"]).await).unwrap();
    assert_eq!(json["items"][0]["spec"]["refreshInterval"], "1h");
    let names = k
        .ok(&[
            "get",
            "es",
            "-A",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .await;
    assert_eq!(names, "db late pending api");
}

#[tokio::test]
async fn table_answers_on_the_wire() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;
    let crds: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(
        client.clone(),
        &kube::api::ApiResource {
            group: "apiextensions.k8s.io".into(),
            version: "v1".into(),
            api_version: "apiextensions.k8s.io/v1".into(),
            kind: "CustomResourceDefinition".into(),
            plural: "customresourcedefinitions".into(),
        },
    );
    crds.create(&Default::default(), &serde_json::from_value(crd()).unwrap())
        .await
        .unwrap();
    let resource = kube::api::ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "ExternalSecret".into(),
        plural: "externalsecrets".into(),
    };
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client.clone(), "default", &resource);
    for (name, synced) in [("db", true), ("pending", false)] {
        let object = serde_json::from_value(external_secret("default", name, synced)).unwrap();
        api.create(&Default::default(), &object).await.unwrap();
    }
    let list = "/apis/example.com/v1/namespaces/default/externalsecrets";

    // kubectl's Accept: a meta.k8s.io/v1 Table with typed cells and metadata-only objects.
    let table = raw_get(&client, list, KUBECTL_ACCEPT).await.unwrap();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert!(table["metadata"]["resourceVersion"].is_string());
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Name",
            "Store",
            "Refresh Interval",
            "Status",
            "Ready",
            "Replicas",
            "Last Sync",
            "Age"
        ]
    );
    let name = &table["columnDefinitions"][0];
    assert_eq!(
        (&name["type"], &name["format"]),
        (&json!("string"), &json!("name"))
    );
    let replicas = &table["columnDefinitions"][5];
    assert_eq!(
        (&replicas["type"], &replicas["priority"]),
        (&json!("integer"), &json!(1))
    );
    for field in ["name", "type", "format", "description", "priority"] {
        assert!(
            table["columnDefinitions"][1].get(field).is_some(),
            "{field}"
        );
    }
    let cells = &table["rows"][0]["cells"];
    assert_eq!(
        cells.as_array().unwrap()[..7],
        [
            json!("db"),
            json!("vault"),
            json!("1h"),
            json!("SecretSynced"),
            json!("True"),
            json!(2),
            json!("3d")
        ]
    );
    let cells = &table["rows"][1]["cells"];
    assert_eq!(
        (&cells[0], &cells[3], &cells[4], &cells[6]),
        (&json!("pending"), &Value::Null, &Value::Null, &Value::Null)
    );
    let object = &table["rows"][0]["object"];
    assert_eq!(object["kind"], "PartialObjectMetadata");
    assert_eq!(object["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(object["metadata"]["namespace"], "default");
    assert!(object.get("spec").is_none());

    // includeObject, one object, v1beta1, and Accept types the server skips.
    let none = raw_get(
        &client,
        &format!("{list}?includeObject=None"),
        KUBECTL_ACCEPT,
    )
    .await
    .unwrap();
    assert_eq!(none["rows"][0]["object"], Value::Null);
    let full = raw_get(
        &client,
        &format!("{list}?includeObject=Object"),
        KUBECTL_ACCEPT,
    )
    .await
    .unwrap();
    assert_eq!(full["rows"][0]["object"]["kind"], "ExternalSecret");
    assert_eq!(full["rows"][0]["object"]["spec"]["replicas"], 2);
    assert_eq!(
        raw_get(
            &client,
            &format!("{list}?includeObject=All"),
            KUBECTL_ACCEPT
        )
        .await,
        Err(400)
    );
    let one = raw_get(&client, &format!("{list}/db"), KUBECTL_ACCEPT)
        .await
        .unwrap();
    assert_eq!(one["kind"], "Table");
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    assert!(one["metadata"]["resourceVersion"].is_string());
    let beta = raw_get(
        &client,
        list,
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
    )
    .await
    .unwrap();
    assert_eq!(beta["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(
        beta["rows"][0]["object"]["apiVersion"],
        "meta.k8s.io/v1beta1"
    );
    let other = raw_get(
        &client,
        list,
        "application/json;as=Table;v=v1;g=example.com,application/json",
    )
    .await
    .unwrap();
    assert_eq!(other["kind"], "ExternalSecretList");

    // A watch: one Table per event, the column definitions in the first only.
    let request = http::Request::get(format!("{list}?watch=true&timeoutSeconds=1"))
        .header(http::header::ACCEPT, KUBECTL_ACCEPT)
        .body(Vec::new())
        .unwrap();
    let events: Vec<Value> = client
        .request_text(request)
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["kind"], "Table");
    assert_eq!(
        events[0]["object"]["columnDefinitions"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    assert_eq!(events[0]["object"]["rows"][0]["cells"][1], "vault");
    assert_eq!(events[1]["object"]["columnDefinitions"], Value::Null);
    assert_eq!(events[1]["object"]["rows"][0]["cells"][0], "pending");

    // Paging: the Table carries continue.
    let page = raw_get(&client, &format!("{list}?limit=1"), KUBECTL_ACCEPT)
        .await
        .unwrap();
    assert_eq!(page["rows"].as_array().unwrap().len(), 1);
    assert!(
        page["metadata"]["continue"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    );

    // Plain JSON clients get objects.
    let items = api.list(&Default::default()).await.unwrap().items;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].data["spec"]["refreshInterval"], "1h");
    let plain = raw_get(&client, list, "application/json").await.unwrap();
    assert_eq!(plain["kind"], "ExternalSecretList");

    // Built-in kinds: Secret Type and Data.
    let secrets = "/api/v1/namespaces/default/secrets";
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "type": "Opaque", "data": {"a": "Yg=="}});
    let secrets_api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), "default");
    secrets_api
        .create(
            &Default::default(),
            &serde_json::from_value(secret).unwrap(),
        )
        .await
        .unwrap();
    let table = raw_get(&client, secrets, KUBECTL_ACCEPT).await.unwrap();
    let row = &table["rows"][0]["cells"];
    assert_eq!(
        (&row[0], &row[1], &row[2]),
        (&json!("s"), &json!("Opaque"), &json!(1))
    );
    assert!(!table.to_string().contains("Yg=="));
}
