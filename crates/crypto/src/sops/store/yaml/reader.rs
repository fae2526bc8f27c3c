//! The general reader, on `saphyr-parser` events: builds the tree, recovering comments
//! from the text between events, and bounds nesting and what anchors and aliases copy.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::resolve::{key_text, resolve_plain, typed_scalar};
use super::syntax;
use crate::error::SopsError;
use crate::limits::{self, MAX_ALIAS_NODES, MAX_DEPTH};
use crate::sops::tree::{ListItem, Map, MapItem, Node, Scalar, too_deep};

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
        // A CR alone ends a line too, as in YAML (and so ends the comment).
        let line_start = text[..at].rfind(['\n', '\r']).map_or(0, |n| n + 1);
        let before = &text[line_start..at];
        let line_end = text[at..].find(['\n', '\r']).map_or(text.len(), |n| at + n);
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
    fn comments_before(&mut self, span: &Span, event: &Event<'_>) {
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
        // (Only for those events: a block scalar's text may start with `}` or a quote.)
        let end = match (event, self.text.as_bytes().get(start)) {
            (Event::MappingEnd | Event::SequenceEnd, Some(b']' | b'}')) => start + 1,
            (
                Event::Scalar(_, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted, ..),
                Some(&quote @ (b'"' | b'\'')),
            ) => quoted_end(self.text, start, quote).unwrap_or(end),
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
        self.comments_before(&span, &event);
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
