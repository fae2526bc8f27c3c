//! `gitseal demo`: a self-contained tour of sealing. It generates a controller key pair,
//! seals a demo Secret to it as a `bitnami.com/v1alpha1` SealedSecret, then unseals every
//! item again with the private key and checks the round trip.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, bail};
use gitseal_crypto::sealed::{Keyring, PrivateKey, Scope, seal};

/// Examples shown by `gitseal demo --help`.
pub const EXAMPLES: &str = "Examples:
  gitseal demo
  gitseal demo --name db-credentials --namespace prod --scope namespace-wide
  gitseal demo --key-size 2048 --item user=admin --item password=hunter2";

/// Options of `gitseal demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name of the demo Secret.
    #[arg(long, default_value = "demo-secret")]
    pub name: String,
    /// Namespace of the demo Secret.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Scope the values are sealed for: strict, namespace-wide or cluster-wide.
    #[arg(long, default_value = "strict")]
    pub scope: Scope,
    /// RSA key size of the generated controller key (2048, 3072, 4096 or 8192).
    #[arg(long, default_value_t = 4096)]
    pub key_size: usize,
    /// A data item KEY=VALUE of the demo Secret (repeatable).
    #[arg(long = "item", value_name = "KEY=VALUE", value_parser = parse_item)]
    pub items: Vec<(String, String)>,
}

fn parse_item(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// Runs the demo.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let items = if args.items.is_empty() {
        vec![
            ("username".to_owned(), "admin".to_owned()),
            (
                "password".to_owned(),
                "correct horse battery staple".to_owned(),
            ),
        ]
    } else {
        args.items.clone()
    };

    let started = Instant::now();
    let key = PrivateKey::generate(args.key_size)
        .with_context(|| format!("generating a {}-bit RSA key", args.key_size))?;
    writeln!(
        out,
        "# generated a {}-bit controller key in {:.0?}",
        key.bits(),
        started.elapsed()
    )?;

    let label = args.scope.label(&args.namespace, &args.name);
    let public = key.public_key();
    let started = Instant::now();
    let mut sealed = Vec::with_capacity(items.len());
    for (item, value) in &items {
        let value = seal(&public, &label, value.as_bytes())
            .with_context(|| format!("sealing item {item:?}"))?;
        sealed.push((item.as_str(), value));
    }
    writeln!(
        out,
        "# sealed {} item(s) ({} scope) in {:.1?}",
        sealed.len(),
        args.scope,
        started.elapsed()
    )?;
    write_sealed_secret(out, args, &sealed)?;

    let keyring = Keyring::new(vec![key]);
    let started = Instant::now();
    for ((item, value), (_, original)) in sealed.iter().zip(&items) {
        let plaintext = keyring
            .unseal(&label, value)
            .with_context(|| format!("unsealing item {item:?}"))?;
        if plaintext.expose() != original.as_bytes() {
            bail!("item {item:?} did not survive the round trip");
        }
    }
    writeln!(
        out,
        "# unsealed and verified {} item(s) in {:.1?}",
        sealed.len(),
        started.elapsed()
    )?;
    Ok(())
}

/// Writes the SealedSecret manifest as kubeseal's YAML output lays it out.
fn write_sealed_secret(
    out: &mut dyn Write,
    args: &Args,
    sealed: &[(&str, String)],
) -> std::io::Result<()> {
    let annotation = args
        .scope
        .annotation()
        .map(|a| format!("    {a}: \"true\"\n"));
    let annotations = annotation
        .map(|a| format!("  annotations:\n{a}"))
        .unwrap_or_default();
    writeln!(
        out,
        "---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:"
    )?;
    write!(out, "{annotations}")?;
    writeln!(
        out,
        "  name: {}\n  namespace: {}\nspec:\n  encryptedData:",
        args.name, args.namespace
    )?;
    let mut sorted: Vec<_> = sealed.iter().collect();
    sorted.sort_by_key(|(item, _)| *item);
    for (item, value) in sorted {
        writeln!(out, "    {item}: {value}")?;
    }
    writeln!(out, "  template:\n    metadata:")?;
    write!(
        out,
        "{}",
        annotations
            .replace("\n  ", "\n      ")
            .replacen("  annotations", "      annotations", 1)
    )?;
    writeln!(
        out,
        "      name: {}\n      namespace: {}",
        args.name, args.namespace
    )?;
    Ok(())
}
