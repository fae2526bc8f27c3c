//! The JSON store: an order-keeping reader (duplicate keys kept, integers exact) and a
//! writer with Go's escaping and `json.Indent` layout (tab by default).

use crate::error::SopsError;
use crate::limits::MAX_DEPTH;
use crate::sops::tree::{ListItem, Map, MapItem, Node, Scalar, too_deep};
use crate::sops::value::format_go_float;

/// Where byte `at` of `bytes` is, as `line L, column C` (columns count characters): errors
/// show positions, never the text, which may be a secret.
fn position(bytes: &[u8], at: usize) -> String {
    let before = &bytes[..at.min(bytes.len())];
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |n| n + 1);
    let column = 1 + before[line_start..]
        .iter()
        .filter(|b| (**b & 0xc0) != 0x80)
        .count();
    format!("line {line}, column {column}")
}

/// Parses a JSON document whose top level is an object.
pub fn parse(text: &str) -> Result<Map, SopsError> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        text,
        at: 0,
    };
    reader.blank();
    if reader.peek() != Some(b'{') {
        return Err(SopsError::Syntax {
            format: "json",
            message: "the top level must be an object".into(),
        });
    }
    let Node::Map(map) = reader.value(0)? else {
        unreachable!("an object parses to a mapping")
    };
    reader.blank();
    if reader.at != reader.bytes.len() {
        return Err(reader.error(reader.at, "unexpected data after the top-level object"));
    }
    Ok(map)
}

struct Reader<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl Reader<'_> {
    /// A syntax error at byte `at`.
    fn error(&self, at: usize, message: &str) -> SopsError {
        SopsError::Syntax {
            format: "json",
            message: format!("{message} at {}", position(self.bytes, at)),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), SopsError> {
        self.blank();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(self.at, &format!("expected '{}'", byte as char)))
        }
    }

    /// A value inside `depth` open objects and arrays; a value that opens one more than
    /// [`MAX_DEPTH`] is refused before recursing.
    fn value(&mut self, depth: usize) -> Result<Node, SopsError> {
        self.blank();
        if matches!(self.peek(), Some(b'{' | b'[')) && depth >= MAX_DEPTH {
            return Err(SopsError::Syntax {
                format: "json",
                message: too_deep(&format!(" at {}", position(self.bytes, self.at))),
            });
        }
        match self.peek() {
            Some(b'{') => {
                self.at += 1;
                let mut map = Map::new();
                self.blank();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(Node::Map(map));
                }
                loop {
                    self.blank();
                    if self.peek() != Some(b'"') {
                        return Err(self.error(self.at, "expected a string key"));
                    }
                    let key = self.string()?;
                    self.expect(b':')?;
                    let value = self.value(depth + 1)?;
                    map.push(MapItem::Entry(key, value));
                    self.blank();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Node::Map(map));
                        }
                        _ => return Err(self.error(self.at, "expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut list = Vec::new();
                self.blank();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(Node::List(list));
                }
                loop {
                    list.push(ListItem::Value(self.value(depth + 1)?));
                    self.blank();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Node::List(list));
                        }
                        _ => return Err(self.error(self.at, "expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => Ok(Node::Scalar(Scalar::Str(self.string()?))),
            Some(b't') => self.literal("true", Scalar::Bool(true)),
            Some(b'f') => self.literal("false", Scalar::Bool(false)),
            Some(b'n') => self.literal("null", Scalar::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error(self.at, "expected a value")),
        }
    }

    fn literal(&mut self, word: &str, scalar: Scalar) -> Result<Node, SopsError> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(Node::Scalar(scalar))
        } else {
            Err(self.error(self.at, "invalid literal"))
        }
    }

    fn number(&mut self) -> Result<Node, SopsError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = |r: &mut Self| {
            let from = r.at;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.at += 1;
            }
            r.at > from
        };
        if !digits(self) {
            return Err(self.error(self.at, "invalid number"));
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            integer = false;
            if !digits(self) {
                return Err(self.error(self.at, "invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            integer = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !digits(self) {
                return Err(self.error(self.at, "invalid number"));
            }
        }
        let text = &self.text[start..self.at];
        if integer {
            if let Ok(value) = text.parse::<i64>() {
                return Ok(Node::Scalar(Scalar::Int(value)));
            }
            // Beyond i64: kept exactly as written.
            return Ok(Node::Scalar(Scalar::Number(text.to_owned())));
        }
        // A float beyond f64 reads as infinity, which JSON cannot write back (it would come
        // out as `null`): refused, as Go's decoder refuses it.
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Node::Scalar(Scalar::Float(v))),
            Ok(_) => Err(self.error(start, "number out of range")),
            Err(_) => Err(self.error(start, "invalid number")),
        }
    }

    fn string(&mut self) -> Result<String, SopsError> {
        let start = self.at;
        self.at += 1;
        let mut out = String::new();
        loop {
            let run = self.at;
            self.at += scan(&self.bytes[self.at..], b"\"\\");
            out.push_str(&self.text[run..self.at]);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escape = self
                        .peek()
                        .ok_or_else(|| self.error(self.at, "unterminated string"))?;
                    self.at += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let high = self.hex4()?;
                            let c = if (0xd800..0xdc00).contains(&high)
                                && self.bytes[self.at..].starts_with(b"\\u")
                            {
                                self.at += 2;
                                let low = self.hex4()?;
                                if (0xdc00..0xe000).contains(&low) {
                                    char::from_u32(
                                        0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00),
                                    )
                                } else {
                                    None
                                }
                            } else {
                                char::from_u32(high)
                            };
                            out.push(c.unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.error(self.at - 1, "invalid escape")),
                    }
                }
                _ => return Err(self.error(start, "unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SopsError> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error(self.at, "invalid \\u escape"))?;
        let value = u32::from_str_radix(digits, 16)
            .map_err(|_| self.error(self.at, "invalid \\u escape"))?;
        self.at += 4;
        Ok(value)
    }
}

/// Writes `map` as sops does: `indent` spaces per level, or a tab when `None`; a final
/// newline. Comments are dropped (JSON has none). Like the YAML writer it recurses: trees
/// must be within `limits::MAX_DEPTH` (see [`crate::sops::tree::check_depth`]).
pub fn emit(map: &Map, indent: Option<usize>) -> String {
    emit_with(map, indent, &[])
}

/// [`emit`] with `trailer` (the `sops` entry) appended to the object.
pub fn emit_with(map: &Map, indent: Option<usize>, trailer: &[MapItem]) -> String {
    let unit = indent_unit(indent);
    let size = crate::sops::tree::text_size(map.iter().chain(trailer), 0, unit.len());
    let mut out = String::with_capacity(size + size / 16);
    write_entries(map.iter().chain(trailer), &unit, 0, &mut out);
    out.push('\n');
    out
}

/// One level of indentation: `indent` spaces (at most `MAX_INDENT`), or a tab.
fn indent_unit(indent: Option<usize>) -> String {
    indent.map_or_else(|| "\t".to_owned(), |n| " ".repeat(n.min(super::MAX_INDENT)))
}

/// Writes any node (for `--extract` of a list), with a final newline.
pub fn emit_node(node: &Node, indent: Option<usize>) -> String {
    let unit = indent_unit(indent);
    let mut out = String::new();
    write_node(node, &unit, 0, &mut out);
    out.push('\n');
    out
}

fn newline(out: &mut String, unit: &str, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push_str(unit);
    }
}

fn write_map(map: &Map, unit: &str, level: usize, out: &mut String) {
    write_entries(map.iter(), unit, level, out);
}

fn write_entries<'a>(
    items: impl Iterator<Item = &'a MapItem>,
    unit: &str,
    level: usize,
    out: &mut String,
) {
    let mut entries = items.filter_map(|item| match item {
        MapItem::Entry(k, v) => Some((k, v)),
        MapItem::Comment(_) => None,
    });
    let Some(first) = entries.next() else {
        out.push_str("{}");
        return;
    };
    out.push('{');
    for (i, (key, value)) in std::iter::once(first).chain(entries).enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, unit, level + 1);
        write_string(key, out);
        out.push_str(": ");
        write_node(value, unit, level + 1, out);
    }
    newline(out, unit, level);
    out.push('}');
}

fn write_node(node: &Node, unit: &str, level: usize, out: &mut String) {
    match node {
        Node::Map(map) => write_map(map, unit, level, out),
        Node::List(list) => {
            let mut values = list.iter().filter_map(|item| match item {
                ListItem::Value(v) => Some(v),
                ListItem::Comment(_) => None,
            });
            let Some(first) = values.next() else {
                out.push_str("[]");
                return;
            };
            out.push('[');
            for (i, value) in std::iter::once(first).chain(values).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, unit, level + 1);
                write_node(value, unit, level + 1, out);
            }
            newline(out, unit, level);
            out.push(']');
        }
        Node::Scalar(scalar) => write_scalar(scalar, out),
    }
}

fn write_scalar(scalar: &Scalar, out: &mut String) {
    match scalar {
        Scalar::Null => out.push_str("null"),
        Scalar::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        Scalar::Int(value) => out.push_str(&value.to_string()),
        Scalar::Float(value) => out.push_str(&format_json_float(*value)),
        Scalar::Number(text) => out.push_str(text),
        Scalar::Str(text) | Scalar::Time(text) => write_string(text, out),
        Scalar::Bytes(bytes) => write_bytes(bytes, out),
    }
}

/// Go's `encoding/json` float: `'f'` unless the exponent is < -6 or >= 21, then `'e'`
/// with a two-digit minimum exponent. NaN and infinities (invalid JSON) become `null`.
pub fn format_json_float(value: f64) -> String {
    if !value.is_finite() {
        return "null".into();
    }
    format_go_float(value, -6..21)
}

/// Bytes as a JSON string, each invalid UTF-8 byte written as `\ufffd` (as Go does).
fn write_bytes(bytes: &[u8], out: &mut String) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        escape_into(chunk.valid(), out);
        for _ in chunk.invalid() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
}

/// A JSON string with Go's escaping (HTML characters and U+2028/U+2029 escaped).
pub fn write_string(text: &str, out: &mut String) {
    out.push('"');
    escape_into(text, out);
    out.push('"');
}

/// Bytes that need escaping (besides controls): see [`escape_into`].
const ESCAPED: [u8; 6] = [b'"', b'\\', b'<', b'>', b'&', 0xe2];

/// The index of the first byte below 0x20 or in `specials` (the length if none), eight
/// bytes at a time.
fn scan(bytes: &[u8], specials: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let mut hit = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        for &special in specials {
            hit |= has_zero(word ^ (ONES * u64::from(special)));
        }
        if hit != 0 {
            break;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|b| *b < 0x20 || specials.contains(b))
        .unwrap_or(bytes.len() - at)
}

fn escape_into(text: &str, out: &mut String) {
    let bytes = text.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        i += scan(&bytes[i..], &ESCAPED);
        let Some(&b) = bytes.get(i) else { break };
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            b'<' => Some("\\u003c"),
            b'>' => Some("\\u003e"),
            b'&' => Some("\\u0026"),
            0x00..=0x1f => None,
            // U+2028 and U+2029 (E2 80 A8 / E2 80 A9).
            0xe2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                Some(if bytes[i + 2] == 0xa8 {
                    "\\u2028"
                } else {
                    "\\u2029"
                })
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&text[run..i]);
        let width = if b == 0xe2 { 3 } else { 1 };
        match escape {
            Some(e) => out.push_str(e),
            None => out.push_str(&format!("\\u{b:04x}")),
        }
        i += width;
        run = i;
    }
    out.push_str(&text[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_duplicates_and_big_integers() {
        let text = "{\"b\": 1, \"a\": [1.5, \"x<y>&\", true, null, {}, []], \"b\": 9223372036854775808, \"e\": 1e21, \"w\": 2.0}";
        let map = parse(text).unwrap();
        assert_eq!(
            emit(&map, None),
            "{\n\t\"b\": 1,\n\t\"a\": [\n\t\t1.5,\n\t\t\"x\\u003cy\\u003e\\u0026\",\n\t\ttrue,\n\t\tnull,\n\t\t{},\n\t\t[]\n\t],\n\t\"b\": 9223372036854775808,\n\t\"e\": 1e+21,\n\t\"w\": 2\n}\n"
        );
        assert_eq!(emit(&parse("{}").unwrap(), Some(2)), "{}\n");
    }

    #[test]
    fn floats_beyond_f64_are_refused() {
        // Found by the sops_json fuzz target: 1e388 read as infinity and was written back
        // as `null`.
        for text in ["{\"a\":1e388}", "{\"a\": [-1E+400]}"] {
            let error = parse(text).err().expect("refused").to_string();
            assert!(
                error.starts_with("json: number out of range at line 1"),
                "{error}"
            );
        }
        let map = parse("{\"a\":1.7976931348623157e308, \"b\": -0.5e-1}").unwrap();
        assert!(parse(&emit(&map, None)).unwrap() == map);
        assert!(
            parse("{\"a\": 1e-400}").is_ok(),
            "underflow reads as zero, as in Go"
        );
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let objects = |n: usize| format!("{}1{}", "{\"a\": ".repeat(n), "}".repeat(n));
        let arrays = |n: usize| format!("{{\"a\": {}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
        for make in [&objects as &dyn Fn(usize) -> String, &arrays] {
            let map = parse(&make(MAX_DEPTH)).unwrap();
            assert_eq!(parse(&emit(&map, Some(0))).unwrap().len(), 1);
            let error = parse(&make(MAX_DEPTH + 1))
                .err()
                .expect("refused")
                .to_string();
            assert!(
                error.starts_with("json: nesting deeper than 128 levels at line 1, column "),
                "{error}"
            );
            // Far deeper inputs stop at the same place, without exhausting the stack.
            assert_eq!(
                parse(&make(100_000)).err().expect("refused").to_string(),
                error
            );
        }
        assert_eq!(
            parse(&format!("{{\n  \"a\":\n{}", "[".repeat(200)))
                .err()
                .expect("refused")
                .to_string(),
            "json: nesting deeper than 128 levels at line 3, column 128"
        );
    }

    #[test]
    fn errors_show_positions_never_text() {
        for (text, position) in [
            ("{\n  \"password\": \"hunter2", "line 2, column 15"),
            ("{\"a\": hunter2}", "line 1, column 7"),
            ("{\"é\": 1,\n\"b\": x}", "line 2, column 6"),
        ] {
            let error = parse(text).err().expect("refused").to_string();
            assert!(error.ends_with(position), "{error}");
            assert!(
                !error.contains("hunter2") && !error.contains("password"),
                "{error}"
            );
        }
    }

    #[test]
    fn bad_json_is_refused() {
        for bad in [
            "[1]",
            "{\"a\":}",
            "{\"a\": 1",
            "{\"a\": 1} x",
            "{a: 1}",
            "\"s\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let mut out = String::new();
        write_string("a\u{2028}b\u{1}é\"\\", &mut out);
        assert_eq!(out, "\"a\\u2028b\\u0001é\\\"\\\\\"");
        let map = parse("{\"u\": \"\\u00e9\\ud83d\\udd10\"}").unwrap();
        assert_eq!(
            crate::sops::tree::get(&map, "u").unwrap().as_str(),
            Some("é🔐")
        );
    }
}
