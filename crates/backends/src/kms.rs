//! AWS KMS as a SOPS key service: `Encrypt`/`Decrypt` of a data key (or Shamir share)
//! with the key's ARN and encryption context, as sops does. Credentials come from the
//! default AWS chain (environment, shared profile, SSO, web identity, instance metadata),
//! or the entry's `aws_profile`; an entry's `role` is assumed first (session name
//! `sops@<hostname>`). The region is the ARN's; `AWS_ENDPOINT_URL_KMS` (or
//! `AWS_ENDPOINT_URL`) points the client at another endpoint, e.g. an emulator.

use aws_config::BehaviorVersion;
use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gitseal_crypto::SecretBytes;

/// A KMS key as a SOPS file names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsKey {
    /// Key or alias ARN.
    pub arn: String,
    /// Role ARN to assume first (empty: none).
    pub role: String,
    /// Encryption context, sorted by key.
    pub context: Vec<(String, String)>,
    /// Shared-config profile (empty: the default chain).
    pub profile: String,
}

/// What went wrong talking to KMS. Messages name the key, never key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    /// The ARN is not a KMS key or alias ARN.
    #[error(
        "invalid KMS ARN {0:?}: expected arn:aws:kms:<region>:<account>:key/<id> or :alias/<name>"
    )]
    InvalidArn(String),
    /// The service refused or failed the call.
    #[error("KMS {operation} with {arn} failed: {message}")]
    Call {
        /// Encrypt, Decrypt or AssumeRole.
        operation: &'static str,
        /// The key.
        arn: String,
        /// The service's error, flattened.
        message: String,
    },
    /// The stored ciphertext is not base64.
    #[error("the KMS ciphertext of {0} is not base64")]
    Base64(String),
}

/// The region of a KMS ARN (`arn:aws[-partition]:kms:<region>:<account>:(key|alias)/...`).
pub fn region_of(arn: &str) -> Result<&str, KmsError> {
    let invalid = || KmsError::InvalidArn(arn.to_owned());
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "kms", region, account, resource]
            if partition.starts_with("aws")
                && !region.is_empty()
                && account.bytes().all(|b| b.is_ascii_digit())
                && (resource.starts_with("key/") || resource.starts_with("alias/")) =>
        {
            Ok(region)
        }
        _ => Err(invalid()),
    }
}

fn flatten(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

async fn client(key: &KmsKey) -> Result<aws_sdk_kms::Client, KmsError> {
    let region = region_of(&key.arn)?.to_owned();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.clone()));
    if !key.profile.is_empty() {
        loader = loader.profile_name(&key.profile);
    }
    let mut config = loader.load().await;
    if !key.role.is_empty() {
        let provider = aws_config::sts::AssumeRoleProvider::builder(&key.role)
            .session_name(session_name())
            .region(aws_config::Region::new(region))
            .configure(&config)
            .build()
            .await;
        config = config
            .into_builder()
            .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(
                provider,
            ))
            .build();
    }
    Ok(aws_sdk_kms::Client::new(&config))
}

/// `sops@<hostname>`, limited to the characters and length STS accepts.
fn session_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = format!("sops@{}", host.trim())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(*c))
        .take(64)
        .collect();
    clean
}

/// Encrypts `plaintext` (a data key or share) with `key`; returns the base64 blob sops
/// stores as `enc`.
pub async fn encrypt(key: &KmsKey, plaintext: &[u8]) -> Result<String, KmsError> {
    let client = client(key).await?;
    let mut request = client
        .encrypt()
        .key_id(&key.arn)
        .plaintext(Blob::new(plaintext.to_vec()));
    for (k, v) in &key.context {
        request = request.encryption_context(k, v);
    }
    let response = request.send().await.map_err(|e| KmsError::Call {
        operation: "Encrypt",
        arn: key.arn.clone(),
        message: flatten(&e),
    })?;
    let blob = response.ciphertext_blob().ok_or_else(|| KmsError::Call {
        operation: "Encrypt",
        arn: key.arn.clone(),
        message: "no ciphertext in the response".into(),
    })?;
    Ok(STANDARD.encode(blob.as_ref()))
}

/// Decrypts the base64 `enc` of `key` back into the data key (or share).
pub async fn decrypt(key: &KmsKey, enc: &str) -> Result<SecretBytes, KmsError> {
    let blob = STANDARD
        .decode(enc.trim())
        .map_err(|_| KmsError::Base64(key.arn.clone()))?;
    let client = client(key).await?;
    let mut request = client
        .decrypt()
        .key_id(&key.arn)
        .ciphertext_blob(Blob::new(blob));
    for (k, v) in &key.context {
        request = request.encryption_context(k, v);
    }
    let response = request.send().await.map_err(|e| KmsError::Call {
        operation: "Decrypt",
        arn: key.arn.clone(),
        message: flatten(&e),
    })?;
    let plaintext = response.plaintext.ok_or_else(|| KmsError::Call {
        operation: "Decrypt",
        arn: key.arn.clone(),
        message: "no plaintext in the response".into(),
    })?;
    Ok(SecretBytes::new(plaintext.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_come_from_the_arn() {
        assert_eq!(
            region_of("arn:aws:kms:eu-west-1:123456789012:key/abc").unwrap(),
            "eu-west-1"
        );
        assert_eq!(
            region_of("arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/prod").unwrap(),
            "us-gov-west-1"
        );
        assert!(region_of("arn:aws:s3:::bucket").is_err());
        assert!(region_of("key/abc").is_err());
    }

    #[test]
    fn session_names_are_sts_safe() {
        let name = session_name();
        assert!(name.starts_with("sops@") && name.len() <= 64);
    }
}
