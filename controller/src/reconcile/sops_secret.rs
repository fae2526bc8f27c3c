//! The SopsSecret reconciler: sops-secrets-operator's `SopsSecret` → one Secret per
//! template, decrypted with the keys the cluster holds ([`crate::sops_keys`]).
//!
//! - **Decryption**: the stored object is turned back into the document its author
//!   encrypted ([`SopsSecret::document`]) and opened with the JSON store: every value's
//!   AES-GCM tag, over the value and its path of mapping keys, must verify, so no value
//!   can be altered or moved to another key. (List positions are not part of the path, as
//!   in sops: values may be swapped between templates; only the MAC sees that.) A value
//!   that does not decrypt writes nothing.
//! - **The MAC** covers the values in document order, which the API server does not keep
//!   (it returns every map's keys sorted). It verifies when the author's maps were in
//!   sorted order (`gitseal sops encrypt` writes SopsSecrets so) and, without
//!   `mac_only_encrypted`, the metadata is as the author wrote it. Otherwise the Secrets
//!   are still written, as sops-secrets-operator does, and the `MacVerified` condition
//!   says `False` with why; `--sops-require-mac` refuses to write them instead.
//! - **Ownership**: created Secrets are controlled by the SopsSecret; an existing Secret
//!   is written only when it is already controlled by it, or annotated
//!   `sopssecret/managed: "true"`, or (with `spec.enforceOwnership`) controlled by an
//!   earlier SopsSecret of the same name, as after a restore. Any other Secret is left
//!   alone and the status says so.
//! - **No decryption when current**: each Secret carries a digest (see
//!   `sealed_secret`) over the SopsSecret's uid and encrypted content, the template's
//!   position and the Secret as written; `status.secrets` names them. When every one
//!   still verifies, the reconcile ends after reading them.
//! - Secrets that a template no longer names are deleted when this SopsSecret controls
//!   them; nothing else is ever deleted, and never on a failure.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use futures::FutureExt;
use futures::future::BoxFuture;
use gitseal_api::{
    ANNOTATION_SOPS_MANAGED, SOPS_SECRET_API_VERSION, SOPS_SECRET_KIND, SopsSecret,
    SopsSecretStatus,
};
use gitseal_backends::key::KeyServices;
use gitseal_crypto::primitives::{HmacSha256, ct_eq, sha256};
use gitseal_crypto::sops::file::{self, OpenOptions};
use gitseal_crypto::sops::store::Format;
use gitseal_crypto::sops::tree::{self, ListItem, Map, MapItem, Node, Scalar};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use tokio::sync::watch;
use zeroize::{Zeroize, Zeroizing};

use super::secret::{self, Applied, DIGEST_ANNOTATION, Ownership, SecretData, Writer};
use super::status::{Condition, next_conditions};
use super::{Reconciled, status};
use crate::Error;
use crate::config::Config;
use crate::context::Context;
use crate::keyring::{Keys, SealingKey};

/// The operator's status messages (the `Status` printer column).
mod message {
    pub const HEALTHY: &str = "Healthy";
    pub const DECRYPT_ERROR: &str = "Decryption error";
    pub const NOT_OWNED: &str = "Child secret is not owned by controller error";
    pub const UPDATE_ERROR: &str = "Child secret update error";
    pub const SUSPENDED: &str = "Reconciliation is suspended";
    pub const UNKNOWN: &str = "Unknown Error";
}

const MAC_NOT_VERIFIED: &str = "the MAC does not match the document as the API server stores \
     it (map keys sorted, metadata rewritten); every value was authenticated with its path of \
     keys, so none was altered or moved to another key, but values swapped between templates, \
     added, removed or taken from an older version of this file would go unnoticed. Encrypt \
     with `gitseal sops encrypt` (sorted keys, mac_only_encrypted) for a verifiable MAC";

impl Reconciled for SopsSecret {
    /// Failures are retried with backoff (at most every five minutes) for as long as they
    /// last: a key may be added later, and a retry costs one decryption attempt.
    fn max_retries(_: &Config) -> u32 {
        u32::MAX
    }
    const SLIM_CACHE: bool = true;
}

/// Starts the SopsSecret reconciler in `namespace` (`None`: all) until `stop`.
pub fn start(
    ctx: Arc<Context>,
    namespace: Option<String>,
    stop: watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    let controller = super::controller::<SopsSecret>(&ctx, namespace.as_deref(), "", true, |_| {});
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("*"),
        "SopsSecret reconciler started"
    );
    super::drive(controller, reconcile, ctx, stop).boxed()
}

/// What a successful sync did.
struct Synced {
    /// The Secrets' names, in template order.
    secrets: Vec<String>,
    /// Whether anything was decrypted, and if so whether the MAC verified.
    mac: Option<bool>,
    /// Whether any Secret was written or deleted.
    wrote: bool,
}

/// Reconciles one SopsSecret, read whole here (the controller caches metadata only).
#[tracing::instrument(skip(meta, ctx), fields(namespace = meta.namespace().unwrap_or_default(), name = meta.name_any()))]
pub async fn reconcile(
    meta: Arc<PartialObjectMeta<SopsSecret>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let metrics = &ctx.metrics.sops_secrets;
    let namespace = meta.namespace().unwrap_or_default();
    let api: Api<SopsSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let object = match api.get_opt(&meta.name_any()).await {
        Ok(Some(object)) => object,
        Ok(None) => {
            ctx.forget_retries(meta.as_ref());
            return Ok(Action::await_change());
        }
        Err(e) => return Err(Error::Fetch(e)),
    };
    if object.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if object.spec.suspend == Some(true) {
        metrics.suspends.inc();
        let ready = Err("reconciliation is suspended (spec.suspend)".to_owned());
        write_status(&ctx, &object, message::SUSPENDED, ready, None, None).await?;
        return Ok(Action::await_change());
    }
    let mut created = Vec::new();
    let outcome = sync(&object, &ctx, &mut created).await;
    match &outcome {
        Ok(synced) => {
            metrics.successes.inc();
            if synced.wrote {
                let note = "Secrets written from the decrypted SopsSecret";
                ctx.event(&object, EventType::Normal, "Decrypted", note)
                    .await;
            }
            let mac = synced.mac.map(|ok| {
                if ok {
                    Ok(())
                } else {
                    Err(MAC_NOT_VERIFIED.to_owned())
                }
            });
            let names = Some(synced.secrets.clone());
            write_status(&ctx, &object, message::HEALTHY, Ok(()), mac, names).await?;
        }
        Err(e) => {
            metrics.failures.inc();
            if let Some(reason) = e.event_reason() {
                ctx.event(&object, EventType::Warning, reason, &e.to_string())
                    .await;
            }
            // API errors are transient: they leave the status alone.
            if !e.is_transient() {
                let text = match e {
                    Error::Decrypt(_) => message::DECRYPT_ERROR,
                    Error::Unmanaged { .. } => message::NOT_OWNED,
                    Error::Immutable(_) => message::UPDATE_ERROR,
                    _ => message::UNKNOWN,
                };
                // Secrets created before the failure are recorded beside the earlier ones.
                let names = (!created.is_empty()).then(|| {
                    let previous = object.status.as_ref().and_then(|s| s.secrets.clone());
                    let mut names = previous.unwrap_or_default();
                    created.retain(|n| !names.contains(n));
                    names.append(&mut created);
                    names
                });
                write_status(&ctx, &object, text, Err(e.to_string()), None, names).await?;
            }
        }
    }
    outcome?;
    ctx.forget_retries(&object);
    Ok(Action::await_change())
}

/// Brings the Secrets of `object` up to date: nothing to do when each one's digest
/// verifies, else decrypt, write, and delete the ones no template names any more.
///
/// The names of the Secrets it writes are added to `written` as it goes, so that a sync
/// failing halfway can still record them (and a later success delete those no template
/// names any more).
async fn sync(
    object: &SopsSecret,
    ctx: &Context,
    written: &mut Vec<String>,
) -> Result<Synced, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let keys = ctx.keyring.snapshot();
    let content = content_hash(object);
    let previous = object.status.as_ref().and_then(|s| s.secrets.clone());
    if let Some(names) = &previous
        && current(object, names, &content, &keys, &api).await?
    {
        tracing::debug!("Secrets up to date (digests match), nothing to decrypt");
        return Ok(Synced {
            secrets: names.clone(),
            mac: None,
            wrote: false,
        });
    }
    let (desired, mac_verified) = decrypt(object, ctx).await?;
    let names: Vec<String> = desired.iter().map(|s| s.name_any()).collect();
    let key = keys.latest().cloned();
    let uid = object.uid();
    let enforce = object.spec.enforce_ownership == Some(true);
    let ownership = |existing: &Secret| ownership(existing, object, enforce);
    let mut wrote = false;
    for (index, desired) in desired.into_iter().enumerate() {
        let existing = api.get_opt(&names[index]).await.map_err(Error::Fetch)?;
        let uid = uid.as_deref();
        let digest = key
            .as_deref()
            .map(|key| move |s: &Secret| digest(key, uid, &content, index, s));
        let writer = Writer {
            kind: SOPS_SECRET_KIND,
            ownership: &ownership,
            digest: digest
                .as_ref()
                .map(|f| (DIGEST_ANNOTATION, f as secret::Digest<'_>)),
            field_manager: None,
            echoes: &ctx.echoes,
        };
        let applied = secret::apply(&api, existing.map(SecretData::new), desired, &writer).await?;
        if applied == Applied::Created {
            written.push(names[index].clone());
        }
        wrote |= applied != Applied::Unchanged;
    }
    for gone in previous.iter().flatten().filter(|n| !names.contains(n)) {
        if let Some(existing) = api.get_opt(gone).await.map_err(Error::Fetch)? {
            let existing = SecretData::new(existing);
            if secret::delete_owned(&api, &existing, uid.as_deref()).await? {
                tracing::info!(secret = %gone, "Secret no longer in the SopsSecret: deleted");
                wrote = true;
            }
        }
    }
    Ok(Synced {
        secrets: names,
        mac: Some(mac_verified),
        wrote,
    })
}

/// Whether the Secrets `names` are exactly what `object` produces: as many as it has
/// templates, each controlled by it with a digest that verifies.
async fn current(
    object: &SopsSecret,
    names: &[String],
    content: &[u8; 32],
    keys: &Keys,
    api: &Api<Secret>,
) -> Result<bool, Error> {
    let status = object.status.as_ref();
    if names.len() != object.spec.secret_templates.len()
        || status.and_then(|s| s.observed_generation) != object.metadata.generation
    {
        return Ok(false);
    }
    let uid = object.uid();
    for (index, name) in names.iter().enumerate() {
        let Some(secret) = api.get_opt(name).await.map_err(Error::Fetch)? else {
            return Ok(false);
        };
        let secret = SecretData::new(secret);
        let recorded = secret.annotations().get(DIGEST_ANNOTATION);
        let key = recorded
            .and_then(|r| r.split_once(':'))
            .and_then(|(id, _)| keys.by_id(id));
        let (Some(recorded), Some(key)) = (recorded, key) else {
            return Ok(false);
        };
        let expected = digest(key, uid.as_deref(), content, index, &secret);
        if !secret::is_controlled_by(&secret, uid.as_deref())
            || !ct_eq(expected.as_bytes(), recorded.as_bytes())
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// SHA-256 over the encrypted content (`spec` and `sops`, as stored).
fn content_hash(object: &SopsSecret) -> [u8; 32] {
    let content = serde_json::json!([object.spec, object.sops]);
    sha256(&serde_json::to_vec(&content).unwrap_or_default())
}

/// The digest of `secret`, written from template `index` of the SopsSecret with `uid`
/// and `content`, under `key`: `<key id>:<hex HMAC>`.
fn digest(
    key: &SealingKey,
    uid: Option<&str>,
    content: &[u8; 32],
    index: usize,
    secret: &Secret,
) -> String {
    let mut mac = HmacSha256::new(key.digest_key());
    mac.update_field(b"gitseal sopssecret digest v1");
    mac.update_field(uid.unwrap_or_default().as_bytes());
    mac.update_field(content);
    mac.update_field(&(index as u64).to_be_bytes());
    secret::digest_fields(&mut mac, secret);
    format!("{}:{}", key.id, hex::encode(mac.finish()))
}

/// How `existing` may be written for `object` (see the module documentation).
fn ownership(existing: &Secret, object: &SopsSecret, enforce: bool) -> Ownership {
    let uid = object.uid();
    if secret::is_controlled_by(existing, uid.as_deref()) {
        return Ownership::Owned;
    }
    let managed = existing
        .annotations()
        .get(ANNOTATION_SOPS_MANAGED)
        .is_some_and(|v| v == "true");
    let restored = enforce
        && existing.owner_references().iter().any(|r| {
            r.controller == Some(true)
                && r.kind == SOPS_SECRET_KIND
                && r.name == object.name_any()
                && r.api_version.starts_with("isindir.github.com/")
        });
    if managed || restored {
        Ownership::Managed
    } else {
        Ownership::Foreign
    }
}

/// Decrypts `object` with the cluster's keys: the Secrets it describes, and whether its
/// MAC verified. Refuses when a value does not decrypt, and (with `--sops-require-mac`)
/// when the MAC does not verify.
async fn decrypt(object: &SopsSecret, ctx: &Context) -> Result<(Vec<SecretData>, bool), Error> {
    let failed = |what: String| Error::Decrypt(format!("cannot decrypt the SopsSecret: {what}"));
    if object.sops.is_none() {
        return Err(failed(
            "it has no sops metadata (it is not encrypted)".into(),
        ));
    }
    let document = serde_json::to_vec(&object.document()).map_err(|e| failed(e.to_string()))?;
    let (tree, metadata) = Format::Json
        .parse_encrypted(&document)
        .map_err(|e| failed(e.to_string()))?;
    let keys = ctx.sops_keys.snapshot();
    let services = KeyServices::new().with_age(&keys.age).with_kms(&keys.kms);
    let data_key = services
        .recover(&metadata)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let options = OpenOptions {
        verify_mac: false,
        stash: false,
    };
    let opened = file::open(tree, &metadata, &data_key, options)
        .map_err(|e| failed(format!("{e}; the SopsSecret was altered after encryption")))?;
    drop(data_key);
    let metrics = &ctx.metrics.sops_secrets;
    metrics.decryptions.inc();
    if !opened.mac_verified {
        metrics.mac_unverified.inc();
        if ctx.config.sops_secrets.sops_require_mac {
            return Err(Error::Decrypt(format!(
                "MAC not verified, nothing written (--sops-require-mac): {MAC_NOT_VERIFIED}"
            )));
        }
    }
    let document = opened.tree.documents.first().map_or(&[][..], Vec::as_slice);
    let secrets = desired_secrets(object, document)?;
    Ok((secrets, opened.mac_verified))
}

/// The Secrets the decrypted `document` describes, owned by `object`.
fn desired_secrets(object: &SopsSecret, document: &[MapItem]) -> Result<Vec<SecretData>, Error> {
    let invalid = |what: String| Error::Decrypt(format!("invalid SopsSecret: {what}"));
    let spec = document.iter().find_map(|item| match item {
        MapItem::Entry(k, v) if k == "spec" => Some(v),
        _ => None,
    });
    let templates = spec
        .and_then(|spec| spec.get("secretTemplates"))
        .and_then(|t| match t {
            Node::List(items) => Some(items),
            _ => None,
        })
        .ok_or_else(|| invalid("spec.secretTemplates is not a list".into()))?;
    let mut secrets: Vec<SecretData> = Vec::new();
    let templates = templates.iter().filter_map(|item| match item {
        ListItem::Value(node) => Some(node),
        ListItem::Comment(_) => None,
    });
    for (index, template) in templates.enumerate() {
        let Node::Map(template) = template else {
            return Err(invalid(format!("template {index} is not a map")));
        };
        let text = |key: &str| tree::get(template, key).and_then(scalar_text);
        let name = text("name").unwrap_or_default();
        if !crate::config::dns_subdomain(&name) {
            return Err(invalid(format!(
                "template {index}: the name is not a valid Secret name (DNS-1123 subdomain)"
            )));
        }
        if secrets
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some(&name))
        {
            return Err(invalid(format!("two templates are named {name:?}")));
        }
        // As the operator: `stringData` first, then `data` (which wins for a key in both).
        let mut data = SecretData::new(Secret {
            data: Some(BTreeMap::new()),
            ..Secret::default()
        });
        let items = data.data.get_or_insert_default();
        for (key, value) in entries(template, "stringData") {
            let bytes = scalar_bytes(value).unwrap_or_default();
            if let Some(mut old) = items.insert(key.to_owned(), ByteString(bytes.to_vec())) {
                old.0.zeroize();
            }
        }
        for (key, value) in entries(template, "data") {
            let bytes = scalar_bytes(value).unwrap_or_default();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(bytes.trim_ascii())
                .map_err(|_| invalid(format!("{name}: data[{key:?}] is not base64")))?;
            if let Some(mut old) = items.insert(key.to_owned(), ByteString(decoded)) {
                old.0.zeroize();
            }
        }
        let strings = |field: &str| -> Option<BTreeMap<String, String>> {
            let map: BTreeMap<String, String> = entries(template, field)
                .map(|(k, v)| (k.to_owned(), scalar_text(v).unwrap_or_default()))
                .collect();
            (!map.is_empty()).then_some(map)
        };
        let type_ = text("type").filter(|t| !t.is_empty());
        secrets.push(SecretData::new(Secret {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: object.namespace(),
                labels: strings("labels"),
                annotations: strings("annotations"),
                owner_references: Some(vec![owner_reference(object)]),
                ..ObjectMeta::default()
            },
            type_: Some(type_.unwrap_or_else(|| "Opaque".into())),
            data: data.data.take(),
            ..Secret::default()
        }));
    }
    if secrets.is_empty() {
        return Err(invalid("spec.secretTemplates is empty".into()));
    }
    Ok(secrets)
}

/// The entries of the map under `field` of `template`.
fn entries<'a>(template: &'a Map, field: &str) -> impl Iterator<Item = (&'a str, &'a Node)> {
    let map = match tree::get(template, field) {
        Some(Node::Map(map)) => map.as_slice(),
        _ => &[],
    };
    map.iter().filter_map(|item| match item {
        MapItem::Entry(k, v) => Some((k.as_str(), v)),
        MapItem::Comment(_) => None,
    })
}

fn scalar_text(node: &Node) -> Option<String> {
    match node {
        Node::Scalar(scalar) => Some(scalar.to_text()),
        _ => None,
    }
}

/// A leaf's bytes as sops encrypted them (text for numbers and booleans), wiped on drop.
fn scalar_bytes(node: &Node) -> Option<Zeroizing<Vec<u8>>> {
    match node {
        Node::Scalar(Scalar::Null) => Some(Zeroizing::new(Vec::new())),
        Node::Scalar(scalar) => scalar
            .to_plaintext()
            .map(|(bytes, _)| Zeroizing::new(bytes.into_owned())),
        _ => None,
    }
}

fn owner_reference(object: &SopsSecret) -> OwnerReference {
    OwnerReference {
        api_version: SOPS_SECRET_API_VERSION.into(),
        kind: SOPS_SECRET_KIND.into(),
        name: object.name_any(),
        uid: object.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Writes the status when anything in it changes: the operator's `message`, the `Ready`
/// condition from `ready`, `MacVerified` from `mac` (`None`: unchanged), the Secrets'
/// names (`None`: unchanged) and the observed generation.
async fn write_status(
    ctx: &Context,
    object: &SopsSecret,
    text: &str,
    ready: Result<(), String>,
    mac: Option<Result<(), String>>,
    secrets: Option<Vec<String>>,
) -> Result<(), Error> {
    let old = object.status.clone().unwrap_or_default();
    let generation = object.metadata.generation;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let conditions: Vec<Condition> = old.conditions.clone().unwrap_or_default();
    let step = |conditions: Vec<Condition>, type_: &str, result: Result<(), String>| {
        next_conditions(
            &conditions,
            generation,
            generation,
            type_,
            result,
            now.clone(),
        )
        .unwrap_or(conditions)
    };
    let mut conditions = step(conditions, "Ready", ready);
    if let Some(mac) = mac {
        conditions = step(conditions, "MacVerified", mac);
    }
    let status = SopsSecretStatus {
        message: Some(text.to_owned()),
        observed_generation: generation,
        conditions: Some(conditions),
        secrets: secrets.or(old.secrets.clone()),
    };
    if status == old {
        return Ok(());
    }
    let api: Api<SopsSecret> =
        Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    status::patch(&api, &object.name_any(), serde_json::json!(status)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitseal_crypto::sops::store::Format;

    fn object() -> SopsSecret {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "app", "namespace": "prod", "uid": "u-1"}
        }))
        .unwrap()
    }

    fn secrets(templates: serde_json::Value) -> Result<Vec<SecretData>, Error> {
        let plain = serde_json::json!({"spec": {"secretTemplates": templates}});
        let tree = Format::Json
            .parse_plain(&serde_json::to_vec(&plain).unwrap())
            .unwrap();
        desired_secrets(&object(), &tree.documents[0])
    }

    #[test]
    fn templates_become_secrets_as_the_operator_makes_them() {
        let made = secrets(serde_json::json!([
            {"name": "a", "stringData": {"k": "text", "both": "from-stringData"},
             "data": {"both": "ZnJvbS1kYXRh", "bin": "AAE="}, "labels": {"l": "v"}},
            {"name": "b", "type": "kubernetes.io/tls", "stringData": {"n": 5}}
        ]))
        .unwrap();
        let data = made[0].data.as_ref().unwrap();
        assert_eq!(data["k"].0, b"text");
        assert_eq!(
            data["both"].0, b"from-data",
            "data wins, as with the operator"
        );
        assert_eq!(data["bin"].0, [0, 1]);
        assert_eq!(made[0].type_.as_deref(), Some("Opaque"));
        assert_eq!(made[0].labels()["l"], "v");
        let owner = &made[0].owner_references()[0];
        assert_eq!((owner.uid.as_str(), owner.controller), ("u-1", Some(true)));
        assert_eq!(made[1].type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(made[1].data.as_ref().unwrap()["n"].0, b"5");
    }

    #[test]
    fn bad_templates_are_refused_without_their_values() {
        let refused = |templates: serde_json::Value| match secrets(templates) {
            Err(Error::Decrypt(message)) => message,
            other => panic!("not refused: {:?}", other.map(|v| v.len())),
        };
        let message = refused(serde_json::json!([{"name": "../x", "stringData": {"k": "v"}}]));
        assert!(message.contains("not a valid Secret name"), "{message}");
        assert!(refused(serde_json::json!([{"stringData": {"k": "v"}}])).contains("template 0"));
        let twice = serde_json::json!([{"name": "a"}, {"name": "a"}]);
        assert!(refused(twice).contains("two templates"));
        let message = refused(serde_json::json!([{"name": "a", "data": {"k": "s3cr3t!"}}]));
        assert!(message.contains("data[\"k\"] is not base64"), "{message}");
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(refused(serde_json::json!([])).contains("empty"));
    }
}
