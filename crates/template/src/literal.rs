//! Literals: Go's `strconv.ParseInt` and `strconv.Unquote` as the parser uses them.

use crate::gofmt::quoted;
use crate::lexer::{Item, Typ};

/// An integer literal (Go's `strconv.ParseInt(text, 0, 64)`) or a character constant.
pub(crate) fn parse_number(item: &Item) -> Result<i64, String> {
    let text = item.val.as_str();
    if item.typ == Typ::CharConst {
        let body = &text[1..];
        if body.starts_with('\'') {
            return Err("invalid syntax".into());
        }
        let (value, len) = match body.strip_prefix('\\') {
            Some(esc) => unquote_escape(esc.as_bytes(), b'\'').ok_or("invalid syntax")?,
            None => {
                let c = body.chars().next().ok_or("invalid syntax")?;
                (Esc::Char(c), c.len_utf8() - 1)
            }
        };
        if &body[len + 1..] != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        return Ok(match value {
            Esc::Char(c) => i64::from(u32::from(c)),
            Esc::Byte(b) => i64::from(b),
        });
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let value = go_integer(text)
        .map(|(negative, m)| if negative { -m } else { m })
        .and_then(|v| i64::try_from(v).ok());
    match value {
        Some(v) => Ok(v),
        None if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("integer overflow: {}", quoted(text)))
        }
        None if item.typ == Typ::Complex || text.contains(['.', 'e', 'E', 'p', 'P', 'i']) => {
            Err(format!(
                "unsupported number {}: only integers are supported",
                quoted(text)
            ))
        }
        None => Err(format!("illegal number syntax: {}", quoted(text))),
    }
}

/// The sign and magnitude of an integer as Go's `strconv.ParseInt(text, 0, 64)` reads it
/// (base prefixes `0x`, `0o`, `0b`, a leading `0` for octal, `_` by Go's rule), or `None`
/// when `text` is not one; the range is the caller's to check.
pub(crate) fn go_integer(text: &str) -> Option<(bool, i128)> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = match lower.get(..2) {
        Some("0x") => (16, &lower[2..]),
        Some("0o") => (8, &lower[2..]),
        Some("0b") => (2, &lower[2..]),
        _ if lower.len() > 1 && lower.starts_with('0') => (8, &lower[1..]),
        _ => (10, lower.as_str()),
    };
    if !underscores_ok(&lower) {
        return None;
    }
    let digits = digits.replace('_', "");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    i128::from_str_radix(&digits, radix)
        .ok()
        .map(|m| (negative, m))
}

/// Go's rule for `_` in numbers: only between digits, or after a base prefix.
pub(crate) fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let prefixed = b.len() >= 2 && b[0] == b'0' && matches!(b[1], b'b' | b'o' | b'x');
    let hex = prefixed && b[1] == b'x';
    let mut saw = if prefixed { b'0' } else { b'^' };
    for &c in &b[if prefixed { 2 } else { 0 }..] {
        saw = match c {
            _ if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) => b'0',
            b'_' if saw != b'0' => return false,
            b'_' => b'_',
            _ if saw == b'_' => return false,
            _ => b'!',
        };
    }
    saw != b'_'
}

/// One unescaped character: a byte from `\x` or octal escapes, else a character.
pub(crate) enum Esc {
    Byte(u8),
    Char(char),
}

/// Go's `strconv.Unquote` for `"..."` and `` `...` `` literals.
pub(crate) fn unquote(text: &str) -> Option<Vec<u8>> {
    let body = &text.as_bytes()[1..text.len() - 1];
    if text.starts_with('`') {
        return Some(body.iter().copied().filter(|&b| b != b'\r').collect());
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\\' => {
                let (value, len) = unquote_escape(&body[i + 1..], b'"')?;
                match value {
                    Esc::Byte(b) => out.push(b),
                    Esc::Char(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
                i += len + 1;
            }
            b'"' | b'\n' => return None,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The escape after a backslash: its value and how many bytes it spans.
pub(crate) fn unquote_escape(s: &[u8], quote: u8) -> Option<(Esc, usize)> {
    let hex = |digits: &[u8]| -> Option<u32> {
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(text, 16).ok()
    };
    let c = *s.first()?;
    let simple = match c {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0b),
        b'\\' => Some(b'\\'),
        b'\'' | b'"' if c == quote => Some(c),
        _ => None,
    };
    if let Some(b) = simple {
        return Some((Esc::Char(char::from(b)), 1));
    }
    match c {
        b'x' => {
            let v = hex(s.get(1..3)?)?;
            Some((Esc::Byte(u8::try_from(v).ok()?), 3))
        }
        b'u' | b'U' => {
            let n = if c == b'u' { 4 } else { 8 };
            let v = hex(s.get(1..1 + n)?)?;
            Some((Esc::Char(char::from_u32(v)?), n + 1))
        }
        b'0'..=b'7' => {
            let digits = s.get(0..3)?;
            let mut v: u32 = 0;
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                v = v * 8 + u32::from(d - b'0');
            }
            Some((Esc::Byte(u8::try_from(v).ok()?), 3))
        }
        _ => None,
    }
}
