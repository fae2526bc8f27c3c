//! Real kubeseal output and the synthesized vectors of `shared/fixtures/sealed-secrets`:
//! every ciphertext unseals to its stated plaintext with the stated key and label, and a
//! wrong label or a wrong key fails.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gitseal_crypto::sealed::{self, Certificate, Keyring, PrivateKey, PublicKey, Scope};
use gitseal_crypto::{KeyError, UnsealError};
use gitseal_tests::require_shared;
use gitseal_tests::sopsdoc::{self, Format, Node};

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn vectors(dir: &Path, name: &str) -> Vec<serde_json::Value> {
    let json: serde_json::Value = serde_json::from_slice(&read(dir, name)).unwrap();
    json["vectors"].as_array().unwrap().clone()
}

fn expected_plaintext(vector: &serde_json::Value) -> Vec<u8> {
    match vector.get("plaintext_b64").and_then(|v| v.as_str()) {
        Some(b64) => STANDARD.decode(b64).unwrap(),
        None => vector["expected_plaintext"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec(),
    }
}

#[test]
fn real_and_synthesized_vectors_unseal_with_the_stated_key_and_label() {
    let shared = require_shared!();
    let dir = shared.join("fixtures/sealed-secrets");
    let key = PrivateKey::from_pem(&read(&dir, "kseal-sealing-key.pem")).unwrap();
    assert_eq!(key.bits(), 4096);
    let keyring = Keyring::new(vec![key]);
    let stranger = Keyring::new(vec![PrivateKey::generate(2048).unwrap()]);
    let mut count = 0;
    for file in ["kseal-vectors.json", "synth-vectors.json"] {
        for vector in vectors(&dir, file) {
            let label = vector["oaep_label"].as_str().unwrap().as_bytes();
            let ciphertext = vector["ciphertext_b64"].as_str().unwrap();
            let plaintext = keyring
                .unseal(label, ciphertext)
                .unwrap_or_else(|e| panic!("{vector}: {e}"));
            assert_eq!(plaintext.expose(), expected_plaintext(&vector), "{vector}");
            assert_eq!(
                sealed::decode(ciphertext).unwrap().len() as u64,
                vector["ciphertext_len"].as_u64().unwrap()
            );

            let mut wrong_label = label.to_vec();
            wrong_label.extend_from_slice(b"-other");
            assert_eq!(
                keyring.unseal(&wrong_label, ciphertext).err(),
                Some(UnsealError::NoMatchingKey)
            );
            assert_eq!(
                stranger.unseal(label, ciphertext).err(),
                Some(UnsealError::NoMatchingKey)
            );
            count += 1;
        }
    }
    assert_eq!(count, 12);
}

#[test]
fn the_documented_negative_label_check_fails() {
    let shared = require_shared!();
    let dir = shared.join("fixtures/sealed-secrets");
    let keyring = Keyring::new(vec![
        PrivateKey::from_pem(&read(&dir, "kseal-sealing-key.pem")).unwrap(),
    ]);
    let empty = &vectors(&dir, "synth-vectors.json")[0];
    assert_eq!(empty["id"], "synth-strict-empty");
    let error = keyring
        .unseal(
            b"my-namespace/other-name",
            empty["ciphertext_b64"].as_str().unwrap(),
        )
        .err()
        .expect("must not unseal under another name");
    assert_eq!(error.to_string(), "no key could decrypt secret");
}

#[test]
fn the_key_in_the_controller_secret_is_the_pem_key() {
    let shared = require_shared!();
    let dir = shared.join("fixtures/sealed-secrets");
    let secret = String::from_utf8(read(&dir, "kseal-sealing-key-secret.yaml")).unwrap();
    let secret = sopsdoc::parse(Format::Yaml, &secret).unwrap();
    let data = secret.documents[0].get("data").unwrap();
    let field = |name| {
        STANDARD
            .decode(data.get(name).and_then(Node::as_text).unwrap())
            .unwrap()
    };
    assert_eq!(field("tls.key"), read(&dir, "kseal-sealing-key.pem"));
    assert_eq!(field("tls.crt"), read(&dir, "kseal-sealing-cert.pem"));
}

#[test]
fn the_controller_certificate_parses_leniently_and_matches_its_key() {
    let shared = require_shared!();
    let dir = shared.join("fixtures/sealed-secrets");
    let cert = Certificate::from_pem(&read(&dir, "kseal-sealing-cert.pem")).unwrap();
    assert_eq!(
        cert.sha256_fingerprint(),
        "BB:09:56:AE:2D:05:71:A6:FD:C7:F3:9F:85:F7:43:5E:11:25:8E:F0:47:F0:61:B5:0A:7C:44:B0:A1:3B:2E:2E"
    );
    // NotBefore 2021-01-25 12:25:35Z, NotAfter 87600h later.
    assert_eq!(cert.not_before_unix(), 1_611_577_535);
    assert_eq!(cert.not_after_unix(), 1_611_577_535 + 87_600 * 3600);

    let key = PrivateKey::from_pem(&read(&dir, "kseal-sealing-key.pem")).unwrap();
    let sealing = cert
        .sealing_key_at(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
        .unwrap();
    assert_eq!(sealing.spki_der(), key.public_key().spki_der());
    let label = Scope::NamespaceWide.label("team-a", "x");
    let sealed = sealed::seal(&sealing, &label, b"to the cluster").unwrap();
    assert!(sealed.starts_with("Ag"));
    assert_eq!(
        Keyring::new(vec![key])
            .unseal(&label, &sealed)
            .unwrap()
            .expose(),
        b"to the cluster"
    );
}

/// Big-endian bytes of a decimal number.
fn decimal_to_bytes(decimal: &str) -> Vec<u8> {
    let mut bytes = vec![0u8];
    for digit in decimal.trim().bytes() {
        let mut carry = u32::from(digit - b'0');
        for byte in bytes.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    bytes
}

#[test]
fn the_upstream_test_certificate_has_the_upstream_modulus_and_expires() {
    use x509_parser::prelude::FromDer;
    use x509_parser::x509::SubjectPublicKeyInfo;
    let shared = require_shared!();
    let dir = shared.join("fixtures/sealed-secrets");
    let cert = Certificate::from_pem(&read(&dir, "upstream-kubeseal-testcert.pem")).unwrap();
    let key = cert.public_key().unwrap();
    assert_eq!(key.bits(), 4096);
    let (_, spki) = SubjectPublicKeyInfo::from_der(key.spki_der()).unwrap();
    let x509_parser::public_key::PublicKey::RSA(rsa) = spki.parsed().unwrap() else {
        panic!("not RSA");
    };
    let modulus = String::from_utf8(read(&dir, "upstream-kubeseal-testcert.modulus.txt")).unwrap();
    let modulus = decimal_to_bytes(modulus.lines().next().unwrap());
    let trimmed = |b: &[u8]| {
        b.iter()
            .skip_while(|&&x| x == 0)
            .copied()
            .collect::<Vec<_>>()
    };
    assert_eq!(trimmed(rsa.modulus), trimmed(&modulus));
    assert_eq!(trimmed(rsa.exponent), [1, 0, 1]);

    // Valid until 2027-06-18 04:32:45Z: sealing is refused after that.
    let before = UNIX_EPOCH + Duration::from_secs(1_813_293_164);
    let after = UNIX_EPOCH + Duration::from_secs(1_813_293_166);
    assert!(cert.sealing_key_at(before).is_ok());
    match cert.sealing_key_at(after) {
        Err(KeyError::CertificateExpired { not_after }) => {
            assert_eq!(not_after, "2027-06-18T04:32:45Z")
        }
        other => panic!("expected CertificateExpired, got {other:?}"),
    }
    // Parsing the public key alone is not sealing: it stays possible.
    assert!(PublicKey::from_pem(&read(&dir, "upstream-kubeseal-testcert.pem")).is_ok());
}

#[test]
fn sealed_secret_manifests_unseal_with_the_label_their_annotations_select() {
    let shared = require_shared!();
    let dir = shared.join("fixtures/sealed-secrets");
    let keyring = Keyring::new(vec![
        PrivateKey::from_pem(&read(&dir, "kseal-sealing-key.pem")).unwrap(),
    ]);
    let cases = [
        (
            "synth-sealedsecret-strict-template.yaml",
            "username",
            &b"admin"[..],
        ),
        (
            "synth-sealedsecret-strict-template.yaml",
            "password",
            &b"p@ss\"word"[..],
        ),
        (
            "synth-sealedsecret-namespace-wide.yaml",
            "token",
            &b"shared-token"[..],
        ),
        (
            "synth-sealedsecret-cluster-wide.yaml",
            "token",
            &b"cluster-token"[..],
        ),
    ];
    for (file, item, expected) in cases {
        let text = String::from_utf8(read(&dir, file)).unwrap();
        let doc = &sopsdoc::parse(Format::Yaml, &text).unwrap().documents[0];
        let meta = doc.get("metadata").unwrap();
        let text_of = |node: &Node, key| node.get(key).and_then(Node::as_text).unwrap_or_default();
        let annotations: Vec<(String, String)> = match meta.get("annotations") {
            Some(Node::Map(entries)) => entries
                .iter()
                .map(|(k, v)| (k.clone(), v.as_text().unwrap_or_default()))
                .collect(),
            _ => Vec::new(),
        };
        let scope =
            Scope::from_annotations(annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let (namespace, name) = (text_of(meta, "namespace"), text_of(meta, "name"));
        let value = text_of(doc.get("spec").unwrap().get("encryptedData").unwrap(), item);
        let plaintext = keyring
            .unseal(&scope.label(&namespace, &name), &value)
            .unwrap();
        assert_eq!(plaintext.expose(), expected, "{file} {item}");
        if scope != Scope::Strict {
            // Wider scopes unseal under another name (and, cluster-wide, another namespace).
            let other_ns = if scope == Scope::ClusterWide {
                "elsewhere"
            } else {
                namespace.as_str()
            };
            assert!(
                keyring
                    .unseal(&scope.label(other_ns, "renamed"), &value)
                    .is_ok()
            );
        }
    }
}

#[test]
fn truncated_and_malformed_envelopes_are_typed_errors() {
    let shared = require_shared!();
    let dir = shared.join("fixtures/sealed-secrets");
    let keyring = Keyring::new(vec![
        PrivateKey::from_pem(&read(&dir, "kseal-sealing-key.pem")).unwrap(),
    ]);
    let vector = &vectors(&dir, "kseal-vectors.json")[0];
    let label = vector["oaep_label"].as_str().unwrap().as_bytes();
    let blob = sealed::decode(vector["ciphertext_b64"].as_str().unwrap()).unwrap();
    let unseal_blob = |bytes: &[u8]| keyring.unseal(label, &STANDARD.encode(bytes)).err();

    assert_eq!(unseal_blob(&blob[..1]), Some(UnsealError::TooShort));
    assert_eq!(unseal_blob(&blob[..300]), Some(UnsealError::TooShort));
    let mut past_end = blob.clone();
    past_end[0] = 0xff;
    assert_eq!(unseal_blob(&past_end), Some(UnsealError::TooShort));
    let mut bad_tag = blob.clone();
    *bad_tag.last_mut().unwrap() ^= 1;
    assert_eq!(unseal_blob(&bad_tag), Some(UnsealError::NoMatchingKey));
    let mut bad_rsa = blob.clone();
    bad_rsa[10] ^= 1;
    assert_eq!(unseal_blob(&bad_rsa), Some(UnsealError::NoMatchingKey));
    assert_eq!(
        unseal_blob(&blob[..blob.len() - 1]),
        Some(UnsealError::NoMatchingKey)
    );
    assert_eq!(
        keyring.unseal(label, "not base64!").err(),
        Some(UnsealError::Base64)
    );
    // Line breaks inside the base64 are tolerated, as by Go's decoder.
    let wrapped: String = STANDARD
        .encode(&blob)
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    assert!(keyring.unseal(label, &wrapped).is_ok());
}

#[test]
fn pkcs8_and_pkcs1_forms_of_the_key_are_the_same_key() {
    let shared = require_shared!();
    let dir = shared.join("fixtures/sealed-secrets");
    let pkcs1 = PrivateKey::from_pem(&read(&dir, "kseal-sealing-key.pem")).unwrap();
    let pkcs8 = PrivateKey::from_pem(pkcs1.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    assert_eq!(pkcs1.public_key().spki_der(), pkcs8.public_key().spki_der());
    let vector = &vectors(&dir, "kseal-vectors.json")[0];
    let plaintext = sealed::unseal(
        [&pkcs8],
        vector["oaep_label"].as_str().unwrap().as_bytes(),
        vector["ciphertext_b64"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(plaintext.expose(), b"my-password-for-dev-db");
}
