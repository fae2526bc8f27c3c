//! Writes: create, update, patch and server-side apply, with the metadata the server
//! sets and the field managers it records.

use super::*;

impl Store {
    /// Kind-specific defaulting and validation shared by create and update.
    pub(super) fn normalize(
        &self,
        rt: &ResourceType,
        object: &mut Value,
        old: Option<&Value>,
        strict: bool,
    ) -> Result<(), ApiError> {
        let name = meta_str(object, "name").unwrap_or_default().to_owned();
        let invalid = |errors: Vec<String>| ApiError::invalid(&rt.kind, &rt.group, &name, &errors);
        if rt.group.is_empty() && rt.kind == "Secret" {
            if let Some(Value::Object(string_data)) =
                object.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                let data = object
                    .as_object_mut()
                    .expect("an object")
                    .entry("data")
                    .or_insert_with(|| json!({}));
                for (key, value) in string_data {
                    let text = value.as_str().unwrap_or_default();
                    data[key] =
                        Value::String(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
            if object.get("type").is_none_or(Value::is_null) {
                object["type"] = json!("Opaque");
            }
            if let Some(old) = old.filter(|o| o.get("immutable") == Some(&Value::Bool(true))) {
                let mut errors = Vec::new();
                if old.get("data") != object.get("data") {
                    errors.push(
                        "data: Forbidden: field is immutable when `immutable` is set".to_owned(),
                    );
                }
                if object.get("immutable") != Some(&Value::Bool(true)) {
                    errors.push(
                        "immutable: Forbidden: field is immutable when `immutable` is set"
                            .to_owned(),
                    );
                }
                if !errors.is_empty() {
                    return Err(invalid(errors));
                }
            }
            if let Some(old) = old
                && old.get("type") != object.get("type")
            {
                return Err(invalid(vec![
                    "type: Invalid value: field is immutable".to_owned(),
                ]));
            }
            if let Some(Value::Object(data)) = object.get("data") {
                for (key, value) in data {
                    let ok = value.as_str().is_some_and(|v| {
                        base64::engine::general_purpose::STANDARD.decode(v).is_ok()
                    });
                    if !ok {
                        return Err(invalid(vec![format!(
                            "data[{key}]: Invalid value: must be base64"
                        )]));
                    }
                }
            }
        }
        if rt.group.is_empty() && rt.kind == "Namespace" && old.is_none() {
            object["status"] = json!({"phase": "Active"});
        }
        if let Some(schema) = &rt.schema {
            crate::validation::default(schema, object);
            let (mut errors, pruned) = crate::validation::validate(schema, object);
            if let (true, Some(field)) = (strict, pruned.first()) {
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: unknown field \"{field}\"",
                    kind = rt.kind,
                    version = rt.version
                )));
            }
            if crate::validation::blocks_rules(&errors) {
                errors.push(crate::validation::RULES_NOT_CHECKED.to_owned());
            } else {
                errors.extend(crate::cel_validation::validate(schema, object, old));
            }
            if !errors.is_empty() {
                return Err(invalid(errors));
            }
        }
        Ok(())
    }

    pub(super) fn record_manager(
        object: &mut Value,
        manager: &str,
        operation: &str,
        api_version: &str,
        owned: FieldSet,
        subresource: Option<&str>,
    ) {
        if manager.is_empty() {
            return;
        }
        let meta = meta_mut(object);
        let mut entries: Vec<Value> = meta
            .get("managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        entries.retain(|e| !(e["manager"] == manager && e["operation"] == operation));
        if !owned.is_empty() {
            let mut entry = json!({
                "manager": manager,
                "operation": operation,
                "apiVersion": api_version,
                "time": now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": fields::to_fields_v1(&owned),
            });
            if let Some(sub) = subresource {
                entry["subresource"] = json!(sub);
            }
            entries.push(entry);
        }
        meta.insert("managedFields".into(), Value::Array(entries));
    }

    /// Managers and the fields they own, other than `except` with `operation`.
    pub(super) fn owners(object: &Value) -> Vec<(String, String, FieldSet)> {
        object
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["manager"].as_str().unwrap_or_default().to_owned(),
                            e["operation"].as_str().unwrap_or_default().to_owned(),
                            fields::from_fields_v1(&e["fieldsV1"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Takes the fields in `taken` away from every manager but (`manager`, `operation`).
    pub(super) fn disown(object: &mut Value, taken: &FieldSet, manager: &str, operation: &str) {
        let Some(Value::Array(entries)) = object.pointer_mut("/metadata/managedFields") else {
            return;
        };
        for entry in entries.iter_mut() {
            if entry["manager"] == manager && entry["operation"] == operation {
                continue;
            }
            let mut set = fields::from_fields_v1(&entry["fieldsV1"]);
            let before = set.len();
            set.retain(|path| {
                !taken
                    .iter()
                    .any(|t| path.starts_with(t) || t.starts_with(path))
            });
            if set.len() != before {
                entry["fieldsV1"] = fields::to_fields_v1(&set);
            }
        }
        entries.retain(|e| e["fieldsV1"].as_object().is_some_and(|m| !m.is_empty()));
    }

    /// `create`.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        mut object: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        if let Some(kind) = object.get("kind").and_then(Value::as_str)
            && kind != rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind {kind:?} of the object does not match the resource {}",
                rt.plural
            )));
        }
        let body_ns = meta_str(&object, "namespace")
            .unwrap_or_default()
            .to_owned();
        if rt.namespaced {
            if !body_ns.is_empty() && body_ns != namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta_mut(&mut object).insert("namespace".into(), json!(namespace));
        } else {
            meta_mut(&mut object).remove("namespace");
        }
        let mut name = meta_str(&object, "name").unwrap_or_default().to_owned();
        if name.is_empty() {
            let Some(prefix) = meta_str(&object, "generateName").map(str::to_owned) else {
                return Err(ApiError::invalid(
                    &rt.kind,
                    &rt.group,
                    "",
                    &[
                        "metadata.name: Required value: name or generateName is required"
                            .to_owned(),
                    ],
                ));
            };
            loop {
                let suffix: String = (0..5)
                    .map(|_| {
                        GENERATE_NAME_CHARS
                            [(self.random() % GENERATE_NAME_CHARS.len() as u64) as usize]
                            as char
                    })
                    .collect();
                name = format!("{prefix}{suffix}");
                if self.get(rt, namespace, &name).is_err() {
                    break;
                }
            }
            meta_mut(&mut object).insert("name".into(), json!(name));
        }
        if !valid_name(&name) {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                &name,
                &[format!(
                    "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                )],
            ));
        }
        self.ensure_namespace(rt, namespace)?;
        let key = Self::object_key(rt, namespace, &name);
        if self.bucket(rt).is_some_and(|b| b.contains_key(&key)) {
            return Err(ApiError::already_exists(&rt.plural, &rt.group, &name));
        }
        if rt.status_subresource {
            object.as_object_mut().expect("an object").remove("status");
        }
        self.normalize(rt, &mut object, None, opts.strict)?;
        let crd_types =
            if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" {
                let types = Self::crd_types(rt, &name, &object)?;
                object["status"] = crd_status(&object);
                Some(types)
            } else {
                None
            };
        let owned = fields::of(&object);
        object["apiVersion"] = json!(rt.api_version());
        object["kind"] = json!(rt.kind);
        {
            let meta = meta_mut(&mut object);
            for key in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "managedFields",
                "resourceVersion",
            ] {
                meta.remove(key);
            }
            meta.insert("creationTimestamp".into(), json!(now()));
        }
        let uid = self.uid();
        meta_mut(&mut object).insert("uid".into(), json!(uid));
        if rt.generation {
            meta_mut(&mut object).insert("generation".into(), json!(1));
        }
        let operation = if opts.apply { "Apply" } else { "Update" };
        Self::record_manager(
            &mut object,
            &opts.field_manager,
            operation,
            &rt.api_version(),
            owned,
            None,
        );
        if opts.dry_run {
            return Ok(object);
        }
        let rv = self.next_rv();
        meta_mut(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        if let Some(types) = crd_types {
            let (group, plural) = crd_resource(&object);
            self.registry.set_custom(&group, &plural, types);
        }
        Ok(self.put(rt, key, object, EventType::Added))
    }

    /// The types a CustomResourceDefinition defines, once its definition and the CEL
    /// rules of its schemas are valid.
    fn crd_types(
        rt: &ResourceType,
        name: &str,
        crd: &Value,
    ) -> Result<Vec<ResourceType>, ApiError> {
        let types = Registry::types_of_crd(crd)
            .map_err(|e| ApiError::invalid(&rt.kind, &rt.group, name, &[e]))?;
        let errors = crate::cel_validation::crd_errors(crd);
        if !errors.is_empty() {
            return Err(ApiError::invalid(&rt.kind, &rt.group, name, &errors));
        }
        Ok(types)
    }

    /// Stores `object` under `key` and records the event. Custom resources are kept as
    /// kube-apiserver keeps them: decoded into generic maps and encoded again, so the keys
    /// of every map come back sorted (lists keep their order) — what a SOPS MAC over a
    /// custom resource's values has to live with.
    pub(super) fn put(
        &mut self,
        rt: &ResourceType,
        key: ObjectKey,
        object: Value,
        event_type: EventType,
    ) -> Value {
        let object = if rt.custom {
            sorted_keys(object)
        } else {
            object
        };
        let stored = Arc::new(object);
        self.objects
            .entry(rt.storage_key())
            .or_default()
            .insert(key, Stored::new(stored.clone()));
        self.record(rt.storage_key(), event_type, stored.clone());
        (*stored).clone()
    }

    /// `update` (PUT), of the object or of its `status` subresource.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        mut object: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let existing = self.get(rt, namespace, name)?;
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        let body_name = meta_str(&object, "name").unwrap_or_default();
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        match meta_str(&object, "resourceVersion").filter(|rv| !rv.is_empty()) {
            Some(rv) if Some(rv) != meta_str(&existing, "resourceVersion") => {
                return Err(ApiError::conflict(&rt.plural, &rt.group, name));
            }
            None if rt.custom => {
                return Err(ApiError::invalid(&rt.kind, &rt.group, name, &[
                    "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update".to_owned(),
                ]));
            }
            _ => {}
        }
        let before_fields = fields::of(&existing);
        if subresource == Some("status") {
            let status = object.get("status").cloned();
            object = (*existing).clone();
            match status {
                Some(status) => object["status"] = status,
                None => {
                    object.as_object_mut().expect("an object").remove("status");
                }
            }
        } else if rt.status_subresource {
            match existing.get("status") {
                Some(status) => object["status"] = status.clone(),
                None => {
                    object.as_object_mut().expect("an object").remove("status");
                }
            }
        }
        // Fields the server owns carry over.
        {
            let old_meta = existing.get("metadata").cloned().unwrap_or_default();
            let meta = meta_mut(&mut object);
            let carried: &[&str] = if opts.apply {
                // Server-side apply settled ownership itself.
                &[
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "namespace",
                ]
            } else {
                &[
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "managedFields",
                    "namespace",
                ]
            };
            for key in carried.iter().copied() {
                match old_meta.get(key) {
                    Some(v) => meta.insert(key.into(), v.clone()),
                    None => meta.remove(key),
                };
            }
            meta.insert("name".into(), json!(name));
        }
        self.normalize(rt, &mut object, Some(&existing), opts.strict)?;
        let crd_types = (rt.kind == "CustomResourceDefinition"
            && rt.group == "apiextensions.k8s.io"
            && subresource.is_none())
        .then(|| Self::crd_types(rt, name, &object))
        .transpose()?;
        object["apiVersion"] = json!(rt.api_version());
        object["kind"] = json!(rt.kind);
        if rt.generation && spec_part(&object) != spec_part(&existing) {
            bump_generation(&mut object, &existing);
        }
        if !opts.apply {
            Self::take_ownership(
                &mut object,
                &existing,
                &before_fields,
                &opts.field_manager,
                &rt.api_version(),
                subresource,
            );
        }
        let stored = self.commit(rt, namespace, name, existing, object, opts.dry_run)?;
        if let Some(types) = crd_types.filter(|_| !opts.dry_run) {
            let (group, plural) = crd_resource(&stored);
            if self.get(rt, namespace, name).is_ok() {
                self.registry.set_custom(&group, &plural, types);
            }
        }
        Ok(stored)
    }

    /// After an Update by `manager`: it owns what it changed, and no one else does.
    pub(super) fn take_ownership(
        object: &mut Value,
        existing: &Value,
        before_fields: &FieldSet,
        manager: &str,
        api_version: &str,
        subresource: Option<&str>,
    ) {
        let after = fields::of(object);
        let changed: FieldSet = after
            .iter()
            .filter(|p| {
                !before_fields.contains(*p) || fields::get(object, p) != fields::get(existing, p)
            })
            .cloned()
            .collect();
        let removed: FieldSet = before_fields.difference(&after).cloned().collect();
        Self::disown(
            object,
            &changed.union(&removed).cloned().collect(),
            manager,
            "Update",
        );
        let mut owned: FieldSet = Self::owners(object)
            .into_iter()
            .filter(|(m, op, _)| m == manager && op == "Update")
            .flat_map(|(_, _, set)| set)
            .filter(|p| after.contains(p))
            .collect();
        owned.extend(changed);
        Self::record_manager(object, manager, "Update", api_version, owned, subresource);
    }

    /// Stores a changed object (or finishes its deletion), unless nothing changed.
    pub(super) fn commit(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        existing: Arc<Value>,
        mut object: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if comparable(&object) == comparable(&existing) || dry_run {
            if dry_run {
                return Ok(object);
            }
            return Ok(Self::present(rt, &existing));
        }
        let finalizers_empty = object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        let rv = self.next_rv();
        meta_mut(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        let key = Self::object_key(rt, namespace, name);
        if meta_str(&object, "deletionTimestamp").is_some() && finalizers_empty {
            let last = Arc::new(object);
            self.remove(rt, &key, last.clone());
            return Ok((*last).clone());
        }
        Ok(self.put(rt, key, object, EventType::Modified))
    }

    /// `patch`, of the object or of its `status` subresource.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        body: &Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if kind == PatchKind::Apply {
            return self.apply(rt, namespace, name, body, subresource, opts);
        }
        let existing = self.get(rt, namespace, name)?;
        let mut object = Self::present(rt, &existing);
        if let Some(Value::Object(meta)) = object.get_mut("metadata") {
            meta.remove("managedFields");
        }
        match kind {
            PatchKind::Merge => patch::merge(&mut object, body),
            PatchKind::Strategic if rt.custom => {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                ));
            }
            PatchKind::Strategic => patch::strategic(&mut object, body),
            PatchKind::Json => patch::json_patch(&mut object, body).map_err(|e| {
                ApiError::invalid(
                    &rt.kind,
                    &rt.group,
                    name,
                    &[format!("patch: Invalid value: {e}")],
                )
            })?,
            PatchKind::Apply => unreachable!("handled above"),
        }
        // A patch is unconditional unless it names a resourceVersion.
        if body.pointer("/metadata/resourceVersion").is_none() {
            let rv = meta_str(&existing, "resourceVersion")
                .unwrap_or_default()
                .to_owned();
            meta_mut(&mut object).insert("resourceVersion".into(), json!(rv));
        }
        self.update(rt, namespace, name, object, subresource, opts)
    }

    /// Server-side apply.
    pub(super) fn apply(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        applied: &Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if opts.field_manager.is_empty() {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                name,
                &["fieldManager: Required value: is required for apply patch".to_owned()],
            ));
        }
        let manager = opts.field_manager.as_str();
        let applied_fields = fields::of(applied);
        let existing = match self.get(rt, namespace, name) {
            Ok(existing) => existing,
            Err(e) if e.code == 404 && subresource.is_none() => {
                let mut object = strip_nulls(applied);
                meta_mut(&mut object).insert("name".into(), json!(name));
                return self.create(
                    rt,
                    namespace,
                    object,
                    &WriteOptions {
                        apply: true,
                        ..opts.clone()
                    },
                );
            }
            Err(e) => return Err(e),
        };
        // Conflicts: fields another manager owns whose value the applied config changes.
        let mut conflicts: Vec<(String, Vec<String>)> = Vec::new();
        for (other, operation, owned) in Self::owners(&existing) {
            if other == manager && operation == "Apply" {
                continue;
            }
            for path in applied_fields.intersection(&owned) {
                if fields::get(&existing, path) != fields::get(applied, path) {
                    conflicts.push((other.clone(), path.clone()));
                }
            }
        }
        let conflicting: FieldSet = conflicts.iter().map(|(_, p)| p.clone()).collect();
        if !conflicts.is_empty() && !opts.force {
            let list: Vec<String> = conflicts
                .iter()
                .map(|(m, p)| format!("conflict with \"{m}\": {}", fields::display(p)))
                .collect();
            let count = conflicts.len();
            let noun = if count == 1 { "conflict" } else { "conflicts" };
            return Err(ApiError::conflict_message(format!(
                "Apply failed with {count} {noun}: {}",
                list.join(", ")
            )));
        }
        let mut object = Self::present(rt, &existing);
        let mut overlay = applied.clone();
        if let Some(Value::Object(meta)) = overlay.get_mut("metadata") {
            meta.remove("resourceVersion");
        }
        patch::merge(&mut object, &strip_nulls(&overlay));
        // Fields this manager applied before and no longer applies are removed, unless
        // someone else owns them too.
        let previous: FieldSet = Self::owners(&existing)
            .into_iter()
            .filter(|(m, op, _)| m == manager && op == "Apply")
            .flat_map(|(_, _, set)| set)
            .collect();
        let others: FieldSet = Self::owners(&existing)
            .into_iter()
            .filter(|(m, op, _)| !(m == manager && op == "Apply"))
            .flat_map(|(_, _, set)| set)
            .collect();
        for path in previous.difference(&applied_fields) {
            if !others.contains(path) {
                fields::remove(&mut object, path);
            }
        }
        // Forcing takes conflicting fields over; fields set to the same value are shared.
        Self::disown(&mut object, &conflicting, manager, "Apply");
        Self::record_manager(
            &mut object,
            manager,
            "Apply",
            &rt.api_version(),
            applied_fields,
            subresource,
        );
        let rv = meta_str(&existing, "resourceVersion")
            .unwrap_or_default()
            .to_owned();
        meta_mut(&mut object).insert("resourceVersion".into(), json!(rv));
        // Ownership is settled; the update must not re-assign it to an Update manager.
        self.update(
            rt,
            namespace,
            name,
            object,
            subresource,
            &WriteOptions {
                apply: true,
                ..opts.clone()
            },
        )
    }
}

/// `value` with the keys of every map in byte order, as Go's `encoding/json` writes a
/// `map[string]interface{}`.
fn sorted_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> =
                map.into_iter().map(|(k, v)| (k, sorted_keys(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted_keys).collect()),
        other => other,
    }
}
