//! RSA keys and controller certificates for Sealed Secrets.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey,
};
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::timefmt;

/// An RSA private key that unseals values (the controller side).
///
/// Parsed from PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`) PEM. Private-key
/// operations run in `aws-lc-rs`, in constant time.
pub struct PrivateKey {
    key: OaepPrivateDecryptingKey,
    raw: PrivateDecryptingKey,
}

impl PrivateKey {
    /// Parses the first RSA private key in `pem_text`, PKCS#1 or PKCS#8.
    pub fn from_pem(pem_text: &[u8]) -> Result<Self, KeyError> {
        let blocks = pem::parse_many(pem_text).map_err(|_| KeyError::Pem {
            expected: "RSA private key",
        })?;
        for block in blocks {
            match block.tag() {
                "RSA PRIVATE KEY" => return Self::from_pkcs1_der(block.contents()),
                "PRIVATE KEY" => return Self::from_pkcs8_der(block.contents()),
                _ => {}
            }
        }
        Err(KeyError::Pem {
            expected: "RSA private key",
        })
    }

    /// Parses a DER `PrivateKeyInfo` (PKCS#8) holding an RSA key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = PrivateDecryptingKey::from_pkcs8(der)
            .map_err(|_| KeyError::UnsupportedKey("not an RSA private key of 2048 to 8192 bits"))?;
        Self::from_key(key)
    }

    /// Parses a DER `RSAPrivateKey` (PKCS#1), the form the controller stores in `tls.key`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        Self::from_pkcs8_der(&pkcs1_to_pkcs8(der))
    }

    /// Generates a fresh key of `bits` bits (2048, 3072, 4096 or 8192).
    pub fn generate(bits: usize) -> Result<Self, KeyError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            8192 => KeySize::Rsa8192,
            _ => {
                return Err(KeyError::UnsupportedKey(
                    "RSA key size must be 2048, 3072, 4096 or 8192",
                ));
            }
        };
        let key = PrivateDecryptingKey::generate(size).map_err(|_| KeyError::Generation)?;
        Self::from_key(key)
    }

    fn from_key(key: PrivateDecryptingKey) -> Result<Self, KeyError> {
        let raw = key.clone();
        let key = OaepPrivateDecryptingKey::new(key)
            .map_err(|_| KeyError::UnsupportedKey("RSA key not usable for OAEP"))?;
        Ok(Self { key, raw })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let public = self.raw.public_key();
        PublicKey::from_key(public).expect("the public half of a valid private key is valid")
    }

    /// The key as PKCS#8 DER, in a buffer wiped on drop.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let der = self
            .raw
            .as_der()
            .map_err(|_| KeyError::MalformedKey("RSA private key"))?;
        Ok(Zeroizing::new(der.as_ref().to_vec()))
    }

    /// The key as PKCS#8 PEM (`PRIVATE KEY`), in a buffer wiped on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let der = self.to_pkcs8_der()?;
        Ok(encode_pem("PRIVATE KEY", &der))
    }

    /// The key as PKCS#1 PEM (`RSA PRIVATE KEY`), the form the upstream controller writes
    /// to `tls.key`, in a buffer wiped on drop.
    pub fn to_pkcs1_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let pkcs8 = self.to_pkcs8_der()?;
        let pkcs1 = pkcs8_to_pkcs1(&pkcs8).ok_or(KeyError::MalformedKey("RSA private key"))?;
        Ok(encode_pem("RSA PRIVATE KEY", pkcs1))
    }

    /// A 32-byte key for `purpose`, derived from this private key (HMAC-SHA256 keyed
    /// with the PKCS#8 encoding): the same on every replica and after restarts, unknown
    /// to anyone without the private key.
    pub fn derive_key(&self, purpose: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let der = self.to_pkcs8_der()?;
        Ok(Zeroizing::new(crate::primitives::hmac_sha256(
            &der,
            &[purpose],
        )))
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.key_size_bits()
    }

    pub(crate) fn oaep(&self) -> &OaepPrivateDecryptingKey {
        &self.key
    }
}

/// An RSA public key that seals values (the `kubeseal` side).
pub struct PublicKey {
    key: OaepPublicEncryptingKey,
    raw: PublicEncryptingKey,
    spki: Vec<u8>,
}

impl Clone for PublicKey {
    fn clone(&self) -> Self {
        Self::from_key(self.raw.clone()).expect("a valid key stays valid")
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Parses a DER `SubjectPublicKeyInfo` holding an RSA key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = PublicEncryptingKey::from_der(der)
            .map_err(|_| KeyError::UnsupportedKey("not an RSA public key of 2048 to 8192 bits"))?;
        Self::from_key(key)
    }

    /// Parses a PEM public key (`PUBLIC KEY`) or certificate (`CERTIFICATE`). A certificate
    /// is read without checking its validity period: use [`Certificate`] for that.
    pub fn from_pem(pem_text: &[u8]) -> Result<Self, KeyError> {
        let blocks = pem::parse_many(pem_text).map_err(|_| KeyError::Pem {
            expected: "public key or certificate",
        })?;
        for block in blocks {
            match block.tag() {
                "PUBLIC KEY" => return Self::from_spki_der(block.contents()),
                "CERTIFICATE" => return Certificate::from_der(block.contents())?.public_key(),
                _ => {}
            }
        }
        Err(KeyError::Pem {
            expected: "public key or certificate",
        })
    }

    fn from_key(key: PublicEncryptingKey) -> Result<Self, KeyError> {
        let spki = key
            .as_der()
            .map_err(|_| KeyError::MalformedKey("RSA public key"))?
            .as_ref()
            .to_vec();
        let raw = key.clone();
        let key = OaepPublicEncryptingKey::new(key)
            .map_err(|_| KeyError::UnsupportedKey("RSA key not usable for OAEP"))?;
        Ok(Self { key, raw, spki })
    }

    /// The key as DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.key_size_bits()
    }

    pub(crate) fn oaep(&self) -> &OaepPublicEncryptingKey {
        &self.key
    }
}

/// A controller's X.509 certificate, parsed leniently: only the public key and the
/// validity period are read, so extensions that strict parsers reject (the upstream
/// controller's critical KeyUsage `Encipher Only`) do no harm.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    spki: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

impl Certificate {
    /// Parses the first `CERTIFICATE` block of `pem_text`.
    pub fn from_pem(pem_text: &[u8]) -> Result<Self, KeyError> {
        let blocks = pem::parse_many(pem_text).map_err(|_| KeyError::Pem {
            expected: "certificate",
        })?;
        let block = blocks
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or(KeyError::Pem {
                expected: "certificate",
            })?;
        Self::from_der(block.contents())
    }

    /// Makes the self-signed certificate the upstream controller makes for a new key
    /// (spec §1.5): subject and issuer `CN=<cn>` (empty when `cn` is empty), a random
    /// 128-bit serial, valid from `not_before` for `ttl`, critical KeyUsage `Encipher Only`
    /// and critical BasicConstraints `CA:TRUE`, signed with SHA-256 and RSA.
    pub fn self_signed(
        key: &PrivateKey,
        cn: &str,
        not_before: SystemTime,
        ttl: std::time::Duration,
    ) -> Result<Self, KeyError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
            KeyUsagePurpose, PKCS_RSA_SHA256, SerialNumber,
        };
        let failed = |_| KeyError::Generation;
        let pkcs8 = key.to_pkcs8_der()?;
        let signer =
            KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_slice().into(), &PKCS_RSA_SHA256)
                .map_err(failed)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if !cn.is_empty() {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        let mut serial = [0u8; 16];
        crate::primitives::fill_random(&mut serial);
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_before = not_before.into();
        params.not_after = (not_before + ttl).into();
        params.key_usages = vec![KeyUsagePurpose::EncipherOnly];
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&signer).map_err(failed)?;
        Self::from_der(cert.der())
    }

    /// The certificate as PEM, with `\n` line ends as Go's `pem.Encode` writes it.
    pub fn to_pem(&self) -> String {
        encode_pem("CERTIFICATE", &self.der).to_string()
    }

    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| KeyError::Certificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(KeyError::Certificate(
                "trailing data after the certificate".into(),
            ));
        }
        let validity = cert.validity();
        Ok(Self {
            der: der.to_vec(),
            spki: cert.public_key().raw.to_vec(),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        })
    }

    /// The certificate's public key, whatever its validity.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        PublicKey::from_spki_der(&self.spki)
    }

    /// The public key for sealing, refused when the certificate has expired.
    pub fn sealing_key(&self) -> Result<PublicKey, KeyError> {
        self.sealing_key_at(SystemTime::now())
    }

    /// The public key for sealing as of `now`, refused when the certificate expired by then.
    pub fn sealing_key_at(&self, now: SystemTime) -> Result<PublicKey, KeyError> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if now > self.not_after {
            return Err(KeyError::CertificateExpired {
                not_after: timefmt::format_unix(self.not_after),
            });
        }
        self.public_key()
    }

    /// NotBefore as seconds since the Unix epoch.
    pub fn not_before_unix(&self) -> i64 {
        self.not_before
    }

    /// NotAfter as seconds since the Unix epoch.
    pub fn not_after_unix(&self) -> i64 {
        self.not_after
    }

    /// NotBefore in RFC 3339 (`1950-01-01T00:00:00Z`): any date X.509 can hold, from
    /// year 0000 to 9999, including those before 1970.
    pub fn not_before_rfc3339(&self) -> String {
        timefmt::format_unix(self.not_before)
    }

    /// NotAfter in RFC 3339 (`9999-12-31T23:59:59Z`), as [`Self::not_before_rfc3339`].
    pub fn not_after_rfc3339(&self) -> String {
        timefmt::format_unix(self.not_after)
    }

    /// The DER encoding of the whole certificate.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of the DER certificate, as colon-separated upper-case hex (the form
    /// `openssl x509 -fingerprint -sha256` prints).
    pub fn sha256_fingerprint(&self) -> String {
        let digest = crate::primitives::sha256(&self.der);
        let hex = hex::encode_upper(digest);
        hex.as_bytes()
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).expect("hex is ASCII"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Wraps a PKCS#1 `RSAPrivateKey` into a PKCS#8 `PrivateKeyInfo` with the rsaEncryption
/// algorithm identifier (RFC 5208), which is what `aws-lc-rs` loads.
fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Zeroizing<Vec<u8>> {
    // version INTEGER 0, AlgorithmIdentifier { rsaEncryption, NULL }
    const HEADER: [u8; 18] = [
        0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x01, 0x05, 0x00,
    ];
    let mut octets = Zeroizing::new(vec![0x04]);
    der_length(&mut octets, pkcs1.len());
    octets.extend_from_slice(pkcs1);
    let mut out = Zeroizing::new(vec![0x30]);
    der_length(&mut out, HEADER.len() + octets.len());
    out.extend_from_slice(&HEADER);
    out.extend_from_slice(&octets);
    out
}

/// Unwraps the PKCS#1 `RSAPrivateKey` from a PKCS#8 `PrivateKeyInfo` of an RSA key (the
/// inverse of [`pkcs1_to_pkcs8`]); `None` if the structure is not that.
fn pkcs8_to_pkcs1(pkcs8: &[u8]) -> Option<&[u8]> {
    // SEQUENCE { version, AlgorithmIdentifier, OCTET STRING { RSAPrivateKey } }
    let (tag, body, _) = der_element(pkcs8)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, rest) = der_element(body)?; // version
    let (_, algorithm, rest) = der_element(rest)?;
    let (tag, key, _) = der_element(rest)?;
    const RSA_ENCRYPTION: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    (tag == 0x04 && algorithm.starts_with(&RSA_ENCRYPTION)).then_some(key)
}

/// Splits one DER element off `input`: (tag, contents, rest).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// PEM with `\n` line ends (Go's `pem.Encode`, which upstream's controller and kubeseal
/// use), written into one buffer that is wiped on drop: no copy of the DER or its base64 is
/// left behind.
fn encode_pem(label: &str, der: &[u8]) -> Zeroizing<String> {
    use base64::Engine;
    let body = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let capacity = body.len() + body.len() / 64 + 2 * label.len() + 40;
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        let mut v = Vec::new();
        der_length(&mut v, 5);
        der_length(&mut v, 0x80);
        der_length(&mut v, 0x1234);
        assert_eq!(v, [5, 0x81, 0x80, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn certificate_dates_from_1950_to_9999() {
        let key = PrivateKey::generate(2048).unwrap();
        // UTCTime 500101000000Z to GeneralizedTime 99991231235959Z.
        let not_before = UNIX_EPOCH - std::time::Duration::from_secs(631_152_000);
        let ttl = std::time::Duration::from_secs(631_152_000 + 253_402_300_799);
        let cert = Certificate::self_signed(&key, "", not_before, ttl).unwrap();
        assert_eq!(cert.not_before_unix(), -631_152_000);
        assert_eq!(cert.not_before_rfc3339(), "1950-01-01T00:00:00Z");
        assert_eq!(cert.not_after_rfc3339(), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn pkcs1_round_trip_and_self_signed_certificate() {
        let key = PrivateKey::generate(2048).unwrap();
        let pkcs1 = key.to_pkcs1_pem().unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let again = PrivateKey::from_pem(pkcs1.as_bytes()).unwrap();
        assert_eq!(again.public_key().spki_der(), key.public_key().spki_der());

        let now = SystemTime::now();
        let ttl = std::time::Duration::from_secs(3600);
        let cert = Certificate::self_signed(&key, "", now, ttl).unwrap();
        assert_eq!(
            cert.public_key().unwrap().spki_der(),
            key.public_key().spki_der()
        );
        let start = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        assert_eq!(cert.not_before_unix(), start);
        assert_eq!(cert.not_after_unix(), start + 3600);
        let pem = cert.to_pem();
        let parsed = Certificate::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(parsed.der(), cert.der());
        // Go's pem.Encode layout: `\n` line ends, 64 characters a line.
        for text in [pem.as_str(), pkcs1.as_str()] {
            assert!(!text.contains('\r') && text.ends_with("-----\n"));
            assert!(text.lines().all(|line| line.len() <= 64));
        }

        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, x509) = X509Certificate::from_der(cert.der()).unwrap();
        assert_eq!(
            x509.subject().iter().count(),
            0,
            "empty subject, as upstream"
        );
        let usage = x509.key_usage().unwrap().unwrap();
        assert!(usage.critical && usage.value.encipher_only());
        let constraints = x509.basic_constraints().unwrap().unwrap();
        assert!(constraints.critical && constraints.value.ca);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(matches!(
            PrivateKey::from_pem(b"nope"),
            Err(KeyError::Pem { .. })
        ));
        assert!(matches!(
            Certificate::from_pem(b""),
            Err(KeyError::Pem { .. })
        ));
        let bogus = pem::encode(&pem::Pem::new("RSA PRIVATE KEY", vec![1, 2, 3]));
        assert!(matches!(
            PrivateKey::from_pem(bogus.as_bytes()),
            Err(KeyError::UnsupportedKey(_))
        ));
        let bogus = pem::encode(&pem::Pem::new("CERTIFICATE", vec![0x30, 0x03, 1, 2, 3]));
        assert!(matches!(
            Certificate::from_pem(bogus.as_bytes()),
            Err(KeyError::Certificate(_))
        ));
        assert!(PrivateKey::generate(1024).is_err());
    }
}
