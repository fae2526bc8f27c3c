//! The keys SopsSecrets are decrypted with: the controller's own age identities, the
//! age identities of Flux-format decryption Secrets, and AWS KMS through the pod's
//! credentials.
//!
//! - **Own keys**: one Secret per identity in the controller's namespace, labelled
//!   [`AGE_KEY_LABEL`]`: active`, the identity under [`AGE_KEY_ENTRY`] (a name Flux reads
//!   too). The leader makes one when there is none and a new one every key renewal period;
//!   old ones stay, for decryption. The newest one's recipient is served at
//!   `/v1/age-recipient`.
//! - **Flux-format Secrets** (`--sops-key-secrets`): every entry whose name ends in
//!   `.agekey` holds age identities, one per line; an entry `sops.aws-kms` holds static AWS
//!   credentials (YAML `aws_access_key_id`, `aws_secret_access_key`, optional
//!   `aws_session_token`) that win over the pod's, as in Flux.
//!
//! Every replica follows these Secrets with watches, so a key the leader makes, or a
//! Secret an operator adds, is used at once. Keys are never deleted.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use gitseal_backends::key::AgeService;
use gitseal_backends::kms::KmsService;
use gitseal_crypto::keys::age::AgeIdentities;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use zeroize::Zeroizing;

use crate::Error;
use crate::config::KeySecrets;
use crate::reconcile::secret::SecretData;

/// Label (value `active`) of the Secrets holding the controller's own age identities.
pub const AGE_KEY_LABEL: &str = "gitseal.dev/age-key";
/// The entry of an own key Secret holding the identity.
pub const AGE_KEY_ENTRY: &str = "identity.agekey";
/// `generateName` of own key Secrets.
const AGE_KEY_PREFIX: &str = "gitseal-age-key-";

/// Where a key Secret is: namespace and name.
type SecretId = (String, String);

/// The identities of one key Secret.
struct Loaded {
    /// The `.agekey` entries, as text.
    text: Zeroizing<String>,
    /// Its `sops.aws-kms` credentials.
    aws: Option<AwsKms>,
    /// The first identity's recipient and the Secret's creation time, for own keys.
    own: Option<(String, i64)>,
}

/// Flux's `sops.aws-kms` entry. No `Debug`: it holds a credential (wiped on drop).
#[derive(serde::Deserialize)]
struct AwsKms {
    aws_access_key_id: String,
    aws_secret_access_key: String,
    #[serde(default)]
    aws_session_token: Option<String>,
}

impl Drop for AwsKms {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.aws_secret_access_key.zeroize();
        self.aws_session_token.zeroize();
    }
}

/// The entry of a Flux-format Secret with static AWS credentials for KMS.
const AWS_KMS_ENTRY: &str = "sops.aws-kms";

/// The decryption keys now in use.
#[derive(Default)]
pub struct Current {
    /// Every age identity, own and Flux-format.
    pub age: AgeService,
    /// AWS KMS: the pod's credentials, or a Flux-format Secret's static ones.
    pub kms: Arc<KmsService>,
    /// The newest own identity's recipient and creation time (Unix seconds).
    pub newest: Option<(String, i64)>,
}

/// The SopsSecret keys, shared by the reconciler and the HTTP API.
pub struct SopsKeys {
    namespace: String,
    aws_endpoint: Option<String>,
    by_secret: RwLock<BTreeMap<SecretId, Loaded>>,
    current: RwLock<Arc<Current>>,
}

impl SopsKeys {
    /// No keys yet; own keys live in `namespace`; KMS is called at `aws_endpoint` when
    /// set (else the region's endpoint).
    pub fn new(namespace: &str, aws_endpoint: Option<String>) -> Self {
        let keys = Self {
            namespace: namespace.to_owned(),
            aws_endpoint,
            by_secret: RwLock::default(),
            current: RwLock::default(),
        };
        keys.rebuild(&BTreeMap::new());
        keys
    }

    /// The keys now in use.
    pub fn snapshot(&self) -> Arc<Current> {
        self.current.read().expect("sops keys lock").clone()
    }

    /// Reads the identities of `secret` (own when labelled as such); a Secret without
    /// usable identities is reported and skipped, naming the entry, never its content.
    pub fn insert_secret(&self, secret: &Secret) {
        let id = (secret.namespace().unwrap_or_default(), secret.name_any());
        let own = secret.labels().get(AGE_KEY_LABEL).map(String::as_str) == Some("active");
        // Sized up front: a growing buffer would leave unwiped copies of the keys behind.
        let size: usize = secret
            .data
            .iter()
            .flatten()
            .map(|(_, v)| v.0.len() + 1)
            .sum();
        let mut text = Zeroizing::new(String::with_capacity(size));
        let mut identities = AgeIdentities::default();
        for (entry, value) in secret.data.iter().flatten() {
            if !entry.ends_with(".agekey") {
                continue;
            }
            let Ok(part) = std::str::from_utf8(&value.0) else {
                tracing::error!(secret = %id.1, entry, "skipping an age key entry that is not text");
                continue;
            };
            match AgeIdentities::parse(part) {
                Ok(parsed) => identities.extend(parsed),
                Err(e) => {
                    tracing::error!(secret = %id.1, entry, "skipping an unusable age key entry: {e}");
                    continue;
                }
            }
            text.push_str(part);
            text.push('\n');
        }
        let aws = secret.data.as_ref().and_then(|d| d.get(AWS_KMS_ENTRY)).and_then(|v| {
            let parsed = std::str::from_utf8(&v.0)
                .ok()
                .and_then(|text| serde_saphyr::from_str::<AwsKms>(text).ok());
            if parsed.is_none() {
                tracing::error!(secret = %id.1, "skipping {AWS_KMS_ENTRY}: not the YAML Flux reads");
            }
            parsed
        });
        if identities.is_empty() && aws.is_none() {
            tracing::error!(secret = %id.1, "no age identity or AWS credential in this key Secret");
            self.remove_secret(&id.0, &id.1);
            return;
        }
        let created = secret
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_second());
        let own = own
            .then(|| identities.recipients().into_iter().next())
            .flatten()
            .map(|recipient| (recipient, created));
        tracing::info!(secret = %id.1, identities = identities.len(), "age keys loaded");
        let mut by_secret = self.by_secret.write().expect("sops keys lock");
        by_secret.insert(id, Loaded { text, aws, own });
        self.rebuild(&by_secret);
    }

    /// Takes the identities of a deleted Secret out of use.
    pub fn remove_secret(&self, namespace: &str, name: &str) {
        let mut by_secret = self.by_secret.write().expect("sops keys lock");
        if by_secret
            .remove(&(namespace.to_owned(), name.to_owned()))
            .is_some()
        {
            tracing::warn!(secret = %name, "age keys no longer in use");
            self.rebuild(&by_secret);
        }
    }

    fn rebuild(&self, by_secret: &BTreeMap<SecretId, Loaded>) {
        let mut identities = AgeIdentities::default();
        for loaded in by_secret.values() {
            identities.extend(AgeIdentities::parse(&loaded.text).unwrap_or_default());
        }
        let newest = by_secret
            .values()
            .filter_map(|l| l.own.clone())
            .max_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        let mut kms = KmsService::new().with_endpoint(self.aws_endpoint.clone());
        if let Some(aws) = by_secret.values().find_map(|l| l.aws.as_ref()) {
            kms = kms.with_static_credentials(
                &aws.aws_access_key_id,
                &aws.aws_secret_access_key,
                aws.aws_session_token.as_deref(),
            );
        }
        *self.current.write().expect("sops keys lock") = Arc::new(Current {
            age: AgeService::new(identities),
            kms: Arc::new(kms),
            newest,
        });
    }

    /// Reads the own key Secrets and the Flux-format ones in `flux` once (before the
    /// leader decides whether to make a key).
    pub async fn load(&self, client: &kube::Client, flux: &KeySecrets) -> Result<(), Error> {
        let api: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        let own = kube::api::ListParams::default().labels(&format!("{AGE_KEY_LABEL}=active"));
        for secret in api.list(&own).await?.items {
            self.insert_secret(&SecretData::new(secret));
        }
        for (namespace, name) in &flux.0 {
            let namespace = namespace.as_deref().unwrap_or(&self.namespace);
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            match api.get_opt(name).await? {
                Some(secret) => self.insert_secret(&SecretData::new(secret)),
                None => tracing::warn!(secret = %name, %namespace, "age key Secret not found"),
            }
        }
        Ok(())
    }

    /// Follows the own key Secrets and the Flux-format ones in `flux` until the streams
    /// end (they retry on their own).
    pub async fn watch(self: Arc<Self>, client: kube::Client, flux: KeySecrets) {
        let own = watcher::Config::default().labels(&format!("{AGE_KEY_LABEL}=active"));
        let mut follows = vec![
            self.clone()
                .follow(Api::namespaced(client.clone(), &self.namespace), own),
        ];
        for (namespace, name) in flux.0 {
            let namespace = namespace.unwrap_or_else(|| self.namespace.clone());
            let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
            follows.push(
                self.clone()
                    .follow(Api::namespaced(client.clone(), &namespace), config),
            );
        }
        futures::future::join_all(follows).await;
    }

    async fn follow(self: Arc<Self>, api: Api<Secret>, config: watcher::Config) {
        let mut events = std::pin::pin!(watcher::watcher(api, config).default_backoff());
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => {
                    self.insert_secret(&SecretData::new(s));
                }
                Ok(watcher::Event::Delete(s)) => {
                    self.remove_secret(&s.namespace().unwrap_or_default(), &s.name_any());
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("watching age key Secrets: {e}"),
            }
        }
    }

    /// Makes a new own identity, stores it as a key Secret and puts it in use.
    pub async fn generate(&self, client: &kube::Client) -> Result<(), Error> {
        let identities = AgeIdentities::generate();
        let recipient = identities.recipients().remove(0);
        let secret = SecretData::new(Secret {
            metadata: ObjectMeta {
                generate_name: Some(AGE_KEY_PREFIX.into()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(AGE_KEY_LABEL.into(), "active".into())])),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([(
                AGE_KEY_ENTRY.into(),
                ByteString(identities.to_text().as_bytes().to_vec()),
            )])),
            ..Secret::default()
        });
        let api: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        let created = SecretData::new(api.create(&PostParams::default(), &secret).await?);
        drop(secret);
        self.insert_secret(&created);
        tracing::info!(secret = %created.name_any(), %recipient, "new age key generated");
        Ok(())
    }
}

/// The leader's age-key duty: a key now when there is none, then a new one every
/// `period` (0: never), counted from the newest key's creation.
pub async fn renew(keys: Arc<SopsKeys>, client: kube::Client, period: Duration) {
    loop {
        let wait = match &keys.snapshot().newest {
            None => Duration::ZERO,
            Some((_, created)) => crate::keyring::until_renewal(period, *created),
        };
        tokio::time::sleep(wait).await;
        let due = !period.is_zero() || keys.snapshot().newest.is_none();
        if due && let Err(e) = keys.generate(&client).await {
            tracing::error!("generating an age key failed, retrying in 5s: {e}");
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, own: bool, entries: &[(&str, &str)], created: i64) -> Secret {
        let mut s = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("kube-system".into()),
                creation_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
                )),
                ..ObjectMeta::default()
            },
            data: Some(
                entries
                    .iter()
                    .map(|(k, v)| ((*k).into(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        };
        if own {
            s.metadata.labels = Some(BTreeMap::from([(AGE_KEY_LABEL.into(), "active".into())]));
        }
        s
    }

    #[test]
    fn own_and_flux_identities_are_used_and_the_newest_own_one_is_served() {
        let keys = SopsKeys::new("kube-system", None);
        let (old, new, flux) = (
            AgeIdentities::generate(),
            AgeIdentities::generate(),
            AgeIdentities::generate(),
        );
        keys.insert_secret(&secret("a", true, &[(AGE_KEY_ENTRY, &old.to_text())], 10));
        keys.insert_secret(&secret("b", true, &[(AGE_KEY_ENTRY, &new.to_text())], 20));
        let flux_text = format!("# created: now\n{}", flux.to_text().as_str());
        let entries = [("age.agekey", flux_text.as_str()), ("other", "x")];
        keys.insert_secret(&secret("flux", false, &entries, 30));
        let now = keys.snapshot();
        assert_eq!(now.age.identities().len(), 3);
        assert_eq!(now.newest, Some((new.recipients()[0].clone(), 20)));
        // A broken entry is skipped, the Secret's good ones kept; none at all: out of use.
        keys.insert_secret(&secret(
            "flux",
            false,
            &[
                ("bad.agekey", "AGE-SECRET-KEY-1NOPE"),
                ("age.agekey", &flux_text),
            ],
            30,
        ));
        assert_eq!(keys.snapshot().age.identities().len(), 3);
        keys.insert_secret(&secret("flux", false, &[("x", "y")], 30));
        assert_eq!(keys.snapshot().age.identities().len(), 2);
        keys.remove_secret("kube-system", "b");
        let now = keys.snapshot();
        assert_eq!(now.age.identities().len(), 1);
        assert_eq!(now.newest, Some((old.recipients()[0].clone(), 10)));
    }
}
