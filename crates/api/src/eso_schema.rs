//! Shared pieces of the `external-secrets.io` kinds: a lenient string-enum macro, the
//! small OpenAPI schema builders the CRD schemas are written with, and the step that
//! turns a derived single-version CRD into ESO's served `v1` + `v1beta1` shape.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceValidation, JSONSchemaProps,
};
use serde_json::{Value, json};

/// Declares a string enum whose wire names are given explicitly.
///
/// Serialization writes the wire name. Deserialization is lenient, like ESO's Go string
/// types followed by a `switch` with a `default:` arm: an empty, unknown or non-string
/// value reads as the `default` variant instead of making the whole object unreadable.
/// Rejecting unknown values is the job of the CRD schema's `enum`, at apply time.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident default $default:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }

        impl $name {
            /// Every wire name, in declaration order (the CRD schema's `enum`).
            pub const VALUES: &'static [&'static str] = &[$($wire),+];

            /// The wire name of this value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $wire ),+
                }
            }

            /// Parses a wire name exactly; `None` for anything else.
            pub fn from_wire(text: &str) -> Option<Self> {
                match text {
                    $( $wire => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
                Ok(raw.as_str().and_then(Self::from_wire).unwrap_or_default())
            }
        }
    };
}
pub(crate) use string_enum;

/// A string property.
pub(crate) fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

/// A string property with a schema default.
pub(crate) fn string_default(description: &str, default: &str) -> Value {
    json!({"type": "string", "description": description, "default": default})
}

/// A string property limited to `values`, with an optional schema default.
pub(crate) fn enumeration(description: &str, values: &[&str], default: Option<&str>) -> Value {
    let mut v = json!({"type": "string", "description": description, "enum": values});
    if let Some(d) = default {
        v["default"] = json!(d);
    }
    v
}

/// A boolean property.
pub(crate) fn boolean(description: &str) -> Value {
    json!({"type": "boolean", "description": description})
}

/// An integer property (`int64` or `int32`).
pub(crate) fn integer(description: &str, format: &str) -> Value {
    json!({"type": "integer", "format": format, "description": description})
}

/// A `map[string]string` property.
pub(crate) fn string_map(description: &str) -> Value {
    json!({"type": "object", "description": description, "additionalProperties": {"type": "string"}})
}

/// A list of strings.
pub(crate) fn string_list(description: &str) -> Value {
    json!({"type": "array", "description": description, "items": {"type": "string"}})
}

/// A list of `items`.
pub(crate) fn list(description: &str, items: Value) -> Value {
    json!({"type": "array", "description": description, "items": items})
}

/// An object with `properties` (a JSON object literal) and `required` names.
pub(crate) fn object(description: &str, properties: Value, required: &[&str]) -> Value {
    let mut v = json!({"type": "object", "description": description, "properties": properties});
    if !required.is_empty() {
        v["required"] = json!(required);
    }
    v
}

/// An object kept as given (`x-kubernetes-preserve-unknown-fields`): provider or auth
/// blocks gitseal does not model, which must still apply and round-trip.
pub(crate) fn opaque(description: &str) -> Value {
    json!({"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": true})
}

/// A `date-time` string.
pub(crate) fn time(description: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": description})
}

/// A DNS-1123 subdomain name, as ESO's `name` fields have it.
pub(crate) fn dns_name(description: &str) -> Value {
    json!({
        "type": "string", "description": description, "minLength": 1, "maxLength": 253,
        "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    })
}

/// Sets one extra keyword (`default`, `maxItems`, ...) on a schema.
pub(crate) fn with(mut schema: Value, key: &str, value: Value) -> Value {
    schema[key] = value;
    schema
}

/// Adds CEL rules `(rule, message)` as `x-kubernetes-validations`.
pub(crate) fn rules(mut schema: Value, rules: &[(&str, &str)]) -> Value {
    let list = rules
        .iter()
        .map(|(rule, message)| json!({"rule": rule, "message": message}))
        .collect::<Vec<_>>();
    schema["x-kubernetes-validations"] = Value::Array(list);
    schema
}

/// The `metav1.LabelSelector` schema.
pub(crate) fn label_selector(description: &str) -> Value {
    object(
        description,
        json!({
            "matchExpressions": list(
                "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
                object(
                    "A label selector requirement.",
                    json!({
                        "key": string("key is the label key that the selector applies to."),
                        "operator": string("operator represents a key's relationship to a set of values: In, NotIn, Exists and DoesNotExist."),
                        "values": with(string_list("values is an array of string values."), "x-kubernetes-list-type", json!("atomic"))
                    }),
                    &["key", "operator"],
                ),
            ),
            "matchLabels": string_map("matchLabels is a map of {key,value} pairs.")
        }),
        &[],
    )
}

/// The shape of a CRD's top-level schema: apiVersion, kind, metadata, spec, status.
pub(crate) fn root(description: &str, spec: Value, status: Value) -> Value {
    fn drop_empty_descriptions(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if map.get("description").and_then(Value::as_str) == Some("") {
                    map.remove("description");
                }
                map.values_mut().for_each(drop_empty_descriptions);
            }
            Value::Array(items) => items.iter_mut().for_each(drop_empty_descriptions),
            _ => {}
        }
    }
    let mut schema = json!({
        "type": "object",
        "description": description,
        "properties": {
            "apiVersion": string("APIVersion defines the versioned schema of this representation of an object."),
            "kind": string("Kind is a string value representing the REST resource this object represents."),
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status
        }
    });
    drop_empty_descriptions(&mut schema);
    schema
}

/// Message of the `v1beta1` deprecation warning.
fn v1beta1_warning(kind: &str) -> String {
    format!("external-secrets.io/v1beta1 {kind} is deprecated; use external-secrets.io/v1")
}

/// Turns the single `v1` version kube derives into ESO's layout: `v1` (served, storage)
/// and `v1beta1` (served, not storage, same schema and columns, deprecated), the given
/// schema and the list kind.
///
/// Both versions have the same schema, so the API server's `None` conversion (which
/// only rewrites `apiVersion`) is exact and no conversion webhook is needed. ESO's own
/// `v1beta1` schema is a frozen subset of `v1`: it lacks the 1.x/2.x additions
/// (`syncWindows`, `nullBytePolicy`, `rewrite[].merge`, `target.manifest`,
/// `template.metadata.finalizers`, `templateFrom[].valuesDecodingStrategy`,
/// `creationPolicy: CreateOrMerge`, string store `refreshInterval`); here `v1beta1`
/// accepts them too.
pub(crate) fn eso_crd(
    mut crd: CustomResourceDefinition,
    schema: Value,
) -> CustomResourceDefinition {
    let kind = crd.spec.names.kind.clone();
    crd.spec.names.list_kind = Some(format!("{kind}List"));
    let schema: JSONSchemaProps =
        serde_json::from_value(schema).expect("the schema literal is valid");
    let mut v1 = crd.spec.versions.remove(0);
    v1.schema = Some(CustomResourceValidation {
        open_api_v3_schema: Some(schema),
    });
    let mut v1beta1 = v1.clone();
    v1beta1.name = "v1beta1".to_owned();
    v1beta1.storage = false;
    v1beta1.deprecated = Some(true);
    v1beta1.deprecation_warning = Some(v1beta1_warning(&kind));
    crd.spec.versions = vec![v1, v1beta1];
    crd
}

/// Collects every `x-kubernetes-validations` rule of a schema.
#[cfg(test)]
pub(crate) fn cel_rules(schema: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                collect(map, out);
                for child in map.values() {
                    walk(child, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    fn collect(map: &serde_json::Map<String, Value>, out: &mut Vec<(String, String)>) {
        if let Some(Value::Array(list)) = map.get("x-kubernetes-validations") {
            for r in list {
                out.push((
                    r["rule"].as_str().unwrap_or_default().to_owned(),
                    r["message"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(schema, &mut out);
    out
}
