//! `gitseal sops encrypt` and SopsSecrets: a SopsSecret is written with every mapping's
//! keys sorted and `mac_only_encrypted`, so that its MAC still verifies — with the real
//! sops 3.11.0 and with gitseal — once the API server has re-serialised it (keys sorted,
//! metadata added); any other file is encrypted as it was. And `--cluster`: the gitseal
//! controller's age recipient, fetched through the test API server's service proxy from
//! a real controller, which then makes the Secret with its MAC verified.
//!
//! The real-sops part is skipped with a notice without sops (`GITSEAL_SOPS`, or `sops` on
//! PATH), and fails under `GITSEAL_REQUIRE_TOOLS=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::Parser;
use gitseal_api::SopsSecret;
use gitseal_crypto::keys::age::AgeIdentities;
use gitseal_testkit::{TestServer, wait_for};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};

/// A SopsSecret in the operator's README style, every mapping's keys out of order, with
/// comments.
const UNSORTED: &str = "\
kind: SopsSecret
apiVersion: isindir.github.com/v1alpha3
metadata:
  name: app
spec:
  secretTemplates:
    # the database
    - name: app-db
      type: kubernetes.io/basic-auth
      stringData:
        username: admin
        password: s3cr3t-db
      labels:
        team: payments
    - name: app-api
      data:
        token: dG9rZW4tdmFsdWU=
      annotations:
        note: from-sops
";

/// The same document under another kind and apiVersion, indented as sops writes YAML (so
/// that it decrypts to itself byte for byte).
const OTHER: &str = "\
kind: Other
apiVersion: example.com/v1
metadata:
    name: app
spec:
    secretTemplates:
        # the database
        - name: app-db
          type: kubernetes.io/basic-auth
          stringData:
            username: admin
            password: s3cr3t-db
          labels:
            team: payments
        - name: app-api
          data:
            token: dG9rZW4tdmFsdWU=
          annotations:
            note: from-sops
";

/// Runs `gitseal sops args...` in `dir` (no `.sops.yaml` above it) with `env`.
fn gitseal_sops(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gitseal"))
        .current_dir(dir)
        .arg("sops")
        .args(args)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_RECIPIENTS")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .expect("run gitseal")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed ({:?}): {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A fresh temporary directory with an age identity in `keys.txt`; its recipient.
fn workspace() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::Builder::new()
        .prefix("gitseal-sops-secret-")
        .tempdir()
        .unwrap();
    let identity = AgeIdentities::generate();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, identity.to_text().as_bytes()).unwrap();
    let recipient = identity.recipients().remove(0);
    (dir, keys, recipient)
}

/// `value` with every object's keys in byte order: how the API server (Go's
/// `encoding/json` over a generic map) returns a custom resource. Written here rather than
/// taken from the code under test.
fn api_server_order(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map
                .into_iter()
                .map(|(k, v)| (k, api_server_order(v)))
                .collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(api_server_order).collect()),
        other => other,
    }
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

/// The keys of a YAML document's lines in order (`#` for a comment), up to `sops`.
fn keys_of(text: &str) -> Vec<&str> {
    let mut keys = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        let line = line.strip_prefix("- ").unwrap_or(line);
        let key = if line.starts_with('#') {
            "#"
        } else {
            line.split(':').next().unwrap()
        };
        keys.push(key);
        if key == "sops" {
            break;
        }
    }
    keys
}

#[test]
fn a_sops_secret_is_written_sorted_and_its_mac_survives_the_api_server() {
    let sops = gitseal_tests::tool("sops", "GITSEAL_SOPS");
    let (tmp, keys, recipient) = workspace();
    let dir = tmp.path();
    std::fs::write(dir.join("app.yaml"), UNSORTED).unwrap();
    let encrypted = ok(gitseal_sops(
        dir,
        &[
            "encrypt",
            "--age",
            &recipient,
            "--encrypted-suffix",
            "Templates",
            "app.yaml",
        ],
        &[],
    ));

    // Every mapping sorted (lists in order), comments kept before their entry, and
    // mac_only_encrypted on.
    assert_eq!(
        keys_of(&encrypted),
        [
            "apiVersion",
            "kind",
            "metadata",
            "name",
            "spec",
            "secretTemplates",
            "#",
            "labels",
            "team",
            "name",
            "stringData",
            "password",
            "username",
            "type",
            "annotations",
            "note",
            "data",
            "token",
            "name",
            "sops"
        ]
    );
    let document = yaml(&encrypted);
    assert_eq!(document["sops"]["mac_only_encrypted"], json!(true));
    assert_eq!(
        document["spec"]["secretTemplates"][1]["data"]["token"]
            .as_str()
            .map(|v| v.starts_with("ENC[")),
        Some(true)
    );
    // Stdout is the document only.
    assert!(encrypted.starts_with("apiVersion: isindir.github.com/v1alpha3\n"));

    // --mac-only-encrypted=false (or a creation rule's `mac_only_encrypted: false`) wins.
    let off = ok(gitseal_sops(
        dir,
        &[
            "encrypt",
            "--mac-only-encrypted=false",
            "--age",
            &recipient,
            "app.yaml",
        ],
        &[],
    ));
    assert_eq!(yaml(&off)["sops"].get("mac_only_encrypted"), None);
    std::fs::write(
        dir.join(".sops.yaml"),
        format!("creation_rules:\n  - age: {recipient}\n    mac_only_encrypted: false\n"),
    )
    .unwrap();
    let off = ok(gitseal_sops(dir, &["encrypt", "app.yaml"], &[]));
    assert_eq!(yaml(&off)["sops"].get("mac_only_encrypted"), None);
    std::fs::remove_file(dir.join(".sops.yaml")).unwrap();

    // As the API server returns it: JSON, keys sorted, metadata added.
    let mut stored = api_server_order(document);
    let metadata = stored["metadata"].as_object_mut().unwrap();
    for (k, v) in [
        ("namespace", json!("prod")),
        ("uid", json!("7d1c7a52-5a1e-4d1e-9a55-0c1b8a6f7e11")),
        ("resourceVersion", json!("42")),
        ("generation", json!(1)),
        ("creationTimestamp", json!("2026-01-01T00:00:00Z")),
    ] {
        metadata.insert(k.into(), v);
    }
    let stored = api_server_order(stored);
    std::fs::write(
        dir.join("stored.json"),
        serde_json::to_vec_pretty(&stored).unwrap(),
    )
    .unwrap();
    let key_env = [("SOPS_AGE_KEY_FILE", keys.as_path())];
    let plain = ok(gitseal_sops(dir, &["decrypt", "stored.json"], &key_env));
    let plain: Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(
        plain["spec"]["secretTemplates"][0]["stringData"]["password"],
        "s3cr3t-db"
    );
    if let Some(sops) = &sops {
        // The real sops checks the MAC (no --ignore-mac).
        let output = Command::new(sops)
            .current_dir(dir)
            .args(["decrypt", "stored.json"])
            .env("SOPS_AGE_KEY_FILE", &keys)
            .output()
            .unwrap();
        let real: Value = serde_json::from_str(&ok(output)).unwrap();
        assert_eq!(real, plain);
    }

    // Another document is encrypted as before: its order kept, no mac_only_encrypted...
    let other = OTHER;
    std::fs::write(dir.join("other.yaml"), other).unwrap();
    let encrypted = ok(gitseal_sops(
        dir,
        &["encrypt", "--age", &recipient, "other.yaml"],
        &[],
    ));
    assert_eq!(
        keys_of(&encrypted),
        [
            "kind",
            "apiVersion",
            "metadata",
            "name",
            "spec",
            "secretTemplates",
            "#",
            "name",
            "type",
            "stringData",
            "username",
            "password",
            "labels",
            "team",
            "name",
            "data",
            "token",
            "annotations",
            "note",
            "sops"
        ]
    );
    let document = yaml(&encrypted);
    assert_eq!(document["sops"].get("mac_only_encrypted"), None);
    std::fs::write(dir.join("other.enc.yaml"), &encrypted).unwrap();
    let plain = ok(gitseal_sops(dir, &["decrypt", "other.enc.yaml"], &key_env));
    assert_eq!(plain, other, "decrypts to the input, byte for byte");
    // ...so its MAC does not survive sorting: the control for the check above.
    std::fs::write(
        dir.join("other.json"),
        serde_json::to_vec(&api_server_order(document)).unwrap(),
    )
    .unwrap();
    let output = gitseal_sops(dir, &["decrypt", "other.json"], &key_env);
    assert_eq!(
        output.status.code(),
        Some(51),
        "MAC mismatch: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if let Some(sops) = &sops {
        let output = Command::new(sops)
            .current_dir(dir)
            .args(["decrypt", "other.json"])
            .env("SOPS_AGE_KEY_FILE", &keys)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(51), "MAC mismatch in real sops");
    }
}

/// Runs `gitseal sops args...` with `KUBECONFIG`, off the async runtime.
fn with_kubeconfig(
    dir: &Path,
    kubeconfig: &Path,
    args: &[&str],
) -> tokio::task::JoinHandle<Output> {
    let dir = dir.to_path_buf();
    let kubeconfig = kubeconfig.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        gitseal_sops(&dir, &args, &[("KUBECONFIG", &kubeconfig)])
    })
}

/// Creates the Service `kube-system/name` with `backend` as its one endpoint.
async fn service(
    server: &TestServer,
    client: &kube::Client,
    name: &str,
    backend: std::net::SocketAddr,
) {
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let service = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"ports": [{"name": "http", "port": 8080}]}}))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    server
        .add_service_endpoint("kube-system", name, backend)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_encrypts_to_the_controllers_age_recipient() {
    let (tmp, _, other_recipient) = workspace();
    let dir = tmp.path();
    std::fs::write(dir.join("app.yaml"), UNSORTED).unwrap();
    let server = TestServer::start().await.unwrap();
    let client = server.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in gitseal_api::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let config = gitseal_controller::Config::try_parse_from([
        "gitseal-controller",
        "--listen-addr=127.0.0.1:0",
        "--listen-metrics-addr=127.0.0.1:0",
        "--namespace=kube-system",
        "--key-size=2048",
    ])
    .unwrap();
    let controller = gitseal_controller::start(config, client.clone(), "cli".into())
        .await
        .unwrap();
    service(&server, &client, "gitseal", controller.api_addr).await;
    // A controller without an age key answers 503.
    let app = axum::Router::new().route(
        "/v1/age-recipient",
        axum::routing::get(|| async {
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "no age key yet\n",
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let keyless = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    service(&server, &client, "keyless", keyless).await;

    let encrypt = |extra: &[&str]| {
        let mut args = vec!["encrypt", "--cluster", "--encrypted-suffix", "Templates"];
        args.extend_from_slice(extra);
        args.push("app.yaml");
        with_kubeconfig(dir, &kubeconfig, &args)
    };

    // No Service under the default name: an error naming the flags, nothing on stdout.
    let output = encrypt(&[]).await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--cluster") && stderr.contains("--controller-name"),
        "{stderr}"
    );
    // A 503: the controller has no age key.
    let output = encrypt(&["--controller-name", "keyless"]).await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no age recipient (503)"), "{stderr}");

    // The real controller (retried until its leader has made the age key).
    let encrypted = wait_for("an encryption with --cluster", || async {
        let output = encrypt(&["--controller-name", "gitseal"]).await.unwrap();
        output
            .status
            .success()
            .then(|| String::from_utf8(output.stdout).unwrap())
    })
    .await;
    let document = yaml(&encrypted);
    // The controller's identity, from its age key Secret.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let own = secrets
        .list(&ListParams::default().labels("gitseal.dev/age-key=active"))
        .await
        .unwrap();
    assert_eq!(own.items.len(), 1);
    let identity = own.items[0].data.as_ref().unwrap()["identity.agekey"]
        .0
        .clone();
    let identity_text = String::from_utf8(identity).unwrap();
    let recipient = AgeIdentities::parse(&identity_text)
        .unwrap()
        .recipients()
        .remove(0);
    assert_eq!(document["sops"]["age"][0]["recipient"], json!(recipient));
    assert_eq!(document["sops"]["age"].as_array().unwrap().len(), 1);
    std::fs::write(dir.join("app.enc.yaml"), &encrypted).unwrap();
    let key_file = dir.join("controller.agekey");
    std::fs::write(&key_file, &identity_text).unwrap();
    let plain = tokio::task::spawn_blocking({
        let dir = dir.to_path_buf();
        move || {
            ok(gitseal_sops(
                &dir,
                &["decrypt", "app.enc.yaml"],
                &[("SOPS_AGE_KEY_FILE", &key_file)],
            ))
        }
    })
    .await
    .unwrap();
    assert!(plain.contains("password: s3cr3t-db"), "{plain}");

    // --cluster adds to the other key flags.
    let both = wait_for("--cluster with --age", || async {
        let output = encrypt(&["--controller-name", "gitseal", "--age", &other_recipient])
            .await
            .unwrap();
        output
            .status
            .success()
            .then(|| String::from_utf8(output.stdout).unwrap())
    })
    .await;
    let both: Vec<Value> = yaml(&both)["sops"]["age"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["recipient"].clone())
        .collect();
    assert_eq!(both, [json!(other_recipient), json!(recipient)]);

    // Applied, the controller makes the Secrets and verifies the MAC.
    let object: SopsSecret = serde_json::from_value(document).unwrap();
    let sops_secrets: Api<SopsSecret> = Api::namespaced(client.clone(), "default");
    sops_secrets
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    wait_for("the Secret app-db", || async {
        let secret = secrets.get_opt("app-db").await.ok()??;
        (secret.data?.get("password")?.0 == b"s3cr3t-db").then_some(())
    })
    .await;
    let mac = wait_for("the MacVerified condition", || async {
        let object = sops_secrets.get("app").await.ok()?;
        let conditions = object.status?.conditions?;
        let c = conditions.into_iter().find(|c| c.type_ == "MacVerified")?;
        Some((c.status, c.message.unwrap_or_default()))
    })
    .await;
    assert_eq!(mac.0, "True", "{}", mac.1);
    controller.stop().await;
}
