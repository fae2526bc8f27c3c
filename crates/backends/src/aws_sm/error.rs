//! How SDK failures become [`ProviderError`]s.

use super::*;

pub(super) fn flatten(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

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
    let message = format!(
        "AWS Secrets Manager {operation} of {key:?} failed: {}",
        flatten(error)
    );
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.as_service_error().and_then(|e| e.code());
    if code.is_none() && credentials_failed(error) {
        return ProviderError::Forbidden(message);
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
    classify(code, status, message, key)
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
        Some("InternalServiceError" | "InternalFailure" | "ServiceUnavailable") => {
            ProviderError::Unavailable(message)
        }
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
