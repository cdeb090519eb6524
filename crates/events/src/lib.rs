//! Session-Buddy wire types.
//!
//! Every event a shell sends, every result the server answers, the session record, the JSON
//! Schema registry and the session-id rule live here. This crate does no I/O: it turns JSON
//! values into validated events (or a [`ValidationError`] naming the field and the rule) and
//! back.

pub mod auth;
pub mod recording;
mod redact;
mod schema;
mod session;
mod text;
mod time;
mod validate;

pub use recording::OutputEvent;
pub use redact::{
    REDACTED, mask_output, redact_args, redact_clipped, redact_command_args, redactions_compatible,
};
pub use schema::{SchemaError, SchemaRegistry, schema_names};
pub use session::{
    EventOutcome, EventResult, IngestResponse, Session, SessionEndResult, SessionPage,
    SessionStartResult, SessionStatus, StoredEvent,
};
pub use text::{component_from_session_id, parse_duration};
pub use time::{format_timestamp, parse_timestamp, parse_user_time};
pub use validate::{
    ValidationError, canonical_event_id, is_valid_name, parse_event, parse_session_end,
    parse_session_start,
};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The original (Python) system's event version.
pub const EVENT_VERSION_1_0: &str = "1.0";
/// Ours: 1.0 plus optional fields.
pub const EVENT_VERSION_1_1: &str = "1.1";
/// Versions the server accepts.
pub const SUPPORTED_EVENT_VERSIONS: [&str; 2] = [EVENT_VERSION_1_0, EVENT_VERSION_1_1];

/// Limits of the wire format (at least the original's): docs/wire-format.md.
pub mod limits {
    pub const COMPONENT_NAME_MAX: usize = 64;
    pub const PID_MIN: u64 = 1;
    pub const PID_MAX: u64 = 4_194_304;
    pub const USERNAME_MAX: usize = 100;
    pub const HOME_MAX: usize = 500;
    pub const CWD_MAX: usize = 500;
    pub const HOSTNAME_MAX: usize = 255;
    pub const SHORT_TEXT_MAX: usize = 255;
    pub const METADATA_MAX_BYTES: usize = 16 * 1024;
    pub const ARGS_MAX_BYTES: usize = 4 * 1024;
    pub const COMMAND_MAX: usize = 255;
    pub const ERROR_MAX_BYTES: usize = 4 * 1024;
    pub const SESSION_ID_MAX: usize = 128;
    /// Events in one ingest request.
    pub const MAX_EVENTS_PER_REQUEST: usize = 1000;
}

/// The kind of an event, as named on the wire (`event_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    SessionStart,
    SessionEnd,
    Command,
    Heartbeat,
    /// One chunk of a terminal recording (1.1).
    Output,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionStart => "session_start",
            EventType::SessionEnd => "session_end",
            EventType::Command => "command",
            EventType::Heartbeat => "heartbeat",
            EventType::Output => "output",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "session_start" => EventType::SessionStart,
            "session_end" => EventType::SessionEnd,
            "command" => EventType::Command,
            "heartbeat" => EventType::Heartbeat,
            "output" => EventType::Output,
            _ => return None,
        })
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who opened the shell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserInfo {
    /// `$USER`, else `$USERNAME`, else the account name; at most 100 characters.
    pub username: String,
    /// The user's home directory; at most 500 characters.
    pub home: String,
}

/// Where the shell runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnvironmentInfo {
    /// Required in 1.0 (the original's Python clients), optional in 1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_version: Option<String>,
    /// e.g. `Linux-6.5.0-x86_64`.
    pub platform: String,
    /// Working directory; at most 500 characters.
    pub cwd: String,
    /// 1.1: the shell's runtime, e.g. `rust 1.95`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}

/// `session_start`: a shell opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionStartEvent {
    /// `"1.0"` (the original's) or `"1.1"`.
    pub event_version: String,
    /// A UUID; hyphens optional, any case, braces or `urn:uuid:` accepted; stored lowercase.
    pub event_id: Uuid,
    /// Always `session_start`.
    pub event_type: EventType,
    /// `^[a-zA-Z0-9_-]+$`, at most 64 characters.
    #[schemars(regex(pattern = r"^[a-zA-Z0-9_-]+$"), length(min = 1, max = 64))]
    pub component_name: String,
    /// The shell's class or kind, e.g. `OneiricShell`.
    pub shell_type: String,
    /// RFC 3339 with an offset (`Z` or `±hh:mm`).
    pub timestamp: DateTime<Utc>,
    /// The shell's process id, 1..=4194304.
    #[schemars(range(min = 1, max = 4194304))]
    pub pid: u32,
    pub user: UserInfo,
    /// At most 255 characters.
    pub hostname: String,
    pub environment: EnvironmentInfo,
    /// A JSON object of at most 16 KiB.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// 1.1: `admin_shell` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_type: Option<String>,
    /// 1.1: the component's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_version: Option<String>,
    /// 1.1: how often the shell sends heartbeats; absent means none (legacy TTL applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<u32>,
    /// 1.1: which rule makes this start's session id ([`SessionIdRule`]): `2` for 16 hex
    /// digits of the event id; absent (every 1.0 start, every start sent before the field
    /// existed) means `1`, 6 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2))]
    pub session_id_version: Option<u8>,
}

impl SessionStartEvent {
    /// The session id this start defines (the rule: docs/sessions.md, "Session ids").
    pub fn session_id(&self) -> String {
        self.session_id_rule()
            .session_id(&self.component_name, self.timestamp, &self.event_id)
    }

    /// The rule its `session_id_version` names (validation admits only known ones).
    pub fn session_id_rule(&self) -> SessionIdRule {
        SessionIdRule::from_version(self.session_id_version).unwrap_or(SessionIdRule::V1)
    }

    pub fn session_type(&self) -> &str {
        self.session_type.as_deref().unwrap_or(DEFAULT_SESSION_TYPE)
    }

    /// The session record's `runtime_version`: `environment.runtime` (1.1), else
    /// `python <python_version>` (the original's clients).
    pub fn runtime_version(&self) -> Option<String> {
        self.environment.runtime.clone().or_else(|| {
            self.environment
                .python_version
                .as_ref()
                .map(|v| format!("python {v}"))
        })
    }

    /// The session record's `component_version`: the 1.1 field, else the original's
    /// `metadata.component_version` or `metadata.version`.
    pub fn effective_component_version(&self) -> Option<String> {
        self.component_version.clone().or_else(|| {
            ["component_version", "version"].iter().find_map(|k| {
                self.metadata
                    .get(*k)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        })
    }
}

/// The session type of a start that names none.
pub const DEFAULT_SESSION_TYPE: &str = "admin_shell";

/// `session_end`: a shell closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionEndEvent {
    /// 1.1; absent in the original's ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_version: Option<String>,
    /// 1.1; absent in the original's ends (a session has one end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    /// Always `session_end`.
    pub event_type: EventType,
    pub session_id: String,
    pub timestamp: DateTime<Utc>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// 1.1: the shell's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// 1.1: the signal that ended the shell, e.g. `SIGTERM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// 1.1: why it ended: `exit`, `eof`, `sigterm`, `sighup`, `error`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl SessionEndEvent {
    /// The session record's `end_reason`: `reason` (1.1), else the original's
    /// `metadata.exit_reason`.
    pub fn end_reason(&self) -> Option<String> {
        self.reason.clone().or_else(|| {
            self.metadata
                .get("exit_reason")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }

    /// The end itself says the session failed: a non-zero exit code, a signal, or reason
    /// `error` (failed commands and abandonment also fail a session; the store knows those).
    pub fn reports_failure(&self) -> bool {
        self.exit_code.is_some_and(|c| c != 0)
            || self.signal.is_some()
            || self.end_reason().as_deref() == Some("error")
    }
}

/// `command`: one helper call in a shell (1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommandEvent {
    pub event_version: String,
    pub event_id: Uuid,
    pub event_type: EventType,
    pub session_id: String,
    pub timestamp: DateTime<Utc>,
    /// 1, 2, … per session.
    #[schemars(range(min = 1))]
    pub seq: u64,
    /// The helper's name.
    pub command: String,
    /// The arguments as typed, secrets redacted; at most 4 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `heartbeat`: the shell is still alive (1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HeartbeatEvent {
    pub event_version: String,
    pub event_id: Uuid,
    pub event_type: EventType,
    pub session_id: String,
    pub timestamp: DateTime<Utc>,
}

/// Any validated event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Event {
    SessionStart(SessionStartEvent),
    SessionEnd(SessionEndEvent),
    Command(CommandEvent),
    Heartbeat(HeartbeatEvent),
    Output(OutputEvent),
}

impl Event {
    pub fn event_type(&self) -> EventType {
        match self {
            Event::SessionStart(_) => EventType::SessionStart,
            Event::SessionEnd(_) => EventType::SessionEnd,
            Event::Command(_) => EventType::Command,
            Event::Heartbeat(_) => EventType::Heartbeat,
            Event::Output(_) => EventType::Output,
        }
    }

    /// The session this event belongs to (computed for a start).
    pub fn session_id(&self) -> String {
        match self {
            Event::SessionStart(e) => e.session_id(),
            Event::SessionEnd(e) => e.session_id.clone(),
            Event::Command(e) => e.session_id.clone(),
            Event::Heartbeat(e) => e.session_id.clone(),
            Event::Output(e) => e.session_id.clone(),
        }
    }

    pub fn timestamp(&self) -> DateTime<Utc> {
        match self {
            Event::SessionStart(e) => e.timestamp,
            Event::SessionEnd(e) => e.timestamp,
            Event::Command(e) => e.timestamp,
            Event::Heartbeat(e) => e.timestamp,
            Event::Output(e) => e.timestamp,
        }
    }

    /// The event id as stored: the one sent, or for an end without one (the original's), a
    /// deterministic id derived from its session, since a session has exactly one end.
    pub fn storage_id(&self) -> Uuid {
        match self {
            Event::SessionStart(e) => e.event_id,
            Event::SessionEnd(e) => e.event_id.unwrap_or_else(|| end_event_id(&e.session_id)),
            Event::Command(e) => e.event_id,
            Event::Heartbeat(e) => e.event_id,
            Event::Output(e) => e.event_id,
        }
    }

    /// The event id the client sent, if any.
    pub fn sent_event_id(&self) -> Option<Uuid> {
        match self {
            Event::SessionEnd(e) => e.event_id,
            _ => Some(self.storage_id()),
        }
    }

    /// Canonical JSON: what is stored and compared for deduplication.
    pub fn to_canonical_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The id stored for an end that carries none: UUID v5 of its session id.
pub fn end_event_id(session_id: &str) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x5b1d_9a3c_4e2f_4b7a_9c11_2d3e_4f5a_6b7c);
    Uuid::new_v5(&NAMESPACE, format!("session_end:{session_id}").as_bytes())
}

/// How a start's session id is made: `{component}-{YYYYMMDD}-{HHMMSS}-{hex}`, `hex` the last
/// digits of the start's event id (random in UUID v4 and v7 alike). The start names its rule
/// in `session_id_version`, so an id never changes once issued: docs/sessions.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionIdRule {
    /// 6 hex digits (24 bits): the rule of every 1.0 start and of starts sent before rule 2.
    /// Two starts of one component in one second meet with odds of 1 in 16.7 million, so a
    /// few hundred starts a second collide now and then.
    V1,
    /// 16 hex digits (62 random bits: the UUID's variant takes 2 of the 64): 10 000 starts
    /// a second of one component, kept up for a year, expect 3 × 10^-4 collisions.
    V2,
}

impl SessionIdRule {
    /// The rule this version's clients use.
    pub const CURRENT: SessionIdRule = SessionIdRule::V2;
    /// Every rule an issued id may follow.
    pub const ALL: [SessionIdRule; 2] = [SessionIdRule::V1, SessionIdRule::V2];

    /// The rule a start's `session_id_version` names; `None` (absent) is rule 1, an unknown
    /// version is `None`.
    pub fn from_version(version: Option<u8>) -> Option<SessionIdRule> {
        match version {
            None | Some(1) => Some(SessionIdRule::V1),
            Some(2) => Some(SessionIdRule::V2),
            Some(_) => None,
        }
    }

    /// The value a start carries in `session_id_version` (rule 1 is the field's absence, so
    /// starts of rule 1 stay byte for byte what they were).
    pub fn version(self) -> Option<u8> {
        match self {
            SessionIdRule::V1 => None,
            SessionIdRule::V2 => Some(2),
        }
    }

    /// Hex digits of the event id the id ends with.
    pub fn hex_digits(self) -> usize {
        match self {
            SessionIdRule::V1 => 6,
            SessionIdRule::V2 => 16,
        }
    }

    pub fn session_id(self, component: &str, started: DateTime<Utc>, event_id: &Uuid) -> String {
        let hex = event_id.simple().to_string();
        let tail = &hex[hex.len() - self.hex_digits()..];
        format!("{component}-{}-{tail}", started.format("%Y%m%d-%H%M%S"))
    }
}

/// The session id of a start made by this version's clients ([`SessionIdRule::CURRENT`]).
pub fn session_id_for(component: &str, started: DateTime<Utc>, event_id: &Uuid) -> String {
    SessionIdRule::CURRENT.session_id(component, started, event_id)
}

/// Checks that a string has the shape of a session id (used on paths and query parameters).
pub fn is_valid_session_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= limits::SESSION_ID_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_uses_utc_second_and_the_last_hex_digits_of_its_rule() {
        let id = Uuid::parse_str("550e8400-e29b-41d4-a716-446655440000").unwrap_or_default();
        let ts = parse_timestamp("2026-02-06T12:34:56.789Z").unwrap_or_default();
        assert_eq!(
            SessionIdRule::V1.session_id("oneiric", ts, &id),
            "oneiric-20260206-123456-440000"
        );
        assert_eq!(
            SessionIdRule::V2.session_id("oneiric", ts, &id),
            "oneiric-20260206-123456-a716446655440000"
        );
        assert_eq!(
            session_id_for("oneiric", ts, &id),
            SessionIdRule::V2.session_id("oneiric", ts, &id)
        );
    }

    #[test]
    fn a_start_without_a_rule_keeps_rule_one() {
        for (version, rule) in [
            (None, Some(SessionIdRule::V1)),
            (Some(1), Some(SessionIdRule::V1)),
            (Some(2), Some(SessionIdRule::V2)),
            (Some(3), None),
        ] {
            assert_eq!(SessionIdRule::from_version(version), rule);
        }
        assert_eq!(SessionIdRule::V1.version(), None);
        assert_eq!(
            SessionIdRule::from_version(SessionIdRule::V2.version()),
            Some(SessionIdRule::V2)
        );
    }

    #[test]
    fn end_ids_are_stable_per_session() {
        assert_eq!(end_event_id("a-1"), end_event_id("a-1"));
        assert_ne!(end_event_id("a-1"), end_event_id("a-2"));
    }
}
