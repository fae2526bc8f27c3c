//! The document model every store reads into and writes from: ordered mappings and lists
//! with comments as positional entries, and typed scalars resolved as sops resolves them.

use zeroize::Zeroize;

use crate::error::SopsError;
use crate::limits::MAX_DEPTH;
use crate::sops::value::{Plaintext, ValueType, format_bool, format_float};

/// A node of a document.
#[derive(Clone, PartialEq)]
pub enum Node {
    /// A mapping, in file order.
    Map(Map),
    /// A sequence, in file order.
    List(List),
    /// A leaf value.
    Scalar(Scalar),
}

/// The items of a mapping: entries and comments, in file order.
pub type Map = Vec<MapItem>;

/// The items of a list: values and comments, in file order.
pub type List = Vec<ListItem>;

/// One item of a mapping.
#[derive(Clone, PartialEq)]
pub enum MapItem {
    /// `key: value`.
    Entry(String, Node),
    /// A comment line, without its `#`.
    Comment(String),
}

/// One item of a list.
#[derive(Clone, PartialEq)]
pub enum ListItem {
    /// A value.
    Value(Node),
    /// A comment line, without its `#`.
    Comment(String),
}

/// A typed leaf.
#[derive(Clone, PartialEq)]
pub enum Scalar {
    /// null, `~`, or an empty value.
    Null,
    /// Text.
    Str(String),
    /// Bytes that are not UTF-8 (the binary store); encrypted as `str`.
    Bytes(Vec<u8>),
    /// A 64-bit integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A JSON integer beyond i64, kept exactly as written while in the clear; encrypted
    /// as `float` (as sops does, so it comes back as a float).
    Number(String),
    /// A boolean.
    Bool(bool),
    /// A timestamp, in Go's `MarshalText` form (RFC 3339).
    Time(String),
}

impl Scalar {
    /// The bytes sops encrypts and feeds to the MAC for this value, and its `type:`
    /// (`None` for null).
    pub fn to_plaintext(&self) -> Option<(std::borrow::Cow<'_, [u8]>, ValueType)> {
        use std::borrow::Cow;
        Some(match self {
            Self::Null => return None,
            Self::Str(text) => (Cow::Borrowed(text.as_bytes()), ValueType::Str),
            Self::Bytes(bytes) => (Cow::Borrowed(bytes.as_slice()), ValueType::Str),
            Self::Int(value) => (Cow::Owned(value.to_string().into_bytes()), ValueType::Int),
            Self::Float(value) => (
                Cow::Owned(format_float(*value).into_bytes()),
                ValueType::Float,
            ),
            Self::Number(text) => (Cow::Borrowed(text.as_bytes()), ValueType::Float),
            Self::Bool(value) => (
                Cow::Borrowed(format_bool(*value).as_bytes()),
                ValueType::Bool,
            ),
            Self::Time(text) => (Cow::Borrowed(text.as_bytes()), ValueType::Time),
        })
    }

    /// The value a decrypted plaintext stands for (`None` for a comment).
    pub fn from_plaintext(plain: &Plaintext) -> Result<Option<Self>, SopsError> {
        Ok(Some(match plain.value_type() {
            ValueType::Str | ValueType::Bytes => match plain.as_str() {
                Some(text) => Self::Str(text.to_owned()),
                None => Self::Bytes(plain.bytes().to_vec()),
            },
            ValueType::Int => Self::Int(plain.to_int()?),
            ValueType::Float => Self::Float(plain.to_float()?),
            ValueType::Bool => Self::Bool(plain.to_bool()?),
            ValueType::Time => Self::Time(
                plain
                    .as_str()
                    .ok_or(SopsError::InvalidPlaintext("time"))?
                    .to_owned(),
            ),
            ValueType::Comment => return Ok(None),
        }))
    }

    /// The value as text, the way dotenv and INI stores and `exec-env` write it.
    pub fn to_text(&self) -> String {
        match self {
            Self::Null => String::new(),
            Self::Str(text) | Self::Number(text) | Self::Time(text) => text.clone(),
            Self::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Self::Int(value) => value.to_string(),
            Self::Float(value) => format_float(*value),
            Self::Bool(value) => value.to_string(),
        }
    }
}

impl Node {
    /// A string leaf.
    pub fn str(text: impl Into<String>) -> Self {
        Self::Scalar(Scalar::Str(text.into()))
    }

    /// The value under `key`, when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Self::Map(map) => get(map, key),
            _ => None,
        }
    }

    /// The text of a string leaf.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Scalar(Scalar::Str(text)) => Some(text),
            _ => None,
        }
    }
}

/// The value under `key` in `map`.
pub fn get<'a>(map: &'a Map, key: &str) -> Option<&'a Node> {
    map.iter().find_map(|item| match item {
        MapItem::Entry(k, value) if k == key => Some(value),
        _ => None,
    })
}

/// Removes and returns the entry `key` of `map`.
pub fn remove(map: &mut Map, key: &str) -> Option<Node> {
    let at = map
        .iter()
        .position(|item| matches!(item, MapItem::Entry(k, _) if k == key))?;
    match map.remove(at) {
        MapItem::Entry(_, value) => Some(value),
        MapItem::Comment(_) => None,
    }
}

/// A file's documents. Every string in it is wiped when it is dropped: after decryption
/// they are secrets.
#[derive(Default)]
pub struct Tree {
    /// The documents, each a mapping (a YAML stream may hold several).
    pub documents: Vec<Map>,
}

impl Tree {
    /// A tree of `documents`.
    pub fn new(documents: Vec<Map>) -> Self {
        Self { documents }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        for map in &mut self.documents {
            wipe_map(map);
        }
    }
}

fn wipe_map(map: &mut Map) {
    for item in map {
        match item {
            MapItem::Entry(key, value) => {
                key.zeroize();
                wipe_node(value);
            }
            MapItem::Comment(text) => text.zeroize(),
        }
    }
}

fn wipe_node(node: &mut Node) {
    match node {
        Node::Map(map) => wipe_map(map),
        Node::List(list) => {
            for item in list {
                match item {
                    ListItem::Value(value) => wipe_node(value),
                    ListItem::Comment(text) => text.zeroize(),
                }
            }
        }
        Node::Scalar(Scalar::Str(text) | Scalar::Number(text) | Scalar::Time(text)) => {
            text.zeroize();
        }
        Node::Scalar(Scalar::Bytes(bytes)) => bytes.zeroize(),
        Node::Scalar(Scalar::Int(value)) => value.zeroize(),
        Node::Scalar(Scalar::Float(value)) => value.zeroize(),
        Node::Scalar(Scalar::Bool(value)) => value.zeroize(),
        Node::Scalar(Scalar::Null) => {}
    }
}

/// The message of every reader and writer that meets a tree nested deeper than
/// [`MAX_DEPTH`]; `at` says where (e.g. `" at line 130"`), or is empty.
pub(crate) fn too_deep(at: &str) -> String {
    format!("nesting deeper than {MAX_DEPTH} levels{at}")
}

/// About how many bytes a text store writes for `items` at nesting `level`, indented by
/// `indent` bytes a level: keys, scalars, comments, indentation and punctuation, escapes
/// not counted. The writers allocate this much at once, so that a large output is not
/// copied as it grows. Recursive like the writers: trees are within `limits::MAX_DEPTH`.
pub fn text_size<'a>(
    items: impl IntoIterator<Item = &'a MapItem>,
    level: usize,
    indent: usize,
) -> usize {
    fn node_size(node: &Node, level: usize, indent: usize) -> usize {
        match node {
            Node::Scalar(Scalar::Str(text) | Scalar::Number(text) | Scalar::Time(text)) => {
                text.len() + 2
            }
            Node::Scalar(Scalar::Bytes(bytes)) => bytes.len() + 2,
            Node::Scalar(_) => 8,
            Node::Map(map) => text_size(map, level + 1, indent) + level * indent + 4,
            Node::List(list) => {
                let items: usize = list
                    .iter()
                    .map(|item| match item {
                        ListItem::Value(value) => node_size(value, level + 1, indent),
                        ListItem::Comment(text) => text.len(),
                    })
                    .sum();
                items + list.len() * ((level + 1) * indent + 4) + level * indent + 4
            }
        }
    }
    items
        .into_iter()
        .map(|item| {
            level * indent
                + 6
                + match item {
                    MapItem::Entry(key, value) => key.len() + node_size(value, level, indent),
                    MapItem::Comment(text) => text.len(),
                }
        })
        .sum()
}

/// How many levels of mappings and lists `node` holds: 0 for a scalar, 1 for a mapping of
/// scalars (or an empty one), and so on. Iterative, so any tree can be measured.
pub fn height(node: &Node) -> usize {
    let mut max = 0;
    let mut pending: Vec<(&Node, usize)> = vec![(node, 1)];
    while let Some((node, level)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Node>> = match node {
            Node::Scalar(_) => continue,
            Node::Map(map) => Box::new(map.iter().filter_map(|item| match item {
                MapItem::Entry(_, value) => Some(value),
                MapItem::Comment(_) => None,
            })),
            Node::List(list) => Box::new(list.iter().filter_map(|item| match item {
                ListItem::Value(value) => Some(value),
                ListItem::Comment(_) => None,
            })),
        };
        max = max.max(level);
        pending.extend(
            children
                .filter(|child| !matches!(child, Node::Scalar(_)))
                .map(|child| (child, level + 1)),
        );
    }
    max
}

/// Fails when a document (its root mapping counting as the first level) nests deeper than
/// [`MAX_DEPTH`], the limit every reader applies: writers refuse to produce what no
/// reader would read back.
pub fn check_depth(documents: &[Map]) -> Result<(), SopsError> {
    for map in documents {
        let deepest = map
            .iter()
            .filter_map(|item| match item {
                MapItem::Entry(_, value) => Some(height(value)),
                MapItem::Comment(_) => None,
            })
            .max()
            .unwrap_or(0);
        if 1 + deepest > MAX_DEPTH {
            return Err(SopsError::Unsupported(too_deep("")));
        }
    }
    Ok(())
}

/// One step of a tree path, as in `--extract '["a"][0]'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// A mapping key.
    Key(String),
    /// A list index (counting comment items, as sops does).
    Index(usize),
}

/// Parses sops' tree path syntax: `["key"][0]["other"]` (single quotes also accepted).
pub fn parse_path(text: &str) -> Result<Vec<PathStep>, SopsError> {
    let bad = || SopsError::InvalidPath(text.to_owned());
    let mut steps = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        rest = rest.strip_prefix('[').ok_or_else(bad)?;
        if let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let body = &rest[1..];
            let end = body.find(quote).ok_or_else(bad)?;
            steps.push(PathStep::Key(body[..end].to_owned()));
            rest = body[end + 1..].strip_prefix(']').ok_or_else(bad)?;
        } else {
            let end = rest.find(']').ok_or_else(bad)?;
            let index = rest[..end].trim().parse().map_err(|_| bad())?;
            steps.push(PathStep::Index(index));
            rest = &rest[end + 1..];
        }
    }
    if steps.is_empty() {
        return Err(bad());
    }
    Ok(steps)
}

/// The node at `path` in `map`.
pub fn lookup<'a>(map: &'a Map, path: &[PathStep]) -> Result<&'a Node, SopsError> {
    let not_found = |step: &PathStep| SopsError::KeyNotFound(format!("{step:?}"));
    let (first, rest) = path
        .split_first()
        .ok_or(SopsError::InvalidPath(String::new()))?;
    let PathStep::Key(key) = first else {
        return Err(not_found(first));
    };
    let mut node = get(map, key).ok_or_else(|| not_found(first))?;
    for step in rest {
        node = match (node, step) {
            (Node::Map(map), PathStep::Key(key)) => get(map, key).ok_or_else(|| not_found(step))?,
            (Node::List(list), PathStep::Index(index)) => match list.get(*index) {
                Some(ListItem::Value(value)) => value,
                _ => return Err(not_found(step)),
            },
            _ => return Err(not_found(step)),
        };
    }
    Ok(node)
}

/// Sets the node at `path` in `map` to `value`, creating mappings on the way (and
/// appending to a list when the index is its length). Returns whether anything changed.
///
/// A path and value that would nest deeper than [`MAX_DEPTH`] (`map` being the first
/// level) are refused, and `map` is left as it was.
pub fn set(map: &mut Map, path: &[PathStep], value: Node) -> Result<bool, SopsError> {
    let levels = height(&value);
    if path.len().saturating_add(levels) > MAX_DEPTH {
        return Err(SopsError::Unsupported(format!(
            "{} (a path of {} steps to a value of {levels} levels)",
            too_deep(""),
            path.len()
        )));
    }
    set_in(map, path, value)
}

fn set_in(map: &mut Map, path: &[PathStep], value: Node) -> Result<bool, SopsError> {
    let (first, rest) = path
        .split_first()
        .ok_or(SopsError::InvalidPath(String::new()))?;
    let PathStep::Key(key) = first else {
        return Err(SopsError::InvalidPath(
            "a document is a mapping: start with a key".into(),
        ));
    };
    let slot = match map
        .iter()
        .position(|item| matches!(item, MapItem::Entry(k, _) if k == key))
    {
        Some(at) => match &mut map[at] {
            MapItem::Entry(_, node) => node,
            MapItem::Comment(_) => unreachable!("position matched an entry"),
        },
        None => {
            map.push(MapItem::Entry(key.clone(), Node::Scalar(Scalar::Null)));
            match map.last_mut() {
                Some(MapItem::Entry(_, node)) => node,
                _ => unreachable!("just pushed an entry"),
            }
        }
    };
    set_node(slot, rest, value)
}

fn set_node(node: &mut Node, path: &[PathStep], value: Node) -> Result<bool, SopsError> {
    let Some((first, rest)) = path.split_first() else {
        let changed = *node != value;
        *node = value;
        return Ok(changed);
    };
    match first {
        PathStep::Key(_) => {
            if !matches!(node, Node::Map(_)) {
                *node = Node::Map(Vec::new());
            }
            let Node::Map(map) = node else {
                unreachable!("made a mapping")
            };
            set_in(map, path, value)
        }
        PathStep::Index(index) => {
            if !matches!(node, Node::List(_)) {
                *node = Node::List(Vec::new());
            }
            let Node::List(list) = node else {
                unreachable!("made a list")
            };
            if *index == list.len() {
                list.push(ListItem::Value(Node::Scalar(Scalar::Null)));
            }
            match list.get_mut(*index) {
                Some(ListItem::Value(item)) => set_node(item, rest, value),
                _ => Err(SopsError::KeyNotFound(format!(
                    "index {index} out of bounds"
                ))),
            }
        }
    }
}

/// Removes the node at `path` from `map`.
pub fn unset(map: &mut Map, path: &[PathStep]) -> Result<(), SopsError> {
    let not_found = |step: &PathStep| SopsError::KeyNotFound(format!("{step:?}"));
    let (last, parents) = path
        .split_last()
        .ok_or(SopsError::InvalidPath(String::new()))?;
    if parents.is_empty() {
        let PathStep::Key(key) = last else {
            return Err(not_found(last));
        };
        return remove(map, key).map(drop).ok_or_else(|| not_found(last));
    }
    let (first, middle) = parents.split_first().expect("parents is not empty");
    let PathStep::Key(key) = first else {
        return Err(not_found(first));
    };
    let mut node = map
        .iter_mut()
        .find_map(|item| match item {
            MapItem::Entry(k, v) if k == key => Some(v),
            _ => None,
        })
        .ok_or_else(|| not_found(first))?;
    for step in middle {
        node = match (node, step) {
            (Node::Map(map), PathStep::Key(key)) => map
                .iter_mut()
                .find_map(|item| match item {
                    MapItem::Entry(k, v) if k == key => Some(v),
                    _ => None,
                })
                .ok_or_else(|| not_found(step))?,
            (Node::List(list), PathStep::Index(index)) => match list.get_mut(*index) {
                Some(ListItem::Value(value)) => value,
                _ => return Err(not_found(step)),
            },
            _ => return Err(not_found(step)),
        };
    }
    match (node, last) {
        (Node::Map(map), PathStep::Key(key)) => {
            remove(map, key).map(drop).ok_or_else(|| not_found(last))
        }
        (Node::List(list), PathStep::Index(index)) if *index < list.len() => {
            list.remove(*index);
            Ok(())
        }
        _ => Err(not_found(last)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_set_and_unset() {
        assert_eq!(
            parse_path(r#"["a"][0]['b']"#).unwrap(),
            vec![
                PathStep::Key("a".into()),
                PathStep::Index(0),
                PathStep::Key("b".into())
            ]
        );
        assert!(parse_path("a").is_err());
        assert!(parse_path(r#"["a""#).is_err());
        let mut map = Map::new();
        let path = parse_path(r#"["a"]["b"]"#).unwrap();
        assert!(set(&mut map, &path, Node::str("x")).unwrap());
        assert!(!set(&mut map, &path, Node::str("x")).unwrap());
        assert_eq!(lookup(&map, &path).unwrap().as_str(), Some("x"));
        let list = parse_path(r#"["l"][0]"#).unwrap();
        set(&mut map, &list, Node::str("first")).unwrap();
        assert_eq!(lookup(&map, &list).unwrap().as_str(), Some("first"));
        unset(&mut map, &path).unwrap();
        assert!(lookup(&map, &path).is_err());
        assert!(unset(&mut map, &path).is_err());
        unset(&mut map, &parse_path(r#"["l"]"#).unwrap()).unwrap();
        assert_eq!(map.len(), 1);
    }

    /// A value `levels` mappings deep.
    fn nested(levels: usize) -> Node {
        let mut node = Node::str("x");
        for _ in 0..levels {
            node = Node::Map(vec![MapItem::Entry("k".into(), node)]);
        }
        node
    }

    #[test]
    fn heights_count_levels_of_collections() {
        assert_eq!(height(&Node::str("x")), 0);
        assert_eq!(height(&Node::Map(Vec::new())), 1);
        assert_eq!(height(&nested(3)), 3);
        let list = Node::List(vec![
            ListItem::Comment("c".into()),
            ListItem::Value(nested(2)),
            ListItem::Value(Node::str("y")),
        ]);
        assert_eq!(height(&list), 3);
        // Iterative: a tree far beyond the limit is measured without recursion. (Built
        // and dropped in a thread with a large stack: dropping recurses.)
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(|| assert_eq!(height(&nested(100_000)), 100_000))
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn set_refuses_paths_that_nest_deeper_than_the_limit() {
        let steps = |n: usize| -> Vec<PathStep> {
            (0..n).map(|i| PathStep::Key(format!("k{i}"))).collect()
        };
        // The document is the first level: a path of MAX_DEPTH keys to a scalar fits.
        let mut map = Map::new();
        assert!(set(&mut map, &steps(MAX_DEPTH), Node::str("v")).unwrap());
        assert!(check_depth(std::slice::from_ref(&map)).is_ok());
        let mut other = Map::new();
        assert!(set(&mut other, &steps(MAX_DEPTH - 2), nested(2)).is_ok());
        // One level more is refused, and nothing is changed.
        for (path, value) in [
            (steps(MAX_DEPTH + 1), Node::str("v")),
            (steps(MAX_DEPTH - 1), nested(2)),
            (steps(10_000), Node::str("v")),
        ] {
            let before = map.clone();
            let error = set(&mut map, &path, value).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with("nesting deeper than 128 levels"),
                "{error}"
            );
            assert!(map == before);
        }
        let mut deep = Map::new();
        set_in(&mut deep, &steps(MAX_DEPTH + 1), Node::str("v")).unwrap();
        assert!(check_depth(&[deep]).is_err());
    }
}
