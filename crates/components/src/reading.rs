//! What the reading shells (session-buddy, mahavishnu, akosha) share: fetching sessions and
//! command events through the server's API, decoding them, argument checks and small
//! time and text helpers.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use session_buddy_events::{Session, StoredEvent};
use session_buddy_shell::{Context, HelperError, HelperResult};

/// The most sessions one helper call reads.
pub(crate) const MAX_SESSIONS: usize = 5000;
/// The most events `GET /v1/events` answers.
pub(crate) const MAX_EVENTS: usize = 1000;

/// Sessions read for one helper call; `capped` when there may be more than [`MAX_SESSIONS`].
pub(crate) struct Fetched {
    pub sessions: Vec<Session>,
    pub capped: bool,
}

impl Fetched {
    /// A line saying that the cap was hit, or nothing.
    pub fn cap_note(&self) -> String {
        if self.capped {
            format!(
                "Note: read the newest {MAX_SESSIONS} sessions only (the cap); older ones are not counted.\n"
            )
        } else {
            String::new()
        }
    }
}

/// Every session matching `query`, newest start first, at most [`MAX_SESSIONS`].
pub(crate) fn fetch_sessions(
    ctx: &Context<'_>,
    query: &[(&str, String)],
) -> Result<Fetched, HelperError> {
    let values = ctx.api().sessions(query, MAX_SESSIONS)?;
    let capped = values.len() >= MAX_SESSIONS;
    Ok(Fetched {
        sessions: decode(values, "session")?,
        capped,
    })
}

/// The latest command events (newest first), at most [`MAX_EVENTS`].
pub(crate) fn fetch_command_events(ctx: &Context<'_>) -> Result<Vec<StoredEvent>, HelperError> {
    let body = ctx.api().get(
        "/v1/events",
        &[
            ("type", "command".to_string()),
            ("limit", MAX_EVENTS.to_string()),
        ],
    )?;
    let events = match body.get("events") {
        Some(Value::Array(a)) => a.clone(),
        _ => {
            return Err(HelperError::new(
                "unexpected answer from GET /v1/events: no \"events\" list",
            ));
        }
    };
    decode(events, "event")
}

/// Server JSON into our record types; a record that does not fit is an error naming it.
pub(crate) fn decode<T: DeserializeOwned>(
    values: Vec<Value>,
    what: &str,
) -> Result<Vec<T>, HelperError> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v).map_err(|e| {
                HelperError::new(format!(
                    "unexpected {what} record #{} from the server: {e} (is the server the same version as this shell?)",
                    i + 1
                ))
            })
        })
        .collect()
}

/// `after=<now - days>` for the sessions query.
pub(crate) fn since_days(now: DateTime<Utc>, days: i64) -> (&'static str, String) {
    (
        "after",
        (now - chrono::Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// The number at `args[index]` (or `default`), checked to be in `1..=max`.
pub(crate) fn count_arg(
    args: &[String],
    index: usize,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, HelperError> {
    match args.get(index) {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(HelperError::new(format!(
                "{name} must be a whole number from 1 to {max}, got '{s}'"
            ))),
        },
    }
}

/// Refuses arguments beyond the first `allowed`, showing the usage.
pub(crate) fn at_most_args(args: &[String], allowed: usize, usage: &str) -> HelperResult {
    if args.len() > allowed {
        Err(HelperError::new(format!(
            "too many arguments; usage: {usage}"
        )))
    } else {
        Ok(())
    }
}

pub(crate) use session_buddy_text::time_in as local_time;

/// Seconds from `from` to `to`, never negative.
pub(crate) fn secs_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let us = (to - from).num_microseconds().unwrap_or(i64::MAX);
    (us as f64 / 1e6).max(0.0)
}

/// How long a session lasted, or has lasted so far when it is still active.
pub(crate) fn elapsed_secs(s: &Session, now: DateTime<Utc>) -> f64 {
    match s.duration_seconds {
        Some(d) => d.max(0.0),
        None => secs_between(s.started_at, s.ended_at.unwrap_or(now)),
    }
}

/// One command event's fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CommandView<'a> {
    pub command: &'a str,
    pub args: &'a str,
    pub success: bool,
    pub error: Option<&'a str>,
}

/// The command an event records, for `command` events with a command name.
pub(crate) fn command_view(e: &StoredEvent) -> Option<CommandView<'_>> {
    if e.event_type != "command" {
        return None;
    }
    let p = &e.payload;
    Some(CommandView {
        command: p.get("command")?.as_str()?,
        args: p.get("args").and_then(Value::as_str).unwrap_or(""),
        // Only an explicit `false` is a failure.
        success: p.get("success").and_then(Value::as_bool).unwrap_or(true),
        error: p.get("error").and_then(Value::as_str),
    })
}

/// Shortens `s` to `max` characters with an ellipsis.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(max.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

#[cfg(test)]
pub(crate) mod testdata {
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
            last_command: None,
            has_recording: false,
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
}
