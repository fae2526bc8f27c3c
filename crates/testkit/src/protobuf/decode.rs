//! Protobuf messages to the JSON the store keeps.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Map, Value, json};

/// A JSON object built from optional protobuf fields: unset and empty fields are left out,
/// as in the JSON encoding (`omitempty`).
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn val(mut self, key: &str, value: Option<Value>) -> Self {
        if let Some(value) = value {
            self.0.insert(key.into(), value);
        }
        self
    }
    /// Go's protobuf encoding sends unset strings as empty ones; JSON leaves them out.
    fn str(self, key: &str, value: &Option<String>) -> Self {
        let value = value.as_ref().filter(|v| !v.is_empty());
        self.val(key, value.cloned().map(Value::String))
    }
    fn bool(self, key: &str, value: Option<bool>) -> Self {
        self.val(key, value.map(Value::Bool))
    }
    /// Zero integers are left out, as unset ones (`omitempty`).
    fn int(self, key: &str, value: Option<i64>) -> Self {
        self.val(key, value.filter(|v| *v != 0).map(|v| json!(v)))
    }
    fn strs(self, key: &str, value: &[String]) -> Self {
        self.val(key, (!value.is_empty()).then(|| json!(value)))
    }
    fn map(self, key: &str, value: &BTreeMap<String, String>) -> Self {
        self.val(key, (!value.is_empty()).then(|| json!(value)))
    }
    fn bytes_map(self, key: &str, value: &BTreeMap<String, Vec<u8>>) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        let map: Map<String, Value> = value
            .iter()
            .map(|(k, v)| (k.clone(), json!(b64.encode(v))))
            .collect();
        self.val(key, (!map.is_empty()).then_some(Value::Object(map)))
    }
    fn list<T>(self, key: &str, items: &[T], f: impl Fn(&T) -> Value) -> Self {
        self.val(
            key,
            (!items.is_empty()).then(|| Value::Array(items.iter().map(f).collect())),
        )
    }
    fn msg<T>(self, key: &str, value: &Option<T>, f: impl Fn(&T) -> Value) -> Self {
        self.val(key, value.as_ref().map(f))
    }
    fn time(self, key: &str, value: &Option<meta::Time>) -> Self {
        self.val(key, value.as_ref().and_then(time_to_json))
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn time_to_json(time: &meta::Time) -> Option<Value> {
    if time.seconds.unwrap_or_default() == 0 && time.nanos.unwrap_or_default() == 0 {
        return None; // Go's zero time: unset
    }
    let at = UNIX_EPOCH + Duration::from_secs(time.seconds.unwrap_or_default().max(0) as u64);
    Some(json!(humantime::format_rfc3339_seconds(at).to_string()))
}

fn meta_to_json(m: &meta::ObjectMeta) -> Value {
    Obj::default()
        .str("name", &m.name)
        .str("generateName", &m.generate_name)
        .str("namespace", &m.namespace)
        .str("uid", &m.uid)
        .str("resourceVersion", &m.resource_version)
        .int("generation", m.generation)
        .time("creationTimestamp", &m.creation_timestamp)
        .time("deletionTimestamp", &m.deletion_timestamp)
        .int(
            "deletionGracePeriodSeconds",
            m.deletion_grace_period_seconds,
        )
        .map("labels", &m.labels)
        .map("annotations", &m.annotations)
        .list("ownerReferences", &m.owner_references, |o| {
            Obj::default()
                .str("apiVersion", &o.api_version)
                .str("kind", &o.kind)
                .str("name", &o.name)
                .str("uid", &o.uid)
                .bool("controller", o.controller)
                .bool("blockOwnerDeletion", o.block_owner_deletion)
                .done()
        })
        .strs("finalizers", &m.finalizers)
        .list("managedFields", &m.managed_fields, |f| {
            let fields = f
                .fields_v1
                .as_ref()
                .and_then(|f| f.raw.as_deref())
                .and_then(|raw| serde_json::from_slice(raw).ok());
            Obj::default()
                .str("manager", &f.manager)
                .str("operation", &f.operation)
                .str("apiVersion", &f.api_version)
                .time("time", &f.time)
                .str("fieldsType", &f.fields_type)
                .val("fieldsV1", fields)
                .str("subresource", &f.subresource)
                .done()
        })
        .done()
}

fn policy_rule_to_json(r: &rbac::PolicyRule) -> Value {
    Obj::default()
        .strs("verbs", &r.verbs)
        .strs("apiGroups", &r.api_groups)
        .strs("resources", &r.resources)
        .strs("resourceNames", &r.resource_names)
        .strs("nonResourceURLs", &r.non_resource_ur_ls)
        .done()
}

fn subject_to_json(s: &rbac::Subject) -> Value {
    Obj::default()
        .str("kind", &s.kind)
        .str("apiGroup", &s.api_group)
        .str("name", &s.name)
        .str("namespace", &s.namespace)
        .done()
}

fn role_ref_to_json(r: &rbac::RoleRef) -> Value {
    Obj::default()
        .str("apiGroup", &r.api_group)
        .str("kind", &r.kind)
        .str("name", &r.name)
        .done()
}

fn label_selector_to_json(s: &meta::LabelSelector) -> Value {
    Obj::default()
        .map("matchLabels", &s.match_labels)
        .list("matchExpressions", &s.match_expressions, |e| {
            Obj::default()
                .str("key", &e.key)
                .str("operator", &e.operator)
                .strs("values", &e.values)
                .done()
        })
        .done()
}

fn int_or_string_to_json(v: &IntOrString) -> Value {
    match v.r#type {
        Some(1) => json!(v.str_val.clone().unwrap_or_default()),
        _ => json!(v.int_val.unwrap_or_default()),
    }
}

fn service_spec_to_json(s: &core::ServiceSpec) -> Value {
    Obj::default()
        .list("ports", &s.ports, |p| {
            Obj::default()
                .str("name", &p.name)
                .str("protocol", &p.protocol)
                .str("appProtocol", &p.app_protocol)
                .int("port", p.port.map(i64::from))
                .msg("targetPort", &p.target_port, int_or_string_to_json)
                .int("nodePort", p.node_port.map(i64::from))
                .done()
        })
        .map("selector", &s.selector)
        .str("clusterIP", &s.cluster_ip)
        .strs("clusterIPs", &s.cluster_ips)
        .str("type", &s.r#type)
        .strs("externalIPs", &s.external_ips)
        .str("sessionAffinity", &s.session_affinity)
        .str("loadBalancerIP", &s.load_balancer_ip)
        .strs("loadBalancerSourceRanges", &s.load_balancer_source_ranges)
        .str("externalName", &s.external_name)
        .str("externalTrafficPolicy", &s.external_traffic_policy)
        .int(
            "healthCheckNodePort",
            s.health_check_node_port.map(i64::from),
        )
        .bool(
            "publishNotReadyAddresses",
            s.publish_not_ready_addresses.filter(|p| *p),
        )
        .strs("ipFamilies", &s.ip_families)
        .str("ipFamilyPolicy", &s.ip_family_policy)
        .bool(
            "allocateLoadBalancerNodePorts",
            s.allocate_load_balancer_node_ports,
        )
        .str("loadBalancerClass", &s.load_balancer_class)
        .str("internalTrafficPolicy", &s.internal_traffic_policy)
        .str("trafficDistribution", &s.traffic_distribution)
        .done()
}

pub(super) fn to_json(api_version: &str, kind: &str, raw: &[u8]) -> Result<Value, String> {
    fn parse<T: Message + Default>(raw: &[u8]) -> Result<T, String> {
        T::decode(raw).map_err(|e| format!("invalid protobuf message: {e}"))
    }
    let meta = |m: &Option<meta::ObjectMeta>| m.as_ref().map(meta_to_json);
    Ok(match (api_version, kind) {
        ("v1", "Namespace") => {
            let o: core::Namespace = parse(raw)?;
            Obj::default()
                .val("metadata", meta(&o.metadata))
                .msg("spec", &o.spec, |s| {
                    Obj::default().strs("finalizers", &s.finalizers).done()
                })
                .msg("status", &o.status, |s| {
                    Obj::default().str("phase", &s.phase).done()
                })
        }
        ("v1", "Secret") => {
            let o: core::Secret = parse(raw)?;
            Obj::default()
                .val("metadata", meta(&o.metadata))
                .bool("immutable", o.immutable)
                .bytes_map("data", &o.data)
                .map("stringData", &o.string_data)
                .str("type", &o.r#type)
        }
        ("v1", "ConfigMap") => {
            let o: core::ConfigMap = parse(raw)?;
            Obj::default()
                .val("metadata", meta(&o.metadata))
                .bool("immutable", o.immutable)
                .map("data", &o.data)
                .bytes_map("binaryData", &o.binary_data)
        }
        ("v1", "ServiceAccount") => {
            let o: core::ServiceAccount = parse(raw)?;
            Obj::default()
                .val("metadata", meta(&o.metadata))
                .list("secrets", &o.secrets, |r| {
                    Obj::default()
                        .str("kind", &r.kind)
                        .str("namespace", &r.namespace)
                        .str("name", &r.name)
                        .str("uid", &r.uid)
                        .str("apiVersion", &r.api_version)
                        .str("resourceVersion", &r.resource_version)
                        .str("fieldPath", &r.field_path)
                        .done()
                })
                .list("imagePullSecrets", &o.image_pull_secrets, |r| {
                    Obj::default().str("name", &r.name).done()
                })
                .bool(
                    "automountServiceAccountToken",
                    o.automount_service_account_token,
                )
        }
        ("v1", "Service") => {
            let o: core::Service = parse(raw)?;
            Obj::default()
                .val("metadata", meta(&o.metadata))
                .msg("spec", &o.spec, service_spec_to_json)
                .val("status", Some(json!({"loadBalancer": {}})))
        }
        ("rbac.authorization.k8s.io/v1", "Role") => {
            let o: rbac::Role = parse(raw)?;
            Obj::default()
                .val("metadata", meta(&o.metadata))
                .list("rules", &o.rules, policy_rule_to_json)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            let o: rbac::ClusterRole = parse(raw)?;
            Obj::default()
                .val("metadata", meta(&o.metadata))
                .list("rules", &o.rules, policy_rule_to_json)
                .msg("aggregationRule", &o.aggregation_rule, |a| {
                    Obj::default()
                        .list(
                            "clusterRoleSelectors",
                            &a.cluster_role_selectors,
                            label_selector_to_json,
                        )
                        .done()
                })
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            let o: rbac::RoleBinding = parse(raw)?;
            Obj::default()
                .val("metadata", meta(&o.metadata))
                .list("subjects", &o.subjects, subject_to_json)
                .msg("roleRef", &o.role_ref, role_ref_to_json)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            let o: rbac::ClusterRoleBinding = parse(raw)?;
            Obj::default()
                .val("metadata", meta(&o.metadata))
                .list("subjects", &o.subjects, subject_to_json)
                .msg("roleRef", &o.role_ref, role_ref_to_json)
        }
        ("authentication.k8s.io/v1", "TokenRequest") => {
            let o: authn::TokenRequest = parse(raw)?;
            Obj::default()
                .val("metadata", meta(&o.metadata))
                .msg("spec", &o.spec, |s| {
                    Obj::default()
                        .strs("audiences", &s.audiences)
                        .int("expirationSeconds", s.expiration_seconds)
                        .msg("boundObjectRef", &s.bound_object_ref, |r| {
                            Obj::default()
                                .str("kind", &r.kind)
                                .str("apiVersion", &r.api_version)
                                .str("name", &r.name)
                                .str("uid", &r.u_id)
                                .done()
                        })
                        .done()
                })
        }
        ("authentication.k8s.io/v1", "TokenReview") => {
            let o: authn::TokenReview = parse(raw)?;
            Obj::default()
                .val("metadata", meta(&o.metadata))
                .msg("spec", &o.spec, |s| {
                    Obj::default()
                        .str("token", &s.token)
                        .strs("audiences", &s.audiences)
                        .done()
                })
        }
        _ => {
            return Err(format!(
                "protobuf bodies of {api_version}, Kind={kind} are not supported by this server; send JSON"
            ));
        }
    }
    .done())
}
