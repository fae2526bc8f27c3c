//! The JSON the store keeps to protobuf messages.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::Value;

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn b(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

fn i(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn i32_(v: &Value, key: &str) -> Option<i32> {
    i(v, key).and_then(|x| i32::try_from(x).ok())
}

fn strs(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn smap(v: &Value, key: &str) -> BTreeMap<String, String> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| Some((k.clone(), x.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn bmap(v: &Value, key: &str) -> BTreeMap<String, Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    v.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| Some((k.clone(), b64.decode(x.as_str()?).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn list<T>(v: &Value, key: &str, f: impl Fn(&Value) -> T) -> Vec<T> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(f).collect())
        .unwrap_or_default()
}

fn time(v: &Value, key: &str) -> Option<meta::Time> {
    let at = humantime::parse_rfc3339(v.get(key)?.as_str()?).ok()?;
    let seconds = at.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    Some(meta::Time {
        seconds: Some(seconds as i64),
        nanos: Some(0),
    })
}

fn meta_from_json(m: &Value) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(m, "name"),
        generate_name: s(m, "generateName"),
        namespace: s(m, "namespace"),
        self_link: None,
        uid: s(m, "uid"),
        resource_version: s(m, "resourceVersion"),
        generation: i(m, "generation"),
        creation_timestamp: time(m, "creationTimestamp"),
        deletion_timestamp: time(m, "deletionTimestamp"),
        deletion_grace_period_seconds: i(m, "deletionGracePeriodSeconds"),
        labels: smap(m, "labels"),
        annotations: smap(m, "annotations"),
        owner_references: list(m, "ownerReferences", |o| meta::OwnerReference {
            api_version: s(o, "apiVersion"),
            kind: s(o, "kind"),
            name: s(o, "name"),
            uid: s(o, "uid"),
            controller: b(o, "controller"),
            block_owner_deletion: b(o, "blockOwnerDeletion"),
        }),
        finalizers: strs(m, "finalizers"),
        managed_fields: list(m, "managedFields", |f| meta::ManagedFieldsEntry {
            manager: s(f, "manager"),
            operation: s(f, "operation"),
            api_version: s(f, "apiVersion"),
            time: time(f, "time"),
            fields_type: s(f, "fieldsType"),
            fields_v1: f.get("fieldsV1").map(|v| meta::FieldsV1 {
                raw: Some(v.to_string().into_bytes()),
            }),
            subresource: s(f, "subresource"),
        }),
    }
}

fn policy_rule(r: &Value) -> rbac::PolicyRule {
    rbac::PolicyRule {
        verbs: strs(r, "verbs"),
        api_groups: strs(r, "apiGroups"),
        resources: strs(r, "resources"),
        resource_names: strs(r, "resourceNames"),
        non_resource_ur_ls: strs(r, "nonResourceURLs"),
    }
}

fn subject(v: &Value) -> rbac::Subject {
    rbac::Subject {
        kind: s(v, "kind"),
        api_group: s(v, "apiGroup"),
        name: s(v, "name"),
        namespace: s(v, "namespace"),
    }
}

fn role_ref(v: &Value) -> Option<rbac::RoleRef> {
    let v = v.get("roleRef")?;
    Some(rbac::RoleRef {
        api_group: s(v, "apiGroup"),
        kind: s(v, "kind"),
        name: s(v, "name"),
    })
}

fn label_selector(v: &Value) -> meta::LabelSelector {
    meta::LabelSelector {
        match_labels: smap(v, "matchLabels"),
        match_expressions: list(v, "matchExpressions", |e| meta::LabelSelectorRequirement {
            key: s(e, "key"),
            operator: s(e, "operator"),
            values: strs(e, "values"),
        }),
    }
}

fn int_or_string(v: &Value) -> IntOrString {
    match v {
        Value::String(text) => IntOrString {
            r#type: Some(1),
            int_val: None,
            str_val: Some(text.clone()),
        },
        other => IntOrString {
            r#type: Some(0),
            int_val: other.as_i64().and_then(|x| i32::try_from(x).ok()),
            str_val: None,
        },
    }
}

fn service_spec(v: &Value) -> core::ServiceSpec {
    core::ServiceSpec {
        ports: list(v, "ports", |p| core::ServicePort {
            name: s(p, "name"),
            protocol: s(p, "protocol"),
            app_protocol: s(p, "appProtocol"),
            port: i32_(p, "port"),
            target_port: p.get("targetPort").map(int_or_string),
            node_port: i32_(p, "nodePort"),
        }),
        selector: smap(v, "selector"),
        cluster_ip: s(v, "clusterIP"),
        cluster_ips: strs(v, "clusterIPs"),
        r#type: s(v, "type"),
        external_ips: strs(v, "externalIPs"),
        session_affinity: s(v, "sessionAffinity"),
        load_balancer_ip: s(v, "loadBalancerIP"),
        load_balancer_source_ranges: strs(v, "loadBalancerSourceRanges"),
        external_name: s(v, "externalName"),
        external_traffic_policy: s(v, "externalTrafficPolicy"),
        health_check_node_port: i32_(v, "healthCheckNodePort"),
        publish_not_ready_addresses: b(v, "publishNotReadyAddresses"),
        session_affinity_config: None,
        ip_families: strs(v, "ipFamilies"),
        ip_family_policy: s(v, "ipFamilyPolicy"),
        allocate_load_balancer_node_ports: b(v, "allocateLoadBalancerNodePorts"),
        load_balancer_class: s(v, "loadBalancerClass"),
        internal_traffic_policy: s(v, "internalTrafficPolicy"),
        traffic_distribution: s(v, "trafficDistribution"),
    }
}

pub(super) fn from_json(api_version: &str, kind: &str, o: &Value) -> Option<Vec<u8>> {
    let metadata = Some(meta_from_json(o.get("metadata").unwrap_or(&Value::Null)));
    let part = |key: &str| o.get(key).filter(|v| v.is_object());
    Some(match (api_version, kind) {
        ("v1", "Namespace") => core::Namespace {
            metadata,
            spec: part("spec").map(|v| core::NamespaceSpec {
                finalizers: strs(v, "finalizers"),
            }),
            status: part("status").map(|v| core::NamespaceStatus {
                phase: s(v, "phase"),
                conditions: Vec::new(),
            }),
        }
        .encode_to_vec(),
        ("v1", "Secret") => core::Secret {
            metadata,
            immutable: b(o, "immutable"),
            data: bmap(o, "data"),
            string_data: smap(o, "stringData"),
            r#type: s(o, "type"),
        }
        .encode_to_vec(),
        ("v1", "ConfigMap") => core::ConfigMap {
            metadata,
            immutable: b(o, "immutable"),
            data: smap(o, "data"),
            binary_data: bmap(o, "binaryData"),
        }
        .encode_to_vec(),
        ("v1", "ServiceAccount") => core::ServiceAccount {
            metadata,
            secrets: list(o, "secrets", |r| core::ObjectReference {
                kind: s(r, "kind"),
                namespace: s(r, "namespace"),
                name: s(r, "name"),
                uid: s(r, "uid"),
                api_version: s(r, "apiVersion"),
                resource_version: s(r, "resourceVersion"),
                field_path: s(r, "fieldPath"),
            }),
            image_pull_secrets: list(o, "imagePullSecrets", |r| core::LocalObjectReference {
                name: s(r, "name"),
            }),
            automount_service_account_token: b(o, "automountServiceAccountToken"),
        }
        .encode_to_vec(),
        ("v1", "Service") => core::Service {
            metadata,
            spec: part("spec").map(service_spec),
            status: Some(core::ServiceStatus::default()),
        }
        .encode_to_vec(),
        ("rbac.authorization.k8s.io/v1", "Role") => rbac::Role {
            metadata,
            rules: list(o, "rules", policy_rule),
        }
        .encode_to_vec(),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => rbac::ClusterRole {
            metadata,
            rules: list(o, "rules", policy_rule),
            aggregation_rule: part("aggregationRule").map(|a| rbac::AggregationRule {
                cluster_role_selectors: list(a, "clusterRoleSelectors", label_selector),
            }),
        }
        .encode_to_vec(),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => rbac::RoleBinding {
            metadata,
            subjects: list(o, "subjects", subject),
            role_ref: role_ref(o),
        }
        .encode_to_vec(),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => rbac::ClusterRoleBinding {
            metadata,
            subjects: list(o, "subjects", subject),
            role_ref: role_ref(o),
        }
        .encode_to_vec(),
        ("authentication.k8s.io/v1", "TokenRequest") => authn::TokenRequest {
            metadata,
            spec: part("spec").map(|v| authn::TokenRequestSpec {
                audiences: strs(v, "audiences"),
                expiration_seconds: i(v, "expirationSeconds"),
                bound_object_ref: v.get("boundObjectRef").filter(|r| r.is_object()).map(|r| {
                    authn::BoundObjectReference {
                        kind: s(r, "kind"),
                        api_version: s(r, "apiVersion"),
                        name: s(r, "name"),
                        u_id: s(r, "uid"),
                    }
                }),
            }),
            status: part("status").map(|v| authn::TokenRequestStatus {
                token: s(v, "token"),
                expiration_timestamp: time(v, "expirationTimestamp"),
            }),
        }
        .encode_to_vec(),
        ("authentication.k8s.io/v1", "TokenReview") => authn::TokenReview {
            metadata,
            spec: part("spec").map(|v| authn::TokenReviewSpec {
                token: s(v, "token"),
                audiences: strs(v, "audiences"),
            }),
            status: part("status").map(|v| authn::TokenReviewStatus {
                authenticated: b(v, "authenticated"),
                user: v.get("user").map(|u| authn::UserInfo {
                    username: s(u, "username"),
                    uid: s(u, "uid"),
                    groups: strs(u, "groups"),
                    extra: Default::default(),
                }),
                audiences: strs(v, "audiences"),
                error: s(v, "error"),
            }),
        }
        .encode_to_vec(),
        ("v1", "Status") => meta::Status {
            metadata: None,
            status: s(o, "status"),
            message: s(o, "message"),
            reason: s(o, "reason"),
            details: None,
            code: i32_(o, "code"),
        }
        .encode_to_vec(),
        _ => return None,
    })
}
