//! Cross-check of the Sealed Secrets envelope with two independent implementations from
//! PyPI (`kubesealpy` and `aes-gcm-rsa-oaep`, driven by `tests/interop/kubeseal_oracle.py`):
//! they unseal what we seal, and we unseal what they seal, for all three scopes.

use std::path::Path;
use std::process::Command;

use gitseal_crypto::sealed::{Keyring, PrivateKey, Scope, seal};
use gitseal_tests::{repo_dir, run_with_stdin, tool_from_env};

const IMPLEMENTATIONS: [&str; 2] = ["kubesealpy", "aes-gcm-rsa-oaep"];

fn oracle(python: &Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let script = repo_dir().join("tests/interop/kubeseal_oracle.py");
    run_with_stdin(Command::new(python).arg(script).args(args), stdin)
}

#[test]
fn python_implementations_and_gitseal_unseal_each_others_values() {
    let Some(python) = tool_from_env(
        "GITSEAL_PYTHON",
        "a Python with kubesealpy and aes-gcm-rsa-oaep",
    ) else {
        return;
    };
    let tmp = tempfile::Builder::new()
        .prefix("gitseal-kubeseal-py-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let key = PrivateKey::generate(2048).unwrap();
    let key_file = dir.join("key.pem");
    std::fs::write(&key_file, key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let public = key.public_key();
    let public_file = dir.join("public.pem");
    std::fs::write(&public_file, pem_public(public.spki_der())).unwrap();
    let keyring = Keyring::new(vec![key]);
    let (key_arg, public_arg) = (key_file.to_str().unwrap(), public_file.to_str().unwrap());

    let plaintexts: [&[u8]; 3] = [b"", "pässwörd ✓".as_bytes(), &[0u8, 1, 2, 255, 254]];
    for implementation in IMPLEMENTATIONS {
        for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            let label = scope.label("team-a", "db");
            let label_arg = format!("--label={}", String::from_utf8(label.clone()).unwrap());
            for plaintext in plaintexts {
                // gitseal seals, the Python implementation unseals.
                let ours = seal(&public, &label, plaintext).unwrap();
                let args = [
                    "--impl",
                    implementation,
                    "unseal",
                    "--key",
                    key_arg,
                    &label_arg,
                ];
                assert_eq!(
                    oracle(&python, &args, ours.as_bytes()),
                    plaintext,
                    "{implementation} {scope}"
                );

                // The Python implementation seals, gitseal unseals.
                let args = [
                    "--impl",
                    implementation,
                    "seal",
                    "--cert",
                    public_arg,
                    &label_arg,
                ];
                let theirs = String::from_utf8(oracle(&python, &args, plaintext)).unwrap();
                assert_eq!(keyring.unseal(&label, &theirs).unwrap().expose(), plaintext);
                if scope != Scope::ClusterWide {
                    assert!(keyring.unseal(b"team-b", &theirs).is_err());
                }
            }
        }
    }
}

fn pem_public(spki: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}
