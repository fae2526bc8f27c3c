//! Go's `fmt`, `strconv` and `encoding/json` formatting, as templates print values.

use std::fmt::Write as _;

use crate::func::text::decode_rune;
use crate::value::{Buf, MAX_VALUE_DEPTH, Overflow, Value};

/// Go's `fmt.Sprintf` for the verbs `%s %v %q %d %x %X %t %%`.
pub(crate) fn printf(out: &mut Buf, format: &[u8], args: &[Value<'_>]) -> Result<(), String> {
    let mut next = 0;
    let mut i = 0;
    while i < format.len() {
        let Some(off) = format[i..].iter().position(|&b| b == b'%') else {
            out.extend(&format[i..]);
            break;
        };
        out.extend(&format[i..i + off]);
        i += off + 1;
        let Some(&verb) = format.get(i) else {
            out.extend(b"%!(NOVERB)");
            break;
        };
        i += 1;
        match verb {
            b'%' => out.push(b'%'),
            b's' | b'v' | b'q' | b'd' | b'x' | b'X' | b't' => match args.get(next) {
                Some(arg) => {
                    fmt_value(out, arg, char::from(verb));
                    next += 1;
                }
                None => {
                    let _ = write!(out, "%!{}(MISSING)", char::from(verb));
                }
            },
            // The format may be a secret: don't show what follows the '%'.
            _ => {
                return Err("only the verbs %s %v %q %d %x %X %t and %% are supported, \
                            without flags, widths or argument indexes"
                    .into());
            }
        }
    }
    if next < args.len() {
        out.extend(b"%!(EXTRA ");
        for (i, arg) in args[next..].iter().enumerate() {
            if i > 0 {
                out.extend(b", ");
            }
            if matches!(arg, Value::Nil) {
                out.extend(b"<nil>");
            } else {
                let _ = write!(out, "{}=", arg.type_name());
                fmt_value(out, arg, 'v');
            }
        }
        out.push(b')');
    }
    Ok(())
}

/// Go's `fmt` formatting of one value with one verb.
pub(crate) fn fmt_value(out: &mut Buf, v: &Value<'_>, verb: char) {
    fmt_at(out, v, verb, 0);
}

fn fmt_at(out: &mut Buf, v: &Value<'_>, verb: char, depth: usize) {
    if depth > MAX_VALUE_DEPTH {
        out.overflow = out.overflow.or(Some(Overflow::Depth));
        return;
    }
    match (v, verb) {
        (Value::Nil, 'v') => out.extend(b"<nil>"),
        (Value::Nil, _) => {
            let _ = write!(out, "%!{verb}(<nil>)");
        }
        (Value::Str(s), _) => fmt_str(out, s, verb),
        (Value::Int(i), 'd' | 'v') => {
            let _ = write!(out, "{i}");
        }
        (Value::Int(i), 'x' | 'X') => {
            let sign = if *i < 0 { "-" } else { "" };
            let _ = if verb == 'x' {
                write!(out, "{sign}{:x}", i.unsigned_abs())
            } else {
                write!(out, "{sign}{:X}", i.unsigned_abs())
            };
        }
        (Value::Int(i), 'q') => {
            let c = u32::try_from(*i).ok().and_then(char::from_u32);
            out.push(b'\'');
            escape_rune(out, c.unwrap_or('\u{fffd}'), b'\'');
            out.push(b'\'');
        }
        (Value::Float(f), 'v') => go_float_g(out, *f),
        (Value::Bool(b), 't' | 'v') => {
            let _ = write!(out, "{b}");
        }
        (Value::Map(map), _) => {
            out.extend(b"map[");
            for (i, (k, val)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                fmt_str(out, k.as_bytes(), verb);
                out.push(b':');
                fmt_str(out, val, verb);
            }
            out.push(b']');
        }
        (Value::List(list), _) => {
            out.push(b'[');
            for (i, elem) in list.0.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                fmt_at(out, elem, verb, depth + 1);
                if out.overflow.is_some() {
                    return;
                }
            }
            out.push(b']');
        }
        (Value::Dict(dict), _) => {
            out.extend(b"map[");
            for (i, (k, elem)) in dict.0.borrow().iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                fmt_str(out, &k.0, verb);
                out.push(b':');
                fmt_at(out, elem, verb, depth + 1);
                if out.overflow.is_some() {
                    return;
                }
            }
            out.push(b']');
        }
        _ => {
            let _ = write!(out, "%!{verb}({}=", v.type_name());
            fmt_at(out, v, 'v', depth);
            out.push(b')');
        }
    }
}

/// The shortest decimal digits of a finite, non-zero `f` and its decimal point position
/// (`f` = 0.DIGITS × 10^point), without the sign.
fn shortest_digits(f: f64) -> (String, i32) {
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse::<i32>().unwrap_or(0) + 1)
}

/// Go's `strconv.FormatFloat(f, 'e', -1, 64)` (`json` drops the leading zero of a
/// negative exponent, as `encoding/json` does).
fn float_e(out: &mut Buf, f: f64, json: bool) {
    let (digits, point) = shortest_digits(f);
    if f.is_sign_negative() {
        out.push(b'-');
    }
    out.extend(&digits.as_bytes()[..1]);
    if digits.len() > 1 {
        out.push(b'.');
        out.extend(&digits.as_bytes()[1..]);
    }
    let exp = point - 1;
    let sign = if exp < 0 { '-' } else { '+' };
    let _ = if json && exp < 0 {
        write!(out, "e{sign}{}", exp.unsigned_abs())
    } else {
        write!(out, "e{sign}{:02}", exp.unsigned_abs())
    };
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
fn float_f(out: &mut Buf, f: f64) {
    let (digits, point) = shortest_digits(f);
    if f.is_sign_negative() {
        out.push(b'-');
    }
    let d = digits.as_bytes();
    let nd = d.len() as i32;
    if point <= 0 {
        out.extend(b"0.");
        for _ in 0..-point {
            out.push(b'0');
        }
        out.extend(d);
    } else if point >= nd {
        out.extend(d);
        for _ in 0..point - nd {
            out.push(b'0');
        }
    } else {
        out.extend(&d[..point as usize]);
        out.push(b'.');
        out.extend(&d[point as usize..]);
    }
}

/// The special values of Go's float formatting, or `None` for a finite non-zero one.
fn float_special(f: f64) -> Option<&'static str> {
    Some(match f {
        _ if f.is_nan() => "NaN",
        f64::INFINITY => "+Inf",
        f64::NEG_INFINITY => "-Inf",
        _ if f == 0.0 && f.is_sign_negative() => "-0",
        _ if f == 0.0 => "0",
        _ => return None,
    })
}

/// Go's `%v` of a `float64`: `strconv.FormatFloat(f, 'g', -1, 64)`, which uses an
/// exponent below 1e-4 and from 1e6 on (`1e+06`, but `123456`).
pub(crate) fn go_float_g(out: &mut Buf, f: f64) {
    if let Some(special) = float_special(f) {
        out.extend(special.as_bytes());
        return;
    }
    let (_, point) = shortest_digits(f);
    let exp = point - 1;
    if !(-4..6).contains(&exp) {
        float_e(out, f, false);
    } else {
        float_f(out, f);
    }
}

/// Go's `encoding/json` encoding of a finite `float64`.
fn json_float(out: &mut Buf, f: f64) {
    if let Some(special) = float_special(f) {
        out.extend(special.as_bytes());
        return;
    }
    let abs = f.abs();
    if !(1e-6..1e21).contains(&abs) {
        float_e(out, f, true);
    } else {
        float_f(out, f);
    }
}

/// Go's `fmt` formatting of a string with one verb.
pub(crate) fn fmt_str(out: &mut Buf, s: &[u8], verb: char) {
    match verb {
        's' | 'v' => out.extend(s),
        'q' => go_quote(out, s, b'"'),
        'x' | 'X' => {
            for b in s {
                let _ = if verb == 'x' {
                    write!(out, "{b:02x}")
                } else {
                    write!(out, "{b:02X}")
                };
                if out.overflow.is_some() {
                    break;
                }
            }
        }
        _ => {
            let _ = write!(out, "%!{verb}(string=");
            out.extend(s);
            out.push(b')');
        }
    }
}

/// Go's `strconv.Quote` (and `QuoteRune` with `quote` = `'`).
pub(crate) fn go_quote(out: &mut Buf, s: &[u8], quote: u8) {
    out.push(quote);
    let mut i = 0;
    while i < s.len() {
        let (c, width) = decode_rune(&s[i..]);
        match c {
            Some(c) => escape_rune(out, c, quote),
            None => {
                let _ = write!(out, "\\x{:02x}", s[i]);
            }
        }
        i += width;
    }
    out.push(quote);
}

pub(crate) fn escape_rune(out: &mut Buf, c: char, quote: u8) {
    if c == char::from(quote) || c == '\\' {
        out.push(b'\\');
        out.push_char(c);
        return;
    }
    if is_go_print(c) {
        out.push_char(c);
        return;
    }
    let _ = match c {
        '\x07' => write!(out, "\\a"),
        '\x08' => write!(out, "\\b"),
        '\x0c' => write!(out, "\\f"),
        '\n' => write!(out, "\\n"),
        '\r' => write!(out, "\\r"),
        '\t' => write!(out, "\\t"),
        '\x0b' => write!(out, "\\v"),
        _ if c < ' ' || c == '\x7f' => write!(out, "\\x{:02x}", u32::from(c)),
        _ if u32::from(c) < 0x10000 => write!(out, "\\u{:04x}", u32::from(c)),
        _ => write!(out, "\\U{:08x}", u32::from(c)),
    };
}

/// Go's `strconv.IsPrint`, except that unassigned code points count as printable.
pub(crate) fn is_go_print(c: char) -> bool {
    let u = u32::from(c);
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    !c.is_control()
        && u & 0xfffe != 0xfffe
        && !matches!(
            u,
            0x00a0
                | 0x00ad
                | 0x0600..=0x0605
                | 0x061c
                | 0x06dd
                | 0x070f
                | 0x0890..=0x0891
                | 0x08e2
                | 0x1680
                | 0x180e
                | 0x2000..=0x200f
                | 0x2028..=0x202f
                | 0x205f..=0x206f
                | 0x3000
                | 0xe000..=0xf8ff
                | 0xfdd0..=0xfdef
                | 0xfeff
                | 0xfff9..=0xfffb
                | 0x110bd
                | 0x110cd
                | 0x13430..=0x1343f
                | 0x1bca0..=0x1bca3
                | 0x1d173..=0x1d17a
                | 0xe0001
                | 0xe0020..=0xe007f
                | 0xf0000..=0x10ffff
        )
}

/// Go's `%#U`: `U+0041 'A'`.
pub(crate) fn fmt_u(c: char) -> String {
    let mut s = format!("U+{:04X}", u32::from(c));
    if is_go_print(c) {
        let _ = write!(s, " '{c}'");
    }
    s
}

/// Go's `%q` of template text (never a secret), for messages.
pub(crate) fn quoted(text: &str) -> String {
    let mut out = Buf::default();
    go_quote(&mut out, text.as_bytes(), b'"');
    String::from_utf8_lossy(&out.bytes).into_owned()
}

/// Go's `encoding/json` encoding of a value (`json.Marshal`, or
/// `MarshalIndent(v, "", "  ")` when `pretty`); `html` escapes `<`, `>`, `&`. False
/// (with the output unfinished) for a value Go cannot encode: NaN or an infinity.
pub(crate) fn json(out: &mut Buf, v: &Value<'_>, html: bool, pretty: bool) -> bool {
    json_at(out, v, html, pretty, 0)
}

fn json_newline(out: &mut Buf, pretty: bool, depth: usize) {
    if pretty {
        out.push(b'\n');
        out.spaces(2 * depth);
    }
}

fn json_at(out: &mut Buf, v: &Value<'_>, html: bool, pretty: bool, depth: usize) -> bool {
    if depth > MAX_VALUE_DEPTH {
        out.overflow = out.overflow.or(Some(Overflow::Depth));
        return true;
    }
    let colon: &[u8] = if pretty { b": " } else { b":" };
    match v {
        Value::Nil => out.extend(b"null"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if !f.is_finite() => return false,
        Value::Float(f) => json_float(out, *f),
        Value::Str(s) => json_string(out, s, html),
        Value::Map(map) if map.is_empty() => out.extend(b"{}"),
        Value::Map(map) => {
            out.push(b'{');
            for (i, (k, val)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_newline(out, pretty, depth + 1);
                json_string(out, k.as_bytes(), html);
                out.extend(colon);
                json_string(out, val, html);
            }
            json_newline(out, pretty, depth);
            out.push(b'}');
        }
        Value::List(list) if list.0.is_empty() => out.extend(b"[]"),
        Value::List(list) => {
            out.push(b'[');
            for (i, elem) in list.0.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_newline(out, pretty, depth + 1);
                if !json_at(out, elem, html, pretty, depth + 1) {
                    return false;
                }
                if out.overflow.is_some() {
                    return true;
                }
            }
            json_newline(out, pretty, depth);
            out.push(b']');
        }
        Value::Dict(dict) => {
            let dict = dict.0.borrow();
            if dict.is_empty() {
                out.extend(b"{}");
                return true;
            }
            out.push(b'{');
            for (i, (k, elem)) in dict.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_newline(out, pretty, depth + 1);
                json_string(out, &k.0, html);
                out.extend(colon);
                if !json_at(out, elem, html, pretty, depth + 1) {
                    return false;
                }
                if out.overflow.is_some() {
                    return true;
                }
            }
            json_newline(out, pretty, depth);
            out.push(b'}');
        }
    }
    true
}

pub(crate) fn json_string(out: &mut Buf, s: &[u8], html: bool) {
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            let _ = match b {
                b'\\' | b'"' => write!(out, "\\{}", char::from(b)),
                b'\n' => write!(out, "\\n"),
                b'\r' => write!(out, "\\r"),
                b'\t' => write!(out, "\\t"),
                0x08 => write!(out, "\\b"),
                0x0c => write!(out, "\\f"),
                0..0x20 => write!(out, "\\u{b:04x}"),
                b'<' | b'>' | b'&' if html => write!(out, "\\u{b:04x}"),
                _ => {
                    out.push(b);
                    Ok(())
                }
            };
            i += 1;
            continue;
        }
        let (c, width) = decode_rune(&s[i..]);
        match c {
            None => out.extend(b"\\ufffd"),
            Some('\u{2028}') => out.extend(b"\\u2028"),
            Some('\u{2029}') => out.extend(b"\\u2029"),
            Some(_) => out.extend(&s[i..i + width]),
        }
        i += width;
    }
    out.push(b'"');
}
