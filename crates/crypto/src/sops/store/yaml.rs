//! The YAML store: a comment-aware reader built on `saphyr-parser` events (comments are
//! recovered from the text between events) that resolves scalars as go-yaml v3 does, and
//! an emitter that writes what sops (go-yaml v3) writes: block style, `indent` spaces,
//! go-yaml's quoting rules and literal blocks.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use crate::error::SopsError;
use crate::limits::{self, MAX_ALIAS_NODES, MAX_DEPTH};
use crate::sops::tree::{ListItem, Map, MapItem, Node, Scalar, too_deep};
use crate::sops::value::{format_go_float, normalize_time};

fn syntax(message: impl Into<String>) -> SopsError {
    SopsError::Syntax {
        format: "yaml",
        message: message.into(),
    }
}

/// A comment found between two events.
struct Comment {
    col: usize,
    text: String,
    /// On the same line as a scalar that ended an item: sops puts it before that item.
    trailing: bool,
    /// On the same line as other content (e.g. `key: # comment`).
    inline: bool,
}

/// How large a node is: what an alias to it would copy.
#[derive(Clone, Copy, Default)]
struct Size {
    /// Levels of mappings and lists (0 for a scalar).
    height: usize,
    /// Mappings, lists, keys and scalars.
    nodes: usize,
    /// Bytes of keys and scalars.
    bytes: usize,
}

impl Size {
    /// A scalar (or a key) of `len` bytes.
    fn scalar(len: usize) -> Self {
        Self {
            height: 0,
            nodes: 1,
            bytes: len,
        }
    }

    /// An empty mapping or list.
    fn collection() -> Self {
        Self {
            height: 1,
            nodes: 1,
            bytes: 0,
        }
    }

    /// Adds a child of this collection.
    fn add_child(&mut self, child: Size) {
        self.height = self.height.max(child.height + 1);
        self.nodes = self.nodes.saturating_add(child.nodes);
        self.bytes = self.bytes.saturating_add(child.bytes);
    }
}

enum Frame {
    Map {
        items: Map,
        key: Option<(String, usize)>,
        col: usize,
        anchor: usize,
        /// Line of each key, for duplicate-key errors.
        seen: HashMap<String, usize>,
        size: Size,
    },
    List {
        items: Vec<ListItem>,
        col: usize,
        anchor: usize,
        size: Size,
    },
}

impl Frame {
    fn col(&self) -> usize {
        match self {
            Frame::Map { col, .. } | Frame::List { col, .. } => *col,
        }
    }

    fn size_mut(&mut self) -> &mut Size {
        match self {
            Frame::Map { size, .. } | Frame::List { size, .. } => size,
        }
    }

    fn push_comments(&mut self, comments: impl Iterator<Item = Comment>) {
        for comment in comments {
            // A comment on the line of the item just finished goes before that item.
            let before_last = comment.trailing;
            match self {
                Frame::Map { items, key, .. } => {
                    let at = match (before_last, key.is_none()) {
                        (true, true) => {
                            last_value_index(items.iter().map(|i| matches!(i, MapItem::Entry(..))))
                        }
                        _ => None,
                    };
                    let item = MapItem::Comment(comment.text);
                    match at {
                        Some(at) => items.insert(at, item),
                        None => items.push(item),
                    }
                }
                Frame::List { items, .. } => {
                    let at = if before_last {
                        last_value_index(items.iter().map(|i| matches!(i, ListItem::Value(_))))
                    } else {
                        None
                    };
                    let item = ListItem::Comment(comment.text);
                    match at {
                        Some(at) => items.insert(at, item),
                        None => items.push(item),
                    }
                }
            }
        }
    }
}

fn last_value_index(
    is_value: impl DoubleEndedIterator<Item = bool> + ExactSizeIterator,
) -> Option<usize> {
    let len = is_value.len();
    is_value
        .rev()
        .position(|v| v)
        .map(|from_end| len - 1 - from_end)
}

/// Maps character indices (what the parser reports) to byte offsets, moving forward.
struct Cursor<'a> {
    text: &'a str,
    ascii: bool,
    chars: usize,
    bytes: usize,
}

impl Cursor<'_> {
    fn byte_of(&mut self, char_index: usize) -> usize {
        if self.ascii {
            return char_index.min(self.text.len());
        }
        if char_index < self.chars {
            self.chars = 0;
            self.bytes = 0;
        }
        let mut iter = self.text[self.bytes..].char_indices();
        while self.chars < char_index {
            match iter.next() {
                Some((_, c)) => {
                    self.bytes += c.len_utf8();
                    self.chars += 1;
                }
                None => break,
            }
        }
        self.bytes
    }
}

/// Finds the comments in `text[start..end]`, the text between two events. A comment
/// with something else before it on its line trails that item; with `after_value`, the
/// item just finished.
fn gap_comments(text: &str, start: usize, end: usize, after_value: bool, out: &mut Vec<Comment>) {
    let gap = &text[start..end];
    let mut from = 0;
    while let Some(found) = gap[from..].find('#') {
        let at = start + from + found;
        let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
        let before = &text[line_start..at];
        let line_end = text[at..].find('\n').map_or(text.len(), |n| at + n);
        let preceded_by_blank = before
            .chars()
            .next_back()
            .is_none_or(|c| c == ' ' || c == '\t');
        if preceded_by_blank {
            let inline = !before.trim().is_empty();
            out.push(Comment {
                col: before.chars().count(),
                text: text[at + 1..line_end]
                    .trim_end_matches([' ', '\t', '\r'])
                    .to_owned(),
                trailing: inline && after_value,
                inline,
            });
        }
        if line_end >= end {
            break;
        }
        from = line_end - start;
    }
}

/// The byte after the closing quote of the quoted scalar starting at `start`.
fn quoted_end(text: &str, start: usize, quote: u8) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Parses a YAML stream into documents (each must be a mapping, or empty).
pub fn parse(text: &str) -> Result<Vec<Map>, SopsError> {
    match super::fastyaml::parse(text) {
        Some(documents) => Ok(documents),
        None => parse_events(text),
    }
}

/// The general reader, on `saphyr-parser` events.
pub(crate) fn parse_events(text: &str) -> Result<Vec<Map>, SopsError> {
    let mut reader = Reader {
        text,
        cursor: Cursor {
            text,
            ascii: text.is_ascii(),
            chars: 0,
            bytes: 0,
        },
        stack: Vec::new(),
        anchors: HashMap::new(),
        copied: Size::default(),
        pending: Vec::new(),
        documents: Vec::new(),
        document: None,
        last_end: 0,
        last_was_value: false,
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, span) = match parser.next_event() {
            Some(Ok(pair)) => pair,
            Some(Err(error)) => {
                let marker = error.marker();
                return Err(syntax(format!(
                    "line {}, column {}: {}",
                    marker.line(),
                    marker.col() + 1,
                    error.info()
                )));
            }
            None => break,
        };
        if matches!(event, Event::StreamEnd) {
            break;
        }
        reader.event(event, span)?;
    }
    Ok(reader.documents)
}

struct Reader<'a> {
    text: &'a str,
    cursor: Cursor<'a>,
    /// The open collections, outermost first: never more than [`MAX_DEPTH`].
    stack: Vec<Frame>,
    /// Anchored nodes (copies, for the aliases to come) and their sizes.
    anchors: HashMap<usize, (Node, Size)>,
    /// What anchors and aliases copied so far, bounded by [`MAX_ALIAS_NODES`] nodes and
    /// the size of a SOPS file: an alias bomb stops here instead of exhausting memory.
    copied: Size,
    pending: Vec<Comment>,
    documents: Vec<Map>,
    /// The document being read, until its root mapping starts (and after it ends).
    document: Option<Map>,
    last_end: usize,
    last_was_value: bool,
}

impl Reader<'_> {
    fn comments_before(&mut self, span: &Span) {
        let start = self.cursor.byte_of(span.start.index());
        if start > self.last_end && self.text[self.last_end..start].contains('#') {
            gap_comments(
                self.text,
                self.last_end,
                start,
                self.last_was_value,
                &mut self.pending,
            );
        }
        let end = self.cursor.byte_of(span.end.index());
        // The parser's spans of quoted scalars with escapes and of flow-collection ends
        // can run on over what follows (a trailing comment): end them where they end.
        let end = match self.text.as_bytes().get(start) {
            Some(b']' | b'}') => start + 1,
            Some(&quote @ (b'"' | b'\'')) => quoted_end(self.text, start, quote).unwrap_or(end),
            _ => end,
        };
        self.last_end = self.last_end.max(end);
    }

    /// Before a nested collection opens: comments on the key's line stay with the parent,
    /// the ones below it belong to the new collection (returned).
    fn split_for_child(&mut self) -> Vec<Comment> {
        if matches!(self.stack.last(), Some(Frame::List { .. })) {
            // Comments above `- ` belong to the list.
            self.flush_comments(false);
            return Vec::new();
        }
        let at = self
            .pending
            .iter()
            .position(|c| !c.inline)
            .unwrap_or(self.pending.len());
        let below = self.pending.split_off(at);
        self.flush_comments(false);
        below
    }

    /// Hands pending comments to the innermost open container, keeping those indented
    /// less than a closing container for its parent.
    fn flush_comments(&mut self, closing: bool) {
        if self.pending.is_empty() {
            return;
        }
        let Some(frame) = self.stack.last_mut() else {
            return;
        };
        let split = if closing {
            let col = frame.col();
            self.pending
                .iter()
                .position(|c| c.col < col)
                .unwrap_or(self.pending.len())
        } else {
            self.pending.len()
        };
        let rest = self.pending.split_off(split);
        let mine = std::mem::replace(&mut self.pending, rest);
        if let Some(frame) = self.stack.last_mut() {
            frame.push_comments(mine.into_iter());
        }
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), SopsError> {
        self.comments_before(&span);
        self.last_was_value = false;
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => Ok(()),
            Event::DocumentStart(_) => {
                self.document = Some(Map::new());
                Ok(())
            }
            Event::DocumentEnd => {
                let mut map = self.document.take().unwrap_or_default();
                map.extend(self.pending.drain(..).map(|c| MapItem::Comment(c.text)));
                self.documents.push(map);
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.check_depth(1, span.start.line())?;
                if self.stack.is_empty() {
                    // The document's root: it takes the comments read so far.
                    let mut items = self.document.take().unwrap_or_default();
                    items.extend(self.pending.drain(..).map(|c| MapItem::Comment(c.text)));
                    self.stack.push(Frame::Map {
                        items,
                        key: None,
                        col: span.start.col(),
                        anchor,
                        seen: HashMap::new(),
                        size: Size::collection(),
                    });
                    return Ok(());
                }
                let below = self.split_for_child();
                self.start_node(span.start.line())?;
                self.stack.push(Frame::Map {
                    items: below
                        .into_iter()
                        .map(|c| MapItem::Comment(c.text))
                        .collect(),
                    key: None,
                    col: span.start.col(),
                    anchor,
                    seen: HashMap::new(),
                    size: Size::collection(),
                });
                Ok(())
            }
            Event::SequenceStart(anchor, _) => {
                if self.stack.is_empty() {
                    return Err(syntax(format!(
                        "line {}: YAML documents that are sequences are not supported",
                        span.start.line()
                    )));
                }
                self.check_depth(1, span.start.line())?;
                let below = self.split_for_child();
                self.start_node(span.start.line())?;
                self.stack.push(Frame::List {
                    items: below
                        .into_iter()
                        .map(|c| ListItem::Comment(c.text))
                        .collect(),
                    col: span.start.col(),
                    anchor,
                    size: Size::collection(),
                });
                Ok(())
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.flush_comments(true);
                let frame = self
                    .stack
                    .pop()
                    .ok_or_else(|| syntax("unbalanced collection"))?;
                let (node, anchor, size) = match frame {
                    Frame::Map {
                        items,
                        anchor,
                        size,
                        ..
                    } => (Node::Map(items), anchor, size),
                    Frame::List {
                        items,
                        anchor,
                        size,
                        ..
                    } => (Node::List(items), anchor, size),
                };
                if anchor != 0 {
                    self.copy(size, span.end.line())?;
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                if self.stack.is_empty() {
                    let Node::Map(map) = node else {
                        unreachable!("only a mapping can be a root")
                    };
                    self.document = Some(map);
                    return Ok(());
                }
                self.complete(node, size)
            }
            Event::Alias(id) => {
                self.flush_comments(false);
                let line = span.start.line();
                let size = self
                    .anchors
                    .get(&id)
                    .map(|(_, size)| *size)
                    .ok_or_else(|| syntax(format!("line {line}: unknown alias")))?;
                // The copy must fit where it goes, and in what aliases may copy at all.
                self.check_depth(size.height, line)?;
                self.copy(size, line)?;
                let node = self.anchors[&id].0.clone();
                self.scalar_or_alias(node, size, None, line)
            }
            Event::Scalar(value, style, anchor, tag) => {
                let line = span.start.line();
                if self.stack.is_empty() {
                    if style == ScalarStyle::Plain
                        && matches!(resolve_plain(&value), Ok(Scalar::Null))
                    {
                        return Ok(());
                    }
                    return Err(syntax(format!(
                        "line {line}: YAML documents that are values are not supported"
                    )));
                }
                self.flush_comments(false);
                // A key is kept as written; a value is typed.
                let is_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                if is_key {
                    let key = key_text(&value, style, tag.as_deref(), line)?;
                    let size = Size::scalar(key.len());
                    return self.scalar_or_alias(Node::str(String::new()), size, Some(key), line);
                }
                let size = Size::scalar(value.len());
                let scalar = typed_scalar(&value, style, tag.as_deref(), line)?;
                let node = Node::Scalar(scalar);
                if anchor != 0 {
                    self.copy(size, line)?;
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                self.scalar_or_alias(node, size, None, line)
            }
        }
    }

    /// A collection starts where a key is expected: not supported by sops.
    fn start_node(&mut self, line: usize) -> Result<(), SopsError> {
        if let Some(Frame::Map { key: None, .. }) = self.stack.last()
            && self.stack.len() > 1
        {
            return Err(SopsError::Unsupported(format!(
                "line {line}: Only string keys are supported (found a complex key)"
            )));
        }
        Ok(())
    }

    /// Fails when `height` more levels would open below the current ones and nest
    /// deeper than [`MAX_DEPTH`] (the root mapping counting as the first level).
    fn check_depth(&self, height: usize, line: usize) -> Result<(), SopsError> {
        if self.stack.len().saturating_add(height) > MAX_DEPTH {
            return Err(syntax(too_deep(&format!(" at line {line}"))));
        }
        Ok(())
    }

    /// Accounts for a copy of a node of `size` (an anchor keeps one, each alias makes
    /// one), failing once anchors and aliases copied more than [`MAX_ALIAS_NODES`] nodes
    /// or more text than a SOPS file may hold.
    fn copy(&mut self, size: Size, line: usize) -> Result<(), SopsError> {
        self.copied.nodes = self.copied.nodes.saturating_add(size.nodes);
        self.copied.bytes = self.copied.bytes.saturating_add(size.bytes);
        if self.copied.nodes > MAX_ALIAS_NODES {
            return Err(syntax(format!(
                "YAML anchors and aliases copy more than {MAX_ALIAS_NODES} nodes at line {line}"
            )));
        }
        if let Err(too_large) = limits::SOPS_FILE.check(self.copied.bytes) {
            return Err(syntax(format!(
                "YAML anchors and aliases make the document {too_large} at line {line}"
            )));
        }
        Ok(())
    }

    fn scalar_or_alias(
        &mut self,
        node: Node,
        size: Size,
        key: Option<String>,
        line: usize,
    ) -> Result<(), SopsError> {
        if let Some(key) = key {
            let Some(Frame::Map {
                key: slot,
                seen,
                size: map_size,
                ..
            }) = self.stack.last_mut()
            else {
                unreachable!("keys only occur in mappings")
            };
            // The key's text is not shown: errors give positions only.
            if let Some(first) = seen.insert(key.clone(), line) {
                return Err(syntax(format!(
                    "line {line}: mapping key already defined at line {first}"
                )));
            }
            map_size.add_child(size);
            *slot = Some((key, line));
            return Ok(());
        }
        self.last_was_value = true;
        self.complete(node, size)
    }

    /// Adds a finished node of `size` to its parent.
    fn complete(&mut self, node: Node, size: Size) -> Result<(), SopsError> {
        if let Some(frame) = self.stack.last_mut() {
            frame.size_mut().add_child(size);
        }
        match self.stack.last_mut() {
            Some(Frame::Map { items, key, .. }) => {
                let Some((key, _)) = key.take() else {
                    return Err(SopsError::Unsupported(
                        "Only string keys are supported (found a complex key)".into(),
                    ));
                };
                // A document that is a plain scalar, or a null document.
                items.push(MapItem::Entry(key, node));
                Ok(())
            }
            Some(Frame::List { items, .. }) => {
                items.push(ListItem::Value(node));
                Ok(())
            }
            None => Err(syntax("value outside a document")),
        }
    }
}

/// The text of a mapping key; sops supports string keys only.
fn key_text(
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
fn typed_scalar(
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
fn resolves_to_string(text: &str) -> bool {
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
/// [`Format`]: super::Format
pub fn emit(documents: &[Map], indent: usize) -> String {
    emit_with(documents, indent, &[])
}

/// [`emit`], with `trailer` (the `sops` section) appended to every document — or forming
/// the only document when there is none.
pub fn emit_with(documents: &[Map], indent: usize, trailer: &[MapItem]) -> String {
    let indent = go_yaml_indent(indent);
    let mut out = String::with_capacity(documents.iter().map(Vec::len).sum::<usize>() * 64);
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
                    self.out.push_str(&key_repr(key));
                    self.out.push(':');
                    self.value(value, col, self.child(col));
                }
            }
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

fn is_old_bool(text: &str) -> bool {
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
fn is_base60(text: &str) -> bool {
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
/// go-yaml would write one: not when a line ends in a space or a character is unprintable.
fn literal_block(text: &str, col: usize) -> Option<String> {
    if !text.contains('\n') {
        return None;
    }
    if !text.chars().all(is_printable)
        || text.contains(" \n")
        || text.ends_with(' ')
        || text.starts_with([' ', '\n'])
    {
        return Some(double_quoted(text));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_go_formats_them() {
        assert_eq!(format_yaml_float(1.0), "1");
        assert_eq!(format_yaml_float(6.02e23), "6.02e+23");
        assert_eq!(format_yaml_float(1e6), "1e+06");
        assert_eq!(format_yaml_float(123456.0), "123456");
        assert_eq!(format_yaml_float(0.0001), "0.0001");
        assert_eq!(format_yaml_float(0.00001), "1e-05");
        assert_eq!(format_yaml_float(2.71), "2.71");
        assert_eq!(format_yaml_float(f64::NEG_INFINITY), "-.inf");
    }

    #[test]
    fn scalars_resolve_as_go_yaml_does() {
        assert!(matches!(resolve_plain("0755"), Ok(Scalar::Int(493))));
        assert!(matches!(resolve_plain("0x1F"), Ok(Scalar::Int(31))));
        assert!(matches!(resolve_plain("1_000"), Ok(Scalar::Int(1000))));
        assert!(matches!(resolve_plain("+12"), Ok(Scalar::Int(12))));
        assert!(matches!(resolve_plain("1e3"), Ok(Scalar::Float(f)) if f == 1000.0));
        assert!(matches!(resolve_plain("yes"), Ok(Scalar::Str(_))));
        assert!(matches!(resolve_plain("~"), Ok(Scalar::Null)));
        assert!(
            matches!(resolve_plain("2024-01-15"), Ok(Scalar::Time(t)) if t == "2024-01-15T00:00:00Z")
        );
        assert!(matches!(
            resolve_plain("18446744073709551615"),
            Err(SopsError::Unsupported(_))
        ));
    }

    #[test]
    fn strings_are_quoted_like_go_yaml() {
        for (text, expected) in [
            ("plain", "plain"),
            ("123", "\"123\""),
            ("true", "\"true\""),
            ("y", "\"y\""),
            ("null", "\"null\""),
            ("a: b", "'a: b'"),
            (" lead", "' lead'"),
            ("#hash", "'#hash'"),
            ("it's", "it's"),
            ("Grüße 🔐", "\"Grüße \\U0001F510\""),
            ("", "\"\""),
            ("1:20", "\"1:20\""),
        ] {
            assert_eq!(string_repr(text), expected, "{text}");
        }
    }

    #[test]
    fn comments_keep_their_places() {
        let text = "# top\na: 1 # inline\nb:\n    # inside b\n    c: \"x # not\"\n    d: |\n        # not a comment\n    # foot of b\n# before e\ne:\n    - x\n    # between\n    - z\n";
        let docs = parse(text).unwrap();
        let out = emit(&docs, 4);
        assert_eq!(
            out,
            "# top\n# inline\na: 1\nb:\n    # inside b\n    c: 'x # not'\n    d: |\n        # not a comment\n    # foot of b\n# before e\ne:\n    - x\n    # between\n    - z\n"
        );
    }

    /// `n` levels of block mappings (the document's root being the first).
    fn block_maps(n: usize, indent: usize) -> String {
        let mut text = String::new();
        for i in 0..n - 1 {
            text.push_str(&" ".repeat(i * indent));
            text.push_str("k:\n");
        }
        text.push_str(&" ".repeat((n - 1) * indent));
        text.push_str("k: x\n");
        text
    }

    fn too_deep(result: Result<Vec<Map>, SopsError>) -> String {
        match result {
            Err(error @ SopsError::Syntax { .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains("nesting deeper than 128 levels at line "),
                    "{message}"
                );
                message
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a document deeper than the limit was read"),
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_by_both_readers() {
        // Block mappings (the fast reader's subset), block sequences (the general
        // reader's), flow collections: MAX_DEPTH levels are read, one more is refused.
        let sequences = |n: usize| format!("a:\n{}x\n", "- ".repeat(n - 1));
        let flow = |n: usize| format!("a: {}x{}\n", "[".repeat(n - 1), "]".repeat(n - 1));
        for make in [
            &(|n| block_maps(n, 2)) as &dyn Fn(usize) -> String,
            &(|n| block_maps(n, 1)),
            &sequences,
            &flow,
        ] {
            let fits = make(MAX_DEPTH);
            let docs = parse(&fits).unwrap();
            assert!(docs == parse_events(&fits).unwrap());
            assert!(crate::sops::tree::check_depth(&docs).is_ok());
            let written = emit(&docs, 2);
            assert!(parse(&written).unwrap() == docs);
            too_deep(parse(&make(MAX_DEPTH + 1)));
            too_deep(parse_events(&make(MAX_DEPTH + 1)));
        }
        assert!(super::super::fastyaml::parse(&block_maps(MAX_DEPTH - 1, 2)).is_some());
        assert!(super::super::fastyaml::parse(&block_maps(MAX_DEPTH + 1, 2)).is_none());
        // The line of the first level too many, never the text.
        assert_eq!(
            too_deep(parse(&block_maps(200, 2))),
            "yaml: nesting deeper than 128 levels at line 129"
        );
        // Far deeper inputs stop there too, without exhausting the stack.
        too_deep(parse(&sequences(50_000)));
        too_deep(parse(&block_maps(5_000, 1)));
        too_deep(parse(&format!("a: {}\n", "[".repeat(250))));
    }

    #[test]
    fn aliases_count_against_depth_and_copy_limits() {
        let flow = |n: usize, inner: &str| format!("{}{inner}{}", "[".repeat(n), "]".repeat(n));
        // An anchored list 100 levels deep, aliased 28 levels down: 1 + 28 + 100 > 128.
        let deep = format!("a: &x {}\nb: {}\n", flow(100, "v"), flow(28, "*x"));
        too_deep(parse(&deep));
        let fits = format!("a: &x {}\nb: {}\n", flow(100, "v"), flow(27, "*x"));
        assert_eq!(parse(&fits).unwrap().len(), 1);
        // A small alias bomb (ten copies per level): refused once anchors and aliases
        // copied a million nodes, long before the ten million of its full expansion.
        let mut bomb = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..7 {
            let aliases = vec![format!("*l{}", level - 1); 10].join(", ");
            bomb.push_str(&format!("l{level}: &l{level} [{aliases}]\n"));
        }
        let error = parse(&bomb).err().expect("the alias bomb was expanded");
        assert_eq!(
            error.to_string(),
            "yaml: YAML anchors and aliases copy more than 1000000 nodes at line 6"
        );
        // Big scalars copied by aliases count by their size.
        let big = "x".repeat(1 << 20);
        let mut text = format!("a: &a \"{big}\"\nb: [");
        text.push_str(&vec!["*a"; 300].join(", "));
        text.push_str("]\n");
        let error = parse(&text).err().expect("aliases copied 300 MiB");
        assert!(
            error
                .to_string()
                .contains("make the document larger than 256 MiB, the maximum for a SOPS file"),
            "{error}"
        );
        // A handful of aliases, as real files have them, is fine.
        let docs = parse("base: &b {x: 1, y: [1, 2]}\none: *b\ntwo: *b\n").unwrap();
        assert_eq!(docs[0].len(), 3);
    }

    #[test]
    fn errors_show_positions_never_text() {
        for (text, expected) in [
            (
                "secret-key: 1\nsecret-key: 2\n",
                "line 2: mapping key already defined at line 1",
            ),
            ("a: \"hunter2\n", "line"),
            ("a: [hunter2\n", "line"),
        ] {
            let message = parse(text).err().expect(text).to_string();
            assert!(message.contains(expected), "{message}");
            assert!(
                !message.contains("secret-key") && !message.contains("hunter2"),
                "{message}"
            );
        }
        let message = parse("? [a]\n: b\n").err().unwrap().to_string();
        assert!(!message.contains("[a]"), "{message}");
        let message = parse("1: hunter2\n").err().unwrap().to_string();
        assert!(
            !message.contains("hunter2") && message.contains("line 1"),
            "{message}"
        );
    }

    #[test]
    fn indents_are_chosen_as_sops_and_go_yaml_choose_them() {
        let docs = parse("a:\n  b: 1\n").unwrap();
        for (indent, expected) in [(0, 4), (1, 2), (2, 2), (3, 3), (9, 9), (10, 2), (16, 2)] {
            let pad = " ".repeat(expected);
            assert_eq!(emit(&docs, indent), format!("a:\n{pad}b: 1\n"), "{indent}");
        }
    }

    #[test]
    fn anchors_expand_and_bad_documents_fail() {
        let docs = parse("base: &b {x: 1}\ncopy: *b\n").unwrap();
        assert_eq!(emit(&docs, 2), "base:\n  x: 1\ncopy:\n  x: 1\n");
        assert!(parse("- a\n").is_err());
        assert!(parse("a: 1\na: 2\n").is_err());
        assert!(matches!(parse("1: a\n"), Err(SopsError::Unsupported(_))));
        assert!(parse("").unwrap().is_empty());
        assert_eq!(parse("---\n---\na: 1\n").unwrap().len(), 2);
    }
}
