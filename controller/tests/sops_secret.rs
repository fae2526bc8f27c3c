//! SopsSecrets against the test API server (which stores custom resources as
//! kube-apiserver does: keys sorted), encrypted by the real sops 3.11.0 to the
//! controller's own age recipient, to a Flux-format key Secret, and to AWS KMS (a local
//! moto). Skipped with a notice without sops (`scripts/test.sh` installs it).

mod common;

use common::{CONTROLLER_NS, Cluster, NS, metric, metrics, no_values_outside_secrets, sops};
use gitseal_api::SopsSecret;
use gitseal_controller::Running;
use gitseal_testkit::wait_for;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The operator's README style: everything under `secretTemplates` encrypted, names
/// and types included; keys in the author's (unsorted) order.
const OPERATOR_STYLE: &str = "\
apiVersion: isindir.github.com/v1alpha3
kind: SopsSecret
metadata:
  name: app
spec:
  secretTemplates:
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

/// Only data and stringData encrypted, every map in sorted order.
const REGEX_STYLE: &str = "\
apiVersion: isindir.github.com/v1alpha3
kind: SopsSecret
metadata:
  name: sorted
spec:
  secretTemplates:
    - name: sorted-db
      stringData:
        password: s3cr3t-sorted
        username: admin
";

fn sops_secrets(cluster: &Cluster) -> Api<SopsSecret> {
    Api::namespaced(cluster.client.clone(), NS)
}

async fn apply(cluster: &Cluster, manifest: Value) {
    let object: SopsSecret = serde_json::from_value(manifest).unwrap();
    sops_secrets(cluster)
        .create(&PostParams::default(), &object)
        .await
        .expect("SopsSecret created");
}

/// Replaces `spec` and `sops` of the SopsSecret `name` with those of `manifest`.
async fn update(cluster: &Cluster, name: &str, manifest: &Value) {
    let patch = json!({"spec": manifest["spec"], "sops": manifest["sops"]});
    sops_secrets(cluster)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("SopsSecret patched");
}

async fn recipient(running: &Running) -> String {
    let url = format!("http://{}/v1/age-recipient", running.api_addr);
    wait_for("the age recipient", || async {
        let response = reqwest::get(&url).await.ok()?;
        response.status().is_success().then_some(())?;
        Some(response.text().await.ok()?.trim().to_owned())
    })
    .await
}

/// Waits for the Secret `NS/name` to hold `key` = `value`.
async fn secret_value(cluster: &Cluster, name: &str, key: &str, value: &str) -> Secret {
    wait_for(&format!("{name}[{key}] = {value}"), || async {
        let secret = cluster.secrets(NS).get_opt(name).await.ok()??;
        let got = secret.data.as_ref()?.get(key)?;
        (got.0 == value.as_bytes()).then_some(secret)
    })
    .await
}

/// Waits for the SopsSecret `name` to show `message` and returns it.
async fn status(cluster: &Cluster, name: &str, message: &str) -> SopsSecret {
    wait_for(&format!("{name}: {message}"), || async {
        let object = sops_secrets(cluster).get(name).await.ok()?;
        let status = object.status.as_ref()?;
        (status.message.as_deref() == Some(message)
            && status.observed_generation == object.metadata.generation)
            .then_some(object)
    })
    .await
}

fn condition(object: &SopsSecret, type_: &str) -> (String, String) {
    let conditions = object.status.as_ref().unwrap().conditions.as_ref().unwrap();
    let c = conditions.iter().find(|c| c.type_ == type_).unwrap();
    (c.status.clone(), c.message.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sops_secrets_become_secrets_with_the_clusters_age_key() {
    if gitseal_tests::tool("sops", "GITSEAL_SOPS").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start().await;
    let running = cluster.controller("a", &[]).await;
    let age = recipient(&running).await;
    assert!(age.starts_with("age1"), "{age}");
    // The key is a labelled Secret of the controller's namespace, in Flux's format.
    let keys = cluster.secrets(CONTROLLER_NS);
    let own = keys
        .list(&kube::api::ListParams::default().labels("gitseal.dev/age-key=active"))
        .await
        .unwrap();
    assert_eq!(own.items.len(), 1);
    assert!(
        own.items[0]
            .data
            .as_ref()
            .unwrap()
            .contains_key("identity.agekey")
    );

    // 1. The operator's style, keys unsorted: written, the MAC cannot verify and says so.
    let suffix = ["--age", &age, "--encrypted-suffix", "Templates"];
    let operator = sops(dir.path(), "app.yaml", OPERATOR_STYLE, &suffix, &[]);
    assert!(
        operator["spec"]["secretTemplates"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("ENC[")
    );
    apply(&cluster, operator).await;
    let db = secret_value(&cluster, "app-db", "password", "s3cr3t-db").await;
    assert_eq!(db.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(db.data.as_ref().unwrap()["username"].0, b"admin");
    assert_eq!(db.metadata.labels.as_ref().unwrap()["team"], "payments");
    let owner = &db.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("SopsSecret", Some(true))
    );
    let api = secret_value(&cluster, "app-api", "token", "token-value").await;
    assert_eq!(api.type_.as_deref(), Some("Opaque"));
    assert_eq!(
        api.metadata.annotations.as_ref().unwrap()["note"],
        "from-sops"
    );
    let app = status(&cluster, "app", "Healthy").await;
    assert_eq!(condition(&app, "Ready").0, "True");
    let (verified, why) = condition(&app, "MacVerified");
    assert_eq!(verified, "False");
    assert!(why.contains("every value was authenticated"), "{why}");
    assert_eq!(
        app.status.as_ref().unwrap().secrets,
        Some(vec!["app-db".to_owned(), "app-api".to_owned()])
    );

    // 2. Sorted maps: the MAC verifies, with and without mac_only_encrypted.
    let regex = ["--age", &age, "--encrypted-regex", "^(data|stringData)$"];
    let sorted = sops(dir.path(), "sorted.yaml", REGEX_STYLE, &regex, &[]);
    assert_eq!(sorted["spec"]["secretTemplates"][0]["name"], "sorted-db");
    apply(&cluster, sorted).await;
    secret_value(&cluster, "sorted-db", "password", "s3cr3t-sorted").await;
    let object = status(&cluster, "sorted", "Healthy").await;
    assert_eq!(condition(&object, "MacVerified").0, "True");
    // sops 3.11 takes mac_only_encrypted from .sops.yaml only.
    let only_dir = dir.path().join("only");
    std::fs::create_dir(&only_dir).unwrap();
    let rules = format!(
        "creation_rules:\n  - age: {age}\n    encrypted_regex: ^(data|stringData)$\n    mac_only_encrypted: true\n"
    );
    std::fs::write(only_dir.join(".sops.yaml"), rules).unwrap();
    let only = REGEX_STYLE.replace("sorted", "only");
    let only = sops(&only_dir, "only.yaml", &only, &[], &[]);
    assert_eq!(only["sops"]["mac_only_encrypted"], true);
    apply(&cluster, only).await;
    secret_value(&cluster, "only-db", "password", "s3cr3t-only").await;
    let object = status(&cluster, "only", "Healthy").await;
    assert_eq!(condition(&object, "MacVerified").0, "True");

    // 3. An update updates the Secrets; a template dropped takes its Secret with it.
    let changed = OPERATOR_STYLE.replace("s3cr3t-db", "s3cr3t-db-2");
    let changed = changed.split("    - name: app-api").next().unwrap();
    let changed = sops(dir.path(), "app.yaml", changed, &suffix, &[]);
    update(&cluster, "app", &changed).await;
    secret_value(&cluster, "app-db", "password", "s3cr3t-db-2").await;
    wait_for("app-api deleted", || async {
        let gone = cluster.secrets(NS).get_opt("app-api").await.ok()?.is_none();
        gone.then_some(())
    })
    .await;

    // 4. A tampered value: nothing written, Ready False, the Secret as it was.
    let mut tampered = changed.clone();
    let password = &mut tampered["spec"]["secretTemplates"][0]["stringData"]["password"];
    let text = password.as_str().unwrap().to_owned();
    let data = text.split("data:").nth(1).unwrap();
    let flipped = if data.starts_with('A') { "B" } else { "A" };
    *password = json!(text.replacen(
        &format!("data:{}", &data[..1]),
        &format!("data:{flipped}"),
        1
    ));
    update(&cluster, "app", &tampered).await;
    let failed = status(&cluster, "app", "Decryption error").await;
    let (ready, message) = condition(&failed, "Ready");
    assert_eq!(ready, "False");
    assert!(message.contains("altered"), "{message}");
    let db = cluster.secrets(NS).get("app-db").await.unwrap();
    assert_eq!(db.data.as_ref().unwrap()["password"].0, b"s3cr3t-db-2");

    // 5. Suspended: a new value is not written.
    let next = OPERATOR_STYLE.replace("s3cr3t-db", "s3cr3t-db-3");
    let mut next = sops(dir.path(), "app.yaml", &next, &suffix, &[]);
    next["spec"]["suspend"] = json!(true);
    update(&cluster, "app", &next).await;
    status(&cluster, "app", "Reconciliation is suspended").await;
    let db = cluster.secrets(NS).get("app-db").await.unwrap();
    assert_eq!(db.data.as_ref().unwrap()["password"].0, b"s3cr3t-db-2");

    // 6. Someone else's Secret is refused; one annotated sopssecret/managed is adopted.
    let foreign = |name: &str, annotations: Value| {
        serde_json::from_value::<Secret>(json!({
            "metadata": {"name": name, "namespace": NS, "annotations": annotations},
            "stringData": {"password": "theirs"}
        }))
        .unwrap()
    };
    let secrets = cluster.secrets(NS);
    let post = PostParams::default();
    secrets
        .create(&post, &foreign("taken-db", json!({})))
        .await
        .unwrap();
    secrets
        .create(
            &post,
            &foreign("handed-db", json!({"sopssecret/managed": "true"})),
        )
        .await
        .unwrap();
    for name in ["taken", "handed"] {
        let plain = REGEX_STYLE.replace("sorted", name);
        apply(&cluster, sops(dir.path(), "x.yaml", &plain, &regex, &[])).await;
    }
    secret_value(&cluster, "handed-db", "password", "s3cr3t-handed").await;
    let taken = status(
        &cluster,
        "taken",
        "Child secret is not owned by controller error",
    )
    .await;
    assert!(
        condition(&taken, "Ready")
            .1
            .contains("not managed by SopsSecret")
    );
    let theirs = secrets.get("taken-db").await.unwrap();
    assert_eq!(theirs.data.as_ref().unwrap()["password"].0, b"theirs");

    // 7. A restart with every Secret current decrypts nothing.
    let before = metric(
        &metrics(&running).await,
        "gitseal_controller_sops_decryptions_total",
    );
    assert!(before >= 4.0, "{before}");
    running.stop().await;
    let restarted = cluster.controller("b", &[]).await;
    let handed = sops_secrets(&cluster).get("handed").await.unwrap();
    wait_for("every SopsSecret reconciled after the restart", || async {
        let text = metrics(&restarted).await;
        let done = metric(&text, "sopssecrets_reconcilation_successes_total") >= 3.0
            && metric(&text, "sopssecrets_reconcilation_suspends_total") >= 1.0
            && metric(&text, "sopssecrets_reconcilation_failures_total") >= 1.0;
        done.then_some(())
    })
    .await;
    // The three current ones cost no decryption; only the refused one ("taken") is
    // decrypted again, once per attempt.
    let text = metrics(&restarted).await;
    let decryptions = metric(&text, "gitseal_controller_sops_decryptions_total");
    let failures = metric(&text, "sopssecrets_reconcilation_failures_total");
    assert!(decryptions <= failures + 1.0, "{text}");
    assert_eq!(handed.status.unwrap().message.as_deref(), Some("Healthy"));

    no_values_outside_secrets(&cluster, &[], &["s3cr3t", "token-value", "theirs", "admin"]).await;
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_format_key_secrets_with_age_and_aws_kms() {
    if gitseal_tests::tool("sops", "GITSEAL_SOPS").is_none() {
        return;
    }
    let Some(moto) = tokio::task::spawn_blocking(gitseal_testkit::moto::Moto::start)
        .await
        .unwrap()
    else {
        return;
    };
    let arn = moto.boto3("print(kms.create_key()['KeyMetadata']['Arn'])");
    let arn = arn.trim();
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start().await;
    // Flux's decryption Secret: an age identity and static AWS credentials.
    let identities = gitseal_crypto::keys::age::AgeIdentities::generate();
    let recipient = identities.recipients().remove(0);
    let flux: Secret = serde_json::from_value(json!({
        "metadata": {"name": "sops-keys", "namespace": "flux-system"},
        "stringData": {
            "age.agekey": identities.to_text().as_str(),
            "sops.aws-kms": "aws_access_key_id: testing\naws_secret_access_key: testing\n"
        }
    }))
    .unwrap();
    cluster.namespace("flux-system").await;
    cluster
        .secrets("flux-system")
        .create(&PostParams::default(), &flux)
        .await
        .unwrap();
    let endpoint = format!("--sops-kms-endpoint-url={}", moto.url());
    let running = cluster
        .controller(
            "a",
            &["--sops-key-secrets=flux-system/sops-keys", &endpoint],
        )
        .await;

    let by_age = REGEX_STYLE.replace("sorted", "flux");
    let regex = ["--encrypted-regex", "^(data|stringData)$"];
    let mut args = vec!["--age", recipient.as_str()];
    args.extend(regex);
    apply(&cluster, sops(dir.path(), "a.yaml", &by_age, &args, &[])).await;
    secret_value(&cluster, "flux-db", "password", "s3cr3t-flux").await;

    let by_kms = REGEX_STYLE.replace("sorted", "kms");
    let mut args = vec!["--kms", arn];
    args.extend(regex);
    let aws = [
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let encrypted = sops(dir.path(), "k.yaml", &by_kms, &args, &aws);
    assert!(encrypted["sops"]["kms"][0]["enc"].is_string());
    apply(&cluster, encrypted).await;
    secret_value(&cluster, "kms-db", "password", "s3cr3t-kms").await;

    // Without the key Secret, nothing decrypts: the failure says which keys were tried.
    cluster
        .secrets("flux-system")
        .delete("sops-keys", &DeleteParams::default())
        .await
        .unwrap();
    let gone = REGEX_STYLE.replace("sorted", "gone");
    let mut args = vec!["--age", recipient.as_str()];
    args.extend(regex);
    apply(&cluster, sops(dir.path(), "g.yaml", &gone, &args, &[])).await;
    let failed = status(&cluster, "gone", "Decryption error").await;
    let message = condition(&failed, "Ready").1;
    assert!(message.contains(&recipient), "{message}");
    no_values_outside_secrets(&cluster, &[], &["s3cr3t", "testing"]).await;
    running.stop().await;
}
