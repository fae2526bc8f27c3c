//! `gitseal cert`: show the controller certificate a repository seals to.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use gitseal_crypto::sealed::Certificate;

use crate::kubeseal::read_cert_source;

/// Examples shown by `gitseal cert --help`.
pub const EXAMPLES: &str = "Examples:
  gitseal cert --cert cert.pem --info
  gitseal cert --cert https-downloaded.pem > cert.pem";

/// Options of `gitseal cert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The certificate: a file or `file://` URL.
    #[arg(long, env = "SEALED_SECRETS_CERT")]
    pub cert: String,
    /// Describe the certificate (fingerprint, validity, key size) instead of printing it.
    #[arg(long)]
    pub info: bool,
}

/// Runs `gitseal cert`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let pem = read_cert_source(&args.cert)?;
    if !args.info {
        return Ok(out.write_all(&pem)?);
    }
    let cert = Certificate::from_pem(&pem).context("failed to read the certificate")?;
    let key = cert.public_key().context("unusable certificate")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let days = (cert.not_after_unix() - now) / 86_400;
    let status = if now > cert.not_after_unix() {
        format!(
            "EXPIRED {} days ago: fetch the controller's current certificate",
            -days
        )
    } else if now < cert.not_before_unix() {
        "not yet valid".to_owned()
    } else {
        format!("valid, {days} days left")
    };
    writeln!(out, "certificate:        {}", args.cert)?;
    writeln!(out, "SHA-256 fingerprint: {}", cert.sha256_fingerprint())?;
    writeln!(out, "public key:         RSA {} bits", key.bits())?;
    writeln!(out, "valid from:         {}", cert.not_before_rfc3339())?;
    writeln!(
        out,
        "valid until:        {} ({status})",
        cert.not_after_rfc3339()
    )?;
    Ok(())
}
