//! Go's `strings`, `unicode/utf8` and `encoding/base64` helpers behind Sprig's string functions.

use std::rc::Rc;

use zeroize::Zeroizing;

use crate::value::{Buf, Meter};

/// Go's `utf8.DecodeRune`: a character and its width, or `None` and width 1
/// for a byte that does not start a valid UTF-8 sequence.
pub(crate) fn decode_rune(s: &[u8]) -> (Option<char>, usize) {
    let width = match s.first() {
        None => return (None, 0),
        Some(0..0x80) => 1,
        Some(0xc2..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        Some(0xf0..=0xf4) => 4,
        Some(_) => return (None, 1),
    };
    match s.get(..width).map(std::str::from_utf8) {
        Some(Ok(text)) => (text.chars().next(), width),
        _ => (None, 1),
    }
}

/// Go's `utf8.DecodeLastRune`.
pub(crate) fn decode_last_rune(s: &[u8]) -> (Option<char>, usize) {
    let end = s.len();
    if end == 0 {
        return (None, 0);
    }
    if s[end - 1] < 0x80 {
        return (Some(char::from(s[end - 1])), 1);
    }
    let lim = end.saturating_sub(4);
    let mut start = end - 1;
    while start > lim && s[start - 1] & 0xc0 == 0x80 {
        start -= 1;
    }
    start = start.saturating_sub(1);
    match decode_rune(&s[start..end]) {
        (Some(c), width) if start + width == end => (Some(c), width),
        _ => (None, 1),
    }
}

/// Go's `strings.TrimSpace`.
pub(crate) fn trim_space(mut s: &[u8]) -> &[u8] {
    while let (Some(c), width) = decode_rune(s) {
        if !c.is_whitespace() {
            break;
        }
        s = &s[width..];
    }
    while let (Some(c), width) = decode_last_rune(s) {
        if !c.is_whitespace() {
            break;
        }
        s = &s[..s.len() - width];
    }
    s
}

/// Go's `strings.ToUpper`/`ToLower`: per-character simple case mapping;
/// invalid UTF-8 becomes U+FFFD.
pub(crate) fn change_case(out: &mut Buf, s: &[u8], upper: bool) {
    let mut i = 0;
    while i < s.len() {
        let (c, width) = decode_rune(&s[i..]);
        i += width;
        let Some(c) = c else {
            out.push_char('\u{fffd}');
            continue;
        };
        out.push_char(map_case(c, upper));
    }
}

/// Go's `unicode.ToUpper` or `unicode.ToLower` of one character.
pub(crate) fn map_case(c: char, upper: bool) -> char {
    let u = u32::from(c);
    match u {
        // Greek with ypogegrammeni: the simple mapping is the titlecase letter.
        0x1f80..=0x1faf if upper && u & 0xf < 8 => char::from_u32(u + 8).unwrap_or(c),
        0x1fb3 | 0x1fc3 | 0x1ff3 if upper => char::from_u32(u + 9).unwrap_or(c),
        0x130 if !upper => 'i',
        // Rust's full mapping; where it is several characters Go keeps the letter.
        _ if upper => single(c, c.to_uppercase()),
        _ => single(c, c.to_lowercase()),
    }
}

/// Go's `unicode.ToTitle`: the uppercase letter, but for the digraphs (`ǆ` → `ǅ`).
pub(crate) fn title_case(c: char) -> char {
    match u32::from(c) {
        0x1c4..=0x1c6 => '\u{1c5}',
        0x1c7..=0x1c9 => '\u{1c8}',
        0x1ca..=0x1cc => '\u{1cb}',
        0x1f1..=0x1f3 => '\u{1f2}',
        _ => map_case(c, true),
    }
}

/// Go's `strings.Title`: the first letter of each word in title case, where words are
/// separated by spaces, punctuation and symbols (ASCII ones but `_`).
pub(crate) fn title(out: &mut Buf, s: &[u8]) {
    let separator = |c: char| -> bool {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if c.is_alphabetic() || c.is_numeric() {
            return false;
        }
        c.is_whitespace()
    };
    let mut prev = ' ';
    let mut i = 0;
    while i < s.len() && out.overflow.is_none() {
        let (c, width) = decode_rune(&s[i..]);
        i += width;
        let c = c.unwrap_or('\u{fffd}');
        out.push_char(if separator(prev) { title_case(c) } else { c });
        prev = c;
    }
}

/// The one character a case mapping yields, or `c` when it yields several.
pub(crate) fn single(c: char, mut mapped: impl Iterator<Item = char>) -> char {
    match (mapped.next(), mapped.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

/// goutils' `DeleteWhiteSpace`, as Sprig's `nospace` uses it. It works on bytes,
/// so when it removes anything, bytes from 0x80 up come out as the Latin-1
/// characters of the same number (and 0x85 and 0xA0 are removed): Go does the same.
pub(crate) fn nospace(out: &mut Buf, s: &[u8]) {
    let latin1_space = |b: u8| char::from(b).is_whitespace();
    if !s.iter().any(|&b| latin1_space(b)) {
        out.extend(s);
        return;
    }
    for &b in s.iter().filter(|&&b| !latin1_space(b)) {
        out.push_char(char::from(b));
    }
}

/// The first position of `needle` in `haystack`, in linear time: templates reach this
/// from `/v1/verify` too, so a quadratic search would let one request occupy a CPU.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// Go's `strings.Replace(src, old, new, -1)`.
pub(crate) fn replace(out: &mut Buf, src: &[u8], old: &[u8], new: &[u8]) {
    if old.is_empty() {
        // Insert `new` around every character (and every invalid byte).
        let mut i = 0;
        while i < src.len() && out.overflow.is_none() {
            out.extend(new);
            let (_, width) = decode_rune(&src[i..]);
            out.extend(&src[i..i + width]);
            i += width;
        }
        out.extend(new);
        return;
    }
    let mut rest = src;
    while let Some(at) = find(rest, old) {
        out.extend(&rest[..at]);
        out.extend(new);
        rest = &rest[at + old.len()..];
    }
    out.extend(rest);
}

/// Go's `base64.StdEncoding.DecodeString`: the decoded bytes, or the offset
/// that Go's error reports. Newlines are skipped and the unused bits of the
/// last character are ignored, as in Go.
pub(crate) fn go_base64_decode(src: &[u8], meter: &Rc<Meter>) -> Result<Buf, usize> {
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let skip_newlines = |mut si: usize| {
        while si < src.len() && matches!(src[si], b'\n' | b'\r') {
            si += 1;
        }
        si
    };
    let mut out = Buf::new(meter);
    let mut si = 0;
    loop {
        let mut quantum = [0u32; 4];
        let mut len = 4;
        let mut trailing = None;
        let mut j = 0;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                return Err(si - j);
            }
            let c = src[si];
            si += 1;
            if let Some(v) = value(c) {
                quantum[j] = v;
                j += 1;
                continue;
            }
            if c == b'\n' || c == b'\r' {
                continue;
            }
            if c != b'=' || j < 2 {
                return Err(si - 1);
            }
            if j == 2 {
                // "==" is expected; the first '=' is consumed.
                si = skip_newlines(si);
                if si == src.len() {
                    return Err(src.len());
                }
                if src[si] != b'=' {
                    return Err(si - 1);
                }
                si += 1;
            }
            si = skip_newlines(si);
            if si < src.len() {
                trailing = Some(si);
            }
            len = j;
            break;
        }
        let v = quantum[0] << 18 | quantum[1] << 12 | quantum[2] << 6 | quantum[3];
        let bytes = Zeroizing::new([(v >> 16) as u8, (v >> 8) as u8, v as u8]);
        out.extend(&bytes[..len - 1]);
        if let Some(at) = trailing {
            return Err(at);
        }
        if len < 4 {
            return Ok(out);
        }
    }
}
