//! The Helm chart `charts/gitseal`, rendered with the real `helm`: it lints and renders
//! with the defaults and with every toggle combination that changes what it renders; every
//! manifest of a built-in kind validates offline against the Kubernetes schemas
//! (kubernetes-validate, strict); the ServiceMonitor and PrometheusRule are checked for
//! structure; a reconciler toggled off loses its RBAC rules and nothing else does; values
//! violating `values.schema.json` are refused; the schema describes every value; and the
//! README's values table is what `scripts/chart-values-table.py` generates.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gitseal_tests::{repo_dir, tool, tool_from_env};
use serde_json::{Value, json};

const NAMESPACE: &str = "kube-system";

fn chart_dir() -> PathBuf {
    repo_dir().join("charts/gitseal")
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `helm <verb> <chart> --namespace kube-system --set ...` for `lint` and `template`.
fn helm_command(helm: &Path, verb: &str, sets: &[&str]) -> Command {
    let mut command = Command::new(helm);
    command.arg(verb);
    if verb == "template" {
        command.arg("gitseal");
    }
    command
        .arg(chart_dir())
        .args(["--namespace", NAMESPACE])
        .args(sets.iter().flat_map(|s| ["--set", s]));
    command
}

/// The documents `helm template` renders with `sets`.
fn render(helm: &Path, sets: &[&str]) -> Vec<Value> {
    let output = run(&mut helm_command(helm, "template", sets));
    assert!(
        output.status.success(),
        "helm template {sets:?}: {}",
        stderr(&output)
    );
    let text = String::from_utf8(output.stdout).expect("helm prints UTF-8");
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).expect("rendered YAML parses");
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(documents, kind);
    assert_eq!(found.len(), 1, "one {kind} expected, got {}", found.len());
    found[0]
}

/// Every rule of every Role and ClusterRole, as `kind/name: rule` strings.
fn rbac_rules(documents: &[Value]) -> Vec<String> {
    let mut rules: Vec<String> = documents
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
        .flat_map(|d| {
            let owner = format!(
                "{}/{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["namespace"].as_str().unwrap_or(""),
                d["metadata"]["name"].as_str().unwrap()
            );
            d["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .map(move |rule| format!("{owner}: {rule}"))
        })
        .collect();
    rules.sort();
    rules
}

/// The toggle combinations that change what the chart renders.
const COMBINATIONS: &[&[&str]] = &[
    &[],
    &["externalSecrets.enabled=false"],
    &["sopsSecrets.enabled=false"],
    &["externalSecrets.enabled=false", "sopsSecrets.enabled=false"],
    &["replicas=3"],
    &[
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
    ],
    &["networkPolicy.enabled=false"],
    &[
        "rbac.namespacedRoles=true",
        "additionalNamespaces={team-a,team-b}",
    ],
    &[
        "replicas=2",
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.interval=30s",
        "metrics.prometheusRule.enabled=true",
        "metrics.prometheusRule.alertLabels.severity=critical",
        "externalSecrets.enabled=false",
        "networkPolicy.metrics.namespaceSelector.matchLabels.team=monitoring",
        "networkPolicy.egress[0].ports[0].port=443",
        "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/gitseal",
        "refresh.serviceAccounts={ci:refresher}",
    ],
];

/// Kinds the chart renders that come from CRDs (not in kubernetes-validate's schemas).
const CUSTOM_KINDS: &[&str] = &["ServiceMonitor", "PrometheusRule"];

/// Validates `documents` (built-in kinds) with kubernetes-validate --strict, offline; every
/// one must be reported as passed.
fn validate_builtin(python: &Path, documents: &[&Value]) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("gitseal-chart-")
        .tempdir()
        .unwrap();
    let files: Vec<PathBuf> = documents
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            let path = dir.path().join(format!("{i}.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
            path
        })
        .collect();
    let output = run(Command::new(python)
        .args(["-m", "kubernetes_validate", "--strict"])
        .args(&files));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    let passed = text
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    if !output.status.success() || passed != documents.len() {
        return Err(format!("{passed} of {} passed:\n{text}", documents.len()));
    }
    Ok(())
}

#[test]
fn chart_lints_renders_and_validates_in_every_combination() {
    let Some(helm) = tool("helm", "GITSEAL_HELM") else {
        return;
    };
    let Some(python) = tool_from_env(
        "GITSEAL_VALIDATE_PYTHON",
        "a Python with kubernetes-validate installed",
    ) else {
        return;
    };
    for sets in COMBINATIONS {
        let lint = run(&mut helm_command(&helm, "lint", sets));
        assert!(
            lint.status.success(),
            "helm lint {sets:?}: {}",
            String::from_utf8_lossy(&lint.stdout)
        );
        let documents = render(&helm, sets);
        let builtin: Vec<&Value> = documents
            .iter()
            .filter(|d| !CUSTOM_KINDS.contains(&d["kind"].as_str().unwrap_or("")))
            .collect();
        assert!(builtin.len() >= 10, "{sets:?}: {} documents", builtin.len());
        if let Err(report) = validate_builtin(&python, &builtin) {
            panic!("kubernetes-validate {sets:?}: {report}");
        }
        let deployment = one(&documents, "Deployment");
        assert_restricted(&deployment["spec"]["template"]["spec"]);
    }

    // The validator does refuse what is not in the schema, so the pass above means something.
    let documents = render(&helm, &[]);
    let mut deployment = one(&documents, "Deployment").clone();
    deployment["spec"]["template"]["spec"]["containers"][0]["secretContext"] = json!({});
    let report = validate_builtin(&python, &[&deployment]).expect_err("an unknown field fails");
    assert!(report.contains("secretContext"), "{report}");
}

/// The pod meets Pod Security's `restricted` profile (the checks that apply to it).
fn assert_restricted(pod: &Value) {
    let pod_context = &pod["securityContext"];
    assert_eq!(pod_context["runAsNonRoot"], true, "{pod_context}");
    assert_ne!(pod_context["runAsUser"], 0);
    assert_eq!(pod_context["seccompProfile"]["type"], "RuntimeDefault");
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod.get(key).is_none_or(|v| v == false), "{key}");
    }
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        assert!(
            volume.get("emptyDir").is_some() || volume.get("secret").is_some(),
            "restricted volume types only: {volume}"
        );
    }
    let containers = pod["containers"].as_array().expect("containers");
    for container in containers {
        let context = &container["securityContext"];
        assert_eq!(context["allowPrivilegeEscalation"], false, "{context}");
        assert_eq!(context["readOnlyRootFilesystem"], true, "{context}");
        assert_eq!(context["capabilities"]["drop"], json!(["ALL"]), "{context}");
        assert!(context["capabilities"].get("add").is_none(), "{context}");
        assert!(context.get("privileged").is_none_or(|v| v == false));
        for port in container["ports"].as_array().into_iter().flatten() {
            assert!(port.get("hostPort").is_none(), "{port}");
        }
    }
}

#[test]
fn replicas_bring_a_disruption_budget_and_spreading() {
    let Some(helm) = tool("helm", "GITSEAL_HELM") else {
        return;
    };
    let single = render(&helm, &[]);
    assert!(of_kind(&single, "PodDisruptionBudget").is_empty());
    let pod = &one(&single, "Deployment")["spec"]["template"]["spec"];
    assert!(pod.get("topologySpreadConstraints").is_none(), "{pod}");

    let three = render(&helm, &["replicas=3"]);
    let deployment = one(&three, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    let budget = one(&three, "PodDisruptionBudget");
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    assert_eq!(&budget["spec"]["selector"]["matchLabels"], selector);
    let spread = &deployment["spec"]["template"]["spec"]["topologySpreadConstraints"];
    assert_eq!(
        spread,
        &json!([{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
        }])
    );

    // A value replaces the default spreading.
    let zones = render(
        &helm,
        &[
            "replicas=3",
            "topologySpreadConstraints[0].maxSkew=2",
            "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
            "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
        ],
    );
    let spread =
        &one(&zones, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"];
    assert_eq!(spread.as_array().unwrap().len(), 1);
    assert_eq!(spread[0]["topologyKey"], "topology.kubernetes.io/zone");

    // IRSA: ServiceAccount annotations.
    let irsa = render(
        &helm,
        &["serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/x"],
    );
    let account = one(&irsa, "ServiceAccount");
    assert_eq!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::1:role/x"
    );
}

#[test]
fn network_policy_opens_the_two_ports_only() {
    let Some(helm) = tool("helm", "GITSEAL_HELM") else {
        return;
    };
    let documents = render(&helm, &[]);
    let policy = one(&documents, "NetworkPolicy");
    let deployment = one(&documents, "Deployment");
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        policy["spec"]["policyTypes"],
        json!(["Ingress"]),
        "egress stays open"
    );
    assert_eq!(
        policy["spec"]["ingress"],
        json!([
            {"ports": [{"protocol": "TCP", "port": "http"}]},
            {"ports": [{"protocol": "TCP", "port": "metrics"}]},
        ])
    );
    let ports: Vec<&Value> = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(ports, [&json!("http"), &json!("metrics")]);

    let restricted = render(
        &helm,
        &[
            "networkPolicy.metrics.namespaceSelector.matchLabels.team=monitoring",
            "networkPolicy.egress[0].ports[0].port=443",
        ],
    );
    let policy = one(&restricted, "NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["spec"]["ingress"][1]["from"],
        json!([{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}])
    );
    assert_eq!(
        policy["spec"]["egress"],
        json!([{"ports": [{"port": 443}]}])
    );

    let off = render(&helm, &["networkPolicy.enabled=false"]);
    assert!(of_kind(&off, "NetworkPolicy").is_empty());
}

#[test]
fn monitoring_objects_are_off_by_default_and_well_formed() {
    let Some(helm) = tool("helm", "GITSEAL_HELM") else {
        return;
    };
    let default = render(&helm, &[]);
    for kind in CUSTOM_KINDS {
        assert!(
            of_kind(&default, kind).is_empty(),
            "{kind} is off by default"
        );
    }
    let on = [
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
    ];
    let documents = render(&helm, &on);

    // The ServiceMonitor selects the metrics Service (only it) and scrapes its named port.
    let monitor = one(&documents, "ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["namespace"], NAMESPACE);
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    let selected: Vec<&Value> = of_kind(&documents, "Service")
        .into_iter()
        .filter(|s| {
            let labels = &s["metadata"]["labels"];
            selector.iter().all(|(k, v)| &labels[k] == v)
        })
        .collect();
    assert_eq!(selected.len(), 1, "the metrics Service only");
    assert_eq!(
        selected[0]["metadata"]["name"],
        "sealed-secrets-controller-metrics"
    );
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!([NAMESPACE])
    );
    let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["port"], "metrics");
    assert_eq!(endpoints[0]["path"], "/metrics");
    assert_eq!(selected[0]["spec"]["ports"][0]["name"], "metrics");

    // The PrometheusRule: every alert well-formed, on the controller's metric names.
    let alerts = alert_rules(&documents);
    let names: Vec<&str> = alerts
        .iter()
        .map(|a| a["alert"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "GitsealUnsealErrors",
            "GitsealKeyRenewalOverdue",
            "GitsealExternalSecretSyncErrors",
            "GitsealExternalSecretNotReady",
            "GitsealSopsSecretFailures",
        ]
    );
    let expr = |name: &str| -> String {
        let alert = alerts.iter().find(|a| a["alert"] == name).unwrap();
        alert["expr"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Counters get `_total` from prometheus_client; ESO's error count is a gauge (no suffix).
    assert!(
        expr("GitsealUnsealErrors")
            .contains("increase(sealed_secrets_controller_unseal_errors_total[10m])")
    );
    assert!(
        expr("GitsealSopsSecretFailures")
            .contains("increase(sopssecrets_reconcilation_failures_total[10m])")
    );
    assert!(
        expr("GitsealExternalSecretSyncErrors")
            .contains("increase(externalsecret_sync_calls_error[10m]) > 0")
    );
    assert_eq!(
        expr("GitsealExternalSecretNotReady"),
        r#"externalsecret_status_condition{condition="Ready",status="False"} == 1"#
    );
    assert_eq!(
        expr("GitsealKeyRenewalOverdue"),
        "(time() - gitseal_controller_latest_key_timestamp_seconds) > 1.1 * \
         gitseal_controller_key_renewal_period_seconds and \
         gitseal_controller_key_renewal_period_seconds > 0"
    );
    let not_ready = alerts
        .iter()
        .find(|a| a["alert"] == "GitsealExternalSecretNotReady")
        .unwrap();
    assert_eq!(not_ready["for"], "15m");
    for alert in &alerts {
        assert_eq!(alert["labels"]["severity"], "warning", "{alert}");
        assert!(
            alert["annotations"]["summary"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        assert!(
            alert["annotations"]["description"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        let text = alert["annotations"].to_string();
        assert_eq!(
            text.matches("{{").count(),
            text.matches("}}").count(),
            "{text}"
        );
        assert!(!alert["expr"].as_str().unwrap().contains("{{"), "{alert}");
        assert!(
            alert.as_object().unwrap().keys().all(|k| [
                "alert",
                "expr",
                "for",
                "labels",
                "annotations"
            ]
            .contains(&k.as_str())),
            "{alert}"
        );
    }

    // A reconciler turned off takes its alerts along; alert labels override the severity.
    let mut fewer = on.to_vec();
    fewer.extend([
        "externalSecrets.enabled=false",
        "sopsSecrets.enabled=false",
        "metrics.prometheusRule.alertLabels.severity=critical",
        "metrics.prometheusRule.alertLabels.team=platform",
    ]);
    let alerts = alert_rules(&render(&helm, &fewer));
    let names: Vec<&str> = alerts
        .iter()
        .map(|a| a["alert"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["GitsealUnsealErrors", "GitsealKeyRenewalOverdue"]);
    for alert in &alerts {
        assert_eq!(
            alert["labels"],
            json!({"severity": "critical", "team": "platform"})
        );
    }

    // A ServiceMonitor without the Service it scrapes is refused.
    let output = run(&mut helm_command(
        &helm,
        "template",
        &[
            "metrics.serviceMonitor.enabled=true",
            "metrics.service.enabled=false",
        ],
    ));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("metrics.service.enabled"),
        "{}",
        stderr(&output)
    );
}

fn alert_rules(documents: &[Value]) -> Vec<Value> {
    let rule = one(documents, "PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    let groups = rule["spec"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["name"], "gitseal-controller");
    groups[0]["rules"].as_array().unwrap().clone()
}

#[test]
fn reconciler_toggles_drop_their_rbac_rules_and_nothing_else() {
    let Some(helm) = tool("helm", "GITSEAL_HELM") else {
        return;
    };
    let eso = |rule: &str| {
        rule.contains("external-secrets.io")
            || rule.contains("\"configmaps\"")
            || rule.contains("serviceaccounts/token")
            || rule.contains("\"apps\"")
            || rule.starts_with("ClusterRole//sealed-secrets-controller-external-secrets:")
    };
    let sops = |rule: &str| rule.contains("isindir.github.com");
    for base in [
        &[][..],
        &["rbac.namespacedRoles=true", "additionalNamespaces={team-a}"][..],
    ] {
        let all = rbac_rules(&render(&helm, base));
        assert!(all.iter().any(|r| eso(r)), "{all:#?}");
        assert!(all.iter().any(|r| sops(r)), "{all:#?}");
        for (toggle, belongs) in [
            (
                "externalSecrets.enabled=false",
                &eso as &dyn Fn(&str) -> bool,
            ),
            ("sopsSecrets.enabled=false", &sops),
        ] {
            let mut sets = base.to_vec();
            sets.push(toggle);
            let fewer = rbac_rules(&render(&helm, &sets));
            let expected: Vec<String> = all.iter().filter(|r| !belongs(r)).cloned().collect();
            assert_eq!(fewer, expected, "{toggle} with {base:?}");
        }
    }

    // The defaults' rules, as the controller tests (controller/tests/rbac.rs) run them.
    let all = rbac_rules(&render(&helm, &[]));
    let unsealer: Vec<&String> = all
        .iter()
        .filter(|r| r.starts_with("ClusterRole//sealed-secrets-controller-unsealer:"))
        .collect();
    assert_eq!(unsealer.len(), 13, "{unsealer:#?}");
    assert_eq!(all.len(), 13 + 6 + 2 + 2, "{all:#?}");
}

/// A temporary values file with `text`.
fn values_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn values_violating_the_schema_are_refused() {
    let Some(helm) = tool("helm", "GITSEAL_HELM") else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("gitseal-chart-")
        .tempdir()
        .unwrap();
    let good = values_file(
        dir.path(),
        "good.yaml",
        "replicas: 2\nnetworkPolicy:\n  enabled: false\n",
    );
    let output = run(helm_command(&helm, "template", &[]).arg("-f").arg(&good));
    assert!(output.status.success(), "{}", stderr(&output));
    for (name, text, complaint) in [
        ("unknown-top.yaml", "replica: 2\n", "replica"),
        (
            "unknown-nested.yaml",
            "networkPolicy:\n  enable: false\n",
            "enable",
        ),
        ("wrong-type.yaml", "replicas: three\n", "replicas"),
        (
            "wrong-bool.yaml",
            "sopsSecrets:\n  enabled: \"no\"\n",
            "enabled",
        ),
        (
            "bad-enum.yaml",
            "image:\n  pullPolicy: Sometimes\n",
            "pullPolicy",
        ),
        (
            "bad-account.yaml",
            "refresh:\n  serviceAccounts: [refresher]\n",
            "serviceAccounts",
        ),
    ] {
        let file = values_file(dir.path(), name, text);
        for verb in ["template", "lint"] {
            let output = run(helm_command(&helm, verb, &[]).arg("-f").arg(&file));
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                stderr(&output)
            );
            assert!(!output.status.success(), "helm {verb} accepted {name}");
            assert!(
                said.contains("schema") && said.contains(complaint),
                "{name}: {said}"
            );
        }
    }
}

/// The `# --` descriptions of values.yaml and the values they describe must all be in the
/// schema: every key of the defaults has a schema property with a description.
#[test]
fn schema_describes_every_value() {
    let chart = chart_dir();
    let schema: Value =
        serde_json::from_slice(&std::fs::read(chart.join("values.schema.json")).unwrap()).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap())
            .expect("values.yaml parses");
    let mut described = 0;
    check_described(&schema, &values, "", &mut described);
    assert!(described > 50, "{described} values described");
}

fn check_described(schema: &Value, values: &Value, path: &str, described: &mut usize) {
    let Some(map) = values.as_object() else {
        return;
    };
    let Some(properties) = schema["properties"].as_object() else {
        // A free-form object (resources, securityContext, labels): described as a whole.
        return;
    };
    if !path.is_empty() {
        assert_eq!(
            schema["additionalProperties"], false,
            "{path}: closed object"
        );
    }
    for (key, value) in map {
        let dotted = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let property = properties
            .get(key)
            .unwrap_or_else(|| panic!("values.schema.json lacks `{dotted}`"));
        assert!(
            property["description"]
                .as_str()
                .is_some_and(|d| d.len() > 10),
            "`{dotted}` has no description in values.schema.json"
        );
        *described += 1;
        check_described(property, value, &dotted, described);
    }
    for key in properties.keys() {
        assert!(
            map.contains_key(key),
            "values.schema.json has `{path}.{key}`, values.yaml not"
        );
    }
}

#[test]
fn readme_values_table_is_generated_from_values() {
    let script = repo_dir().join("scripts/chart-values-table.py");
    let check = |chart: &Path| {
        run(Command::new("python3")
            .arg(&script)
            .arg("--check")
            .arg("--chart")
            .arg(chart))
    };
    let output = check(&chart_dir());
    assert!(output.status.success(), "{}", stderr(&output));

    // A copy whose values.yaml changed is out of date until the script rewrites it.
    let dir = tempfile::Builder::new()
        .prefix("gitseal-chart-")
        .tempdir()
        .unwrap();
    for file in ["values.yaml", "README.md"] {
        std::fs::copy(chart_dir().join(file), dir.path().join(file)).unwrap();
    }
    let values = dir.path().join("values.yaml");
    let text = std::fs::read_to_string(&values).unwrap();
    std::fs::write(&values, text.replace("replicas: 1", "replicas: 2")).unwrap();
    let output = check(dir.path());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("out of date"));
    let rewrite = run(Command::new("python3")
        .arg(&script)
        .arg("--chart")
        .arg(dir.path()));
    assert!(rewrite.status.success(), "{}", stderr(&rewrite));
    assert!(check(dir.path()).status.success());
    let readme = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(readme.contains("| `replicas` | int | `2` |"), "{readme}");

    // An undocumented value is an error, not a silent gap in the table.
    std::fs::write(&values, format!("{text}\nundocumented: 1\n")).unwrap();
    let output = check(dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("undocumented"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn notes_say_how_to_fetch_the_certificate_and_recipient() {
    let Some(helm) = tool("helm", "GITSEAL_HELM") else {
        return;
    };
    let notes = |namespace: &str, sets: &[&str]| -> String {
        let output = run(Command::new(&helm)
            .args([
                "install",
                "gitseal",
                "--dry-run=client",
                "--namespace",
                namespace,
            ])
            .arg(chart_dir())
            .args(sets.iter().flat_map(|s| ["--set", s])));
        assert!(output.status.success(), "{}", stderr(&output));
        let text = String::from_utf8(output.stdout).unwrap();
        text.split_once("NOTES:\n")
            .expect("NOTES printed")
            .1
            .to_owned()
    };
    let default = notes(NAMESPACE, &[]);
    assert!(
        default.contains("\n  kubeseal --fetch-cert > cert.pem\n"),
        "{default}"
    );
    assert!(default.contains(
        "kubectl get --raw /api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/age-recipient"
    ));
    assert!(default.contains("never deletes the Secrets"));

    let elsewhere = notes("secrets", &["sopsSecrets.enabled=false"]);
    assert!(
        elsewhere.contains(
            "kubeseal --controller-name sealed-secrets-controller --controller-namespace secrets --fetch-cert"
        ),
        "{elsewhere}"
    );
    assert!(!elsewhere.contains("age-recipient"), "{elsewhere}");
}
