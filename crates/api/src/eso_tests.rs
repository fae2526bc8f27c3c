//! Tests of the External Secrets Operator kinds: the example manifests in
//! `tests/eso-manifests/` parse into the types and fit the CRD schemas, and the CRDs
//! have ESO's shape (versions, columns, defaults, CEL rules).

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::eso_schema::cel_rules;
use crate::external_secret::{
    DATA_FROM_RULES, REWRITE_RULES, SOURCE_REF_RULES, SPEC_RULES, TARGET_RULES, TEMPLATE_RULES,
};
use crate::store::PROVIDER_RULES;
use crate::*;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/eso-manifests")
}

fn manifests() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(manifest_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn manifest<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let text = std::fs::read_to_string(manifest_dir().join(file)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn crd_for(kind: &str) -> CustomResourceDefinition {
    match kind {
        "ExternalSecret" => external_secret_crd(),
        "SecretStore" => secret_store_crd(),
        "ClusterSecretStore" => cluster_secret_store_crd(),
        "ClusterExternalSecret" => cluster_external_secret_crd(),
        other => panic!("unexpected kind {other}"),
    }
}

fn schema_of(crd: &CustomResourceDefinition, version: &str) -> Value {
    let v = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == version)
        .unwrap();
    serde_json::to_value(
        v.schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

/// A small structural check: every field is declared (or the object keeps unknown
/// fields), types and enums match, required fields are present.
fn check(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    if schema.get("x-kubernetes-int-or-string") == Some(&json!(true)) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errors.push(format!("{path}: not int-or-string"));
        }
        return;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        errors.push(format!("{path}: {value} not in {values:?}"));
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("integer") => value.is_i64() || value.is_u64(),
        _ => true,
    };
    if !ok {
        errors.push(format!("{path}: {value} has the wrong type"));
        return;
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && pattern == "^[-._a-zA-Z0-9]+$"
        && !value
            .as_str()
            .unwrap_or_default()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        errors.push(format!("{path}: does not match {pattern}"));
    }
    match value {
        Value::Object(map) => {
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = required.as_str().unwrap();
                let defaulted = schema["properties"][name].get("default").is_some();
                if !map.contains_key(name) && !defaulted {
                    errors.push(format!("{path}: missing {required}"));
                }
            }
            let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
            for (key, child) in map {
                if let Some(prop) = schema.get("properties").and_then(|p| p.get(key)) {
                    check(child, prop, &format!("{path}.{key}"), errors);
                } else if let Some(additional) = schema.get("additionalProperties") {
                    check(child, additional, &format!("{path}.{key}"), errors);
                } else if !preserve && schema.get("properties").is_some() {
                    errors.push(format!("{path}.{key}: unknown field (would be pruned)"));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(item, &schema["items"], &format!("{path}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

#[test]
fn every_manifest_parses_and_fits_its_crd_in_both_versions() {
    let mut versions = std::collections::BTreeSet::new();
    let mut kinds = std::collections::BTreeSet::new();
    for (file, text) in manifests() {
        let value: Value = serde_saphyr::from_str(&text).unwrap();
        let api_version = value["apiVersion"].as_str().unwrap();
        let kind = value["kind"].as_str().unwrap();
        let version = api_version.strip_prefix("external-secrets.io/").unwrap();
        versions.insert((kind.to_owned(), version.to_owned()));
        kinds.insert(kind.to_owned());
        let mut errors = Vec::new();
        check(&value, &schema_of(&crd_for(kind), version), "", &mut errors);
        assert!(errors.is_empty(), "{file}: {errors:#?}");
        // Round trip through the Rust types keeps every field the manifest has.
        let back = match kind {
            "ExternalSecret" => serde_json::to_value(manifest::<ExternalSecret>(&file)),
            "SecretStore" => serde_json::to_value(manifest::<SecretStore>(&file)),
            "ClusterSecretStore" => serde_json::to_value(manifest::<ClusterSecretStore>(&file)),
            "ClusterExternalSecret" => {
                serde_json::to_value(manifest::<ClusterExternalSecret>(&file))
            }
            _ => unreachable!(),
        }
        .unwrap();
        assert_contains(&back, &value, &file);
    }
    assert_eq!(kinds.len(), 4);
    for kind in &kinds {
        for version in ["v1", "v1beta1"] {
            assert!(
                versions.contains(&(kind.clone(), version.to_owned())),
                "no {version} example of {kind}"
            );
        }
    }
}

/// `have` contains every field of `want` (values compared as strings for scalars, since
/// the types write defaults and normalise numbers).
fn assert_contains(have: &Value, want: &Value, file: &str) {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => {
            for (k, wv) in w {
                if k == "apiVersion" {
                    continue;
                }
                let hv = h
                    .get(k)
                    .unwrap_or_else(|| panic!("{file}: field {k} lost in {have}"));
                assert_contains(hv, wv, file);
            }
        }
        (Value::Array(h), Value::Array(w)) => {
            assert_eq!(h.len(), w.len(), "{file}");
            for (hv, wv) in h.iter().zip(w) {
                assert_contains(hv, wv, file);
            }
        }
        (h, w) => assert_eq!(h, w, "{file}"),
    }
}

#[test]
fn vault_stores_parse_with_defaults() {
    let token: SecretStore = manifest("vault-secretstore-token.yaml");
    let vault = token.spec.provider.vault.as_ref().unwrap();
    assert_eq!(vault.server, "http://my.vault.server:8200");
    assert_eq!(vault.path.as_deref(), Some("secret"));
    assert_eq!(vault.version, VaultKvVersion::V2);
    let token_ref = vault
        .auth
        .as_ref()
        .unwrap()
        .token_secret_ref
        .as_ref()
        .unwrap();
    assert_eq!(token_ref.name, "vault-token");
    assert_eq!(token_ref.key.as_deref(), Some("token"));
    assert_eq!(token.spec.provider.name(), Some("vault"));

    let k8s: SecretStore = manifest("vault-secretstore-kubernetes.yaml");
    let vault = k8s.spec.provider.vault.unwrap();
    assert_eq!(vault.namespace.as_deref(), Some("team-a"));
    let ca = vault.ca_provider.unwrap();
    assert_eq!(
        (ca.type_, ca.name.as_str(), ca.key.as_str()),
        (CaProviderType::ConfigMap, "vault-ca", "ca.crt")
    );
    let kube_auth = vault.auth.unwrap().kubernetes.unwrap();
    assert_eq!(kube_auth.mount_path, "kubernetes");
    assert_eq!(kube_auth.role, "demo");
    let sa = kube_auth.service_account_ref.unwrap();
    assert_eq!(
        (sa.name.as_str(), sa.audiences.as_slice()),
        ("my-sa", &["vault".to_owned()][..])
    );

    let approle: SecretStore = manifest("vault-secretstore-approle.v1beta1.yaml");
    let vault = approle.spec.provider.vault.unwrap();
    assert_eq!(vault.version, VaultKvVersion::V1);
    let role = vault.auth.unwrap().app_role.unwrap();
    assert_eq!(role.path, "approle", "serde default of the mount path");
    assert_eq!(
        role.role_id.as_deref(),
        Some("db02de05-fa39-4855-059b-67221c5c2f63")
    );
    assert_eq!(role.secret_ref.key.as_deref(), Some("secret-id"));

    let jwt: ClusterSecretStore = manifest("vault-clustersecretstore-jwt.v1beta1.yaml");
    assert_eq!(jwt.spec.conditions.len(), 2);
    assert_eq!(jwt.spec.conditions[0].namespaces, ["team-a", "team-b"]);
    assert!(jwt.spec.conditions[1].namespace_selector.is_some());
    let auth = jwt.spec.provider.vault.unwrap().auth.unwrap().jwt.unwrap();
    assert_eq!(auth.path, "jwt");
    assert_eq!(auth.role.as_deref(), Some("external-secrets"));
    let sat = auth.kubernetes_service_account_token.unwrap();
    assert_eq!(
        sat.service_account_ref.namespace.as_deref(),
        Some("external-secrets")
    );
    assert_eq!(sat.expiration_seconds, Some(600));
}

#[test]
fn aws_and_unknown_providers_parse() {
    let css: ClusterSecretStore = manifest("aws-clustersecretstore.yaml");
    assert_eq!(css.spec.refresh_interval, Some(IntOrString::Int(300)));
    let retry = css.spec.retry_settings.as_ref().unwrap();
    assert_eq!(
        (retry.max_retries, retry.retry_interval.as_deref()),
        (Some(5), Some("10s"))
    );
    assert_eq!(css.spec.conditions[0].namespace_regexes, ["^prod-"]);
    let aws = css.spec.provider.aws.as_ref().unwrap();
    assert_eq!(aws.service, AwsServiceType::SecretsManager);
    assert_eq!(aws.region, "eu-central-1");
    assert_eq!(
        aws.role.as_deref(),
        Some("arn:aws:iam::123456789012:role/team-a-reader")
    );
    let secret_ref = aws.auth.as_ref().unwrap().secret_ref.as_ref().unwrap();
    assert_eq!(
        secret_ref.access_key_id_secret_ref.key.as_deref(),
        Some("access-key")
    );
    assert_eq!(
        secret_ref.secret_access_key_secret_ref.namespace.as_deref(),
        Some("external-secrets")
    );
    assert!(secret_ref.session_token_secret_ref.is_none());
    let json = serde_json::to_value(&css).unwrap();
    assert_eq!(json["apiVersion"], "external-secrets.io/v1");
    assert_eq!(json["kind"], "ClusterSecretStore");
    assert!(
        json["spec"]["provider"]["aws"]["auth"]["secretRef"]["accessKeyIDSecretRef"].is_object()
    );

    let irsa: SecretStore = manifest("aws-secretstore-irsa.v1beta1.yaml");
    let jwt = irsa.spec.provider.aws.unwrap().auth.unwrap().jwt.unwrap();
    assert_eq!(jwt.service_account_ref.unwrap().name, "my-serviceaccount");

    let gcp: SecretStore = manifest("gcp-secretstore-unsupported.yaml");
    assert_eq!(gcp.spec.provider.name(), Some("gcpsm"));
    assert_eq!(gcp.spec.provider.other["gcpsm"]["projectID"], "my-project");
    let json = serde_json::to_value(&gcp.spec.provider).unwrap();
    assert_eq!(json["gcpsm"]["projectID"], "my-project");
}

#[test]
fn external_secrets_parse_with_defaults() {
    let es: ExternalSecret = manifest("externalsecret.yaml");
    let store = es.spec.secret_store_ref.as_ref().unwrap();
    assert_eq!(
        (store.name.as_str(), store.kind),
        ("vault-backend", StoreKind::SecretStore)
    );
    assert_eq!(es.spec.refresh_interval.as_deref(), Some("1h"));
    assert_eq!(es.spec.target.creation_policy, CreationPolicy::Owner);
    assert_eq!(es.spec.target.deletion_policy, DeletionPolicy::Retain);
    let template = es.spec.target.template.as_ref().unwrap();
    assert_eq!(
        template.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    assert_eq!(template.merge_policy, TemplateMergePolicy::Replace);
    assert!(template.data[".dockerconfigjson"].contains("b64enc"));
    assert_eq!(template.metadata.as_ref().unwrap().labels["app"], "example");
    assert_eq!(es.spec.data.len(), 2);
    let remote = &es.spec.data[1].remote_ref;
    assert_eq!(
        (
            remote.key.as_str(),
            remote.property.as_deref(),
            remote.version.as_deref()
        ),
        ("foo/bar", Some("user"), Some("2"))
    );
    assert_eq!(remote.decoding_strategy, DecodingStrategy::None);
    assert_eq!(remote.conversion_strategy, ConversionStrategy::Default);
    assert_eq!(remote.metadata_policy, MetadataPolicy::None);
    assert_eq!(
        es.spec.data_from[0].extract.as_ref().unwrap().key,
        "foo/registry"
    );
    let find = es.spec.data_from[1].find.as_ref().unwrap();
    assert_eq!(find.name.as_ref().unwrap().regexp, ".*-config");
    let rewrite = es.spec.data_from[1].rewrite[0].regexp.as_ref().unwrap();
    assert_eq!(
        (rewrite.source.as_str(), rewrite.target.as_str()),
        ("app/(.*)", "$1")
    );

    let es: ExternalSecret = manifest("externalsecret-templatefrom.v1beta1.yaml");
    assert_eq!(
        es.spec.secret_store_ref.unwrap().kind,
        StoreKind::ClusterSecretStore
    );
    assert_eq!(es.spec.target.creation_policy, CreationPolicy::Merge);
    assert_eq!(es.spec.target.deletion_policy, DeletionPolicy::Merge);
    let template = es.spec.target.template.unwrap();
    assert_eq!(template.merge_policy, TemplateMergePolicy::Merge);
    let cm = template.template_from[0].config_map.as_ref().unwrap();
    assert_eq!(cm.items[0].template_as, TemplateScope::Values);
    assert_eq!(
        template.template_from[1].target.as_deref(),
        Some("Annotations")
    );
    assert_eq!(
        es.spec.data[0].remote_ref.decoding_strategy,
        DecodingStrategy::Auto
    );
}

#[test]
fn cluster_external_secrets_parse() {
    let ces: ClusterExternalSecret = manifest("clusterexternalsecret.yaml");
    assert_eq!(ces.spec.external_secret_name.as_deref(), Some("shared-db"));
    assert_eq!(
        ces.spec.external_secret_metadata.as_ref().unwrap().labels["owner"],
        "platform"
    );
    assert_eq!(ces.spec.namespace_selectors.len(), 1);
    assert_eq!(ces.spec.refresh_time.as_deref(), Some("1m"));
    assert_eq!(ces.spec.external_secret_spec.data[0].secret_key, "url");

    let ces: ClusterExternalSecret = manifest("clusterexternalsecret.v1beta1.yaml");
    assert!(ces.spec.namespace_selector.is_some());
    assert_eq!(
        ces.spec.external_secret_spec.data_from[0]
            .extract
            .as_ref()
            .unwrap()
            .key,
        "shared/config"
    );
}

#[test]
fn enums_read_leniently_and_write_wire_names() {
    let es: ExternalSecret = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "x"},
        "spec": {
            "secretStoreRef": {"name": "s", "kind": "SomethingNew"},
            "refreshPolicy": "OnChange",
            "target": {"creationPolicy": "", "deletionPolicy": 3},
            "data": [{"secretKey": "a", "remoteRef": {"key": "k", "decodingStrategy": "Base64URL"}}]
        },
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced", "message": "secret synced", "lastTransitionTime": "2026-01-01T00:00:00Z"}], "refreshTime": "2026-01-01T00:00:00Z", "binding": {"name": "x"}}
    }))
    .unwrap();
    assert_eq!(
        es.spec.secret_store_ref.as_ref().unwrap().kind,
        StoreKind::SecretStore
    );
    assert_eq!(es.spec.refresh_policy, Some(RefreshPolicy::OnChange));
    assert_eq!(es.spec.target.creation_policy, CreationPolicy::Owner);
    assert_eq!(es.spec.target.deletion_policy, DeletionPolicy::Retain);
    assert_eq!(
        es.spec.data[0].remote_ref.decoding_strategy,
        DecodingStrategy::Base64URL
    );
    let status = es.status.as_ref().unwrap();
    assert_eq!(status.conditions[0].reason.as_deref(), Some("SecretSynced"));
    let back = serde_json::to_value(&es).unwrap();
    assert_eq!(back["spec"]["target"]["creationPolicy"], "Owner");
    assert_eq!(
        back["spec"]["data"][0]["remoteRef"]["decodingStrategy"],
        "Base64URL"
    );
    assert_eq!(back["spec"]["refreshPolicy"], "OnChange");
    assert_eq!(
        CreationPolicy::VALUES,
        ["Owner", "Orphan", "Merge", "None", "CreateOrMerge"]
    );
    assert_eq!(VaultKvVersion::V2.to_string(), "v2");
}

#[test]
fn referent_namespace_rule_matches_eso() {
    assert_eq!(validate_referent_namespace(false, Some("a"), None), Ok(()));
    assert_eq!(
        validate_referent_namespace(false, Some("a"), Some("a")),
        Ok(())
    );
    assert_eq!(
        validate_referent_namespace(false, Some("a"), Some("b")),
        Err(ERR_NAMESPACE_NOT_ALLOWED)
    );
    assert_eq!(validate_referent_namespace(true, None, Some("b")), Ok(()));
}

#[test]
fn crds_have_esos_shape() {
    let expect = [
        (
            "externalsecrets.external-secrets.io",
            "Namespaced",
            "es",
            external_secret_crd(),
        ),
        (
            "secretstores.external-secrets.io",
            "Namespaced",
            "ss",
            secret_store_crd(),
        ),
        (
            "clustersecretstores.external-secrets.io",
            "Cluster",
            "css",
            cluster_secret_store_crd(),
        ),
        (
            "clusterexternalsecrets.external-secrets.io",
            "Cluster",
            "ces",
            cluster_external_secret_crd(),
        ),
    ];
    for (name, scope, short, crd) in expect {
        assert_eq!(crd.metadata.name.as_deref(), Some(name));
        assert_eq!(crd.spec.group, EXTERNAL_SECRETS_GROUP);
        assert_eq!(crd.spec.scope, scope, "{name}");
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&[short.to_owned()][..])
        );
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["external-secrets".to_owned()][..])
        );
        assert_eq!(
            crd.spec.names.list_kind.as_deref(),
            Some(format!("{}List", crd.spec.names.kind).as_str())
        );
        assert!(crd.spec.conversion.is_none(), "no conversion webhook");
        let names: Vec<_> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.served, v.storage))
            .collect();
        assert_eq!(names, [("v1", true, true), ("v1beta1", true, false)]);
        let (v1, v1beta1) = (&crd.spec.versions[0], &crd.spec.versions[1]);
        assert_eq!(v1.schema, v1beta1.schema);
        assert_eq!(
            v1.additional_printer_columns,
            v1beta1.additional_printer_columns
        );
        assert!(v1.subresources.as_ref().unwrap().status.is_some());
        assert!(v1beta1.subresources.as_ref().unwrap().status.is_some());
    }
    let columns = |crd: CustomResourceDefinition| -> Vec<(String, String)> {
        crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), c.json_path.clone()))
            .collect()
    };
    let ready_reason = ".status.conditions[?(@.type==\"Ready\")].reason".to_owned();
    let ready_status = ".status.conditions[?(@.type==\"Ready\")].status".to_owned();
    assert_eq!(
        columns(external_secret_crd()),
        [
            (
                "StoreType".to_owned(),
                ".spec.secretStoreRef.kind".to_owned()
            ),
            ("Store".to_owned(), ".spec.secretStoreRef.name".to_owned()),
            (
                "Refresh Interval".to_owned(),
                ".spec.refreshInterval".to_owned()
            ),
            ("Status".to_owned(), ready_reason.clone()),
            ("Ready".to_owned(), ready_status.clone()),
            ("Last Sync".to_owned(), ".status.refreshTime".to_owned()),
        ]
    );
    for crd in [secret_store_crd(), cluster_secret_store_crd()] {
        assert_eq!(
            columns(crd),
            [
                ("AGE".to_owned(), ".metadata.creationTimestamp".to_owned()),
                ("Status".to_owned(), ready_reason.clone()),
                ("Capabilities".to_owned(), ".status.capabilities".to_owned()),
                ("Ready".to_owned(), ready_status.clone()),
            ]
        );
    }
    assert_eq!(
        columns(cluster_external_secret_crd()),
        [
            (
                "Store".to_owned(),
                ".spec.externalSecretSpec.secretStoreRef.name".to_owned()
            ),
            (
                "Refresh Interval".to_owned(),
                ".spec.refreshTime".to_owned()
            ),
            ("Ready".to_owned(), ready_status),
        ]
    );
}

#[test]
fn schema_defaults_are_esos() {
    let es = schema_of(&external_secret_crd(), "v1");
    let spec = &es["properties"]["spec"]["properties"];
    assert_eq!(spec["refreshInterval"]["default"], "1h0m0s");
    assert_eq!(
        spec["secretStoreRef"]["properties"]["kind"]["default"],
        "SecretStore"
    );
    assert_eq!(
        spec["target"]["default"],
        json!({"creationPolicy": "Owner", "deletionPolicy": "Retain"})
    );
    let target = &spec["target"]["properties"];
    assert_eq!(target["creationPolicy"]["default"], "Owner");
    assert_eq!(target["deletionPolicy"]["default"], "Retain");
    assert_eq!(
        target["template"]["properties"]["engineVersion"]["default"],
        "v2"
    );
    assert_eq!(
        target["template"]["properties"]["mergePolicy"]["default"],
        "Replace"
    );
    let remote = &spec["data"]["items"]["properties"]["remoteRef"]["properties"];
    assert_eq!(remote["decodingStrategy"]["default"], "None");
    assert_eq!(remote["conversionStrategy"]["default"], "Default");
    assert_eq!(remote["metadataPolicy"]["default"], "None");
    let secret_key = &spec["data"]["items"]["properties"]["secretKey"];
    assert_eq!(secret_key["pattern"], "^[-._a-zA-Z0-9]+$");
    assert_eq!(secret_key["maxLength"], 253);
    assert_eq!(spec["data"]["maxItems"], MAX_DATA_ITEMS);

    let store = schema_of(&secret_store_crd(), "v1");
    let provider = &store["properties"]["spec"]["properties"]["provider"];
    assert_eq!(provider["minProperties"], 1);
    assert_eq!(provider["maxProperties"], 1);
    assert_eq!(provider["x-kubernetes-preserve-unknown-fields"], true);
    let vault = &provider["properties"]["vault"]["properties"];
    assert_eq!(vault["version"]["default"], "v2");
    let auth = &vault["auth"]["properties"];
    assert_eq!(auth["appRole"]["properties"]["path"]["default"], "approle");
    assert_eq!(
        auth["kubernetes"]["properties"]["mountPath"]["default"],
        "kubernetes"
    );
    assert_eq!(auth["jwt"]["properties"]["path"]["default"], "jwt");
    assert_eq!(
        auth["userPass"]["properties"]["path"]["default"],
        "userpass"
    );
}

#[test]
fn every_cel_rule_is_in_the_crds() {
    let es_rules: Vec<_> = [
        SPEC_RULES,
        TARGET_RULES,
        TEMPLATE_RULES,
        DATA_FROM_RULES,
        SOURCE_REF_RULES,
        REWRITE_RULES,
    ]
    .concat()
    .iter()
    .map(|(r, m)| (r.to_string(), m.to_string()))
    .collect();
    for crd in [external_secret_crd(), cluster_external_secret_crd()] {
        let found = cel_rules(&schema_of(&crd, "v1"));
        for rule in &es_rules {
            assert!(found.contains(rule), "{rule:?} missing");
        }
        assert_eq!(found.len(), es_rules.len());
    }
    for crd in [secret_store_crd(), cluster_secret_store_crd()] {
        let found = cel_rules(&schema_of(&crd, "v1beta1"));
        let expected: Vec<_> = PROVIDER_RULES
            .iter()
            .map(|(r, m)| (r.to_string(), m.to_string()))
            .collect();
        assert_eq!(found, expected);
    }
    let messages: Vec<_> = es_rules.iter().map(|(_, m)| m.as_str()).collect();
    for message in [
        "either data or dataFrom should be specified",
        "either extract, find, or sourceRef must be set to dataFrom",
        "extract, find, or generatorRef cannot be set at the same time",
        "generatorRef or storeRef must be set when using sourceRef in dataFrom",
        "deletionPolicy=Delete must not be used when the controller doesn't own the secret. Please set creationPolicy=Owner",
        "deletionPolicy=Merge must not be used with creationPolicy=None. There is no Secret to merge with",
        "template.type=\"bootstrap.kubernetes.io/token\" is not allowed",
    ] {
        assert!(messages.contains(&message), "{message}");
    }
}

/// Evaluates every CEL rule of `schema` on the matching parts of `value`, as the API
/// server does, and returns the messages of the rules that fail (or do not evaluate).
fn cel_failures(value: &Value, schema: &Value) -> Vec<String> {
    use std::sync::Arc;
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings).unwrap();
    let env = Arc::new(env);
    let mut out = Vec::new();
    walk_cel(&env, value, schema, &mut out);
    out
}

fn walk_cel(env: &std::sync::Arc<cel::Env>, value: &Value, schema: &Value, out: &mut Vec<String>) {
    for rule in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let source = rule["rule"].as_str().unwrap();
        let program = env
            .compile(source)
            .unwrap_or_else(|e| panic!("{source}: {e:?}"));
        let mut context = cel::Context::with_env(env.clone());
        context.add_variable("self", value).unwrap();
        match program.execute(&context) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => out.push(rule["message"].as_str().unwrap().to_owned()),
            other => panic!("{source} on {value}: {other:?}"),
        }
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if let Some(prop) = schema.get("properties").and_then(|p| p.get(key)) {
                    walk_cel(env, child, prop, out);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| walk_cel(env, item, &schema["items"], out)),
        _ => {}
    }
}

#[test]
fn every_manifest_passes_the_cel_rules() {
    for (file, text) in manifests() {
        let value: Value = serde_saphyr::from_str(&text).unwrap();
        let crd = crd_for(value["kind"].as_str().unwrap());
        let failures = cel_failures(&value, &schema_of(&crd, "v1"));
        assert!(failures.is_empty(), "{file}: {failures:?}");
    }
}

#[test]
fn cel_rules_reject_what_esos_webhook_rejects() {
    let base: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(manifest_dir().join("externalsecret.yaml")).unwrap(),
    )
    .unwrap();
    let schema = schema_of(&external_secret_crd(), "v1");
    let rejects = |edit: &dyn Fn(&mut Value), message: &str| {
        let mut es = base.clone();
        edit(&mut es);
        let failures = cel_failures(&es, &schema);
        assert!(
            failures.iter().any(|f| f == message),
            "expected {message:?}, got {failures:?}"
        );
        // The same spec inside a ClusterExternalSecret is rejected the same way.
        let ces = json!({"spec": {"externalSecretSpec": es["spec"].clone()}});
        let failures = cel_failures(&ces, &schema_of(&cluster_external_secret_crd(), "v1"));
        assert!(failures.iter().any(|f| f == message), "CES: {message:?}");
    };
    rejects(
        &|es| {
            let spec = es["spec"].as_object_mut().unwrap();
            spec.remove("data");
            spec.remove("dataFrom");
        },
        "either data or dataFrom should be specified",
    );
    rejects(
        &|es| es["spec"]["dataFrom"] = json!([{}]),
        "either extract, find, or sourceRef must be set to dataFrom",
    );
    rejects(
        &|es| es["spec"]["dataFrom"] = json!([{"extract": {"key": "a"}, "find": {"path": "b"}}]),
        "extract, find, or generatorRef cannot be set at the same time",
    );
    rejects(
        &|es| {
            es["spec"]["dataFrom"] = json!([{"extract": {"key": "a"},
                "sourceRef": {"generatorRef": {"kind": "Password", "name": "p"}}}])
        },
        "extract, find, or generatorRef cannot be set at the same time",
    );
    rejects(
        &|es| es["spec"]["dataFrom"] = json!([{"sourceRef": {}}]),
        "generatorRef or storeRef must be set when using sourceRef in dataFrom",
    );
    for creation in ["Merge", "None", "CreateOrMerge"] {
        rejects(
            &|es| {
                es["spec"]["target"]["creationPolicy"] = json!(creation);
                es["spec"]["target"]["deletionPolicy"] = json!("Delete");
            },
            "deletionPolicy=Delete must not be used when the controller doesn't own the secret. Please set creationPolicy=Owner",
        );
    }
    rejects(
        &|es| {
            es["spec"]["target"]["creationPolicy"] = json!("None");
            es["spec"]["target"]["deletionPolicy"] = json!("Merge");
        },
        "deletionPolicy=Merge must not be used with creationPolicy=None. There is no Secret to merge with",
    );
    rejects(
        &|es| es["spec"]["data"][1]["secretKey"] = json!("password"),
        "duplicate secretKey found",
    );
    rejects(
        &|es| {
            es["spec"]["target"]
                .as_object_mut()
                .unwrap()
                .remove("deletionPolicy");
            es["spec"]["data"][1]["secretKey"] = json!("password");
        },
        "duplicate secretKey found",
    );
    rejects(
        &|es| es["spec"]["target"]["template"]["type"] = json!("bootstrap.kubernetes.io/token"),
        "template.type=\"bootstrap.kubernetes.io/token\" is not allowed",
    );
    rejects(
        &|es| {
            let t = &mut es["spec"]["target"]["template"];
            t["type"] = json!("kubernetes.io/service-account-token");
            t["metadata"]["annotations"] = json!({"kubernetes.io/service-account.name": "default"});
        },
        "template.type=\"kubernetes.io/service-account-token\" with annotation \"kubernetes.io/service-account.name\" is not allowed",
    );
    rejects(
        &|es| {
            let t = &mut es["spec"]["target"]["template"];
            t["type"] = json!("kubernetes.io/service-account-token");
            t["templateFrom"] = json!([{"target": "annotations", "literal": "x: y"}]);
        },
        "template.type=\"kubernetes.io/service-account-token\" with templateFrom target=\"Annotations\" is not allowed",
    );
    rejects(
        &|es| {
            es["spec"]["target"]["template"]["templateFrom"] =
                json!([{"target": "Spec", "literal": "x"}])
        },
        "templateFrom target is not allowed when targeting a Secret, must be one of \"Data\", \"Annotations\" or \"Labels\"",
    );
    rejects(
        &|es| es["spec"]["dataFrom"][1]["rewrite"] = json!([{}]),
        "exactly one of regexp, transform or merge must be set in a rewrite",
    );
    rejects(
        &|es| {
            es["spec"]["dataFrom"][1]["rewrite"] =
                json!([{"regexp": {"source": "a", "target": "b"}, "transform": {"template": "x"}}])
        },
        "exactly one of regexp, transform or merge must be set in a rewrite",
    );

    // Accepted: what ESO accepts.
    let accepted = |edit: &dyn Fn(&mut Value)| {
        let mut es = base.clone();
        edit(&mut es);
        let failures = cel_failures(&es, &schema);
        assert!(failures.is_empty(), "{failures:?}");
    };
    accepted(&|es| {
        es["spec"]["target"]["deletionPolicy"] = json!("Delete");
        es["spec"]["data"][1]["secretKey"] = json!("password");
    });
    accepted(&|es| {
        es["spec"]["target"]["creationPolicy"] = json!("Merge");
        es["spec"]["target"]["deletionPolicy"] = json!("Merge");
    });
    accepted(&|es| {
        es["spec"]["target"]["template"]["templateFrom"] =
            json!([{"target": "LABELS", "literal": "a: b"}, {"target": "", "literal": "c"}]);
    });
    accepted(&|es| {
        es["spec"]["target"]["manifest"] = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        es["spec"]["target"]["template"]["templateFrom"] =
            json!([{"target": "spec.data", "literal": "x"}]);
    });
    accepted(&|es| {
        es["spec"]["dataFrom"] =
            json!([{"sourceRef": {"generatorRef": {"kind": "Password", "name": "p"}}}]);
    });
}

#[test]
fn store_cel_rule_rejects_two_providers() {
    let store = json!({"spec": {"provider": {
        "vault": {"server": "https://v"},
        "aws": {"service": "SecretsManager", "region": "x"}
    }}});
    assert_eq!(
        cel_failures(&store, &schema_of(&secret_store_crd(), "v1")),
        ["exactly one provider must be set"]
    );
}

#[test]
fn schemas_are_structural() {
    fn walk(schema: &Value, path: &str) {
        let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&json!(true));
        assert!(
            schema.get("type").is_some() || int_or_string,
            "{path}: no type"
        );
        assert!(
            !(schema.get("properties").is_some() && schema.get("additionalProperties").is_some()),
            "{path}: properties and additionalProperties"
        );
        for key in ["anyOf", "oneOf", "allOf", "$ref"] {
            assert!(schema.get(key).is_none(), "{path}: {key}");
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                walk(v, &format!("{path}.{k}"));
            }
        }
        if let Some(items) = schema.get("items") {
            walk(items, &format!("{path}[]"));
        }
        if let Some(additional) = schema.get("additionalProperties") {
            walk(additional, &format!("{path}{{}}"));
        }
    }
    for (file, crd) in crds() {
        for version in &crd.spec.versions {
            let schema = serde_json::to_value(
                version
                    .schema
                    .as_ref()
                    .unwrap()
                    .open_api_v3_schema
                    .as_ref()
                    .unwrap(),
            )
            .unwrap();
            walk(&schema, &format!("{file}:{}", version.name));
        }
    }
}
