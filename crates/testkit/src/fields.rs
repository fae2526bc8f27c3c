//! Field ownership for `managedFields` and server-side apply: the set of leaf paths an
//! object sets, in the `FieldsV1` form (`{"f:data": {"f:key": {}}}`). Lists are atomic.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Metadata fields the server owns; they never count as a manager's fields.
const SERVER_FIELDS: [&str; 9] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "name",
    "namespace",
    "deletionTimestamp",
    "selfLink",
];

/// A set of field paths, each a list of keys from the root.
pub type FieldSet = BTreeSet<Vec<String>>;

/// The leaf paths `object` sets (not `apiVersion`, `kind` or server-owned metadata).
pub fn of(object: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    if let Value::Object(map) = object {
        for (key, value) in map {
            if key == "apiVersion" || key == "kind" {
                continue;
            }
            let mut path = vec![key.clone()];
            if key == "metadata" {
                if let Value::Object(meta) = value {
                    for (k, v) in meta
                        .iter()
                        .filter(|(k, _)| !SERVER_FIELDS.contains(&k.as_str()))
                    {
                        path.push(k.clone());
                        walk(v, &mut path, &mut out);
                        path.pop();
                    }
                }
            } else {
                walk(value, &mut path, &mut out);
            }
        }
    }
    out
}

fn walk(value: &Value, path: &mut Vec<String>, out: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(key.clone());
                walk(child, path, out);
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The `FieldsV1` JSON of a set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for key in path {
            node = node
                .entry(format!("f:{key}"))
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("only objects are inserted");
        }
    }
    Value::Object(root)
}

/// Parses `FieldsV1` JSON back into a set.
pub fn from_fields_v1(fields: &Value) -> FieldSet {
    fn go(value: &Value, path: &mut Vec<String>, out: &mut FieldSet) {
        let Value::Object(map) = value else { return };
        let children: Vec<_> = map
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("f:").map(|k| (k, v)))
            .collect();
        if children.is_empty() && !path.is_empty() {
            out.insert(path.clone());
        }
        for (key, child) in children {
            path.push(key.to_owned());
            go(child, path, out);
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    go(fields, &mut Vec::new(), &mut out);
    out
}

/// The value at `path`, if any.
pub fn get<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |node, key| node.get(key))
}

/// Removes the value at `path`, and parents left empty by that.
pub fn remove(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = &mut *object;
    for key in parents {
        match node.get_mut(key) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Value::Object(map) = node {
        map.remove(last);
    }
    if parents.len() > 1
        && get(object, parents).is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
    {
        remove(object, parents);
    }
}

/// Renders a path as the real server does in conflict messages: `.spec.replicas`.
pub fn display(path: &[String]) -> String {
    path.iter().map(|k| format!(".{k}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let obj = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "a", "labels": {"x": "1"}, "uid": "u"},
            "data": {"k": "dg=="}, "list": [1, 2]});
        let set = of(&obj);
        let paths: Vec<String> = set.iter().map(|p| display(p)).collect();
        assert_eq!(paths, [".data.k", ".list", ".metadata.labels.x"]);
        assert_eq!(from_fields_v1(&to_fields_v1(&set)), set);
    }

    #[test]
    fn remove_prunes_empty_parents() {
        let mut obj = json!({"spec": {"a": {"b": 1}, "c": 2}});
        remove(&mut obj, &["spec".into(), "a".into(), "b".into()]);
        assert_eq!(obj, json!({"spec": {"c": 2}}));
    }
}
