//! The product's SOPS stack (stores, metadata, tree walk, MAC) on every fixture of
//! `shared/fixtures/sops/datakeys.tsv`: each file parses, decrypts with its data key, its
//! MAC verifies (the empty-MAC file is reported as such), and the plaintext written back
//! is byte-for-byte what real sops printed (`*.decrypted`), or — for rops' references,
//! whose plaintexts rops re-formatted — the same document.

use std::path::{Path, PathBuf};

use gitseal_crypto::sops::store::{Format, Layout};
use gitseal_crypto::sops::walk;
use gitseal_crypto::sops::{ValueCipher, lastmodified_aad};
use gitseal_crypto::{DataKey, SopsError};
use gitseal_tests::require_shared;

/// Where the fixtures keep the plaintext sops printed for `file`.
fn expected_for(root: &Path, file: &str) -> Option<(PathBuf, bool)> {
    let path = root.join(file);
    let dir = path.parent()?;
    let name = path.file_name()?.to_str()?;
    let folder = file.split('/').next()?;
    let sub = file.split('/').nth(1)?;
    let exact = [
        dir.join("expected").join(format!("{name}.decrypted")),
        dir.join("expected")
            .join(format!("{name}.decrypted-ignore-mac")),
        dir.join("../expected")
            .join(format!("{}.decrypted", name.replace(".enc", ""))),
        root.join(folder)
            .join("expected")
            .join(format!("{sub}_{name}.decrypted")),
    ];
    if let Some(found) = exact.into_iter().find(|p| p.is_file()) {
        return Some((found, true));
    }
    let stem = name.strip_suffix(".yaml")?;
    let semantic = dir.join(format!("{stem}_plaintext.yaml"));
    semantic.is_file().then_some((semantic, false))
}

fn format_of(name: &str) -> Format {
    match name {
        "binary" => Format::Binary,
        other => Format::from_name(other),
    }
}

#[test]
fn every_fixture_decrypts_verifies_and_prints_as_sops_does() {
    let shared = require_shared!();
    let root = shared.join("fixtures/sops");
    let table = std::fs::read_to_string(root.join("datakeys.tsv")).unwrap();
    let (mut checked, mut byte_exact, mut failures) = (0, 0, Vec::new());
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [file, format, key_hex, mac_ok] = fields[..] else {
            panic!("malformed row {line:?}");
        };
        let format = format_of(format);
        let mut bytes = std::fs::read(root.join(file)).unwrap();
        if file.starts_with("rops/") {
            // rops' build script dropped `version`, which sops (and gitseal) require.
            bytes.extend_from_slice(b"  version: 3.8.1\n");
        }
        let (mut tree, metadata) = match format.parse_encrypted(&bytes) {
            Ok(parsed) => parsed,
            Err(e) => {
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        let key = DataKey::from_slice(&hex::decode(key_hex).unwrap()).unwrap();
        let cipher = ValueCipher::new(&key);
        let mac = match walk::decrypt(
            &mut tree,
            &cipher,
            &metadata.selection,
            metadata.mac_only_encrypted,
            None,
        ) {
            Ok(mac) => mac,
            Err(e) => {
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        let verified = if metadata.mac.is_empty() {
            Err(SopsError::MacMissing)
        } else {
            lastmodified_aad(&metadata.lastmodified).unwrap();
            cipher.verify_mac(&metadata.mac, &metadata.lastmodified, &mac)
        };
        match (mac_ok, verified) {
            ("True", Ok(())) | ("False" | "None", Err(SopsError::MacMissing)) => {}
            (expected, got) => failures.push(format!("{file}: MAC {got:?}, table says {expected}")),
        }
        checked += 1;
        let Some((expected, exact)) = expected_for(&root, file) else {
            continue;
        };
        let layout = Layout::default();
        // What `sops decrypt FILE` prints: the format of the file's name.
        let output = Format::from_path(Path::new(file));
        let printed = output.emit_plain(&tree, &layout).unwrap();
        let wanted = std::fs::read(&expected).unwrap();
        if exact {
            if printed == wanted {
                byte_exact += 1;
            } else {
                failures.push(format!(
                    "{file}: differs from {}:\n{}\n---\n{}",
                    expected.display(),
                    String::from_utf8_lossy(&printed),
                    String::from_utf8_lossy(&wanted)
                ));
            }
        } else {
            let reference = Format::Yaml.parse_plain(&wanted).unwrap();
            let ours = Format::Yaml.emit_plain(&tree, &layout).unwrap();
            let theirs = Format::Yaml.emit_plain(&reference, &layout).unwrap();
            if ours != theirs {
                failures.push(format!(
                    "{file}: not the document of {}",
                    expected.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 47, "only {checked} fixtures checked");
    assert!(byte_exact >= 30, "only {byte_exact} byte-exact comparisons");
    eprintln!(
        "{checked} fixtures decrypted and verified, {byte_exact} printed byte-for-byte as sops"
    );
}
