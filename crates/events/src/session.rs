//! Results and records: what the server answers and what it stores.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What happened to one ingested event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    /// Stored now.
    Accepted,
    /// Already stored with the same content; nothing changed.
    Duplicate,
    /// Not stored; `error` says why.
    Rejected,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Accepted => "accepted",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Rejected => "rejected",
        }
    }
}

/// One entry of `POST /v1/events`' answer, in the order the events were sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventResult {
    /// The event id as stored (canonical lowercase), when the event had a readable one.
    pub event_id: Option<String>,
    pub status: EventOutcome,
    pub session_id: Option<String>,
    /// `<field>: <rule>` for a rejected event.
    pub error: Option<String>,
}

impl EventResult {
    pub fn rejected(event_id: Option<String>, session_id: Option<String>, error: String) -> Self {
        Self {
            event_id,
            status: EventOutcome::Rejected,
            session_id,
            error: Some(error),
        }
    }
}

/// The body of `POST /v1/events`' 200 answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IngestResponse {
    pub results: Vec<EventResult>,
}

/// The original's `track_session_start` result: `status` is `tracked` or `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionStartResult {
    pub session_id: Option<String>,
    pub status: String,
    pub error: Option<String>,
}

/// The original's `track_session_end` result: `status` is `ended`, `error` or `not_found`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionEndResult {
    pub session_id: Option<String>,
    pub status: String,
    pub error: Option<String>,
}

/// A session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Active,
    Ended,
    Abandoned,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Ended => "ended",
            SessionStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => SessionStatus::Active,
            "ended" => SessionStatus::Ended,
            "abandoned" => SessionStatus::Abandoned,
            _ => return None,
        })
    }
}

impl std::fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The session record (docs/sessions.md, "The session record").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Session {
    pub session_id: String,
    pub session_type: String,
    pub component: String,
    pub shell_type: String,
    pub component_version: Option<String>,
    pub status: SessionStatus,
    pub username: String,
    pub home: String,
    pub hostname: String,
    pub pid: u32,
    pub platform: String,
    /// `python 3.13.0` for the original's clients, `environment.runtime` for ours.
    pub runtime_version: Option<String>,
    pub cwd: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub last_seen_at: DateTime<Utc>,
    /// End − start in seconds (client clocks), µs precision; null while active.
    pub duration_seconds: Option<f64>,
    pub command_count: u64,
    pub error_count: u64,
    pub exit_code: Option<i32>,
    pub end_reason: Option<String>,
    pub metadata: Map<String, Value>,
    /// The name of the latest command stored for this session; null before the first.
    #[serde(default)]
    pub last_command: Option<String>,
    /// Whether the session has a terminal recording (`GET /v1/sessions/{id}/recording`);
    /// left out when it has none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_recording: bool,
}

/// A page of `GET /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionPage {
    pub sessions: Vec<Session>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One event of a session's timeline, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoredEvent {
    pub event_id: String,
    pub event_type: String,
    pub session_id: String,
    pub timestamp: DateTime<Utc>,
    /// When the server received it (its own clock).
    pub received_at: DateTime<Utc>,
    /// The command's sequence number, for commands.
    pub seq: Option<u64>,
    /// The validated event as stored.
    pub payload: Value,
}
