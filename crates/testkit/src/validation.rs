//! Structural validation of custom resources against their CRD's `openAPIV3Schema`,
//! with pruning of unknown fields, as the real server does. Errors are worded like the
//! real server's field errors: `spec.replicas: Invalid value: "x": spec.replicas in body
//! must be of type integer: "x"`.

use serde_json::Value;

/// Validates everything but `apiVersion`, `kind` and `metadata`, and prunes fields the
/// schema does not declare. Returns the field errors and the paths of pruned fields.
pub fn validate(schema: &Value, object: &mut Value) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut pruned = Vec::new();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return (errors, pruned);
    };
    let preserve = preserves_unknown(schema);
    if let Value::Object(map) = object {
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match properties.get(&key) {
                Some(sub) => check(
                    sub,
                    map.get_mut(&key).expect("listed key"),
                    &key,
                    &mut errors,
                    &mut pruned,
                ),
                None if preserve => {}
                None => {
                    map.remove(&key);
                    pruned.push(key);
                }
            }
        }
        required(schema, map, "", &mut errors);
    }
    (errors, pruned)
}

/// Applies the structural schema's `default` values, as the real server does before
/// validation: a field that is absent (or null while not `nullable`) gets a copy of its
/// default wherever its parent object exists, in properties, `additionalProperties`
/// values and array items alike, and defaulted values are defaulted further inside.
pub fn default(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for (key, sub) in properties.into_iter().flatten() {
                if let Some(default) = sub.get("default")
                    && map.get(key).is_none_or(|v| non_nullable_null(v, sub))
                {
                    map.insert(key.clone(), default.clone());
                }
            }
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map.iter_mut() {
                if let Some(sub) = properties.and_then(|p| p.get(key)) {
                    default(sub, child);
                } else if let Some(sub) = additional {
                    default_null(sub, child);
                    default(sub, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|i| i.is_object()) {
                for item in items {
                    default_null(sub, item);
                    default(sub, item);
                }
            }
        }
        _ => {}
    }
}

fn non_nullable_null(value: &Value, schema: &Value) -> bool {
    value.is_null() && schema.get("nullable") != Some(&Value::Bool(true))
}

fn default_null(schema: &Value, value: &mut Value) {
    if let Some(default) = schema.get("default")
        && non_nullable_null(value, schema)
    {
        *value = default.clone();
    }
}

/// Whether the field errors include one that keeps the real server from evaluating CEL
/// rules (a wrong type, a missing required field, an unsupported enum value, a string
/// or list too long).
pub fn blocks_rules(errors: &[String]) -> bool {
    errors.iter().any(|e| {
        e.contains(" in body must be of type ")
            || e.contains(": Required value")
            || e.contains(": Unsupported value: ")
            || e.contains(": Too long: ")
            || e.contains(": Too many: ")
    })
}

/// The error the real server adds when [`blocks_rules`] holds.
pub const RULES_NOT_CHECKED: &str = "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

fn preserves_unknown(schema: &Value) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
}

fn required(
    schema: &Value,
    map: &serde_json::Map<String, Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    for field in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(field) = field.as_str()
            && !map.contains_key(field)
        {
            let full = if path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            errors.push(format!("{full}: Required value"));
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check(
    schema: &Value,
    value: &mut Value,
    path: &str,
    errors: &mut Vec<String>,
    pruned: &mut Vec<String>,
) {
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) && schema.get("type").is_some() {
            errors.push(format!(
                "{path}: Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                schema["type"].as_str().unwrap_or("object")
            ));
        }
        return;
    }
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(value);
        let ok = actual == expected
            || (expected == "number" && actual == "integer")
            || (int_or_string && matches!(actual, "integer" | "string"));
        if !ok {
            errors.push(format!("{path}: Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let supported: Vec<String> = options.iter().map(Value::to_string).collect();
        errors.push(format!(
            "{path}: Unsupported value: {value}: supported values: {}",
            supported.join(", ")
        ));
    }
    let number = value.as_f64();
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), number)
        && n < min
    {
        errors.push(format!("{path}: Invalid value: {value}: {path} in body should be greater than or equal to {min}"));
    }
    if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Value::as_f64), number)
        && n > max
    {
        errors.push(format!(
            "{path}: Invalid value: {value}: {path} in body should be less than or equal to {max}"
        ));
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            errors.push(format!(
                "{path}: Invalid value: {value}: {path} in body should be at least {} chars long",
                schema["minLength"]
            ));
        }
        if schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            errors.push(format!(
                "{path}: Too long: may not be more than {} bytes",
                schema["maxLength"]
            ));
        }
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_path = format!("{path}.{key}");
                let sub = properties
                    .and_then(|p| p.get(&key))
                    .or(additional.filter(|a| a.is_object()));
                match sub {
                    Some(sub) => check(
                        sub,
                        map.get_mut(&key).expect("listed key"),
                        &child_path,
                        errors,
                        pruned,
                    ),
                    None if preserves_unknown(schema) || additional == Some(&Value::Bool(true)) => {
                    }
                    None if properties.is_some() || additional.is_some() => {
                        map.remove(&key);
                        pruned.push(child_path);
                    }
                    None => {}
                }
            }
            required(schema, map, path, errors);
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                errors.push(format!(
                    "{path}: Invalid value: {}: {path} in body should have at least {min} items",
                    items.len()
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                errors.push(format!(
                    "{path}: Too many: {}: must have at most {max} items",
                    items.len()
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), errors, pruned);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "data": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "tags": {"type": "array", "items": {"type": "string"}}}},
            "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}})
    }

    #[test]
    fn valid_objects_pass_and_unknown_fields_are_pruned() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {"size": 2, "mode": "a", "data": {"k": "v"}, "free": {"any": [1]}, "tags": ["t"], "extra": 1},
            "unknown": true});
        let (errors, pruned) = validate(&schema(), &mut obj);
        assert!(errors.is_empty());
        assert_eq!(pruned, ["spec.extra", "unknown"]);
        assert!(obj.get("unknown").is_none());
        assert!(obj["spec"].get("extra").is_none());
        assert_eq!(obj["spec"]["free"], json!({"any": [1]}));
    }

    #[test]
    fn defaults_apply_where_the_parent_exists() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "mode": {"type": "string", "default": "a"},
                "nested": {"type": "object", "default": {}, "properties": {
                    "n": {"type": "integer", "default": 3}}},
                "absent": {"type": "object", "properties": {"x": {"type": "string", "default": "x"}}},
                "list": {"type": "array", "items": {"type": "object", "properties": {
                    "k": {"type": "string", "default": "d"}}}},
                "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "v": {"type": "boolean", "default": true}}}},
                "nulled": {"type": "string", "default": "was-null"},
                "kept": {"type": "string", "nullable": true, "default": "x"}}}}});
        let mut obj = json!({"spec": {"list": [{}, {"k": "set"}], "map": {"a": {}}, "nulled": null, "kept": null}});
        default(&schema, &mut obj);
        assert_eq!(
            obj,
            json!({"spec": {"list": [{"k": "d"}, {"k": "set"}], "map": {"a": {"v": true}},
                "nulled": "was-null", "kept": null, "mode": "a", "nested": {"n": 3}}})
        );
        let mut empty = json!({});
        default(&schema, &mut empty);
        assert_eq!(empty, json!({}));
    }

    #[test]
    fn field_errors() {
        let mut obj = json!({"spec": {"size": "big", "mode": "c", "data": {"k": 1}, "tags": [2]}});
        let (errors, _) = validate(&schema(), &mut obj);
        assert_eq!(
            errors,
            [
                "spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
                "spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"",
                "spec.data.k: Invalid value: \"integer\": spec.data.k in body must be of type string: \"integer\"",
                "spec.tags[0]: Invalid value: \"integer\": spec.tags[0] in body must be of type string: \"integer\"",
            ]
        );
        let mut obj = json!({"metadata": {}});
        assert_eq!(validate(&schema(), &mut obj).0, ["spec: Required value"]);
        let mut obj = json!({"spec": {"size": 0}});
        assert_eq!(validate(&schema(), &mut obj).0.len(), 1);
    }
}
