//! Deletion: finalizers, namespaces and garbage collection of dependents.

use super::*;

impl Store {
    pub(super) fn remove(&mut self, rt: &ResourceType, key: &ObjectKey, last: Arc<Value>) {
        if let Some(bucket) = self.objects.get_mut(&rt.storage_key()) {
            bucket.remove(key);
        }
        self.record(rt.storage_key(), EventType::Deleted, last.clone());
        if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" {
            let (group, plural) = crd_resource(&last);
            self.registry.set_custom(&group, &plural, Vec::new());
            self.objects.remove(&(group, plural));
        }
        if let Some(uid) = meta_str(&last, "uid").map(str::to_owned) {
            self.collect_garbage(&uid);
        }
        if !key.0.is_empty() {
            self.finish_namespace(&key.0.clone());
        }
    }

    /// `delete`.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let existing = self.get(rt, namespace, name)?;
        if opts
            .uid
            .as_deref()
            .is_some_and(|uid| Some(uid) != meta_str(&existing, "uid"))
        {
            return Err(ApiError::conflict_message(format!(
                "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                opts.uid.as_deref().unwrap_or_default(),
                meta_str(&existing, "uid").unwrap_or_default()
            )));
        }
        if opts
            .resource_version
            .as_deref()
            .is_some_and(|rv| Some(rv) != meta_str(&existing, "resourceVersion"))
        {
            return Err(ApiError::conflict(&rt.plural, &rt.group, name));
        }
        if opts.dry_run {
            return Ok(Self::present(rt, &existing));
        }
        let uid = meta_str(&existing, "uid").unwrap_or_default().to_owned();
        match opts.propagation.as_deref() {
            Some("Orphan") => self.orphan_dependents(&uid),
            Some("Foreground") => self.delete_dependents(&uid),
            _ => {}
        }
        if rt.group.is_empty() && rt.kind == "Namespace" {
            return self.delete_namespace(rt, name, existing);
        }
        let has_finalizers = existing
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if meta_str(&existing, "deletionTimestamp").is_some() {
                return Ok(Self::present(rt, &existing));
            }
            let mut object = (*existing).clone();
            meta_mut(&mut object).insert("deletionTimestamp".into(), json!(now()));
            meta_mut(&mut object).insert("deletionGracePeriodSeconds".into(), json!(0));
            if rt.generation {
                bump_generation(&mut object, &existing);
            }
            return self.commit(rt, namespace, name, existing, object, false);
        }
        let rv = self.next_rv();
        let mut last = (*existing).clone();
        meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
        let last = Arc::new(last);
        self.remove(rt, &Self::object_key(rt, namespace, name), last.clone());
        Ok((*last).clone())
    }

    pub(super) fn delete_namespace(
        &mut self,
        rt: &ResourceType,
        name: &str,
        existing: Arc<Value>,
    ) -> Result<Value, ApiError> {
        let mut object = (*existing).clone();
        if meta_str(&object, "deletionTimestamp").is_none() {
            meta_mut(&mut object).insert("deletionTimestamp".into(), json!(now()));
            object["status"] = json!({"phase": "Terminating"});
            self.commit(rt, "", name, existing, object, false)?;
        }
        // Delete the contents, then the namespace once nothing is left.
        let contents: Vec<(ResourceType, ObjectKey)> = self
            .registry
            .types()
            .iter()
            .filter(|t| t.namespaced)
            .flat_map(|t| {
                self.bucket(t)
                    .into_iter()
                    .flat_map(|b| b.keys().filter(|k| k.0 == name).cloned())
                    .map(move |k| (t.clone(), k))
            })
            .collect();
        for (t, (ns, obj)) in contents {
            let _ = self.delete(&t, &ns, &obj, &DeleteOptions::default());
        }
        self.finish_namespace(name);
        let namespaces = self
            .registry
            .find("", "v1", "namespaces")
            .cloned()
            .expect("built in");
        Ok(match self.get(&namespaces, "", name) {
            Ok(ns) => Self::present(&namespaces, &ns),
            Err(_) => Self::present(
                &namespaces,
                &json!({"metadata": {"name": name}, "status": {"phase": "Terminating"}}),
            ),
        })
    }

    /// Removes a terminating namespace once it is empty.
    pub(super) fn finish_namespace(&mut self, name: &str) {
        let namespaces = self
            .registry
            .find("", "v1", "namespaces")
            .cloned()
            .expect("built in");
        let Ok(ns) = self.get(&namespaces, "", name) else {
            return;
        };
        if meta_str(&ns, "deletionTimestamp").is_none() {
            return;
        }
        let empty = self
            .registry
            .types()
            .iter()
            .filter(|t| t.namespaced)
            .all(|t| {
                self.bucket(t)
                    .is_none_or(|b| !b.keys().any(|k| k.0 == name))
            });
        if empty {
            let rv = self.next_rv();
            let mut last = (*ns).clone();
            meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
            self.remove(
                &namespaces,
                &(String::new(), name.to_owned()),
                Arc::new(last),
            );
        }
    }

    /// Every object whose ownerReferences name `uid`.
    pub(super) fn dependents(&self, uid: &str) -> Vec<(ResourceType, ObjectKey, Arc<Value>)> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for t in self.registry.types() {
            if seen.contains(&t.storage_key()) {
                continue;
            }
            seen.push(t.storage_key());
            if let Some(bucket) = self.bucket(t) {
                for (key, object) in bucket {
                    let owned = object
                        .pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid));
                    if owned {
                        out.push((t.clone(), key.clone(), object.object.clone()));
                    }
                }
            }
        }
        out
    }

    pub(super) fn uid_exists(&self, uid: &str) -> bool {
        self.objects
            .values()
            .any(|bucket| bucket.values().any(|o| meta_str(o, "uid") == Some(uid)))
    }

    /// Background garbage collection: dependents whose owners are all gone are deleted.
    pub(super) fn collect_garbage(&mut self, uid: &str) {
        for (t, (ns, name), object) in self.dependents(uid) {
            let refs = object
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let orphaned = refs
                .iter()
                .all(|r| !self.uid_exists(r["uid"].as_str().unwrap_or_default()));
            if orphaned {
                let _ = self.delete(&t, &ns, &name, &DeleteOptions::default());
            }
        }
    }

    pub(super) fn delete_dependents(&mut self, uid: &str) {
        for (t, (ns, name), _) in self.dependents(uid) {
            let opts = DeleteOptions {
                propagation: Some("Foreground".into()),
                ..Default::default()
            };
            let _ = self.delete(&t, &ns, &name, &opts);
        }
    }

    pub(super) fn orphan_dependents(&mut self, uid: &str) {
        for (t, (ns, name), object) in self.dependents(uid) {
            let mut changed = (*object).clone();
            if let Some(Value::Array(refs)) = changed.pointer_mut("/metadata/ownerReferences") {
                refs.retain(|r| r["uid"] != uid);
            }
            let _ = self.commit(&t, &ns, &name, object, changed, false);
        }
    }
}
