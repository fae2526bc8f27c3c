//! Sealing Secrets into SealedSecrets and unsealing them offline, exactly as kubeseal
//! transforms them (spec `sealed-secrets.md` §4.3–§4.8), but for one deliberate addition:
//! the input's [`GITOPS_ANNOTATIONS`] are also put on the SealedSecret's own metadata.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gitseal_crypto::sealed::{
    ANNOTATION_CLUSTER_WIDE, ANNOTATION_NAMESPACE_WIDE, Keyring, PrivateKey, PublicKey, Scope,
    UnsealFailure, seal,
};
use serde_json::{Map, Value, json};

use crate::manifest::{self, ordered_object_meta, sorted};

/// Annotations that would leak plaintext into the SealedSecret (#227).
const LAST_APPLIED: [&str; 2] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubecfg.ksonnet.io/last-applied-configuration",
];

/// Metadata the API server sets; never copied into a SealedSecret.
const SERVER_FIELDS: [&str; 8] = [
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

/// GitOps annotations carried from an input Secret onto the SealedSecret's own metadata.
///
/// kubeseal puts the input's annotations only into `spec.template.metadata`, so they reach
/// the Secret the controller makes, but Argo CD and Flux read them from the object they
/// apply: the SealedSecret. A sync wave, hook or prune setting written on the input Secret
/// would otherwise order or protect nothing (sealed-secrets #1625). They are kept in the
/// template too. An entry ending in `/` stands for every annotation under that prefix.
/// `--no-gitops-annotations` turns the copy off.
pub const GITOPS_ANNOTATIONS: [&str; 6] = [
    "argocd.argoproj.io/sync-wave",
    "argocd.argoproj.io/sync-options",
    "argocd.argoproj.io/compare-options",
    "argocd.argoproj.io/hook",
    "argocd.argoproj.io/hook-delete-policy",
    "kustomize.toolkit.fluxcd.io/",
];

/// Whether `key` is one of the [`GITOPS_ANNOTATIONS`].
pub fn is_gitops_annotation(key: &str) -> bool {
    GITOPS_ANNOTATIONS
        .iter()
        .any(|entry| match entry.strip_suffix('/') {
            Some(prefix) => key
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|name| !name.is_empty()),
            None => key == *entry,
        })
}

/// How to seal.
pub struct SealOptions<'a> {
    /// The controller's public key.
    pub key: &'a PublicKey,
    /// `--scope` (strict means: take the scope from the input's annotations).
    pub scope: Scope,
    /// `--name`: overrides the input's name.
    pub name: Option<String>,
    /// `-n` given explicitly.
    pub namespace: Option<String>,
    /// The namespace of the kubeconfig context (or `default`).
    pub default_namespace: String,
    /// `--allow-empty-data`.
    pub allow_empty_data: bool,
    /// Copy the input's [`GITOPS_ANNOTATIONS`] onto the SealedSecret's own metadata (off
    /// with `--no-gitops-annotations`).
    pub gitops_annotations: bool,
}

fn annotations(meta: &Map<String, Value>) -> Vec<(String, String)> {
    meta.get("annotations")
        .and_then(Value::as_object)
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The scope a SealedSecret's (or Secret's) own annotations select.
pub fn scope_of(meta: &Map<String, Value>) -> Scope {
    let annotations = annotations(meta);
    Scope::from_annotations(annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Seals one Secret manifest into a SealedSecret manifest.
pub fn seal_secret(mut secret: Value, opts: &SealOptions<'_>) -> anyhow::Result<Value> {
    let object = manifest::expect_object(&mut secret, "input document")?;
    if let Some(kind) = object
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| *k != "Secret")
    {
        bail!("input document is a {kind}, not a Secret: only Secrets can be sealed");
    }
    let data = object
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let string_data = object
        .get("stringData")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if data.is_empty() && string_data.is_empty() && !opts.allow_empty_data {
        bail!(
            "secret is empty: it has no data or stringData (use --allow-empty-data to seal it anyway)"
        );
    }
    let mut meta = object
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(name) = &opts.name {
        meta.insert("name".into(), json!(name));
    }
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if name.is_empty() {
        bail!("missing metadata.name in input Secret");
    }
    if opts.scope != Scope::Strict {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Value::Object(annotations) = annotations {
            annotations.remove(ANNOTATION_CLUSTER_WIDE);
            annotations.remove(ANNOTATION_NAMESPACE_WIDE);
            let key = opts.scope.annotation().expect("not strict");
            annotations.insert(key.into(), json!("true"));
        }
    }
    let scope = scope_of(&meta);
    let mut namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if scope != Scope::ClusterWide {
        if let Some(explicit) = &opts.namespace {
            if !namespace.is_empty() && &namespace != explicit {
                bail!(
                    "namespace mismatch: the input Secret {name:?} is in namespace {namespace:?} but --namespace is {explicit:?}"
                );
            }
            namespace = explicit.clone();
        }
        if namespace.is_empty() {
            namespace = opts.default_namespace.clone();
        }
    } else if namespace.is_empty() {
        namespace = opts.namespace.clone().unwrap_or_default();
    }
    if !namespace.is_empty() {
        meta.insert("namespace".into(), json!(namespace));
    }
    for field in SERVER_FIELDS {
        meta.remove(field);
    }
    meta.remove("ownerReferences");
    if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
        for key in LAST_APPLIED {
            annotations.remove(key);
        }
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }

    let label = scope.label(&namespace, &name);
    let mut encrypted = Map::new();
    for (key, value) in &data {
        let text = value
            .as_str()
            .with_context(|| format!("data[{key:?}] is not a string"))?;
        let bytes = STANDARD
            .decode(text.trim())
            .with_context(|| format!("data[{key:?}] is not valid base64"))?;
        encrypted.insert(key.clone(), json!(seal(opts.key, &label, &bytes)?));
    }
    for (key, value) in &string_data {
        let text = value
            .as_str()
            .with_context(|| format!("stringData[{key:?}] must be a string (quote it in YAML)"))?;
        encrypted.insert(key.clone(), json!(seal(opts.key, &label, text.as_bytes())?));
    }

    let mut top = Map::new();
    top.insert("name".into(), json!(name));
    if !namespace.is_empty() {
        top.insert("namespace".into(), json!(namespace));
    }
    let mut top_annotations = Map::new();
    if opts.gitops_annotations
        && let Some(Value::Object(annotations)) = meta.get("annotations")
    {
        for (key, value) in annotations.iter().filter(|(k, _)| is_gitops_annotation(k)) {
            top_annotations.insert(key.clone(), value.clone());
        }
    }
    if let Some(annotation) = scope.annotation() {
        top_annotations.insert(annotation.into(), json!("true"));
    }
    if !top_annotations.is_empty() {
        top.insert("annotations".into(), Value::Object(top_annotations));
    }
    let mut template = Map::new();
    template.insert("metadata".into(), Value::Object(ordered_object_meta(&meta)));
    for field in ["type", "immutable"] {
        if let Some(value) = object.get(field).filter(|v| !v.is_null()) {
            template.insert(field.into(), value.clone());
        }
    }
    Ok(json!({
        "kind": "SealedSecret",
        "apiVersion": "bitnami.com/v1alpha1",
        "metadata": ordered_object_meta(&top),
        "spec": {"template": template, "encryptedData": sorted(&Value::Object(encrypted))},
    }))
}

/// Reads and loads the key files of `--recovery-private-key` / `--private-key` (see
/// [`load_recovery_keys`]); what is read is wiped once the keys are loaded.
pub fn load_recovery_key_files(paths: &[std::path::PathBuf]) -> anyhow::Result<Keyring> {
    let mut contents = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = crate::file::read(path, gitseal_crypto::limits::KEY_MATERIAL)
            .with_context(|| format!("cannot read {}", path.display()))?;
        contents.push((path.display().to_string(), bytes));
    }
    load_recovery_keys(&contents)
}

/// Loads private keys for `--recovery-unseal`: PEM keys (PKCS#1 or PKCS#8), Secrets with
/// `data["tls.key"]` (JSON or YAML, one or many), or a `v1.List` backup of them.
pub fn load_recovery_keys(contents: &[(String, impl AsRef<[u8]>)]) -> anyhow::Result<Keyring> {
    let mut keys = Vec::new();
    for (name, bytes) in contents {
        let bytes = bytes.as_ref();
        if let Ok(key) = PrivateKey::from_pem(bytes) {
            keys.push(key);
            continue;
        }
        let documents = manifest::parse_documents(bytes)
            .with_context(|| format!("{name}: neither a PEM private key nor a Secret manifest"))?;
        let mut found = 0;
        for document in documents {
            let items = match document.get("items").and_then(Value::as_array) {
                Some(items) => items.clone(),
                None => vec![document],
            };
            for item in items {
                let Some(encoded) = manifest::text(&item, "/data/tls.key") else {
                    continue;
                };
                let pem = STANDARD
                    .decode(encoded)
                    .with_context(|| format!("{name}: tls.key is not base64"))?;
                keys.push(PrivateKey::from_pem(&pem).with_context(|| format!("{name}: tls.key"))?);
                found += 1;
            }
        }
        if found == 0 {
            bail!("{name}: no private key found (expected PEM, or Secrets with data[\"tls.key\"])");
        }
    }
    if keys.is_empty() {
        bail!("--recovery-unseal needs at least one --recovery-private-key");
    }
    Ok(Keyring::new(keys))
}

/// Unseals a SealedSecret manifest with `keyring` into the Secret the controller would make.
pub fn unseal_sealed_secret(mut sealed: Value, keyring: &Keyring) -> anyhow::Result<Value> {
    let object = manifest::expect_object(&mut sealed, "input document")?;
    let meta = object
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let spec = object
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let name = meta.get("name").and_then(Value::as_str).unwrap_or_default();
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // The controller's own code opens it: items, and the templates rendered as it renders
    // them. The message of a malformed document would quote it, so it is not shown.
    let typed: gitseal_api::SealedSecret = serde_json::from_value(Value::Object(object.clone()))
        .map_err(|_| anyhow::anyhow!("input document is not a valid SealedSecret"))?;
    let keys: Vec<&PrivateKey> = keyring.keys().iter().collect();
    let opened = typed
        .unseal(&keys, false)
        .map_err(|failure| RecoveryFailure {
            failure,
            scope: scope_of(&meta),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })?;
    let data: Map<String, Value> = opened
        .data
        .iter()
        .map(|(k, v)| (k.clone(), json!(STANDARD.encode(v))))
        .collect();
    let template = spec
        .get("template")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut secret_meta = template
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    secret_meta.insert("name".into(), json!(name));
    secret_meta.insert("namespace".into(), json!(namespace));
    secret_meta.insert(
        "ownerReferences".into(),
        json!([{
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "name": name,
            "uid": meta.get("uid").cloned().unwrap_or(json!("")),
            "controller": true,
        }]),
    );
    let mut secret = Map::new();
    secret.insert("kind".into(), json!("Secret"));
    secret.insert("apiVersion".into(), json!("v1"));
    secret.insert(
        "metadata".into(),
        Value::Object(ordered_object_meta(&secret_meta)),
    );
    if let Some(immutable) = template.get("immutable").filter(|v| !v.is_null()) {
        secret.insert("immutable".into(), immutable.clone());
    }
    secret.insert("data".into(), sorted(&Value::Object(data)));
    if let Some(kind) = template.get("type").filter(|v| !v.is_null()) {
        secret.insert("type".into(), kind.clone());
    }
    Ok(Value::Object(secret))
}

/// A failed `--recovery-unseal`, with what the user can check.
#[derive(Debug, thiserror::Error)]
#[error("{failure}")]
pub struct RecoveryFailure {
    failure: UnsealFailure,
    scope: Scope,
    namespace: String,
    name: String,
}

impl RecoveryFailure {
    /// Advice on the usual causes (spec §6).
    pub fn hint(&self) -> String {
        let bound = match self.scope {
            Scope::Strict => format!("the Secret {}/{} (strict scope)", self.namespace, self.name),
            Scope::NamespaceWide => format!("namespace {} (namespace-wide scope)", self.namespace),
            Scope::ClusterWide => "any namespace (cluster-wide scope)".to_owned(),
        };
        format!(
            "these values would unseal only if they were sealed for {bound} with one of the given \
             keys; check the SealedSecret's name, namespace and scope annotations against how it \
             was sealed, and that the keys are the controller's (including older ones)"
        )
    }
}
