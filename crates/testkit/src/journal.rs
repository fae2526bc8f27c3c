//! A record of every change to one resource, for invariants that must hold at every step
//! ("no Secret was ever deleted or emptied"), not only at the end. It reads the store's
//! own change feed, so faults, dropped watches and compaction do not hide anything.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::store::{Event, EventType};

/// One change: `ADDED`, `MODIFIED` or `DELETED`, and the object after it (before it, for
/// a deletion).
#[derive(Debug, Clone)]
pub struct Change {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub event_type: &'static str,
    /// The object's namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The object after the change (before it, for a deletion).
    pub object: Arc<Value>,
}

#[derive(Default)]
struct Record {
    changes: Vec<Change>,
    /// Set when the feed outran the recorder: the record is incomplete.
    lagged: bool,
}

/// Changes to one resource since [`crate::TestServer::journal`]; stops recording when
/// dropped.
pub struct Journal {
    record: Arc<Mutex<Record>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").finish_non_exhaustive()
    }
}

impl Journal {
    pub(crate) fn start(
        mut feed: tokio::sync::broadcast::Receiver<Arc<Event>>,
        plural: &str,
    ) -> Self {
        let record = Arc::new(Mutex::new(Record::default()));
        let (sink, plural) = (record.clone(), plural.to_owned());
        let task = tokio::spawn(async move {
            loop {
                let event = match feed.recv().await {
                    Ok(event) => event,
                    Err(RecvError::Lagged(_)) => {
                        sink.lock().expect("journal lock").lagged = true;
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                if event.resource.1 != plural {
                    continue;
                }
                let meta = |field: &str| {
                    event
                        .object
                        .pointer(&format!("/metadata/{field}"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let change = Change {
                    event_type: match event.event_type {
                        EventType::Added => "ADDED",
                        EventType::Modified => "MODIFIED",
                        EventType::Deleted => "DELETED",
                    },
                    namespace: meta("namespace"),
                    name: meta("name"),
                    object: event.object.clone(),
                };
                sink.lock().expect("journal lock").changes.push(change);
            }
        });
        Self { record, task }
    }

    /// Every change recorded so far, in the order the server made them. Panics if the
    /// recorder fell behind the server's feed (the record would have gaps).
    pub fn changes(&self) -> Vec<Change> {
        let record = self.record.lock().expect("journal lock");
        assert!(
            !record.lagged,
            "the journal fell behind the server's change feed"
        );
        record.changes.clone()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.task.abort();
    }
}
