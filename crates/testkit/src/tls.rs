//! TLS for the test server: a throw-away CA and a serving certificate for 127.0.0.1,
//! made fresh for every server. Real API servers speak only HTTPS, and kubectl sends
//! bearer tokens only over TLS.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The serving configuration and the CA certificate clients must trust (PEM).
pub(crate) struct Tls {
    pub(crate) config: Arc<rustls::ServerConfig>,
    pub(crate) ca_pem: String,
}

pub(crate) fn generate() -> Result<Tls, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gitseal-testkit CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(|e| err(&e))?)
        .map_err(|e| err(&e))?;
    let leaf_key = KeyPair::generate().map_err(|e| err(&e))?;
    let leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .map_err(|e| err(&e))?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(|e| err(&e))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .map_err(|e| err(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        ca_pem: ca.pem(),
    })
}
