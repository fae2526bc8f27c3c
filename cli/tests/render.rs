//! `gitseal render` (the Argo CD Config Management Plugin's `generate`) on sample apps: a
//! SOPS-encrypted Secret written by the real sops 3.11.0 (fresh age key) and a SealedSecret
//! sealed with `gitseal seal` against a freshly generated sealing key pair, in a kustomize
//! overlay built by `kubectl kustomize` and in a plain manifest directory; outputs compared
//! with the expected manifests, failures checked for their reason and for leaks.
//!
//! Tools: `GITSEAL_SOPS` (or `sops` on PATH) and `kubectl` (`GITSEAL_KUBECTL`); a missing
//! one skips the test, or fails it under `GITSEAL_REQUIRE_TOOLS=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gitseal_crypto::keys::age::AgeIdentities;
use gitseal_crypto::sealed::{Certificate, PrivateKey};
use serde_json::{Value, json};

const DB_PASSWORD: &str = "s3cr3t-db-password";
const DB_USER: &str = "db-admin-user";
const API_TOKEN: &str = "api-t0k3n-value";

/// The SOPS-encrypted Secret, its keys in sorted order at every level (what kustomize
/// writes), so that its MAC still matches after a kustomize build that changes nothing.
const DB_SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: prod
stringData:
  password: s3cr3t-db-password
  user: db-admin-user
type: Opaque
";

const API_SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: api
  namespace: prod
type: Opaque
stringData:
  token: api-t0k3n-value
";

const CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  namespace: prod
data:
  mode: production
";

struct Env {
    dir: tempfile::TempDir,
    kubectl: PathBuf,
}

impl Env {
    /// The sample app: `base/` (a kustomize base), `same/` (an overlay changing nothing),
    /// `labelled/` (an overlay adding labels) and `plain/` (manifests, no kustomization);
    /// the age key `keys.txt`, the sealing certificate `cert.pem` and the controller's key
    /// backup `sealing-keys.yaml`.
    fn new() -> Option<Self> {
        let sops = gitseal_tests::tool("sops", "GITSEAL_SOPS")?;
        let kubectl = gitseal_tests::tool("kubectl", "GITSEAL_KUBECTL")?;
        let dir = tempfile::Builder::new()
            .prefix("gitseal-render-")
            .tempdir()
            .unwrap();
        let env = Self { dir, kubectl };
        let age = AgeIdentities::generate();
        env.write("keys.txt", age.to_text().as_str());
        let recipient = age.recipients().remove(0);

        // The sealing key pair, and its backup as `kubectl get secret -o yaml` gives it.
        let key = PrivateKey::generate(2048).unwrap();
        let cert = Certificate::self_signed(
            &key,
            "gitseal-test",
            SystemTime::now() - Duration::from_secs(60),
            Duration::from_secs(3600),
        )
        .unwrap();
        env.write("cert.pem", &cert.to_pem());
        let backup = json!({"apiVersion": "v1", "kind": "List", "items": [{
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "sealed-secrets-keyabcde", "namespace": "kube-system",
                         "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"}},
            "data": {"tls.crt": STANDARD.encode(cert.to_pem()),
                     "tls.key": STANDARD.encode(key.to_pkcs1_pem().unwrap().as_bytes())}}]});
        env.write("sealing-keys.yaml", &backup.to_string());

        env.write("plain-db.yaml", DB_SECRET);
        let output = env
            .command(&sops)
            .args(["encrypt", "--age", &recipient])
            .args(["--encrypted-regex", "^(data|stringData)$"])
            .arg(env.path("plain-db.yaml"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "sops: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let db = String::from_utf8(output.stdout).unwrap();
        env.write("plain-api.yaml", API_SECRET);
        let sealed = env.gitseal(&[
            "seal",
            env.path("plain-api.yaml").to_str().unwrap(),
            "--cert",
            env.path("cert.pem").to_str().unwrap(),
        ]);
        assert!(sealed.status.success());
        let sealed = String::from_utf8(sealed.stdout).unwrap();
        assert!(sealed.contains("kind: SealedSecret") && !sealed.contains(API_TOKEN));

        for dir in ["base", "plain"] {
            env.write(&format!("{dir}/db.enc.yaml"), &db);
            env.write(&format!("{dir}/api-sealed.yaml"), &sealed);
            env.write(&format!("{dir}/web.yaml"), CONFIG_MAP);
        }
        env.write(
            "base/kustomization.yaml",
            "resources:\n- web.yaml\n- db.enc.yaml\n- api-sealed.yaml\n",
        );
        env.write("same/kustomization.yaml", "resources:\n- ../base\n");
        env.write(
            "labelled/kustomization.yaml",
            "resources:\n- ../base\nlabels:\n- pairs:\n    env: prod\n",
        );
        // Not a manifest: skipped by the directory reader.
        env.write("plain/.sops.yaml", "creation_rules:\n- age: age1xyz\n");
        Some(env)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A command with this environment's age key and no other key source; `kubectl` is
    /// the only kustomize on PATH.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        let bin = self.path("bin");
        std::fs::create_dir_all(&bin).unwrap();
        if !bin.join("kubectl").exists() {
            std::os::unix::fs::symlink(&self.kubectl, bin.join("kubectl")).unwrap();
        }
        command
            .env("PATH", bin)
            .env("SOPS_AGE_KEY_FILE", self.path("keys.txt"))
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_KEY_CMD")
            .env_remove("GITSEAL_PRIVATE_KEYS")
            .env_remove("GITSEAL_IGNORE_MAC")
            .current_dir(self.dir.path());
        command
    }

    fn gitseal(&self, args: &[&str]) -> Output {
        self.command(Path::new(env!("CARGO_BIN_EXE_gitseal")))
            .args(args)
            .output()
            .unwrap()
    }

    /// `gitseal render DIR --private-key sealing-keys.yaml ARGS…`, in `DIR`.
    fn render(&self, dir: &str, args: &[&str]) -> Output {
        self.command(Path::new(env!("CARGO_BIN_EXE_gitseal")))
            .arg("render")
            .args([
                "--private-key",
                self.path("sealing-keys.yaml").to_str().unwrap(),
            ])
            .args(args)
            .current_dir(self.path(dir))
            .output()
            .unwrap()
    }
}

fn ok(output: Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut docs = gitseal::manifest::parse_documents(&output.stdout).unwrap();
    docs.sort_by_key(|d| d["metadata"]["name"].as_str().unwrap().to_owned());
    docs
}

fn fails(output: Output) -> String {
    assert!(!output.status.success(), "it succeeded");
    assert!(output.stdout.is_empty(), "output on failure");
    let stderr = String::from_utf8(output.stderr).unwrap();
    for secret in [DB_PASSWORD, DB_USER, API_TOKEN] {
        assert!(!stderr.contains(secret), "{secret} leaked: {stderr}");
    }
    stderr
}

/// The expected stream, by name: the unsealed `api`, the decrypted `db`, the ConfigMap.
fn expected(labels: Option<Value>) -> Vec<Value> {
    let mut docs = vec![
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "api", "namespace": "prod"},
               "data": {"token": STANDARD.encode(API_TOKEN)}, "type": "Opaque"}),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "db", "namespace": "prod"},
               "stringData": {"password": DB_PASSWORD, "user": DB_USER}, "type": "Opaque"}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "web", "namespace": "prod"}, "data": {"mode": "production"}}),
    ];
    if let Some(labels) = labels {
        for doc in &mut docs {
            doc["metadata"]["labels"] = labels.clone();
        }
        // kustomize labels the SealedSecret, not its template: the Secret has no labels.
        docs[0]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("labels");
    }
    docs
}

#[test]
fn kustomize_overlay_with_sops_and_sealed_secrets() {
    let Some(env) = Env::new() else { return };
    // An overlay that changes nothing: the MAC still matches, and is checked.
    assert_eq!(ok(env.render("same", &[])), expected(None));
    // The base itself, by path.
    let output = env
        .command(Path::new(env!("CARGO_BIN_EXE_gitseal")))
        .args(["render", "base", "--private-key", "sealing-keys.yaml"])
        .output()
        .unwrap();
    assert_eq!(ok(output), expected(None));

    // An overlay that labels everything changes what the MAC covers: refused with the
    // reason and the way out, then rendered with --ignore-mac.
    let stderr = fails(env.render("labelled", &[]));
    assert!(
        stderr.contains("cannot decrypt Secret prod/db: MAC mismatch"),
        "{stderr}"
    );
    assert!(stderr.contains("--ignore-mac"), "{stderr}");
    let labels = json!({"env": "prod"});
    assert_eq!(
        ok(env.render("labelled", &["--ignore-mac"])),
        expected(Some(labels.clone()))
    );
    let mut command = env.command(Path::new(env!("CARGO_BIN_EXE_gitseal")));
    command
        .arg("render")
        .env("GITSEAL_IGNORE_MAC", "true")
        .env("GITSEAL_PRIVATE_KEYS", env.path("sealing-keys.yaml"))
        .current_dir(env.path("labelled"));
    assert_eq!(ok(command.output().unwrap()), expected(Some(labels)));

    // A broken kustomization: kustomize's own error, and render fails.
    env.write("broken/kustomization.yaml", "resources:\n- missing.yaml\n");
    let stderr = fails(env.render("broken", &[]));
    assert!(stderr.contains("failed"), "{stderr}");
}

#[test]
fn plain_manifest_directory() {
    let Some(env) = Env::new() else { return };
    assert_eq!(ok(env.render("plain", &[])), expected(None));

    // Without the sealing keys, SealedSecrets are left for the controller.
    let output = env
        .command(Path::new(env!("CARGO_BIN_EXE_gitseal")))
        .args(["render", "plain"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let docs = ok(output);
    assert_eq!(docs[0]["kind"], "SealedSecret");
    assert_eq!(docs[1..], expected(None)[1..]);
    assert!(stderr.contains("1 SealedSecret(s) left sealed"), "{stderr}");

    // Keys that did not seal it: the reason and the usual causes.
    let other = PrivateKey::generate(2048).unwrap();
    env.write("other-key.pem", &other.to_pkcs1_pem().unwrap());
    let output = env
        .command(Path::new(env!("CARGO_BIN_EXE_gitseal")))
        .args(["render", "plain", "--private-key", "other-key.pem"])
        .output()
        .unwrap();
    let stderr = fails(output);
    assert!(
        stderr.contains("cannot unseal SealedSecret prod/api") && stderr.contains("hint:"),
        "{stderr}"
    );

    // A tampered value: the reason, no output.
    let path = env.path("plain/db.enc.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("password: ENC[AES256_GCM,data:").unwrap() + 30;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&path, bytes).unwrap();
    let stderr = fails(env.render("plain", &[]));
    assert!(
        stderr.contains("cannot decrypt Secret prod/db: stringData.password: could not decrypt"),
        "{stderr}"
    );

    // A SopsSecret is left for the controller, still encrypted, even with its key at hand.
    let sops_secret = "apiVersion: isindir.github.com/v1alpha3\nkind: SopsSecret\n\
        metadata:\n  name: app\nspec:\n  secretTemplates:\n  - name: app\n    \
        stringData:\n      token: sops-secret-token-3c9e\n";
    env.write("sops/app.yaml", sops_secret);
    let encrypted = env.gitseal(&[
        "sops",
        "encrypt",
        "--age",
        &AgeIdentities::parse(&std::fs::read_to_string(env.path("keys.txt")).unwrap())
            .unwrap()
            .recipients()[0],
        "--encrypted-suffix",
        "Templates",
        env.path("sops/app.yaml").to_str().unwrap(),
    ]);
    assert!(encrypted.status.success());
    env.write(
        "sops/app.yaml",
        std::str::from_utf8(&encrypted.stdout).unwrap(),
    );
    let docs = ok(env.render("sops", &[]));
    assert_eq!(docs[0]["kind"], "SopsSecret");
    let token = docs[0]["spec"]["secretTemplates"][0]["stringData"]["token"].as_str();
    assert!(token.unwrap().starts_with("ENC[AES256_GCM,"), "{docs:?}");

    // A file that is not a manifest.
    env.write("notes/readme.yaml", "title: not a resource\n");
    let stderr = fails(env.render("notes", &[]));
    assert!(stderr.contains("has no kind"), "{stderr}");
}

/// The Argo CD example: the plugin's `generate` and `discover` commands, run as the
/// sidecar runs them (`sh -c`, in the source directory), with the key paths the sidecar
/// patch mounts.
#[test]
fn argocd_plugin_example_runs() {
    let Some(env) = Env::new() else { return };
    let examples = gitseal_tests::repo_dir().join("examples/argocd");
    let plugin = std::fs::read(examples.join("plugin.yaml")).unwrap();
    let plugin = gitseal::manifest::parse_documents(&plugin)
        .unwrap()
        .remove(0);
    assert_eq!(plugin["kind"], "ConfigManagementPlugin");
    let script = |pointer: &str| {
        let spec = plugin.pointer(pointer).unwrap();
        assert_eq!(spec["command"], json!(["sh", "-c"]));
        spec["args"][0].as_str().unwrap().to_owned()
    };
    let bin = env.path("bin");
    let gitseal = bin.join("gitseal");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gitseal"), &gitseal).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let run = |script: &str, dir: &str, vars: &[(&str, &str)]| {
        let mut command = env.command(Path::new("sh"));
        command
            .args(["-c", script])
            .env("PATH", &path)
            .env("GITSEAL_PRIVATE_KEYS", env.path("sealing-keys.yaml"))
            .envs(vars.iter().copied())
            .current_dir(env.path(dir));
        command.output().unwrap()
    };
    let generate = script("/spec/generate");
    assert_eq!(ok(run(&generate, "same", &[])), expected(None));
    let ignore = [("ARGOCD_ENV_GITSEAL_IGNORE_MAC", "true")];
    assert_eq!(
        ok(run(&generate, "labelled", &ignore)),
        expected(Some(json!({"env": "prod"})))
    );
    let discover = script("/spec/discover/find");
    for (dir, found) in [("base", true), ("plain", true), ("labelled", false)] {
        let output = run(&discover, dir, &[]);
        assert_eq!(!output.stdout.is_empty(), found, "{dir}");
    }

    // The sidecar mounts what the plugin reads.
    let sidecar = std::fs::read(examples.join("repo-server-sidecar.yaml")).unwrap();
    let sidecar = gitseal::manifest::parse_documents(&sidecar)
        .unwrap()
        .remove(0);
    let container = &sidecar["spec"]["template"]["spec"]["containers"][0];
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert!(mounts.contains(&"/home/argocd/cmp-server/config/plugin.yaml"));
    for var in container["env"].as_array().unwrap() {
        let file = Path::new(var["value"].as_str().unwrap());
        let dir = file.parent().unwrap().to_str().unwrap();
        assert!(mounts.contains(&dir), "{} is not mounted", file.display());
    }
}
