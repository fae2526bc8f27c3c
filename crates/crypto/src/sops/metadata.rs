//! The `sops` metadata section: read from every historical layout (struct order or
//! alphabetical, `[]`/`null`/absent lists, flattened dotenv/INI values), written in the
//! current sops layout (every level sorted alphabetically).

use crate::error::SopsError;
use crate::sops::tree::{ListItem, Map, MapItem, Node, Scalar};
use crate::sops::walk::{SELECTION_KEYS, Selection};

/// The sops version gitseal writes files as: their layout is that of sops 3.13.
pub const WRITTEN_VERSION: &str = "3.13.2";

/// Key types sops knows but gitseal cannot use; kept verbatim when a file is rewritten.
const OTHER_KEY_TYPES: [&str; 5] = ["azure_kv", "gcp_kms", "hc_vault", "hckms", "pgp"];

/// An age recipient and the data key (or share) wrapped for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgeKey {
    /// `age1...` recipient.
    pub recipient: String,
    /// The armored age file holding the wrapped data key.
    pub enc: String,
}

/// An AWS KMS key and the data key (or share) it encrypted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KmsKey {
    /// Key or alias ARN.
    pub arn: String,
    /// Role to assume first (empty: none).
    pub role: String,
    /// Encryption context, sorted by key.
    pub context: Vec<(String, String)>,
    /// When the key was added (RFC 3339).
    pub created_at: String,
    /// Base64 of the KMS ciphertext blob.
    pub enc: String,
    /// Shared-config profile (empty: default chain).
    pub aws_profile: String,
}

/// One key group: every key in it wraps the same data key (or Shamir share).
#[derive(Clone, Default, PartialEq)]
pub struct KeyGroup {
    /// age recipients.
    pub age: Vec<AgeKey>,
    /// AWS KMS keys.
    pub kms: Vec<KmsKey>,
    /// Keys of other types (PGP, GCP, Azure, Vault, HuaweiCloud): type and entry, kept
    /// as read.
    pub other: Vec<(String, Node)>,
}

impl KeyGroup {
    /// Whether the group has no key at all.
    pub fn is_empty(&self) -> bool {
        self.age.is_empty() && self.kms.is_empty() && self.other.is_empty()
    }

    /// The names of the key types only kept, never used, by gitseal (e.g. `pgp`).
    pub fn other_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = self.other.iter().map(|(t, _)| t.as_str()).collect();
        types.dedup();
        types
    }
}

/// A file's metadata.
#[derive(Clone, Default)]
pub struct Metadata {
    /// Key groups: one (every key wraps the data key) or several (Shamir shares).
    pub key_groups: Vec<KeyGroup>,
    /// Shares needed with several groups (0: not set).
    pub shamir_threshold: usize,
    /// RFC 3339 time of the last encryption; the MAC's AAD.
    pub lastmodified: String,
    /// The encrypted MAC.
    pub mac: String,
    /// Which values are encrypted.
    pub selection: Selection,
    /// Whether the MAC covers only encrypted values.
    pub mac_only_encrypted: bool,
    /// The sops version that wrote the file.
    pub version: String,
}

fn text_of(node: &Node) -> Option<String> {
    match node {
        Node::Scalar(Scalar::Null) => None,
        Node::Scalar(scalar) => Some(scalar.to_text()),
        _ => None,
    }
}

fn entries(node: Option<&Node>) -> Vec<&Map> {
    match node {
        Some(Node::List(list)) => list
            .iter()
            .filter_map(|item| match item {
                ListItem::Value(Node::Map(map)) => Some(map),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The value of `key` in `map`, the last one when the key repeats: sops reads JSON
/// metadata with Go's `encoding/json`, which keeps the last (YAML refuses repeated keys).
fn lookup<'a>(map: &'a Map, key: &str) -> Option<&'a Node> {
    map.iter().rev().find_map(|item| match item {
        MapItem::Entry(k, value) if k == key => Some(value),
        _ => None,
    })
}

/// `node` with each key of every mapping in it once, holding the value [`lookup`] reads.
fn last_wins(node: &Node) -> Node {
    match node {
        Node::Map(map) => {
            let mut out: Map = Vec::with_capacity(map.len());
            for item in map {
                match item {
                    MapItem::Entry(key, value) => {
                        let value = last_wins(value);
                        match out
                            .iter_mut()
                            .find(|kept| matches!(kept, MapItem::Entry(k, _) if k == key))
                        {
                            Some(MapItem::Entry(_, kept)) => *kept = value,
                            _ => out.push(MapItem::Entry(key.clone(), value)),
                        }
                    }
                    MapItem::Comment(_) => out.push(item.clone()),
                }
            }
            Node::Map(out)
        }
        Node::List(list) => Node::List(
            list.iter()
                .map(|item| match item {
                    ListItem::Value(value) => ListItem::Value(last_wins(value)),
                    ListItem::Comment(_) => item.clone(),
                })
                .collect(),
        ),
        Node::Scalar(_) => node.clone(),
    }
}

fn field(map: &Map, key: &str) -> String {
    lookup(map, key).and_then(text_of).unwrap_or_default()
}

fn group_from(map: &Map) -> Result<KeyGroup, SopsError> {
    let get = |key: &str| lookup(map, key);
    let mut group = KeyGroup::default();
    for entry in entries(get("age")) {
        group.age.push(AgeKey {
            recipient: field(entry, "recipient"),
            enc: field(entry, "enc"),
        });
    }
    for entry in entries(get("kms")) {
        let mut context: Vec<(String, String)> = match lookup(entry, "context").map(last_wins) {
            Some(Node::Map(items)) => items
                .into_iter()
                .filter_map(|item| match item {
                    MapItem::Entry(k, v) => Some((k, text_of(&v).unwrap_or_default())),
                    MapItem::Comment(_) => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        context.sort();
        group.kms.push(KmsKey {
            arn: field(entry, "arn"),
            role: field(entry, "role"),
            context,
            created_at: field(entry, "created_at"),
            enc: field(entry, "enc"),
            aws_profile: field(entry, "aws_profile"),
        });
    }
    for key_type in OTHER_KEY_TYPES {
        for entry in entries(get(key_type)) {
            group
                .other
                .push((key_type.to_owned(), last_wins(&Node::Map(entry.clone()))));
        }
    }
    Ok(group)
}

impl Metadata {
    /// Reads the `sops` section (already unflattened for dotenv and INI).
    pub fn from_node(node: &Node) -> Result<Self, SopsError> {
        let Node::Map(map) = node else {
            return Err(SopsError::Metadata(
                "the sops section is not a mapping".into(),
            ));
        };
        let get = |key: &str| lookup(map, key).and_then(text_of);
        let version = get("version").unwrap_or_default();
        if version.is_empty() {
            return Err(SopsError::Metadata("Version string empty".into()));
        }
        let mut key_groups = Vec::new();
        for group in entries(lookup(map, "key_groups")) {
            key_groups.push(group_from(group)?);
        }
        if key_groups.is_empty() {
            key_groups.push(group_from(map)?);
        }
        let mut selection = Selection::All;
        for key in SELECTION_KEYS {
            if let Some(value) = get(key).filter(|v| !v.is_empty()) {
                if !matches!(selection, Selection::All) {
                    return Err(SopsError::Metadata(format!(
                        "cannot use more than one of {}",
                        SELECTION_KEYS.join(", ")
                    )));
                }
                selection = Selection::from_key(key, &value)?;
            }
        }
        let shamir_threshold = match get("shamir_threshold") {
            Some(text) => text
                .parse()
                .map_err(|_| SopsError::Metadata(format!("invalid shamir_threshold {text:?}")))?,
            None => 0,
        };
        Ok(Self {
            key_groups,
            shamir_threshold,
            lastmodified: get("lastmodified").unwrap_or_default(),
            mac: get("mac").unwrap_or_default(),
            selection,
            mac_only_encrypted: get("mac_only_encrypted")
                .is_some_and(|v| crate::sops::value::parse_bool(&v).unwrap_or(false)),
            version,
        })
    }

    /// The `sops` section in the current sops layout: keys sorted at every level,
    /// single-group keys at the top, several groups under `key_groups`.
    pub fn to_node(&self) -> Node {
        let mut top: Vec<(String, Node)> = Vec::new();
        match self.key_groups.as_slice() {
            [group] => top.extend(group_entries(group)),
            groups => top.push((
                "key_groups".into(),
                Node::List(
                    groups
                        .iter()
                        .map(|g| ListItem::Value(sorted_map(group_entries(g))))
                        .collect(),
                ),
            )),
        }
        top.push(("lastmodified".into(), Node::str(&self.lastmodified)));
        top.push(("mac".into(), Node::str(&self.mac)));
        if self.mac_only_encrypted {
            top.push((
                "mac_only_encrypted".into(),
                Node::Scalar(Scalar::Bool(true)),
            ));
        }
        if self.shamir_threshold > 0 && self.key_groups.len() > 1 {
            top.push((
                "shamir_threshold".into(),
                Node::Scalar(Scalar::Int(self.shamir_threshold as i64)),
            ));
        }
        if let Some((key, value)) = self.selection.to_key() {
            top.push((key.into(), Node::str(value)));
        }
        top.push(("version".into(), Node::str(&self.version)));
        sorted_map(top)
    }
}

fn sorted_map(mut entries: Vec<(String, Node)>) -> Node {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Node::Map(
        entries
            .into_iter()
            .map(|(k, v)| MapItem::Entry(k, v))
            .collect(),
    )
}

fn group_entries(group: &KeyGroup) -> Vec<(String, Node)> {
    let mut out = Vec::new();
    if !group.age.is_empty() {
        let list = group
            .age
            .iter()
            .map(|k| {
                ListItem::Value(sorted_map(vec![
                    ("recipient".into(), Node::str(&k.recipient)),
                    ("enc".into(), Node::str(&k.enc)),
                ]))
            })
            .collect();
        out.push(("age".into(), Node::List(list)));
    }
    if !group.kms.is_empty() {
        let list = group
            .kms
            .iter()
            .map(|k| {
                let mut fields = vec![
                    ("arn".into(), Node::str(&k.arn)),
                    ("created_at".into(), Node::str(&k.created_at)),
                    ("enc".into(), Node::str(&k.enc)),
                    ("aws_profile".into(), Node::str(&k.aws_profile)),
                ];
                if !k.role.is_empty() {
                    fields.push(("role".into(), Node::str(&k.role)));
                }
                if !k.context.is_empty() {
                    let context = k
                        .context
                        .iter()
                        .map(|(key, value)| (key.clone(), Node::str(value)))
                        .collect();
                    fields.push(("context".into(), sorted_map(context)));
                }
                ListItem::Value(sorted_map(fields))
            })
            .collect();
        out.push(("kms".into(), Node::List(list)));
    }
    for key_type in OTHER_KEY_TYPES {
        let list: Vec<ListItem> = group
            .other
            .iter()
            .filter(|(t, _)| t == key_type)
            .map(|(_, entry)| ListItem::Value(entry.clone()))
            .collect();
        if !list.is_empty() {
            out.push((key_type.into(), Node::List(list)));
        }
    }
    out
}

/// The current UTC time, RFC 3339 at second precision (`lastmodified`, `created_at`).
pub fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    crate::timefmt::format_unix(secs)
}

/// Flattens the metadata for dotenv (`prefix` `sops_`) and INI (no prefix): map levels
/// joined with `__map_`, list indices with `__list_<n>`, sorted by key.
pub fn flatten(node: &Node, prefix: &str) -> Vec<(String, String)> {
    fn walk(node: &Node, key: String, out: &mut Vec<(String, String)>) {
        match node {
            Node::Map(map) => {
                for item in map {
                    if let MapItem::Entry(k, v) = item {
                        let sub = if key.is_empty() {
                            k.clone()
                        } else {
                            format!("{key}__map_{k}")
                        };
                        walk(v, sub, out);
                    }
                }
            }
            Node::List(list) => {
                let values = list.iter().filter_map(|item| match item {
                    ListItem::Value(v) => Some(v),
                    ListItem::Comment(_) => None,
                });
                for (i, v) in values.enumerate() {
                    walk(v, format!("{key}__list_{i}"), out);
                }
            }
            Node::Scalar(scalar) => out.push((key, scalar.to_text())),
        }
    }
    let mut out = Vec::new();
    walk(node, String::new(), &mut out);
    for (key, _) in &mut out {
        key.insert_str(0, prefix);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Rebuilds the metadata tree from flattened `(key, value)` pairs (prefix removed), in
/// any order: sops writes them in Go's random map order (INI), or sorted as strings
/// (`__list_10` before `__list_2`). Keys are split as sops splits them, at every
/// `__map_` and `__list_`; mappings come out sorted by key, lists by index. A list
/// index that leaves a gap, a key that is both a value and a container, or a key
/// nested deeper than `limits::MAX_DEPTH` is malformed.
pub fn unflatten(pairs: &[(String, String)]) -> Result<Node, SopsError> {
    use std::collections::BTreeMap;

    /// A node being rebuilt: mappings by key, lists by index, until every pair is in.
    enum Partial {
        Map(BTreeMap<String, Partial>),
        List(BTreeMap<usize, Partial>),
        Leaf(String),
    }

    enum Step<'a> {
        Key(&'a str),
        Index(usize),
    }

    /// Splits a flattened key at every `__map_` / `__list_`, as sops' `tokenize` does;
    /// `None` when a list index is not a number.
    fn tokenize(key: &str) -> Option<Vec<Step<'_>>> {
        fn step(part: &str, list: bool) -> Option<Step<'_>> {
            Some(if list {
                Step::Index(part.parse().ok()?)
            } else {
                Step::Key(part)
            })
        }
        let mut steps = Vec::new();
        let (mut start, mut list, mut i) = (0, false, 0);
        while i < key.len() {
            let rest = &key.as_bytes()[i..];
            let separator = if rest.starts_with(b"__map_") {
                Some((6, false))
            } else if rest.starts_with(b"__list_") {
                Some((7, true))
            } else {
                None
            };
            match separator {
                Some((len, is_list)) => {
                    steps.push(step(&key[start..i], list)?);
                    list = is_list;
                    i += len;
                    start = i;
                }
                None => i += 1,
            }
        }
        steps.push(step(&key[start..], list)?);
        Some(steps)
    }

    /// The container the step after this one needs (a leaf after the last step).
    fn fresh(next: Option<&Step<'_>>) -> Partial {
        match next {
            Some(Step::Key(_)) => Partial::Map(BTreeMap::new()),
            Some(Step::Index(_)) => Partial::List(BTreeMap::new()),
            None => Partial::Leaf(String::new()),
        }
    }

    fn into_node(partial: Partial) -> Result<Node, String> {
        Ok(match partial {
            Partial::Leaf(text) => Node::str(text),
            Partial::Map(map) => Node::Map(
                map.into_iter()
                    .map(|(key, value)| Ok(MapItem::Entry(key, into_node(value)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Partial::List(list) => {
                let len = list.len();
                let mut items = Vec::with_capacity(len);
                for (expected, (index, value)) in list.into_iter().enumerate() {
                    if index != expected {
                        return Err(format!("list index {index} with {len} items"));
                    }
                    items.push(ListItem::Value(into_node(value)?));
                }
                Node::List(items)
            }
        })
    }

    let mut root = BTreeMap::new();
    for (key, value) in pairs {
        let bad = |why: &str| {
            SopsError::Metadata(format!("malformed flattened metadata key {key:?}: {why}"))
        };
        let steps = tokenize(key).ok_or_else(|| bad("a list index is not a number"))?;
        if steps.len() > crate::limits::MAX_DEPTH {
            return Err(bad(&crate::sops::tree::too_deep("")));
        }
        let Some((Step::Key(first), rest)) = steps.split_first() else {
            return Err(bad("it does not start with a key"));
        };
        // Walk down, making each container as the next step asks for.
        let mut slot = root
            .entry((*first).to_owned())
            .or_insert_with(|| fresh(rest.first()));
        for (at, step) in rest.iter().enumerate() {
            let next = rest.get(at + 1);
            slot = match (slot, step) {
                (Partial::Map(map), Step::Key(k)) => {
                    map.entry((*k).to_owned()).or_insert_with(|| fresh(next))
                }
                (Partial::List(list), Step::Index(i)) => {
                    list.entry(*i).or_insert_with(|| fresh(next))
                }
                _ => return Err(bad("it is both a mapping and a list, or a value")),
            };
        }
        // A key given twice: the last value wins, as it did in sops.
        match slot {
            Partial::Leaf(text) => *text = value.clone(),
            _ => return Err(bad("it is both a value and a mapping or list")),
        }
    }
    let map = root
        .into_iter()
        .map(|(key, value)| {
            into_node(value)
                .map(|node| MapItem::Entry(key.clone(), node))
                .map_err(|why| {
                    SopsError::Metadata(format!(
                        "malformed flattened metadata under {key:?}: {why}"
                    ))
                })
        })
        .collect::<Result<Map, SopsError>>()?;
    Ok(Node::Map(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_round_trips() {
        let meta = Metadata {
            key_groups: vec![KeyGroup {
                age: vec![AgeKey {
                    recipient: "age1x".into(),
                    enc: "-----BEGIN AGE ENCRYPTED FILE-----\nabc\n-----END AGE ENCRYPTED FILE-----\n"
                        .into(),
                }],
                ..KeyGroup::default()
            }],
            lastmodified: "2026-11-23T03:43:56Z".into(),
            mac: "ENC[x]".into(),
            selection: Selection::UnencryptedSuffix("_unencrypted".into()),
            version: WRITTEN_VERSION.into(),
            ..Metadata::default()
        };
        let flat = flatten(&meta.to_node(), "sops_");
        assert_eq!(flat[0].0, "sops_age__list_0__map_enc");
        let pairs: Vec<(String, String)> = flat
            .iter()
            .map(|(k, v)| (k.strip_prefix("sops_").unwrap().to_owned(), v.clone()))
            .collect();
        let back = Metadata::from_node(&unflatten(&pairs).unwrap()).unwrap();
        assert_eq!(back.key_groups[0].age, meta.key_groups[0].age);
        assert_eq!(back.version, WRITTEN_VERSION);
        assert!(
            matches!(back.selection, Selection::UnencryptedSuffix(ref s) if s == "_unencrypted")
        );
    }

    /// Metadata with `recipients` age keys in one group, or (with `groups`) a Shamir
    /// key group per recipient.
    fn metadata(recipients: usize, groups: bool) -> Metadata {
        let keys: Vec<AgeKey> = (0..recipients)
            .map(|i| AgeKey {
                recipient: format!("age1recipient{i}"),
                enc: format!("-----BEGIN AGE ENCRYPTED FILE-----\nkey {i}\n-----END AGE ENCRYPTED FILE-----\n"),
            })
            .collect();
        let key_groups = if groups {
            keys.into_iter()
                .map(|key| KeyGroup {
                    age: vec![key],
                    ..KeyGroup::default()
                })
                .collect()
        } else {
            vec![KeyGroup {
                age: keys,
                ..KeyGroup::default()
            }]
        };
        Metadata {
            shamir_threshold: if groups && recipients > 1 { 2 } else { 0 },
            key_groups,
            lastmodified: "2026-11-23T03:43:56Z".into(),
            mac: "ENC[x]".into(),
            selection: Selection::EncryptedRegex(regex::Regex::new("^data$").unwrap()),
            mac_only_encrypted: true,
            version: "3.11.0".into(),
        }
    }

    fn same(a: &Metadata, b: &Metadata) -> bool {
        a.key_groups == b.key_groups
            && a.shamir_threshold == b.shamir_threshold
            && a.lastmodified == b.lastmodified
            && a.mac == b.mac
            && a.selection.to_key() == b.selection.to_key()
            && a.mac_only_encrypted == b.mac_only_encrypted
            && a.version == b.version
    }

    #[test]
    fn flattened_keys_are_read_in_any_order() {
        // sops writes INI metadata in Go's random map order: `age__list_1__...` may come
        // before `age__list_0__...`. Every order reads back to the same metadata.
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        for recipients in 1..=4 {
            for groups in [false, true] {
                let meta = metadata(recipients, groups);
                let flat = flatten(&meta.to_node(), "");
                let expected = unflatten(&flat).unwrap();
                for round in 0..50 {
                    let mut shuffled = flat.clone();
                    for i in (1..shuffled.len()).rev() {
                        shuffled.swap(i, next(i + 1));
                    }
                    if round == 0 {
                        shuffled.reverse();
                    }
                    let node = unflatten(&shuffled).unwrap();
                    assert!(node == expected, "{recipients} recipients, {shuffled:?}");
                    assert!(same(&Metadata::from_node(&node).unwrap(), &meta));
                }
            }
        }
        // Sorted as strings, index 10 comes before index 2.
        let meta = metadata(12, false);
        let mut flat = flatten(&meta.to_node(), "");
        flat.sort();
        assert!(same(
            &Metadata::from_node(&unflatten(&flat).unwrap()).unwrap(),
            &meta
        ));
    }

    #[test]
    fn malformed_flattened_keys_are_refused() {
        let pairs = |keys: &[&str]| -> Vec<(String, String)> {
            keys.iter()
                .map(|k| ((*k).to_owned(), "v".to_owned()))
                .collect()
        };
        for (keys, why) in [
            (
                &["age__list_1__map_recipient"][..],
                "list index 1 with 1 items",
            ),
            (&["age__list_0", "age__list_0__map_enc"][..], "both"),
            (
                &["age__list_0__map_enc", "age__map_x"][..],
                "both a mapping and a list",
            ),
            (&["age__list_x__map_enc"][..], "not a number"),
            (&["age__list_99999999999999999999999"][..], "not a number"),
        ] {
            let error = unflatten(&pairs(keys)).err().expect("refused").to_string();
            assert!(
                error.starts_with("invalid sops metadata: malformed flattened metadata")
                    && error.contains(why),
                "{error}"
            );
        }
        let deep = format!("a{}", "__map_b".repeat(10_000));
        let error = unflatten(&pairs(&[&deep])).err().unwrap().to_string();
        assert!(error.ends_with("nesting deeper than 128 levels"), "{error}");
        // Separators are found anywhere, as sops finds them; other underscores are text.
        let node = unflatten(&pairs(&["a__b", "c___map_d"])).unwrap();
        assert_eq!(node.get("a__b").and_then(Node::as_str), Some("v"));
        assert_eq!(
            node.get("c_")
                .and_then(|n| n.get("d"))
                .and_then(Node::as_str),
            Some("v")
        );
    }

    #[test]
    fn version_is_required() {
        let node = Node::Map(vec![MapItem::Entry("mac".into(), Node::str("x"))]);
        assert!(Metadata::from_node(&node).is_err());
    }

    /// Found by fuzzing: JSON metadata whose entries repeat a key was kept with both, and
    /// the YAML written from it repeated a mapping key, which YAML readers refuse.
    #[test]
    fn repeated_json_keys_read_as_the_last_as_go_reads_them() {
        use crate::sops::store::{Format, Layout};
        let json = br#"{"sops": {
            "kms": [{"arn": "arn:a", "enc": "first", "enc": "e1",
                     "context": {"app": "x", "app": "y"}}],
            "pgp": [{"fp": "F1", "enc": "-----BEGIN PGP", "enc": "kept", "fp": "F2"}],
            "lastmodified": "2026-01-01T00:00:00Z", "mac": "ENC[m]",
            "version": "3.0.0", "version": "3.11.0"}}"#;
        let (_, meta) = Format::Json.parse_encrypted(json).unwrap();
        assert_eq!(meta.version, "3.11.0");
        let group = &meta.key_groups[0];
        assert_eq!(group.kms[0].enc, "e1");
        assert_eq!(group.kms[0].context, vec![("app".into(), "y".into())]);
        let Node::Map(pgp) = &group.other[0].1 else {
            panic!("a pgp entry is a mapping")
        };
        let entries: Vec<(&str, &str)> = pgp
            .iter()
            .filter_map(|item| match item {
                MapItem::Entry(k, v) => Some((k.as_str(), v.as_str()?)),
                MapItem::Comment(_) => None,
            })
            .collect();
        assert_eq!(entries, [("fp", "F2"), ("enc", "kept")]);
        let tree = crate::sops::tree::Tree::new(vec![Vec::new()]);
        let yaml = Format::Yaml
            .emit_encrypted(&tree, &meta, &Layout::default())
            .unwrap();
        let (_, again) = Format::Yaml.parse_encrypted(&yaml).unwrap();
        assert!(same(&meta, &again));
    }
}
