//! ESO's `toYaml`: `sigs.k8s.io/yaml`'s `Marshal`, which encodes the value as JSON and
//! emits that with go-yaml v2 (block style, 2-space indentation, keys in go-yaml's order,
//! strings quoted only when needed, lines folded after column 80), less the final newline.

use std::rc::Rc;
use std::sync::LazyLock;

use regex::Regex;

use crate::func::text::decode_rune;
use crate::gofmt::{go_float_g, json};
use crate::value::{Buf, MAX_VALUE_DEPTH, Meter, Overflow, Value};

type R<'d> = Result<Value<'d>, String>;

const BEST_WIDTH: usize = 80;
const INDENT: i64 = 2;

pub(crate) fn to_yaml<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    // A value JSON cannot encode (NaN) makes Marshal fail, and ESO returns "".
    let mut probe = Buf::new(meter);
    if !json(&mut probe, &a[0], false, false) {
        return crate::value::copy(b"", meter);
    }
    drop(probe);
    let mut e = Emitter {
        out: Buf::new(meter),
        column: 0,
        whitespace: true,
        indention: true,
        open_ended: false,
        indent: -1,
    };
    e.node(&a[0], Ctx::Root, 0)?;
    // The end of the document.
    e.indent = -1;
    e.write_indent();
    if e.open_ended {
        e.indicator("...", true, false, false);
        e.write_indent();
    }
    if e.out.bytes.last() == Some(&b'\n') {
        let n = e.out.bytes.len() - 1;
        e.out.bytes.truncate(n);
    }
    e.out.into_value()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    /// A mapping's value.
    Value,
    /// A sequence's item.
    Item,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Emitter {
    out: Buf,
    column: usize,
    whitespace: bool,
    indention: bool,
    open_ended: bool,
    indent: i64,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_printable(c: char) -> bool {
    let u = u32::from(c);
    c == '\n'
        || (0x20..=0x7e).contains(&u)
        || (0xa0..=0xd7ff).contains(&u)
        || ((0xe000..=0xfffd).contains(&u) && u != 0xfeff)
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push_char(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push(b'\n');
        self.column = 0;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn indicator(&mut self, text: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        for c in text.chars() {
            self.put(c);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
        self.open_ended = false;
    }

    fn node(&mut self, v: &Value<'_>, ctx: Ctx, depth: usize) -> Result<(), String> {
        if depth > MAX_VALUE_DEPTH {
            return Err(Overflow::Depth.message("result"));
        }
        if self.out.overflow.is_some() {
            return Ok(());
        }
        match v {
            Value::Map(m) if !m.is_empty() => {
                let entries: Vec<(&[u8], Value<'_>)> = m
                    .iter()
                    .map(|(k, v)| (k.as_bytes(), str_value(v)))
                    .collect();
                self.mapping(entries, depth)
            }
            Value::Dict(d) if !d.0.borrow().is_empty() => {
                let d = d.0.borrow();
                let entries: Vec<(&[u8], Value<'_>)> =
                    d.iter().map(|(k, v)| (&k.0[..], v.clone())).collect();
                self.mapping(entries, depth)
            }
            Value::List(l) if !l.0.is_empty() => self.sequence(&l.0, ctx, depth),
            Value::Map(_) | Value::Dict(_) | Value::List(_) => {
                let (open, close) = if let Value::List(_) = v {
                    ("[", "]")
                } else {
                    ("{", "}")
                };
                self.indicator(open, true, true, false);
                self.indicator(close, false, false, false);
                Ok(())
            }
            Value::Str(s) => self.string(s, false, ctx == Ctx::Root),
            other => {
                let mut text = Buf::default();
                match other {
                    Value::Float(f) => float(&mut text, *f),
                    _ => {
                        json(&mut text, other, false, false);
                    }
                }
                let text = String::from_utf8_lossy(&text.bytes).into_owned();
                self.scalar(&text, Style::Plain, false, ctx == Ctx::Root);
                Ok(())
            }
        }
    }

    fn mapping(
        &mut self,
        mut entries: Vec<(&[u8], Value<'_>)>,
        depth: usize,
    ) -> Result<(), String> {
        entries.sort_by(|a, b| key_order(a.0, b.0));
        let saved = self.indent;
        self.indent = if self.indent < 0 {
            0
        } else {
            self.indent + INDENT
        };
        for (k, v) in entries {
            self.write_indent();
            self.string(k, true, false)?;
            self.indicator(":", false, false, false);
            self.node(&v, Ctx::Value, depth + 1)?;
        }
        self.indent = saved;
        Ok(())
    }

    fn sequence(&mut self, items: &[Value<'_>], ctx: Ctx, depth: usize) -> Result<(), String> {
        let saved = self.indent;
        let indentless = ctx == Ctx::Value && !self.indention;
        self.indent = if self.indent < 0 {
            0
        } else if indentless {
            self.indent
        } else {
            self.indent + INDENT
        };
        for item in items {
            self.write_indent();
            self.indicator("-", true, false, true);
            self.node(item, Ctx::Item, depth + 1)?;
        }
        self.indent = saved;
        Ok(())
    }

    /// A string, in the style go-yaml picks for it.
    fn string(&mut self, s: &[u8], key: bool, root: bool) -> Result<(), String> {
        // JSON has replaced invalid UTF-8 with U+FFFD.
        let mut text = zeroize::Zeroizing::new(String::with_capacity(s.len()));
        let mut i = 0;
        while i < s.len() {
            let (c, w) = decode_rune(&s[i..]);
            text.push(c.unwrap_or('\u{fffd}'));
            i += w;
        }
        let a = analyze(&text);
        let plain_ok = resolves_to_str(&text);
        let mut style = if text.contains('\n') {
            Style::Literal
        } else if plain_ok {
            Style::Plain
        } else {
            Style::Double
        };
        if style == Style::Plain && !a.block_plain {
            style = Style::Single;
        }
        if style == Style::Single && !a.single {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block || key) {
            style = Style::Double;
        }
        if key && (a.multiline || text.len() > 128) {
            return Err(
                "toYaml: keys longer than 128 bytes or of several lines are not supported".into(),
            );
        }
        if matches!(style, Style::Single | Style::Literal)
            && text.chars().any(|c| is_break(c) && c != '\n')
        {
            return Err("toYaml: line breaks other than \\n are not supported".into());
        }
        self.scalar(&text, style, key, root);
        Ok(())
    }

    fn scalar(&mut self, text: &str, style: Style, key: bool, root: bool) {
        let saved = self.indent;
        self.indent = if self.indent < 0 {
            INDENT
        } else {
            self.indent + INDENT
        };
        let allow_breaks = !key;
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let space_at = |i: usize| chars.get(i) == Some(&' ');
        match style {
            Style::Plain => {
                if !self.whitespace {
                    self.put(' ');
                }
                let mut spaces = false;
                for (i, &c) in chars.iter().enumerate() {
                    if c == ' ' {
                        if allow_breaks && !spaces && self.column > BEST_WIDTH && !space_at(i + 1) {
                            self.write_indent();
                        } else {
                            self.put(c);
                        }
                        spaces = true;
                    } else {
                        self.put(c);
                        self.indention = false;
                        spaces = false;
                    }
                }
                self.whitespace = false;
                self.indention = false;
                if root {
                    self.open_ended = true;
                }
            }
            Style::Single => {
                self.indicator("'", true, false, false);
                let mut spaces = false;
                for (i, &c) in chars.iter().enumerate() {
                    if c == ' ' {
                        if allow_breaks
                            && !spaces
                            && self.column > BEST_WIDTH
                            && i > 0
                            && i + 1 < n
                            && !space_at(i + 1)
                        {
                            self.write_indent();
                        } else {
                            self.put(c);
                        }
                        spaces = true;
                    } else {
                        if c == '\'' {
                            self.put('\'');
                        }
                        self.put(c);
                        self.indention = false;
                        spaces = false;
                    }
                }
                self.indicator("'", false, false, false);
                self.whitespace = false;
                self.indention = false;
            }
            Style::Double => {
                self.indicator("\"", true, false, false);
                let mut spaces = false;
                for (i, &c) in chars.iter().enumerate() {
                    if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                        self.put('\\');
                        let u = u32::from(c);
                        let short = match u {
                            0x00 => Some('0'),
                            0x07 => Some('a'),
                            0x08 => Some('b'),
                            0x09 => Some('t'),
                            0x0a => Some('n'),
                            0x0b => Some('v'),
                            0x0c => Some('f'),
                            0x0d => Some('r'),
                            0x1b => Some('e'),
                            0x22 => Some('"'),
                            0x5c => Some('\\'),
                            0x85 => Some('N'),
                            0xa0 => Some('_'),
                            0x2028 => Some('L'),
                            0x2029 => Some('P'),
                            _ => None,
                        };
                        match short {
                            Some(e) => self.put(e),
                            None => {
                                let hex = if u <= 0xff {
                                    format!("x{u:02X}")
                                } else if u <= 0xffff {
                                    format!("u{u:04X}")
                                } else {
                                    format!("U{u:08X}")
                                };
                                for h in hex.chars() {
                                    self.put(h);
                                }
                            }
                        }
                        spaces = false;
                    } else if c == ' ' {
                        if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i + 1 < n
                        {
                            self.write_indent();
                            if space_at(i + 1) {
                                self.put('\\');
                            }
                        } else {
                            self.put(c);
                        }
                        spaces = true;
                    } else {
                        self.put(c);
                        spaces = false;
                    }
                }
                self.indicator("\"", false, false, false);
                self.whitespace = false;
                self.indention = false;
            }
            Style::Literal => {
                self.indicator("|", true, false, false);
                if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
                    self.indicator("2", false, false, false);
                }
                let last_break = chars.last().is_some_and(|&c| is_break(c));
                let chomp = if !last_break {
                    Some("-")
                } else if n == 1 || is_break(chars[n - 2]) {
                    Some("+")
                } else {
                    None
                };
                if let Some(chomp) = chomp {
                    self.indicator(chomp, false, false, false);
                }
                self.put_break();
                self.indention = true;
                self.whitespace = true;
                let mut breaks = true;
                for &c in &chars {
                    if c == '\n' {
                        self.put_break();
                        self.indention = true;
                        breaks = true;
                    } else {
                        if breaks {
                            self.write_indent();
                        }
                        self.put(c);
                        self.indention = false;
                        breaks = false;
                    }
                }
            }
        }
        self.indent = saved;
    }
}

/// What go-yaml's `yaml_emitter_analyze_scalar` finds in a non-empty string.
struct Analysis {
    multiline: bool,
    block_plain: bool,
    single: bool,
    block: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain: true,
            single: true,
            block: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = i + 1 >= n || matches!(chars[i + 1], ' ' | '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i + 1 == n;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= i + 1 == n;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = matches!(c, ' ' | '\t' | '\0') || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain: true,
        single: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.block_plain = false;
        a.single = false;
    }
    if space_break || special {
        a.block_plain = false;
        a.single = false;
        a.block = false;
    }
    if line_breaks || block_indicators {
        a.block_plain = false;
    }
    a
}

/// Whether go-yaml v2 reads `s`, unquoted, as a string (not null, a bool, a number, a
/// timestamp or a base-60 float), so that it may be written plain.
fn resolves_to_str(s: &str) -> bool {
    static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$").expect("valid")
    });
    static BASE60: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$").expect("valid")
    });
    static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(([Tt][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]+)?(Z|[-+][0-9]{2}:[0-9]{2})?)|( [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]+)?))?$",
        )
        .expect("valid")
    });
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return false;
    }
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return true;
    }
    let plain = s.replace('_', "");
    if go_int(&plain) || FLOAT.is_match(&plain) || TIMESTAMP.is_match(s) || BASE60.is_match(s) {
        return false;
    }
    true
}

/// Whether `strconv.ParseInt(s, 0, 64)` or `ParseUint` accepts `s` (underscores removed).
fn go_int(s: &str) -> bool {
    match crate::literal::go_integer(s) {
        Some((true, m)) => m <= 1 << 63,
        Some((false, m)) => m <= u64::MAX as i128,
        None => false,
    }
}

/// A `float64` as go-yaml writes it after the JSON round trip: what JSON writes as an
/// integer is read back as one; anything else is a float, written by `%g`.
fn float(out: &mut Buf, f: f64) {
    let mut text = Buf::default();
    json(&mut text, &Value::Float(f), false, false);
    let t = String::from_utf8_lossy(&text.bytes).into_owned();
    if go_int(&t) {
        out.extend(t.as_bytes());
    } else {
        go_float_g(out, f);
    }
}

/// A `map[string]string` value as a string value.
fn str_value<'d>(v: &[u8]) -> Value<'d> {
    Value::Str(Rc::new(zeroize::Zeroizing::new(v.to_vec())))
}

/// go-yaml v2's order of mapping keys: runs of digits compare as numbers, letters before
/// other characters... (its `keyList.Less` for strings).
fn key_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Greater, Less};
    let to_chars = |s: &[u8]| -> Vec<char> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < s.len() {
            let (c, w) = decode_rune(&s[i..]);
            out.push(c.unwrap_or('\u{fffd}'));
            i += w;
        }
        out
    };
    let (ar, br) = (to_chars(a), to_chars(b));
    let less = |x: bool| if x { Less } else { Greater };
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return less(bl);
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return less(an < bn);
        }
        if ai != bi {
            return less(ai < bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}
