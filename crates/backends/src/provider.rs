//! Secret providers: where an ExternalSecret's values come from (HashiCorp Vault / OpenBao
//! KV, later AWS Secrets Manager), behind one object-safe trait, [`SecretProvider`].
//!
//! | you want to…                                              | use                                  |
//! |-----------------------------------------------------------|--------------------------------------|
//! | read one remote secret once, then take many properties    | [`SecretProvider::get_map`], then [`SecretMap::value`] per `data[]` entry |
//! | `data[].remoteRef` without `property` (whole secret)      | [`SecretMap::value`]`(None)` = [`SecretMap::to_json`] (Vault), the raw payload for a [`SecretMap::raw`] (AWS) |
//! | `dataFrom.extract` (splat a secret, or a property of it)  | [`SecretMap::extract`]               |
//! | `dataFrom.find` (many secrets by path, name regexp, tags) | [`SecretProvider::find`] with a [`FindQuery`] |
//! | the current versions of many keys, in few provider calls | [`SecretProvider::get_many`] (up to [`SecretProvider::batch_size`] keys a call) |
//! | check a SecretStore's configuration and credentials       | [`SecretProvider::validate`]         |
//! | decide whether a failure may delete a target Secret       | only [`ProviderError::NotFound`]     |
//!
//! Values are [`SecretValue`]s: bytes wiped when dropped, with no `Debug`, `Clone` or
//! `Serialize`. Error messages name keys and properties, never values.
//!
//! ## Byte values, as ESO computes them
//!
//! A provider returns a secret's data as a JSON object. Each top-level value becomes bytes
//! as ESO's `GetByteValue` does: a string → its raw UTF-8 bytes; a number → its JSON text;
//! `true`/`false`; `null` → empty; an object or array → compact JSON with object keys
//! sorted and `<`, `>`, `&`, U+2028, U+2029 escaped as `\u003c`… (Go's `json.Marshal`).
//! The whole secret (no `property`) is that same Go-style JSON of the data map, whatever the
//! number of keys. Deviation: numbers are re-printed by `serde_json`, so `1.50` becomes
//! `1.5` and integers beyond 64 bits lose precision (Go keeps `json.Number` verbatim).
//!
//! ## Properties: the gjson subset
//!
//! [`SecretMap::property`] first looks the property up as an exact top-level key (so a key
//! `a.b` is found as `a.b`), then as a gjson path, of which this subset is implemented:
//!
//! | syntax      | meaning                                             |
//! |-------------|-----------------------------------------------------|
//! | `a.b.c`     | nested object keys                                  |
//! | `list.0`    | array element by index                              |
//! | `a\.b`      | a key containing a dot (`\` escapes the next character) |
//! | `list.#`    | the length of an array (last component only)       |
//!
//! Wildcards (`*`, `?`), queries (`#(...)`), modifiers (`@...`) and pipes (`|`) are
//! rejected as [`ProviderError::Invalid`]. A selected string gives its raw bytes, any other
//! value its JSON text (`null` → empty), as gjson's `String()` does.
//!
//! ```
//! use gitseal_backends::provider::SecretMap;
//!
//! let map = SecretMap::from_json("app/db", br#"{"user":"u","db":{"port":5432,"hosts":["a","b"]}}"#)?;
//! assert_eq!(map.property("user")?.as_bytes(), b"u");
//! assert_eq!(map.property("db.port")?.as_bytes(), b"5432");
//! assert_eq!(map.property("db.hosts.1")?.as_bytes(), b"b");
//! assert_eq!(map.property("db.hosts.#")?.as_bytes(), b"2");
//! assert_eq!(map.value(None)?.as_bytes(), br#"{"db":{"hosts":["a","b"],"port":5432},"user":"u"}"#);
//! assert_eq!(map.property("nope").err().unwrap().kind(), "PropertyNotFound");
//! # Ok::<(), gitseal_backends::provider::ProviderError>(())
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

/// A boxed `Send` future, the return type of [`SecretProvider`]'s methods (which keeps the
/// trait usable as `Arc<dyn SecretProvider>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A fetched secret value: bytes that are wiped when dropped; no Debug, Clone or Serialize.
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, still wiped when dropped.
    pub fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A copy (explicit, since `SecretValue` is deliberately not `Clone`).
    pub fn duplicate(&self) -> Self {
        Self::new(self.0.to_vec())
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretValue {
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }
}

/// What went wrong reading from a provider. Messages name keys and paths, never values.
///
/// Only [`ProviderError::NotFound`] says that the secret definitely does not exist (Vault:
/// a 404 on a read, or a KV v2 version that is soft-deleted or destroyed); only it may lead
/// to deleting a target Secret.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The secret (or the requested version) does not exist, or was deleted.
    #[error("secret {key:?} not found")]
    NotFound {
        /// The remote key as given.
        key: String,
    },
    /// The secret exists (or may exist) but has no such property. Not a reason to delete.
    #[error("cannot find property {property:?} in secret {key:?}")]
    PropertyNotFound {
        /// The remote key.
        key: String,
        /// The property asked for.
        property: String,
    },
    /// The credentials are valid but not allowed to do this (Vault 403 `permission denied`),
    /// or were rejected.
    #[error("{0}")]
    Forbidden(String),
    /// The provider could not be reached, timed out or failed (5xx); retrying may help.
    #[error("{0}")]
    Unavailable(String),
    /// The provider asked to slow down (HTTP 429, AWS `ThrottlingException`); retry later,
    /// not sooner than `retry_after`.
    #[error("{message}")]
    Throttled {
        /// The `Retry-After` the provider gave, if any.
        retry_after: Option<Duration>,
        /// What was throttled.
        message: String,
    },
    /// The request or the configuration is wrong (HTTP 400, a KV version mismatch, bad
    /// credentials material, unsupported syntax).
    #[error("{0}")]
    Invalid(String),
}

impl ProviderError {
    /// A short stable name for metrics and event reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "NotFound",
            Self::PropertyNotFound { .. } => "PropertyNotFound",
            Self::Forbidden(_) => "Forbidden",
            Self::Unavailable(_) => "Unavailable",
            Self::Throttled { .. } => "Throttled",
            Self::Invalid(_) => "Invalid",
        }
    }

    /// Whether this is the definite not-found.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// What `dataFrom.find` asks for. Vault: `name_regexp` wins over `tags` (as in ESO).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FindQuery {
    /// Only secrets under this path (relative to the store's mount).
    pub path: Option<String>,
    /// An unanchored RE2-style regular expression on the secret's name (its path relative
    /// to the mount, including `path`).
    pub name_regexp: Option<String>,
    /// Exact matches on the secret's tags (Vault KV v2 `custom_metadata`).
    pub tags: BTreeMap<String, String>,
}

/// A remote secret source. One `get_map` call is one read of the remote secret; the caller
/// takes as many properties from the [`SecretMap`] as it needs.
pub trait SecretProvider: Send + Sync {
    /// The whole secret at `key` (`version` optional): its top-level keys and values, read
    /// once per call.
    fn get_map<'a>(
        &'a self,
        key: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<SecretMap, ProviderError>>;

    /// Secrets matching `query` for `dataFrom.find`: name (relative to the mount) → payload
    /// (Vault: the Go-style JSON of the data map; AWS: the raw payload), sorted by name.
    fn find<'a>(
        &'a self,
        query: &'a FindQuery,
    ) -> BoxFuture<'a, Result<Vec<(String, SecretValue)>, ProviderError>>;

    /// Checks the store's configuration and credentials (Vault: a token lookup-self).
    fn validate(&self) -> BoxFuture<'_, Result<(), ProviderError>>;

    /// How many keys one provider call of [`SecretProvider::get_many`] reads (1: no batching).
    fn batch_size(&self) -> usize {
        1
    }

    /// The current versions of `keys`, in as few provider calls as the provider allows
    /// (AWS Secrets Manager: `BatchGetSecretValue`, 20 per call): one result per key, in order.
    ///
    /// Each result is what [`SecretProvider::get_map`]`(key, None)` would give, so a
    /// missing key is [`ProviderError::NotFound`] for that key alone; a failure of a whole
    /// provider call (throttling, an outage) is repeated for every key that call covered.
    /// The default reads the keys one by one with `get_map`.
    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Vec<Result<SecretMap, ProviderError>>> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(keys.len());
            for key in keys {
                results.push(self.get_map(key, None).await);
            }
            results
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Json,
    Null,
}

struct Entry {
    kind: Kind,
    /// Raw bytes of a string, JSON text of anything else, empty for null.
    bytes: SecretValue,
}

/// The data of one remote secret: its top-level keys → values (see the module docs for how
/// values become bytes), plus property lookups and the whole-secret JSON.
pub struct SecretMap {
    key: String,
    entries: BTreeMap<String, Entry>,
    /// The payload as stored remotely, for providers (AWS Secrets Manager) whose
    /// whole-secret value is the raw payload rather than the JSON of the map.
    raw: Option<SecretValue>,
}

impl SecretMap {
    /// The map of the JSON object `json`, read from the remote key `key` (used in error
    /// messages). A JSON value that is not an object is [`ProviderError::Invalid`].
    pub fn from_json(key: &str, json: &[u8]) -> Result<Self, ProviderError> {
        let value: Value = serde_json::from_slice(json).map_err(|e| {
            ProviderError::Invalid(format!(
                "secret {key:?}: the value is not a JSON object (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        match value {
            Value::Object(map) => Ok(Self::from_object(key, map)),
            mut other => {
                wipe(&mut other);
                Err(ProviderError::Invalid(format!(
                    "secret {key:?}: the value is not a JSON object"
                )))
            }
        }
    }

    /// The map of a parsed JSON object; the strings of `map` are wiped.
    pub fn from_object(key: &str, map: serde_json::Map<String, Value>) -> Self {
        let mut entries = BTreeMap::new();
        for (name, mut value) in map {
            let entry = match &value {
                Value::String(s) => Entry {
                    kind: Kind::String,
                    bytes: SecretValue::new(s.as_bytes().to_vec()),
                },
                Value::Null => Entry {
                    kind: Kind::Null,
                    bytes: SecretValue::new(Vec::new()),
                },
                other => Entry {
                    kind: Kind::Json,
                    bytes: SecretValue::new(go_json(other)),
                },
            };
            wipe(&mut value);
            entries.insert(name, entry);
        }
        Self {
            key: key.to_owned(),
            entries,
            raw: None,
        }
    }

    /// A secret whose payload is kept as is (AWS Secrets Manager's `SecretString` or
    /// `SecretBinary`), as ESO's AWS provider reads it: [`SecretMap::value`]`(None)` is
    /// `payload` itself, byte for byte; if `payload` is a JSON object its keys are the
    /// map's keys and properties are looked up as in [`SecretMap::property`]; otherwise the map has no keys and every property is
    /// [`ProviderError::PropertyNotFound`].
    pub fn raw(key: &str, payload: Vec<u8>) -> Self {
        let payload = SecretValue::new(payload);
        let mut map = match serde_json::from_slice::<Value>(payload.as_bytes()) {
            Ok(Value::Object(object)) => Self::from_object(key, object),
            Ok(mut other) => {
                wipe(&mut other);
                Self::from_object(key, serde_json::Map::new())
            }
            Err(_) => Self::from_object(key, serde_json::Map::new()),
        };
        map.raw = Some(payload);
        map
    }

    /// The raw payload, for a map made by [`SecretMap::raw`].
    pub fn raw_payload(&self) -> Option<&SecretValue> {
        self.raw.as_ref()
    }

    /// The remote key the map was read from.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Number of top-level keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the secret has no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The top-level keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The byte value of top-level key `name`.
    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.entries.get(name).map(|e| &e.bytes)
    }

    /// Top-level keys and byte values, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SecretValue)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), &e.bytes))
    }

    /// The whole secret as Go-style JSON (sorted keys, compact, HTML-escaped), what ESO
    /// returns for a `remoteRef` without `property`.
    pub fn to_json(&self) -> SecretValue {
        let mut out = Zeroizing::new(Vec::with_capacity(self.json_capacity()));
        out.push(b'{');
        for (i, (name, entry)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            go_string(name, &mut out);
            out.push(b':');
            self.push_entry_json(entry, &mut out);
        }
        out.push(b'}');
        SecretValue(out)
    }

    fn json_capacity(&self) -> usize {
        // Strings may grow when escaped; reserve generously so that the buffer is not
        // reallocated (which would leave unwiped copies behind).
        self.entries
            .iter()
            .map(|(k, e)| 2 * k.len() + 6 * e.bytes.len() + 8)
            .sum::<usize>()
            + 2
    }

    fn push_entry_json(&self, entry: &Entry, out: &mut Vec<u8>) {
        match entry.kind {
            Kind::String => {
                // Stored bytes came from a Rust `String`, so they are UTF-8.
                let text = std::str::from_utf8(entry.bytes.as_bytes()).unwrap_or_default();
                go_string(text, out);
            }
            Kind::Json => out.extend_from_slice(entry.bytes.as_bytes()),
            Kind::Null => out.extend_from_slice(b"null"),
        }
    }

    /// The value for a `remoteRef`: the whole secret's JSON without `property` (the raw
    /// payload for a map made by [`SecretMap::raw`]), else [`SecretMap::property`].
    pub fn value(&self, property: Option<&str>) -> Result<SecretValue, ProviderError> {
        match property {
            None | Some("") => Ok(match &self.raw {
                Some(raw) => raw.duplicate(),
                None => self.to_json(),
            }),
            Some(property) => self.property(property),
        }
    }

    /// The value of `property`: an exact top-level key first, else a gjson path (the subset
    /// in the module docs). This is ESO's AWS order as well (a dotted property is tried as a literal key first).
    pub fn property(&self, property: &str) -> Result<SecretValue, ProviderError> {
        if let Some(entry) = self.entries.get(property) {
            return Ok(entry.bytes.duplicate());
        }
        self.path_property(property)
    }

    fn path_property(&self, property: &str) -> Result<SecretValue, ProviderError> {
        let path = parse_path(property).map_err(|what| {
            ProviderError::Invalid(format!(
                "property {property:?} of secret {:?}: {what} is not supported (see the gjson subset in the docs)",
                self.key
            ))
        })?;
        let missing = || ProviderError::PropertyNotFound {
            key: self.key.clone(),
            property: property.to_owned(),
        };
        let (first, rest) = path.split_first().ok_or_else(missing)?;
        let entry = self.entries.get(first.as_str()).ok_or_else(missing)?;
        if rest.is_empty() {
            return Ok(entry.bytes.duplicate());
        }
        if entry.kind != Kind::Json {
            return Err(missing());
        }
        let mut root: Value = serde_json::from_slice(entry.bytes.as_bytes())
            .map_err(|_| ProviderError::Invalid(format!("secret {:?}: bad JSON", self.key)))?;
        let result = select(&root, rest).map(gjson_string);
        wipe(&mut root);
        result.map(SecretValue).ok_or_else(missing)
    }

    /// `dataFrom.extract`: the secret's keys (no `property`), or the keys of the JSON object
    /// that `property` selects.
    pub fn extract(&self, property: Option<&str>) -> Result<SecretMap, ProviderError> {
        let json = self.value(property)?;
        SecretMap::from_json(&self.key, json.as_bytes())
    }
}

/// Splits a gjson path on unescaped dots; rejects the syntax outside the subset.
fn parse_path(path: &str) -> Result<Vec<String>, &'static str> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '.' => parts.push(std::mem::take(&mut current)),
            '*' | '?' => return Err("a wildcard"),
            '|' => return Err("a pipe"),
            '@' if current.is_empty() => return Err("a modifier"),
            '(' if current == "#" => return Err("a query"),
            _ => current.push(c),
        }
    }
    parts.push(current);
    Ok(parts)
}

fn select<'v>(root: &'v Value, path: &[String]) -> Option<Selected<'v>> {
    let mut value = root;
    for (i, part) in path.iter().enumerate() {
        value = match value {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) if part == "#" && i + 1 == path.len() => {
                return Some(Selected::Count(items.len()));
            }
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(Selected::Value(value))
}

enum Selected<'v> {
    Value(&'v Value),
    Count(usize),
}

/// gjson's `Result.String()`: raw string, JSON text otherwise, empty for null.
fn gjson_string(selected: Selected<'_>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(match selected {
        Selected::Count(n) => n.to_string().into_bytes(),
        Selected::Value(Value::String(s)) => s.as_bytes().to_vec(),
        Selected::Value(Value::Null) => Vec::new(),
        Selected::Value(other) => go_json(other),
    })
}

/// Overwrites every string inside `value` (object keys are names, not values).
pub(crate) fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// Go's `json.Marshal` of a decoded value: compact, object keys sorted, HTML-escaped.
pub(crate) fn go_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    push_go_json(value, &mut out);
    out
}

fn push_go_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => go_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_go_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                go_string(key, out);
                out.push(b':');
                push_go_json(&map[key.as_str()], out);
            }
            out.push(b'}');
        }
    }
}

/// A JSON string as Go's encoder writes it with HTML escaping on.
fn go_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: &str) -> SecretMap {
        SecretMap::from_json("k", json.as_bytes()).unwrap()
    }

    fn prop(m: &SecretMap, p: &str) -> String {
        String::from_utf8(m.property(p).unwrap().as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn byte_values_follow_go() {
        let m = map(
            r#"{"s":"a<b","n":12,"f":1.5,"t":true,"z":null,"o":{"y":1,"x":"<&>"},"l":[1,"x"]}"#,
        );
        assert_eq!(m.get("s").unwrap().as_bytes(), b"a<b");
        assert_eq!(m.get("n").unwrap().as_bytes(), b"12");
        assert_eq!(m.get("f").unwrap().as_bytes(), b"1.5");
        assert_eq!(m.get("t").unwrap().as_bytes(), b"true");
        assert_eq!(m.get("z").unwrap().as_bytes(), b"");
        assert_eq!(
            m.get("o").unwrap().as_bytes(),
            br#"{"x":"\u003c\u0026\u003e","y":1}"#
        );
        assert_eq!(m.get("l").unwrap().as_bytes(), br#"[1,"x"]"#);
        assert_eq!(
            m.to_json().as_bytes(),
            br#"{"f":1.5,"l":[1,"x"],"n":12,"o":{"x":"\u003c\u0026\u003e","y":1},"s":"a\u003cb","t":true,"z":null}"#
        );
        let one = map(r#"{"only":"v"}"#);
        assert_eq!(one.value(None).unwrap().as_bytes(), br#"{"only":"v"}"#);
        let escaped = map("{\"c\":\"\\u0001\\b\\f\\n\\u2028\\\"\"}");
        assert_eq!(
            escaped.to_json().as_bytes(),
            br#"{"c":"\u0001\b\f\n\u2028\""}"#
        );
    }

    #[test]
    fn properties() {
        let m = map(
            r#"{"a.b":"exact","a":{"b":"nested","c.d":"dotted","list":[{"x":1},null]},"top":"t"}"#,
        );
        assert_eq!(prop(&m, "a.b"), "exact");
        assert_eq!(prop(&m, "a.c\\.d"), "dotted");
        assert_eq!(prop(&m, "a.list.0.x"), "1");
        assert_eq!(prop(&m, "a.list.0"), r#"{"x":1}"#);
        assert_eq!(prop(&m, "a.list.1"), "");
        assert_eq!(prop(&m, "a.list.#"), "2");
        assert_eq!(prop(&m, "top"), "t");
        assert_eq!(
            m.property("a.nope").err().unwrap().kind(),
            "PropertyNotFound"
        );
        assert_eq!(
            m.property("top.x").err().unwrap().kind(),
            "PropertyNotFound"
        );
        assert_eq!(
            m.property("a.list.5").err().unwrap().kind(),
            "PropertyNotFound"
        );
        assert_eq!(m.property("a.*").err().unwrap().kind(), "Invalid");
        assert_eq!(
            m.property("a.list.#(x==1)").err().unwrap().kind(),
            "Invalid"
        );
        assert_eq!(m.property("@reverse").err().unwrap().kind(), "Invalid");
    }

    #[test]
    fn extract() {
        let m = map(r#"{"a":{"x":"1","y":{"z":2}},"b":"{\"k\":\"v\"}","c":"no"}"#);
        let all = m.extract(None).unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        let a = m.extract(Some("a")).unwrap();
        assert_eq!(a.get("y").unwrap().as_bytes(), br#"{"z":2}"#);
        let b = m.extract(Some("b")).unwrap();
        assert_eq!(b.get("k").unwrap().as_bytes(), b"v");
        assert_eq!(m.extract(Some("c")).err().unwrap().kind(), "Invalid");
    }

    #[test]
    fn raw_payloads() {
        let plain = SecretMap::raw("k", b"just text".to_vec());
        assert_eq!(plain.value(None).unwrap().as_bytes(), b"just text");
        assert!(plain.is_empty());
        assert_eq!(
            plain.property("x").err().unwrap().kind(),
            "PropertyNotFound"
        );
        let json = SecretMap::raw("k", br#"{"b":1, "a":{"c":"d"}, "x.y":"dot"}"#.to_vec());
        assert_eq!(
            json.value(None).unwrap().as_bytes(),
            br#"{"b":1, "a":{"c":"d"}, "x.y":"dot"}"#
        );
        assert_eq!(prop(&json, "a.c"), "d");
        assert_eq!(prop(&json, "x.y"), "dot");
        assert_eq!(prop(&json, "b"), "1");
        let list = SecretMap::raw("k", b"[1,2]".to_vec());
        assert_eq!(list.value(None).unwrap().as_bytes(), b"[1,2]");
        assert_eq!(list.property("0").err().unwrap().kind(), "PropertyNotFound");
    }

    struct Fixed;

    impl SecretProvider for Fixed {
        fn get_map<'a>(
            &'a self,
            key: &'a str,
            _version: Option<&'a str>,
        ) -> BoxFuture<'a, Result<SecretMap, ProviderError>> {
            Box::pin(async move {
                match key {
                    "missing" => Err(ProviderError::NotFound { key: key.into() }),
                    _ => SecretMap::from_json(key, format!(r#"{{"k":"{key}"}}"#).as_bytes()),
                }
            })
        }

        fn find<'a>(
            &'a self,
            _query: &'a FindQuery,
        ) -> BoxFuture<'a, Result<Vec<(String, SecretValue)>, ProviderError>> {
            Box::pin(async { Ok(Vec::new()) })
        }

        fn validate(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
            Box::pin(async { Ok(()) })
        }
    }

    #[test]
    fn default_get_many_reads_one_by_one_in_order() {
        let provider = Fixed;
        assert_eq!(provider.batch_size(), 1);
        let keys = ["a".to_owned(), "missing".to_owned(), "b".to_owned()];
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = provider.get_many(&keys);
        let std::task::Poll::Ready(results) = future.as_mut().poll(&mut cx) else {
            panic!("Fixed never waits");
        };
        assert_eq!(results.len(), 3);
        assert_eq!(prop(results[0].as_ref().unwrap(), "k"), "a");
        assert!(results[1].as_ref().err().unwrap().is_not_found());
        assert_eq!(prop(results[2].as_ref().unwrap(), "k"), "b");
        let error = ProviderError::Throttled {
            retry_after: Some(Duration::from_secs(2)),
            message: "slow down".into(),
        };
        assert_eq!(error.clone().to_string(), error.to_string());
    }

    #[test]
    fn provider_is_object_safe() {
        fn takes(_: Option<std::sync::Arc<dyn SecretProvider>>) {}
        takes(None);
    }
}
