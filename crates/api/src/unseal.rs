//! A SealedSecret opened into the data of its Secret (spec §1.3–§1.4, §2.5): items,
//! the legacy v1 `spec.data` blob and `spec.template.data`, exactly as the controller
//! makes them. `kubeseal --recovery-unseal` uses the same code, so it renders what the
//! controller would. Synchronous and CPU-bound.

use std::collections::BTreeMap;

use base64::Engine;
use gitseal_crypto::sealed::{PrivateKey, Scope, UnsealedItems};
use gitseal_template::{Budget, Template};
use kube::ResourceExt;
use zeroize::Zeroizing;

use crate::SealedSecret;

pub use gitseal_crypto::sealed::UnsealFailure;

/// The data of a SealedSecret's Secret.
pub struct Unsealed {
    /// Item name → plaintext, rendered templates included.
    pub data: BTreeMap<String, Zeroizing<Vec<u8>>>,
    /// `type`, `labels` and `annotations` carried by a legacy v1 `spec.data` Secret.
    pub legacy: Option<LegacyMeta>,
    /// Index (in the keys given) of the key that opened the items; `None` when there were
    /// none.
    pub key: Option<usize>,
    /// RSA private-key operations spent.
    pub rsa_operations: u64,
}

/// Metadata of the Secret inside a legacy `spec.data` blob.
#[derive(Default)]
pub struct LegacyMeta {
    /// Its `type`.
    pub type_: Option<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

impl SealedSecret {
    /// The OAEP label its values are bound to: from its own top-level annotations
    /// (spec §1.3).
    pub fn label(&self) -> Vec<u8> {
        let scope = Scope::from_annotations(
            self.annotations()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        scope.label(&self.namespace().unwrap_or_default(), &self.name_any())
    }

    /// Opens every item with `keys` (tried in the order given: see
    /// [`gitseal_crypto::sealed::trial_order`]), or the legacy `spec.data` blob when
    /// `accept_v1_data`, then renders `spec.template.data`.
    pub fn unseal(
        &self,
        keys: &[&PrivateKey],
        accept_v1_data: bool,
    ) -> Result<Unsealed, UnsealFailure> {
        let label = self.label();
        let legacy = self.spec.data.as_deref().filter(|d| !d.is_empty());
        if legacy.is_some() && !self.spec.encrypted_data.is_empty() {
            return Err(failure(
                "cannot use the field 'encryptedData' and the deprecated field 'data' at the same time",
                0,
            ));
        }
        let mut out = match legacy {
            Some(blob) => {
                if !accept_v1_data {
                    return Err(failure(
                        "using deprecated 'data' field, use 'encryptedData' or flip the feature flag",
                        0,
                    ));
                }
                // `spec.data` is the sealed blob itself, base64 in JSON (CRD `format: byte`).
                let mut opened = UnsealedItems::new();
                let plaintext = opened
                    .open_value(keys, &label, blob.trim())
                    .map_err(|e| failure(&e.to_string(), opened.rsa_operations))?;
                let mut data = BTreeMap::new();
                let meta = parse_v1_secret(&plaintext, &mut data)
                    .map_err(|e| failure(&e, opened.rsa_operations))?;
                Unsealed {
                    data,
                    legacy: Some(meta),
                    key: opened.key,
                    rsa_operations: opened.rsa_operations,
                }
            }
            None => {
                let items = self
                    .spec
                    .encrypted_data
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()));
                let opened = UnsealedItems::open(keys, &label, items)?;
                Unsealed {
                    data: opened.data,
                    legacy: None,
                    key: opened.key,
                    rsa_operations: opened.rsa_operations,
                }
            }
        };
        render_templates(self, &mut out).map_err(|e| failure(&e, out.rsa_operations))?;
        Ok(out)
    }
}

fn failure(message: &str, rsa_operations: u64) -> UnsealFailure {
    UnsealFailure::new(message, rsa_operations)
}

/// Renders `spec.template.data` (spec §2.5, v0.37 rules): the context holds every
/// decrypted item and, for keys without an encrypted item, the raw template text; a
/// rendered key never overwrites a decrypted item of the same name. All the templates
/// share one [`Budget`]: together they cannot take more memory or work than one may.
fn render_templates(ss: &SealedSecret, out: &mut Unsealed) -> Result<(), String> {
    let Some(templates) = ss.spec.template.as_ref().and_then(|t| t.data.as_ref()) else {
        return Ok(());
    };
    let mut context: BTreeMap<String, Zeroizing<Vec<u8>>> = out
        .data
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, source) in templates {
        context
            .entry(key.clone())
            .or_insert_with(|| Zeroizing::new(source.as_bytes().to_vec()));
    }
    let mut budget = Budget::new();
    for (key, source) in templates {
        if out.data.contains_key(key) {
            continue;
        }
        let template = Template::parse(key, source).map_err(|e| e.to_string())?;
        let rendered = template
            .render_with_budget(&context, &mut budget)
            .map_err(|e| e.to_string())?;
        out.data.insert(key.clone(), rendered.into_bytes());
    }
    Ok(())
}

/// Reads the v1 Secret JSON of a legacy blob: its data, type, labels and annotations.
fn parse_v1_secret(
    plaintext: &[u8],
    data: &mut BTreeMap<String, Zeroizing<Vec<u8>>>,
) -> Result<LegacyMeta, String> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct V1Meta {
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    }
    #[derive(serde::Deserialize)]
    struct V1Secret {
        #[serde(default)]
        metadata: V1Meta,
        #[serde(rename = "type", default)]
        type_: Option<String>,
        #[serde(default)]
        data: BTreeMap<String, String>,
        #[serde(rename = "stringData", default)]
        string_data: BTreeMap<String, String>,
    }
    let mut secret: V1Secret = serde_json::from_slice(plaintext)
        .map_err(|_| "the deprecated spec.data does not hold a Secret".to_owned())?;
    let result = take_v1_data(&secret.data, &secret.string_data, data);
    for value in secret
        .data
        .values_mut()
        .chain(secret.string_data.values_mut())
    {
        zeroize::Zeroize::zeroize(value);
    }
    result?;
    Ok(LegacyMeta {
        type_: secret.type_,
        labels: secret.metadata.labels,
        annotations: secret.metadata.annotations,
    })
}

fn take_v1_data(
    data: &BTreeMap<String, String>,
    string_data: &BTreeMap<String, String>,
    out: &mut BTreeMap<String, Zeroizing<Vec<u8>>>,
) -> Result<(), String> {
    for (key, value) in data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.as_bytes())
            .map_err(|_| format!("the deprecated spec.data item {key} is not base64"))?;
        out.insert(key.clone(), Zeroizing::new(bytes));
    }
    for (key, value) in string_data {
        out.insert(key.clone(), Zeroizing::new(value.as_bytes().to_vec()));
    }
    Ok(())
}
