//! The five stores sops reads and writes, behind one [`Format`]: parse plaintext or
//! encrypted files into a [`Tree`] (and the `sops` metadata), and write them back.

pub mod dotenv;
mod fastyaml;
pub mod ini;
pub mod json;
pub mod yaml;

use std::path::Path;

use crate::error::SopsError;
use crate::sops::metadata::{self, Metadata};
use crate::sops::tree::{self, Map, MapItem, Node, Scalar, Tree};

/// A file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// YAML (one or more documents).
    Yaml,
    /// JSON.
    Json,
    /// dotenv `KEY=value` lines.
    Dotenv,
    /// INI sections.
    Ini,
    /// Any bytes, kept under the key `data` in a JSON envelope.
    Binary,
}

/// The largest indent (in spaces) gitseal writes. sops takes any number and go-yaml
/// uses 2 for YAML indents above 9, so only JSON output could be wider; a larger indent
/// only makes a file bigger (`--indent 100000000` would write gigabytes).
pub const MAX_INDENT: usize = 16;

/// Output layout options (`stores:` in `.sops.yaml`, `--indent`). JSON indents above
/// [`MAX_INDENT`] are written as [`MAX_INDENT`]; the command line refuses them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Layout {
    /// YAML indent (default 4; 0 also means 4, and 1 or more than 9 mean 2, as in sops).
    pub yaml_indent: Option<usize>,
    /// JSON indent in spaces (default: a tab).
    pub json_indent: Option<usize>,
    /// Indent of the binary store's JSON envelope (default: a tab).
    pub json_binary_indent: Option<usize>,
}

impl Format {
    /// The format sops picks from a file name: `.yaml`/`.yml`, `.json`, `.env` (or a file
    /// named `.env`), `.ini`, else binary.
    pub fn from_path(path: &Path) -> Self {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == ".env" {
            return Self::Dotenv;
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Self::Yaml,
            Some("json") => Self::Json,
            Some("env") => Self::Dotenv,
            Some("ini") => Self::Ini,
            _ => Self::Binary,
        }
    }

    /// The format named by `--input-type`/`--output-type` (unknown names are binary).
    pub fn from_name(name: &str) -> Self {
        match name {
            "yaml" => Self::Yaml,
            "json" => Self::Json,
            "dotenv" => Self::Dotenv,
            "ini" => Self::Ini,
            _ => Self::Binary,
        }
    }

    /// Reads a plaintext file.
    pub fn parse_plain(self, input: &[u8]) -> Result<Tree, SopsError> {
        if self == Self::Binary {
            let value = match std::str::from_utf8(input) {
                Ok(text) => Scalar::Str(text.to_owned()),
                Err(_) => Scalar::Bytes(input.to_vec()),
            };
            return Ok(Tree::new(vec![vec![MapItem::Entry(
                "data".into(),
                Node::Scalar(value),
            )]]));
        }
        let text = std::str::from_utf8(input).map_err(|e| SopsError::Syntax {
            format: self.name(),
            message: format!("not UTF-8 (byte {})", e.valid_up_to()),
        })?;
        Ok(Tree::new(match self {
            Self::Yaml => yaml::parse(text)?,
            Self::Json => vec![json::parse(text)?],
            Self::Dotenv => vec![dotenv::parse(text)?],
            Self::Ini => vec![ini::parse(text)?],
            Self::Binary => unreachable!("handled above"),
        }))
    }

    /// Whether a plaintext tree already carries sops metadata (and so must not be
    /// encrypted again).
    pub fn has_metadata(self, tree: &Tree) -> bool {
        let Some(first) = tree.documents.first() else {
            return false;
        };
        match self {
            Self::Dotenv => first
                .iter()
                .any(|i| matches!(i, MapItem::Entry(k, _) if k.starts_with("sops_"))),
            _ => tree::get(first, "sops").is_some(),
        }
    }

    /// Reads an encrypted file: its documents without the `sops` section, and the metadata.
    pub fn parse_encrypted(self, input: &[u8]) -> Result<(Tree, Metadata), SopsError> {
        let syntax_format = if self == Self::Binary {
            Self::Json
        } else {
            self
        };
        let mut tree = syntax_format.parse_plain(input)?;
        let node = match self {
            Self::Dotenv => {
                let map = tree
                    .documents
                    .first_mut()
                    .ok_or(SopsError::MetadataNotFound)?;
                let mut pairs = Vec::new();
                map.retain(|item| match item {
                    MapItem::Entry(key, value) if key.starts_with("sops_") => {
                        let text = match value {
                            Node::Scalar(s) => s.to_text(),
                            _ => String::new(),
                        };
                        pairs.push((key["sops_".len()..].to_owned(), text));
                        false
                    }
                    _ => true,
                });
                if pairs.is_empty() {
                    return Err(SopsError::MetadataNotFound);
                }
                metadata::unflatten(&pairs)?
            }
            Self::Ini => {
                let map = tree
                    .documents
                    .first_mut()
                    .ok_or(SopsError::MetadataNotFound)?;
                let Some(Node::Map(section)) = tree::remove(map, "sops") else {
                    return Err(SopsError::MetadataNotFound);
                };
                let pairs: Vec<(String, String)> = section
                    .iter()
                    .filter_map(|item| match item {
                        MapItem::Entry(k, Node::Scalar(s)) => {
                            Some((k.clone(), s.to_text().replace("\\n", "\n")))
                        }
                        _ => None,
                    })
                    .collect();
                metadata::unflatten(&pairs)?
            }
            _ => {
                let mut found = None;
                for map in &mut tree.documents {
                    if let Some(node) = tree::remove(map, "sops") {
                        found.get_or_insert(node);
                    }
                }
                found.ok_or(SopsError::MetadataNotFound)?
            }
        };
        let metadata = Metadata::from_node(&node)?;
        Ok((tree, metadata))
    }

    /// Writes a plaintext tree; trees nested deeper than `limits::MAX_DEPTH` are refused.
    pub fn emit_plain(self, tree: &Tree, layout: &Layout) -> Result<Vec<u8>, SopsError> {
        let docs = &tree.documents;
        tree::check_depth(docs)?;
        Ok(match self {
            Self::Yaml => yaml::emit(docs, layout.yaml_indent.unwrap_or(4)).into_bytes(),
            Self::Json => json::emit(single(docs)?, layout.json_indent).into_bytes(),
            Self::Dotenv => dotenv::emit(single(docs)?)?.into_bytes(),
            Self::Ini => ini::emit(single(docs)?)?.into_bytes(),
            Self::Binary => match single(docs).ok().and_then(|d| tree::get(d, "data")) {
                Some(Node::Scalar(Scalar::Str(text))) => text.clone().into_bytes(),
                Some(Node::Scalar(Scalar::Bytes(bytes))) => bytes.clone(),
                _ => {
                    return Err(SopsError::Unsupported(
                        "binary output needs a document with a single `data` value; use --output-type json or yaml".into(),
                    ));
                }
            },
        })
    }

    /// Writes an encrypted tree with its metadata (the `sops` section last, in every
    /// YAML document); trees nested deeper than `limits::MAX_DEPTH` are refused.
    pub fn emit_encrypted(
        self,
        tree: &Tree,
        metadata: &Metadata,
        layout: &Layout,
    ) -> Result<Vec<u8>, SopsError> {
        tree::check_depth(&tree.documents)?;
        let node = metadata.to_node();
        Ok(match self {
            Self::Yaml => {
                let trailer = [MapItem::Entry("sops".into(), node.clone())];
                yaml::emit_with(&tree.documents, layout.yaml_indent.unwrap_or(4), &trailer)
                    .into_bytes()
            }
            Self::Json | Self::Binary => {
                let indent = if self == Self::Json {
                    layout.json_indent
                } else {
                    layout.json_binary_indent
                };
                let trailer = [MapItem::Entry("sops".into(), node.clone())];
                json::emit_with(single(&tree.documents)?, indent, &trailer).into_bytes()
            }
            Self::Dotenv => {
                let mut doc = single(&tree.documents)?.clone();
                for (key, value) in metadata::flatten(&node, "sops_") {
                    doc.push(MapItem::Entry(key, Node::str(value)));
                }
                let out = dotenv::emit(&doc)?;
                drop(Tree::new(vec![doc])); // wipes the copy
                out.into_bytes()
            }
            Self::Ini => {
                let mut doc = single(&tree.documents)?.clone();
                let section = metadata::flatten(&node, "")
                    .into_iter()
                    .map(|(k, v)| MapItem::Entry(k, Node::str(v)))
                    .collect();
                doc.push(MapItem::Entry("sops".into(), Node::Map(section)));
                let out = ini::emit(&doc)?;
                drop(Tree::new(vec![doc])); // wipes the copy
                out.into_bytes()
            }
        })
    }

    /// The format's name as in `--input-type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Yaml => "yaml",
            Self::Json => "json",
            Self::Dotenv => "dotenv",
            Self::Ini => "ini",
            Self::Binary => "binary",
        }
    }
}

fn single(docs: &[Map]) -> Result<&Map, SopsError> {
    match docs {
        [doc] => Ok(doc),
        [] => Err(SopsError::Unsupported("the file has no document".into())),
        _ => Err(SopsError::Unsupported(
            "only YAML can hold several documents".into(),
        )),
    }
}

/// Renders one value for `--extract`: strings raw, other nodes in `format`.
pub fn emit_value(node: &Node, format: Format, layout: &Layout) -> Result<Vec<u8>, SopsError> {
    if tree::height(node) > crate::limits::MAX_DEPTH {
        return Err(SopsError::Unsupported(tree::too_deep("")));
    }
    match node {
        Node::Scalar(Scalar::Str(text)) => Ok(text.clone().into_bytes()),
        Node::Scalar(Scalar::Bytes(bytes)) => Ok(bytes.clone()),
        Node::Scalar(scalar) => Ok(scalar.to_text().into_bytes()),
        Node::Map(map) => format.emit_plain(&Tree::new(vec![map.clone()]), layout),
        Node::List(list) => Ok(match format {
            Format::Json => json::emit_node(node, layout.json_indent),
            _ => yaml::emit_list(list, layout.yaml_indent.unwrap_or(4)),
        }
        .into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sops::metadata::{AgeKey, KeyGroup};

    fn metadata(recipients: usize) -> Metadata {
        Metadata {
            key_groups: vec![KeyGroup {
                age: (0..recipients)
                    .map(|i| AgeKey {
                        recipient: format!("age1r{i}"),
                        enc: format!("-----BEGIN AGE ENCRYPTED FILE-----\nk{i}\n-----END AGE ENCRYPTED FILE-----\n"),
                    })
                    .collect(),
                ..KeyGroup::default()
            }],
            lastmodified: "2026-01-02T03:04:05Z".into(),
            mac: "ENC[mac]".into(),
            version: "3.11.0".into(),
            ..Metadata::default()
        }
    }

    /// The lines of `text` that `is_metadata`, reversed and rotated by `turn` (the rest
    /// stays in place): orders sops' random map order produces.
    fn reorder(text: &str, is_metadata: impl Fn(&str) -> bool, turn: usize) -> String {
        let lines: Vec<&str> = text.lines().collect();
        let mut meta: Vec<&str> = lines.iter().copied().filter(|l| is_metadata(l)).collect();
        meta.reverse();
        let len = meta.len();
        meta.rotate_left(turn % len);
        let mut meta = meta.into_iter();
        let mut out = String::new();
        for line in lines {
            out.push_str(if is_metadata(line) {
                meta.next().unwrap()
            } else {
                line
            });
            out.push('\n');
        }
        out
    }

    /// The writers' first allocation ([`tree::text_size`]) is close to what they write: a
    /// little more, so that the output is not copied as it grows, and not much more.
    #[test]
    fn writers_allocate_about_what_they_write() {
        let value = "ENC[AES256_GCM,data:aGVsbG8=,iv:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=,tag:MTIzNDU2Nzg5MDEyMzQ1Ng==,type:str]";
        let flat: Map = (0..500)
            .map(|i| MapItem::Entry(format!("key{i:06}"), Node::str(value)))
            .collect();
        let nested: Map = (0..5)
            .map(|g| MapItem::Entry(format!("group{g}"), Node::Map(flat[..100].to_vec())))
            .collect();
        for doc in [flat, nested] {
            for (text, indent) in [
                (json::emit(&doc, None), 1),
                (json::emit(&doc, Some(4)), 4),
                (yaml::emit(std::slice::from_ref(&doc), 4), 4),
            ] {
                let size = tree::text_size(&doc, 0, indent);
                let ratio = size as f64 / text.len() as f64;
                assert!((0.95..1.2).contains(&ratio), "{ratio}");
            }
        }
    }

    #[test]
    fn ini_and_dotenv_metadata_is_read_in_any_order() {
        for recipients in 1..=4 {
            let meta = metadata(recipients);
            for format in [Format::Ini, Format::Dotenv] {
                let plain = match format {
                    Format::Ini => "[app]\nuser = admin\n",
                    _ => "USER=admin\n",
                };
                let tree = format.parse_plain(plain.as_bytes()).unwrap();
                let text = format
                    .emit_encrypted(&tree, &meta, &Layout::default())
                    .unwrap();
                let text = String::from_utf8(text).unwrap();
                let in_sops_section = |line: &str| match format {
                    Format::Ini => line.contains(" = ") && !line.starts_with("user"),
                    _ => line.starts_with("sops_"),
                };
                for turn in 0..8 {
                    let shuffled = reorder(&text, in_sops_section, turn);
                    let (_, read) = format
                        .parse_encrypted(shuffled.as_bytes())
                        .unwrap_or_else(|e| panic!("{e}\n{shuffled}"));
                    assert!(read.key_groups == meta.key_groups, "{shuffled}");
                    assert_eq!(read.mac, meta.mac);
                }
            }
        }
    }

    #[test]
    fn writers_refuse_trees_deeper_than_the_limit() {
        let mut node = Node::str("x");
        for _ in 0..crate::limits::MAX_DEPTH {
            node = Node::List(vec![crate::sops::tree::ListItem::Value(node)]);
        }
        let tree = Tree::new(vec![vec![MapItem::Entry("a".into(), node.clone())]]);
        for format in [Format::Yaml, Format::Json] {
            let error = format
                .emit_plain(&tree, &Layout::default())
                .expect_err("refused");
            assert_eq!(error.to_string(), "nesting deeper than 128 levels");
            assert!(
                format
                    .emit_encrypted(&tree, &metadata(1), &Layout::default())
                    .is_err()
            );
        }
        assert!(emit_value(&node, Format::Json, &Layout::default()).is_ok());
        let node = Node::List(vec![crate::sops::tree::ListItem::Value(node)]);
        assert!(emit_value(&node, Format::Yaml, &Layout::default()).is_err());
    }
}
