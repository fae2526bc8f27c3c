//! From a SealedSecret and the keys to the data of its Secret (spec §1.3–§1.4, §2.5).
//! Synchronous and CPU-bound: the reconciler runs it on the decryption pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use gitseal_api::SealedSecret;
use gitseal_crypto::sealed::{Scope, decode, unseal_bytes_indexed};
use kube::ResourceExt;
use zeroize::Zeroizing;

use crate::keyring::{Keys, SealingKey};
use crate::template::{Budget, Template};

/// Decrypted Secret content.
pub struct Unsealed {
    /// Item name → plaintext.
    pub data: BTreeMap<String, Zeroizing<Vec<u8>>>,
    /// `type`, `labels` and `annotations` carried by a legacy v1 `spec.data` Secret.
    pub legacy: Option<LegacyMeta>,
    /// The key that opened the items (the newest key when there are none).
    pub key: Option<Arc<SealingKey>>,
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

/// Why a SealedSecret cannot be unsealed; the message names items, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsealFailure {
    /// Upstream-style text, e.g. `no key could decrypt secret (password, user)`.
    pub message: String,
    /// RSA private-key operations spent before failing.
    pub rsa_operations: u64,
}

impl std::fmt::Display for UnsealFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The OAEP label of a SealedSecret: from its own top-level annotations (spec §1.3).
pub fn label_of(ss: &SealedSecret) -> Vec<u8> {
    let scope = Scope::from_annotations(
        ss.annotations()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    scope.label(&ss.namespace().unwrap_or_default(), &ss.name_any())
}

/// Unseals every item of `ss` with `keys`, trying `preferred` (the key that last worked
/// for this object) first, then renders the templates.
pub fn unseal(
    ss: &SealedSecret,
    keys: &Keys,
    preferred: Option<&str>,
    accept_v1_data: bool,
) -> Result<Unsealed, UnsealFailure> {
    let label = label_of(ss);
    let order = keys.ordered(preferred);
    let mut errors: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut out = Unsealed {
        data: BTreeMap::new(),
        legacy: None,
        key: keys.latest().cloned(),
        rsa_operations: 0,
    };
    let legacy = ss.spec.data.as_deref().filter(|d| !d.is_empty());
    if legacy.is_some() && !ss.spec.encrypted_data.is_empty() {
        return Err(failure(
            "cannot use the field 'encryptedData' and the deprecated field 'data' at the same time",
            0,
        ));
    }
    let mut last_key = None;
    let mut open = |value: &str, out: &mut Unsealed| -> Result<Zeroizing<Vec<u8>>, String> {
        let blob = decode(value).map_err(|e| e.to_string())?;
        match unseal_bytes_indexed(order.iter().map(|k| &k.private), &label, &blob) {
            Ok((plaintext, index)) => {
                out.rsa_operations += index as u64 + 1;
                last_key = Some(order[index].clone());
                Ok(plaintext.into_zeroizing())
            }
            Err(e) => {
                if !matches!(e, gitseal_crypto::UnsealError::TooShort) {
                    out.rsa_operations += order.len() as u64;
                }
                Err(e.to_string())
            }
        }
    };
    if let Some(blob) = legacy {
        if !accept_v1_data {
            return Err(failure(
                "using deprecated 'data' field, use 'encryptedData' or flip the feature flag",
                0,
            ));
        }
        // `spec.data` is the sealed blob itself, base64 in JSON (CRD `format: byte`).
        let plaintext = open(blob.trim(), &mut out).map_err(|e| failure(&e, out.rsa_operations))?;
        parse_v1_secret(&plaintext, &mut out).map_err(|e| failure(&e, out.rsa_operations))?;
    }
    for (item, value) in &ss.spec.encrypted_data {
        match open(value, &mut out) {
            Ok(plaintext) => {
                out.data.insert(item.clone(), plaintext);
            }
            Err(message) => errors.entry(message).or_default().push(item),
        }
    }
    if !errors.is_empty() {
        let message = errors
            .iter()
            .map(|(message, items)| format!("{message} ({})", items.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(failure(&message, out.rsa_operations));
    }
    if let Some(key) = last_key {
        out.key = Some(key);
    }
    render_templates(ss, &mut out).map_err(|e| failure(&e, out.rsa_operations))?;
    Ok(out)
}

fn failure(message: &str, rsa_operations: u64) -> UnsealFailure {
    UnsealFailure {
        message: message.to_owned(),
        rsa_operations,
    }
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
fn parse_v1_secret(plaintext: &[u8], out: &mut Unsealed) -> Result<(), String> {
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
    let result = take_v1_data(&secret.data, &secret.string_data, out);
    for value in secret
        .data
        .values_mut()
        .chain(secret.string_data.values_mut())
    {
        zeroize::Zeroize::zeroize(value);
    }
    result?;
    out.legacy = Some(LegacyMeta {
        type_: secret.type_,
        labels: secret.metadata.labels,
        annotations: secret.metadata.annotations,
    });
    Ok(())
}

fn take_v1_data(
    data: &BTreeMap<String, String>,
    string_data: &BTreeMap<String, String>,
    out: &mut Unsealed,
) -> Result<(), String> {
    for (key, value) in data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.as_bytes())
            .map_err(|_| format!("the deprecated spec.data item {key} is not base64"))?;
        out.data.insert(key.clone(), Zeroizing::new(bytes));
    }
    for (key, value) in string_data {
        out.data
            .insert(key.clone(), Zeroizing::new(value.as_bytes().to_vec()));
    }
    Ok(())
}
