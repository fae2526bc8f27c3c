//! The kinds the server serves: built-in ones, and those that CustomResourceDefinitions add.

use serde_json::{Value, json};

/// One served resource: a group/version/plural with its kind and scope.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Secret`.
    pub kind: String,
    /// Plural resource name, e.g. `secrets`.
    pub plural: String,
    /// Singular name, e.g. `secret`.
    pub singular: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Whether the `status` subresource is enabled.
    pub status_subresource: bool,
    /// Whether `metadata.generation` is maintained (custom resources, CRDs, Leases do not).
    pub generation: bool,
    /// The OpenAPI v3 schema of a custom resource version.
    pub schema: Option<Value>,
    /// Whether the type comes from a CustomResourceDefinition.
    pub custom: bool,
    /// The `additionalPrinterColumns` of a custom resource version (server-side printing).
    pub printer_columns: Vec<Value>,
}

impl ResourceType {
    fn builtin(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            namespaced,
            short_names: Vec::new(),
            status_subresource: false,
            generation: false,
            schema: None,
            custom: false,
            printer_columns: Vec::new(),
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `apiVersion` of objects of this type.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key shared by every version of the resource.
    pub fn storage_key(&self) -> (String, String) {
        (self.group.clone(), self.plural.clone())
    }

    /// The entry of this type in an `APIResourceList`.
    fn discovery(&self) -> Vec<Value> {
        let verbs = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
            "shortNames": self.short_names,
            "storageVersionHash": "",
        })];
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

/// The group of TokenReview, served by the server itself rather than by the store.
pub const AUTHENTICATION: &str = "authentication.k8s.io";

/// The `/apis/authentication.k8s.io/v1` entries.
fn authentication_resources() -> Vec<Value> {
    vec![json!({
        "name": "tokenreviews",
        "singularName": "tokenreview",
        "namespaced": false,
        "kind": "TokenReview",
        "verbs": ["create"],
        "storageVersionHash": "",
    })]
}

/// The `serviceaccounts/token` subresource (TokenRequest) in `/api/v1`.
fn token_request_resource() -> Value {
    json!({
        "name": "serviceaccounts/token",
        "singularName": "",
        "namespaced": true,
        "group": AUTHENTICATION,
        "version": "v1",
        "kind": "TokenRequest",
        "verbs": ["create"],
    })
}

/// A sort key of a Kubernetes version string: GA before beta before alpha (each by
/// descending major, then minor), then anything else by name.
fn version_priority(version: &str) -> (u8, i64, i64, String) {
    let parsed = version.strip_prefix('v').and_then(|rest| {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: i64 = rest[..digits].parse().ok()?;
        match &rest[digits..] {
            "" => Some((0, major, 0)),
            tail => {
                let (class, minor) = if let Some(n) = tail.strip_prefix("beta") {
                    (1, n)
                } else {
                    (2, tail.strip_prefix("alpha")?)
                };
                Some((class, major, minor.parse::<i64>().ok()?))
            }
        }
    });
    match parsed {
        Some((class, major, minor)) => (class, -major, -minor, String::new()),
        None => (3, 0, 0, version.to_owned()),
    }
}

/// The set of served types.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut crd = ResourceType::builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        )
        .short(&["crd", "crds"]);
        crd.status_subresource = true;
        crd.generation = true;
        // The workloads of apps/v1 (no controllers run: only their objects are served).
        let workload = |kind: &str, plural: &str, short: &str| {
            let mut t = ResourceType::builtin("apps", "v1", kind, plural, true).short(&[short]);
            t.status_subresource = true;
            t.generation = true;
            t
        };
        Self {
            types: vec![
                ResourceType::builtin("", "v1", "Namespace", "namespaces", false).short(&["ns"]),
                ResourceType::builtin("", "v1", "Secret", "secrets", true),
                ResourceType::builtin("", "v1", "ConfigMap", "configmaps", true).short(&["cm"]),
                ResourceType::builtin("", "v1", "Event", "events", true).short(&["ev"]),
                ResourceType::builtin("", "v1", "ServiceAccount", "serviceaccounts", true)
                    .short(&["sa"]),
                ResourceType::builtin("", "v1", "Service", "services", true).short(&["svc"]),
                ResourceType::builtin("", "v1", "Endpoints", "endpoints", true).short(&["ep"]),
                ResourceType::builtin(
                    "discovery.k8s.io",
                    "v1",
                    "EndpointSlice",
                    "endpointslices",
                    true,
                ),
                workload("Deployment", "deployments", "deploy"),
                workload("StatefulSet", "statefulsets", "sts"),
                workload("DaemonSet", "daemonsets", "ds"),
                ResourceType::builtin("events.k8s.io", "v1", "Event", "events", true)
                    .short(&["ev"]),
                ResourceType::builtin("coordination.k8s.io", "v1", "Lease", "leases", true),
                ResourceType::builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
                ResourceType::builtin(
                    "rbac.authorization.k8s.io",
                    "v1",
                    "RoleBinding",
                    "rolebindings",
                    true,
                ),
                ResourceType::builtin(
                    "rbac.authorization.k8s.io",
                    "v1",
                    "ClusterRole",
                    "clusterroles",
                    false,
                ),
                ResourceType::builtin(
                    "rbac.authorization.k8s.io",
                    "v1",
                    "ClusterRoleBinding",
                    "clusterrolebindings",
                    false,
                ),
                crd,
            ],
        }
    }
}

impl Registry {
    /// Finds the type served at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// Every served type.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// Replaces the types defined by the CRD `name` with `types` (empty to remove them).
    pub fn set_custom(&mut self, group: &str, plural: &str, types: Vec<ResourceType>) {
        self.types
            .retain(|t| !(t.custom && t.group == group && t.plural == plural));
        self.types.extend(types);
    }

    /// The served versions of `group`, highest priority first as the real server orders
    /// them (`v2` > `v1` > `v1beta2` > `v1beta1` > `v1alpha1` > others by name): the
    /// first is the preferred version.
    fn versions(&self, group: &str) -> Vec<String> {
        if group == AUTHENTICATION {
            return vec!["v1".into()];
        }
        let mut versions: Vec<String> = Vec::new();
        for t in self.types.iter().filter(|t| t.group == group) {
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        versions.sort_by_key(|v| version_priority(v));
        versions
    }

    /// `GET /api`.
    pub fn core_versions(&self) -> Value {
        json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
    }

    /// `GET /apis`.
    pub fn groups(&self) -> Value {
        let mut names: Vec<&str> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            if !names.contains(&t.group.as_str()) {
                names.push(&t.group);
            }
        }
        names.push(AUTHENTICATION);
        let groups: Vec<Value> = names.iter().map(|g| self.group(g)).collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/<group>`, or `None` if the group is not served.
    pub fn group(&self, group: &str) -> Value {
        let versions: Vec<Value> = self
            .versions(group)
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        json!({
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": versions,
            "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
        })
    }

    /// Whether `group` has any served version.
    pub fn has_group(&self, group: &str) -> bool {
        group == AUTHENTICATION || self.types.iter().any(|t| t.group == group)
    }

    /// `GET /api/v1` or `GET /apis/<group>/<version>`, or `None` if not served.
    pub fn resources(&self, group: &str, version: &str) -> Option<Value> {
        let mut list: Vec<Value> = self
            .types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .flat_map(ResourceType::discovery)
            .collect();
        match (group, version) {
            ("", "v1") => list.push(token_request_resource()),
            (AUTHENTICATION, "v1") => list = authentication_resources(),
            _ => {}
        }
        if list.is_empty() {
            return None;
        }
        let group_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": list,
        }))
    }

    /// The types a CustomResourceDefinition object defines: one per served version.
    pub fn types_of_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
        let spec = crd.get("spec").ok_or("spec: Required value")?;
        let text = |v: &Value, field: &str| v.get(field).and_then(Value::as_str).map(str::to_owned);
        let group = text(spec, "group").ok_or("spec.group: Required value")?;
        let names = spec.get("names").ok_or("spec.names: Required value")?;
        let plural = text(names, "plural").ok_or("spec.names.plural: Required value")?;
        let kind = text(names, "kind").ok_or("spec.names.kind: Required value")?;
        let singular = text(names, "singular").unwrap_or_else(|| kind.to_lowercase());
        let short_names: Vec<String> = crate::store::strings_at(names, "/shortNames");
        let namespaced = match text(spec, "scope").as_deref() {
            Some("Namespaced") => true,
            Some("Cluster") => false,
            _ => return Err("spec.scope: Unsupported value: must be Namespaced or Cluster".into()),
        };
        let expected_name = format!("{plural}.{group}");
        if crd.pointer("/metadata/name").and_then(Value::as_str) != Some(expected_name.as_str()) {
            return Err(format!(
                "metadata.name: Invalid value: must be spec.names.plural+\".\"+spec.group ({expected_name})"
            ));
        }
        let versions = spec
            .get("versions")
            .and_then(Value::as_array)
            .filter(|v| !v.is_empty())
            .ok_or("spec.versions: Required value")?;
        let mut types = Vec::new();
        for version in versions {
            if version.get("served").and_then(Value::as_bool) != Some(true) {
                continue;
            }
            types.push(ResourceType {
                group: group.clone(),
                version: text(version, "name").ok_or("spec.versions[].name: Required value")?,
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: short_names.clone(),
                status_subresource: version.pointer("/subresources/status").is_some(),
                generation: true,
                schema: version.pointer("/schema/openAPIV3Schema").cloned(),
                custom: true,
                printer_columns: version
                    .get("additionalPrinterColumns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        Ok(types)
    }
}

impl Registry {
    /// `GET /openapi/v3`: one entry per served group-version.
    pub fn openapi_root(&self, rv: u64) -> Value {
        let mut paths = serde_json::Map::new();
        for t in &self.types {
            let key = if t.group.is_empty() {
                format!("api/{}", t.version)
            } else {
                format!("apis/{}/{}", t.group, t.version)
            };
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={rv:016X}")}),
            );
        }
        paths.insert(
            format!("apis/{AUTHENTICATION}/v1"),
            json!({"serverRelativeURL": format!("/openapi/v3/apis/{AUTHENTICATION}/v1?hash={rv:016X}")}),
        );
        json!({"paths": paths})
    }

    /// The OpenAPI document of `authentication.k8s.io/v1`: TokenReview.
    fn authentication_openapi() -> Value {
        let gvk = json!({"group": AUTHENTICATION, "version": "v1", "kind": "TokenReview"});
        let operation = json!({
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            ],
            "responses": {"201": {"description": "Created"}},
        });
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            // kubectl looks for `fieldValidation` on a PATCH operation of the kind to leave
            // validation to the server (else it wants OpenAPI v2); TokenReview has no PATCH
            // upstream, but kubectl reads only this document.
            "paths": {format!("/apis/{AUTHENTICATION}/v1/tokenreviews"): {"post": operation, "patch": operation}},
            "components": {"schemas": {
                "io.k8s.api.authentication.v1.TokenReview": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "x-kubernetes-group-version-kind": [gvk],
                },
            }},
        })
    }

    /// `GET /openapi/v3/<api|apis/group>/<version>`: the operations of the group-version,
    /// enough for clients to see that every kind supports server-side field validation
    /// (the `fieldValidation` parameter of each PATCH operation), plus the schemas of
    /// custom resources.
    pub fn openapi_document(&self, group: &str, version: &str) -> Option<Value> {
        if (group, version) == (AUTHENTICATION, "v1") {
            return Some(Self::authentication_openapi());
        }
        let types: Vec<&ResourceType> = self
            .types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .collect();
        if types.is_empty() {
            return None;
        }
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let mut paths = serde_json::Map::new();
        let mut schemas = serde_json::Map::new();
        for t in types {
            let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
            let scope = if t.namespaced {
                "/namespaces/{namespace}"
            } else {
                ""
            };
            let parameters = json!([
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            ]);
            let operation = json!({
                "x-kubernetes-group-version-kind": gvk,
                "parameters": parameters,
                "responses": {"200": {"description": "OK"}},
            });
            paths.insert(
                format!("{prefix}{scope}/{}/{{name}}", t.plural),
                json!({"get": operation, "put": operation, "patch": operation, "delete": operation}),
            );
            paths.insert(
                format!("{prefix}{scope}/{}", t.plural),
                json!({"get": operation, "post": operation}),
            );
            let id = format!(
                "{}.{}.{}",
                if t.group.is_empty() {
                    "io.k8s.api.core"
                } else {
                    &t.group
                },
                t.version,
                t.kind
            );
            let mut schema = t.schema.clone().unwrap_or_else(
                || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
            schema["x-kubernetes-group-version-kind"] = json!([gvk]);
            schemas.insert(id, schema);
        }
        Some(json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": paths,
            "components": {"schemas": schemas},
        }))
    }
}
