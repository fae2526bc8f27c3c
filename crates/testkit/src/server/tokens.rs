//! Service account tokens: TokenRequest (`serviceaccounts/<name>/token`) issues them,
//! TokenReview (`authentication.k8s.io/v1`) checks them, and they authenticate requests as
//! `system:serviceaccount:<ns>:<name>`, authorized by the Roles and ClusterRoles bound to
//! the service account.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use base64::Engine;

use super::*;
use crate::registry::AUTHENTICATION;

/// The issuer and default audience of the tokens, as in a default cluster.
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Signs and checks service account tokens: JWTs signed with an asymmetric key made for
/// each server (ES256; a real cluster's are RS256 or ES256, and relying parties such as
/// Vault's Kubernetes auth refuse HMAC-signed tokens).
pub(crate) struct TokenIssuer {
    key: EcdsaKeyPair,
}

/// Who a valid token names.
#[derive(Debug, Clone)]
pub(super) struct ServiceAccountToken {
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) uid: String,
    pub(super) audiences: Vec<String>,
}

impl ServiceAccountToken {
    pub(super) fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    fn groups(&self) -> Vec<String> {
        vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", self.namespace),
            "system:authenticated".into(),
        ]
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl TokenIssuer {
    pub(crate) fn new() -> Self {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .expect("the system random source works");
        Self { key }
    }

    /// The PEM public key (SubjectPublicKeyInfo) that verifies the tokens: what a relying
    /// party such as Vault's JWT auth is given as `jwt_validation_pubkeys`.
    pub(crate) fn public_key_pem(&self) -> String {
        use aws_lc_rs::encoding::AsDer;
        let der = self
            .key
            .public_key()
            .as_der()
            .expect("an EC public key encodes");
        let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    /// A token for the service account, valid for `lifetime`.
    fn issue(&self, sa: &ServiceAccountToken, lifetime: Duration) -> (String, SystemTime) {
        let now = SystemTime::now();
        let expires = now + lifetime;
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": "gitseal-testkit"});
        let claims = json!({
            "aud": sa.audiences,
            "exp": unix(expires),
            "iat": unix(now),
            "nbf": unix(now),
            "iss": ISSUER,
            "jti": random_id(),
            "kubernetes.io": {
                "namespace": sa.namespace,
                "serviceaccount": {"name": sa.name, "uid": sa.uid},
            },
            "sub": sa.username(),
        });
        let signed = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), signed.as_bytes())
            .expect("signing with a generated key works");
        (
            format!("{signed}.{}", B64.encode(signature.as_ref())),
            expires,
        )
    }

    /// The service account a token names, if this server signed it and it has not expired.
    pub(super) fn verify(&self, token: &str) -> Option<ServiceAccountToken> {
        let (signed, signature) = token.rsplit_once('.')?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(signed.as_bytes(), &B64.decode(signature).ok()?)
            .ok()?;
        let (_, claims) = signed.split_once('.')?;
        let claims: Value = serde_json::from_slice(&B64.decode(claims).ok()?).ok()?;
        if claims.get("exp")?.as_u64()? <= unix(SystemTime::now()) {
            return None;
        }
        let k8s = claims.get("kubernetes.io")?;
        Some(ServiceAccountToken {
            namespace: k8s.get("namespace")?.as_str()?.to_owned(),
            name: k8s.pointer("/serviceaccount/name")?.as_str()?.to_owned(),
            uid: k8s.pointer("/serviceaccount/uid")?.as_str()?.to_owned(),
            audiences: claims
                .get("aud")?
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
        })
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
    B64.encode(bytes)
}

/// The ServiceAccount object, if it exists.
fn service_account(store: &Store, namespace: &str, name: &str) -> Result<Arc<Value>, ApiError> {
    let rt = store
        .registry
        .find("", "v1", "serviceaccounts")
        .expect("built in");
    store.get(rt, namespace, name)
}

/// A token that this server signed, that has not expired, and whose ServiceAccount still
/// exists with the same uid.
pub(super) fn authenticate(shared: &Shared, token: &str) -> Option<ServiceAccountToken> {
    let sa = shared.issuer.verify(token)?;
    let store = shared.store.lock().expect("store lock");
    let object = service_account(&store, &sa.namespace, &sa.name).ok()?;
    (text_at(&object, "/metadata/uid") == sa.uid).then_some(sa)
}

/// The rules of every Role and ClusterRole bound to the service account (by name, by its
/// groups, or by its user name). `resourceNames` are not enforced.
pub(super) fn rules_of(shared: &Shared, sa: &ServiceAccountToken) -> Vec<Rule> {
    let store = shared.store.lock().expect("store lock");
    let all = |plural: &str| {
        let rt = store
            .registry
            .find("rbac.authorization.k8s.io", "v1", plural)
            .expect("built in");
        store
            .list(
                rt,
                None,
                &LabelSelector::default(),
                &FieldSelector::default(),
                None,
                None,
            )
            .map(|p| p.items)
            .unwrap_or_default()
    };
    let groups = sa.groups();
    let names = |binding: &Value| {
        binding
            .get("subjects")
            .and_then(Value::as_array)
            .is_some_and(|subjects| {
                subjects.iter().any(|s| {
                    let field = |f: &str| s.get(f).and_then(Value::as_str).unwrap_or_default();
                    match field("kind") {
                        "ServiceAccount" => {
                            field("name") == sa.name && field("namespace") == sa.namespace
                        }
                        "Group" => groups.iter().any(|g| g == field("name")),
                        "User" => field("name") == sa.username(),
                        _ => false,
                    }
                })
            })
    };
    let role_rules = |kind: &str, namespace: &str, name: &str| -> Vec<Value> {
        let (plural, ns) = match kind {
            "Role" => ("roles", namespace),
            "ClusterRole" => ("clusterroles", ""),
            _ => return Vec::new(),
        };
        let rt = store
            .registry
            .find("rbac.authorization.k8s.io", "v1", plural)
            .expect("built in");
        store
            .get(rt, ns, name)
            .ok()
            .and_then(|r| r.get("rules").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    };
    let mut rules = Vec::new();
    for (plural, namespaced) in [("rolebindings", true), ("clusterrolebindings", false)] {
        for binding in all(plural).iter().filter(|b| names(b)) {
            let namespace = text_at(binding, "/metadata/namespace");
            let kind = text_at(binding, "/roleRef/kind");
            let role = text_at(binding, "/roleRef/name");
            for rule in role_rules(&kind, &namespace, &role) {
                rules.push(Rule {
                    verbs: crate::store::strings_at(&rule, "/verbs"),
                    groups: crate::store::strings_at(&rule, "/apiGroups"),
                    resources: crate::store::strings_at(&rule, "/resources"),
                    namespaces: if namespaced {
                        vec![namespace.clone()]
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }
    rules
}

/// TokenRequest and TokenReview; `None` for other paths.
pub(super) fn serve_tokens(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
    rules: Option<&[Rule]>,
    user: &str,
) -> Option<Response> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (namespace, name, resource, group) = match segments.as_slice() {
        [
            "api",
            "v1",
            "namespaces",
            ns,
            "serviceaccounts",
            name,
            "token",
        ] => (*ns, *name, "serviceaccounts/token", ""),
        ["apis", AUTHENTICATION, "v1", "tokenreviews"] => ("", "", "tokenreviews", AUTHENTICATION),
        _ => return None,
    };
    if method != Method::POST {
        return Some(error_response(&ApiError::method_not_allowed()));
    }
    if !shared.permits(rules, "create", group, resource, namespace) {
        let scope = if namespace.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace \"{namespace}\"")
        };
        return Some(error_response(&ApiError::forbidden(format!(
            "{resource} is forbidden: User \"{user}\" cannot create resource \"{resource}\" in API group \"{group}\" {scope}"
        ))));
    }
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let protobuf_only = protobuf::accepts_only_protobuf(header(header::ACCEPT));
    let result = match verbs::parse_object(header(header::CONTENT_TYPE), body) {
        Ok(request) if resource == "tokenreviews" => Ok((201, token_review(shared, &request))),
        Ok(request) => token_request(shared, namespace, name, &request).map(|r| (201, r)),
        Err(error) => Err(error),
    };
    Some(match result {
        Ok((code, value)) if protobuf_only => protobuf_response(code, &value),
        Ok((code, value)) => json_response(code, &value),
        Err(error) if protobuf_only => protobuf_response(error.code, &error.to_status()),
        Err(error) => error_response(&error),
    })
}

/// `POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`.
fn token_request(
    shared: &Shared,
    namespace: &str,
    name: &str,
    request: &Value,
) -> Result<Value, ApiError> {
    let uid = {
        let store = shared.store.lock().expect("store lock");
        let object = service_account(&store, namespace, name)?;
        text_at(&object, "/metadata/uid")
    };
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut audiences: Vec<String> = crate::store::strings_at(&spec, "/audiences");
    if audiences.is_empty() {
        audiences.push(ISSUER.into());
    }
    let seconds = spec
        .get("expirationSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(3600);
    if seconds < 600 {
        return Err(ApiError::invalid(
            "TokenRequest",
            AUTHENTICATION,
            name,
            &[format!(
                "spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less than 10 minutes"
            )],
        ));
    }
    let sa = ServiceAccountToken {
        namespace: namespace.into(),
        name: name.into(),
        uid,
        audiences: audiences.clone(),
    };
    let (token, expires) = shared.issuer.issue(&sa, Duration::from_secs(seconds));
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        },
        "spec": {
            "audiences": audiences,
            "expirationSeconds": seconds,
            "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null),
        },
        "status": {
            "token": token,
            "expirationTimestamp": humantime::format_rfc3339_seconds(expires).to_string(),
        },
    }))
}

/// `POST /apis/authentication.k8s.io/v1/tokenreviews`: the request echoed with its status.
fn token_review(shared: &Shared, request: &Value) -> Value {
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let token = spec
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let wanted: Vec<String> = crate::store::strings_at(&spec, "/audiences");
    let status = match authenticate(shared, token) {
        None => json!({
            "authenticated": false,
            "user": {},
            "error": "[invalid bearer token, service account token is not valid]",
        }),
        Some(sa) => {
            // With audiences asked for, the token must be meant for one of them.
            let audiences: Vec<&String> = if wanted.is_empty() {
                sa.audiences.iter().collect()
            } else {
                wanted.iter().filter(|a| sa.audiences.contains(a)).collect()
            };
            if audiences.is_empty() {
                json!({
                    "authenticated": false,
                    "user": {},
                    "error": "[invalid bearer token, token audiences don't match]",
                })
            } else {
                json!({
                    "authenticated": true,
                    "user": {
                        "username": sa.username(),
                        "uid": sa.uid,
                        "groups": sa.groups(),
                    },
                    "audiences": audiences,
                })
            }
        }
    };
    json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": status,
    })
}
