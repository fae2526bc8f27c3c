//! A deliberately small reader of sops-written files (YAML, JSON, dotenv, INI, binary)
//! into an ordered tree, for checking values and MACs against real files. It is a test
//! oracle, not the product's store layer: it parses only what sops writes.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// A node of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A mapping, in file order.
    Map(Vec<(String, Node)>),
    /// A sequence.
    List(Vec<Node>),
    /// A leaf.
    Scalar(Scalar),
}

/// A typed leaf, resolved as sops (go-yaml v3, encoding/json) resolves it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// null or `~`.
    Null,
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp, already in Go's `MarshalText` form.
    Time(String),
}

impl Scalar {
    /// The bytes sops feeds to the MAC for this clear value (`None` for null).
    pub fn mac_text(&self) -> Option<String> {
        use gitseal_crypto::sops::{format_bool, format_float};
        Some(match self {
            Self::Null => return None,
            Self::Str(s) | Self::Time(s) => s.clone(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => format_float(*f),
            Self::Bool(b) => format_bool(*b).to_owned(),
        })
    }
}

impl Node {
    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Self::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string (or, for flattened metadata, any scalar) leaf.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Self::Scalar(Scalar::Null) => None,
            Self::Scalar(s) => s.mac_text(),
            _ => None,
        }
    }
}

/// The file formats sops writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML, possibly several documents.
    Yaml,
    /// JSON.
    Json,
    /// dotenv.
    Dotenv,
    /// INI.
    Ini,
    /// Binary: a JSON envelope with one `data` value.
    Binary,
}

impl Format {
    /// Parses the names used in `datakeys.tsv`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "yaml" => Self::Yaml,
            "json" => Self::Json,
            "dotenv" => Self::Dotenv,
            "ini" => Self::Ini,
            "binary" => Self::Binary,
            _ => return None,
        })
    }
}

/// A parsed sops file: its documents (each a mapping that still holds `sops`) and the
/// text of every comment, which sops may have encrypted.
#[derive(Debug)]
pub struct File {
    /// Top-level mappings, in order.
    pub documents: Vec<Node>,
    /// Comment texts (marker removed), in order.
    pub comments: Vec<String>,
}

impl File {
    /// The `sops` metadata of the first document.
    pub fn metadata(&self) -> Option<&Node> {
        self.documents.first()?.get("sops")
    }
}

/// Parses `text` in `format`.
pub fn parse(format: Format, text: &str) -> Result<File, String> {
    match format {
        Format::Yaml => parse_yaml(text),
        Format::Json | Format::Binary => parse_json(text),
        Format::Dotenv => parse_dotenv(text),
        Format::Ini => parse_ini(text),
    }
}

fn parse_yaml(text: &str) -> Result<File, String> {
    let comments = text
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix('#'))
        .map(str::to_owned)
        .collect();
    let mut stack: Vec<(Node, usize, Option<String>)> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut documents = Vec::new();
    let mut pending_key: Vec<Option<String>> = Vec::new();
    for event in Parser::new_from_str(text) {
        let (event, _) = event.map_err(|e| e.to_string())?;
        let finished = match event {
            Event::MappingStart(anchor, _) => {
                stack.push((Node::Map(Vec::new()), anchor, None));
                pending_key.push(None);
                None
            }
            Event::SequenceStart(anchor, _) => {
                stack.push((Node::List(Vec::new()), anchor, None));
                pending_key.push(None);
                None
            }
            Event::MappingEnd | Event::SequenceEnd => {
                pending_key.pop();
                let (node, anchor, _) = stack.pop().ok_or("unbalanced YAML events")?;
                Some((node, anchor))
            }
            Event::Scalar(value, style, anchor, tag) => {
                let tag = tag.map(|t| t.suffix.clone());
                Some((
                    Node::Scalar(resolve(&value, style, tag.as_deref())?),
                    anchor,
                ))
            }
            Event::Alias(id) => Some((anchors.get(&id).cloned().ok_or("unknown alias")?, 0)),
            _ => None,
        };
        let Some((node, anchor)) = finished else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => documents.push(node),
            Some((Node::List(items), _, _)) => items.push(node),
            Some((Node::Map(entries), _, _)) => {
                let slot = pending_key.last_mut().expect("a key slot per open mapping");
                match slot.take() {
                    Some(key) => entries.push((key, node)),
                    None => match node {
                        Node::Scalar(s) => *slot = Some(s.mac_text().unwrap_or_default()),
                        _ => return Err("only string keys are supported".into()),
                    },
                }
            }
            Some((Node::Scalar(_), _, _)) => unreachable!("scalars are never pushed"),
        }
    }
    Ok(File {
        documents,
        comments,
    })
}

/// Resolves a YAML scalar the way go-yaml v3 does for the values sops writes.
fn resolve(value: &str, style: ScalarStyle, tag: Option<&str>) -> Result<Scalar, String> {
    match tag {
        Some("str") => return Ok(Scalar::Str(value.to_owned())),
        Some("merge") | None => {}
        Some(other) if style != ScalarStyle::Plain => {
            return Err(format!("unexpected tag !!{other}"));
        }
        Some(_) => {}
    }
    if style != ScalarStyle::Plain {
        return Ok(Scalar::Str(value.to_owned()));
    }
    Ok(match value {
        "" | "~" | "null" | "Null" | "NULL" => Scalar::Null,
        "true" | "True" | "TRUE" => Scalar::Bool(true),
        "false" | "False" | "FALSE" => Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Scalar::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Scalar::Float(f64::NAN),
        _ => {
            if let Some(i) = parse_go_int(value) {
                Scalar::Int(i)
            } else if is_yaml_float(value) {
                Scalar::Float(value.replace('_', "").parse().map_err(|_| "bad float")?)
            } else if value.starts_with(|c: char| c.is_ascii_digit()) {
                match gitseal_crypto::sops::normalize_time(value) {
                    Some(time) => Scalar::Time(time),
                    None => Scalar::Str(value.to_owned()),
                }
            } else {
                Scalar::Str(value.to_owned())
            }
        }
    })
}

/// `strconv.ParseInt(s, 0, 64)` after removing underscores.
fn parse_go_int(value: &str) -> Option<i64> {
    let clean = value.replace('_', "");
    let (negative, digits) = match clean.as_bytes().first()? {
        b'-' => (true, &clean[1..]),
        b'+' => (false, &clean[1..]),
        _ => (false, &clean[..]),
    };
    let (radix, digits) = if let Some(d) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = digits.strip_prefix("0o").or(digits.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = digits.strip_prefix("0b").or(digits.strip_prefix("0B")) {
        (2, d)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// go-yaml's float pattern: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(value: &str) -> bool {
    let v = value.strip_prefix(['-', '+']).unwrap_or(value);
    let (mantissa, exponent) = match v.find(['e', 'E']) {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

fn parse_json(text: &str) -> Result<File, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    // sops before 3.13.2 typed every JSON number as a float; 3.13.2 keeps integers.
    let version = value
        .pointer("/sops/version")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let ints = version_at_least(version, (3, 13, 2));
    fn convert(value: &serde_json::Value, ints: bool) -> Node {
        use serde_json::Value as V;
        match value {
            V::Null => Node::Scalar(Scalar::Null),
            V::Bool(b) => Node::Scalar(Scalar::Bool(*b)),
            V::Number(n) => match (ints, n.as_i64()) {
                (true, Some(i)) => Node::Scalar(Scalar::Int(i)),
                _ => Node::Scalar(Scalar::Float(n.as_f64().unwrap_or(f64::NAN))),
            },
            V::String(s) => Node::Scalar(Scalar::Str(s.clone())),
            V::Array(items) => Node::List(items.iter().map(|i| convert(i, ints)).collect()),
            V::Object(map) => Node::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), convert(v, ints)))
                    .collect(),
            ),
        }
    }
    Ok(File {
        documents: vec![convert(&value, ints)],
        comments: Vec::new(),
    })
}

fn version_at_least(version: &str, want: (u32, u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let got = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    got >= want
}

fn parse_dotenv(text: &str) -> Result<File, String> {
    let mut entries = Vec::new();
    let mut metadata = Vec::new();
    let mut comments = Vec::new();
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            comments.push(comment.to_owned());
            continue;
        }
        let (key, value) = line.split_once('=').ok_or("invalid dotenv input line")?;
        let value = value.replace("\\n", "\n");
        match key.strip_prefix("sops_") {
            Some(meta_key) => metadata.push((meta_key.to_owned(), value)),
            None => entries.push((key.to_owned(), Node::Scalar(Scalar::Str(value)))),
        }
    }
    entries.push(("sops".to_owned(), unflatten(metadata)?));
    Ok(File {
        documents: vec![Node::Map(entries)],
        comments,
    })
}

fn parse_ini(text: &str) -> Result<File, String> {
    let mut sections: Vec<(String, Vec<(String, Node)>)> = vec![("DEFAULT".into(), Vec::new())];
    let mut comments = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix(';').or(line.strip_prefix('#')) {
            comments.push(comment.trim_start().to_owned());
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.to_owned(), Vec::new()));
        } else {
            let (key, value) = line.split_once('=').ok_or("invalid INI line")?;
            let mut value = value.trim().to_owned();
            if let Some(rest) = value.strip_prefix("\"\"\"") {
                // sops 3.13.0/3.13.1 wrote multi-line values between triple quotes.
                let mut full = rest.to_owned();
                while !full.ends_with("\"\"\"") {
                    full.push('\n');
                    full.push_str(lines.next().ok_or("unterminated \"\"\" value")?);
                }
                value = full.trim_end_matches("\"\"\"").to_owned();
            }
            let section = &mut sections.last_mut().expect("DEFAULT exists").1;
            section.push((key.trim().to_owned(), Node::Scalar(Scalar::Str(value))));
        }
    }
    let mut document = Vec::new();
    for (name, entries) in sections {
        if name == "sops" {
            let flat = entries
                .into_iter()
                .map(|(k, v)| (k, v.as_text().unwrap_or_default().replace("\\n", "\n")))
                .collect();
            document.push((name, unflatten(flat)?));
        } else if !(name == "DEFAULT" && entries.is_empty()) {
            document.push((name, Node::Map(entries)));
        }
    }
    Ok(File {
        documents: vec![Node::Map(document)],
        comments,
    })
}

/// Rebuilds nested metadata from sops' flattened keys (`age__list_0__map_enc`).
fn unflatten(flat: Vec<(String, String)>) -> Result<Node, String> {
    let mut root = Node::Map(Vec::new());
    for (key, value) in flat {
        let mut parts = key.split("__");
        let mut node = &mut root;
        let first = parts.next().unwrap_or_default();
        let mut step = Step::Key(first.to_owned());
        for part in parts {
            node = descend(node, &step, part.starts_with("list_"))?;
            step = if let Some(i) = part.strip_prefix("list_") {
                Step::Index(i.parse().map_err(|_| format!("bad metadata key {key}"))?)
            } else {
                Step::Key(
                    part.strip_prefix("map_")
                        .ok_or(format!("bad metadata key {key}"))?
                        .to_owned(),
                )
            };
        }
        let leaf = descend(node, &step, false)?;
        *leaf = Node::Scalar(Scalar::Str(value));
    }
    Ok(root)
}

enum Step {
    Key(String),
    Index(usize),
}

fn descend<'a>(
    node: &'a mut Node,
    step: &Step,
    child_is_list: bool,
) -> Result<&'a mut Node, String> {
    let empty = || {
        if child_is_list {
            Node::List(Vec::new())
        } else {
            Node::Map(Vec::new())
        }
    };
    match (node, step) {
        (Node::Map(entries), Step::Key(key)) => {
            let at = match entries.iter().position(|(k, _)| k == key) {
                Some(at) => at,
                None => {
                    entries.push((key.clone(), empty()));
                    entries.len() - 1
                }
            };
            Ok(&mut entries[at].1)
        }
        (Node::List(items), Step::Index(index)) => {
            while items.len() <= *index {
                items.push(empty());
            }
            Ok(&mut items[*index])
        }
        _ => Err("inconsistent flattened metadata".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_yaml_number_resolution() {
        let r = |s| resolve(s, ScalarStyle::Plain, None).unwrap();
        assert_eq!(r("0755"), Scalar::Int(493));
        assert_eq!(r("0x1F"), Scalar::Int(31));
        assert_eq!(r("1_000"), Scalar::Int(1000));
        assert_eq!(r("+12"), Scalar::Int(12));
        assert_eq!(r("1e3"), Scalar::Float(1000.0));
        assert_eq!(r("yes"), Scalar::Str("yes".into()));
        assert_eq!(r("2024-01-15"), Scalar::Time("2024-01-15T00:00:00Z".into()));
        assert_eq!(
            resolve("42", ScalarStyle::DoubleQuoted, None).unwrap(),
            Scalar::Str("42".into())
        );
    }

    #[test]
    fn flattened_metadata() {
        let node = unflatten(vec![
            ("age__list_0__map_enc".into(), "E".into()),
            ("age__list_0__map_recipient".into(), "R".into()),
            ("version".into(), "3.13.2".into()),
        ])
        .unwrap();
        let entry = match node.get("age") {
            Some(Node::List(items)) => &items[0],
            other => panic!("{other:?}"),
        };
        assert_eq!(
            entry.get("enc").and_then(Node::as_text).as_deref(),
            Some("E")
        );
        assert_eq!(
            node.get("version").and_then(Node::as_text).as_deref(),
            Some("3.13.2")
        );
    }
}
