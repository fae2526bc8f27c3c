//! SealedSecret scenarios against the test API server (spec §3.3–§3.6): the controller runs
//! in-process, with the chart's flags where they matter.

mod common;

use std::collections::BTreeMap;

use common::*;
use gitseal_api::SealedSecret;
use gitseal_crypto::sealed::Scope;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_follows_its_sealed_secret_through_its_life() {
    let cluster = Cluster::start().await;
    let controller = cluster.controller("replica-1", &[]).await;
    let cert = certificate(&controller).await;

    let mut object = sealed_secret(&cert, "db", &[("password", "s3cr3t"), ("user", "admin")]);
    object["spec"]["template"]["type"] = json!("kubernetes.io/basic-auth");
    object["spec"]["template"]["metadata"]["labels"] = json!({"app": "db"});
    object["spec"]["template"]["metadata"]["annotations"] = json!({"note": "from git"});
    object["spec"]["template"]["data"] =
        json!({"url": "postgres://{{ .user }}:{{ .password }}@db:5432/app"});
    let ss = cluster.create(object).await;

    // Created: data, type, labels, annotations, ownerReference.
    let secret = secret_with(&cluster, "db", "password", "s3cr3t").await;
    let data = secret.data.as_ref().unwrap();
    assert_eq!(data["user"].0, b"admin");
    assert_eq!(data["url"].0, b"postgres://admin:s3cr3t@db:5432/app");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(secret.labels()["app"], "db");
    assert_eq!(secret.annotations()["note"], "from git");
    let owner = &secret.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("SealedSecret", "db", Some(true))
    );
    assert_eq!(Some(&owner.uid), ss.meta().uid.as_ref());
    let ss = synced(&cluster, "db", "True").await;
    assert_eq!(
        ss.status.unwrap().observed_generation,
        ss.metadata.generation
    );
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NS);
    let reasons: Vec<_> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.contains(&"Unsealed".to_owned()), "{reasons:?}");

    // Updated SealedSecret → updated Secret.
    let items = sealed_items(
        &cert,
        Scope::Strict,
        NS,
        "db",
        &[("password", "n3w"), ("user", "admin")],
    );
    cluster.set_items("db", items).await;
    let secret = secret_with(&cluster, "db", "password", "n3w").await;
    assert_eq!(
        secret.data.as_ref().unwrap()["url"].0,
        b"postgres://admin:n3w@db:5432/app"
    );

    // A hand edit of the Secret is reverted.
    let secrets = cluster.secrets(NS);
    let patch = json!({"data": {"password": "aGFja2Vk"}, "metadata": {"labels": {"app": "evil"}}});
    secrets
        .patch("db", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    common::wait_for("the edit reverted", || async {
        let s = secrets.get("db").await.ok()?;
        let reverted = s.data.as_ref()?["password"].0 == b"n3w" && s.labels()["app"] == "db";
        reverted.then_some(())
    })
    .await;

    // A deleted Secret is recreated.
    secrets
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    let recreated = secret_with(&cluster, "db", "password", "n3w").await;
    assert_ne!(recreated.uid(), secret.uid());

    // Deleting the SealedSecret garbage-collects the Secret (ownerReference).
    cluster
        .sealed_secrets()
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_for("the Secret to go", || async {
        secrets.get_opt("db").await.ok()?.is_none().then_some(())
    })
    .await;
    // ... and its condition_info series goes too.
    common::wait_for("the condition_info series to go", || async {
        let text = metrics(&controller).await;
        (!text.contains("condition_info{namespace=\"prod\",name=\"db\"")).then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_scope_is_reported_on_the_object() {
    let cluster = Cluster::start().await;
    let controller = cluster.controller("replica-1", &[]).await;
    let cert = certificate(&controller).await;
    // Sealed for another namespace: the strict label does not match.
    let mut object = sealed_secret(&cert, "api", &[("token", "t0k3n")]);
    object["spec"]["encryptedData"] =
        sealed_items(&cert, Scope::Strict, "other", "api", &[("token", "t0k3n")]);
    cluster.create(object).await;
    let ss = synced(&cluster, "api", "False").await;
    let condition = &ss.status.unwrap().conditions.unwrap()[0];
    assert_eq!(
        condition.message.as_deref(),
        Some("no key could decrypt secret (token)")
    );
    assert!(cluster.secrets(NS).get_opt("api").await.unwrap().is_none());
    let text = metrics(&controller).await;
    assert!(
        metric(
            &text,
            "sealed_secrets_controller_unseal_errors_total{reason=\"unseal\",namespace=\"prod\"}"
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "sealed_secrets_controller_condition_info{namespace=\"prod\",name=\"api\",condition=\"Synced\",ss_app_kubernetes_io_instance=\"\"}"
        ),
        -1.0
    );

    // Cluster-wide and namespace-wide scopes come from the object's own annotations.
    let mut wide = sealed_secret(&cert, "wide", &[]);
    wide["metadata"]["annotations"] = json!({"sealedsecrets.bitnami.com/namespace-wide": "true"});
    wide["spec"]["encryptedData"] = sealed_items(
        &cert,
        Scope::NamespaceWide,
        NS,
        "renamed",
        &[("k", "ns-wide")],
    );
    cluster.create(wide).await;
    secret_with(&cluster, "wide", "k", "ns-wide").await;

    // The failures counted against "api" are forgotten once it is deleted.
    assert!(!controller.context.retries.is_empty());
    cluster
        .sealed_secrets()
        .delete("api", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_for("the failure count of a deleted object to go", || async {
        controller.context.retries.is_empty().then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_secrets_are_refused_patched_or_taken_over_as_annotated() {
    let cluster = Cluster::start().await;
    let controller = cluster.controller("replica-1", &[]).await;
    let cert = certificate(&controller).await;
    let secrets = cluster.secrets(NS);
    let existing = |name: &str, annotations: serde_json::Value| {
        serde_json::from_value::<Secret>(json!({
            "metadata": {"name": name, "namespace": NS, "annotations": annotations},
            "data": {"keep": "a2VlcA==", "password": "b2xk"}
        }))
        .unwrap()
    };
    for (name, annotations) in [
        ("plain", json!({})),
        (
            "patched",
            json!({"sealedsecrets.bitnami.com/patch": "true"}),
        ),
        (
            "managed",
            json!({"sealedsecrets.bitnami.com/managed": "true"}),
        ),
    ] {
        secrets
            .create(&PostParams::default(), &existing(name, annotations))
            .await
            .unwrap();
        cluster
            .create(sealed_secret(&cert, name, &[("password", "new")]))
            .await;
    }
    // Unmanaged: refused, untouched.
    let ss = synced(&cluster, "plain", "False").await;
    assert_eq!(
        ss.status.unwrap().conditions.unwrap()[0].message.as_deref(),
        Some("Resource \"plain\" already exists and is not managed by SealedSecret")
    );
    assert_eq!(
        secrets.get("plain").await.unwrap().data.unwrap()["password"].0,
        b"old"
    );
    // Patch: merged, other keys survive, no ownership taken.
    let patched = secret_with(&cluster, "patched", "password", "new").await;
    assert_eq!(patched.data.as_ref().unwrap()["keep"].0, b"keep");
    assert!(patched.owner_references().is_empty());
    // Managed: replaced and owned.
    let managed = secret_with(&cluster, "managed", "password", "new").await;
    assert!(!managed.data.as_ref().unwrap().contains_key("keep"));
    assert_eq!(managed.owner_references()[0].name, "managed");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_set_owner_references_keeps_the_secret() {
    let cluster = Cluster::start().await;
    let controller = cluster.controller("replica-1", &[]).await;
    let cert = certificate(&controller).await;
    let mut object = sealed_secret(&cert, "kept", &[("k", "v")]);
    object["spec"]["template"]["metadata"]["annotations"] = json!({
        "sealedsecrets.bitnami.com/skip-set-owner-references": "true",
        "sealedsecrets.bitnami.com/managed": "true"
    });
    cluster.create(object).await;
    let secret = secret_with(&cluster, "kept", "k", "v").await;
    assert!(secret.owner_references().is_empty());
    synced(&cluster, "kept", "True").await;
    let series = "condition_info{namespace=\"prod\",name=\"kept\"";
    assert!(metrics(&controller).await.contains(series));
    cluster
        .sealed_secrets()
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    // Wait until the controller has seen the deletion: its watch drops the SealedSecret's
    // condition_info series when the Delete event arrives. Only then is "the Secret
    // stays" a statement about the controller, not about how fast it is.
    common::wait_for("the controller to see the deletion", || async {
        let text = metrics(&controller).await;
        (!text.contains(series)).then_some(())
    })
    .await;
    assert!(cluster.secrets(NS).get_opt("kept").await.unwrap().is_some());
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_keys_seal_new_secrets_and_old_ones_still_open() {
    let cluster = Cluster::start().await;
    let controller = cluster
        .controller("replica-1", &["--key-renew-period=3s"])
        .await;
    let old = certificate(&controller).await;
    cluster
        .create(sealed_secret(&old, "before", &[("k", "old-key")]))
        .await;
    secret_with(&cluster, "before", "k", "old-key").await;
    let new = common::wait_for("a renewed key", || async {
        let cert = certificate(&controller).await;
        (cert.der() != old.der()).then_some(cert)
    })
    .await;
    // Both SealedSecrets decrypt: the old key stays in use, and no key Secret is deleted.
    cluster
        .create(sealed_secret(&old, "old-cert", &[("k", "still-old")]))
        .await;
    cluster
        .create(sealed_secret(&new, "new-cert", &[("k", "new")]))
        .await;
    secret_with(&cluster, "old-cert", "k", "still-old").await;
    secret_with(&cluster, "new-cert", "k", "new").await;
    let keys = cluster
        .secrets(CONTROLLER_NS)
        .list(&ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key=active"))
        .await
        .unwrap()
        .items;
    assert!(keys.len() >= 2, "{} key Secrets", keys.len());
    for key in &keys {
        assert_eq!(key.type_.as_deref(), Some("kubernetes.io/tls"));
        assert!(key.name_any().starts_with("sealed-secrets-key"));
        let data = key.data.as_ref().unwrap();
        assert!(
            data["tls.key"]
                .0
                .starts_with(b"-----BEGIN RSA PRIVATE KEY-----")
        );
    }
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_spends_no_rsa_on_secrets_that_are_up_to_date() {
    let cluster = Cluster::start().await;
    let first = cluster.controller("replica-1", &[]).await;
    let cert = certificate(&first).await;
    for i in 0..10 {
        let name = format!("s{i}");
        cluster
            .create(sealed_secret(
                &cert,
                &name,
                &[("a", "1"), ("b", "2"), ("c", "3")],
            ))
            .await;
    }
    for i in 0..10 {
        synced(&cluster, &format!("s{i}"), "True").await;
    }
    assert!(
        metric(
            &metrics(&first).await,
            "gitseal_controller_rsa_operations_total"
        ) >= 30.0
    );
    // The key's age, for a "renewal overdue" alert: made just now, renewed every 30 days.
    let text = metrics(&first).await;
    let made = metric(&text, "gitseal_controller_latest_key_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - 86400.0..=now + 60.0).contains(&made),
        "newest key made at {made}, now {now}"
    );
    assert_eq!(
        metric(&text, "gitseal_controller_key_renewal_period_seconds"),
        720.0 * 3600.0
    );
    first.stop().await;

    let second = cluster.controller("replica-2", &[]).await;
    let text = common::wait_for("ten reconciles after the restart", || async {
        let text = metrics(&second).await;
        (metric(&text, "sealed_secrets_controller_unseal_requests_total") >= 10.0).then_some(text)
    })
    .await;
    assert_eq!(
        metric(&text, "gitseal_controller_rsa_operations_total"),
        0.0,
        "{text}"
    );

    // An edit is still caught after the restart, and costs RSA work again.
    cluster
        .secrets(NS)
        .patch(
            "s3",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"a": "eA=="}})),
        )
        .await
        .unwrap();
    secret_with(&cluster, "s3", "a", "1").await;
    assert!(
        metric(
            &metrics(&second).await,
            "gitseal_controller_rsa_operations_total"
        ) >= 3.0
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_among_replicas_and_fail_over() {
    let cluster = Cluster::start().await;
    let flags = ["--leader-election-duration=2s"];
    let a = cluster.controller("replica-a", &flags).await;
    let cert = certificate(&a).await;
    let b = cluster.controller("replica-b", &flags).await;
    common::wait_for("one leader", || async {
        (*a.leading.borrow() != *b.leading.borrow()).then_some(())
    })
    .await;
    // Both serve the same certificate.
    assert_eq!(certificate(&b).await.der(), cert.der());
    let (leader, follower) = if *a.leading.borrow() { (a, b) } else { (b, a) };
    cluster
        .create(sealed_secret(&cert, "one", &[("k", "1")]))
        .await;
    secret_with(&cluster, "one", "k", "1").await;

    // The leader dies without releasing its Lease: the follower takes over once it expires.
    leader.kill();
    common::wait_for("the follower to lead", || async {
        (*follower.leading.borrow()).then_some(())
    })
    .await;
    cluster
        .create(sealed_secret(&cert, "two", &[("k", "2")]))
        .await;
    secret_with(&cluster, "two", "k", "2").await;
    for label in [gitseal_api::SEALING_KEY_LABEL, "gitseal.dev/age-key"] {
        let keys = cluster
            .secrets(CONTROLLER_NS)
            .list(&ListParams::default().labels(label))
            .await
            .unwrap()
            .items;
        assert_eq!(
            keys.len(),
            1,
            "only the first leader generated a {label} key"
        );
    }
    follower.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_and_dropped_watches_converge() {
    let cluster = Cluster::start().await;
    let controller = cluster.controller("replica-1", &[]).await;
    let cert = certificate(&controller).await;
    cluster
        .server
        .fail_next(3, 500, Some("create"), Some("secrets"));
    cluster
        .server
        .fail_next(2, 409, Some("patch"), Some("sealedsecrets"));
    cluster
        .server
        .fail_next(2, 503, Some("get"), Some("secrets"));
    for i in 0..20 {
        cluster
            .create(sealed_secret(
                &cert,
                &format!("f{i}"),
                &[("k", &i.to_string())],
            ))
            .await;
        if i == 10 {
            cluster.server.close_watches();
        }
    }
    cluster.server.expire_resource_versions();
    for i in 0..20 {
        secret_with(&cluster, &format!("f{i}"), "k", &i.to_string()).await;
        synced(&cluster, &format!("f{i}"), "True").await;
    }
    assert_eq!(cluster.server.pending_faults(), 0);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_speaks_upstreams_protocol() {
    let cluster = Cluster::start().await;
    let controller = cluster
        .controller("replica-1", &["--rate-limit=1", "--rate-limit-burst=2"])
        .await;
    let cert = certificate(&controller).await;
    let base = format!("http://{}", controller.api_addr);
    let http = reqwest::Client::new();

    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let pem = http
        .get(format!("{base}/v1/cert.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(pem.headers()["content-type"], "application/x-pem-file");

    let good = sealed_secret(&cert, "v", &[("k", "v")]);
    let mut bad = good.clone();
    bad["metadata"]["name"] = json!("renamed");
    let post = |path: &str, body: String, client: &str| {
        http.post(format!("{base}{path}"))
            .header("x-forwarded-for", client)
            .body(body)
            .send()
    };
    assert_eq!(
        post("/v1/verify", good.to_string(), "a")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post("/v1/verify", bad.to_string(), "a")
            .await
            .unwrap()
            .status(),
        409
    );
    assert_eq!(
        post("/v1/verify", good.to_string(), "a")
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        post("/v1/verify", good.to_string(), "b")
            .await
            .unwrap()
            .status(),
        200
    );

    // Rotate: re-sealed to the newest key, template data baked in, no apiVersion/kind.
    let mut templated = good.clone();
    templated["spec"]["template"]["data"] = json!({"t": "x-{{ .k }}"});
    let response = post("/v1/rotate", templated.to_string(), "c")
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(rotated.get("apiVersion").is_none());
    assert!(rotated["spec"]["template"].get("data").is_none());
    let keys = controller.context.keyring.snapshot();
    let mut rotated_ss = rotated.clone();
    rotated_ss["apiVersion"] = json!("bitnami.com/v1alpha1");
    rotated_ss["kind"] = json!("SealedSecret");
    let rotated_ss: SealedSecret = serde_json::from_value(rotated_ss).unwrap();
    let opened = gitseal_controller::unseal::unseal(&rotated_ss, &keys, None, true).unwrap();
    let values: BTreeMap<_, _> = opened
        .opened
        .data
        .iter()
        .map(|(k, v)| (k.clone(), v.to_vec()))
        .collect();
    assert_eq!(values["k"], b"v");
    assert_eq!(values["t"], b"x-v");
    assert_eq!(
        post("/v1/rotate", bad.to_string(), "c")
            .await
            .unwrap()
            .status(),
        500
    );

    let text = metrics(&controller).await;
    for name in [
        "sealed_secrets_controller_build_info",
        "sealed_secrets_controller_unseal_requests_total",
        "sealed_secrets_controller_http_requests_total{path=\"/v1/verify\",code=\"429\",method=\"POST\"}",
        "sealed_secrets_controller_http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_v1_data_and_immutable_secrets() {
    let cluster = Cluster::start().await;
    let controller = cluster.controller("replica-1", &[]).await;
    let cert = certificate(&controller).await;
    let inner = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"labels": {"legacy": "yes"}}, "data": {"k": "djE="}});
    let blob = gitseal_crypto::sealed::seal(
        &cert.public_key().unwrap(),
        &Scope::Strict.label(NS, "legacy"),
        inner.to_string().as_bytes(),
    )
    .unwrap();
    cluster
        .create(json!({
            "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
            "metadata": {"name": "legacy", "namespace": NS},
            "spec": {"data": blob, "encryptedData": {}}
        }))
        .await;
    let secret = secret_with(&cluster, "legacy", "k", "v1").await;
    assert_eq!(secret.labels()["legacy"], "yes");

    let mut object = sealed_secret(&cert, "frozen", &[("k", "first")]);
    object["spec"]["template"]["immutable"] = json!(true);
    cluster.create(object).await;
    let secret = secret_with(&cluster, "frozen", "k", "first").await;
    assert_eq!(secret.immutable, Some(true));
    let items = sealed_items(&cert, Scope::Strict, NS, "frozen", &[("k", "second")]);
    cluster.set_items("frozen", items).await;
    let ss = synced(&cluster, "frozen", "False").await;
    let message = ss.status.unwrap().conditions.unwrap()[0]
        .message
        .clone()
        .unwrap();
    assert!(message.contains("immutable"), "{message}");
    let data = cluster
        .secrets(NS)
        .get("frozen")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(data["k"], ByteString(b"first".to_vec()));
    controller.stop().await;
}
