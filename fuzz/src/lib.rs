//! What gitseal's fuzz targets share: comparisons of SOPS trees that compare numbers by
//! value and treat every NaN as equal (a tree's `PartialEq` does neither), the one RSA key
//! of a process, and a splitter that turns one input into several.

use std::sync::OnceLock;

use gitseal_crypto::sealed::PrivateKey;
use gitseal_crypto::sops::store::{Format, Layout};
use gitseal_crypto::sops::tree::{ListItem, Map, MapItem, Node, Scalar};

/// The RSA key of this process: generated once (2048 bits, the smallest the project
/// accepts) and reused by every input.
pub fn rsa_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(2048).expect("an RSA key"))
}

/// Whether two lists of documents are equal, numbers by value, NaN equal to NaN.
pub fn same_documents(a: &[Map], b: &[Map]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_map(a, b))
}

/// Whether two mappings are equal, NaN equal to NaN.
pub fn same_map(a: &Map, b: &Map) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (MapItem::Entry(ka, va), MapItem::Entry(kb, vb)) => ka == kb && same_node(va, vb),
            (MapItem::Comment(a), MapItem::Comment(b)) => a == b,
            _ => false,
        })
}

/// Whether two nodes are equal, NaN equal to NaN.
pub fn same_node(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Map(a), Node::Map(b)) => same_map(a, b),
        (Node::List(a), Node::List(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|pair| match pair {
                    (ListItem::Value(a), ListItem::Value(b)) => same_node(a, b),
                    (ListItem::Comment(a), ListItem::Comment(b)) => a == b,
                    _ => false,
                })
        }
        (Node::Scalar(a), Node::Scalar(b)) => match (number(a), number(b)) {
            (Some(a), Some(b)) => a == b || (a.is_nan() && b.is_nan()),
            _ => a == b,
        },
        _ => false,
    }
}

/// A number's value. Go writes a whole float without a fraction (`1.0` as `1`, `1e21` in
/// full), as the stores do, so a float may come back as an integer: numbers compare by
/// value.
fn number(scalar: &Scalar) -> Option<f64> {
    match scalar {
        Scalar::Int(value) => Some(*value as f64),
        Scalar::Float(value) => Some(*value),
        Scalar::Number(text) => text.parse().ok(),
        _ => None,
    }
}

/// Splits `data` at the first `0xff` byte (never part of UTF-8): the part before and the
/// part after; without one, all of `data` and an empty part.
pub fn split_once(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// A copy of `map` without its comments, at every level.
pub fn without_comments(map: &Map) -> Map {
    fn node(value: &Node) -> Node {
        match value {
            Node::Map(map) => Node::Map(without_comments(map)),
            Node::List(list) => Node::List(
                list.iter()
                    .filter_map(|item| match item {
                        ListItem::Value(value) => Some(ListItem::Value(node(value))),
                        ListItem::Comment(_) => None,
                    })
                    .collect(),
            ),
            Node::Scalar(_) => value.clone(),
        }
    }
    map.iter()
        .filter_map(|item| match item {
            MapItem::Entry(key, value) => Some(MapItem::Entry(key.clone(), node(value))),
            MapItem::Comment(_) => None,
        })
        .collect()
}

/// Reads `input` as a plaintext file of `format`; when it reads, writes the tree back
/// (with the default layout) and asserts that the output reads as the same tree (with
/// `comments`, comments in the same places too). Trees the writer refuses (too deep, or
/// not representable in the format) are skipped.
pub fn check_store_round_trip(format: Format, input: &[u8], comments: bool) {
    let Ok(tree) = format.parse_plain(input) else {
        return;
    };
    let Ok(output) = format.emit_plain(&tree, &Layout::default()) else {
        return;
    };
    let again = format.parse_plain(&output).unwrap_or_else(|e| {
        panic!(
            "the {} store cannot read its own output: {e}\n{}",
            format.name(),
            String::from_utf8_lossy(&output)
        )
    });
    let same = if comments {
        same_documents(&tree.documents, &again.documents)
    } else {
        let strip = |docs: &[Map]| docs.iter().map(without_comments).collect::<Vec<_>>();
        same_documents(&strip(&tree.documents), &strip(&again.documents))
    };
    assert!(
        same,
        "the {} store reads its own output as another tree:\n{}",
        format.name(),
        String::from_utf8_lossy(&output)
    );
}
