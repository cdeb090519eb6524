//! `insights`: longest sessions, failing commands, abandoned sessions, busiest hours.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Local, TimeZone, Timelike, Utc};
use session_buddy_events::{Session, SessionStatus, StoredEvent};
use session_buddy_shell::{Context, HelperResult};

use super::*;
use crate::text;

/// A command name with failures among the latest command events.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FailingCommand {
    pub command: String,
    pub failures: u64,
    pub calls: u64,
    pub last_failure: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// Commands that failed, the most failures first (then the latest failure, then the name).
pub(crate) fn failing_commands(events: &[StoredEvent]) -> Vec<FailingCommand> {
    let mut by_name: BTreeMap<&str, FailingCommand> = BTreeMap::new();
    for e in events {
        let Some(c) = command_view(e) else { continue };
        let entry = by_name.entry(c.command).or_insert_with(|| FailingCommand {
            command: c.command.to_string(),
            failures: 0,
            calls: 0,
            last_failure: DateTime::<Utc>::MIN_UTC,
            last_error: None,
        });
        entry.calls += 1;
        if !c.success {
            entry.failures += 1;
            if e.timestamp >= entry.last_failure {
                entry.last_failure = e.timestamp;
                entry.last_error = c.error.map(str::to_string);
            }
        }
    }
    let mut out: Vec<FailingCommand> = by_name.into_values().filter(|f| f.failures > 0).collect();
    out.sort_by(|a, b| {
        b.failures
            .cmp(&a.failures)
            .then(b.last_failure.cmp(&a.last_failure))
            .then_with(|| a.command.cmp(&b.command))
    });
    out
}

/// Sessions that have a duration (ended or abandoned), the longest first.
pub(crate) fn longest_sessions(sessions: &[Session], limit: usize) -> Vec<&Session> {
    let mut with: Vec<&Session> = sessions
        .iter()
        .filter(|s| s.duration_seconds.is_some())
        .collect();
    with.sort_by(|a, b| {
        b.duration_seconds
            .unwrap_or(0.0)
            .total_cmp(&a.duration_seconds.unwrap_or(0.0))
            .then_with(|| a.session_id.cmp(&b.session_id))
    });
    with.truncate(limit);
    with
}

/// Abandoned sessions, the most recently started first.
pub(crate) fn abandoned_sessions(sessions: &[Session], limit: usize) -> Vec<&Session> {
    let mut out: Vec<&Session> = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Abandoned)
        .collect();
    out.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then_with(|| a.session_id.cmp(&b.session_id))
    });
    out.truncate(limit);
    out
}

/// Sessions started per hour of the day in `tz`.
pub(crate) fn sessions_per_hour<Tz: TimeZone>(sessions: &[Session], tz: &Tz) -> [u64; 24] {
    let mut hours = [0u64; 24];
    for s in sessions {
        let h = s.started_at.with_timezone(tz).hour() as usize;
        if let Some(slot) = hours.get_mut(h) {
            *slot += 1;
        }
    }
    hours
}

pub(super) fn insights(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 1, "insights [limit]")?;
    let limit = count_arg(args, 0, "limit", 10, 1000)?;
    let fetched = fetch_sessions(ctx, &[])?;
    let events = fetch_command_events(ctx)?;
    let out = render_insights(&fetched.sessions, &events, limit, &Local) + &fetched.cap_note();
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

fn render_insights<Tz: TimeZone>(
    sessions: &[Session],
    events: &[StoredEvent],
    limit: usize,
    tz: &Tz,
) -> String
where
    Tz::Offset: Display,
{
    let mut out = format!(
        "Insights over {} sessions and the latest {} command events.\n",
        sessions.len(),
        events.len()
    );

    out.push_str("\nLongest sessions:\n");
    let longest = longest_sessions(sessions, limit);
    if longest.is_empty() {
        out.push_str("  none has ended yet\n");
    } else {
        let rows: Vec<Vec<String>> = longest
            .iter()
            .map(|s| {
                vec![
                    text::duration(s.duration_seconds.unwrap_or(0.0)),
                    s.session_id.clone(),
                    format!("{}@{}", s.username, s.hostname),
                    s.status.to_string(),
                    local_time(s.started_at, tz),
                ]
            })
            .collect();
        out.push_str(&indent(&text::table(
            &["Duration", "Session ID", "Who", "Status", "Started"],
            &rows,
        )));
    }

    out.push_str("\nMost failing commands:\n");
    let failing = failing_commands(events);
    if failing.is_empty() {
        out.push_str("  no failed commands\n");
    } else {
        let rows: Vec<Vec<String>> = failing
            .iter()
            .take(limit)
            .map(|f| {
                vec![
                    f.command.clone(),
                    format!("{}/{}", f.failures, f.calls),
                    local_time(f.last_failure, tz),
                    clip(f.last_error.as_deref().unwrap_or("-"), 80),
                ]
            })
            .collect();
        out.push_str(&indent(&text::table(
            &["Command", "Failed/calls", "Last failure", "Latest error"],
            &rows,
        )));
    }

    out.push_str("\nAbandoned sessions (newest first):\n");
    let abandoned = abandoned_sessions(sessions, limit);
    if abandoned.is_empty() {
        out.push_str("  none\n");
    } else {
        let total = sessions
            .iter()
            .filter(|s| s.status == SessionStatus::Abandoned)
            .count();
        let rows: Vec<Vec<String>> = abandoned
            .iter()
            .map(|s| {
                vec![
                    s.session_id.clone(),
                    format!("{}@{}", s.username, s.hostname),
                    local_time(s.started_at, tz),
                    local_time(s.last_seen_at, tz),
                    s.end_reason.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str(&indent(&text::table(
            &["Session ID", "Who", "Started", "Last seen", "Reason"],
            &rows,
        )));
        if total > abandoned.len() {
            let _ = writeln!(out, "  … {} abandoned in all", total);
        }
    }

    out.push_str("\nBusiest hours of the day (local time, sessions started):\n");
    let hours = sessions_per_hour(sessions, tz);
    let max = hours.iter().copied().max().unwrap_or(0);
    if max == 0 {
        out.push_str("  no sessions\n");
    } else {
        for (h, n) in hours.iter().enumerate() {
            let mark = if *n == max { "  ← busiest" } else { "" };
            let _ = writeln!(
                out,
                "  {h:02}:00  {:<30}  {n}{mark}",
                text::bar(*n as f64, max as f64, 30)
            );
        }
    }
    out
}

fn indent(block: &str) -> String {
    block.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::testdata::*;

    #[test]
    fn failing_commands_rank_by_failures_with_latest_error() {
        let events = vec![
            command("s-1", 1, "search", "x", Some("old error")),
            command("s-1", 5, "search", "y", Some("new error")),
            command("s-1", 3, "search", "z", None),
            command("s-2", 2, "detect", "", Some("boom")),
            command("s-2", 4, "graph", "", None),
        ];
        let f = failing_commands(&events);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].command, "search");
        assert_eq!((f[0].failures, f[0].calls), (2, 3));
        assert_eq!(f[0].last_error.as_deref(), Some("new error"));
        assert_eq!(f[0].last_failure, at(5));
        assert_eq!(f[1].command, "detect");
        assert_eq!(f[1].failures, 1);
    }

    #[test]
    fn longest_and_abandoned_rankings() {
        let sessions = vec![
            session("s-1", "a", 0, 30.0),
            session("s-2", "a", 1, 300.0),
            running("s-3", "a", 2),
            abandoned("s-4", "a", 3, 100.0),
            abandoned("s-5", "a", 10, 5.0),
        ];
        let ids = |v: Vec<&Session>| v.iter().map(|s| s.session_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(longest_sessions(&sessions, 3)), ["s-2", "s-4", "s-1"]);
        assert_eq!(ids(abandoned_sessions(&sessions, 10)), ["s-5", "s-4"]);
        assert_eq!(ids(abandoned_sessions(&sessions, 1)), ["s-5"]);
    }

    #[test]
    fn busiest_hours_count_starts_per_local_hour() {
        let sessions = vec![
            session("s-1", "a", 0, 1.0),   // 12:00 UTC
            session("s-2", "a", 59, 1.0),  // 12:59
            session("s-3", "a", 60, 1.0),  // 13:00
            session("s-4", "a", 720, 1.0), // 00:00 next day
        ];
        let utc = sessions_per_hour(&sessions, &Utc);
        assert_eq!(
            (utc[12], utc[13], utc[0], utc.iter().sum::<u64>()),
            (2, 1, 1, 4)
        );
        // UTC+2: 12:00 UTC is 14:00 local.
        let plus2 = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
        let local = sessions_per_hour(&sessions, &plus2);
        assert_eq!((local[14], local[15], local[2]), (2, 1, 1));
        let text = render_insights(&sessions, &[], 5, &Utc);
        assert!(
            text.contains("12:00  ██████████████████████████████  2  ← busiest"),
            "{text}"
        );
    }
}
