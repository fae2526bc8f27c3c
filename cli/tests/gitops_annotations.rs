//! Argo CD and Flux annotations of an input Secret carried onto the SealedSecret's own
//! metadata by `gitseal seal` and `gitseal kubeseal` (sealed-secrets #1625), in YAML and
//! JSON; `--no-gitops-annotations` (and its variable) turning that off; unrelated
//! annotations staying in the template only; the SealedSecret still unsealing to the same
//! Secret; and `--merge-into` and `reseal` keeping a SealedSecret's own annotations.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::Env;
use gitseal_crypto::sealed::{Keyring, PrivateKey};
use gitseal_tests::require_shared;
use serde_json::{Map, Value, json};

/// A namespace-wide Secret with every GitOps annotation, and others that are not.
const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: prod
  annotations:
    argocd.argoproj.io/sync-wave: \"-1\"
    argocd.argoproj.io/sync-options: Prune=false,Delete=false
    argocd.argoproj.io/compare-options: IgnoreExtraneous
    argocd.argoproj.io/hook: PreSync
    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation
    kustomize.toolkit.fluxcd.io/reconcile: disabled
    kustomize.toolkit.fluxcd.io/prune: disabled
    kustomize.toolkit.fluxcd.io/force: enabled
    kustomize.toolkit.fluxcd.io/ssa: IfNotPresent
    sealedsecrets.bitnami.com/namespace-wide: \"true\"
    argocd.argoproj.io/tracking-id: guestbook:/Secret:prod/db
    argocd.argoproj.io/sync-wave-note: not an Argo CD annotation
    kustomize.toolkit.fluxcd.io.example/force: not a Flux annotation
    kustomize.config.k8s.io/behavior: merge
    kubectl.kubernetes.io/last-applied-configuration: '{\"secret\": true}'
    team: payments
type: Opaque
stringData:
  password: hunter2
";

/// The GitOps annotations of [`SECRET`].
fn gitops() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "argocd.argoproj.io/compare-options": "IgnoreExtraneous",
        "argocd.argoproj.io/hook": "PreSync",
        "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
        "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
        "argocd.argoproj.io/sync-wave": "-1",
        "kustomize.toolkit.fluxcd.io/force": "enabled",
        "kustomize.toolkit.fluxcd.io/prune": "disabled",
        "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
        "kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent",
    }) else {
        unreachable!()
    };
    map
}

/// What the SealedSecret's own annotations must be: the scope, plus the GitOps ones.
fn expected_top(carried: bool) -> Value {
    let mut map = if carried { gitops() } else { Map::new() };
    map.insert(
        "sealedsecrets.bitnami.com/namespace-wide".into(),
        json!("true"),
    );
    Value::Object(map)
}

/// The template keeps every annotation of the input but the last-applied one.
fn expected_template() -> Value {
    let mut map = gitops();
    for (key, value) in [
        ("sealedsecrets.bitnami.com/namespace-wide", "true"),
        (
            "argocd.argoproj.io/tracking-id",
            "guestbook:/Secret:prod/db",
        ),
        (
            "argocd.argoproj.io/sync-wave-note",
            "not an Argo CD annotation",
        ),
        (
            "kustomize.toolkit.fluxcd.io.example/force",
            "not a Flux annotation",
        ),
        ("kustomize.config.k8s.io/behavior", "merge"),
        ("team", "payments"),
    ] {
        map.insert(key.into(), json!(value));
    }
    Value::Object(map)
}

/// Runs `gitseal <args>` with `stdin` and no `SEALED_SECRETS_*` variable but `vars`.
fn gitseal(args: &[&str], vars: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gitseal"));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SEALED_SECRETS_") {
            command.env_remove(name);
        }
    }
    command.envs(vars.iter().copied());
    gitseal_tests::output_with_stdin(&mut command, stdin)
}

fn ok(args: &[&str], vars: &[(&str, &str)], stdin: &[u8]) -> String {
    let output = gitseal(args, vars, stdin);
    assert!(
        output.status.success(),
        "{args:?} {vars:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// One document, YAML or JSON.
fn parse(text: &str) -> Value {
    let mut docs: Vec<Value> = serde_saphyr::from_str_multiple(text).unwrap();
    assert_eq!(docs.len(), 1, "{text}");
    docs.remove(0)
}

fn key_path(shared: &Path) -> PathBuf {
    shared.join("fixtures/sealed-secrets/kseal-sealing-key.pem")
}

/// Every way of sealing the sample, with the output format it asks for.
fn seal_commands(cert: &str) -> Vec<(Vec<&str>, bool)> {
    vec![
        (vec!["seal", "--cert", cert], false),
        (vec!["seal", "--cert", cert, "--format", "json"], true),
        (vec!["kubeseal", "--cert", cert], true),
        (vec!["kubeseal", "--cert", cert, "-o", "yaml"], false),
    ]
}

/// Checks one sealed output against the expected annotations and that its value unseals.
fn check(env: &Env, out: &str, json: bool, carried: bool, what: &str) {
    assert_eq!(out.trim_start().starts_with('{'), json, "{what}: {out}");
    let sealed = parse(out);
    assert_eq!(
        sealed["metadata"]["annotations"],
        expected_top(carried),
        "{what}"
    );
    assert_eq!(
        sealed["spec"]["template"]["metadata"]["annotations"],
        expected_template(),
        "{what}"
    );
    let masked = env.check_and_mask(sealed, &[("password", b"hunter2")]);
    assert_eq!(masked["spec"]["encryptedData"]["password"], "<sealed>");
}

#[test]
fn carried_onto_the_sealed_secret_by_both_commands_in_yaml_and_json() {
    let shared = require_shared!();
    let env = Env::new(&shared, "gitops-default");
    for (args, json) in seal_commands(env.cert()) {
        let out = ok(&args, &[], SECRET.as_bytes());
        check(&env, &out, json, true, &format!("{args:?}"));
        if !json {
            // The sync wave stays a string in YAML (Argo CD reads it as one).
            assert!(
                out.contains("    argocd.argoproj.io/sync-wave: \"-1\"\n"),
                "{out}"
            );
        }
    }
    // Without any GitOps annotation, the output is kubeseal's: only the scope on top.
    let plain = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n  annotations: {team: payments}\nstringData: {password: hunter2}\n";
    let sealed = parse(&ok(
        &["kubeseal", "--cert", env.cert()],
        &[],
        plain.as_bytes(),
    ));
    assert_eq!(
        sealed["metadata"],
        json!({"name": "db", "namespace": "prod"})
    );
}

#[test]
fn the_flag_and_its_variable_turn_it_off() {
    let shared = require_shared!();
    let env = Env::new(&shared, "gitops-off");
    for (mut args, json) in seal_commands(env.cert()) {
        args.push("--no-gitops-annotations");
        let out = ok(&args, &[], SECRET.as_bytes());
        check(&env, &out, json, false, &format!("{args:?}"));
    }
    for value in ["true", "1"] {
        let vars = [("SEALED_SECRETS_NO_GITOPS_ANNOTATIONS", value)];
        let out = ok(
            &["kubeseal", "--cert", env.cert()],
            &vars,
            SECRET.as_bytes(),
        );
        check(&env, &out, true, false, value);
    }
    let vars = [("SEALED_SECRETS_NO_GITOPS_ANNOTATIONS", "false")];
    let out = ok(
        &["kubeseal", "--cert", env.cert()],
        &vars,
        SECRET.as_bytes(),
    );
    check(&env, &out, true, true, "false");

    // Strict scope and the flag: no annotations on the SealedSecret at all.
    let strict = SECRET.replace(
        "    sealedsecrets.bitnami.com/namespace-wide: \"true\"\n",
        "",
    );
    let out = ok(
        &["seal", "--cert", env.cert(), "--no-gitops-annotations"],
        &[],
        strict.as_bytes(),
    );
    assert_eq!(
        parse(&out)["metadata"],
        json!({"name": "db", "namespace": "prod"})
    );

    for command in ["seal", "kubeseal"] {
        let output = gitseal(&[command, "--help"], &[], b"");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(
            help.contains("--no-gitops-annotations"),
            "{command}: {help}"
        );
    }
}

#[test]
fn the_sealed_secret_unseals_to_the_same_secret() {
    let shared = require_shared!();
    let env = Env::new(&shared, "gitops-unseal");
    let key = key_path(&shared);
    let unseal = |sealed: &str| {
        parse(&ok(
            &[
                "kubeseal",
                "--recovery-unseal",
                "--recovery-private-key",
                key.to_str().unwrap(),
            ],
            &[],
            sealed.as_bytes(),
        ))
    };
    let with = unseal(&ok(&["seal", "--cert", env.cert()], &[], SECRET.as_bytes()));
    let without = unseal(&ok(
        &["seal", "--cert", env.cert(), "--no-gitops-annotations"],
        &[],
        SECRET.as_bytes(),
    ));
    assert_eq!(with, without);
    assert_eq!(with["metadata"]["annotations"], expected_template());
    assert_eq!(with["data"], json!({"password": "aHVudGVyMg=="}));
    assert_eq!(with["type"], "Opaque");
}

#[test]
fn merge_into_keeps_the_targets_annotations_and_adds_the_inputs() {
    let shared = require_shared!();
    let env = Env::new(&shared, "gitops-merge");
    let target = env.dir.path().join("db-sealed.json");
    let mut sealed = parse(&ok(
        &["kubeseal", "--cert", env.cert()],
        &[],
        SECRET.as_bytes(),
    ));
    sealed["metadata"]["annotations"]["note"] = json!("added by hand");
    std::fs::write(&target, serde_json::to_string_pretty(&sealed).unwrap()).unwrap();

    let addition = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  annotations:\n    argocd.argoproj.io/sync-wave: \"2\"\n    kustomize.toolkit.fluxcd.io/ssa: Merge\n    owner: team-b\nstringData: {apikey: k-123}\n";
    // The scope of the merged items comes from the command line or the input, as with
    // kubeseal, not from the target.
    let merge = |extra: &[&str]| {
        let mut args = vec![
            "kubeseal",
            "--cert",
            env.cert(),
            "--scope",
            "namespace-wide",
            "--merge-into",
            target.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        assert_eq!(ok(&args, &[], addition.as_bytes()), "");
        parse(&std::fs::read_to_string(&target).unwrap())
    };

    // With the flag, the target's own annotations are left exactly as they were.
    let merged = merge(&["--no-gitops-annotations"]);
    assert_eq!(merged["metadata"], sealed["metadata"]);
    assert_eq!(
        merged["spec"]["template"]["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"],
        "2"
    );

    let merged = merge(&[]);
    let mut expected = sealed["metadata"]["annotations"].clone();
    expected["argocd.argoproj.io/sync-wave"] = json!("2");
    expected["kustomize.toolkit.fluxcd.io/ssa"] = json!("Merge");
    assert_eq!(merged["metadata"]["annotations"], expected);
    assert_eq!(
        merged["spec"]["template"]["metadata"]["annotations"]["owner"],
        "team-b"
    );
    env.check_and_mask(merged, &[("password", b"hunter2"), ("apikey", b"k-123")]);
}

/// A fresh RSA key and self-signed certificate made with openssl.
fn new_key_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let (key, cert) = (dir.join("new.key"), dir.join("new.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=new", "-days", "30",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed to make a test certificate");
    assert!(status.success());
    (key, cert)
}

#[test]
fn reseal_keeps_the_sealed_secrets_annotations() {
    let shared = require_shared!();
    let env = Env::new(&shared, "gitops-reseal");
    let (new_key, new_cert) = new_key_pair(env.dir.path());
    let file = env.dir.path().join("db-sealed.yaml");
    std::fs::write(
        &file,
        ok(&["seal", "--cert", env.cert()], &[], SECRET.as_bytes()),
    )
    .unwrap();
    let before = parse(&std::fs::read_to_string(&file).unwrap());
    ok(
        &[
            "reseal",
            file.to_str().unwrap(),
            "--cert",
            new_cert.to_str().unwrap(),
            "--private-key",
            key_path(&shared).to_str().unwrap(),
        ],
        &[],
        b"",
    );
    let after = parse(&std::fs::read_to_string(&file).unwrap());
    assert_ne!(
        after["spec"]["encryptedData"],
        before["spec"]["encryptedData"]
    );
    assert_eq!(after["metadata"], before["metadata"]);
    assert_eq!(after["metadata"]["annotations"], expected_top(true));
    assert_eq!(after["spec"]["template"], before["spec"]["template"]);
    let ring = Keyring::new(vec![
        PrivateKey::from_pem(&std::fs::read(new_key).unwrap()).unwrap(),
    ]);
    let value = after["spec"]["encryptedData"]["password"].as_str().unwrap();
    assert_eq!(ring.unseal(b"prod", value).unwrap().expose(), b"hunter2");
}
