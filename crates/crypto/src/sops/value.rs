//! The `ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]` value codec.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::SopsError;
use crate::primitives::{self, Aes256Gcm32, TAG_LEN};
use crate::secret::{DataKey, SecretBytes};
use crate::timefmt::Timestamp;

/// Length of the IV sops draws for every value.
pub const IV_LEN: usize = 32;

/// The `type:` of an encrypted value: how its plaintext bytes turn back into a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// UTF-8 text (or arbitrary bytes in the binary store).
    Str,
    /// A 64-bit integer in decimal.
    Int,
    /// A float in Go's shortest `'f'` format ([`format_float`]).
    Float,
    /// `True` or `False` ([`format_bool`]).
    Bool,
    /// An RFC 3339 timestamp ([`normalize_time`]).
    Time,
    /// A comment's text.
    Comment,
    /// Raw bytes; written by no sops 3.x, read for old files.
    Bytes,
}

impl ValueType {
    /// The name written after `type:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Str => "str",
            Self::Int => "int",
            Self::Float => "float",
            Self::Bool => "bool",
            Self::Time => "time",
            Self::Comment => "comment",
            Self::Bytes => "bytes",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ValueType {
    type Err = SopsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "str" => Self::Str,
            "int" => Self::Int,
            "float" => Self::Float,
            "bool" => Self::Bool,
            "time" => Self::Time,
            "comment" => Self::Comment,
            "bytes" => Self::Bytes,
            other => return Err(SopsError::UnknownType(other.to_owned())),
        })
    }
}

/// The parts of an `ENC[...]` string, decoded. Holds only ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedValue {
    /// The ciphertext, as long as the plaintext.
    pub data: Vec<u8>,
    /// The 32-byte IV.
    pub iv: [u8; IV_LEN],
    /// The 16-byte GCM tag.
    pub tag: [u8; TAG_LEN],
    /// The type of the plaintext.
    pub value_type: ValueType,
}

const PREFIX: &str = "ENC[AES256_GCM,data:";

impl EncryptedValue {
    /// Whether `text` looks like an encrypted value (starts with `ENC[AES256_GCM,`).
    pub fn is_encrypted(text: &str) -> bool {
        text.starts_with(PREFIX)
    }

    /// Parses an `ENC[...]` string with sops' rule: a regex anchored only at the start,
    /// `^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`, with greedy groups.
    pub fn parse(text: &str) -> Result<Self, SopsError> {
        let rest = text.strip_prefix(PREFIX).ok_or(SopsError::NotEncrypted)?;
        let end = rest.rfind(']').ok_or(SopsError::NotEncrypted)?;
        let rest = &rest[..end];
        let (rest, ty) = rsplit_nonempty(rest, ",type:")?;
        let (rest, tag) = rsplit_nonempty(rest, ",tag:")?;
        let (data, iv) = rsplit_nonempty(rest, ",iv:")?;
        if data.is_empty() {
            return Err(SopsError::NotEncrypted);
        }
        let decode = |field: &'static str, text: &str| {
            STANDARD.decode(text).map_err(|_| SopsError::Base64(field))
        };
        // The IV and tag have fixed sizes: decode them without allocating.
        let mut iv_buf = [0u8; IV_LEN + 3];
        let iv_len = STANDARD
            .decode_slice(iv, &mut iv_buf)
            .map_err(|_| SopsError::Base64("iv"))?;
        let mut tag_buf = [0u8; TAG_LEN + 3];
        let tag_len = STANDARD
            .decode_slice(tag, &mut tag_buf)
            .map_err(|_| SopsError::Base64("tag"))?;
        Ok(Self {
            data: decode("data", data)?,
            iv: iv_buf[..iv_len]
                .try_into()
                .map_err(|_| SopsError::IvLength(iv_len))?,
            tag: tag_buf[..tag_len]
                .try_into()
                .map_err(|_| SopsError::TagLength(tag_len))?,
            value_type: ty.parse()?,
        })
    }
}

fn rsplit_nonempty<'a>(text: &'a str, sep: &str) -> Result<(&'a str, &'a str), SopsError> {
    // Every separator starts with `,`: find commas from the end (a fast byte search)
    // rather than running a substring search per value.
    let mut end = text.len();
    let at = loop {
        let comma = text[..end].rfind(',').ok_or(SopsError::NotEncrypted)?;
        if text[comma..].starts_with(sep) {
            break comma;
        }
        end = comma;
    };
    let (head, tail) = (&text[..at], &text[at + sep.len()..]);
    if tail.is_empty() {
        return Err(SopsError::NotEncrypted);
    }
    Ok((head, tail))
}

impl fmt::Display for EncryptedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{},iv:{},tag:{},type:{}]",
            STANDARD.encode(&self.data),
            STANDARD.encode(self.iv),
            STANDARD.encode(self.tag),
            self.value_type
        )
    }
}

/// A decrypted value: its type, its plaintext bytes (wiped on drop) and the IV it was
/// encrypted under, so that an unchanged value can be re-encrypted byte-identically.
pub struct Plaintext {
    value_type: ValueType,
    bytes: SecretBytes,
    iv: [u8; IV_LEN],
}

impl Plaintext {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        self.value_type
    }

    /// The plaintext bytes, exactly as they enter the MAC.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.expose()
    }

    /// The plaintext as UTF-8, if it is.
    pub fn as_str(&self) -> Option<&str> {
        self.bytes.expose_str()
    }

    /// The IV the value was encrypted under.
    pub fn iv(&self) -> &[u8; IV_LEN] {
        &self.iv
    }

    /// Hands over the plaintext bytes.
    pub fn into_secret(self) -> SecretBytes {
        self.bytes
    }

    /// The value as an integer (`type:int`), as Go's `strconv.Atoi` reads it.
    pub fn to_int(&self) -> Result<i64, SopsError> {
        self.as_str()
            .and_then(|s| s.parse().ok())
            .ok_or(SopsError::InvalidPlaintext("int"))
    }

    /// The value as a float (`type:float`), as Go's `strconv.ParseFloat` reads it.
    pub fn to_float(&self) -> Result<f64, SopsError> {
        self.as_str()
            .and_then(parse_float)
            .ok_or(SopsError::InvalidPlaintext("float"))
    }

    /// The value as a boolean (`type:bool`), as Go's `strconv.ParseBool` reads it.
    pub fn to_bool(&self) -> Result<bool, SopsError> {
        self.as_str()
            .and_then(parse_bool)
            .ok_or(SopsError::InvalidPlaintext("bool"))
    }
}

/// Encrypts and decrypts the values of one SOPS file under its data key.
///
/// ```
/// use gitseal_crypto::sops::{aad, ValueCipher, ValueType};
/// use gitseal_crypto::DataKey;
/// let cipher = ValueCipher::new(&DataKey::generate());
/// let path = aad(["db", "password"]);
/// assert_eq!(path, b"db:password:");
/// let enc = cipher.encrypt(b"hunter2", ValueType::Str, &path);
/// assert!(enc.starts_with("ENC[AES256_GCM,data:") && enc.ends_with(",type:str]"));
/// let plain = cipher.decrypt(&enc, &path)?;
/// assert_eq!(plain.bytes(), b"hunter2");
/// // The key path is authenticated: the value cannot be moved.
/// assert!(cipher.decrypt(&enc, &aad(["db", "user"])).is_err());
/// # Ok::<(), gitseal_crypto::SopsError>(())
/// ```
pub struct ValueCipher {
    gcm: Aes256Gcm32,
    ivs: primitives::IvGenerator,
}

impl ValueCipher {
    /// A cipher for `key`.
    pub fn new(key: &DataKey) -> Self {
        Self {
            gcm: primitives::gcm32(key.expose()),
            ivs: primitives::IvGenerator::new(),
        }
    }

    /// Encrypts `plaintext` under a fresh random IV. Empty values are not encrypted (sops
    /// leaves them as they are, and [`EncryptedValue::parse`] refuses an empty `data`):
    /// callers skip them.
    pub fn encrypt(&self, plaintext: &[u8], value_type: ValueType, aad: &[u8]) -> String {
        let iv = self.ivs.next();
        self.encrypt_with_iv(plaintext, value_type, aad, &iv)
    }

    /// Encrypts `plaintext` under `iv`. Only reuse the IV a value was decrypted with, for
    /// the same plaintext at the same path, so that the output is byte-identical.
    pub fn encrypt_with_iv(
        &self,
        plaintext: &[u8],
        value_type: ValueType,
        aad: &[u8],
        iv: &[u8; IV_LEN],
    ) -> String {
        let mut data = plaintext.to_vec();
        let tag = primitives::gcm32_seal(&self.gcm, iv, aad, &mut data)
            .expect("AES-GCM encrypts any value shorter than 64 GiB");
        let ty = value_type.as_str();
        // Written in one buffer: this runs once per value of a file.
        let mut out = String::with_capacity(PREFIX.len() + data.len() * 4 / 3 + 100 + ty.len());
        out.push_str(PREFIX);
        STANDARD.encode_string(&data, &mut out);
        out.push_str(",iv:");
        STANDARD.encode_string(iv, &mut out);
        out.push_str(",tag:");
        STANDARD.encode_string(tag, &mut out);
        out.push_str(",type:");
        out.push_str(ty);
        out.push(']');
        out
    }

    /// Decrypts an `ENC[...]` string encrypted at the key path `aad`.
    pub fn decrypt(&self, text: &str, aad: &[u8]) -> Result<Plaintext, SopsError> {
        self.decrypt_value(EncryptedValue::parse(text)?, aad)
    }

    /// Decrypts an already parsed value.
    pub fn decrypt_value(&self, value: EncryptedValue, aad: &[u8]) -> Result<Plaintext, SopsError> {
        let EncryptedValue {
            mut data,
            iv,
            tag,
            value_type,
        } = value;
        match primitives::gcm32_open(&self.gcm, &iv, aad, &mut data, &tag) {
            Some(()) => Ok(Plaintext {
                value_type,
                bytes: SecretBytes::new(data),
                iv,
            }),
            None => Err(SopsError::DecryptionFailed),
        }
    }
}

/// The additional authenticated data of a value: its mapping keys from the document root,
/// each followed by `:` (list indices are not part of it). A comment uses the path of the
/// mapping or list that contains it, so a top-level comment's AAD is `:`.
pub fn aad<I, S>(path: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = Vec::new();
    for key in path {
        out.extend_from_slice(key.as_ref().as_bytes());
        out.push(b':');
    }
    if out.is_empty() {
        out.push(b':');
    }
    out
}

/// Formats a float as Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip
/// digits, never an exponent, `+Inf`, `-Inf` and `NaN` for the special values.
///
/// ```
/// use gitseal_crypto::sops::format_float;
/// assert_eq!(format_float(1.0), "1");
/// assert_eq!(format_float(6.02e23), "602000000000000000000000");
/// assert_eq!(format_float(1e-7), "0.0000001");
/// assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
/// ```
pub fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        // Rust's Display for f64 prints the shortest round-trip digits without an exponent.
        value.to_string()
    }
}

/// Go's text for a float in its shortest digits: the [`format_float`] form when the
/// decimal exponent is in `plain`, else `d.ddde±XX` (go-yaml writes `'g'`: plain for
/// exponents -4..6; `encoding/json`: -6..21).
pub(crate) fn format_go_float(value: f64, plain: std::ops::Range<i32>) -> String {
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if !value.is_finite() || value == 0.0 || plain.contains(&exp) {
        return format_float(value);
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// Parses a float as Go's `strconv.ParseFloat` does for the texts sops writes.
pub fn parse_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "+inf" | "inf" | "+Infinity" | "Infinity" => Some(f64::INFINITY),
        "-Inf" | "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ if text
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E')) =>
        {
            None
        }
        _ => text.replace('_', "").parse().ok(),
    }
}

/// The plaintext text of a boolean: `True` or `False`, as sops has written since its
/// Python days.
pub fn format_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

/// Parses a boolean as Go's `strconv.ParseBool`.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The plaintext text of a timestamp: a YAML timestamp (`2024-01-15`,
/// `2024-01-15 10:20:30`, RFC 3339) in Go's `time.MarshalText` form
/// (`2024-01-15T00:00:00Z`). `None` if `text` is not a timestamp.
pub fn normalize_time(text: &str) -> Option<String> {
    Timestamp::parse(text).map(|t| t.rfc3339_nano())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_slice(&[7u8; 32]).unwrap()
    }

    #[test]
    fn parse_is_greedy_and_start_anchored() {
        let cipher = ValueCipher::new(&key());
        let enc = cipher.encrypt(b"v", ValueType::Int, b"a:");
        let parsed = EncryptedValue::parse(&enc).unwrap();
        assert_eq!(parsed.value_type, ValueType::Int);
        assert_eq!(parsed.to_string(), enc);
        // Trailing text after the closing bracket is tolerated, as by sops' regex.
        assert!(EncryptedValue::parse(&format!("{enc}  ")).is_ok());
    }

    #[test]
    fn negative_vectors() {
        let cipher = ValueCipher::new(&key());
        let enc = cipher.encrypt(b"secret", ValueType::Str, b"a:");
        let p = EncryptedValue::parse;
        assert_eq!(p("secret").unwrap_err(), SopsError::NotEncrypted);
        assert_eq!(
            p("ENC[AES256_GCM,data:,iv:,tag:,type:]").unwrap_err(),
            SopsError::NotEncrypted
        );
        assert_eq!(
            p(&enc.replace("type:str", "type:blob")).unwrap_err(),
            SopsError::UnknownType("blob".into())
        );
        let iv31 = STANDARD.encode([1u8; 31]);
        let v = EncryptedValue::parse(&enc).unwrap();
        let text = format!(
            "ENC[AES256_GCM,data:{},iv:{iv31},tag:{},type:str]",
            STANDARD.encode(&v.data),
            STANDARD.encode(v.tag)
        );
        assert_eq!(p(&text).unwrap_err(), SopsError::IvLength(31));
        let text = format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:AAAA,type:str]",
            STANDARD.encode(&v.data),
            STANDARD.encode(v.iv)
        );
        assert_eq!(p(&text).unwrap_err(), SopsError::TagLength(3));
        let text = format!(
            "ENC[AES256_GCM,data:@@@@,iv:{},tag:{},type:str]",
            STANDARD.encode(v.iv),
            STANDARD.encode(v.tag)
        );
        assert_eq!(p(&text).unwrap_err(), SopsError::Base64("data"));
        let mut bad_tag = v.clone();
        bad_tag.tag[0] ^= 1;
        assert_eq!(
            cipher.decrypt(&bad_tag.to_string(), b"a:").err(),
            Some(SopsError::DecryptionFailed)
        );
        let mut bad_data = v.clone();
        bad_data.data[0] ^= 1;
        assert_eq!(
            cipher.decrypt(&bad_data.to_string(), b"a:").err(),
            Some(SopsError::DecryptionFailed)
        );
        let other = ValueCipher::new(&DataKey::from_slice(&[8u8; 32]).unwrap());
        assert_eq!(
            other.decrypt(&enc, b"a:").err(),
            Some(SopsError::DecryptionFailed)
        );
    }

    #[test]
    fn same_iv_same_text() {
        let cipher = ValueCipher::new(&key());
        let enc = cipher.encrypt(b"value", ValueType::Str, b"k:");
        let plain = cipher.decrypt(&enc, b"k:").unwrap();
        assert_eq!(
            cipher.encrypt_with_iv(plain.bytes(), plain.value_type(), b"k:", plain.iv()),
            enc
        );
        assert_ne!(cipher.encrypt(b"value", ValueType::Str, b"k:"), enc);
    }

    #[test]
    fn typed_plaintexts() {
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(1000.0), "1000");
        assert_eq!(format_float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_float(-0.0), "-0");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("6.02e+23"), Some(6.02e23));
        assert_eq!(parse_float("x1"), None);
        assert_eq!(format_bool(true), "True");
        assert_eq!(parse_bool("T"), Some(true));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(aad(Vec::<&str>::new()), b":");
        assert_eq!(
            aad(["nested", "deeper", "secret"]),
            b"nested:deeper:secret:"
        );
        assert_eq!(
            normalize_time("2024-01-15 10:20:30").as_deref(),
            Some("2024-01-15T10:20:30Z")
        );
    }
}
