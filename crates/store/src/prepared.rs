//! What a backend writes of an event, serialised once before its transaction.

use session_buddy_events::Event;

/// An event with everything a backend writes already serialised (its id, session id,
/// canonical JSON payload and, for a start, its metadata as JSON text), so a backend's
/// transaction spends its time in the database only. Both backends ingest these.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub event: Event,
    pub event_id: String,
    pub session_id: String,
    pub payload: String,
    /// For a start: its metadata as JSON text.
    pub metadata: Option<String>,
}

impl Prepared {
    pub fn new(event: Event) -> Self {
        let metadata = match &event {
            Event::SessionStart(s) => {
                Some(serde_json::Value::Object(s.metadata.clone()).to_string())
            }
            _ => None,
        };
        Self {
            event_id: event.storage_id().hyphenated().to_string(),
            session_id: event.session_id(),
            payload: event.to_canonical_json(),
            metadata,
            event,
        }
    }
}
