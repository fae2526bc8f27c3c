//! Web identity credentials: a service account token exchanged at STS
//! `AssumeRoleWithWebIdentity`, the token fetched only when credentials are (re)obtained.

use super::*;

/// STS `AssumeRoleWithWebIdentity` with a token fetched at each (re)fresh.
pub(super) struct WebIdentity {
    pub(super) sts: aws_sdk_sts::Client,
    pub(super) role_arn: String,
    pub(super) token: Arc<TokenSource>,
}

impl std::fmt::Debug for WebIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebIdentity")
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

impl WebIdentity {
    async fn fetch(&self) -> aws_credential_types::provider::Result {
        let token = (self.token)()
            .await
            .map_err(CredentialsError::provider_error)?;
        let token = String::from_utf8(token.as_bytes().to_vec()).map_err(|_| {
            CredentialsError::invalid_configuration("the web identity token is not UTF-8")
        })?;
        let output = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.role_arn)
            .role_session_name(SESSION_NAME)
            .web_identity_token(token)
            .send()
            .await
            // The typed error (Throttled, Unavailable…) travels as the source, so that
            // `call_error` can tell STS throttling and outages from refused credentials.
            .map_err(|e| {
                CredentialsError::provider_error(sdk_error(
                    "STS",
                    "AssumeRoleWithWebIdentity",
                    &self.role_arn,
                    &e,
                ))
            })?;
        let credentials = output.credentials.ok_or_else(|| {
            CredentialsError::provider_error(
                "STS AssumeRoleWithWebIdentity returned no credentials",
            )
        })?;
        Ok(aws_credential_types::Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            Some(credentials.session_token),
            SystemTime::try_from(credentials.expiration).ok(),
            "gitseal-web-identity",
        ))
    }
}

impl ProvideCredentials for WebIdentity {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.fetch())
    }
}
