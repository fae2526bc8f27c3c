//! Routing: discovery documents, and the resource a path names.

use super::*;

/// A request for objects of one resource.
pub(super) struct Target {
    pub(super) rt: ResourceType,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
}

pub(super) enum Route {
    Json(Value),
    Resource {
        group: String,
        version: String,
        rest: Vec<String>,
    },
    NotFound,
}

pub(super) fn route(store: &Store, path: &str) -> Route {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let registry = &store.registry;
    match seg.as_slice() {
        ["version"] => Route::Json(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-gitseal-testkit",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64",
        })),
        ["healthz"] | ["readyz"] | ["livez"] => Route::Json(json!("ok")),
        ["api"] => Route::Json(registry.core_versions()),
        ["apis"] => Route::Json(registry.groups()),
        ["api", "v1"] => registry
            .resources("", "v1")
            .map_or(Route::NotFound, Route::Json),
        ["apis", group] if registry.has_group(group) => Route::Json(registry.group(group)),
        ["apis", group, version] => registry
            .resources(group, version)
            .map_or(Route::NotFound, Route::Json),
        ["openapi", "v3"] => Route::Json(registry.openapi_root(store.resource_version())),
        ["openapi", "v3", "api", version] => registry
            .openapi_document("", version)
            .map_or(Route::NotFound, Route::Json),
        ["openapi", "v3", "apis", group, version] => registry
            .openapi_document(group, version)
            .map_or(Route::NotFound, Route::Json),
        ["api", "v1", rest @ ..] => Route::Resource {
            group: String::new(),
            version: "v1".into(),
            rest: rest.iter().map(|s| s.to_string()).collect(),
        },
        ["apis", group, version, rest @ ..] => Route::Resource {
            group: group.to_string(),
            version: version.to_string(),
            rest: rest.iter().map(|s| s.to_string()).collect(),
        },
        _ => Route::NotFound,
    }
}

pub(super) fn target(store: &Store, group: &str, version: &str, rest: &[String]) -> Option<Target> {
    let find = |plural: &str| store.registry.find(group, version, plural).cloned();
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    let t = |rt: ResourceType, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
        rt,
        namespace: ns.map(str::to_owned),
        name: name.map(str::to_owned),
        subresource: sub.map(str::to_owned),
    };
    match r.as_slice() {
        // Namespaces themselves, and their subresources.
        ["namespaces", name, sub @ ("status" | "finalize")] if group.is_empty() => {
            Some(t(find("namespaces")?, None, Some(name), Some(sub)))
        }
        ["namespaces", ns, plural] => {
            let rt = find(plural)?;
            rt.namespaced.then(|| t(rt, Some(ns), None, None))
        }
        ["namespaces", ns, plural, name] => {
            let rt = find(plural)?;
            rt.namespaced.then(|| t(rt, Some(ns), Some(name), None))
        }
        ["namespaces", ns, plural, name, sub] => {
            let rt = find(plural)?;
            (rt.namespaced && *sub == "status" && rt.status_subresource)
                .then(|| t(rt, Some(ns), Some(name), Some(sub)))
        }
        [plural] => Some(t(find(plural)?, None, None, None)),
        [plural, name] => {
            let rt = find(plural)?;
            (!rt.namespaced).then(|| t(rt, None, Some(name), None))
        }
        [plural, name, "status"] => {
            let rt = find(plural)?;
            (!rt.namespaced && rt.status_subresource)
                .then(|| t(rt, None, Some(name), Some("status")))
        }
        _ => None,
    }
}
