//! Hand-built records for the tests of the reading shells.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value, json};
use session_buddy_events::{Session, SessionStatus, StoredEvent};

/// 2026-02-06 12:00:00 UTC plus `minutes`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 6, 12, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// An ended session of `component` started at `at(start_min)`, lasting `secs`.
pub fn session(id: &str, component: &str, start_min: i64, secs: f64) -> Session {
    let started = at(start_min);
    let ended = started + Duration::milliseconds((secs * 1000.0) as i64);
    Session {
        session_id: id.into(),
        session_type: "admin_shell".into(),
        component: component.into(),
        shell_type: "TestShell".into(),
        component_version: Some("0.1.0".into()),
        status: SessionStatus::Ended,
        username: "alice".into(),
        home: "/home/alice".into(),
        hostname: "host-a".into(),
        pid: 4242,
        platform: "Linux".into(),
        runtime_version: Some("rust 1.95".into()),
        cwd: "/srv/app".into(),
        started_at: started,
        ended_at: Some(ended),
        last_seen_at: ended,
        duration_seconds: Some(secs),
        command_count: 0,
        error_count: 0,
        exit_code: Some(0),
        end_reason: Some("exit".into()),
        metadata: Map::new(),
    }
}

/// An active session (no end, no duration).
pub fn running(id: &str, component: &str, start_min: i64) -> Session {
    let mut s = session(id, component, start_min, 0.0);
    s.status = SessionStatus::Active;
    s.ended_at = None;
    s.duration_seconds = None;
    s.exit_code = None;
    s.end_reason = None;
    s.last_seen_at = s.started_at;
    s
}

/// An abandoned session whose last event was `secs` after its start.
pub fn abandoned(id: &str, component: &str, start_min: i64, secs: f64) -> Session {
    let mut s = session(id, component, start_min, secs);
    s.status = SessionStatus::Abandoned;
    s.exit_code = None;
    s.end_reason = Some("heartbeat_timeout".into());
    s
}

/// A command event at `at(minute)`.
pub fn command(
    session_id: &str,
    minute: i64,
    name: &str,
    args: &str,
    error: Option<&str>,
) -> StoredEvent {
    let mut payload = json!({
        "event_version": "1.1",
        "event_type": "command",
        "session_id": session_id,
        "command": name,
        "args": args,
        "success": error.is_none(),
    });
    if let (Some(e), Some(obj)) = (error, payload.as_object_mut()) {
        obj.insert("error".into(), Value::from(e));
    }
    StoredEvent {
        event_id: format!("00000000-0000-4000-8000-{:012}", minute.unsigned_abs()),
        event_type: "command".into(),
        session_id: session_id.into(),
        timestamp: at(minute),
        received_at: at(minute),
        seq: Some(1),
        payload,
    }
}
