//! Streaming watches.

use super::*;

/// The form of a watch's event objects, from the `Accept` header.
pub(super) enum WatchForm {
    /// Objects as stored.
    Object,
    /// Objects reduced to a PartialObjectMetadata (bookmarks too, as upstream).
    Metadata,
    /// A Table of one row per event (kubectl `get -w`); bookmarks as Tables of no rows.
    Table(Box<TablePrinter>),
}

impl WatchForm {
    /// One watch event line; ERROR events keep their Status.
    fn line(&mut self, event_type: &str, object: &Value) -> Bytes {
        let shaped;
        let object = match self {
            _ if event_type == "ERROR" => object,
            Self::Object => object,
            Self::Metadata => {
                shaped = partial(object);
                &shaped
            }
            Self::Table(printer) => {
                shaped = printer.event(object, event_type == "BOOKMARK");
                &shaped
            }
        };
        let mut line = json!({"type": event_type, "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }
}

pub(super) fn watch_response(
    shared: Arc<Shared>,
    target: Target,
    params: &HashMap<String, String>,
    mut form: WatchForm,
) -> Response {
    let (labels, fields) = match selectors(params) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let send_initial = params.get("sendInitialEvents").is_some_and(|v| v == "true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let requested_rv = params
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .and_then(|v| v.parse::<u64>().ok());
    let rt = target.rt.clone();
    let namespace = target.namespace.clone();
    let matches = move |resource: &(String, String), object: &Value| {
        *resource == rt.storage_key()
            && namespace.as_deref().is_none_or(|ns| {
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    == Some(ns)
            })
            && labels.matches(object)
            && fields.matches(object)
    };

    // Take the starting point and subscribe under one lock: no event falls between.
    let (initial, mut receiver, start_rv, expired) = {
        let store = shared.store.lock().expect("store lock");
        let receiver = store.subscribe();
        let start_rv = store.resource_version();
        match (requested_rv, send_initial) {
            (Some(rv), false) => match store.events_since(rv) {
                Ok(events) => {
                    let lines: Vec<(EventType, Value)> = events
                        .iter()
                        .filter(|e| matches(&e.resource, &e.object))
                        .map(|e| (e.event_type, Store::present(&target.rt, &e.object)))
                        .collect();
                    (lines, receiver, start_rv, None)
                }
                Err(oldest) => (
                    Vec::new(),
                    receiver,
                    start_rv,
                    Some(ApiError::expired(rv, oldest)),
                ),
            },
            _ => {
                let all = store
                    .list(
                        &target.rt,
                        target.namespace.as_deref(),
                        &LabelSelector::default(),
                        &FieldSelector::default(),
                        None,
                        None,
                    )
                    .map(|p| p.items)
                    .unwrap_or_default();
                let lines = all
                    .iter()
                    .filter(|o| matches(&target.rt.storage_key(), o))
                    .map(|o| (EventType::Added, Store::present(&target.rt, o)))
                    .collect();
                (lines, receiver, start_rv, None)
            }
        }
    };

    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(1024);
    let mut epoch = shared.watch_epoch.subscribe();
    let interval = shared.bookmark_interval;
    let rt = target.rt.clone();
    tokio::spawn(async move {
        if let Some(error) = expired {
            // ERROR events keep their Status.
            let _ = tx.send(Ok(form.line("ERROR", &error.to_status()))).await;
            return;
        }
        for (event_type, object) in initial {
            if tx
                .send(Ok(form.line(event_type.as_str(), &object)))
                .await
                .is_err()
            {
                return;
            }
        }
        let bookmark = |rv: u64, initial_end: bool| {
            let mut metadata = json!({"resourceVersion": rv.to_string()});
            if initial_end {
                metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": metadata})
        };
        let mut last_rv = start_rv;
        if send_initial
            && bookmarks
            && tx
                .send(Ok(form.line("BOOKMARK", &bookmark(last_rv, true))))
                .await
                .is_err()
        {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                event = receiver.recv() => match event {
                    Ok(event) => {
                        if event.rv <= start_rv {
                            continue;
                        }
                        last_rv = event.rv;
                        if matches(&event.resource, &event.object) {
                            let line = form.line(event.event_type.as_str(), &Store::present(&rt, &event.object));
                            if tx.send(Ok(line)).await.is_err() {
                                return;
                            }
                        }
                    }
                    // A watcher that fell behind is cut off; it resumes from its last version.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(Ok(form.line("BOOKMARK", &bookmark(last_rv, false)))).await.is_err() {
                        return;
                    }
                }
                _ = epoch.changed() => return,
                _ = &mut deadline => return,
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("a valid response")
}
