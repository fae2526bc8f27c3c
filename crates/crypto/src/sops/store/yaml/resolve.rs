//! Scalar resolution as go-yaml v3 does it: tags, types, the YAML 1.2 core schema plus
//! go-yaml's extras, and the YAML 1.1 forms it still quotes.

use saphyr_parser::{ScalarStyle, Tag};

use super::syntax;
use crate::error::SopsError;
use crate::sops::tree::Scalar;
use crate::sops::value::normalize_time;

/// The text of a mapping key; sops supports string keys only.
pub(super) fn key_text(
    value: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    line: usize,
) -> Result<String, SopsError> {
    match typed_scalar(value, style, tag, line)? {
        Scalar::Str(text) => Ok(text),
        _ if value == "<<" => Ok(value.to_owned()),
        _ => Err(SopsError::Unsupported(format!(
            "line {line}: Only string keys are supported (this key is not a string)"
        ))),
    }
}

/// Types a scalar value as go-yaml v3 would decode it into `interface{}`.
pub(super) fn typed_scalar(
    value: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    line: usize,
) -> Result<Scalar, SopsError> {
    if let Some(tag) = tag
        && tag.is_yaml_core_schema()
    {
        return Ok(match tag.suffix.as_str() {
            "str" => Scalar::Str(value.to_owned()),
            "binary" => {
                use base64::Engine;
                let compact: String = value.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|_| syntax(format!("line {line}: invalid !!binary value")))?;
                match String::from_utf8(bytes) {
                    Ok(text) => Scalar::Str(text),
                    Err(e) => Scalar::Bytes(e.into_bytes()),
                }
            }
            "null" => Scalar::Null,
            _ => resolve_plain(value)?,
        });
    }
    if style != ScalarStyle::Plain {
        return Ok(Scalar::Str(value.to_owned()));
    }
    resolve_plain(value)
}

/// Whether a plain scalar reads back as a string (without building it).
pub(super) fn resolves_to_string(text: &str) -> bool {
    let first = text.as_bytes().first().copied().unwrap_or(b'~');
    if first.is_ascii_alphabetic() && !matches!(first, b'n' | b'N' | b't' | b'T' | b'f' | b'F') {
        return true;
    }
    matches!(resolve_plain(text), Ok(Scalar::Str(_)))
}

/// Resolves a plain scalar as go-yaml v3 does (YAML 1.2 core schema plus its extras).
pub fn resolve_plain(text: &str) -> Result<Scalar, SopsError> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Scalar::Null),
        "true" | "True" | "TRUE" => return Ok(Scalar::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Scalar::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Ok(Scalar::Float(f64::INFINITY));
        }
        "-.inf" | "-.Inf" | "-.INF" => return Ok(Scalar::Float(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Ok(Scalar::Float(f64::NAN)),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        let plain = text.replace('_', "");
        if let Some(value) = parse_go_int(&plain) {
            return match value {
                IntValue::Signed(v) => Ok(Scalar::Int(v)),
                IntValue::Unsigned => Err(SopsError::Unsupported(
                    "unknown type: uint64 (an integer larger than 9223372036854775807)".into(),
                )),
            };
        }
        if is_yaml_float(&plain)
            && let Ok(value) = plain.parse::<f64>()
        {
            return Ok(Scalar::Float(value));
        }
        if first.is_ascii_digit()
            && let Some(time) = normalize_time(text)
        {
            return Ok(Scalar::Time(time));
        }
    }
    Ok(Scalar::Str(text.to_owned()))
}

enum IntValue {
    Signed(i64),
    Unsigned,
}

/// Go's `strconv.ParseInt(s, 0, 64)` (then `ParseUint` for values beyond i64).
fn parse_go_int(text: &str) -> Option<IntValue> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, body) = if let Some(rest) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        (8, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        (2, rest)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(body, radix).ok()?;
    if negative {
        if magnitude <= i64::MAX as u128 + 1 {
            return Some(IntValue::Signed((-(magnitude as i128)) as i64));
        }
        return None;
    }
    if magnitude <= i64::MAX as u128 {
        Some(IntValue::Signed(magnitude as i64))
    } else if magnitude <= u64::MAX as u128 {
        Some(IntValue::Unsigned)
    } else {
        None
    }
}

/// go-yaml v3's float pattern: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()),
        Some((int, frac)) => {
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

pub(super) fn is_old_bool(text: &str) -> bool {
    matches!(
        text,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// go-yaml's `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
pub(super) fn is_base60(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (head, frac) = match s.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (s, None),
    };
    let mut parts = head.split(':');
    let first = parts.next().unwrap_or("");
    let first_ok = first.starts_with(|c: char| c.is_ascii_digit())
        && first.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let rest: Vec<&str> = parts.collect();
    first_ok
        && !rest.is_empty()
        && rest.iter().all(|p| {
            (1..=2).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || p.as_bytes()[0] <= b'5')
        })
        && frac.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
}
