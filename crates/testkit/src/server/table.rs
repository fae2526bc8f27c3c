//! Server-side printing: the `meta.k8s.io` Table `kubectl get` asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Custom resources get a `Name` column and then the `additionalPrinterColumns` of the
//! version they are read through (an `Age` column of `.metadata.creationTimestamp` when it
//! has none), evaluated with the simple JSONPath subset CRDs allow. Built-in kinds get the
//! leading columns of upstream's printers (Secret `Type`/`Data`, ConfigMap `Data`,
//! Namespace `Status`, …), or `Name` and `Age`.

use std::time::{Duration, SystemTime};

use super::*;

/// The group-version of the Table the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TableVersion {
    V1,
    V1beta1,
}

impl TableVersion {
    /// The `v=` of an `as=Table` media type in group `g` (which must be `meta.k8s.io`).
    pub(super) fn parse(group: Option<&str>, version: Option<&str>) -> Option<Self> {
        match (group, version) {
            (Some("meta.k8s.io"), Some("v1")) => Some(Self::V1),
            (Some("meta.k8s.io"), Some("v1beta1")) => Some(Self::V1beta1),
            _ => None,
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Self::V1 => "meta.k8s.io/v1",
            Self::V1beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

/// What each row carries in `object` (the `includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Include {
    None,
    Metadata,
    Object,
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One column: its definition and how a cell is computed from an object.
struct Column {
    definition: Value,
    cell: Cell,
}

enum Cell {
    Name,
    /// Built-in `Age`: the human-readable time since creation.
    Age,
    /// `Created At`: the creation timestamp in RFC 3339.
    CreatedAt,
    /// A built-in column computed by a function of the object.
    Builtin(fn(&Value) -> Value),
    /// A CRD printer column: a JSONPath and the column's type.
    Path(Vec<Step>, String),
}

fn definition(name: &str, kind: &str, format: &str, description: &str, priority: i64) -> Value {
    json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority})
}

fn column(name: &str, kind: &str, description: &str, cell: Cell) -> Column {
    let format = if matches!(cell, Cell::Name) {
        "name"
    } else {
        ""
    };
    Column {
        definition: definition(name, kind, format, description, 0),
        cell,
    }
}

fn name_column() -> Column {
    column("Name", "string", NAME_DESCRIPTION, Cell::Name)
}

fn age_column() -> Column {
    column("Age", "string", CREATED_DESCRIPTION, Cell::Age)
}

fn at(object: &Value, pointer: &str) -> Value {
    object.pointer(pointer).cloned().unwrap_or(Value::Null)
}

fn count(object: &Value, fields: &[&str]) -> Value {
    let n: usize = fields
        .iter()
        .map(|f| match object.get(*f) {
            Some(Value::Object(m)) => m.len(),
            Some(Value::Array(a)) => a.len(),
            _ => 0,
        })
        .sum();
    json!(n)
}

/// The columns of `rt`, or an error for a printer column whose JSONPath does not parse.
fn columns(rt: &ResourceType) -> Result<Vec<Column>, ApiError> {
    if rt.custom {
        let mut columns = vec![name_column()];
        if rt.printer_columns.is_empty() {
            let path = parse_path(".metadata.creationTimestamp").expect("a valid path");
            columns.push(column(
                "Age",
                "date",
                CREATED_DESCRIPTION,
                Cell::Path(path, "date".into()),
            ));
        }
        for c in &rt.printer_columns {
            let text = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or_default();
            let path = parse_path(text("jsonPath")).map_err(|e| {
                ApiError::bad_request(format!(
                    "invalid JSONPath {:?} of column {:?}: {e}",
                    text("jsonPath"),
                    text("name")
                ))
            })?;
            columns.push(Column {
                definition: definition(
                    text("name"),
                    text("type"),
                    text("format"),
                    text("description"),
                    c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                ),
                cell: Cell::Path(path, text("type").to_owned()),
            });
        }
        return Ok(columns);
    }
    let mut columns = vec![name_column()];
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Secret") => {
            columns.push(column(
                "Type",
                "string",
                "The type of data stored in the Secret",
                Cell::Builtin(|o| at(o, "/type")),
            ));
            columns.push(column(
                "Data",
                "string",
                "The number of entries in the Data field",
                Cell::Builtin(|o| count(o, &["data"])),
            ));
        }
        ("", "ConfigMap") => columns.push(column(
            "Data",
            "string",
            "The number of entries in the Data field",
            Cell::Builtin(|o| count(o, &["data", "binaryData"])),
        )),
        ("", "Namespace") => columns.push(column(
            "Status",
            "string",
            "The status of the namespace",
            Cell::Builtin(|o| at(o, "/status/phase")),
        )),
        ("", "ServiceAccount") => columns.push(column(
            "Secrets",
            "string",
            "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
            Cell::Builtin(|o| count(o, &["secrets"])),
        )),
        ("coordination.k8s.io", "Lease") => columns.push(column(
            "Holder",
            "string",
            "The holder of the lease",
            Cell::Builtin(|o| match o.pointer("/spec/holderIdentity") {
                Some(Value::String(s)) => json!(s),
                _ => json!(""),
            }),
        )),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            columns.push(column(
                "Role",
                "string",
                "Role is the role being referenced",
                Cell::Builtin(|o| {
                    let part = |f: &str| {
                        o.pointer(&format!("/roleRef/{f}"))
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    json!(format!("{}/{}", part("kind"), part("name")))
                }),
            ));
        }
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole")
        | ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            columns.push(column(
                "Created At",
                "date",
                CREATED_DESCRIPTION,
                Cell::CreatedAt,
            ));
            return Ok(columns);
        }
        _ => {}
    }
    columns.push(age_column());
    Ok(columns)
}

/// Turns objects into Table rows: the columns of one resource, the Table version and what
/// rows carry in `object`.
pub(super) struct TablePrinter {
    rt: ResourceType,
    version: TableVersion,
    include: Include,
    columns: Vec<Column>,
    /// Whether a watch has sent the column definitions (only its first Table has them).
    headers_sent: bool,
}

impl TablePrinter {
    /// The printer of `rt`, with `includeObject` from `params` (default Metadata).
    pub(super) fn new(
        rt: &ResourceType,
        version: TableVersion,
        params: &HashMap<String, String>,
    ) -> Result<Self, ApiError> {
        let include = match params.get("includeObject").map(String::as_str) {
            None | Some("" | "Metadata") => Include::Metadata,
            Some("Object") => Include::Object,
            Some("None") => Include::None,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unrecognized includeObject value: {other:?}"
                )));
            }
        };
        Ok(Self {
            rt: rt.clone(),
            version,
            include,
            columns: columns(rt)?,
            headers_sent: false,
        })
    }

    fn row(&self, object: &Value, now: SystemTime) -> Value {
        let cells: Vec<Value> = self
            .columns
            .iter()
            .map(|c| cell(&c.cell, object, now))
            .collect();
        let object = match self.include {
            Include::None => Value::Null,
            Include::Metadata => json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": self.version.api_version(),
                "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
            }),
            Include::Object => Store::present(&self.rt, object),
        };
        json!({"cells": cells, "object": object})
    }

    fn table(
        &self,
        metadata: serde_json::Map<String, Value>,
        rows: Vec<Value>,
        headers: bool,
    ) -> Value {
        let mut table = json!({
            "kind": "Table",
            "apiVersion": self.version.api_version(),
            "metadata": metadata,
            "columnDefinitions": Value::Null,
            "rows": rows,
        });
        if headers {
            let definitions: Vec<&Value> = self.columns.iter().map(|c| &c.definition).collect();
            table["columnDefinitions"] = json!(definitions);
        }
        table
    }

    /// A get or list as one Table.
    pub(super) fn reply(&self, reply: &Reply) -> Value {
        let now = SystemTime::now();
        let rows = reply.items.iter().map(|s| self.row(s, now)).collect();
        let mut metadata = serde_json::Map::new();
        match &reply.list_metadata {
            Some(list) => {
                for field in ["resourceVersion", "continue", "remainingItemCount"] {
                    match list.get(field) {
                        None | Some(Value::Null) => {}
                        Some(Value::String(s)) if s.is_empty() => {}
                        Some(value) => {
                            metadata.insert(field.into(), value.clone());
                        }
                    }
                }
            }
            None => {
                if let Some(rv) = reply.items[0].pointer("/metadata/resourceVersion") {
                    metadata.insert("resourceVersion".into(), rv.clone());
                }
            }
        }
        self.table(metadata, rows, true)
    }

    /// The object of a watch event: a Table of the one object (column definitions in the
    /// first event only), or of no rows for a bookmark.
    pub(super) fn event(&mut self, object: &Value, bookmark: bool) -> Value {
        let mut metadata = serde_json::Map::new();
        if let Some(rv) = object.pointer("/metadata/resourceVersion") {
            metadata.insert("resourceVersion".into(), rv.clone());
        }
        if bookmark {
            return self.table(metadata, Vec::new(), false);
        }
        let rows = vec![self.row(object, SystemTime::now())];
        let headers = !self.headers_sent;
        self.headers_sent = true;
        self.table(metadata, rows, headers)
    }
}

fn cell(cell: &Cell, object: &Value, now: SystemTime) -> Value {
    let created = || {
        object
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
    };
    match cell {
        Cell::Name => object
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or_else(|| json!("")),
        Cell::Age => json!(match created() {
            Some(t) => date_cell(t, now),
            None => "<unknown>".to_owned(),
        }),
        Cell::CreatedAt => json!(created().unwrap_or("0001-01-01T00:00:00Z")),
        Cell::Builtin(f) => f(object),
        Cell::Path(path, kind) => match evaluate(path, object) {
            None | Some(Value::Null) => Value::Null,
            Some(value) => typed_cell(kind, value, now),
        },
    }
}

/// A printer column's cell as upstream's CRD table convertor makes it: strings printed as
/// JSONPath prints them, numbers and booleans as JSON values of the column's type, dates
/// as the time since then; a value of another type is null.
fn typed_cell(kind: &str, value: &Value, now: SystemTime) -> Value {
    match (kind, value) {
        ("string", Value::String(s)) => json!(s),
        ("string", Value::Number(n)) => json!(go_number(n)),
        ("string", Value::Bool(b)) => json!(b.to_string()),
        ("string", other) => json!(other.to_string()),
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => json!(i),
            None => json!(n.as_f64().map_or(0, |f| f as i64)),
        },
        ("number", Value::Number(n)) => json!(n.as_f64()),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => json!(date_cell(s, now)),
        _ => Value::Null,
    }
}

/// A JSON number as Go's `fmt` prints the decoded value (integers as such, floats in the
/// shortest form without a trailing `.0`).
fn go_number(n: &serde_json::Number) -> String {
    if n.is_f64() {
        let f = n.as_f64().unwrap_or_default();
        if f.fract() == 0.0 && f.abs() < 1e21 {
            return format!("{f:.0}");
        }
    }
    n.to_string()
}

/// A timestamp as the time since then (`<invalid>` if it does not parse, `<unknown>` for
/// the zero time).
fn date_cell(timestamp: &str, now: SystemTime) -> String {
    if timestamp.starts_with("0001-01-01T00:00:00") {
        return "<unknown>".into();
    }
    let Ok(then) = humantime::parse_rfc3339_weak(timestamp) else {
        return "<invalid>".into();
    };
    match now.duration_since(then) {
        Ok(d) => human_duration(d),
        // In the future: within two seconds is "now".
        Err(e) if e.duration() < Duration::from_secs(2) => "0s".into(),
        Err(_) => "<invalid>".into(),
    }
}

/// A duration as upstream's `HumanDuration` writes it: two units while the larger is
/// small (`5m30s`, `3h15m`, `2d4h`, `3y12d`), one otherwise.
pub(super) fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let years = hours / 24 / 365;
        return match (hours / 24) % 365 {
            0 => format!("{years}y"),
            days => format!("{years}y{days}d"),
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// One step of a simple JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// `.name` or `['name']`.
    Field(String),
    /// `[n]`, negative from the end.
    Index(i64),
    /// `[*]` or `.*`.
    All,
    /// `[?(@.a.b == "x")]`, `!=`, or `[?(@.a)]` (exists).
    Filter(Vec<Step>, Option<(bool, Value)>),
}

/// Parses the JSONPath of a printer column: `.a.b`, `['a.b']`, `[0]`, `[*]`,
/// `[?(@.type=="Ready")]`, optionally wrapped in `{…}`.
pub(crate) fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let chars: Vec<char> = path.chars().collect();
    let (steps, rest) = parse_steps(&chars, false)?;
    if rest != chars.len() {
        return Err(format!("unexpected {:?}", &path[rest..]));
    }
    Ok(steps)
}

/// Parses steps from `chars` up to its end (or, inside a filter, up to an operator or
/// `)`); returns the steps and where it stopped.
fn parse_steps(chars: &[char], in_filter: bool) -> Result<(Vec<Step>, usize), String> {
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                if chars.get(i) == Some(&'.') {
                    return Err("recursive descent is not supported".into());
                }
                let start = i;
                while i < chars.len() && !matches!(chars[i], '.' | '[') {
                    if in_filter && matches!(chars[i], '=' | '!' | '<' | '>' | ')' | ' ') {
                        break;
                    }
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let name: String = chars[start..i.min(chars.len())].iter().collect();
                let name = name.replace("\\.", ".");
                match name.as_str() {
                    "" => return Err("empty field name".into()),
                    "*" => steps.push(Step::All),
                    _ => steps.push(Step::Field(name)),
                }
            }
            '[' => {
                let end = closing(chars, i)?;
                let inner: String = chars[i + 1..end].iter().collect();
                steps.push(bracket(inner.trim())?);
                i = end + 1;
            }
            _ if in_filter => break,
            c => return Err(format!("unexpected character {c:?}")),
        }
    }
    Ok((steps, i))
}

/// The index of the `]` closing the `[` at `open`, skipping quoted text and nested
/// brackets.
fn closing(chars: &[char], open: usize) -> Result<usize, String> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, &c) in chars.iter().enumerate().skip(open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
    }
    Err("unclosed [".into())
}

fn bracket(inner: &str) -> Result<Step, String> {
    if inner == "*" {
        return Ok(Step::All);
    }
    if let Some(name) = unquote(inner) {
        return Ok(Step::Field(name));
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Ok(Step::Index(n));
    }
    let Some(filter) = inner
        .strip_prefix("?(")
        .and_then(|f| f.strip_suffix(')'))
        .map(str::trim)
    else {
        return Err(format!("unsupported [{inner}]"));
    };
    let Some(relative) = filter.strip_prefix('@') else {
        return Err(format!("unsupported filter {filter:?}"));
    };
    let chars: Vec<char> = relative.chars().collect();
    let (steps, end) = parse_steps(&chars, true)?;
    let rest: String = chars[end..].iter().collect();
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(Step::Filter(steps, None));
    }
    let (equal, operand) = if let Some(o) = rest.strip_prefix("==") {
        (true, o)
    } else if let Some(o) = rest.strip_prefix("!=") {
        (false, o)
    } else {
        return Err(format!("unsupported filter operator in {filter:?}"));
    };
    let operand = operand.trim();
    let value = match unquote(operand) {
        Some(s) => json!(s),
        None => serde_json::from_str(operand)
            .map_err(|_| format!("unsupported filter operand {operand:?}"))?,
    };
    Ok(Step::Filter(steps, Some((equal, value))))
}

fn unquote(text: &str) -> Option<String> {
    ['\'', '"'].iter().find_map(|q| {
        text.strip_prefix(*q)
            .and_then(|t| t.strip_suffix(*q))
            .map(str::to_owned)
    })
}

/// The values `path` selects in `value`, in order; missing keys select nothing.
fn select<'a>(path: &[Step], value: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![value];
    for step in path {
        let mut next = Vec::new();
        for v in current {
            match (step, v) {
                (Step::Field(name), Value::Object(map)) => next.extend(map.get(name)),
                (Step::Index(n), Value::Array(items)) => {
                    let index = if *n < 0 { items.len() as i64 + n } else { *n };
                    if index >= 0 {
                        next.extend(items.get(index as usize));
                    }
                }
                (Step::All, Value::Array(items)) => next.extend(items),
                (Step::All, Value::Object(map)) => next.extend(map.values()),
                (Step::Filter(inner, test), Value::Array(items)) => {
                    next.extend(items.iter().filter(|item| {
                        let found = select(inner, item);
                        match test {
                            None => !found.is_empty(),
                            Some((equal, expected)) => {
                                found.first().is_some_and(|f| same(f, expected) == *equal)
                            }
                        }
                    }));
                }
                _ => {}
            }
        }
        current = next;
    }
    current
}

/// Equality as JSONPath filters compare: numbers by value, the rest exactly.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The first value `path` selects in `object`.
pub(crate) fn evaluate<'a>(path: &[Step], object: &'a Value) -> Option<&'a Value> {
    select(path, object).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(path: &str, object: &Value) -> Option<Value> {
        evaluate(&parse_path(path).unwrap(), object).cloned()
    }

    #[test]
    fn simple_json_paths() {
        let o = json!({
            "metadata": {"name": "a", "annotations": {"x.io/y": "z"}},
            "spec": {"store": {"name": "vault", "kind": "SecretStore"}, "items": [1, 2, 3]},
            "status": {"conditions": [
                {"type": "Synced", "status": "True", "reason": "Ok"},
                {"type": "Ready", "status": "False", "reason": "SecretSyncedError"},
            ]},
        });
        assert_eq!(eval(".spec.store.name", &o), Some(json!("vault")));
        assert_eq!(eval("{.spec.store.kind}", &o), Some(json!("SecretStore")));
        assert_eq!(
            eval(r#".status.conditions[?(@.type=="Ready")].reason"#, &o),
            Some(json!("SecretSyncedError"))
        );
        assert_eq!(
            eval(".status.conditions[?(@.type != 'Ready')].status", &o),
            Some(json!("True"))
        );
        assert_eq!(eval(".spec.items[0]", &o), Some(json!(1)));
        assert_eq!(eval(".spec.items[-1]", &o), Some(json!(3)));
        assert_eq!(eval(".spec.items[*]", &o), Some(json!(1)));
        assert_eq!(
            eval(".metadata.annotations['x.io/y']", &o),
            Some(json!("z"))
        );
        assert_eq!(eval(r".metadata.annotations.x\.io/y", &o), Some(json!("z")));
        assert_eq!(eval(".spec.missing.deeper", &o), None);
        assert_eq!(eval(".spec.items[7]", &o), None);
        assert!(parse_path(".spec[").is_err());
        assert!(parse_path("..spec").is_err());
    }

    #[test]
    fn cells_and_durations_as_upstream_prints_them() {
        let now = SystemTime::now();
        assert_eq!(typed_cell("string", &json!(3), now), json!("3"));
        assert_eq!(typed_cell("string", &json!(1.0), now), json!("1"));
        assert_eq!(
            typed_cell("string", &json!({"a": 1}), now),
            json!("{\"a\":1}")
        );
        assert_eq!(typed_cell("integer", &json!(2.7), now), json!(2));
        assert_eq!(typed_cell("integer", &json!("2"), now), Value::Null);
        assert_eq!(typed_cell("boolean", &json!(true), now), json!(true));
        assert_eq!(
            typed_cell("date", &json!("yesterday"), now),
            json!("<invalid>")
        );
        assert_eq!(
            typed_cell("date", &json!("0001-01-01T00:00:00Z"), now),
            json!("<unknown>")
        );
        let h = |s: u64| human_duration(Duration::from_secs(s));
        assert_eq!(h(5), "5s");
        assert_eq!(h(119), "119s");
        assert_eq!(h(330), "5m30s");
        assert_eq!(h(600), "10m");
        assert_eq!(h(179 * 60), "179m");
        assert_eq!(h(3 * 3600 + 15 * 60), "3h15m");
        assert_eq!(h(8 * 3600), "8h");
        assert_eq!(h(52 * 3600), "2d4h");
        assert_eq!(h(30 * 86_400), "30d");
        assert_eq!(h(3 * 365 * 86_400 + 12 * 86_400), "3y12d");
        assert_eq!(h(9 * 365 * 86_400), "9y");
    }
}
