//! Session-Buddy (Manager): the tracked sessions themselves, read through the server's API:
//! recent and active sessions, the quality score per component and why, and insights.
//!
//! The reading shells (this one, mahavishnu, akosha) share the fetching and decoding helpers
//! of this file; the helpers are in `ps` (ps, active), `quality` (the server's score, shown)
//! and `insights`. What computes is a pure function over `&[Session]` or `&[StoredEvent]`, so
//! those tests need no server.

mod insights;
mod ps;
mod quality;
#[cfg(test)]
pub(crate) mod testdata;

use std::fmt::Display;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use session_buddy_events::{Session, StoredEvent};
use session_buddy_shell::{Context, Helper, HelperError, HelperResult, ShellSpec};

pub(crate) fn spec() -> ShellSpec {
    ShellSpec {
        component: "session-buddy".into(),
        display_name: "Session-Buddy".into(),
        version: crate::VERSION.into(),
        tagline: "Session Management & Quality Monitoring".into(),
        role: "Manager".into(),
        shell_type: "SessionBuddyShell".into(),
        help_notes: String::new(),
        helpers: vec![
            Helper::new(
                "ps",
                "recent sessions: who, where, status, duration, commands, errors",
                ps::ps,
            )
            .usage("[limit]"),
            Helper::new(
                "active",
                "active sessions: how long they have been running, when last seen",
                ps::active,
            ),
            Helper::new(
                "quality",
                "quality score per component over the last 7 days, and why",
                quality::quality,
            ),
            Helper::new(
                "insights",
                "longest sessions, failing commands, abandoned sessions, busiest hours",
                insights::insights,
            )
            .usage("[limit]"),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Shared by the reading shells.

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

/// `2026-02-06 14:03:12` in `tz`.
pub(crate) fn local_time<Tz: TimeZone>(t: DateTime<Utc>, tz: &Tz) -> String
where
    Tz::Offset: Display,
{
    t.with_timezone(tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

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
mod tests {
    use serde_json::json;

    use super::testdata::*;
    use super::*;

    #[test]
    fn decoding_and_arguments() {
        let s = session("s-1", "a", 0, 1.0);
        let v = serde_json::to_value(&s).unwrap();
        let back: Vec<Session> = decode(vec![v], "session").unwrap();
        assert_eq!(back, vec![s]);
        let err = decode::<Session>(vec![json!({"session_id": 1})], "session").unwrap_err();
        assert!(err.message.contains("session record #1"), "{}", err.message);

        let args = vec!["7".to_string(), "x".to_string()];
        assert_eq!(count_arg(&args, 0, "limit", 3, 10).unwrap(), 7);
        assert_eq!(count_arg(&args, 5, "limit", 3, 10).unwrap(), 3);
        assert!(count_arg(&args, 1, "limit", 3, 10).is_err());
        assert!(count_arg(&["0".to_string()], 0, "limit", 3, 10).is_err());
        assert!(at_most_args(&args, 1, "ps [limit]").is_err());
        assert_eq!(since_days(at(0), 7).1, "2026-01-30T12:00:00Z");
        assert_eq!(secs_between(at(1), at(0)), 0.0);
        assert_eq!(clip("abcdef", 4), "abc…");
    }

    #[test]
    fn command_view_needs_a_command_event() {
        let e = command("s-1", 0, "ps", "5", Some("bad"));
        let v = command_view(&e).unwrap();
        assert_eq!(
            (v.command, v.args, v.success, v.error),
            ("ps", "5", false, Some("bad"))
        );
        let mut hb = e.clone();
        hb.event_type = "heartbeat".into();
        assert_eq!(command_view(&hb), None);
    }
}
