//! Master keys: loading age identities from where sops looks for them, wrapping a new
//! data key for a file's key groups (Shamir shares with several groups), and recovering
//! it from them — through the key services of `gitseal_backends::key` and the pure steps
//! of `gitseal_crypto::sops::file`, with sops' exit codes.

use std::path::PathBuf;
use std::sync::OnceLock;

use gitseal_backends::key::{AgeService, KeyService, KeyServices};
use gitseal_backends::kms::{KmsKey, KmsService};
use gitseal_crypto::DataKey;
use gitseal_crypto::keys::age::AgeIdentities;
use gitseal_crypto::limits;
use gitseal_crypto::sops::file::{self, RecoverError};
use gitseal_crypto::sops::metadata::{self, AgeKey, KeyGroup, Metadata};

use super::{Exit, code};

/// The identities sops would load: `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, the output of
/// `SOPS_AGE_KEY_CMD`, and the default key file — all of them, combined.
pub fn load_identities() -> Result<AgeIdentities, Exit> {
    let mut all = AgeIdentities::parse("").map_err(|e| Exit::new(code::GENERIC, e.to_string()))?;
    let mut add = |text: &str, source: &str| -> Result<(), Exit> {
        let parsed = AgeIdentities::parse(text)
            .map_err(|e| Exit::new(code::GENERIC, format!("{source}: {e}")))?;
        all.extend(parsed);
        Ok(())
    };
    if let Ok(keys) = std::env::var("SOPS_AGE_KEY") {
        // Since sops 3.13 identities may also be separated by spaces.
        let keys = zeroize::Zeroizing::new(
            keys.lines()
                .filter(|line| !line.trim_start().starts_with('#'))
                .flat_map(str::split_whitespace)
                .collect::<Vec<_>>()
                .join("\n"),
        );
        add(&keys, "SOPS_AGE_KEY")?;
    }
    if let Some(path) = std::env::var_os("SOPS_AGE_KEY_FILE") {
        let path = PathBuf::from(path);
        let bytes = crate::file::read(&path, limits::KEY_MATERIAL).map_err(|e| {
            Exit::new(
                code::GENERIC,
                format!("cannot read SOPS_AGE_KEY_FILE {}: {e}", path.display()),
            )
        })?;
        add(key_text(&bytes, "SOPS_AGE_KEY_FILE")?, "SOPS_AGE_KEY_FILE")?;
    }
    if let Ok(command) = std::env::var("SOPS_AGE_KEY_CMD") {
        let words: Vec<&str> = command.split_whitespace().collect();
        if let Some((program, args)) = words.split_first() {
            let mut child = std::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .map_err(|e| {
                    Exit::new(code::GENERIC, format!("cannot run SOPS_AGE_KEY_CMD: {e}"))
                })?;
            // Its output is read as a key file is: bounded.
            let stdout = child.stdout.take().expect("stdout is piped");
            let read = crate::file::read_from(stdout, limits::KEY_MATERIAL, 0);
            if read.is_err() {
                let _ = child.kill();
            }
            let status = child.wait().map_err(|e| {
                Exit::new(code::GENERIC, format!("cannot run SOPS_AGE_KEY_CMD: {e}"))
            })?;
            let bytes = read.map_err(|e| {
                Exit::new(
                    code::GENERIC,
                    format!("cannot read the output of SOPS_AGE_KEY_CMD: {e}"),
                )
            })?;
            if !status.success() {
                return Err(Exit::new(
                    code::GENERIC,
                    format!("SOPS_AGE_KEY_CMD failed with {status}"),
                ));
            }
            let text = zeroize::Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
            add(&text, "SOPS_AGE_KEY_CMD")?;
        }
    }
    if let Some(path) = default_key_file() {
        match crate::file::read(&path, limits::KEY_MATERIAL) {
            Ok(bytes) => {
                let source = path.display().to_string();
                add(key_text(&bytes, &source)?, &source)?;
            }
            // A key file that is not there is no error; one that cannot be read is.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) => {}
            Err(e) => {
                return Err(Exit::new(
                    code::GENERIC,
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        }
    }
    Ok(all)
}

/// The text of a key file read as bytes (the bytes are wiped by their owner).
fn key_text<'a>(bytes: &'a [u8], source: &str) -> Result<&'a str, Exit> {
    std::str::from_utf8(bytes).map_err(|e| {
        Exit::new(
            code::GENERIC,
            format!(
                "{source}: not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// `$XDG_CONFIG_HOME/sops/age/keys.txt`, else `~/.config/sops/age/keys.txt`.
pub fn default_key_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("sops/age/keys.txt"))
}

/// The keys of one key group to encrypt for.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GroupPlan {
    /// age recipients.
    pub age: Vec<String>,
    /// AWS KMS keys.
    pub kms: Vec<KmsKey>,
}

impl GroupPlan {
    fn is_empty(&self) -> bool {
        self.age.is_empty() && self.kms.is_empty()
    }

    /// Every key's identity, for showing what changes.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.age.clone();
        names.extend(self.kms.iter().map(|k| {
            let mut name = k.arn.clone();
            if !k.role.is_empty() {
                name = format!("{name}+{}", k.role);
            }
            if !k.context.is_empty() {
                let context: Vec<String> =
                    k.context.iter().map(|(a, b)| format!("{a}:{b}")).collect();
                name = format!("{name}|{}", context.join(","));
            }
            if !k.profile.is_empty() {
                name = format!("{name}|{}", k.profile);
            }
            name
        }));
        names
    }
}

/// The keys to encrypt a new file (or re-wrap a data key) for.
#[derive(Clone, Default)]
pub struct KeyPlan {
    /// One entry per key group.
    pub groups: Vec<GroupPlan>,
    /// Shares needed when there are several groups (0: all of them).
    pub threshold: usize,
}

impl KeyPlan {
    /// Wraps `key` for every group: the whole key with one group, a Shamir share each with
    /// several. Keys of other types already in `keep` (e.g. PGP) are kept as they are.
    pub fn wrap(&self, key: &DataKey, keep: &[KeyGroup]) -> Result<(Vec<KeyGroup>, usize), Exit> {
        let groups: Vec<&GroupPlan> = self.groups.iter().filter(|g| !g.is_empty()).collect();
        if groups.is_empty() {
            return Err(Exit::new(
                code::GENERIC,
                "config file not found, or has no creation rules, and no keys provided through command line options".into(),
            ));
        }
        let (parts, threshold) = file::split_key(key, groups.len(), self.threshold)
            .map_err(|e| Exit::new(code::GENERIC, e.to_string()))?;
        let age = AgeService::default();
        let mut out = Vec::new();
        for (i, (plan, part)) in groups.iter().zip(&parts).enumerate() {
            let mut group = KeyGroup::default();
            for recipient in &plan.age {
                let enc = ready(age.wrap(recipient, part.expose()))
                    .map_err(|e| Exit::new(code::GENERIC, e.to_string()))?;
                group.age.push(AgeKey {
                    recipient: recipient.clone(),
                    enc,
                });
            }
            for kms in &plan.kms {
                let enc = block_on(kms_service().wrap(kms, part.expose()))?.map_err(|e| {
                    Exit::new(code::GENERIC, format!("Could not generate data key: {e}"))
                })?;
                group.kms.push(metadata::KmsKey {
                    arn: kms.arn.clone(),
                    role: kms.role.clone(),
                    context: kms.context.clone(),
                    created_at: metadata::now(),
                    enc,
                    aws_profile: kms.profile.clone(),
                });
            }
            if let Some(old) = keep.get(i) {
                group.other = old.other.clone();
            }
            out.push(group);
        }
        Ok((out, threshold))
    }

    /// The plan that re-creates `metadata`'s key groups.
    pub fn of(metadata: &Metadata) -> Self {
        Self {
            groups: metadata
                .key_groups
                .iter()
                .map(|g| GroupPlan {
                    age: g.age.iter().map(|k| k.recipient.clone()).collect(),
                    kms: g.kms.iter().map(KmsKey::from).collect(),
                })
                .collect(),
            threshold: metadata.shamir_threshold,
        }
    }
}

/// The one runtime key-service calls run on (built on first use, only when a KMS key is
/// involved).
fn runtime() -> Result<&'static tokio::runtime::Runtime, Exit> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::new(code::GENERIC, format!("cannot start the I/O runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// The KMS key service of this process: its clients (one per region, profile and role)
/// are built once and reused.
fn kms_service() -> &'static KmsService {
    static KMS: OnceLock<KmsService> = OnceLock::new();
    KMS.get_or_init(KmsService::new)
}

/// Runs a key-service call on the runtime.
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, Exit> {
    Ok(runtime()?.block_on(future))
}

/// The output of a future that never waits (the age service's): no runtime needed.
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("the age key service never waits"),
    }
}

/// Recovers the data key from the metadata with the loaded identities (and AWS KMS).
pub fn data_key(metadata: &Metadata, identities: AgeIdentities) -> Result<DataKey, Exit> {
    let age = AgeService::new(identities);
    let uses_kms = metadata.key_groups.iter().any(|g| !g.kms.is_empty());
    let recovered = if uses_kms {
        let services = KeyServices::new().with_age(&age).with_kms(kms_service());
        block_on(services.recover(metadata))?
    } else {
        // age alone never waits: no runtime to start.
        ready(KeyServices::new().with_age(&age).recover(metadata))
    };
    recovered.map_err(|e| match e {
        RecoverError::NoKey { failures } => {
            let default = default_key_file()
                .map_or("~/.config/sops/age/keys.txt".into(), |p| p.display().to_string());
            Exit::new(
                code::NO_KEY,
                format!(
                    "no master key could decrypt the data key:\n  {}\nhint: give the age identity with SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or {default}",
                    failures.join("\n  "),
                ),
            )
        }
        _ => Exit::new(
            code::NO_KEY,
            "the recovered data key is not 32 bytes".into(),
        ),
    })
}
