//! The emitter: writes what sops (go-yaml v3) writes: block style, `indent` spaces,
//! go-yaml's quoting rules and literal blocks.

use super::resolve::{is_base60, is_old_bool, resolves_to_string};
use crate::sops::tree::{ListItem, Map, MapItem, Node, Scalar};
use crate::sops::value::format_go_float;

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` with go-yaml's names for the specials.
pub fn format_yaml_float(value: f64) -> String {
    if value.is_nan() {
        return ".nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    // Go's shortest 'g' form decides with precision 6.
    format_go_float(value, -4..6)
}

/// Writes documents as sops (go-yaml v3) does, with `indent` spaces per level. The writer
/// recurses: trees must be within `limits::MAX_DEPTH`, which [`Format`]'s writers check
/// (`tree::check_depth`) and every reader guarantees.
///
/// [`Format`]: super::super::Format
pub fn emit(documents: &[Map], indent: usize) -> String {
    emit_with(documents, indent, &[])
}

/// [`emit`], with `trailer` (the `sops` section) appended to every document — or forming
/// the only document when there is none.
pub fn emit_with(documents: &[Map], indent: usize, trailer: &[MapItem]) -> String {
    let indent = go_yaml_indent(indent);
    let size: usize = documents
        .iter()
        .map(|map| crate::sops::tree::text_size(map.iter().chain(trailer), 0, indent))
        .sum();
    let mut out = String::with_capacity(size + size / 16);
    let empty = [Map::new()];
    let documents = if documents.is_empty() && !trailer.is_empty() {
        &empty[..]
    } else {
        documents
    };
    for (i, map) in documents.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let has_entries = map
            .iter()
            .chain(trailer)
            .any(|item| matches!(item, MapItem::Entry(..)));
        if !has_entries {
            emit_comments_only(map, 0, &mut out);
            out.push_str("{}\n");
            continue;
        }
        let mut emitter = Emitter {
            indent,
            out: &mut out,
        };
        emitter.map(map, 0, false);
        emitter.map(trailer, 0, false);
    }
    out
}

/// Writes a list as a YAML block sequence (for `--extract`).
pub fn emit_list(list: &[ListItem], indent: usize) -> String {
    let mut out = String::new();
    Emitter {
        indent: go_yaml_indent(indent),
        out: &mut out,
    }
    .list(list, 0, false);
    out
}

/// The indent sops writes for a configured one: 0 means sops' default of 4, and go-yaml
/// writes 2 for anything outside 2..=9.
fn go_yaml_indent(indent: usize) -> usize {
    match indent {
        0 => 4,
        2..=9 => indent,
        _ => 2,
    }
}

fn emit_comments_only(map: &Map, col: usize, out: &mut String) {
    for item in map {
        if let MapItem::Comment(text) = item {
            push_comment(out, col, text);
        }
    }
}

fn push_comment(out: &mut String, col: usize, text: &str) {
    pad(out, col);
    out.push('#');
    out.push_str(text);
    out.push('\n');
}

fn pad(out: &mut String, col: usize) {
    out.extend(std::iter::repeat_n(' ', col));
}

struct Emitter<'a> {
    indent: usize,
    out: &'a mut String,
}

impl Emitter<'_> {
    /// go-yaml v3 aligns nested blocks to the next multiple of the indent.
    fn child(&self, col: usize) -> usize {
        self.indent * ((col + self.indent) / self.indent)
    }

    /// Writes a mapping whose keys sit at `col`; with `inline`, the first line continues
    /// the current one (after `- `).
    fn map(&mut self, map: &[MapItem], col: usize, mut inline: bool) {
        for item in map {
            match item {
                MapItem::Comment(text) => {
                    if inline {
                        // Comments cannot follow `- `: they go above the item's next line.
                        self.out.push('\n');
                        inline = false;
                    }
                    push_comment(self.out, col, text);
                }
                MapItem::Entry(key, value) => {
                    if !inline {
                        pad(self.out, col);
                    }
                    inline = false;
                    if key.len() > MAX_SIMPLE_KEY {
                        self.explicit_entry(key, value, col);
                        continue;
                    }
                    self.out.push_str(&key_repr(key));
                    self.out.push(':');
                    self.value(value, col, self.child(col));
                }
            }
        }
    }

    /// Writes `? key` and `: value` (the key already indented to `col`), as go-yaml writes
    /// a key too long to be a simple key; a nested block starts on the `:` line.
    fn explicit_entry(&mut self, key: &str, value: &Node, col: usize) {
        self.out.push_str("? ");
        self.out.push_str(&key_repr(key));
        self.out.push('\n');
        pad(self.out, col);
        self.out.push(':');
        let nested = self.child(col);
        match value {
            Node::Map(map) if map.iter().any(|i| matches!(i, MapItem::Entry(..))) => {
                pad(self.out, nested - col - 1);
                self.map(map, nested, true);
            }
            Node::List(list) if list.iter().any(|i| matches!(i, ListItem::Value(_))) => {
                pad(self.out, nested - col - 1);
                self.list(list, nested, true);
            }
            other => self.value(other, col, nested),
        }
    }

    /// Writes the value of a key at `col` (or of a list item); nested blocks go to
    /// `nested`.
    fn value(&mut self, value: &Node, col: usize, nested: usize) {
        let _ = col;
        match value {
            Node::Scalar(scalar) => self.scalar(scalar, nested),
            Node::Map(map) if !map.iter().any(|i| matches!(i, MapItem::Entry(..))) => {
                self.out.push_str(" {}\n");
                emit_comments_only(map, nested, self.out);
            }
            Node::Map(map) => {
                self.out.push('\n');
                self.map(map, nested, false);
            }
            Node::List(list) if !list.iter().any(|i| matches!(i, ListItem::Value(_))) => {
                self.out.push_str(" []\n");
                for item in list {
                    if let ListItem::Comment(text) = item {
                        push_comment(self.out, nested, text);
                    }
                }
            }
            Node::List(list) => {
                self.out.push('\n');
                self.list(list, nested, false);
            }
        }
    }

    fn list(&mut self, list: &[ListItem], col: usize, mut inline: bool) {
        for item in list {
            match item {
                ListItem::Comment(text) => {
                    if inline {
                        self.out.push('\n');
                        inline = false;
                    }
                    push_comment(self.out, col, text);
                }
                ListItem::Value(value) => {
                    if !inline {
                        pad(self.out, col);
                    }
                    inline = false;
                    self.out.push('-');
                    match value {
                        Node::Map(map) if map.iter().any(|i| matches!(i, MapItem::Entry(..))) => {
                            self.out.push(' ');
                            self.map(map, col + 2, true);
                        }
                        Node::List(items)
                            if items.iter().any(|i| matches!(i, ListItem::Value(_))) =>
                        {
                            self.out.push(' ');
                            self.list(items, col + 2, true);
                        }
                        other => self.value(other, col, col + 2),
                    }
                }
            }
        }
    }

    /// Writes ` <scalar>\n`; literal blocks get their lines at `nested`.
    fn scalar(&mut self, scalar: &Scalar, nested: usize) {
        self.out.push(' ');
        match scalar {
            Scalar::Null => self.out.push_str("null"),
            Scalar::Bool(value) => self.out.push_str(if *value { "true" } else { "false" }),
            Scalar::Int(value) => self.out.push_str(&value.to_string()),
            Scalar::Float(value) => self.out.push_str(&format_yaml_float(*value)),
            Scalar::Number(text) | Scalar::Time(text) => self.out.push_str(text),
            Scalar::Bytes(bytes) => {
                use base64::Engine;
                self.out.push_str("!!binary ");
                self.out
                    .push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
            }
            Scalar::Str(text) => {
                if let Some(block) = literal_block(text, nested) {
                    self.out.push_str(&block);
                    return;
                }
                self.out.push_str(&string_repr(text));
            }
        }
        self.out.push('\n');
    }
}

/// The longest key (in bytes) that go-yaml writes as a simple key (`key: value`); a
/// longer one is written as an explicit key (`? key`, then `: value`). YAML readers take
/// simple keys of at most 1,024 characters.
const MAX_SIMPLE_KEY: usize = 128;

/// A key as go-yaml writes it (the merge key `<<` tagged, as go-yaml does).
fn key_repr(key: &str) -> String {
    if key == "<<" {
        return "!!merge <<".into();
    }
    if key.contains('\n') {
        return double_quoted(key);
    }
    string_repr(key)
}

/// go-yaml v3's choice for a one-line string: plain when it reads back as the same string,
/// double quotes when it would read back as another type, single quotes when only the
/// characters need quoting, double quotes (with escapes) for unprintable characters.
pub fn string_repr(text: &str) -> String {
    if text.is_empty() {
        return "\"\"".into();
    }
    if !text.chars().all(is_printable) {
        return double_quoted(text);
    }
    let resolves_to_other = !resolves_to_string(text) || is_old_bool(text) || is_base60(text);
    if resolves_to_other {
        return double_quoted(text);
    }
    if plain_allowed(text) {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', "''"))
}

/// libyaml's printable set.
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

/// libyaml's rules for a plain scalar in block context.
fn plain_allowed(text: &str) -> bool {
    let bytes = text.as_bytes();
    let first = bytes[0];
    let followed_by_blank = |i: usize| bytes.get(i + 1).is_none_or(|b| *b == b' ' || *b == b'\t');
    if matches!(
        first,
        b',' | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
    ) {
        return false;
    }
    if matches!(first, b'-' | b'?' | b':') && followed_by_blank(0) {
        return false;
    }
    if text.starts_with("---") || text.starts_with("...") {
        return false;
    }
    if first == b' ' || bytes[bytes.len() - 1] == b' ' {
        return false;
    }
    for (i, &b) in bytes.iter().enumerate() {
        if b == b':' && followed_by_blank(i) {
            return false;
        }
        if b == b'#' && i > 0 && matches!(bytes[i - 1], b' ' | b'\t') {
            return false;
        }
        if b == b'\t' {
            return false;
        }
    }
    true
}

/// A double-quoted string with YAML escapes (`\U` for characters beyond the BMP).
fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if is_printable(c) => out.push(c),
            c if (c as u32) <= 0xff => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// A multi-line string as a literal block (`|`, `|-`, `|+`) with its lines at `col`, when
/// go-yaml would write one: not when a line ends in a space or a character is unprintable
/// (then double-quoted). Either way the text ends with a newline.
fn literal_block(text: &str, col: usize) -> Option<String> {
    if !text.contains('\n') {
        return None;
    }
    if !text.chars().all(is_printable)
        || text.contains(" \n")
        || text.ends_with(' ')
        || text.starts_with([' ', '\n'])
    {
        let mut quoted = double_quoted(text);
        quoted.push('\n');
        return Some(quoted);
    }
    let body = text.trim_end_matches('\n');
    let chomp = match text.len() - body.len() {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}\n");
    for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
        if !line.is_empty() {
            pad(&mut out, col);
            out.push_str(line);
        }
        out.push('\n');
    }
    Some(out)
}
