//! `BatchGetSecretValue`: one batch of secret ids, answered per id, for both
//! [`SecretProvider::get_many`] and [`SecretProvider::find`].

use zeroize::Zeroizing;

use super::*;

/// Why a batch gave no per-id answers.
pub(super) enum Batch {
    /// The service does not know `BatchGetSecretValue`: read one secret at a time.
    Unsupported,
    /// The whole call failed (or, for [`Ids::Listed`], one of its secrets did).
    Failed(ProviderError),
}

/// The answer for one id of a batch: its payload, or its error.
pub(super) type Outcome = Result<Zeroizing<Vec<u8>>, ProviderError>;

/// What the ids of a batch are, which decides how answers are matched to them and how
/// failures are reported.
#[derive(Clone, Copy)]
pub(super) enum Ids {
    /// `get_many`'s ids: names, full or partial ARNs ([`same_secret`]). A failed call
    /// names every label ([`describe`]); a failed secret is that id's [`Outcome`].
    Keys,
    /// `find`'s full ARNs from `ListSecrets`, matched exactly. A failed call names the
    /// first label; a failed secret (other than not found or deleted) fails the batch.
    Listed,
}

impl Ids {
    /// Whether a returned secret (`name`, `arn`) is the one requested as `id`.
    fn matches(self, id: &str, name: Option<&str>, arn: Option<&str>) -> bool {
        match self {
            Self::Keys => same_secret(id, name, arn),
            Self::Listed => arn == Some(id),
        }
    }

    /// The secrets of a whole batch of `(id, label)`s, as an error message names them.
    fn what(self, wanted: &[(&str, &str)]) -> String {
        match self {
            Self::Keys => describe(wanted.iter().map(|&(_, label)| label)),
            Self::Listed => wanted.first().map_or("", |&(_, label)| label).to_owned(),
        }
    }
}

impl AwsSecretsManager {
    /// One `BatchGetSecretValue` of the ids of `wanted`, `(id, label)`s (following
    /// `NextToken`s): per id, in order, its payload or its error, which names its label
    /// (an id in neither list of the answer: `NotFound`).
    pub(super) async fn batch_get(
        &self,
        client: &Client,
        wanted: &[(&str, &str)],
        ids: Ids,
    ) -> Result<Vec<Outcome>, Batch> {
        let mut outcomes: Vec<Option<Outcome>> = wanted.iter().map(|_| None).collect();
        let mut token: Option<String> = None;
        loop {
            let result = client
                .batch_get_secret_value()
                .set_secret_id_list(Some(wanted.iter().map(|&(id, _)| id.to_owned()).collect()))
                .set_next_token(token.take())
                .send()
                .await;
            self.observer
                .observe(AwsSmCall::BatchGetSecretValue, result.is_ok());
            let mut output = match result {
                Ok(output) => output,
                Err(e) if unsupported(&e) => return Err(Batch::Unsupported),
                Err(e) => {
                    let what = ids.what(wanted);
                    return Err(Batch::Failed(call_error("BatchGetSecretValue", &what, &e)));
                }
            };
            for entry in output.secret_values.take().unwrap_or_default() {
                let (name, arn) = (entry.name.as_deref(), entry.arn.as_deref());
                let bytes =
                    payload_bytes(entry.secret_string, entry.secret_binary).map(Zeroizing::new);
                // Every id naming this secret (a name and an ARN of the same secret may both
                // be asked for; the service answers once).
                for (outcome, &(id, label)) in outcomes.iter_mut().zip(wanted) {
                    if ids.matches(id, name, arn) {
                        *outcome = Some(bytes.clone().ok_or_else(|| neither(label)));
                    }
                }
            }
            for error in output.errors() {
                let id = error.secret_id().unwrap_or_default();
                let n = wanted
                    .iter()
                    .position(|&(asked, _)| asked == id || ids.matches(asked, None, Some(id)));
                let code = error.error_code().unwrap_or_default();
                let message = error.message().unwrap_or_default();
                let gone = code == "ResourceNotFoundException" || deleted(code, message);
                let failure = secret_error(gone, code, message, n.map_or(id, |n| wanted[n].1));
                match (ids, n) {
                    (Ids::Listed, _) if !gone => return Err(Batch::Failed(failure)),
                    (_, Some(n)) if !outcomes[n].as_ref().is_some_and(|o| o.is_ok()) => {
                        outcomes[n] = Some(Err(failure));
                    }
                    _ => {}
                }
            }
            match output.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(outcomes
            .into_iter()
            .zip(wanted)
            .map(|(outcome, &(_, label))| {
                outcome.unwrap_or_else(|| {
                    Err(ProviderError::NotFound {
                        key: label.to_owned(),
                    })
                })
            })
            .collect())
    }
}

/// The error of one secret of a batch, `label`: `NotFound` when `gone` (not found or
/// deleted), else typed by `code`.
fn secret_error(gone: bool, code: &str, message: &str, label: &str) -> ProviderError {
    if gone {
        return ProviderError::NotFound {
            key: label.to_owned(),
        };
    }
    classify(
        Some(code),
        None,
        format!("AWS Secrets Manager BatchGetSecretValue of {label:?} failed: {code}: {message}"),
        label,
    )
}

/// Whether a returned secret (`name`, `arn`) is the one requested as `id`: by name, or for
/// an ARN by the full ARN or the partial one (without the `-xxxxxx` suffix AWS appends).
fn same_secret(id: &str, name: Option<&str>, arn: Option<&str>) -> bool {
    // Secret names cannot contain ':', so an id starting with "arn:" is an ARN.
    if id.starts_with("arn:") {
        arn.is_some_and(|arn| {
            arn == id
                || arn
                    .strip_prefix(id)
                    .is_some_and(|suffix| suffix.len() == 7 && suffix.starts_with('-'))
        })
    } else {
        name == Some(id)
    }
}

/// The keys of a whole batch, for error messages: the first three and a count.
fn describe<'a>(keys: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = keys.len();
    let mut text = keys.take(3).collect::<Vec<_>>().join(", ");
    if total > 3 {
        text.push_str(&format!(" and {} more", total - 3));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_and_description() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbC123";
        assert!(same_secret("app/db", Some("app/db"), Some(arn)));
        assert!(!same_secret("app/d", Some("app/db"), Some(arn)));
        assert!(same_secret(arn, Some("app/db"), Some(arn)));
        assert!(same_secret(
            &arn[..arn.len() - 7],
            Some("app/db"),
            Some(arn)
        ));
        assert!(!same_secret(
            &arn[..arn.len() - 8],
            Some("app/db"),
            Some(arn)
        ));
        assert!(!same_secret(arn, Some("app/db"), None));
        // Listed ids are full ARNs: a longer ARN with a suffix is another secret.
        assert!(Ids::Listed.matches(arn, Some("x"), Some(arn)));
        assert!(!Ids::Listed.matches(&arn[..arn.len() - 7], Some("app/db"), Some(arn)));
        assert!(!Ids::Listed.matches("app/db", Some("app/db"), Some(arn)));
        assert_eq!(describe(["a", "b"].into_iter()), "a, b");
        assert_eq!(
            describe(["a", "b", "c", "d", "e"].into_iter()),
            "a, b, c and 2 more"
        );
        let wanted = [("1", "a"), ("2", "b"), ("3", "c"), ("4", "d")];
        assert_eq!(Ids::Keys.what(&wanted), "a, b, c and 1 more");
        assert_eq!(Ids::Listed.what(&wanted), "a");
        assert_eq!(Ids::Listed.what(&[]), "");
        assert_eq!(
            secret_error(true, "InvalidRequestException", "m", "k").kind(),
            "NotFound"
        );
        let denied = secret_error(false, "AccessDeniedException", "no", "app/db");
        assert_eq!(denied.kind(), "Forbidden");
        assert!(
            denied
                .to_string()
                .contains("BatchGetSecretValue of \"app/db\" failed: AccessDeniedException: no")
        );
    }
}
