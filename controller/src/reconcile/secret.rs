//! The one Secret writer: every reconciler hands [`apply`] the Secret it wants, and this
//! module decides whether it may be written, writes it, and says what it did.
//!
//! - **Ownership** ([`Ownership`], decided per kind — [`ownership`] for SealedSecrets): a
//!   Secret controlled by the reconciled object (an ownerReference with `controller: true`
//!   and its uid), or annotated `sealedsecrets.bitnami.com/managed: "true"`, is replaced;
//!   one annotated `sealedsecrets.bitnami.com/patch: "true"` gets the desired data, labels
//!   and annotations merged in; any other is refused with [`Error::Unmanaged`] and left
//!   untouched. The only deletion is [`delete_owned`], of a Secret the object controls.
//! - **Immutable** Secrets whose data would change are refused with [`Error::Immutable`].
//! - **Digest**: the caller's digest function is applied to the final Secret and recorded
//!   under [`DIGEST_ANNOTATION`] (see `sealed_secret`), so the next reconcile can tell that
//!   the Secret is current without decrypting anything.
//! - **Wiping**: Secret objects travel in [`SecretData`], which overwrites their data and
//!   `stringData` when dropped, on every path.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::core::PartialObjectMeta;
use kube::{Api, ResourceExt};
use zeroize::Zeroize;

use crate::Error;
use gitseal_api::{ANNOTATION_MANAGED, ANNOTATION_PATCH};

/// Annotation on generated Secrets: `<key id>:<hex HMAC>` (see `sealed_secret`).
pub const DIGEST_ANNOTATION: &str = "gitseal.dev/digest";

const IMMUTABLE_MESSAGE: &str = "the target Secret is immutable and its data differs from the \
     SealedSecret; delete the Secret so that the controller can create it anew";

/// A Secret whose `data` and `stringData` are overwritten when it is dropped. No `Debug`:
/// it holds plaintext.
#[derive(Default)]
pub struct SecretData(Secret);

impl SecretData {
    /// Takes `secret` into the guard.
    pub fn new(secret: Secret) -> Self {
        Self(secret)
    }
}

impl From<Secret> for SecretData {
    fn from(secret: Secret) -> Self {
        Self(secret)
    }
}

impl Deref for SecretData {
    type Target = Secret;
    fn deref(&self) -> &Secret {
        &self.0
    }
}

impl DerefMut for SecretData {
    fn deref_mut(&mut self) -> &mut Secret {
        &mut self.0
    }
}

impl SecretData {
    /// Overwrites `data` and `stringData` (and empties them).
    fn wipe(&mut self) {
        for value in self.0.data.iter_mut().flat_map(|d| d.values_mut()) {
            value.0.zeroize();
        }
        for value in self.0.string_data.iter_mut().flat_map(|d| d.values_mut()) {
            value.zeroize();
        }
    }
}

impl Drop for SecretData {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// What [`apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// There was no Secret; it was created.
    Created,
    /// The Secret differed; it was replaced.
    Updated,
    /// The Secret was already as desired; nothing was written.
    Unchanged,
}

/// Who writes a Secret, and how.
pub struct Writer<'a> {
    /// The writing object's kind, for refusals (`SealedSecret`).
    pub kind: &'static str,
    /// How an existing Secret may be written (e.g. [`ownership`] for the object's uid).
    pub ownership: &'a (dyn Fn(&Secret) -> Ownership + Sync),
    /// The annotation the digest of the final Secret is recorded under, and the digest
    /// function (`None`: [`DIGEST_ANNOTATION`] is removed).
    pub digest: Option<(&'static str, Digest<'a>)>,
    /// The field manager of the writes (`None`: the client's default).
    pub field_manager: Option<String>,
    /// Where the writes are recorded, so that their watch events are known as echoes.
    pub echoes: &'a Echoes,
}

/// The Secrets the reconcilers have just written, each with the resourceVersion its write
/// produced. The watch event carrying that version is the write's own echo: it would only
/// make the owner reconcile again to find its Secret as it left it (two reads for
/// nothing, per object), so the owning kind's Secret watch drops it. Any other event of
/// the Secret — a change by someone else, a deletion — clears the entry and passes; an
/// echo that overtakes its record passes too (a spare reconcile, never a lost one).
/// Entries are per writing kind, since every kind's watch sees every Secret event.
#[derive(Default)]
pub struct Echoes(Mutex<HashMap<EchoKey, String>>);

/// The writing kind, and the Secret's namespace and name.
type EchoKey = (String, String, String);

impl Echoes {
    /// Records `written` by `kind`, as the API server answered the write.
    fn record(&self, kind: &str, written: &Secret) {
        if let (Some(namespace), Some(name), Some(version)) = (
            written.metadata.namespace.clone(),
            written.metadata.name.clone(),
            written.metadata.resource_version.clone(),
        ) {
            let mut echoes = self.0.lock().expect("echoes lock");
            echoes.insert((kind.to_owned(), namespace, name), version);
        }
    }

    /// Whether `event` of a Secret is the echo of a write `kind` recorded (the record is
    /// dropped either way: the next event of that Secret is somebody else's).
    pub fn is_echo(
        &self,
        kind: &str,
        event: &kube::runtime::watcher::Event<PartialObjectMeta<Secret>>,
    ) -> bool {
        use kube::runtime::watcher::Event;
        let (secret, applied) = match event {
            Event::Apply(secret) => (secret, true),
            Event::Delete(secret) => (secret, false),
            _ => return false,
        };
        let key = (
            kind.to_owned(),
            secret.namespace().unwrap_or_default(),
            secret.name_any(),
        );
        let recorded = self.0.lock().expect("echoes lock").remove(&key);
        applied && recorded.is_some() && recorded == secret.metadata.resource_version
    }
}

/// How an existing Secret may be written, from its ownerReferences and annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Controlled by the object: replaced.
    Owned,
    /// Annotated `managed: "true"`: taken over and replaced.
    Managed,
    /// Annotated `patch: "true"`: the desired data, labels and annotations are merged in;
    /// with `managed` also the ownerReferences are set.
    Patch {
        /// Also annotated `managed: "true"`.
        managed: bool,
    },
    /// Someone else's: refused.
    Foreign,
}

/// Whether `secret` is controlled by the object with `uid`.
pub fn is_controlled_by(secret: &Secret, uid: Option<&str>) -> bool {
    secret
        .owner_references()
        .iter()
        .any(|r| r.controller == Some(true) && Some(r.uid.as_str()) == uid)
}

/// The [`Ownership`] of `existing` for the object with `uid`.
pub fn ownership(existing: &Secret, uid: Option<&str>) -> Ownership {
    let annotated = |key: &str| existing.annotations().get(key).is_some_and(|v| v == "true");
    let (managed, patch) = (annotated(ANNOTATION_MANAGED), annotated(ANNOTATION_PATCH));
    if patch {
        Ownership::Patch { managed }
    } else if is_controlled_by(existing, uid) {
        Ownership::Owned
    } else if managed {
        Ownership::Managed
    } else {
        Ownership::Foreign
    }
}

/// The Secret to write over `existing` under `ownership` (`None`: [`Ownership::Foreign`]).
pub fn merged(
    existing: &Secret,
    mut desired: SecretData,
    ownership: Ownership,
) -> Option<SecretData> {
    let mut updated = SecretData(existing.clone());
    match ownership {
        Ownership::Foreign => return None,
        Ownership::Patch { managed } => {
            let data = updated.data.get_or_insert_default();
            for (key, value) in desired.data.take().unwrap_or_default() {
                if let Some(mut old) = data.insert(key, value) {
                    old.0.zeroize();
                }
            }
            let labels = updated.metadata.labels.get_or_insert_default();
            labels.extend(desired.metadata.labels.take().unwrap_or_default());
            let annotations = updated.metadata.annotations.get_or_insert_default();
            annotations.extend(desired.metadata.annotations.take().unwrap_or_default());
            if managed {
                updated.metadata.owner_references = desired.metadata.owner_references.take();
            }
        }
        Ownership::Owned | Ownership::Managed => {
            if let Some(old) = updated.data.as_mut() {
                old.values_mut()
                    .for_each(|v: &mut ByteString| v.0.zeroize());
            }
            updated.data = desired.data.take();
            updated.metadata.annotations = desired.metadata.annotations.take();
            updated.metadata.labels = desired.metadata.labels.take();
            updated.metadata.owner_references = desired.metadata.owner_references.take();
        }
    }
    updated.type_ = desired.type_.take();
    Some(updated)
}

/// A digest function: the value of [`DIGEST_ANNOTATION`] for a Secret (computed with the
/// annotation itself left out).
pub type Digest<'a> = &'a (dyn Fn(&Secret) -> String + Sync);

/// Feeds what a digest covers of `secret` into `mac`: its type, labels, annotations
/// (without [`DIGEST_ANNOTATION`]) and data, each length-prefixed.
pub fn digest_fields(mac: &mut gitseal_crypto::primitives::HmacSha256, secret: &Secret) {
    mac.update_field(secret.type_.as_deref().unwrap_or("Opaque").as_bytes());
    let maps = [
        secret.metadata.labels.as_ref(),
        secret.metadata.annotations.as_ref(),
    ];
    for map in maps {
        let entries = map.into_iter().flatten();
        let entries: Vec<_> = entries.filter(|(k, _)| *k != DIGEST_ANNOTATION).collect();
        mac.update_field(&(entries.len() as u64).to_be_bytes());
        for (k, v) in entries {
            mac.update_field(k.as_bytes());
            mac.update_field(v.as_bytes());
        }
    }
    let data = secret.data.as_ref();
    mac.update_field(&(data.map_or(0, std::collections::BTreeMap::len) as u64).to_be_bytes());
    for (k, v) in data.into_iter().flatten() {
        mac.update_field(k.as_bytes());
        mac.update_field(&v.0);
    }
}

/// Records `digest` of `secret` under its annotation (with the annotation itself left
/// out of what is digested); without one, removes [`DIGEST_ANNOTATION`].
pub fn seal_digest(secret: &mut Secret, digest: Option<(&str, Digest<'_>)>) {
    let annotations = secret.metadata.annotations.get_or_insert_default();
    let Some((annotation, digest)) = digest else {
        annotations.remove(DIGEST_ANNOTATION);
        return;
    };
    annotations.remove(annotation);
    let value = digest(secret);
    secret
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(annotation.into(), value);
}

/// Whether writing `updated` over `existing` would change nothing the controller sets.
fn same(updated: &Secret, existing: &Secret) -> bool {
    updated.data == existing.data
        && updated.metadata.labels == existing.metadata.labels
        && updated.metadata.annotations == existing.metadata.annotations
        && updated.metadata.owner_references == existing.metadata.owner_references
        && updated.type_ == existing.type_
}

/// Writes `desired` over `existing` (as read just before; `None`: absent) as `writer`
/// says, recording its digest. Refuses Secrets the writer may not write and immutable
/// Secrets that would change.
pub async fn apply(
    api: &Api<Secret>,
    existing: Option<SecretData>,
    mut desired: SecretData,
    writer: &Writer<'_>,
) -> Result<Applied, Error> {
    let params = PostParams {
        field_manager: writer.field_manager.clone(),
        ..PostParams::default()
    };
    let Some(existing) = existing else {
        seal_digest(&mut desired, writer.digest);
        let created = api.create(&params, &desired).await;
        drop(desired);
        let created = SecretData(created.map_err(Error::Write)?);
        writer.echoes.record(writer.kind, &created);
        drop(created);
        tracing::info!("Secret created");
        return Ok(Applied::Created);
    };
    let name = existing.name_any();
    let Some(mut updated) = merged(&existing, desired, (writer.ownership)(&existing)) else {
        return Err(Error::Unmanaged {
            secret: name,
            by: writer.kind,
        });
    };
    seal_digest(&mut updated, writer.digest);
    if same(&updated, &existing) {
        return Ok(Applied::Unchanged);
    }
    if existing.immutable == Some(true) && updated.data != existing.data {
        return Err(Error::Immutable(IMMUTABLE_MESSAGE.into()));
    }
    drop(existing);
    let replaced = api.replace(&name, &params, &updated).await;
    drop(updated);
    let replaced = SecretData(replaced.map_err(Error::Write)?);
    writer.echoes.record(writer.kind, &replaced);
    drop(replaced);
    tracing::info!("Secret updated");
    Ok(Applied::Updated)
}

/// Deletes `existing` if the object with `uid` controls it (with the uid as a
/// precondition, so a Secret recreated meanwhile is not touched); otherwise leaves it.
/// Returns whether it was deleted. Gone already counts as deleted.
pub async fn delete_owned(
    api: &Api<Secret>,
    existing: &Secret,
    uid: Option<&str>,
) -> Result<bool, Error> {
    if !is_controlled_by(existing, uid) {
        return Ok(false);
    }
    let params = kube::api::DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: existing.uid(),
            resource_version: None,
        }),
        ..kube::api::DeleteParams::default()
    };
    match api.delete(&existing.name_any(), &params).await {
        Ok(_) => {
            tracing::info!("Secret deleted");
            Ok(true)
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(true),
        Err(e) => Err(Error::Write(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use std::collections::BTreeMap;

    fn secret(annotations: &[(&str, &str)], owner: Option<&str>, data: &[(&str, &str)]) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.name = Some("db".into());
        secret.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        );
        secret.metadata.owner_references = owner.map(|uid| {
            vec![OwnerReference {
                uid: uid.into(),
                controller: Some(true),
                ..OwnerReference::default()
            }]
        });
        secret.data = Some(
            data.iter()
                .map(|(k, v)| ((*k).into(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        );
        secret
    }

    #[test]
    fn ownership_follows_owner_references_and_annotations() {
        let uid = Some("u1");
        assert_eq!(
            ownership(&secret(&[], Some("u1"), &[]), uid),
            Ownership::Owned
        );
        assert_eq!(
            ownership(&secret(&[], Some("u2"), &[]), uid),
            Ownership::Foreign
        );
        assert_eq!(ownership(&secret(&[], None, &[]), uid), Ownership::Foreign);
        assert_eq!(
            ownership(&secret(&[], Some("u1"), &[]), None),
            Ownership::Foreign
        );
        let managed = secret(&[(ANNOTATION_MANAGED, "true")], None, &[]);
        assert_eq!(ownership(&managed, uid), Ownership::Managed);
        let not_quite = secret(&[(ANNOTATION_MANAGED, "yes")], None, &[]);
        assert_eq!(ownership(&not_quite, uid), Ownership::Foreign);
        let patch = secret(&[(ANNOTATION_PATCH, "true")], None, &[]);
        assert_eq!(ownership(&patch, uid), Ownership::Patch { managed: false });
        let both = secret(
            &[(ANNOTATION_PATCH, "true"), (ANNOTATION_MANAGED, "true")],
            None,
            &[],
        );
        assert_eq!(ownership(&both, uid), Ownership::Patch { managed: true });
    }

    #[test]
    fn foreign_secrets_are_refused_and_patches_merge() {
        let desired = || {
            SecretData(secret(
                &[("new", "1")],
                Some("u1"),
                &[("a", "A2"), ("c", "C")],
            ))
        };
        let existing = secret(&[("old", "1")], None, &[("a", "A"), ("b", "B")]);
        assert!(merged(&existing, desired(), Ownership::Foreign).is_none());

        let patched = merged(&existing, desired(), Ownership::Patch { managed: false }).unwrap();
        let data: BTreeMap<_, _> = patched.data.clone().unwrap();
        assert_eq!(data.len(), 3);
        assert_eq!(data["a"].0, b"A2");
        assert_eq!(patched.annotations().len(), 2);
        assert!(patched.owner_references().is_empty());
        let taken = merged(&existing, desired(), Ownership::Patch { managed: true }).unwrap();
        assert_eq!(taken.owner_references()[0].uid, "u1");

        let replaced = merged(&existing, desired(), Ownership::Managed).unwrap();
        assert_eq!(replaced.data.as_ref().unwrap().len(), 2);
        assert!(!replaced.annotations().contains_key("old"));
        assert_eq!(replaced.owner_references()[0].uid, "u1");
    }

    #[test]
    fn the_digest_annotation_is_recorded_over_the_final_secret() {
        let mut s = secret(&[(DIGEST_ANNOTATION, "stale")], None, &[("a", "A")]);
        let digest = |s: &Secret| {
            assert!(!s.annotations().contains_key(DIGEST_ANNOTATION));
            format!("k:{}", s.data.as_ref().unwrap().len())
        };
        seal_digest(&mut s, Some((DIGEST_ANNOTATION, &digest)));
        assert_eq!(s.annotations()[DIGEST_ANNOTATION], "k:1");
        seal_digest(&mut s, None);
        assert!(s.annotations().is_empty());
        let unchanged = s.clone();
        assert!(same(&s, &unchanged));
    }

    #[test]
    fn the_guard_wipes_data_and_string_data() {
        let mut guarded = SecretData::new(secret(&[], None, &[("a", "secret")]));
        guarded.string_data = Some(BTreeMap::from([("b".into(), "plain".into())]));
        guarded.wipe();
        let copy = &guarded;
        assert_eq!(copy.data.as_ref().unwrap()["a"].0, Vec::<u8>::new());
        assert_eq!(copy.string_data.as_ref().unwrap()["b"], "");
    }

    #[test]
    fn only_the_echo_of_a_recorded_write_is_dropped() {
        use kube::core::PartialObjectMetaExt;
        use kube::runtime::watcher::Event;
        let meta = |namespace: &str, version: &str| kube::api::ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some("db".into()),
            resource_version: Some(version.into()),
            ..Default::default()
        };
        let event = |namespace: &str, version: &str| {
            Event::Apply(meta(namespace, version).into_response_partial::<Secret>())
        };
        let written = Secret {
            metadata: meta("prod", "5"),
            ..Secret::default()
        };
        let echoes = Echoes::default();
        echoes.record("SealedSecret", &written);
        assert!(
            !echoes.is_echo("SealedSecret", &event("prod", "6")),
            "somebody else's change"
        );
        assert!(
            !echoes.is_echo("SealedSecret", &event("prod", "5")),
            "the record went with it"
        );
        echoes.record("SealedSecret", &written);
        let deleted = Event::Delete(meta("prod", "5").into_response_partial::<Secret>());
        assert!(
            !echoes.is_echo("SealedSecret", &deleted),
            "a deletion always passes"
        );
        assert!(!echoes.is_echo("SealedSecret", &event("prod", "5")));
        echoes.record("SealedSecret", &written);
        assert!(
            !echoes.is_echo("SealedSecret", &event("dev", "5")),
            "another Secret"
        );
        assert!(
            !echoes.is_echo("ExternalSecret", &event("prod", "5")),
            "another kind's watch"
        );
        assert!(echoes.is_echo("SealedSecret", &event("prod", "5")));
        assert!(
            !echoes.is_echo("SealedSecret", &event("prod", "5")),
            "dropped once"
        );
    }
}
