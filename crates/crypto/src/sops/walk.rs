//! Encrypting and decrypting a whole tree: which leaves are encrypted (the six selection
//! rules and the comment stack), each value's key-path AAD, the MAC, and the IV stash that
//! keeps unchanged values byte-identical when a file is re-encrypted.

use std::collections::HashMap;

use regex::Regex;

use crate::error::SopsError;
use crate::limits::MAX_DEPTH;
use crate::primitives;
use crate::sops::mac::{Mac, MacHasher};
use crate::sops::tree::{ListItem, Map, MapItem, Node, Scalar, Tree, too_deep};
use crate::sops::value::{EncryptedValue, IV_LEN, ValueCipher, ValueType};
use zeroize::Zeroizing;

/// Which leaves are encrypted: at most one of sops' six options, or none (everything).
#[derive(Clone, Debug, Default)]
pub enum Selection {
    /// Everything is encrypted (the binary store, or no option at all).
    #[default]
    All,
    /// Leaves with no path component ending in the suffix.
    UnencryptedSuffix(String),
    /// Leaves with some path component ending in the suffix.
    EncryptedSuffix(String),
    /// Leaves with no path component matching the regex.
    UnencryptedRegex(Regex),
    /// Leaves with some path component matching the regex.
    EncryptedRegex(Regex),
    /// Leaves with no comment in scope matching the regex.
    UnencryptedCommentRegex(Regex),
    /// Leaves with some comment in scope matching the regex.
    EncryptedCommentRegex(Regex),
}

/// The metadata keys of the six options, in the order sops writes them.
pub const SELECTION_KEYS: [&str; 6] = [
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
];

impl Selection {
    /// The option named by its metadata key (`unencrypted_suffix`, ...), with its value.
    pub fn from_key(key: &str, value: &str) -> Result<Self, SopsError> {
        let regex = || {
            Regex::new(value)
                .map_err(|e| SopsError::Config(format!("invalid {key} {value:?}: {e}")))
        };
        Ok(match key {
            "unencrypted_suffix" => Self::UnencryptedSuffix(value.to_owned()),
            "encrypted_suffix" => Self::EncryptedSuffix(value.to_owned()),
            "unencrypted_regex" => Self::UnencryptedRegex(regex()?),
            "encrypted_regex" => Self::EncryptedRegex(regex()?),
            "unencrypted_comment_regex" => Self::UnencryptedCommentRegex(regex()?),
            "encrypted_comment_regex" => Self::EncryptedCommentRegex(regex()?),
            other => {
                return Err(SopsError::Config(format!(
                    "unknown selection option {other}"
                )));
            }
        })
    }

    /// The metadata key and value of this option (`None` for [`Selection::All`]).
    pub fn to_key(&self) -> Option<(&'static str, &str)> {
        Some(match self {
            Self::All => return None,
            Self::UnencryptedSuffix(s) => (SELECTION_KEYS[0], s.as_str()),
            Self::EncryptedSuffix(s) => (SELECTION_KEYS[1], s.as_str()),
            Self::UnencryptedRegex(r) => (SELECTION_KEYS[2], r.as_str()),
            Self::EncryptedRegex(r) => (SELECTION_KEYS[3], r.as_str()),
            Self::UnencryptedCommentRegex(r) => (SELECTION_KEYS[4], r.as_str()),
            Self::EncryptedCommentRegex(r) => (SELECTION_KEYS[5], r.as_str()),
        })
    }

    /// Whether one path component matches the option's suffix or regex.
    fn key_matches(&self, key: &str) -> bool {
        match self {
            Self::UnencryptedSuffix(s) | Self::EncryptedSuffix(s) => key.ends_with(s.as_str()),
            Self::UnencryptedRegex(r) | Self::EncryptedRegex(r) => r.is_match(key),
            _ => false,
        }
    }

    /// Whether a comment's text matches the option's comment regex.
    fn comment_matches(&self, text: &str) -> bool {
        match self {
            Self::UnencryptedCommentRegex(r) | Self::EncryptedCommentRegex(r) => r.is_match(text),
            _ => false,
        }
    }

    fn uses_comments(&self) -> bool {
        matches!(
            self,
            Self::UnencryptedCommentRegex(_) | Self::EncryptedCommentRegex(_)
        )
    }
}

/// The IVs of the values of a decrypted file, so that re-encrypting an unchanged value
/// (same path, type and plaintext) gives the same `ENC[...]` text. Holds digests, never
/// plaintexts.
#[derive(Default)]
pub struct IvStash {
    ivs: HashMap<[u8; 32], [u8; IV_LEN]>,
}

impl IvStash {
    fn digest(aad: &[u8], value_type: ValueType, plaintext: &[u8]) -> [u8; 32] {
        let mut input = Vec::with_capacity(aad.len() + plaintext.len() + 16);
        input.extend_from_slice(&(aad.len() as u64).to_be_bytes());
        input.extend_from_slice(aad);
        input.extend_from_slice(value_type.as_str().as_bytes());
        input.push(0);
        input.extend_from_slice(plaintext);
        let digest = primitives::sha256(&input);
        zeroize::Zeroize::zeroize(&mut input);
        digest
    }
}

/// Where a leaf sits: everything the selection rules look at.
struct Scope {
    /// AAD: the mapping keys from the root, each followed by `:`.
    aad: Vec<u8>,
    /// Some path component matched the option's suffix or regex.
    key_matched: bool,
    /// For each nesting level, whether each comment since the last value matched.
    comments: Vec<Vec<bool>>,
}

impl Scope {
    fn encrypted(&self, selection: &Selection, is_comment: bool) -> bool {
        match selection {
            Selection::All => true,
            Selection::UnencryptedSuffix(_) | Selection::UnencryptedRegex(_) => !self.key_matched,
            Selection::EncryptedSuffix(_) | Selection::EncryptedRegex(_) => self.key_matched,
            Selection::UnencryptedCommentRegex(_) => !self.comments.iter().flatten().any(|m| *m),
            Selection::EncryptedCommentRegex(_) => {
                // A matching comment does not encrypt itself, only what follows it.
                let levels = self.comments.len();
                self.comments.iter().enumerate().any(|(i, level)| {
                    let skip_last = is_comment && i + 1 == levels;
                    let n = level.len() - usize::from(skip_last && !level.is_empty());
                    level[..n].iter().any(|m| *m)
                })
            }
        }
    }
}

/// What a walk does at each leaf.
enum Mode<'a> {
    Encrypt(Option<&'a IvStash>),
    Decrypt(Option<&'a mut IvStash>),
}

/// Where the plaintext bytes for the MAC go: the hasher, or — in one part of a document
/// walked in parallel — a buffer hashed afterwards in document order (the MAC is a hash of
/// the concatenated plaintexts, so the result is the same).
enum MacSink {
    Hasher(MacHasher),
    Buffer(Zeroizing<Vec<u8>>),
}

impl MacSink {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Hasher(hasher) => hasher.update(bytes),
            Self::Buffer(buffer) => buffer.extend_from_slice(bytes),
        }
    }
}

struct Walker<'a> {
    cipher: &'a ValueCipher,
    selection: &'a Selection,
    mac_only_encrypted: bool,
    mac: MacSink,
    mode: Mode<'a>,
    scope: Scope,
}

/// A document with at least this many values (and comments) is split over the CPUs.
const PARALLEL_MIN_ITEMS: usize = 1024;

/// How many values and comments `items` hold, at every level: the work of walking them.
fn weight(items: &[MapItem]) -> usize {
    fn node(value: &Node) -> usize {
        match value {
            Node::Scalar(_) => 1,
            Node::Map(map) => weight(map),
            Node::List(list) => list
                .iter()
                .map(|item| match item {
                    ListItem::Value(value) => node(value),
                    ListItem::Comment(_) => 1,
                })
                .sum(),
        }
    }
    items
        .iter()
        .map(|item| match item {
            MapItem::Entry(_, value) => node(value),
            MapItem::Comment(_) => 1,
        })
        .sum()
}

/// `map` cut into at most `parts` runs of top-level items holding about the same weight.
fn balanced(map: &mut [MapItem], parts: usize) -> Vec<&mut [MapItem]> {
    let weights: Vec<usize> = map
        .iter()
        .map(|item| weight(std::slice::from_ref(item)))
        .collect();
    let total: usize = weights.iter().sum();
    let mut runs = Vec::with_capacity(parts);
    let mut rest = map;
    let (mut at, mut done) = (0, 0);
    for part in 1..parts {
        let mut end = at;
        while end < weights.len() && done + weights[end] / 2 < total * part / parts {
            done += weights[end];
            end += 1;
        }
        let (run, tail) = std::mem::take(&mut rest).split_at_mut(end - at);
        runs.push(run);
        rest = tail;
        at = end;
    }
    runs.push(rest);
    runs
}

/// Walks every document in `mode`; large documents are split into runs of top-level items
/// of about the same weight, walked on every CPU, unless a comment-regex selection (whose
/// comment stack spans the whole level) or an IV stash being filled needs one walk in
/// order.
fn walk(
    tree: &mut Tree,
    cipher: &ValueCipher,
    selection: &Selection,
    mac_only_encrypted: bool,
    mode: Mode<'_>,
) -> Result<Mac, SopsError> {
    // What each part's walker gets: encryption (with the read-only stash), or decryption.
    let encrypt_stash: Option<Option<&IvStash>> = match &mode {
        Mode::Encrypt(stash) => Some(*stash),
        Mode::Decrypt(_) => None,
    };
    let large = !selection.uses_comments()
        && !matches!(mode, Mode::Decrypt(Some(_)))
        && tree
            .documents
            .iter()
            .any(|d| d.len() > 1 && weight(d) >= PARALLEL_MIN_ITEMS);
    // Asked only for a large document: the answer reads cgroup files, a cost a one-shot
    // command on a small file would notice.
    let threads = if large {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1
    };
    let parallel = threads > 1;
    if !parallel {
        let sink = MacSink::Hasher(MacHasher::new(mac_only_encrypted));
        let mut walker = Walker::new(cipher, selection, mac_only_encrypted, mode, sink);
        for map in &mut tree.documents {
            walker.map(map)?;
        }
        let MacSink::Hasher(hasher) = walker.mac else {
            unreachable!("the sequential walk hashes directly")
        };
        return Ok(hasher.finish());
    }
    let mut hasher = MacHasher::new(mac_only_encrypted);
    for map in &mut tree.documents {
        let parts: Vec<Result<Zeroizing<Vec<u8>>, SopsError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = balanced(map, threads)
                .into_iter()
                .map(|part| {
                    scope.spawn(move || {
                        let mode = match encrypt_stash {
                            Some(stash) => Mode::Encrypt(stash),
                            None => Mode::Decrypt(None),
                        };
                        let sink = MacSink::Buffer(Zeroizing::new(Vec::new()));
                        let mut walker =
                            Walker::new(cipher, selection, mac_only_encrypted, mode, sink);
                        walker.items(part)?;
                        match walker.mac {
                            MacSink::Buffer(buffer) => Ok(buffer),
                            MacSink::Hasher(_) => unreachable!("parts record into buffers"),
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a SOPS worker thread panicked"))
                .collect()
        });
        for part in parts {
            hasher.update(&part?);
        }
    }
    Ok(hasher.finish())
}

/// Encrypts every selected value and comment of `tree` in place and returns the MAC over
/// the plaintexts (all values, or only the encrypted ones with `mac_only_encrypted`).
/// With a `stash` from [`decrypt`], unchanged values keep their IVs.
pub fn encrypt(
    tree: &mut Tree,
    cipher: &ValueCipher,
    selection: &Selection,
    mac_only_encrypted: bool,
    stash: Option<&IvStash>,
) -> Result<Mac, SopsError> {
    walk(
        tree,
        cipher,
        selection,
        mac_only_encrypted,
        Mode::Encrypt(stash),
    )
}

/// Decrypts every encrypted value and comment of `tree` in place and returns the MAC
/// computed over the plaintexts. Fills `stash` with the IVs seen.
pub fn decrypt(
    tree: &mut Tree,
    cipher: &ValueCipher,
    selection: &Selection,
    mac_only_encrypted: bool,
    stash: Option<&mut IvStash>,
) -> Result<Mac, SopsError> {
    walk(
        tree,
        cipher,
        selection,
        mac_only_encrypted,
        Mode::Decrypt(stash),
    )
}

/// The path of an AAD, for error messages: `a:b:` → `a.b`.
fn path_of(aad: &[u8]) -> String {
    let text = String::from_utf8_lossy(aad);
    let text = text.strip_suffix(':').unwrap_or(&text);
    if text.is_empty() {
        "(top level)".to_owned()
    } else {
        text.replace(':', ".")
    }
}

impl<'a> Walker<'a> {
    fn new(
        cipher: &'a ValueCipher,
        selection: &'a Selection,
        mac_only_encrypted: bool,
        mode: Mode<'a>,
        mac: MacSink,
    ) -> Self {
        Self {
            cipher,
            selection,
            mac_only_encrypted,
            mac,
            mode,
            scope: Scope {
                aad: Vec::new(),
                key_matched: false,
                comments: Vec::new(),
            },
        }
    }

    fn note_comment(&mut self, text: &str) {
        if self.selection.uses_comments() {
            let matched = self.selection.comment_matches(text);
            if let Some(level) = self.scope.comments.last_mut() {
                level.push(matched);
            }
        }
    }

    fn clear_comments(&mut self) {
        if let Some(level) = self.scope.comments.last_mut() {
            level.clear();
        }
    }

    fn map(&mut self, map: &mut Map) -> Result<(), SopsError> {
        self.items(map)
    }

    /// Opens one level of nesting (a mapping or a list): the comment stack has one entry
    /// per level. Trees deeper than [`MAX_DEPTH`] are refused before recursing further.
    fn enter(&mut self) -> Result<(), SopsError> {
        if self.scope.comments.len() >= MAX_DEPTH {
            return Err(SopsError::Unsupported(too_deep("")));
        }
        self.scope.comments.push(Vec::new());
        Ok(())
    }

    /// The items of one mapping (or a run of them).
    fn items(&mut self, items: &mut [MapItem]) -> Result<(), SopsError> {
        self.enter()?;
        for item in items.iter_mut() {
            match item {
                MapItem::Comment(text) => {
                    self.note_comment(text);
                    self.comment(text)?;
                }
                MapItem::Entry(key, value) => {
                    let (aad_len, matched) = (self.scope.aad.len(), self.scope.key_matched);
                    self.scope.aad.extend_from_slice(key.as_bytes());
                    self.scope.aad.push(b':');
                    self.scope.key_matched |= self.selection.key_matches(key);
                    self.node(value)?;
                    self.scope.aad.truncate(aad_len);
                    self.scope.key_matched = matched;
                    self.clear_comments();
                }
            }
        }
        self.scope.comments.pop();
        Ok(())
    }

    fn node(&mut self, node: &mut Node) -> Result<(), SopsError> {
        match node {
            Node::Map(map) => self.map(map),
            Node::List(list) => {
                self.enter()?;
                for item in list.iter_mut() {
                    let comment = match item {
                        ListItem::Comment(text) => {
                            self.note_comment(text);
                            self.comment(text)?;
                            continue;
                        }
                        ListItem::Value(value) => self.list_value(value)?,
                    };
                    // A value that decrypted to a comment (sops writes encrypted comments
                    // inside lists as `- ENC[...,type:comment]`).
                    if let Some(text) = comment {
                        *item = ListItem::Comment(text);
                    }
                    self.clear_comments();
                }
                self.scope.comments.pop();
                Ok(())
            }
            Node::Scalar(scalar) => self.scalar(scalar).map(drop),
        }
    }

    fn list_value(&mut self, value: &mut Node) -> Result<Option<String>, SopsError> {
        match value {
            Node::Scalar(scalar) => self.scalar(scalar),
            other => self.node(other).map(|()| None),
        }
    }

    /// Encrypts or decrypts one leaf; returns the text of a value that decrypted to a
    /// comment.
    fn scalar(&mut self, scalar: &mut Scalar) -> Result<Option<String>, SopsError> {
        if matches!(scalar, Scalar::Null) {
            return Ok(None);
        }
        let encrypted = self.scope.encrypted(self.selection, false);
        let hashed = !self.mac_only_encrypted || encrypted;
        match &mut self.mode {
            Mode::Encrypt(stash) => {
                let (plaintext, value_type) = scalar.to_plaintext().expect("not null");
                if hashed {
                    self.mac.update(&plaintext);
                }
                if encrypted && !plaintext.is_empty() {
                    let text = encrypt_with_stash(
                        self.cipher,
                        *stash,
                        &plaintext,
                        value_type,
                        &self.scope.aad,
                    );
                    drop(plaintext);
                    *scalar = Scalar::Str(text);
                }
                Ok(None)
            }
            Mode::Decrypt(stash) => {
                if !encrypted {
                    if hashed && let Some((plaintext, _)) = scalar.to_plaintext() {
                        self.mac.update(&plaintext);
                    }
                    return Ok(None);
                }
                let text = match scalar {
                    Scalar::Str(text) if text.is_empty() => return Ok(None),
                    Scalar::Str(text) => text,
                    _ => {
                        return Err(SopsError::Value {
                            path: path_of(&self.scope.aad),
                            source: Box::new(SopsError::NotEncrypted),
                        });
                    }
                };
                let plain = self
                    .cipher
                    .decrypt(text, &self.scope.aad)
                    .map_err(|source| SopsError::Value {
                        path: path_of(&self.scope.aad),
                        source: Box::new(source),
                    })?;
                if let Some(stash) = stash {
                    let digest =
                        IvStash::digest(&self.scope.aad, plain.value_type(), plain.bytes());
                    stash.ivs.insert(digest, *plain.iv());
                }
                match Scalar::from_plaintext(&plain) {
                    Ok(Some(value)) => {
                        if hashed {
                            self.mac.update(plain.bytes());
                        }
                        *scalar = value;
                        Ok(None)
                    }
                    Ok(None) => Ok(Some(plain.as_str().unwrap_or_default().to_owned())),
                    Err(source) => Err(SopsError::Value {
                        path: path_of(&self.scope.aad),
                        source: Box::new(source),
                    }),
                }
            }
        }
    }

    fn comment(&mut self, text: &mut String) -> Result<(), SopsError> {
        if !self.scope.encrypted(self.selection, true) || text.is_empty() {
            return Ok(());
        }
        // A comment's AAD is its container's path; at the top level that is just `:`.
        if self.scope.aad.is_empty() {
            self.scope.aad.push(b':');
            let result = self.comment_at_path(text);
            self.scope.aad.clear();
            return result;
        }
        self.comment_at_path(text)
    }

    fn comment_at_path(&mut self, text: &mut String) -> Result<(), SopsError> {
        match &mut self.mode {
            Mode::Encrypt(stash) => {
                let encrypted = encrypt_with_stash(
                    self.cipher,
                    *stash,
                    text.as_bytes(),
                    ValueType::Comment,
                    &self.scope.aad,
                );
                if let Selection::UnencryptedCommentRegex(regex) = self.selection
                    && regex.is_match(&encrypted)
                {
                    return Err(SopsError::Config(format!(
                        "an encrypted comment matches unencrypted_comment_regex {:?}; make sure the regex cannot match ENC[...] text",
                        regex.as_str()
                    )));
                }
                *text = encrypted;
            }
            Mode::Decrypt(stash) => {
                if !EncryptedValue::is_encrypted(text) {
                    return Ok(());
                }
                // A comment that does not decrypt was written in the clear by an old sops.
                if let Ok(plain) = self.cipher.decrypt(text, &self.scope.aad) {
                    if let Some(stash) = stash {
                        let digest =
                            IvStash::digest(&self.scope.aad, plain.value_type(), plain.bytes());
                        stash.ivs.insert(digest, *plain.iv());
                    }
                    *text = String::from_utf8_lossy(plain.bytes()).into_owned();
                }
            }
        }
        Ok(())
    }
}

fn encrypt_with_stash(
    cipher: &ValueCipher,
    stash: Option<&IvStash>,
    plaintext: &[u8],
    value_type: ValueType,
    aad: &[u8],
) -> String {
    let iv = stash.and_then(|stash| {
        stash
            .ivs
            .get(&IvStash::digest(aad, value_type, plaintext))
            .copied()
    });
    match iv {
        Some(iv) => cipher.encrypt_with_iv(plaintext, value_type, aad, &iv),
        None => cipher.encrypt(plaintext, value_type, aad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataKey;

    fn doc() -> Tree {
        Tree::new(vec![vec![
            MapItem::Comment(" top".into()),
            MapItem::Entry("user".into(), Node::str("admin")),
            MapItem::Entry("port_unencrypted".into(), Node::Scalar(Scalar::Int(5432))),
            MapItem::Entry(
                "list".into(),
                Node::List(vec![
                    ListItem::Comment(" in list".into()),
                    ListItem::Value(Node::Scalar(Scalar::Bool(true))),
                    ListItem::Value(Node::Scalar(Scalar::Null)),
                    ListItem::Value(Node::str("")),
                ]),
            ),
        ]])
    }

    #[test]
    fn trees_deeper_than_the_limit_are_refused() {
        let cipher = ValueCipher::new(&DataKey::generate());
        let deep = |levels: usize, list: bool| {
            let mut node = Node::str("secret");
            for _ in 1..levels {
                node = if list {
                    Node::List(vec![ListItem::Value(node)])
                } else {
                    Node::Map(vec![MapItem::Entry("k".into(), node)])
                };
            }
            Tree::new(vec![vec![MapItem::Entry("top".into(), node)]])
        };
        for list in [false, true] {
            let mut fits = deep(MAX_DEPTH, list);
            encrypt(&mut fits, &cipher, &Selection::All, false, None).unwrap();
            decrypt(&mut fits, &cipher, &Selection::All, false, None).unwrap();
            let mut over = deep(MAX_DEPTH + 1, list);
            let error = encrypt(&mut over, &cipher, &Selection::All, false, None)
                .err()
                .expect("refused");
            assert_eq!(error.to_string(), "nesting deeper than 128 levels");
            assert!(decrypt(&mut over, &cipher, &Selection::All, false, None).is_err());
        }
    }

    #[test]
    fn round_trip_with_the_default_suffix_and_stable_ivs() {
        let key = DataKey::generate();
        let cipher = ValueCipher::new(&key);
        let selection = Selection::UnencryptedSuffix("_unencrypted".into());
        let mut tree = doc();
        let mac = encrypt(&mut tree, &cipher, &selection, false, None).unwrap();
        let encrypted = tree.documents.clone();
        let MapItem::Comment(top) = &encrypted[0][0] else {
            panic!()
        };
        assert!(top.ends_with(",type:comment]"));
        assert!(
            crate::sops::tree::get(&encrypted[0], "port_unencrypted")
                == Some(&Node::Scalar(Scalar::Int(5432)))
        );
        let mut stash = IvStash::default();
        let again = decrypt(&mut tree, &cipher, &selection, false, Some(&mut stash)).unwrap();
        assert_eq!(again.expose(), mac.expose());
        assert!(tree.documents == doc().documents);
        // Re-encrypting with the stash reproduces every ENC[...] byte for byte.
        encrypt(&mut tree, &cipher, &selection, false, Some(&stash)).unwrap();
        assert!(tree.documents == encrypted);
    }

    #[test]
    fn large_documents_walked_in_parallel_give_the_sequential_result() {
        let key = DataKey::generate();
        let cipher = ValueCipher::new(&key);
        let selection = Selection::UnencryptedSuffix("_unencrypted".into());
        let items: Map = (0..3 * PARALLEL_MIN_ITEMS)
            .map(|i| match i % 3 {
                0 => MapItem::Comment(format!(" comment {i}")),
                1 => MapItem::Entry(format!("k{i}"), Node::str(format!("value {i}"))),
                _ => MapItem::Entry(
                    format!("n{i}_unencrypted"),
                    Node::Scalar(Scalar::Int(i as i64)),
                ),
            })
            .collect();
        let mut tree = Tree::new(vec![items.clone()]);
        // Parallel encryption (no comment selection, no stash being filled).
        let mac = encrypt(&mut tree, &cipher, &selection, false, None).unwrap();
        let encrypted = tree.documents.clone();
        // Sequential decryption (filling a stash) and parallel decryption agree with it.
        let mut stash = IvStash::default();
        let sequential = decrypt(&mut tree, &cipher, &selection, false, Some(&mut stash)).unwrap();
        assert_eq!(sequential.expose(), mac.expose());
        assert!(tree.documents[0] == items);
        let mut again = Tree::new(encrypted.clone());
        let parallel = decrypt(&mut again, &cipher, &selection, false, None).unwrap();
        assert_eq!(parallel.expose(), mac.expose());
        assert!(again.documents[0] == items);
        // An error is reported for the first failing value in document order.
        let mut broken = Tree::new(encrypted);
        broken.documents[0][4] = MapItem::Entry(
            "k4".into(),
            Node::str("ENC[AES256_GCM,data:AA==,iv:x,tag:y,type:str]"),
        );
        let Err(error) = decrypt(&mut broken, &cipher, &selection, false, None) else {
            panic!("a broken value decrypted");
        };
        assert!(error.to_string().starts_with("k4:"), "{error}");
    }

    #[test]
    fn nested_documents_are_split_by_weight_and_give_the_sequential_result() {
        let group = |g: usize, n: usize| {
            let keys = (0..n)
                .map(|i| MapItem::Entry(format!("k{i}"), Node::str(format!("v{g}.{i}"))))
                .collect();
            MapItem::Entry(format!("group{g}"), Node::Map(keys))
        };
        // Two parts of about the same number of values, whatever the number of items.
        let mut map: Map = [1, 1, 1, 1, 96]
            .iter()
            .enumerate()
            .map(|(g, n)| group(g, *n))
            .collect();
        let sizes: Vec<usize> = balanced(&mut map, 2)
            .iter()
            .map(|run| weight(run))
            .collect();
        assert_eq!(sizes, [4, 96]);
        let mut map: Map = (0..20).map(|g| group(g, 100)).collect();
        let sizes: Vec<usize> = balanced(&mut map, 3).iter().map(|run| run.len()).collect();
        assert_eq!(sizes, [7, 6, 7]);
        assert_eq!(balanced(&mut map, 1).len(), 1);

        // 20 top-level items, 2,000 values: walked in parallel, as the sequential walk.
        let key = DataKey::generate();
        let cipher = ValueCipher::new(&key);
        let selection = Selection::All;
        let mut tree = Tree::new(vec![map.clone()]);
        let mac = encrypt(&mut tree, &cipher, &selection, false, None).unwrap();
        let mut stash = IvStash::default();
        let sequential = decrypt(&mut tree, &cipher, &selection, false, Some(&mut stash)).unwrap();
        assert_eq!(sequential.expose(), mac.expose());
        assert!(tree.documents[0] == map);
    }

    #[test]
    fn comment_regexes_follow_the_comment_stack() {
        let key = DataKey::generate();
        let cipher = ValueCipher::new(&key);
        let selection = Selection::EncryptedCommentRegex(Regex::new("sops:enc").unwrap());
        let mut tree = Tree::new(vec![vec![
            MapItem::Entry("clear".into(), Node::str("a")),
            MapItem::Comment(" sops:enc".into()),
            MapItem::Comment(" secret comment".into()),
            MapItem::Entry("secret".into(), Node::str("b")),
            MapItem::Entry("after".into(), Node::str("c")),
        ]]);
        encrypt(&mut tree, &cipher, &selection, false, None).unwrap();
        let doc = &tree.documents[0];
        let texts: Vec<bool> = doc
            .iter()
            .map(|item| match item {
                MapItem::Comment(text) => EncryptedValue::is_encrypted(text),
                MapItem::Entry(_, node) => EncryptedValue::is_encrypted(node.as_str().unwrap()),
            })
            .collect();
        assert_eq!(texts, [false, false, true, true, false]);
    }
}
