//! CEL validation rules of custom resources (`x-kubernetes-validations`), as the real
//! server (Kubernetes 1.33) evaluates them, and the compilation check of a
//! CustomResourceDefinition's rules.
//!
//! Rules are evaluated at every schema level where the value is present, with `self`
//! bound to that value (at the root: `apiVersion`, `kind`, `metadata.name`,
//! `metadata.generateName`, and the other top-level fields). Transition rules (those
//! that mention `oldSelf`) run only on updates where the old value at the same place
//! exists, reached through object properties and map keys (list items are not
//! correlated, so transition rules under lists are skipped, as they are upstream for
//! lists other than `x-kubernetes-list-type: map`). `x-kubernetes-validations` with
//! `optionalOldSelf` is not supported (treated as a plain transition rule). As with the
//! real server's validation ratcheting, an update that leaves a value (reached through
//! properties and map keys) unchanged is not held to its other rules.
//!
//! The language is the standard CEL library (macros `has`, `all`, `exists`,
//! `exists_one`, `map`, `filter`; `size`, `in`, `matches`, `startsWith`, `endsWith`,
//! `contains`, conversions, ternaries) plus the strings extension (`lowerAscii`,
//! `upperAscii`, `trim`, `split`, `join`, `replace`, `substring`, `indexOf`, …). Values
//! are dynamically typed: a rule that names an undeclared field compiles and fails at
//! run time with `no such key`, where the real server would reject it at compile time.
//!
//! Errors are worded like the real server's field errors:
//! `spec: Invalid value: "object": <message>` (the schema type, as Kubernetes 1.33
//! prints it), `<path>: Forbidden: <message>` and `<path>: Required value: <message>`
//! for rules with a `reason`, and `<path>: Invalid value: "<type>": <error> evaluating
//! rule: <rule>` when a rule fails to evaluate.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::{Context, Env, ExecutionError, Program};
use serde_json::Value;

/// The environment every rule is compiled and evaluated in.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .expect("the strings extension registers once");
    env.set_error_on_duplicate_map_keys(false);
    Arc::new(env)
});

/// The variables a rule may name.
const VARIABLES: [&str; 2] = ["self", "oldSelf"];

/// The rules of one schema node.
fn rules_of(schema: &Value) -> &[Value] {
    schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn text<'a>(rule: &'a Value, field: &str) -> &'a str {
    rule.get(field).and_then(Value::as_str).unwrap_or_default()
}

thread_local! {
    /// Compiled rules by source: a rule under a list runs once per item.
    static PROGRAMS: std::cell::RefCell<HashMap<String, Result<std::rc::Rc<Program>, String>>> =
        std::cell::RefCell::new(HashMap::new());
}

/// [`compile`], remembered per thread.
fn compiled(source: &str) -> Result<std::rc::Rc<Program>, String> {
    PROGRAMS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(result) = cache.get(source) {
            return result.clone();
        }
        if cache.len() >= 4096 {
            cache.clear();
        }
        let result = compile(source).map(std::rc::Rc::new);
        cache.insert(source.to_owned(), result.clone());
        result
    })
}

/// Compiles `source` as cel-go would, rejecting references to variables other than
/// `self` and `oldSelf`. The error is cel-go's `ERROR: <input>:line:col: ...` text.
fn compile(source: &str) -> Result<Program, String> {
    let program = ENV.compile(source).map_err(|e| {
        // cel-go indents its source snippets by one space.
        e.to_string().replace("\n| ", "\n | ")
    })?;
    let references = program.references();
    let bound = macro_variables(source);
    if let Some(name) = references.variables().into_iter().find(|v| {
        !VARIABLES.contains(v)
            && !bound.iter().any(|b| b == v)
            && !v.starts_with('@')
            && !v.starts_with("__")
    }) {
        let column = source.find(name).map_or(1, |i| i + 1);
        return Err(format!(
            "ERROR: <input>:1:{column}: undeclared reference to '{name}' (in container '')\n | {source}\n | {:.>column$}",
            "^"
        ));
    }
    Ok(program)
}

/// The variables that macros (`all`, `exists`, `exists_one`, `map`, `filter`) bind in
/// `source`: the identifier each one's call opens with.
fn macro_variables(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for name in ["all", "exists", "exists_one", "map", "filter"] {
        let pattern = format!(".{name}(");
        let mut from = 0;
        while let Some(i) = source[from..].find(&pattern) {
            let start = from + i + pattern.len();
            let rest = source[start..].trim_start();
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end > 0 {
                names.push(rest[..end].to_owned());
            }
            from = start;
        }
    }
    names
}

/// The rule as Go's `%#v` prints the internal `apiextensions.ValidationRule`.
fn go_rule(rule: &Value) -> String {
    let reason = match rule.get("reason").and_then(Value::as_str) {
        Some(_) => "(*apiextensions.FieldValueErrorReason)(0xc000000000)",
        None => "(*apiextensions.FieldValueErrorReason)(nil)",
    };
    let optional_old_self = match rule.get("optionalOldSelf").and_then(Value::as_bool) {
        Some(_) => "(*bool)(0xc000000000)",
        None => "(*bool)(nil)",
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{:?}, Message:{:?}, MessageExpression:{:?}, Reason:{reason}, FieldPath:{:?}, OptionalOldSelf:{optional_old_self}}}",
        text(rule, "rule"),
        text(rule, "message"),
        text(rule, "messageExpression"),
        text(rule, "fieldPath"),
    )
}

/// The compilation errors of the rules in a CustomResourceDefinition's schemas, worded
/// like the real server's (`spec.validation.openAPIV3Schema.properties[spec]
/// .x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{...}:
/// compilation failed: ERROR: <input>:1:6: ...`). The path starts at
/// `spec.validation.openAPIV3Schema` when every version has the same schema (as the
/// real server reports it), else at `spec.versions[i].schema.openAPIV3Schema`.
pub fn crd_errors(crd: &Value) -> Vec<String> {
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let schemas: Vec<Option<&Value>> = versions
        .iter()
        .map(|v| v.pointer("/schema/openAPIV3Schema"))
        .collect();
    let mut errors = Vec::new();
    let shared = schemas.windows(2).all(|w| w[0] == w[1]);
    if shared {
        if let Some(Some(schema)) = schemas.first() {
            schema_errors(
                schema,
                "spec.validation.openAPIV3Schema".to_owned(),
                &mut errors,
            );
        }
    } else {
        for (i, schema) in schemas.iter().enumerate() {
            if let Some(schema) = schema {
                schema_errors(
                    schema,
                    format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    &mut errors,
                );
            }
        }
    }
    errors
}

fn schema_errors(schema: &Value, path: String, errors: &mut Vec<String>) {
    for (i, rule) in rules_of(schema).iter().enumerate() {
        let at = format!("{path}.x-kubernetes-validations[{i}]");
        let source = text(rule, "rule");
        if source.trim().is_empty() {
            errors.push(format!("{at}.rule: Required value"));
            continue;
        }
        if let Err(e) = compile(source) {
            errors.push(format!(
                "{at}.rule: Invalid value: {}: compilation failed: {e}",
                go_rule(rule)
            ));
        }
        let message_expression = text(rule, "messageExpression");
        if !message_expression.is_empty()
            && let Err(e) = compile(message_expression)
        {
            errors.push(format!(
                "{at}.messageExpression: Invalid value: {message_expression:?}: messageExpression compilation failed: {e}"
            ));
        }
        if let Some(reason) = rule.get("reason").and_then(Value::as_str)
            && !matches!(
                reason,
                "FieldValueInvalid"
                    | "FieldValueForbidden"
                    | "FieldValueRequired"
                    | "FieldValueDuplicate"
            )
        {
            errors.push(format!(
                "{at}.reason: Unsupported value: {reason:?}: supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
            ));
        }
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in properties {
            schema_errors(sub, format!("{path}.properties[{name}]"), errors);
        }
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        schema_errors(items, format!("{path}.items"), errors);
    }
    if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        schema_errors(additional, format!("{path}.additionalProperties"), errors);
    }
}

/// Evaluates every rule of `schema` on `object` (a custom resource, after defaulting and
/// pruning), with `old` the stored object on updates. Returns the field errors.
pub fn validate(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<String> {
    let mut errors = Vec::new();
    let root = root_view(object);
    let old_root = old.map(root_view);
    walk(schema, &root, old_root.as_ref(), "<nil>", true, &mut errors);
    errors
}

/// What `self` sees at the root: metadata only has `name` and `generateName`.
fn root_view(object: &Value) -> Value {
    let mut view = object.clone();
    if let Some(Value::Object(meta)) = view.get_mut("metadata") {
        meta.retain(|k, _| k == "name" || k == "generateName");
    }
    view
}

fn child(path: &str, name: &str) -> String {
    if path == "<nil>" {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn walk(
    schema: &Value,
    value: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    errors: &mut Vec<String>,
) {
    if value.is_null() {
        return;
    }
    let rules = rules_of(schema);
    if !rules.is_empty() {
        evaluate(
            schema,
            rules,
            value,
            old.filter(|o| !o.is_null()),
            path,
            errors,
        );
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, sub_value) in map {
                if root && key == "metadata" {
                    continue;
                }
                let old_value = old.and_then(|o| o.get(key));
                if let Some(sub) = properties.and_then(|p| p.get(key)) {
                    walk(sub, sub_value, old_value, &child(path, key), false, errors);
                } else if let Some(sub) = additional {
                    walk(
                        sub,
                        sub_value,
                        old_value,
                        &format!("{path}[{key}]"),
                        false,
                        errors,
                    );
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    walk(sub, item, None, &format!("{path}[{i}]"), false, errors);
                }
            }
        }
        _ => {}
    }
}

/// The schema type as the real server names it in errors (`""` when untyped).
fn schema_type(schema: &Value) -> &str {
    schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `message` if set, else `failed rule: <rule>`.
fn rule_message(rule: &Value) -> String {
    let message = text(rule, "message").trim();
    if message.is_empty() {
        format!("failed rule: {}", text(rule, "rule").trim())
    } else {
        message.to_owned()
    }
}

/// `message` if set, else the rule: what evaluation errors name.
fn rule_error_string(rule: &Value) -> String {
    let message = text(rule, "message").trim();
    if message.is_empty() {
        text(rule, "rule").trim().to_owned()
    } else {
        message.to_owned()
    }
}

/// cel-go's wording of an evaluation error.
fn go_error(error: &ExecutionError) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::IndexOutOfBounds(index) => {
            format!("index out of bounds: {}", cel_text(index))
        }
        ExecutionError::DivisionByZero(_) => "division by zero".to_owned(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_owned(),
        ExecutionError::Overflow(..) => "integer overflow".to_owned(),
        other => other.to_string(),
    }
}

fn cel_text(value: &cel::Value) -> String {
    match value {
        cel::Value::Int(i) => i.to_string(),
        cel::Value::UInt(u) => u.to_string(),
        cel::Value::String(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

/// The field path a rule's `fieldPath` names, appended to `path`: `.a.b` → `path.a.b`,
/// `['k']` → `path[k]`.
fn with_field_path(path: &str, field_path: &str) -> String {
    let mut out = path.to_owned();
    let mut rest = field_path.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']").unwrap_or(after.len());
            out = format!("{out}[{}]", &after[..end]);
            rest = after.get(end + 2..).unwrap_or_default();
        } else {
            let after = rest.strip_prefix('.').unwrap_or(rest);
            let end = after.find(['.', '[']).unwrap_or(after.len());
            out = child(&out, &after[..end]);
            rest = &after[end..];
        }
    }
    out
}

fn evaluate(
    schema: &Value,
    rules: &[Value],
    value: &Value,
    old: Option<&Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    let kind = schema_type(schema);
    let self_value = to_cel(schema, value);
    let old_value = old.map(|o| to_cel(schema, o));
    for rule in rules {
        let source = text(rule, "rule");
        // The CustomResourceDefinition was checked when it was stored; a rule that does
        // not compile now is reported, never a panic.
        let program = match compiled(source) {
            Ok(program) => program,
            Err(e) => {
                errors.push(format!(
                    "{path}: Invalid value: \"{kind}\": compilation failed: {e}"
                ));
                continue;
            }
        };
        let transition = program.references().has_variable("oldSelf");
        if transition && old_value.is_none() {
            continue;
        }
        // Ratcheting (on by default since 1.30): a value an update leaves as it was is
        // not held to rules that do not compare it with the old one.
        if !transition && old == Some(value) {
            continue;
        }
        let mut context = Context::with_env(ENV.clone());
        context.add_variable_from_value("self", self_value.clone());
        if let Some(old_value) = &old_value {
            context.add_variable_from_value("oldSelf", old_value.clone());
        }
        match program.execute(&context) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => {
                let detail = message_expression(rule, &context)
                    .unwrap_or_else(|| rule_message(rule));
                let at = with_field_path(path, text(rule, "fieldPath"));
                errors.push(match rule.get("reason").and_then(Value::as_str) {
                    Some("FieldValueForbidden") => format!("{at}: Forbidden: {detail}"),
                    Some("FieldValueRequired") => format!("{at}: Required value: {detail}"),
                    Some("FieldValueDuplicate") => format!("{at}: Duplicate value: \"{kind}\""),
                    _ => format!("{at}: Invalid value: \"{kind}\": {detail}"),
                });
            }
            Ok(_) => errors.push(format!(
                "{path}: Invalid value: \"{kind}\": 'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {}",
                rule_error_string(rule)
            )),
            Err(ExecutionError::NoSuchOverload(_)) => errors.push(format!(
                "{path}: Invalid value: \"{kind}\": 'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {}",
                rule_error_string(rule)
            )),
            Err(e) => errors.push(format!(
                "{path}: Invalid value: \"{kind}\": {} evaluating rule: {}",
                go_error(&e),
                rule_error_string(rule)
            )),
        }
    }
}

/// The rule's `messageExpression`, if it has one that evaluates to a non-empty string on
/// one line (else the real server falls back to the message).
fn message_expression(rule: &Value, context: &Context) -> Option<String> {
    let source = text(rule, "messageExpression");
    if source.is_empty() {
        return None;
    }
    match compiled(source).ok()?.execute(context).ok()? {
        cel::Value::String(s) => {
            let trimmed = s.trim();
            (!trimmed.is_empty() && !trimmed.contains('\n')).then(|| trimmed.to_owned())
        }
        _ => None,
    }
}

/// The CEL value of `value`: objects become maps (null fields left out, as the real
/// server treats them as absent), integers stay ints, `type: number` fields are doubles.
fn to_cel(schema: &Value, value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) if schema_type(schema) == "number" => {
            cel::Value::Float(n.as_f64().unwrap_or_default())
        }
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => {
            let sub = schema.get("items").unwrap_or(&Value::Null);
            cel::Value::List(Arc::new(items.iter().map(|i| to_cel(sub, i)).collect()))
        }
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let entries: HashMap<String, cel::Value> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let sub = properties
                        .and_then(|p| p.get(k))
                        .or(additional)
                        .unwrap_or(&Value::Null);
                    (k.clone(), to_cel(sub, v))
                })
                .collect();
            entries.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(schema: Value, object: Value) -> Vec<String> {
        validate(&schema, &object, None)
    }

    #[test]
    fn the_language_surface() {
        let rules = [
            "has(self.a) && !has(self.zz)",
            "size(self.list) == 3 && self.list.size() == 3",
            "'x' in self.list && 'k' in self.m",
            "self.list.exists(i, i == 'y') && self.list.all(i, size(i) == 1)",
            "self.list.exists_one(i, i == 'z')",
            "self.list.map(i, i + '!') == ['x!', 'y!', 'z!']",
            "self.list.filter(i, i != 'x').size() == 2",
            "(self.n > 1 ? 'big' : 'small') == 'big'",
            "self.a.matches('^[a-z]+$') && self.a.startsWith('ab') && self.a.endsWith('c') && self.a.contains('b')",
            "self.u.lowerAscii() == 'abc' && self.a.upperAscii() == 'ABC' && self.p.trim() == 'p'",
            "self.csv.split(',') == ['a', 'b'] && self.list.join('-') == 'x-y-z'",
            "self.n + 1 == 3 && self.f > 1.0",
            "self.m.all(k, self.m[k] == 'v')",
        ];
        for rule in rules {
            let schema = json!({"type": "object", "x-kubernetes-validations": [{"rule": rule}], "properties": {
                "f": {"type": "number"}, "n": {"type": "integer"}}});
            let object = json!({"a": "abc", "u": "ABC", "p": " p ", "csv": "a,b", "n": 2, "f": 2,
                "list": ["x", "y", "z"], "m": {"k": "v"}});
            assert_eq!(check(schema, object), Vec::<String>::new(), "{rule}");
        }
    }

    #[test]
    fn failures_are_worded_like_the_real_server() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [
                {"rule": "has(self.data) || has(self.dataFrom)", "message": "either data or dataFrom should be specified"},
                {"rule": "self.size > 1"},
                {"rule": "self.missing == 1"},
                {"rule": "self.name != 'bad'", "reason": "FieldValueForbidden", "fieldPath": ".name", "messageExpression": "'name ' + self.name + ' is taken'"},
            ],
            "properties": {"size": {"type": "integer"}, "name": {"type": "string"},
                "items": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self != ''", "message": "must not be empty"}]}}}}}});
        let object = json!({"spec": {"size": 1, "name": "bad", "items": ["a", ""]}});
        assert_eq!(
            check(schema, object),
            [
                "spec: Invalid value: \"object\": either data or dataFrom should be specified",
                "spec: Invalid value: \"object\": failed rule: self.size > 1",
                "spec: Invalid value: \"object\": no such key: missing evaluating rule: self.missing == 1",
                "spec.name: Forbidden: name bad is taken",
                "spec.items[1]: Invalid value: \"string\": must not be empty",
            ]
        );
    }

    #[test]
    fn root_rules_and_transition_rules() {
        let schema = json!({"type": "object", "x-kubernetes-validations": [
            {"rule": "self.metadata.name.startsWith('ok') && !has(self.metadata.labels)"}],
            "properties": {"spec": {"type": "object", "x-kubernetes-validations": [
                {"rule": "self.mode == oldSelf.mode", "message": "mode is immutable"}],
                "properties": {"mode": {"type": "string"}}}}});
        let old =
            json!({"metadata": {"name": "ok-1", "labels": {"a": "b"}}, "spec": {"mode": "a"}});
        let new =
            json!({"metadata": {"name": "ok-1", "labels": {"a": "b"}}, "spec": {"mode": "b"}});
        assert!(validate(&schema, &new, None).is_empty());
        assert_eq!(
            validate(&schema, &new, Some(&old)),
            ["spec: Invalid value: \"object\": mode is immutable"]
        );
        // Ratcheting: an unchanged value is not held to its (other) rules.
        let rule = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.n > 1"}]}, "other": {"type": "string"}}});
        let stored = json!({"spec": {"n": 0}, "other": "a"});
        let touched = json!({"spec": {"n": 0}, "other": "b"});
        assert!(validate(&rule, &touched, Some(&stored)).is_empty());
        assert_eq!(validate(&rule, &touched, None).len(), 1);
        let bad = json!({"metadata": {"name": "no"}});
        assert_eq!(
            validate(&schema, &bad, None),
            [
                "<nil>: Invalid value: \"object\": failed rule: self.metadata.name.startsWith('ok') && !has(self.metadata.labels)"
            ]
        );
    }

    #[test]
    fn crd_rules_must_compile() {
        let crd = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"spec": {"type": "object",
                "x-kubernetes-validations": [{"rule": "self.a ==", "message": "m"}, {"rule": "other.a == 1"}, {"rule": "true"}]}}}}}]}});
        let errors = crd_errors(&crd);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with(
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.a ==\", Message:\"m\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:"
        ), "{}", errors[0]);
        assert!(
            errors[1].ends_with(
                "compilation failed: ERROR: <input>:1:1: undeclared reference to 'other' (in container '')\n | other.a == 1\n | ^"
            ),
            "{}",
            errors[1]
        );
    }
}
