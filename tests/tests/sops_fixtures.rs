//! Every sops-written fixture listed in `shared/fixtures/sops/datakeys.tsv`: with its
//! data key, every encrypted value and comment decrypts, the MAC verifies (the no-MAC
//! file fails as it must), and the age-wrapped data keys unwrap with the fixture keys.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use gitseal_crypto::keys::age::{self, AgeIdentities};
use gitseal_crypto::sops::{EncryptedValue, MacHasher, ValueCipher, aad, enters_mac};
use gitseal_crypto::{DataKey, SopsError};
use gitseal_tests::require_shared;
use gitseal_tests::sopsdoc::{self, File, Format, Node, Scalar};

struct Walk<'a> {
    cipher: &'a ValueCipher,
    mac: MacHasher,
    mac_only_encrypted: bool,
    encrypted: usize,
    /// Every mapping path seen, as AAD candidates for comments.
    containers: BTreeSet<Vec<u8>>,
}

impl Walk<'_> {
    fn node(&mut self, node: &Node, path: &mut Vec<String>) -> Result<(), String> {
        match node {
            Node::Map(entries) => {
                self.containers.insert(aad(path.iter()));
                for (key, value) in entries {
                    path.push(key.clone());
                    self.node(value, path)?;
                    path.pop();
                }
            }
            Node::List(items) => {
                self.containers.insert(aad(path.iter()));
                for item in items {
                    self.node(item, path)?;
                }
            }
            Node::Scalar(Scalar::Str(text)) if EncryptedValue::is_encrypted(text) => {
                let plain = self
                    .cipher
                    .decrypt(text, &aad(path.iter()))
                    .map_err(|e| format!("value at {path:?}: {e}"))?;
                self.encrypted += 1;
                if enters_mac(plain.value_type()) {
                    self.mac.update(plain.bytes());
                }
            }
            Node::Scalar(clear) => {
                if let (false, Some(text)) = (self.mac_only_encrypted, clear.mac_text()) {
                    self.mac.update(text.as_bytes());
                }
            }
        }
        Ok(())
    }
}

fn text(node: Option<&Node>) -> Option<String> {
    node.and_then(Node::as_text)
}

/// Decrypts every value and comment of `file` and checks its MAC.
fn check_values_and_mac(file: &File, key: &DataKey) -> Result<usize, String> {
    let cipher = ValueCipher::new(key);
    let meta = file.metadata().ok_or("no sops metadata")?;
    let mac_only_encrypted = matches!(
        meta.get("mac_only_encrypted"),
        Some(Node::Scalar(Scalar::Bool(true)))
    ) || text(meta.get("mac_only_encrypted")).as_deref() == Some("true");
    let mut walk = Walk {
        cipher: &cipher,
        mac: MacHasher::new(mac_only_encrypted),
        mac_only_encrypted,
        encrypted: 0,
        containers: BTreeSet::new(),
    };
    for document in &file.documents {
        let Node::Map(entries) = document else {
            return Err("document is not a mapping".into());
        };
        for (k, v) in entries.iter().filter(|(k, _)| k != "sops") {
            walk.node(v, &mut vec![k.clone()])?;
        }
        walk.containers.insert(aad(Vec::<String>::new()));
    }
    // Comments carry the AAD of the mapping or list that contains them.
    for comment in file
        .comments
        .iter()
        .map(|c| c.trim())
        .filter(|c| EncryptedValue::is_encrypted(c))
    {
        let opened = walk
            .containers
            .iter()
            .any(|candidate| cipher.decrypt(comment, candidate).is_ok());
        if !opened {
            return Err(format!(
                "encrypted comment {comment:.40}… opens under no container path"
            ));
        }
        walk.encrypted += 1;
    }
    let stored = text(meta.get("mac")).unwrap_or_default();
    let lastmodified = text(meta.get("lastmodified")).ok_or("no lastmodified")?;
    cipher
        .verify_mac(&stored, &lastmodified, &walk.mac.finish())
        .map_err(|e| match e {
            SopsError::MacMissing => "MacMissing".to_owned(),
            other => format!("MAC: {other}"),
        })?;
    Ok(walk.encrypted)
}

/// Every `{recipient, enc}` age entry of the metadata, also inside key groups.
fn age_entries(meta: &Node) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut collect = |node: &Node| {
        if let Some(Node::List(items)) = node.get("age") {
            for item in items {
                if let (Some(r), Some(e)) = (text(item.get("recipient")), text(item.get("enc"))) {
                    out.push((r, e));
                }
            }
        }
    };
    collect(meta);
    if let Some(Node::List(groups)) = meta.get("key_groups") {
        groups.iter().for_each(&mut collect);
    }
    out
}

/// All X25519 identities of the fixtures (post-quantum ones are not X25519 and skipped).
fn fixture_identities(sops_dir: &Path) -> AgeIdentities {
    let mut identities = AgeIdentities::default();
    let files = [
        "generated-sops-3.11.0/keys/main.agekey",
        "generated-sops-3.11.0/keys/second.agekey",
        "generated-sops-3.11.0/keys/g1.agekey",
        "generated-sops-3.11.0/keys/g2.agekey",
        "generated-sops-3.11.0/keys/g3.agekey",
        "fluxcd-kustomize-controller/keys/age.txt",
        "fluxcd-kustomize-controller/keys/age-global.txt",
        "rops/keys/age.txt",
    ];
    for file in files {
        let text = std::fs::read_to_string(sops_dir.join(file)).unwrap();
        identities.extend(AgeIdentities::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}")));
    }
    identities
}

#[test]
fn every_listed_fixture_decrypts_and_its_mac_verifies() {
    let shared = require_shared!();
    let sops_dir = shared.join("fixtures/sops");
    let table = std::fs::read_to_string(sops_dir.join("datakeys.tsv")).unwrap();
    let identities = fixture_identities(&sops_dir);
    let our_recipients: BTreeSet<String> = identities.recipients().into_iter().collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut values = 0;
    let mut unwrapped = BTreeMap::new();
    for line in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [file, format, key_hex, verdict] = fields[..] else {
            panic!("bad datakeys.tsv line {line:?}");
        };
        let format = Format::from_name(format).unwrap_or_else(|| panic!("format {format}"));
        let key = DataKey::from_slice(&hex::decode(key_hex).unwrap()).unwrap();
        let content = std::fs::read_to_string(sops_dir.join(file)).unwrap();
        let parsed = match sopsdoc::parse(format, &content) {
            Ok(parsed) => parsed,
            Err(e) => {
                failures.push(format!("{file}: parse: {e}"));
                continue;
            }
        };
        let result = check_values_and_mac(&parsed, &key);
        match (verdict, result) {
            ("True", Ok(count)) => values += count,
            // The deliberate no-MAC fixture must be refused for exactly that reason.
            ("None", Err(e)) if e == "MacMissing" => {}
            (verdict, result) => {
                failures.push(format!("{file}: expected {verdict}, got {result:?}"))
            }
        }
        checked += 1;

        let meta = parsed.metadata().unwrap();
        let shamir = meta.get("shamir_threshold").is_some();
        for (recipient, enc) in age_entries(meta) {
            if !our_recipients.contains(&recipient) {
                continue;
            }
            match age::unwrap(&enc, &identities) {
                Ok(unwrapped_key) if shamir => {
                    // A Shamir share: 32 bytes of evaluations and the x coordinate.
                    assert_eq!(unwrapped_key.len(), 33, "{file}: share length");
                }
                Ok(unwrapped_key) => {
                    assert_eq!(unwrapped_key.expose(), key.expose(), "{file}: {recipient}");
                }
                Err(e) => failures.push(format!("{file}: age unwrap for {recipient}: {e}")),
            }
            *unwrapped.entry(file.to_owned()).or_insert(0) += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        checked,
        table
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count()
    );
    assert!(
        values >= 150,
        "only {values} encrypted values and comments were checked"
    );
    // The age-keyed fixtures of sops 3.11, Flux and rops all unwrap.
    assert!(
        unwrapped.len() >= 20,
        "only {} files had an age key we hold: {unwrapped:?}",
        unwrapped.len()
    );
}

#[test]
fn a_tampered_value_or_mac_is_refused() {
    let shared = require_shared!();
    let path = shared.join("fixtures/sops/generated-sops-3.11.0/enc/basic.enc.yaml");
    let content = std::fs::read_to_string(path).unwrap();
    let key = DataKey::from_slice(
        &hex::decode("79260854feae346419bfbcb6a7adb81ca69ea4e4ffae1b720fd4dfa3dea3e79f").unwrap(),
    )
    .unwrap();
    let original = sopsdoc::parse(Format::Yaml, &content).unwrap();
    assert!(check_values_and_mac(&original, &key).is_ok());

    // A clear value changed by hand: every value still decrypts, the MAC does not match.
    let edited = content.replace("visible-in-clear", "visible-in-clear!");
    let edited = sopsdoc::parse(Format::Yaml, &edited).unwrap();
    assert_eq!(
        check_values_and_mac(&edited, &key),
        Err("MAC: MAC mismatch: the file's values were changed outside sops or gitseal".to_owned())
    );

    // An encrypted value moved to another key fails authentication.
    let moved = content.replacen("string: ENC", "strung: ENC", 1);
    let moved = sopsdoc::parse(Format::Yaml, &moved).unwrap();
    assert!(
        check_values_and_mac(&moved, &key)
            .unwrap_err()
            .contains("could not decrypt")
    );

    // The wrong data key fails on the first value.
    let wrong = DataKey::from_slice(&[0u8; 32]).unwrap();
    assert!(
        check_values_and_mac(&original, &wrong)
            .unwrap_err()
            .contains("could not decrypt")
    );
}
