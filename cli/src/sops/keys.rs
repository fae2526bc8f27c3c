//! Master keys: loading age identities from where sops looks for them, wrapping a new
//! data key for a file's key groups (Shamir shares with several groups), and recovering
//! it from them.

use std::path::PathBuf;

use gitseal_backends::kms::KmsKey;
use gitseal_crypto::keys::age::{self as agekeys, AgeIdentities};
use gitseal_crypto::limits;
use gitseal_crypto::sops::metadata::{self, AgeKey, KeyGroup, Metadata};
use gitseal_crypto::sops::shamir;
use gitseal_crypto::{DataKey, SecretBytes};

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
        let threshold = if groups.len() > 1 {
            if self.threshold == 0 {
                groups.len()
            } else {
                self.threshold
            }
        } else {
            0
        };
        let parts: Vec<SecretBytes> = if groups.len() == 1 {
            vec![SecretBytes::from_slice(key.expose())]
        } else {
            shamir::split(key.expose(), groups.len(), threshold)
                .map_err(|e| Exit::new(code::GENERIC, e.to_string()))?
        };
        let mut out = Vec::new();
        for (i, (plan, part)) in groups.iter().zip(&parts).enumerate() {
            let mut group = KeyGroup::default();
            for recipient in &plan.age {
                let enc = agekeys::wrap(part.expose(), recipient)
                    .map_err(|e| Exit::new(code::GENERIC, e.to_string()))?;
                group.age.push(AgeKey {
                    recipient: recipient.clone(),
                    enc,
                });
            }
            for kms in &plan.kms {
                let enc =
                    block_on(gitseal_backends::kms::encrypt(kms, part.expose()))?.map_err(|e| {
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
                    kms: g.kms.iter().map(kms_key).collect(),
                })
                .collect(),
            threshold: metadata.shamir_threshold,
        }
    }
}

fn kms_key(entry: &metadata::KmsKey) -> KmsKey {
    KmsKey {
        arn: entry.arn.clone(),
        role: entry.role.clone(),
        context: entry.context.clone(),
        profile: entry.aws_profile.clone(),
    }
}

/// Runs a key-service call on a one-off runtime.
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, Exit> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::new(code::GENERIC, format!("cannot start the I/O runtime: {e}")))?;
    Ok(runtime.block_on(future))
}

/// Recovers the data key from the metadata with the loaded identities.
pub fn data_key(metadata: &Metadata, identities: &AgeIdentities) -> Result<DataKey, Exit> {
    let mut parts = Vec::new();
    let mut report = Vec::new();
    for (i, group) in metadata.key_groups.iter().enumerate() {
        match group_part(group, identities) {
            Ok(part) => parts.push(part),
            Err(reason) => report.push(format!("group {}: {reason}", i + 1)),
        }
        if metadata.key_groups.len() == 1 && !parts.is_empty() {
            break;
        }
    }
    let key = if metadata.key_groups.len() <= 1 {
        parts.pop()
    } else {
        let threshold = if metadata.shamir_threshold == 0 {
            metadata.key_groups.len()
        } else {
            metadata.shamir_threshold
        };
        if parts.len() >= threshold {
            shamir::combine(&parts).ok()
        } else {
            report.push(format!(
                "recovered {} of the {threshold} key-group shares needed",
                parts.len()
            ));
            None
        }
    };
    let key = key.ok_or_else(|| {
        let default = default_key_file()
            .map_or("~/.config/sops/age/keys.txt".into(), |p| p.display().to_string());
        Exit::new(
            code::NO_KEY,
            format!(
                "no master key could decrypt the data key:\n  {}\nhint: give the age identity with SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or {default}",
                report.join("\n  "),
            ),
        )
    })?;
    DataKey::from_slice(key.expose()).map_err(|_| {
        Exit::new(
            code::NO_KEY,
            "the recovered data key is not 32 bytes".into(),
        )
    })
}

fn group_part(group: &KeyGroup, identities: &AgeIdentities) -> Result<SecretBytes, String> {
    let mut tried = Vec::new();
    for key in &group.age {
        match agekeys::unwrap(&key.enc, identities) {
            Ok(part) => return Ok(part),
            Err(_) => tried.push(format!("age {}: no matching identity", key.recipient)),
        }
    }
    for entry in &group.kms {
        let key = kms_key(entry);
        match block_on(gitseal_backends::kms::decrypt(&key, &entry.enc)) {
            Ok(Ok(part)) => return Ok(part),
            Ok(Err(e)) => tried.push(format!("kms: {e}")),
            Err(e) => tried.push(format!("kms {}: {e}", entry.arn)),
        }
    }
    for key_type in group.other_types() {
        tried.push(format!("{key_type}: not supported by gitseal"));
    }
    if tried.is_empty() {
        return Err("no keys".into());
    }
    Err(tried.join("; "))
}
