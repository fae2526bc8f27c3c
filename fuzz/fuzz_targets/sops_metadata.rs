//! SOPS metadata in every layout. Byte 0 picks the layout the rest is read in: the `sops`
//! mapping of a YAML or JSON file (and of the binary store's JSON envelope), or the
//! flattened `sops_*` keys of dotenv and the `[sops]` section of INI. Metadata that
//! decodes must encode back to the same section, and, written in each layout and read
//! again, decode to the same metadata. Dotenv and INI hold only flat `key=value` lines
//! (keys split at `__map_`/`__list_`, `\n` read as a newline, INI values trimmed), as in
//! sops: they are checked for metadata those lines can hold (and without empty key
//! groups, which flatten to nothing).
#![no_main]

use gitseal_crypto::sops::metadata::{Metadata, flatten};
use gitseal_crypto::sops::store::{Format, Layout};
use gitseal_crypto::sops::tree::{ListItem, MapItem, Node, Tree};
use gitseal_fuzz::same_node;
use libfuzzer_sys::fuzz_target;

const FORMATS: [Format; 5] = [
    Format::Yaml,
    Format::Json,
    Format::Dotenv,
    Format::Ini,
    Format::Binary,
];

/// Whether every key and value of the section fits on a flat dotenv or INI line: keys of
/// `[A-Za-z0-9_.-]` without `__` (the separators of flattened keys), values without
/// backslashes, quotes or CRs and without spaces at either end of a line.
fn flat_lines_hold(node: &Node) -> bool {
    let key_fits = |key: &str| {
        !key.is_empty()
            && !key.contains("__")
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let values_fit = flatten(node, "").iter().all(|(_, value)| {
        !value.contains(['\\', '\r', '"', '`']) && value.lines().all(|line| line == line.trim())
    });
    fn keys(node: &Node, fits: &dyn Fn(&str) -> bool) -> bool {
        match node {
            Node::Map(map) => map.iter().all(|item| match item {
                MapItem::Entry(key, value) => fits(key) && keys(value, fits),
                MapItem::Comment(_) => true,
            }),
            Node::List(list) => list.iter().all(|item| match item {
                ListItem::Value(value) => keys(value, fits),
                ListItem::Comment(_) => true,
            }),
            Node::Scalar(_) => true,
        }
    }
    values_fit && keys(node, &key_fits)
}

/// `node` with the entries of every mapping sorted by key.
fn sorted(node: &Node) -> Node {
    match node {
        Node::Map(map) => {
            let mut entries: Vec<(String, Node)> = map
                .iter()
                .filter_map(|item| match item {
                    MapItem::Entry(key, value) => Some((key.clone(), sorted(value))),
                    MapItem::Comment(_) => None,
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Node::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| MapItem::Entry(key, value))
                    .collect(),
            )
        }
        Node::List(list) => Node::List(
            list.iter()
                .filter_map(|item| match item {
                    ListItem::Value(value) => Some(ListItem::Value(sorted(value))),
                    ListItem::Comment(_) => None,
                })
                .collect(),
        ),
        Node::Scalar(_) => node.clone(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(which) % FORMATS.len()];
    let Ok((_, metadata)) = format.parse_encrypted(rest) else {
        return;
    };
    let node = metadata.to_node();
    let again = Metadata::from_node(&node).expect("encoded metadata decodes");
    assert!(
        same_node(&again.to_node(), &node),
        "metadata changes on a decode-encode round trip"
    );
    let empty = Tree::new(vec![Vec::new()]);
    // An empty key group flattens to nothing, so the next group's index leaves a gap.
    let flat = flat_lines_hold(&node) && !metadata.key_groups.iter().any(|g| g.is_empty());
    for layout in FORMATS {
        if matches!(layout, Format::Dotenv | Format::Ini) && !flat {
            continue;
        }
        let Ok(file) = layout.emit_encrypted(&empty, &metadata, &Layout::default()) else {
            continue;
        };
        let (_, read) = layout.parse_encrypted(&file).unwrap_or_else(|e| {
            panic!(
                "the {} layout cannot read its own metadata: {e}\n{}",
                layout.name(),
                String::from_utf8_lossy(&file)
            )
        });
        // Flat lines carry no order: mappings read back sorted by key (the entries of key
        // types kept as they were written, such as `pgp`, included).
        let (read, expected) = if matches!(layout, Format::Dotenv | Format::Ini) {
            (sorted(&read.to_node()), sorted(&node))
        } else {
            (read.to_node(), node.clone())
        };
        assert!(
            same_node(&read, &expected),
            "the {} layout reads its own metadata as other metadata",
            layout.name()
        );
    }
});
