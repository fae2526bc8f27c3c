//! Provider clients for stores: one authenticated client per store and auth identity,
//! kept between syncs (never a login per sync, ESO #376). Credentials are read when the
//! client is looked up (a Secret read, so that a rotated credential makes a new client)
//! or, for service account tokens, minted by TokenRequest at login time only.

use std::sync::Arc;

use base64::Engine as _;
use gitseal_api::{
    AwsServiceType, SecretKeySelector, ServiceAccountSelector, StoreKind, VaultKvVersion,
};
use gitseal_backends::aws_sm::{
    AwsCredentials, AwsSmCall, AwsSmCallObserver, AwsSmClientKey, AwsSmClients, AwsSmConfig,
};
use gitseal_backends::provider::{BoxFuture, ProviderError, SecretProvider, SecretValue};
use gitseal_backends::vault::{
    CallObserver, Credential, CredentialDigest, Credentials, KvVersion, VaultAuth, VaultCall,
    VaultClientKey, VaultClients, VaultConfig,
};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::Api;
use kube::api::PostParams;

use super::store::{Store, ref_namespace};
use crate::Error;
use crate::context::Context;
use crate::metrics::ExternalSecretMetrics;
use crate::reconcile::secret::SecretData;

/// The file of the controller pod's own service account token.
const POD_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Authenticated provider clients, per store and identity.
pub struct Providers {
    vault: VaultClients,
    aws: AwsSmClients,
}

struct Observer(ExternalSecretMetrics);

impl CallObserver for Observer {
    fn observe(&self, call: VaultCall, success: bool) {
        self.0
            .provider_call("HashiCorp/Vault", call.as_str(), success);
    }
}

impl AwsSmCallObserver for Observer {
    fn observe(&self, call: AwsSmCall, success: bool) {
        self.0
            .provider_call("AWS/SecretsManager", call.as_str(), success);
    }
}

impl Providers {
    /// No clients yet; provider calls are counted in `metrics`.
    pub fn new(metrics: ExternalSecretMetrics) -> Self {
        let observer = Arc::new(Observer(metrics));
        Self {
            vault: VaultClients::new(observer.clone()),
            aws: AwsSmClients::new(observer),
        }
    }

    /// Revokes the tokens gitseal logged in for (at shutdown).
    pub async fn shutdown(&self) {
        self.vault.shutdown().await;
    }

    /// Drops clients unused for `idle`, revoking their tokens.
    pub async fn evict_idle(&self, idle: std::time::Duration) -> usize {
        self.vault.evict_idle(idle).await
    }

    /// The client of `store` for an ExternalSecret in `namespace`.
    pub async fn get(
        &self,
        ctx: &Context,
        store: &Store,
        namespace: &str,
    ) -> Result<Arc<dyn SecretProvider>, Error> {
        if let Some(vault) = &store.spec.provider.vault {
            let (key, config, credentials) = vault_client(ctx, store, vault, namespace).await?;
            let provider = self
                .vault
                .get_or_insert_with(&key, move || Ok((config, credentials)))?;
            return Ok(provider);
        }
        if let Some(aws) = &store.spec.provider.aws
            && aws.service == AwsServiceType::SecretsManager
        {
            let (key, config) = aws_client(ctx, store, aws, namespace).await?;
            let provider = self.aws.get_or_insert_with(&key, move || Ok(config))?;
            return Ok(provider);
        }
        let name = store.spec.provider.name().unwrap_or("no provider");
        Err(Error::Sync(format!(
            "{}: provider {name:?} is not supported by gitseal (supported: vault, aws \
             SecretsManager)",
            store.describe()
        )))
    }
}

/// The namespace a store is validated in alone, or `None` when its credentials are read
/// in each ExternalSecret's namespace (a ClusterSecretStore's reference without one).
pub fn validation_namespace(store: &Store) -> Option<String> {
    if let Some(ns) = &store.namespace {
        return Some(ns.clone());
    }
    if let Some(aws) = &store.spec.provider.aws {
        let auth = aws.auth.clone().unwrap_or_default();
        let named = |ns: &Option<String>| ns.clone().filter(|n| !n.is_empty());
        return match (&auth.secret_ref, &auth.jwt) {
            (Some(r), _) => named(&r.access_key_id_secret_ref.namespace),
            (None, Some(j)) => named(&j.service_account_ref.as_ref()?.namespace),
            // The controller's own default chain needs no namespace.
            (None, None) => Some(String::new()),
        };
    }
    let vault = store.spec.provider.vault.as_ref()?;
    let auth = vault.auth.as_ref()?;
    let namespaces: Vec<Option<&str>> = [
        auth.token_secret_ref
            .as_ref()
            .map(|r| r.namespace.as_deref()),
        auth.app_role
            .as_ref()
            .map(|a| a.secret_ref.namespace.as_deref()),
        auth.kubernetes.as_ref().and_then(|k| {
            k.service_account_ref
                .as_ref()
                .map(|s| s.namespace.as_deref())
                .or(k.secret_ref.as_ref().map(|s| s.namespace.as_deref()))
        }),
        auth.jwt.as_ref().and_then(|j| {
            j.secret_ref.as_ref().map(|s| s.namespace.as_deref()).or(j
                .kubernetes_service_account_token
                .as_ref()
                .map(|t| t.service_account_ref.namespace.as_deref()))
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    match namespaces.first() {
        Some(Some(ns)) if !ns.is_empty() => Some((*ns).to_owned()),
        // Kubernetes auth with the pod's own token needs no namespace.
        None if auth.kubernetes.is_some() => Some(String::new()),
        _ => None,
    }
}

/// Reads `selector`'s key (default `default_key`) from its Secret, in the namespace the
/// store's rule gives.
async fn read_key(
    client: &kube::Client,
    store: &Store,
    namespace: &str,
    selector: &SecretKeySelector,
    default_key: &str,
) -> Result<(String, SecretValue), Error> {
    let ns = ref_namespace(store, namespace, selector.namespace.as_deref())?;
    let key = selector
        .key
        .clone()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| default_key.to_owned());
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = api
        .get_opt(&selector.name)
        .await
        .map_err(Error::Fetch)?
        .map(SecretData::new)
        .ok_or_else(|| {
            Error::Sync(format!(
                "cannot get Kubernetes secret {:?} in namespace {ns:?}: not found",
                selector.name
            ))
        })?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&key))
        .map(|v| SecretValue::new(v.0.clone()))
        .ok_or_else(|| {
            Error::Sync(format!(
                "cannot find secret data for key {key:?} in Kubernetes secret {:?}",
                selector.name
            ))
        })?;
    Ok((format!("{ns}/{}/{key}", selector.name), value))
}

/// A function that mints a service account token by TokenRequest each time it is called
/// (at login only).
type TokenSource =
    Arc<dyn Fn() -> BoxFuture<'static, Result<SecretValue, ProviderError>> + Send + Sync>;

/// A [`TokenSource`] for `account` in `namespace`, for its audiences (else
/// `default_audiences`), valid for `expiration` seconds.
fn token_request(
    client: &kube::Client,
    namespace: String,
    account: &ServiceAccountSelector,
    default_audiences: &[&str],
    expiration: i64,
) -> TokenSource {
    let client = client.clone();
    let name = account.name.clone();
    let audiences: Vec<String> = if account.audiences.is_empty() {
        default_audiences.iter().map(|a| (*a).to_owned()).collect()
    } else {
        account.audiences.clone()
    };
    Arc::new(move || {
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audiences.clone(),
                expiration_seconds: Some(expiration),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let name = name.clone();
        Box::pin(async move {
            let response: TokenRequest = api
                .create_subresource("token", &name, &PostParams::default(), &request)
                .await
                .map_err(|e| match e {
                    kube::Error::Api(e) if e.code == 403 || e.code == 404 => {
                        ProviderError::Forbidden(format!(
                            "cannot request a token for service account {name:?}: {}",
                            e.message
                        ))
                    }
                    other => ProviderError::Unavailable(format!(
                        "cannot request a token for service account {name:?}: {other}"
                    )),
                })?;
            let token = response
                .status
                .map(|s| s.token)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ProviderError::Unavailable("empty TokenRequest response".into()))?;
            Ok(SecretValue::new(token.into_bytes()))
        })
    })
}

/// Vault credentials that log in with a token from `source`.
fn jwt_from(source: TokenSource) -> Credentials {
    Credentials::new(move || {
        let token = source();
        async move { Ok(Credential::Jwt(token.await?)) }
    })
}

/// The cache key and configuration of an AWS Secrets Manager store for `namespace`:
/// static credentials from a Secret, IRSA (a service account token from TokenRequest for
/// the role its `eks.amazonaws.com/role-arn` annotation names, exchanged at STS), or the
/// controller's own default chain; then `additionalRoles` and `role` assumed in turn.
async fn aws_client(
    ctx: &Context,
    store: &Store,
    aws: &gitseal_api::AwsProvider,
    namespace: &str,
) -> Result<(AwsSmClientKey, AwsSmConfig), Error> {
    let client = &ctx.client;
    let mut key = AwsSmClientKey {
        store: store.identity(),
        region: aws.region.clone(),
        ..AwsSmClientKey::default()
    };
    let auth = aws.auth.clone().unwrap_or_default();
    let credentials = if let Some(secret_ref) = &auth.secret_ref {
        let (reference, id) = read_key(
            client,
            store,
            namespace,
            &secret_ref.access_key_id_secret_ref,
            "",
        )
        .await?;
        let (_, secret) = read_key(
            client,
            store,
            namespace,
            &secret_ref.secret_access_key_secret_ref,
            "",
        )
        .await?;
        let session = match &secret_ref.session_token_secret_ref {
            Some(selector) => Some(read_key(client, store, namespace, selector, "").await?.1),
            None => None,
        };
        let mut material = id.as_bytes().to_vec();
        material.extend_from_slice(secret.as_bytes());
        key.auth_method = "secretRef".into();
        key.credential_ref = reference;
        key.credential_digest = Some(CredentialDigest::of(&material));
        zeroize::Zeroize::zeroize(&mut material);
        AwsCredentials::Static {
            access_key_id: String::from_utf8(id.as_bytes().to_vec()).map_err(|_| {
                Error::Sync(format!(
                    "{}: the access key id is not text",
                    store.describe()
                ))
            })?,
            secret_access_key: secret,
            session_token: session,
        }
    } else if let Some(account) = auth
        .jwt
        .as_ref()
        .and_then(|j| j.service_account_ref.as_ref())
    {
        let ns = ref_namespace(store, namespace, account.namespace.as_deref())?;
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
        let sa = accounts
            .get_opt(&account.name)
            .await
            .map_err(Error::Fetch)?
            .ok_or_else(|| {
                Error::Sync(format!(
                    "{}: service account {:?} not found in {ns:?}",
                    store.describe(),
                    account.name
                ))
            })?;
        let annotations = sa.metadata.annotations.unwrap_or_default();
        let role_arn = annotations
            .get("eks.amazonaws.com/role-arn")
            .cloned()
            .ok_or_else(|| {
                Error::Sync(format!(
                    "{}: service account {:?} has no eks.amazonaws.com/role-arn annotation",
                    store.describe(),
                    account.name
                ))
            })?;
        let audience = annotations
            .get("eks.amazonaws.com/audience")
            .cloned()
            .unwrap_or_else(|| "sts.amazonaws.com".into());
        let mut account = account.clone();
        account.audiences.insert(0, audience);
        key.auth_method = "jwt".into();
        key.credential_ref = format!("serviceaccount:{ns}/{}|{role_arn}", account.name);
        AwsCredentials::WebIdentity {
            role_arn,
            token: token_request(client, ns, &account, &[], 600),
        }
    } else {
        key.auth_method = "default".into();
        AwsCredentials::DefaultChain
    };
    let mut config = AwsSmConfig::new(aws.region.clone(), credentials);
    config.endpoint = ctx.config.external_secrets.aws_endpoint_url.clone();
    config.prefix = aws.prefix.clone().filter(|p| !p.is_empty());
    config.role = aws.role.clone().filter(|r| !r.is_empty());
    config.additional_roles = aws.additional_roles.clone();
    config.external_id = aws.external_id.clone().filter(|e| !e.is_empty());
    key.endpoint = config.endpoint.clone().unwrap_or_default();
    key.role_chain = config
        .additional_roles
        .iter()
        .chain(config.role.iter())
        .cloned()
        .collect();
    key.external_id = config.external_id.clone().unwrap_or_default();
    Ok((key, config))
}

/// The cache key, configuration and credentials of a Vault store for `namespace`.
async fn vault_client(
    ctx: &Context,
    store: &Store,
    vault: &gitseal_api::VaultProvider,
    namespace: &str,
) -> Result<(VaultClientKey, VaultConfig, Credentials), Error> {
    let client = &ctx.client;
    let invalid = |what: String| Error::Sync(format!("{}: {what}", store.describe()));
    let auth_spec = vault
        .auth
        .as_ref()
        .ok_or_else(|| invalid("spec.provider.vault.auth is required".into()))?;
    let mut key = VaultClientKey {
        store: store.identity(),
        server: vault.server.clone(),
        namespace: vault.namespace.clone().unwrap_or_default(),
        auth_namespace: auth_spec.namespace.clone().unwrap_or_default(),
        ..VaultClientKey::default()
    };
    let (auth, credentials) = if let Some(selector) = &auth_spec.token_secret_ref {
        let (reference, token) = read_key(client, store, namespace, selector, "token").await?;
        key.auth_method = "tokenSecretRef".into();
        key.credential_ref = reference;
        key.credential_digest = Some(CredentialDigest::of(token.as_bytes()));
        (VaultAuth::Token, Credentials::token(token.as_bytes()))
    } else if let Some(app_role) = &auth_spec.app_role {
        let role_id = match (&app_role.role_id, &app_role.role_ref) {
            (Some(id), _) if !id.is_empty() => id.clone(),
            (_, Some(selector)) => {
                let (_, value) = read_key(client, store, namespace, selector, "").await?;
                String::from_utf8(value.as_bytes().to_vec())
                    .map_err(|_| invalid("the AppRole role id is not text".into()))?
            }
            _ => return Err(invalid("appRole needs roleId or roleRef".into())),
        };
        let (reference, secret_id) =
            read_key(client, store, namespace, &app_role.secret_ref, "").await?;
        let path = app_role.path.clone();
        key.auth_method = "appRole".into();
        key.auth_mount = path.clone();
        key.role = role_id.clone();
        key.credential_ref = reference;
        key.credential_digest = Some(CredentialDigest::of(secret_id.as_bytes()));
        (
            VaultAuth::AppRole { path },
            Credentials::approle(&role_id, secret_id.as_bytes()),
        )
    } else if let Some(kubernetes) = &auth_spec.kubernetes {
        key.auth_method = "kubernetes".into();
        key.auth_mount = kubernetes.mount_path.clone();
        key.role = kubernetes.role.clone();
        let credentials = if let Some(account) = &kubernetes.service_account_ref {
            let ns = ref_namespace(store, namespace, account.namespace.as_deref())?;
            key.credential_ref = format!("serviceaccount:{ns}/{}", account.name);
            jwt_from(token_request(client, ns, account, &[], 600))
        } else if let Some(selector) = &kubernetes.secret_ref {
            let (reference, jwt) = read_key(client, store, namespace, selector, "token").await?;
            key.credential_ref = reference;
            key.credential_digest = Some(CredentialDigest::of(jwt.as_bytes()));
            Credentials::jwt(jwt.as_bytes())
        } else {
            key.credential_ref = "pod".into();
            Credentials::new(|| async {
                let token = tokio::fs::read(POD_TOKEN).await.map_err(|e| {
                    ProviderError::Invalid(format!(
                        "cannot read the pod's service account token: {e}"
                    ))
                })?;
                Ok(Credential::Jwt(SecretValue::new(token)))
            })
        };
        (
            VaultAuth::Kubernetes {
                mount_path: kubernetes.mount_path.clone(),
                role: kubernetes.role.clone(),
            },
            credentials,
        )
    } else if let Some(jwt) = &auth_spec.jwt {
        let role = jwt.role.clone().unwrap_or_default();
        key.auth_method = "jwt".into();
        key.auth_mount = jwt.path.clone();
        key.role = role.clone();
        let credentials = if let Some(selector) = &jwt.secret_ref {
            let (reference, token) = read_key(client, store, namespace, selector, "").await?;
            key.credential_ref = reference;
            key.credential_digest = Some(CredentialDigest::of(token.as_bytes()));
            Credentials::jwt(token.as_bytes())
        } else if let Some(token) = &jwt.kubernetes_service_account_token {
            let account = &token.service_account_ref;
            let ns = ref_namespace(store, namespace, account.namespace.as_deref())?;
            key.credential_ref = format!("serviceaccount:{ns}/{}", account.name);
            let mut account = account.clone();
            if account.audiences.is_empty() {
                account.audiences = token.audiences.clone();
            }
            jwt_from(token_request(
                client,
                ns,
                &account,
                &["vault"],
                token.expiration_seconds.unwrap_or(600),
            ))
        } else {
            return Err(invalid(
                "jwt auth needs secretRef or kubernetesServiceAccountToken".into(),
            ));
        };
        (
            VaultAuth::Jwt {
                path: jwt.path.clone(),
                role,
            },
            credentials,
        )
    } else {
        return Err(invalid(
            "the auth method is not supported by gitseal (supported: tokenSecretRef, appRole, kubernetes, jwt)"
                .into(),
        ));
    };
    let mut config = VaultConfig::new(vault.server.clone(), auth);
    config.path = vault.path.clone().filter(|p| !p.is_empty());
    config.version = match vault.version {
        VaultKvVersion::V1 => KvVersion::V1,
        _ => KvVersion::V2,
    };
    config.namespace = vault.namespace.clone().filter(|n| !n.is_empty());
    config.auth_namespace = auth_spec.namespace.clone().filter(|n| !n.is_empty());
    config.headers = vault
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    config.ca_bundle = ca_bundle(ctx, store, vault, namespace).await?;
    if let Some(ca) = &config.ca_bundle {
        key.credential_ref
            .push_str(&format!("|ca:{:?}", CredentialDigest::of(ca)));
    }
    Ok((key, config, credentials))
}

/// The store's CA certificates: `caBundle` (base64 PEM) or `caProvider` (a Secret's or
/// ConfigMap's key).
async fn ca_bundle(
    ctx: &Context,
    store: &Store,
    vault: &gitseal_api::VaultProvider,
    namespace: &str,
) -> Result<Option<Vec<u8>>, Error> {
    if let Some(bundle) = vault.ca_bundle.as_deref().filter(|b| !b.is_empty()) {
        return base64::engine::general_purpose::STANDARD
            .decode(bundle.trim())
            .map(Some)
            .map_err(|_| Error::Sync(format!("{}: caBundle is not base64", store.describe())));
    }
    let Some(provider) = &vault.ca_provider else {
        return Ok(None);
    };
    let ns = match (store.kind, provider.namespace.as_deref()) {
        (StoreKind::ClusterSecretStore, Some(ns)) if !ns.is_empty() => ns.to_owned(),
        (StoreKind::ClusterSecretStore, _) => namespace.to_owned(),
        _ => store
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_owned()),
    };
    let missing = || {
        Error::Sync(format!(
            "{}: caProvider key {:?} not found in {:?}",
            store.describe(),
            provider.key,
            provider.name
        ))
    };
    if provider.type_ == gitseal_api::CaProviderType::ConfigMap {
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
        let map = api.get(&provider.name).await.map_err(Error::Fetch)?;
        let value = map.data.and_then(|d| d.get(&provider.key).cloned());
        value.map(|v| Some(v.into_bytes())).ok_or_else(missing)
    } else {
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
        let secret = SecretData::new(api.get(&provider.name).await.map_err(Error::Fetch)?);
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&provider.key))
            .map(|v| v.0.clone());
        value.map(Some).ok_or_else(missing)
    }
}
