//! Drop-in check against upstream data: the key Secret that Bitnami's controller generated
//! (verbatim from `../shared/fixtures`), values sealed by the real `kubeseal` with it, and
//! SealedSecrets in every scope, with a template and in the legacy `spec.data` form. The
//! controller adopts the key, serves its certificate, and produces the expected Secrets.

mod common;

use std::path::Path;

use base64::Engine;
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Waits for the Secret `namespace/name` and returns its data as text.
async fn secret_data(cluster: &Cluster, namespace: &str, name: &str) -> (Secret, Value) {
    let api = cluster.secrets(namespace);
    let secret = wait_for(&format!("Secret {namespace}/{name}"), || async {
        api.get_opt(name).await.ok()?
    })
    .await;
    let data: serde_json::Map<String, Value> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), json!(String::from_utf8_lossy(&v.0))))
        .collect();
    (secret, Value::Object(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_key_secret_and_kubeseal_output_unseal() {
    let shared = gitseal_tests::require_shared!();
    let fixtures = shared.join("fixtures/sealed-secrets");
    let cluster = Cluster::start().await;
    for ns in ["demo-ns", "team-a", "some-other-namespace", "my-namespace"] {
        cluster.namespace(ns).await;
    }
    // Bitnami's key Secret, exactly as its controller wrote it.
    let key_secret: Secret =
        serde_json::from_value(yaml(&fixtures.join("kseal-sealing-key-secret.yaml"))).unwrap();
    cluster
        .secrets(CONTROLLER_NS)
        .create(&PostParams::default(), &key_secret)
        .await
        .unwrap();
    // Renewal off: the adopted key stays the newest and is the one served.
    let controller = cluster
        .controller("replica-1", &["--key-renew-period=0"])
        .await;
    let served = reqwest::get(format!("http://{}/v1/cert.pem", controller.api_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expected_cert = std::fs::read_to_string(fixtures.join("kseal-sealing-cert.pem")).unwrap();
    assert_eq!(
        served.trim(),
        expected_cert.trim(),
        "the adopted key's certificate is served"
    );

    // Real kubeseal output (strict scope, my-namespace/my-secret).
    let vectors: Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("kseal-vectors.json")).unwrap())
            .unwrap();
    let vectors = vectors["vectors"].as_array().unwrap();
    let items: serde_json::Map<String, Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("item-{i}"), v["ciphertext_b64"].clone()))
        .collect();
    let kubeseal_output = json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "my-secret", "namespace": "my-namespace"},
        "spec": {"encryptedData": items, "template": {"metadata": {"name": "my-secret"}}}
    });
    let mut documents = vec![kubeseal_output];
    for file in [
        "synth-sealedsecret-strict-template.yaml",
        "synth-sealedsecret-namespace-wide.yaml",
        "synth-sealedsecret-cluster-wide.yaml",
        "synth-sealedsecret-legacy-v1-data.yaml",
    ] {
        documents.push(yaml(&fixtures.join(file)));
    }
    for document in documents {
        let namespace = document["metadata"]["namespace"]
            .as_str()
            .unwrap()
            .to_owned();
        let ss: gitseal_api::SealedSecret = serde_json::from_value(document).unwrap();
        Api::<gitseal_api::SealedSecret>::namespaced(cluster.client.clone(), &namespace)
            .create(&PostParams::default(), &ss)
            .await
            .unwrap();
    }

    let (_, data) = secret_data(&cluster, "my-namespace", "my-secret").await;
    for (i, vector) in vectors.iter().enumerate() {
        assert_eq!(
            data[format!("item-{i}")],
            vector["expected_plaintext"],
            "item-{i}"
        );
    }

    let expected = yaml(&fixtures.join("synth-sealedsecret-strict-template.expected-secret.json"));
    let (secret, data) = secret_data(&cluster, "demo-ns", "demo-secret").await;
    let expected_data: serde_json::Map<String, Value> = expected["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap();
            (k.clone(), json!(String::from_utf8(bytes).unwrap()))
        })
        .collect();
    assert_eq!(data, Value::Object(expected_data));
    assert_eq!(secret.type_.as_deref(), expected["type"].as_str());
    assert_eq!(
        json!(secret.metadata.labels),
        expected["metadata"]["labels"]
    );
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    let ss = Api::<gitseal_api::SealedSecret>::namespaced(cluster.client.clone(), "demo-ns")
        .get("demo-secret")
        .await
        .unwrap();
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("SealedSecret", "demo-secret", Some(true))
    );
    assert_eq!(Some(&owner.uid), ss.metadata.uid.as_ref());

    let (_, data) = secret_data(&cluster, "team-a", "any-name-works").await;
    assert_eq!(data, json!({"token": "shared-token"}));
    let (_, data) = secret_data(&cluster, "some-other-namespace", "copied-anywhere").await;
    assert_eq!(data, json!({"token": "cluster-token"}));
    let (_, data) = secret_data(&cluster, "my-namespace", "legacy-secret").await;
    assert_eq!(data, json!({"foo": "bar"}));
    controller.stop().await;
}
