//! The INI store: sections become top-level mappings, `;`/`#` comments, `key = value`
//! with `=` aligned per section; metadata in a `[sops]` section with flattened keys.
//!
//! Sections are read as sops reads them (go-ini with non-unique sections): the tree
//! always starts with the implicit `DEFAULT` section of the keys before the first header,
//! empty if there are none, and an explicit `[DEFAULT]` is a section of its own. Only that
//! first `DEFAULT` is written without a header (and not at all when empty), so every
//! section reads back where it was.
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

/// Parses INI text into `{section: {key: value}}`, the implicit `DEFAULT` section first.
pub fn parse(text: &str) -> Result<Map, SopsError> {
    let mut doc = Map::new();
    let mut section = ("DEFAULT".to_owned(), Map::new());
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
            // Comments above a section header belong to the section.
            let (name, items) = std::mem::replace(
                &mut section,
                (
                    name.trim().to_owned(),
                    pending.drain(..).map(MapItem::Comment).collect(),
                ),
            );
            doc.push(MapItem::Entry(name, Node::Map(items)));
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
        let (_, items) = &mut section;
        items.push(MapItem::Entry(
            key.to_owned(),
            Node::Scalar(Scalar::Str(value)),
        ));
        items.extend(pending.drain(..).map(MapItem::Comment));
    }
    let (name, mut items) = section;
    items.extend(pending.into_iter().map(MapItem::Comment));
    doc.push(MapItem::Entry(name, Node::Map(items)));
    Ok(doc)
}

/// Writes INI text: one section per top-level mapping, a first `DEFAULT` without a header.
pub fn emit(doc: &Map) -> Result<String, SopsError> {
    let mut out = String::new();
    let mut first = true;
    let mut sections = 0;
    for item in doc {
        match item {
            MapItem::Comment(text) => {
                out.push_str("; ");
                out.push_str(text);
                out.push('\n');
            }
            MapItem::Entry(name, Node::Map(items)) => {
                sections += 1;
                let implicit = sections == 1 && name == "DEFAULT";
                if implicit && items.is_empty() {
                    continue;
                }
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
                if !implicit {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn section_names(doc: &Map) -> Vec<&str> {
        doc.iter()
            .filter_map(|item| match item {
                MapItem::Entry(name, _) => Some(name.as_str()),
                MapItem::Comment(_) => None,
            })
            .collect()
    }

    /// The keys and comments of each section, in order (comments as `#text`).
    fn layout(doc: &Map) -> Vec<Vec<String>> {
        doc.iter()
            .filter_map(|item| match item {
                MapItem::Entry(_, Node::Map(items)) => Some(
                    items
                        .iter()
                        .map(|item| match item {
                            MapItem::Entry(key, _) => key.clone(),
                            MapItem::Comment(text) => format!("#{text}"),
                        })
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn sections_are_read_as_sops_reads_them() {
        let doc = parse("[s]\nb = 2\n").unwrap();
        assert_eq!(section_names(&doc), ["DEFAULT", "s"]);
        assert_eq!(layout(&doc), [vec![], vec!["b".to_owned()]]);
        let doc = parse("x = 0\n[DEFAULT]\na = 1\n[s]\nb = 2\n").unwrap();
        assert_eq!(section_names(&doc), ["DEFAULT", "DEFAULT", "s"]);
    }

    /// Found by fuzzing: a comment above an explicit `[DEFAULT]` was written without the
    /// header and read back as the first key's comment; and a `DEFAULT` section after
    /// another was written without its header, so its keys moved into the section before
    /// it (and an encrypted file no longer decrypted).
    #[test]
    fn every_section_reads_back_where_it_was() {
        let texts = [
            "; \u{a0}\0key_outside jjjjn\0\0\0jjjjjjjjjjjj\x002\n\n[DEFAULT]\n_= 1\nnop = 2\n",
            "[s]\nb = 2\n[DEFAULT]\na = 1\n",
            "x = 0\n[DEFAULT]\na = 1\n",
            "; c\na = 1\n[s]\n; d\nb = 2\n",
        ];
        for text in texts {
            let doc = parse(text).unwrap();
            let out = emit(&doc).unwrap();
            let again = parse(&out).unwrap();
            assert_eq!(section_names(&again), section_names(&doc), "{out:?}");
            assert_eq!(layout(&again), layout(&doc), "{out:?}");
            assert_eq!(emit(&again).unwrap(), out);
        }
        let out = emit(&parse("[s]\nb = 2\n[DEFAULT]\na = 1\n").unwrap()).unwrap();
        assert_eq!(out, "[s]\nb = 2\n\n[DEFAULT]\na = 1\n");
    }
}
