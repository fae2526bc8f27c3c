//! Conformance through the real `kubectl` against the `kube-test-server` binary:
//! `create`, `get` (table and `-o yaml`), `apply --server-side`, `get -w`, `delete`,
//! custom resources, a clean stop on SIGTERM, and the imperative commands (`create namespace`,
//! `create secret generic`, … which send protobuf; `label`, `annotate`; `create token`).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Server {
    fn start(dir: &Path) -> Self {
        let kubeconfig = dir.join("kubeconfig");
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kube-test-server"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kube-test-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), kubeconfig.to_str().unwrap());
        eprintln!("kube-test-server ready in {:?}", started.elapsed());
        Self {
            child,
            kubeconfig,
            dir: dir.to_owned(),
        }
    }

    fn kubectl(&self, args: &[&str]) -> Command {
        let mut command = Command::new(kubectl().unwrap());
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args);
        command
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = self.kubectl(args).output().expect("run kubectl");
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (
            output.status.success(),
            text(output.stdout),
            text(output.stderr),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "kubectl {args:?} failed: {err}");
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kubectl() -> Option<PathBuf> {
    gitseal_tests::tool("kubectl", "GITSEAL_KUBECTL")
}

/// A scratch directory, removed when the returned value is dropped (keep it alive
/// while a [`Server`] uses it).
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("gitseal-testkit-{name}-"))
        .tempdir()
        .unwrap()
}

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
  labels: {app: demo}
stringData:
  password: hunter2
";

#[test]
fn kubectl_create_get_apply_watch_delete() {
    if kubectl().is_none() {
        return;
    }
    let tmp = temp_dir("kubectl");
    let dir = tmp.path();
    let server = Server::start(dir);
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let secret = file("secret.yaml", SECRET);

    assert_eq!(
        server.ok(&["create", "-f", &secret]).trim(),
        "secret/db created"
    );
    let table = server.ok(&["get", "secrets"]);
    assert!(
        table.starts_with("NAME") && table.contains("db") && table.contains("Opaque"),
        "{table}"
    );
    let yaml = server.ok(&["get", "secret", "db", "-o", "yaml"]);
    assert!(yaml.contains("password: aHVudGVyMg=="), "{yaml}");
    assert!(
        yaml.contains("resourceVersion:") && yaml.contains("uid:"),
        "{yaml}"
    );
    let (ok, _, err) = server.run(&["create", "-f", &secret]);
    assert!(!ok && err.contains("already exists"), "{err}");

    // Server-side apply, twice, the second time with a change.
    let cm = file(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n",
    );
    assert_eq!(
        server.ok(&["apply", "--server-side", "-f", &cm]).trim(),
        "configmap/settings serverside-applied"
    );
    let cm2 = file(
        "cm2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: safe\n",
    );
    server.ok(&["apply", "--server-side", "-f", &cm2]);
    assert_eq!(
        server.ok(&[
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.mode}"
        ]),
        "safe"
    );
    let managed = server.ok(&[
        "get",
        "configmap",
        "settings",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(
        managed.contains("manager: kubectl") && managed.contains("operation: Apply"),
        "{managed}"
    );

    // get -w sees an object created while it watches.
    let mut watch = server
        .kubectl(&["get", "configmaps", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.contains("EVENT") || first.contains("ADDED"),
        "{first}"
    );
    let late = file(
        "late.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n",
    );
    server.ok(&["create", "-f", &late]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_late = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("ADDED") && line.contains("late") {
            saw_late = true;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no watch event for the new ConfigMap"
        );
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(saw_late);

    // Custom resources: the CRD makes the kind servable to kubectl, with validation.
    let crd = file(
        "crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
",
    );
    server.ok(&["apply", "--server-side", "-f", &crd]);
    let widget = file(
        "widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n",
    );
    assert_eq!(
        server.ok(&["create", "-f", &widget]).trim(),
        "widget.example.com/w1 created"
    );
    assert!(server.ok(&["get", "wd"]).contains("w1"));
    let bad = file(
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  size: big\n",
    );
    let (ok, _, err) = server.run(&["create", "-f", &bad]);
    assert!(!ok && err.contains("spec.size"), "{err}");

    // kubectl asks for strict field validation: an undeclared field is an error.
    let unknown = file(
        "unknown.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w3\nspec:\n  size: 1\n  colour: red\n",
    );
    let (ok, _, err) = server.run(&["create", "-f", &unknown]);
    assert!(
        !ok && err.contains("unknown field \"spec.colour\""),
        "{err}"
    );

    // delete.
    assert_eq!(
        server.ok(&["delete", "-f", &secret]).trim(),
        "secret \"db\" deleted"
    );
    let (ok, _, err) = server.run(&["get", "secret", "db"]);
    assert!(!ok && err.contains("NotFound"), "{err}");
}

#[test]
fn sigterm_stops_the_server_and_removes_its_kubeconfig() {
    let tmp = temp_dir("sigterm");
    let dir = tmp.path();
    let mut server = Server::start(dir);
    assert!(server.kubeconfig.exists());
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kube-test-server ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!server.kubeconfig.exists());
    let mut rest = String::new();
    let _ = server
        .child
        .stdout
        .take()
        .map(|mut s| s.read_to_string(&mut rest));
}

/// Parses `kubectl … -o json` output.
fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn kubectl_imperative_commands_send_protobuf() {
    if kubectl().is_none() {
        return;
    }
    let tmp = temp_dir("kubectl-imperative");
    let dir = tmp.path();
    let server = Server::start(dir);
    // These commands send protobuf bodies.
    assert_eq!(
        server.ok(&["create", "namespace", "team"]).trim(),
        "namespace/team created"
    );
    assert_eq!(
        server
            .ok(&[
                "create",
                "secret",
                "generic",
                "db",
                "-n",
                "team",
                "--from-literal=password=hunter2",
                "--from-literal=user=app",
            ])
            .trim(),
        "secret/db created"
    );
    server.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team",
        "--from-literal=mode=safe",
    ]);
    server.ok(&["create", "serviceaccount", "robot", "-n", "team"]);
    server.ok(&[
        "create",
        "service",
        "clusterip",
        "web",
        "-n",
        "team",
        "--tcp=80:8080",
    ]);
    server.ok(&[
        "create",
        "role",
        "reader",
        "-n",
        "team",
        "--verb=get,list",
        "--resource=secrets",
    ]);
    server.ok(&[
        "create",
        "rolebinding",
        "reader",
        "-n",
        "team",
        "--role=reader",
        "--serviceaccount=team:robot",
    ]);
    server.ok(&[
        "create",
        "clusterrole",
        "delegator",
        "--verb=create",
        "--resource=tokenreviews.authentication.k8s.io",
    ]);
    server.ok(&[
        "create",
        "clusterrolebinding",
        "delegator",
        "--clusterrole=delegator",
        "--serviceaccount=team:robot",
    ]);
    // label and annotate send merge / strategic merge patches.
    assert_eq!(
        server
            .ok(&["label", "secret", "db", "-n", "team", "tier=backend"])
            .trim(),
        "secret/db labeled"
    );
    server.ok(&[
        "annotate",
        "configmap",
        "settings",
        "-n",
        "team",
        "owner=ops",
    ]);

    let ns = json_of(&server.ok(&["get", "namespace", "team", "-o", "json"]));
    assert_eq!(ns["status"]["phase"], "Active");
    let secret = json_of(&server.ok(&["get", "secret", "db", "-n", "team", "-o", "json"]));
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");
    assert_eq!(secret["data"]["user"], "YXBw");
    assert_eq!(secret["metadata"]["labels"]["tier"], "backend");
    assert!(
        secret["metadata"].get("generateName").is_none(),
        "empty protobuf strings are unset: {secret}"
    );
    let cm = json_of(&server.ok(&["get", "cm", "settings", "-n", "team", "-o", "json"]));
    assert_eq!(cm["data"]["mode"], "safe");
    assert_eq!(cm["metadata"]["annotations"]["owner"], "ops");
    let svc = json_of(&server.ok(&["get", "svc", "web", "-n", "team", "-o", "json"]));
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    let binding =
        json_of(&server.ok(&["get", "rolebinding", "reader", "-n", "team", "-o", "json"]));
    assert_eq!(binding["roleRef"]["name"], "reader");
    assert_eq!(binding["subjects"][0]["name"], "robot");
    let yaml = server.ok(&["get", "configmap", "settings", "-n", "team", "-o", "yaml"]);
    assert!(
        yaml.contains("mode: safe") && yaml.contains("owner: ops"),
        "{yaml}"
    );

    // `kubectl create token` (a protobuf TokenRequest); the token works as a bearer token
    // with the rights of the Role bound to the service account, and passes a TokenReview.
    let token = server.ok(&["create", "token", "robot", "-n", "team", "--audience=vault"]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let listed = server.ok(&[
        "--token", token, "get", "secrets", "-n", "team", "-o", "name",
    ]);
    assert_eq!(listed.trim(), "secret/db");
    let (ok, _, err) = server.run(&["--token", token, "get", "configmaps", "-n", "team"]);
    assert!(!ok && err.contains("forbidden"), "{err}");
    let review = |token: &str, name: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: {token}\n"
            ),
        )
        .unwrap();
        json_of(&server.ok(&["create", "-f", path.to_str().unwrap(), "-o", "json"]))
    };
    let status = review(token, "review.yaml")["status"].clone();
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["username"],
        "system:serviceaccount:team:robot"
    );
    let status = review("made.up.token", "bogus.yaml")["status"].clone();
    assert_eq!(status["authenticated"], false, "{status}");
}
