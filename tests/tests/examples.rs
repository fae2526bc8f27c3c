//! The example GitOps repository (`examples/gitops`) and the Argo CD health checks
//! (`charts/gitseal/argocd/health`), checked offline:
//!
//! - every kustomization builds with `kubectl kustomize` into the objects expected;
//! - built-in kinds validate with `kubernetes-validate --strict`, the custom resources
//!   against the chart's CRD schemas (strictly: unknown fields are errors), Argo CD and
//!   Flux objects carry the fields their controllers require
//!   (`tests/interop/examples_check.py`, with `GITSEAL_VALIDATE_PYTHON`);
//! - the SealedSecrets and the SopsSecret hold real ciphertexts and no key is committed;
//! - the Lua health checks, run as Lua 5.1 (lupa), say Healthy, Progressing, Degraded
//!   (and Suspended) from the statuses gitseal-controller writes, and the `argocd-cm`
//!   snippet carries them verbatim.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gitseal_crypto::sops::EncryptedValue;
use gitseal_tests::{repo_dir, run_with_stdin, tool, tool_from_env};
use serde_json::{Value, json};

/// The Kubernetes version the built-in kinds are validated against (schemas shipped with
/// kubernetes-validate, no network).
const KUBERNETES_VERSION: &str = "1.31.0";

/// Each kustomization of the example and the objects (kind, how it is checked) it builds.
const BUILDS: &[(&str, &[(&str, &str)])] = &[
    ("apps/guestbook/overlays/dev", APP),
    ("apps/guestbook/overlays/prod", APP),
    (
        "clusters/prod/argocd",
        &[("ConfigMap", "kubernetes"), ("Application", "fields")],
    ),
    (
        "clusters/prod/argocd/apps",
        &[("Application", "fields"), ("ApplicationSet", "fields")],
    ),
    (
        "clusters/prod/flux",
        &[
            ("GitRepository", "fields"),
            ("Kustomization", "fields"),
            ("Kustomization", "fields"),
        ],
    ),
    (
        "infrastructure/gitseal",
        &[("GitRepository", "fields"), ("HelmRelease", "fields")],
    ),
];

const APP: &[(&str, &str)] = &[
    ("Namespace", "kubernetes"),
    ("ServiceAccount", "kubernetes"),
    ("Service", "kubernetes"),
    ("Deployment", "kubernetes"),
    ("SealedSecret", "crd"),
    ("SopsSecret", "crd"),
    ("ExternalSecret", "crd"),
    ("SecretStore", "crd"),
];

fn examples_dir() -> PathBuf {
    repo_dir().join("examples/gitops")
}

fn python() -> Option<PathBuf> {
    tool_from_env(
        "GITSEAL_VALIDATE_PYTHON",
        "a Python with kubernetes-validate, jsonschema and lupa",
    )
}

fn kubectl() -> Option<PathBuf> {
    tool("kubectl", "GITSEAL_KUBECTL")
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"))
}

fn checker(python: &Path) -> Command {
    let mut command = Command::new(python);
    command.arg(repo_dir().join("tests/interop/examples_check.py"));
    command
}

fn kustomize(kubectl: &Path, dir: &str) -> String {
    let output = run(Command::new(kubectl)
        .arg("kustomize")
        .arg(examples_dir().join(dir)));
    assert!(
        output.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 manifests")
}

/// Splits and checks `manifests` (see `examples_check.py split`): the report, and the
/// file of built-in objects; `Err` with the checker's errors when any object fails.
fn split(python: &Path, dir: &Path, manifests: &str) -> Result<(Vec<Value>, PathBuf), String> {
    let input = dir.join("built.yaml");
    let builtin = dir.join("builtin.yaml");
    std::fs::write(&input, manifests).unwrap();
    let output = run(checker(python)
        .arg("split")
        .arg("--crds")
        .arg(repo_dir().join("charts/gitseal/crds"))
        .arg("--builtin")
        .arg(&builtin)
        .arg(&input));
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let report: Vec<Value> = serde_json::from_slice(&output.stdout).expect("a JSON report");
    Ok((report, builtin))
}

/// Runs `kubernetes-validate --strict` on `file`: `Ok` with its output when every object
/// passed, else `Err` with it.
fn kubernetes_validate(python: &Path, file: &Path) -> Result<String, String> {
    let output = run(Command::new(python)
        .args([
            "-m",
            "kubernetes_validate",
            "--strict",
            "-k",
            KUBERNETES_VERSION,
        ])
        .arg(file));
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let clean = !text.contains("ERROR") && !text.contains("WARN") && !text.contains("FATAL");
    if output.status.success() && clean {
        Ok(text)
    } else {
        Err(text)
    }
}

fn to_json(python: &Path, file: &Path) -> Vec<Value> {
    let output = run(checker(python).arg("tojson").arg(file));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON documents")
}

#[test]
fn every_kustomization_builds_and_validates_offline() {
    let (Some(kubectl), Some(python)) = (kubectl(), python()) else {
        return;
    };
    let tmp = tempfile::Builder::new()
        .prefix("gitseal-examples-")
        .tempdir()
        .unwrap();
    for (dir, expected) in BUILDS {
        let manifests = kustomize(&kubectl, dir);
        let work = tmp.path().join(dir.replace('/', "_"));
        std::fs::create_dir(&work).unwrap();
        let (report, builtin) =
            split(&python, &work, &manifests).unwrap_or_else(|e| panic!("{dir}:\n{e}"));

        let mut seen: Vec<(String, String)> = report
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap().to_owned(),
                    o["check"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(k, c)| ((*k).to_owned(), (*c).to_owned()))
            .collect();
        seen.sort();
        want.sort();
        assert_eq!(seen, want, "{dir}: the objects built");

        let builtins: Vec<&Value> = report
            .iter()
            .filter(|o| o["check"] == "kubernetes")
            .collect();
        if builtins.is_empty() {
            continue;
        }
        let log = kubernetes_validate(&python, &builtin)
            .unwrap_or_else(|e| panic!("{dir}: kubernetes-validate:\n{e}"));
        for object in builtins {
            let kind = object["kind"].as_str().unwrap().to_lowercase();
            let line = format!(
                "passed for resource {kind}/{}",
                object["name"].as_str().unwrap()
            );
            assert!(log.contains(&line), "{dir}: {line} not in\n{log}");
        }
    }
}

#[test]
fn app_overlays_put_everything_in_their_namespace_in_waves() {
    let (Some(kubectl), Some(python)) = (kubectl(), python()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for env in ["dev", "prod"] {
        let file = tmp.path().join(format!("{env}.yaml"));
        std::fs::write(
            &file,
            kustomize(&kubectl, &format!("apps/guestbook/overlays/{env}")),
        )
        .unwrap();
        let namespace = format!("guestbook-{env}");
        for object in to_json(&python, &file) {
            let kind = object["kind"].as_str().unwrap();
            let metadata = &object["metadata"];
            if kind != "Namespace" {
                assert_eq!(metadata["namespace"], namespace.as_str(), "{env} {kind}");
            }
            let wave = metadata["annotations"]["argocd.argoproj.io/sync-wave"].as_str();
            let want = match kind {
                "Namespace" => Some("-2"),
                "SecretStore" | "ServiceAccount" => Some("-1"),
                "SealedSecret" | "SopsSecret" => Some("0"),
                "Deployment" => Some("1"),
                _ => wave,
            };
            assert_eq!(wave, want, "{env} {kind}: sync wave");
            if kind == "ExternalSecret" {
                let key = format!("guestbook/{env}/db");
                for item in object["spec"]["data"].as_array().unwrap() {
                    assert_eq!(item["remoteRef"]["key"], key.as_str(), "{env}");
                }
            }
        }
    }
}

#[test]
fn ciphertexts_are_real_and_no_key_is_committed() {
    let (Some(kubectl), Some(python)) = (kubectl(), python()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sops_config = std::fs::read_to_string(examples_dir().join(".sops.yaml")).unwrap();
    for env in ["dev", "prod"] {
        let file = tmp.path().join(format!("{env}.yaml"));
        std::fs::write(
            &file,
            kustomize(&kubectl, &format!("apps/guestbook/overlays/{env}")),
        )
        .unwrap();
        let objects = to_json(&python, &file);
        let find = |kind: &str| {
            objects
                .iter()
                .find(|o| o["kind"] == kind)
                .unwrap_or_else(|| panic!("{env}: no {kind}"))
        };

        // Sealed Secrets envelope: u16 length of the RSA-OAEP block (RSA-4096: 512 bytes),
        // that block, then AES-GCM output (at least the 16-byte tag).
        let sealed = find("SealedSecret");
        let token = sealed["spec"]["encryptedData"]["token"].as_str().unwrap();
        let bytes = STANDARD.decode(token).expect("base64");
        assert_eq!(u16::from_be_bytes([bytes[0], bytes[1]]), 512, "{env}");
        assert!(bytes.len() > 2 + 512 + 16, "{env}: {} bytes", bytes.len());
        assert_eq!(
            sealed["spec"]["template"]["metadata"]["namespace"],
            format!("guestbook-{env}").as_str()
        );

        // SOPS: every template value is an AES-GCM value, the recipient is .sops.yaml's.
        let sops = find("SopsSecret");
        let mut leaves = Vec::new();
        collect_strings(&sops["spec"]["secretTemplates"], &mut leaves);
        assert!(leaves.len() >= 4, "{leaves:?}");
        for leaf in leaves {
            EncryptedValue::parse(leaf).unwrap_or_else(|e| panic!("{leaf}: {e}"));
        }
        let recipient = sops["sops"]["age"][0]["recipient"].as_str().unwrap();
        assert!(recipient.starts_with("age1"), "{recipient}");
        assert!(
            sops_config.contains(recipient),
            "{recipient} not in .sops.yaml"
        );
        assert!(EncryptedValue::is_encrypted(
            sops["sops"]["mac"].as_str().unwrap()
        ));
        assert_eq!(sops["sops"]["mac_only_encrypted"], true);
    }

    let mut files = Vec::new();
    list_files(&examples_dir(), &mut files);
    assert!(files.len() > 10, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for marker in ["PRIVATE KEY", "AGE-SECRET-KEY-"] {
            assert!(!text.contains(marker), "{} holds a key", file.display());
        }
    }
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            list_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn the_checks_reject_broken_manifests() {
    let Some(python) = python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "an unknown SealedSecret field",
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: a}\n\
             spec: {encryptedData: {k: AgA=}, encrypted: {k: AgA=}}\n",
            "encrypted",
        ),
        (
            "a SopsSecret without templates",
            "apiVersion: isindir.github.com/v1alpha3\nkind: SopsSecret\nmetadata: {name: a}\n\
             spec: {suspend: true}\n",
            "secretTemplates",
        ),
        (
            "an ExternalSecret with a numeric key",
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: a}\n\
             spec: {secretStoreRef: {name: v}, data: [{secretKey: p, remoteRef: {key: 5}}]}\n",
            "is not of type 'string'",
        ),
        (
            "an Application without a destination",
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\n\
             spec: {project: default, source: {repoURL: r, path: p}}\n",
            "destination",
        ),
        (
            "a Flux Kustomization without sourceRef",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n\
             metadata: {name: a}\nspec: {interval: 1m, prune: true}\n",
            "sourceRef",
        ),
        (
            "an unknown kind",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\n",
            "no schema",
        ),
    ];
    for (what, manifest, expected) in cases {
        let error = split(&python, tmp.path(), manifest)
            .err()
            .unwrap_or_else(|| panic!("{what} passed"));
        assert!(error.contains(expected), "{what}: {error}");
    }

    let deployment = tmp.path().join("deployment.yaml");
    std::fs::write(
        &deployment,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n\
         spec: {replicas: 1, selector: {}, template: {spec: {containers: [{name: a}]}}, \
         strategy: {kind: Recreate}}\n",
    )
    .unwrap();
    let error = kubernetes_validate(&python, &deployment).expect_err("an unknown field");
    assert!(error.contains("ERROR"), "{error}");
}

/// Runs the health check `script` on each object; returns (status, message) pairs.
fn health(python: &Path, script: &str, objects: &[Value]) -> Vec<(String, String)> {
    let path = repo_dir().join("charts/gitseal/argocd/health").join(script);
    let stdin = serde_json::to_vec(objects).unwrap();
    let stdout = run_with_stdin(checker(python).arg("health").arg(path), &stdin);
    let results: Vec<Value> = serde_json::from_slice(&stdout).expect("JSON results");
    results
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap_or_default().to_owned(),
                r["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Checks `script` on `cases` of (object, status, message).
fn check_health(python: &Path, script: &str, cases: &[(Value, &str, &str)]) {
    let objects: Vec<Value> = cases.iter().map(|(o, _, _)| o.clone()).collect();
    let results = health(python, script, &objects);
    assert_eq!(results.len(), cases.len());
    for ((object, status, message), (got_status, got_message)) in cases.iter().zip(results) {
        assert_eq!(
            (got_status.as_str(), got_message.as_str()),
            (*status, *message),
            "{script}: {object}"
        );
    }
}

fn object(generation: i64, spec: Value, status: Option<Value>) -> Value {
    let mut object = json!({"metadata": {"name": "a", "namespace": "ns", "generation": generation}, "spec": spec});
    if let Some(status) = status {
        object["status"] = status;
    }
    object
}

/// A condition as gitseal-controller's `status::next_conditions` writes it.
fn condition(type_: &str, status: &str, message: Option<&str>) -> Value {
    let mut condition = json!({
        "type": type_, "status": status,
        "lastTransitionTime": "2026-01-01T00:00:00Z", "lastUpdateTime": "2026-01-01T00:00:00Z",
    });
    if let Some(message) = message {
        condition["message"] = message.into();
    }
    condition
}

#[test]
fn sealed_secret_health() {
    let Some(python) = python() else {
        return;
    };
    let spec = json!({"encryptedData": {"k": "AgA="}});
    let synced = |generation: i64, observed: i64, c: Value| {
        object(
            generation,
            spec.clone(),
            Some(json!({"observedGeneration": observed, "conditions": [c]})),
        )
    };
    let failed = "no key could decrypt secret (k)";
    check_health(
        &python,
        "sealedsecret.lua",
        &[
            (
                synced(2, 2, condition("Synced", "True", None)),
                "Healthy",
                "Secret unsealed",
            ),
            (
                object(1, spec.clone(), None),
                "Progressing",
                "Waiting for gitseal-controller to unseal the SealedSecret",
            ),
            (
                synced(3, 2, condition("Synced", "True", None)),
                "Progressing",
                "Waiting for gitseal-controller to unseal generation 3",
            ),
            (
                synced(3, 2, condition("Synced", "False", Some(failed))),
                "Progressing",
                "Waiting for gitseal-controller to unseal generation 3",
            ),
            (
                synced(2, 2, condition("Synced", "False", Some(failed))),
                "Degraded",
                failed,
            ),
            (
                object(1, spec.clone(), Some(json!({"observedGeneration": 1}))),
                "Progressing",
                "Waiting for gitseal-controller to unseal the SealedSecret",
            ),
        ],
    );
}

#[test]
fn sops_secret_health() {
    let Some(python) = python() else {
        return;
    };
    let spec = json!({"secretTemplates": [{"name": "s", "stringData": {"k": "ENC[...]"}}]});
    let with = |generation: i64, observed: i64, message: &str, conditions: Value| {
        object(
            generation,
            spec.clone(),
            Some(json!({
                "message": message, "observedGeneration": observed,
                "conditions": conditions, "secrets": ["s"],
            })),
        )
    };
    let suspended_spec = json!({"secretTemplates": [], "suspend": true});
    let decrypt = "decryption failed: no age identity matches the file's recipients";
    let suspend = "reconciliation is suspended (spec.suspend)";
    let mac = "the MAC does not match the document as the API server stores it";
    check_health(
        &python,
        "sopssecret.lua",
        &[
            (
                with(1, 1, "Healthy", json!([condition("Ready", "True", None)])),
                "Healthy",
                "Healthy",
            ),
            (
                with(
                    1,
                    1,
                    "Healthy",
                    json!([
                        condition("Ready", "True", None),
                        condition("MacVerified", "False", Some(mac))
                    ]),
                ),
                "Healthy",
                &format!("Secrets written, MAC not verified: {mac}"),
            ),
            (
                object(1, spec.clone(), None),
                "Progressing",
                "Waiting for gitseal-controller to decrypt the SopsSecret",
            ),
            (
                with(4, 3, "Healthy", json!([condition("Ready", "True", None)])),
                "Progressing",
                "Waiting for gitseal-controller to decrypt generation 4",
            ),
            (
                with(
                    2,
                    2,
                    "Decryption error",
                    json!([condition("Ready", "False", Some(decrypt))]),
                ),
                "Degraded",
                &format!("Decryption error: {decrypt}"),
            ),
            (
                object(
                    5,
                    suspended_spec,
                    Some(json!({
                        "message": "Reconciliation is suspended", "observedGeneration": 5,
                        "conditions": [condition("Ready", "False", Some(suspend))],
                    })),
                ),
                "Suspended",
                &format!("Reconciliation is suspended: {suspend}"),
            ),
            // sops-secrets-operator writes only `message`.
            (
                object(1, spec.clone(), Some(json!({"message": "Healthy"}))),
                "Healthy",
                "Healthy",
            ),
            (
                object(
                    1,
                    spec.clone(),
                    Some(json!({"message": "Decryption error"})),
                ),
                "Degraded",
                "Decryption error",
            ),
        ],
    );
}

#[test]
fn external_secret_health() {
    let Some(python) = python() else {
        return;
    };
    let spec = json!({"secretStoreRef": {"name": "vault"}, "data": []});
    // ESO's condition shape, as the controller writes it (no lastUpdateTime).
    let ready = |status: &str, reason: &str, message: &str| {
        json!({"type": "Ready", "status": status, "reason": reason, "message": message,
               "lastTransitionTime": "2026-01-01T00:00:00Z"})
    };
    let with = |generation: i64, synced: Option<&str>, condition: Value| {
        let mut status = json!({"conditions": [condition], "refreshTime": "2026-01-01T00:00:00Z"});
        if let Some(synced) = synced {
            status["syncedResourceVersion"] = synced.into();
        }
        object(generation, spec.clone(), Some(status))
    };
    let error = "could not get secret data from provider";
    check_health(
        &python,
        "externalsecret.lua",
        &[
            (
                with(
                    2,
                    Some("2-9f86d081884c7d659a2feaa0c55ad015"),
                    ready("True", "SecretSynced", "secret synced"),
                ),
                "Healthy",
                "SecretSynced: secret synced",
            ),
            (
                with(
                    1,
                    Some("1-9f86d081884c7d659a2feaa0c55ad015"),
                    ready(
                        "True",
                        "SecretDeleted",
                        "secret deleted due to DeletionPolicy=Delete",
                    ),
                ),
                "Healthy",
                "SecretDeleted: secret deleted due to DeletionPolicy=Delete",
            ),
            (
                object(1, spec.clone(), None),
                "Progressing",
                "Waiting for gitseal-controller to sync the ExternalSecret",
            ),
            (
                with(
                    3,
                    Some("2-9f86d081884c7d659a2feaa0c55ad015"),
                    ready("True", "SecretSynced", "secret synced"),
                ),
                "Progressing",
                "Waiting for gitseal-controller to sync generation 3",
            ),
            (
                with(
                    3,
                    Some("2-9f86d081884c7d659a2feaa0c55ad015"),
                    ready("False", "SecretSyncedError", error),
                ),
                "Degraded",
                &format!("SecretSyncedError: {error}"),
            ),
            (
                with(1, None, ready("False", "SecretSyncedError", error)),
                "Degraded",
                &format!("SecretSyncedError: {error}"),
            ),
        ],
    );
}

#[test]
fn argocd_cm_snippet_carries_the_health_checks_verbatim() {
    let Some(python) = python() else {
        return;
    };
    let file = examples_dir().join("clusters/prod/argocd/argocd-cm-health.yaml");
    let output = run(checker(&python).arg("configmap").arg(&file));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let data: serde_json::Map<String, Value> = serde_json::from_slice(&output.stdout).unwrap();
    let expected = [
        ("bitnami.com_SealedSecret", "sealedsecret.lua"),
        ("isindir.github.com_SopsSecret", "sopssecret.lua"),
        ("external-secrets.io_ExternalSecret", "externalsecret.lua"),
    ];
    assert_eq!(data.len(), expected.len(), "{:?}", data.keys());
    for (resource, script) in expected {
        let key = format!("resource.customizations.health.{resource}");
        let lua =
            std::fs::read_to_string(repo_dir().join("charts/gitseal/argocd/health").join(script))
                .unwrap();
        assert_eq!(
            data.get(&key).and_then(Value::as_str),
            Some(lua.as_str()),
            "{key}"
        );
    }
}
