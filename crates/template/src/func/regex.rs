//! Sprig's regular expression functions over Go's `regexp` (RE2 syntax), run by the
//! `regex` crate: the pattern is first rewritten so that `\d`, `\w`, `\s` and `\b` are
//! ASCII-only as in Go, and `\Q...\E` is supported. Matching takes linear time; compiled
//! programs are limited in size. Messages never show the pattern (it may be a secret).

use std::rc::Rc;

use regex::bytes::{Regex, RegexBuilder};
use zeroize::Zeroizing;

use super::{bytes_of, int_of};
use crate::func::text::decode_rune;
use crate::value::{Buf, ELEM_COST, Meter, Value, copy};

type R<'d> = Result<Value<'d>, String>;

/// How large a compiled pattern may grow.
const SIZE_LIMIT: usize = 1 << 20;

/// Go's pattern as the `regex` crate reads it.
fn translate(pattern: &[u8]) -> Result<String, String> {
    let pattern = std::str::from_utf8(pattern)
        .map_err(|_| "error parsing regexp: invalid UTF-8".to_string())?;
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    return Err(
                        "error parsing regexp: trailing backslash at end of expression".into(),
                    );
                };
                match e {
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[0-9A-Za-z_]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    's' => out.push_str("[\\t\\n\\f\\r ]"),
                    'S' => out.push_str("[^\\t\\n\\f\\r ]"),
                    'b' | 'B' if !in_class => {
                        out.push_str("(?-u:\\");
                        out.push(e);
                        out.push(')');
                    }
                    'Q' => {
                        // A literal up to `\E` or the end.
                        let rest = chars.as_str();
                        let (lit, after) = rest.split_once("\\E").unwrap_or((rest, ""));
                        out.push_str(&regex::escape(lit));
                        chars = after.chars();
                    }
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal.
                let rest = chars.as_str();
                for prefix in ["^]", "]", "^"] {
                    if let Some(after) = rest.strip_prefix(prefix) {
                        out.push_str(&prefix.replace(']', "\\]"));
                        chars = after.chars();
                        break;
                    }
                }
            }
            '[' if chars.as_str().starts_with(':') => {
                // A POSIX class inside a class: copied up to its `:]`.
                let rest = chars.as_str();
                let end = rest.find(":]").map_or(rest.len(), |i| i + 2);
                out.push('[');
                out.push_str(&rest[..end]);
                chars = rest[end..].chars();
            }
            '[' => out.push_str("\\["),
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Go's `regexp.Compile`.
fn compile(pattern: &[u8]) -> Result<Regex, String> {
    let translated = Zeroizing::new(translate(pattern)?);
    RegexBuilder::new(&translated)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "error parsing regexp: expression too large".into(),
            _ => "error parsing regexp: invalid or unsupported syntax".into(),
        })
}

/// Go's `regexp.MustCompile`, whose panic Sprig's functions let through.
fn must_compile(pattern: &[u8]) -> Result<Regex, String> {
    compile(pattern).map_err(|e| format!("regexp: Compile: {e}"))
}

/// The width of the character at `s[at..]`, 1 past the end.
fn width_at(s: &[u8], at: usize) -> usize {
    match decode_rune(&s[at.min(s.len())..]) {
        (_, 0) => 1,
        (_, w) => w,
    }
}

/// Go's `allMatches`: at most `n` matches (all when `n` < 0), with no empty match right
/// after another match.
fn all_matches(re: &Regex, s: &[u8], n: i64, meter: &Meter) -> Result<Vec<(usize, usize)>, String> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut prev_end = None;
    while out.len() < n && pos <= s.len() {
        let Some(m) = re.find_at(s, pos) else { break };
        let mut accept = true;
        if m.end() == pos {
            if Some(m.start()) == prev_end {
                accept = false;
            }
            pos += width_at(s, pos);
        } else {
            pos = m.end();
        }
        prev_end = Some(m.end());
        if accept {
            meter.charge(ELEM_COST)?;
            out.push((m.start(), m.end()));
        }
    }
    Ok(out)
}

/// Go's `Regexp.ReplaceAll` (`literal`: `ReplaceAllLiteral`).
fn replace_all<'d>(re: &Regex, src: &[u8], repl: &[u8], literal: bool, meter: &Rc<Meter>) -> R<'d> {
    let mut out = Buf::new(meter);
    let mut last_end = 0;
    let mut search = 0;
    let mut caps = re.capture_locations();
    while search <= src.len() && out.overflow.is_none() {
        let Some(m) = re.captures_read_at(&mut caps, src, search) else {
            break;
        };
        out.extend(&src[last_end..m.start()]);
        if m.end() > last_end || m.start() == 0 {
            if literal {
                out.extend(repl);
            } else if let Some(c) = re.captures_at(src, m.start()) {
                let mut expanded = Zeroizing::new(Vec::new());
                c.expand(repl, &mut expanded);
                out.extend(&expanded);
            }
        }
        last_end = m.end();
        let width = width_at(src, search);
        search = if search + width > m.end() {
            search + width
        } else if search + 1 > m.end() {
            search + 1
        } else {
            m.end()
        };
    }
    out.extend(&src[last_end.min(src.len())..]);
    out.into_value()
}

fn strings<'d>(s: &[u8], spans: &[(usize, usize)], meter: &Rc<Meter>) -> R<'d> {
    let mut out = Vec::with_capacity(spans.len());
    for &(a, b) in spans {
        out.push(copy(&s[a..b], meter)?);
    }
    Value::new_list(out, meter)
}

/// Go's `Regexp.Split`.
fn split<'d>(re: &Regex, pattern: &[u8], s: &[u8], n: i64, meter: &Rc<Meter>) -> R<'d> {
    if n == 0 {
        return Value::new_list(Vec::new(), meter);
    }
    if !pattern.is_empty() && s.is_empty() {
        return Value::new_list(vec![copy(b"", meter)?], meter);
    }
    let matches = all_matches(re, s, n, meter)?;
    let mut spans = Vec::with_capacity(matches.len() + 1);
    let (mut beg, mut end) = (0, 0);
    for (start, stop) in matches {
        if n > 0 && spans.len() as i64 == n - 1 {
            break;
        }
        end = start;
        if stop != 0 {
            spans.push((beg, end));
        }
        beg = stop;
    }
    if end != s.len() {
        spans.push((beg, s.len()));
    }
    strings(s, &spans, meter)
}

pub(crate) fn regex_match<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    // Sprig ignores a bad pattern: no match.
    let re = compile(bytes_of(&a[0]));
    Ok(Value::Bool(re.is_ok_and(|re| re.is_match(bytes_of(&a[1])))))
}

pub(crate) fn must_regex_match<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    let re = compile(bytes_of(&a[0]))?;
    Ok(Value::Bool(re.is_match(bytes_of(&a[1]))))
}

fn find_first<'d>(re: &Regex, s: &[u8], meter: &Rc<Meter>) -> R<'d> {
    copy(re.find(s).map_or(&b""[..], |m| m.as_bytes()), meter)
}

pub(crate) fn regex_find<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    find_first(&must_compile(bytes_of(&a[0]))?, bytes_of(&a[1]), meter)
}

pub(crate) fn must_regex_find<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    find_first(&compile(bytes_of(&a[0]))?, bytes_of(&a[1]), meter)
}

fn find_all<'d>(re: &Regex, a: &[Value<'d>], meter: &Rc<Meter>) -> R<'d> {
    let s = bytes_of(&a[1]);
    let spans = all_matches(re, s, int_of(&a[2]), meter)?;
    strings(s, &spans, meter)
}

pub(crate) fn regex_find_all<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    find_all(&must_compile(bytes_of(&a[0]))?, &a, meter)
}

pub(crate) fn must_regex_find_all<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    find_all(&compile(bytes_of(&a[0]))?, &a, meter)
}

pub(crate) fn regex_replace_all<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let re = must_compile(bytes_of(&a[0]))?;
    replace_all(&re, bytes_of(&a[1]), bytes_of(&a[2]), false, meter)
}

pub(crate) fn must_regex_replace_all<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let re = compile(bytes_of(&a[0]))?;
    replace_all(&re, bytes_of(&a[1]), bytes_of(&a[2]), false, meter)
}

pub(crate) fn regex_replace_all_literal<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let re = must_compile(bytes_of(&a[0]))?;
    replace_all(&re, bytes_of(&a[1]), bytes_of(&a[2]), true, meter)
}

pub(crate) fn must_regex_replace_all_literal<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let re = compile(bytes_of(&a[0]))?;
    replace_all(&re, bytes_of(&a[1]), bytes_of(&a[2]), true, meter)
}

pub(crate) fn regex_split<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let pattern = bytes_of(&a[0]);
    split(
        &must_compile(pattern)?,
        pattern,
        bytes_of(&a[1]),
        int_of(&a[2]),
        meter,
    )
}

pub(crate) fn must_regex_split<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let pattern = bytes_of(&a[0]);
    split(
        &compile(pattern)?,
        pattern,
        bytes_of(&a[1]),
        int_of(&a[2]),
        meter,
    )
}

/// Go's `regexp.QuoteMeta`: a backslash before each of `\.+*?()|[]{}^$`.
pub(crate) fn regex_quote_meta<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let mut out = Buf::new(meter);
    for &b in bytes_of(&a[0]) {
        if b"\\.+*?()|[]{}^$".contains(&b) {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.into_value()
}
