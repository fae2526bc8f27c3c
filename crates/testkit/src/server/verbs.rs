//! The verbs on objects: get, list, create, update, patch, delete, deletecollection.

use super::*;

use crate::protobuf;

/// get and list: the store lock is held only to collect the objects; they are encoded
/// after it is released.
pub(super) fn read(
    shared: &Shared,
    target: &Target,
    verb: &str,
    params: &HashMap<String, String>,
) -> Result<Reply, ApiError> {
    let rt = &target.rt;
    let store = shared.store.lock().expect("store lock");
    if verb == "get" {
        let ns = target.namespace.as_deref().unwrap_or_default();
        let name = target.name.as_deref().unwrap_or_default();
        return Ok(Reply {
            list_metadata: None,
            items: vec![store.get_stored(rt, ns, name)?],
        });
    }
    let (labels, fields) = selectors(params)?;
    let limit = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0);
    let token = params
        .get("continue")
        .map(String::as_str)
        .filter(|c| !c.is_empty());
    let page = store.list(
        rt,
        target.namespace.as_deref(),
        &labels,
        &fields,
        limit,
        token,
    )?;
    let mut metadata = json!({"resourceVersion": page.rv.to_string()});
    if let Some(token) = page.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = page.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    Ok(Reply {
        list_metadata: Some(metadata),
        items: page.items,
    })
}

/// An object in a create or update body: JSON, or Kubernetes protobuf as kubectl's
/// imperative commands send it.
pub(super) fn parse_object(content_type: &str, body: &Bytes) -> Result<Value, ApiError> {
    if protobuf::is_protobuf(content_type) {
        return protobuf::decode(body).map_err(ApiError::bad_request);
    }
    parse_body(body)
}

pub(super) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

pub(super) fn selectors(
    params: &HashMap<String, String>,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(params.get("labelSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(params.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

pub(super) fn serve(
    shared: &Shared,
    target: &Target,
    verb: &str,
    params: &HashMap<String, String>,
    content_type: &str,
    body: &Bytes,
    opts: &WriteOptions,
) -> Result<(u16, Value), ApiError> {
    let rt = &target.rt;
    let ns = target.namespace.as_deref().unwrap_or_default();
    let name = target.name.as_deref().unwrap_or_default();
    let sub = target.subresource.as_deref().filter(|s| *s == "status");
    let mut store = shared.store.lock().expect("store lock");
    match verb {
        "create" => Ok((
            201,
            store.create(rt, ns, parse_object(content_type, body)?, opts)?,
        )),
        "update" => Ok((
            200,
            store.update(rt, ns, name, parse_object(content_type, body)?, sub, opts)?,
        )),
        "patch" => {
            let kind = match content_type.split(';').next().unwrap_or_default().trim() {
                "application/merge-patch+json" => PatchKind::Merge,
                "application/json-patch+json" => PatchKind::Json,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            let patch = parse_body(body)?;
            let exists = store.get(rt, ns, name).is_ok();
            let result = store.patch(rt, ns, name, kind, &patch, sub, opts)?;
            Ok((if exists { 200 } else { 201 }, result))
        }
        "delete" => {
            let options = if body.is_empty() {
                json!({})
            } else {
                parse_body(body)?
            };
            let delete = DeleteOptions {
                propagation: options
                    .get("propagationPolicy")
                    .and_then(Value::as_str)
                    .or(params.get("propagationPolicy").map(String::as_str))
                    .map(str::to_owned),
                uid: options
                    .pointer("/preconditions/uid")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                resource_version: options
                    .pointer("/preconditions/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                dry_run: opts.dry_run
                    || options
                        .get("dryRun")
                        .and_then(Value::as_array)
                        .is_some_and(|d| d.iter().any(|v| v == "All")),
            };
            let deleted = store.delete(rt, ns, name, &delete)?;
            let code = if deleted.pointer("/metadata/deletionTimestamp").is_some()
                && store.get(rt, ns, name).is_ok()
            {
                202
            } else {
                200
            };
            Ok((code, Store::present(rt, &deleted)))
        }
        "deletecollection" => {
            let (labels, fields) = selectors(params)?;
            let page = store.list(
                rt,
                target.namespace.as_deref(),
                &labels,
                &fields,
                None,
                None,
            )?;
            let mut items = Vec::new();
            for object in page.items {
                let ns = text_at(&object, "/metadata/namespace");
                let name = text_at(&object, "/metadata/name");
                items.push(Store::present(
                    rt,
                    &store.delete(rt, &ns, &name, &DeleteOptions::default())?,
                ));
            }
            Ok((
                200,
                json!({"apiVersion": rt.api_version(), "kind": format!("{}List", rt.kind), "metadata": {"resourceVersion": store.resource_version().to_string()}, "items": items}),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}
