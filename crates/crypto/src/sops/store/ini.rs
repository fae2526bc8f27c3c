//! The INI store: sections become top-level mappings (keys before the first section go
//! to `DEFAULT`), `;`/`#` comments, `key = value` with `=` aligned per section; metadata
//! in a `[sops]` section with flattened keys.
//!
//! Comments are placed as sops places them: those above a section header are the
//! section's first item; those above a key come right *after* that key in the tree (and
//! are written back above it).

use crate::error::SopsError;
use crate::sops::tree::{Map, MapItem, Node, Scalar};

fn syntax(line: usize, message: &str) -> SopsError {
    SopsError::Syntax {
        format: "ini",
        message: format!("line {line}: {message}"),
    }
}

/// Parses INI text into `{section: {key: value}}`.
pub fn parse(text: &str) -> Result<Map, SopsError> {
    let mut doc = Map::new();
    let mut section: Option<(String, Map)> = None;
    let mut pending: Vec<String> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix([';', '#']) {
            pending.push(comment.trim_start().to_owned());
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| syntax(n + 1, "unterminated section header"))?;
            if let Some((name, items)) = section.take() {
                doc.push(MapItem::Entry(name, Node::Map(items)));
            }
            // Comments above a section header belong to the section.
            section = Some((
                name.trim().to_owned(),
                pending.drain(..).map(MapItem::Comment).collect(),
            ));
            continue;
        }
        let (key, value) = match line.split_once(['=', ':']) {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, ""),
        };
        let mut value = value.to_owned();
        // Multi-line values in triple quotes (written by sops 3.13.0/3.13.1).
        if let Some(rest) = value.strip_prefix("\"\"\"") {
            let mut full = rest.to_owned();
            while !full.ends_with("\"\"\"") {
                let (_, next) = lines
                    .next()
                    .ok_or_else(|| syntax(n + 1, "unterminated \"\"\" value"))?;
                full.push('\n');
                full.push_str(next);
            }
            full.truncate(full.len() - 3);
            value = full;
        } else if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('`') && value.ends_with('`')))
        {
            value = value[1..value.len() - 1].to_owned();
        }
        let (_, items) = section.get_or_insert_with(|| ("DEFAULT".to_owned(), Map::new()));
        items.push(MapItem::Entry(
            key.to_owned(),
            Node::Scalar(Scalar::Str(value)),
        ));
        items.extend(pending.drain(..).map(MapItem::Comment));
    }
    if let Some((name, mut items)) = section.take() {
        items.extend(pending.drain(..).map(MapItem::Comment));
        doc.push(MapItem::Entry(name, Node::Map(items)));
    }
    doc.extend(pending.into_iter().map(MapItem::Comment));
    Ok(doc)
}

/// Writes INI text: one section per top-level mapping, `DEFAULT` without a header.
pub fn emit(doc: &Map) -> Result<String, SopsError> {
    let mut out = String::new();
    let mut first = true;
    for item in doc {
        match item {
            MapItem::Comment(text) => {
                out.push_str("; ");
                out.push_str(text);
                out.push('\n');
            }
            MapItem::Entry(name, Node::Map(items)) => {
                if !first {
                    out.push('\n');
                }
                first = false;
                // The section's own comments go above its header.
                let lead = items
                    .iter()
                    .take_while(|i| matches!(i, MapItem::Comment(_)))
                    .count();
                for comment in &items[..lead] {
                    if let MapItem::Comment(text) = comment {
                        out.push_str("; ");
                        out.push_str(text);
                        out.push('\n');
                    }
                }
                let items = &items[lead..];
                if name != "DEFAULT" {
                    out.push('[');
                    out.push_str(name);
                    out.push_str("]\n");
                }
                let width = items
                    .iter()
                    .filter_map(|i| match i {
                        MapItem::Entry(k, _) => Some(k.chars().count()),
                        MapItem::Comment(_) => None,
                    })
                    .max()
                    .unwrap_or(0);
                for (at, entry) in items.iter().enumerate() {
                    let MapItem::Entry(key, value) = entry else {
                        continue;
                    };
                    let Node::Scalar(scalar) = value else {
                        return Err(SopsError::Unsupported(format!(
                            "cannot write nested value {name}.{key} as INI"
                        )));
                    };
                    // The comments after a key in the tree are written above it.
                    for comment in items[at + 1..].iter().map_while(|i| match i {
                        MapItem::Comment(text) => Some(text),
                        MapItem::Entry(..) => None,
                    }) {
                        out.push_str("; ");
                        out.push_str(comment);
                        out.push('\n');
                    }
                    out.push_str(key);
                    out.extend(std::iter::repeat_n(' ', width - key.chars().count()));
                    out.push_str(" = ");
                    out.push_str(&scalar.to_text().replace('\n', "\\n"));
                    out.push('\n');
                }
            }
            MapItem::Entry(name, _) => {
                return Err(SopsError::Unsupported(format!(
                    "cannot write {name:?} as INI: top-level values must be sections"
                )));
            }
        }
    }
    Ok(out)
}
