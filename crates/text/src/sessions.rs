//! A session for people and for scripts: the `list-sessions` table, CSV of the records, and
//! `show-session`'s record and timeline.

use chrono::{DateTime, Utc};
use serde_json::Value;
use session_buddy_events::{Session, StoredEvent};

use crate::{csv, duration as fmt_duration, fmt_clock, fmt_time, table};

const SESSION_HEADERS: &[&str] = &[
    "Session ID",
    "Component",
    "Type",
    "Status",
    "User",
    "Host",
    "Started",
    "Duration",
    "Commands",
    "Errors",
];

/// The `list-sessions` table: one line a session.
pub fn sessions_table(sessions: &[Session], utc: bool) -> String {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.session_id.clone(),
                s.component.clone(),
                s.session_type.clone(),
                s.status.to_string(),
                s.username.clone(),
                s.hostname.clone(),
                fmt_time(&s.started_at, utc),
                s.duration_seconds
                    .map(fmt_duration)
                    .unwrap_or_else(|| "-".into()),
                s.command_count.to_string(),
                s.error_count.to_string(),
            ]
        })
        .collect();
    table(SESSION_HEADERS, &rows)
}

/// Every field of each session as RFC 4180 CSV (times in RFC 3339 UTC, whatever `--utc` says):
/// `list-sessions --format csv`, `show-session --format csv` and `export`.
pub fn sessions_csv(sessions: &[Session]) -> String {
    const HEADERS: &[&str] = &[
        "session_id",
        "component",
        "session_type",
        "status",
        "username",
        "hostname",
        "pid",
        "shell_type",
        "component_version",
        "started_at",
        "ended_at",
        "duration_seconds",
        "command_count",
        "error_count",
        "exit_code",
        "end_reason",
        "cwd",
        "platform",
        "runtime_version",
    ];
    let opt = |v: Option<String>| v.unwrap_or_default();
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.session_id.clone(),
                s.component.clone(),
                s.session_type.clone(),
                s.status.to_string(),
                s.username.clone(),
                s.hostname.clone(),
                s.pid.to_string(),
                s.shell_type.clone(),
                opt(s.component_version.clone()),
                rfc3339(s.started_at),
                opt(s.ended_at.map(rfc3339)),
                opt(s.duration_seconds.map(|d| format!("{d:.6}"))),
                s.command_count.to_string(),
                s.error_count.to_string(),
                opt(s.exit_code.map(|c| c.to_string())),
                opt(s.end_reason.clone()),
                s.cwd.clone(),
                s.platform.clone(),
                opt(s.runtime_version.clone()),
            ]
        })
        .collect();
    csv(HEADERS, &rows)
}

/// `show-session`: the record, then the timeline (heartbeats folded into one line).
pub fn session_text(s: &Session, events: &[StoredEvent], utc: bool) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<11}{v}\n"));
    line("Session", s.session_id.clone());
    line(
        "Status",
        match &s.end_reason {
            Some(r) => format!("{} ({r})", s.status),
            None => s.status.to_string(),
        },
    );
    line(
        "Component",
        format!(
            "{} ({}{})",
            s.component,
            s.shell_type,
            s.component_version
                .as_deref()
                .map(|v| format!(", v{v}"))
                .unwrap_or_default()
        ),
    );
    line("Type", s.session_type.clone());
    line(
        "User",
        format!("{}@{} (pid {})", s.username, s.hostname, s.pid),
    );
    line("Directory", s.cwd.clone());
    line(
        "Runtime",
        format!(
            "{}{}",
            s.platform,
            s.runtime_version
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default()
        ),
    );
    line("Started", fmt_time(&s.started_at, utc));
    if let Some(e) = &s.ended_at {
        line("Ended", fmt_time(e, utc));
    }
    line("Last seen", fmt_time(&s.last_seen_at, utc));
    if let Some(d) = s.duration_seconds {
        line("Duration", format!("{d:.3} seconds ({})", fmt_duration(d)));
    }
    if let Some(code) = s.exit_code {
        line("Exit code", code.to_string());
    }
    line(
        "Commands",
        format!("{} ({} failed)", s.command_count, s.error_count),
    );
    out.push_str("\nTimeline\n");
    let mut heartbeats = 0usize;
    let mut last_heartbeat = None;
    for e in events {
        let p = &e.payload;
        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let detail = match e.event_type.as_str() {
            "session_start" => format!("start    {} pid {}", s("shell_type"), p["pid"]),
            "session_end" => {
                let mut d = "end     ".to_string();
                if let Some(c) = p.get("exit_code").and_then(Value::as_i64) {
                    d.push_str(&format!(" exit code {c}"));
                }
                if let Some(sig) = p.get("signal").and_then(Value::as_str) {
                    d.push_str(&format!(" signal {sig}"));
                }
                let reason = p
                    .get("reason")
                    .or_else(|| p.get("metadata").and_then(|m| m.get("exit_reason")))
                    .and_then(Value::as_str);
                if let Some(r) = reason {
                    d.push_str(&format!(" ({r})"));
                }
                d
            }
            "command" => {
                let ok = p.get("success").and_then(Value::as_bool).unwrap_or(false);
                let mut d = format!(
                    "command  #{} {}{}  {}",
                    e.seq.unwrap_or(0),
                    s("command"),
                    p.get("args")
                        .and_then(Value::as_str)
                        .map(|a| format!(" {a}"))
                        .unwrap_or_default(),
                    if ok { "ok" } else { "FAILED" }
                );
                if let Some(ms) = p.get("duration_ms").and_then(Value::as_f64) {
                    d.push_str(&format!("  {ms:.0} ms"));
                }
                if let Some(err) = p.get("error").and_then(Value::as_str) {
                    d.push_str(&format!("  {err}"));
                }
                d
            }
            "heartbeat" => {
                heartbeats += 1;
                last_heartbeat = Some(e.timestamp);
                continue;
            }
            other => other.to_string(),
        };
        out.push_str(&format!("  {}  {detail}\n", fmt_clock(&e.timestamp, utc)));
    }
    if let Some(t) = last_heartbeat {
        out.push_str(&format!(
            "  ({heartbeats} heartbeats, the last at {})\n",
            fmt_clock(&t, utc)
        ));
    }
    out
}

fn rfc3339(t: DateTime<Utc>) -> String {
    session_buddy_events::format_timestamp(&t)
}

/// A JSON value as a page shows it: a string as itself, null as `-`, anything else as JSON.
pub fn plain(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What one timeline event says, for the pages that show timelines (the console's session
/// page, fastblocks' report): the same words everywhere, each page lays them out.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSummary {
    /// A start: `user@host pid N in cwd`; a command: its name and arguments (as redacted);
    /// an end: `reason R, exit code C, signal S`; anything else: empty.
    pub what: String,
    /// A command's success.
    pub success: Option<bool>,
    /// A command's duration, in seconds.
    pub duration_secs: Option<f64>,
    /// A command's error message.
    pub error: Option<String>,
}

/// The [`EventSummary`] of an event of type `event_type` with payload `p`.
pub fn event_summary(event_type: &str, p: &Value) -> EventSummary {
    let mut out = EventSummary {
        what: String::new(),
        success: None,
        duration_secs: None,
        error: None,
    };
    match event_type {
        "session_start" => {
            out.what = format!(
                "{}@{} pid {} in {}",
                plain(&p["user"]["username"]),
                plain(&p["hostname"]),
                plain(&p["pid"]),
                plain(&p["environment"]["cwd"])
            );
        }
        "command" => {
            out.what = plain(&p["command"]);
            if let Some(args) = p["args"].as_str().filter(|a| !a.is_empty()) {
                out.what.push(' ');
                out.what.push_str(args);
            }
            out.success = p["success"].as_bool();
            out.duration_secs = p["duration_ms"].as_f64().map(|ms| ms / 1000.0);
            out.error = p["error"]
                .as_str()
                .filter(|e| !e.is_empty())
                .map(str::to_string);
        }
        "session_end" => {
            out.what = format!("reason {}", plain(&p["reason"]));
            if !p["exit_code"].is_null() {
                out.what
                    .push_str(&format!(", exit code {}", plain(&p["exit_code"])));
            }
            if !p["signal"].is_null() {
                out.what
                    .push_str(&format!(", signal {}", plain(&p["signal"])));
            }
        }
        _ => {}
    }
    out
}
