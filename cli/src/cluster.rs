//! Talking to the sealed-secrets controller the way kubeseal does: through the Kubernetes
//! API server's service proxy, with the user's kubeconfig (or in-cluster configuration).

use anyhow::{Context, bail};
use clap::builder::BoolishValueParser;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

/// kubectl's connection flags, applied over the kubeconfig.
#[derive(Default, clap::Args)]
pub struct Overrides {
    /// The address and port of the Kubernetes API server.
    #[arg(short = 's', long, env = "SEALED_SECRETS_SERVER")]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server.
    #[arg(long, env = "SEALED_SECRETS_TOKEN")]
    pub token: Option<String>,
    /// The kubeconfig cluster to use.
    #[arg(long, env = "SEALED_SECRETS_CLUSTER")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use.
    #[arg(long, env = "SEALED_SECRETS_USER")]
    pub user: Option<String>,
    /// Path to a certificate file for the certificate authority.
    #[arg(long, env = "SEALED_SECRETS_CERTIFICATE_AUTHORITY")]
    pub certificate_authority: Option<std::path::PathBuf>,
    /// Do not check the server's certificate (insecure).
    #[arg(long, env = "SEALED_SECRETS_INSECURE_SKIP_TLS_VERIFY", value_parser = BoolishValueParser::new())]
    pub insecure_skip_tls_verify: bool,
    /// Server name to use for the server's certificate validation.
    #[arg(long, env = "SEALED_SECRETS_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
    /// Timeout of a single request, e.g. 10s or 1m (0: none).
    #[arg(long, env = "SEALED_SECRETS_REQUEST_TIMEOUT")]
    pub request_timeout: Option<humantime::Duration>,
    /// Username to impersonate for the operation.
    #[arg(long = "as", env = "SEALED_SECRETS_AS")]
    pub impersonate: Option<String>,
    /// Group to impersonate (repeatable).
    #[arg(long = "as-group", env = "SEALED_SECRETS_AS_GROUP")]
    pub impersonate_groups: Vec<String>,
    /// UID to impersonate.
    #[arg(long = "as-uid", env = "SEALED_SECRETS_AS_UID")]
    pub impersonate_uid: Option<String>,
    /// Path to a client certificate file for TLS.
    #[arg(long, env = "SEALED_SECRETS_CLIENT_CERTIFICATE")]
    pub client_certificate: Option<String>,
    /// Path to a client key file for TLS.
    #[arg(long, env = "SEALED_SECRETS_CLIENT_KEY")]
    pub client_key: Option<String>,
    /// Username for basic authentication to the API server.
    #[arg(long, env = "SEALED_SECRETS_USERNAME")]
    pub username: Option<String>,
    /// Password for basic authentication to the API server.
    #[arg(long, env = "SEALED_SECRETS_PASSWORD")]
    pub password: Option<String>,
    /// Do not ask the API server for compressed responses.
    #[arg(long, env = "SEALED_SECRETS_DISABLE_COMPRESSION", value_parser = BoolishValueParser::new())]
    pub disable_compression: bool,
    /// Log level (accepted for kubeseal compatibility; gitseal logs nothing).
    #[arg(short = 'v', long = "v", value_name = "LEVEL")]
    pub verbosity: Option<u8>,
}

impl Overrides {
    fn apply(&self, config: &mut kube::Config) -> anyhow::Result<()> {
        if let Some(server) = &self.server {
            config.cluster_url = server
                .parse()
                .with_context(|| format!("invalid --server {server:?}"))?;
        }
        if let Some(token) = &self.token {
            config.auth_info.token = Some(token.clone().into());
            config.auth_info.token_file = None;
        }
        if let Some(path) = &self.certificate_authority {
            let pem = crate::file::read(path, gitseal_crypto::limits::KEY_MATERIAL)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let ders = pem::parse_many(&pem)
                .with_context(|| format!("{} is not PEM", path.display()))?
                .into_iter()
                .map(|p| p.into_contents())
                .collect();
            config.root_cert = Some(ders);
        }
        if self.insecure_skip_tls_verify {
            config.accept_invalid_certs = true;
        }
        if let Some(name) = &self.tls_server_name {
            config.tls_server_name = Some(name.clone());
        }
        let auth = &mut config.auth_info;
        if let Some(user) = &self.impersonate {
            auth.impersonate = Some(user.clone());
        }
        if !self.impersonate_groups.is_empty() {
            auth.impersonate_groups = Some(self.impersonate_groups.clone());
        }
        if let Some(uid) = &self.impersonate_uid {
            auth.impersonate_uid = Some(uid.clone());
        }
        if let Some(path) = &self.client_certificate {
            auth.client_certificate = Some(path.clone());
            auth.client_certificate_data = None;
        }
        if let Some(path) = &self.client_key {
            auth.client_key = Some(path.clone());
            auth.client_key_data = None;
        }
        if let Some(username) = &self.username {
            auth.username = Some(username.clone());
        }
        if let Some(password) = &self.password {
            auth.password = Some(password.clone().into());
        }
        config.disable_compression |= self.disable_compression;
        if let Some(timeout) = self.request_timeout {
            let timeout: std::time::Duration = timeout.into();
            config.read_timeout = (!timeout.is_zero()).then_some(timeout);
        }
        Ok(())
    }
}

/// The controller, reached through the API server.
pub struct Controller {
    client: kube::Client,
    namespace: String,
    name: String,
    runtime: tokio::runtime::Runtime,
    /// The service proxy prefix, looked up once.
    proxy: std::cell::OnceCell<String>,
}

/// How many times a request answered 429 (rate limited) is sent again.
const RATE_LIMIT_RETRIES: u32 = 5;

impl Controller {
    /// Connects with `kubeconfig` (empty: `$KUBECONFIG`, `~/.kube/config`, in-cluster) and
    /// `context`, to the controller Service `namespace/name`.
    pub fn connect(
        kubeconfig: &str,
        context: Option<&str>,
        overrides: &Overrides,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the I/O runtime")?;
        let options = KubeConfigOptions {
            context: context.map(str::to_owned),
            cluster: overrides.cluster.clone(),
            user: overrides.user.clone(),
        };
        let client = runtime.block_on(async {
            let config = if kubeconfig.is_empty() {
                match kube::Config::from_kubeconfig(&options).await {
                    Ok(config) => config,
                    // In a pod without a kubeconfig: the service account.
                    Err(_) if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
                        kube::Config::incluster().context("cannot use the in-cluster config")?
                    }
                    Err(error) => {
                        return Err(anyhow::Error::new(error).context(
                            "cannot load the kubeconfig (set KUBECONFIG or --kubeconfig)",
                        ));
                    }
                }
            } else {
                let file = Kubeconfig::read_from(kubeconfig)
                    .with_context(|| format!("cannot read kubeconfig {kubeconfig}"))?;
                kube::Config::from_custom_kubeconfig(file, &options).await?
            };
            let mut config = config;
            overrides.apply(&mut config)?;
            // A 503 (the controller has no key yet, or the Service no endpoint) is reported
            // at once, not retried with backoff for minutes; 429 is retried in `request`.
            config.default_retry = false;
            kube::Client::try_from(config).context("cannot create a Kubernetes client")
        })?;
        Ok(Self {
            client,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            runtime,
            proxy: std::cell::OnceCell::new(),
        })
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        accept: &str,
    ) -> Result<String, kube::Error> {
        // The controller's API is rate-limited per client (upstream's 2 per second): a
        // 429 is worth a few short waits, as kube's retry policy would have given it.
        let mut attempt = 0;
        loop {
            let request = http::Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::ACCEPT, accept)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .expect("a valid request");
            match self.runtime.block_on(self.client.request_text(request)) {
                Err(kube::Error::Api(e)) if e.code == 429 && attempt < RATE_LIMIT_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(500 * u64::from(attempt)));
                }
                other => return other,
            }
        }
    }

    /// The service proxy prefix: `/api/v1/namespaces/<ns>/services/http:<name>:<port>/proxy`.
    fn proxy(&self) -> anyhow::Result<String> {
        if let Some(proxy) = self.proxy.get() {
            return Ok(proxy.clone());
        }
        let path = format!(
            "/api/v1/namespaces/{}/services/{}",
            self.namespace, self.name
        );
        let service = self.request("GET", &path, Vec::new(), "application/json").map_err(|e| {
            anyhow::anyhow!(
                "cannot get sealed secret service: {e}.\nPlease, use the flag --controller-name and \
                 --controller-namespace to set up the name and namespace of the sealed secrets controller"
            )
        })?;
        let service: Value = serde_json::from_str(&service).context("invalid Service object")?;
        let port = service
            .pointer("/spec/ports/0/name")
            .and_then(Value::as_str)
            .or_else(|| {
                service
                    .pointer("/spec/ports/0/port")
                    .and_then(Value::as_u64)
                    .map(|_| "")
            })
            .context("the controller Service has no port")?;
        let port = if port.is_empty() {
            service
                .pointer("/spec/ports/0/port")
                .and_then(Value::as_u64)
                .unwrap_or(8080)
                .to_string()
        } else {
            port.to_owned()
        };
        let proxy = format!(
            "/api/v1/namespaces/{}/services/http:{}:{port}/proxy",
            self.namespace, self.name
        );
        Ok(self.proxy.get_or_init(|| proxy).clone())
    }

    /// `GET /v1/cert.pem`.
    pub fn certificate(&self) -> anyhow::Result<Vec<u8>> {
        let path = format!("{}/v1/cert.pem", self.proxy()?);
        let pem = self
            .request("GET", &path, Vec::new(), "application/x-pem-file, */*")
            .map_err(|e| anyhow::anyhow!("cannot fetch certificate: {e}"))?;
        Ok(pem.into_bytes())
    }

    /// `GET /v1/age-recipient`: the controller's newest age recipient (`age1...`), what
    /// SopsSecrets are encrypted to. A 503 means the controller has no age key (SopsSecrets
    /// disabled, or the leader has not made one yet).
    pub fn age_recipient(&self) -> anyhow::Result<String> {
        let path = format!("{}/v1/age-recipient", self.proxy()?);
        let text = match self.request("GET", &path, Vec::new(), "text/plain, */*") {
            Ok(text) => text,
            Err(kube::Error::Api(status)) if status.code == 503 => bail!(
                "the controller {}/{} has no age recipient (503): SopsSecrets are disabled \
                 there, or its leader has not made an age key yet",
                self.namespace,
                self.name
            ),
            Err(e) => bail!("cannot fetch the controller's age recipient: {e}"),
        };
        let recipient = text.trim();
        let plausible = recipient.starts_with("age1")
            && recipient.len() <= 128
            && recipient.bytes().all(|b| b.is_ascii_alphanumeric());
        if !plausible {
            bail!(
                "the controller {}/{} answered /v1/age-recipient with something other than an \
                 age recipient",
                self.namespace,
                self.name
            );
        }
        Ok(recipient.to_owned())
    }

    /// `POST /v1/verify`: whether the controller can unseal `sealed`.
    pub fn verify(&self, sealed: &Value) -> anyhow::Result<()> {
        let name = sealed
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let path = format!("{}/v1/verify", self.proxy()?);
        match self.request(
            "POST",
            &path,
            serde_json::to_vec(sealed)?,
            "application/json",
        ) {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                bail!("unable to decrypt sealed secret: {name}")
            }
            Err(e) => bail!("cannot validate sealed secret: {e}"),
        }
    }

    /// `POST /v1/rotate`: `sealed` re-encrypted with the controller's newest key.
    pub fn rotate(&self, sealed: &Value) -> anyhow::Result<Value> {
        let path = format!("{}/v1/rotate", self.proxy()?);
        let text = match self.request(
            "POST",
            &path,
            serde_json::to_vec(sealed)?,
            "application/json",
        ) {
            Ok(text) => text,
            Err(kube::Error::Api(status)) if status.code == 409 => bail!("unable to rotate secret"),
            Err(e) => bail!("cannot re-encrypt secret: {e}"),
        };
        let rotated: Value =
            serde_json::from_str(&text).context("invalid SealedSecret from the controller")?;
        // The controller answers without apiVersion and kind; kubeseal puts them back.
        let Value::Object(fields) = rotated else {
            bail!("invalid SealedSecret from the controller: not an object");
        };
        let mut object = serde_json::Map::new();
        object.insert("apiVersion".into(), "bitnami.com/v1alpha1".into());
        object.insert("kind".into(), "SealedSecret".into());
        object.extend(fields);
        let mut rotated = Value::Object(object);
        if let Some(Value::Object(meta)) = rotated.get_mut("metadata") {
            for field in ["creationTimestamp", "deletionTimestamp", "generation"] {
                meta.remove(field);
            }
        }
        Ok(rotated)
    }
}
