//! How SDK failures become [`ProviderError`]s.

use super::*;

pub(super) fn deleted(code: &str, message: &str) -> bool {
    // AWS: "… because it was marked for deletion."; moto: "… currently marked deleted."
    code == "InvalidRequestException"
        && (message.contains("marked for deletion") || message.contains("marked deleted"))
}

/// Whether the service does not know the operation (an emulator without
/// `BatchGetSecretValue`).
pub(super) fn unsupported<E>(error: &SdkError<E>) -> bool
where
    E: ProvideErrorMetadata,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.as_service_error().and_then(|e| e.code());
    unknown_operation(code, status)
}

pub(super) fn unknown_operation(code: Option<&str>, status: Option<u16>) -> bool {
    matches!(
        code,
        Some(
            "UnknownOperationException"
                | "InvalidAction"
                | "NotImplemented"
                | "NotImplementedException"
                | "UnsupportedOperation"
        )
    ) || (code.is_none() && matches!(status, Some(404 | 501)))
}

/// A failed call, typed by what the service said. Messages name keys, never values.
pub(super) fn call_error<E>(operation: &str, key: &str, error: &SdkError<E>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    sdk_error("AWS Secrets Manager", operation, key, error)
}

/// [`call_error`] for any AWS service (`service` names it in the message, e.g. "STS").
pub(super) fn sdk_error<E>(
    service: &str,
    operation: &str,
    key: &str,
    error: &SdkError<E>,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = format!(
        "{service} {operation} of {key:?} failed: {}",
        crate::error_chain(error)
    );
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.as_service_error().and_then(|e| e.code());
    if code.is_none() && credentials_failed(error) {
        return credentials_error(error, message);
    }
    let service_message = error
        .as_service_error()
        .and_then(|e| e.message())
        .unwrap_or_default();
    if code.is_some_and(|c| deleted(c, service_message)) {
        return ProviderError::NotFound {
            key: key.to_owned(),
        };
    }
    match classify(code, status, message, key) {
        ProviderError::Throttled {
            retry_after: None,
            message,
        } => ProviderError::Throttled {
            retry_after: error
                .raw_response()
                .and_then(|r| r.headers().get("retry-after"))
                .and_then(retry_after),
            message,
        },
        other => other,
    }
}

/// A `Retry-After` header in seconds (the HTTP-date form is not used by AWS).
pub(super) fn retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Credentials could not be obtained: `Forbidden`, unless the cause is transient — STS (or
/// the web identity token source) throttled or unavailable, or the provider timed out —
/// which is `Throttled` / `Unavailable`, so the store backs off instead of failing hard.
pub(super) fn credentials_error(
    error: &(dyn std::error::Error + 'static),
    message: String,
) -> ProviderError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        match e.downcast_ref::<ProviderError>() {
            Some(ProviderError::Throttled { retry_after, .. }) => {
                return ProviderError::Throttled {
                    retry_after: *retry_after,
                    message,
                };
            }
            Some(ProviderError::Unavailable(_)) => return ProviderError::Unavailable(message),
            _ => {}
        }
        if let Some(CredentialsError::ProviderTimedOut(_)) = e.downcast_ref::<CredentialsError>() {
            return ProviderError::Unavailable(message);
        }
        source = e.source();
    }
    ProviderError::Forbidden(message)
}

pub(super) fn credentials_failed(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}

pub(super) fn classify(
    code: Option<&str>,
    status: Option<u16>,
    message: String,
    key: &str,
) -> ProviderError {
    match code {
        Some("ResourceNotFoundException") => ProviderError::NotFound {
            key: key.to_owned(),
        },
        Some(
            "AccessDeniedException"
            | "AccessDenied"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "ExpiredToken"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "MissingAuthenticationToken",
        ) => ProviderError::Forbidden(message),
        Some(
            "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded",
        ) => ProviderError::Throttled {
            retry_after: None,
            message,
        },
        Some(
            "InternalServiceError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "ServiceUnavailableException",
        ) => ProviderError::Unavailable(message),
        _ => match status {
            Some(429) => ProviderError::Throttled {
                retry_after: None,
                message,
            },
            Some(401 | 403) => ProviderError::Forbidden(message),
            Some(s) if s >= 500 => ProviderError::Unavailable(message),
            Some(_) => ProviderError::Invalid(message),
            // Not an answer of the service: no connection, timeout.
            None if code.is_some() => ProviderError::Invalid(message),
            None => ProviderError::Unavailable(message),
        },
    }
}
