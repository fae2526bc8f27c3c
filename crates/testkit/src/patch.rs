//! Patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the strategic
//! merge patch of the built-in kinds (merge keys for the lists they have).

use serde_json::{Map, Value};

/// Applies a JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The merge key of a list field in the built-in kinds, if it has one.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "ownerReferences" => Some("uid"),
        "ports" => Some("port"),
        "containers" | "initContainers" | "env" | "volumes" | "volumeMounts"
        | "imagePullSecrets" | "secrets" => Some("name"),
        "conditions" => Some("type"),
        _ => None,
    }
}

/// Applies a strategic merge patch: a merge patch in which lists with a merge key are
/// merged item by item, `$patch: delete|replace` directives are honoured, and
/// `finalizers` merge as a set.
pub fn strategic(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" {
            continue;
        }
        match (value, merge_key(key), target.get_mut(key)) {
            (Value::Null, _, _) => {
                target.remove(key);
            }
            (Value::Array(items), Some(merge_key), Some(Value::Array(existing))) => {
                for item in items {
                    let id = item.get(merge_key);
                    let at = existing
                        .iter()
                        .position(|e| e.get(merge_key) == id && id.is_some());
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (at, delete) {
                        (Some(i), true) => {
                            existing.remove(i);
                        }
                        (Some(i), false) => strategic(&mut existing[i], item),
                        (None, true) => {}
                        (None, false) => existing.push(item.clone()),
                    }
                }
            }
            (Value::Array(items), None, Some(Value::Array(existing))) if key == "finalizers" => {
                for item in items {
                    if !existing.contains(item) {
                        existing.push(item.clone());
                    }
                }
            }
            (value, _, _) => strategic(target.entry(key.clone()).or_insert(Value::Null), value),
        }
    }
}

/// Applies a JSON patch; errors are worded for a 422 answer.
pub fn json_patch(target: &mut Value, operations: &Value) -> Result<(), String> {
    let operations = operations
        .as_array()
        .ok_or("a JSON patch must be an array")?;
    for op in operations {
        let kind = op.get("op").and_then(Value::as_str).ok_or("missing op")?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("missing path")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("{kind} {path}: missing value"))
        };
        match kind {
            "add" => add(target, path, value()?)?,
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                remove(target, path)?;
                add(target, path, value()?)?;
            }
            "move" | "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("missing from")?;
                let moved = if kind == "move" {
                    remove(target, from)?
                } else {
                    target
                        .pointer(from)
                        .cloned()
                        .ok_or_else(|| format!("copy: {from} does not exist"))?
                };
                add(target, path, moved)?;
            }
            "test" => {
                if target.pointer(path) != Some(&value()?) {
                    return Err(format!("test failed at {path}"));
                }
            }
            other => return Err(format!("unknown JSON patch op {other:?}")),
        }
    }
    Ok(())
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split(path: &str) -> Result<(&str, String), String> {
    let at = path
        .rfind('/')
        .ok_or_else(|| format!("invalid path {path:?}"))?;
    Ok((&path[..at], unescape(&path[at + 1..])))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    match target.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
        }
        Some(Value::Array(items)) if last == "-" => items.push(value),
        Some(Value::Array(items)) => {
            let index: usize = last
                .parse()
                .map_err(|_| format!("invalid index in {path}"))?;
            if index > items.len() {
                return Err(format!("index out of range in {path}"));
            }
            items.insert(index, value);
        }
        _ => return Err(format!("add: parent of {path} does not exist")),
    }
    Ok(())
}

fn remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split(path)?;
    let missing = || format!("remove: {path} does not exist");
    match target.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(&last).ok_or_else(missing),
        Some(Value::Array(items)) => {
            let index: usize = last.parse().map_err(|_| missing())?;
            (index < items.len())
                .then(|| items.remove(index))
                .ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut v = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge(&mut v, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(v, json!({"a": "z", "c": {"d": "e"}}));
        merge(&mut v, &json!({"list": [1, 2]}));
        merge(&mut v, &json!({"list": [3]}));
        assert_eq!(v["list"], json!([3]));
    }

    #[test]
    fn strategic_merges_by_key() {
        let mut v = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}], "finalizers": ["x"]}});
        strategic(
            &mut v,
            &json!({"metadata": {
            "ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "$patch": "delete"}],
            "finalizers": ["y"]}}),
        );
        assert_eq!(
            v["metadata"]["ownerReferences"],
            json!([{"uid": "2", "name": "b"}])
        );
        assert_eq!(v["metadata"]["finalizers"], json!(["x", "y"]));
    }

    #[test]
    fn json_patch_ops() {
        let mut v = json!({"a": [1, 2], "b": {"c~d": 1}});
        json_patch(
            &mut v,
            &json!([
                {"op": "add", "path": "/a/1", "value": 9},
                {"op": "add", "path": "/a/-", "value": 3},
                {"op": "replace", "path": "/b/c~0d", "value": 2},
                {"op": "copy", "from": "/b", "path": "/e"},
                {"op": "move", "from": "/e", "path": "/f"},
                {"op": "test", "path": "/f/c~0d", "value": 2},
            ]),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"a": [1, 9, 2, 3], "b": {"c~d": 2}, "f": {"c~d": 2}})
        );
        assert!(json_patch(&mut v, &json!([{"op": "remove", "path": "/zzz"}])).is_err());
        assert!(json_patch(&mut v, &json!([{"op": "test", "path": "/a/0", "value": 5}])).is_err());
    }
}
