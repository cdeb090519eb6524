//! Session-Buddy (Manager): the tracked sessions themselves, read through the server's API:
//! recent and active sessions, the quality score per component and why, and insights.
//!
//! Everything that computes is a pure function over `&[Session]` or `&[StoredEvent]`, so the
//! tests need no server; the fetching and decoding helpers are `crate::reading`'s.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};

use chrono::{DateTime, Local, TimeZone, Timelike, Utc};
use session_buddy_events::{Session, SessionStatus, StoredEvent};
use session_buddy_shell::{Context, Helper, HelperResult, ShellSpec};

use crate::reading::{
    at_most_args, clip, command_view, count_arg, decode, elapsed_secs, fetch_command_events,
    fetch_sessions, local_time, secs_between, since_days,
};
use crate::text;

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
                ps,
            )
            .usage("[limit]"),
            Helper::new(
                "active",
                "active sessions: how long they have been running, when last seen",
                active,
            ),
            Helper::new(
                "quality",
                "quality score per component over the last 7 days, and why",
                quality,
            ),
            Helper::new(
                "insights",
                "longest sessions, failing commands, abandoned sessions, busiest hours",
                insights,
            )
            .usage("[limit]"),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// ps

fn ps(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 1, "ps [limit]")?;
    let limit = count_arg(args, 0, "limit", 20, 1000)?;
    let sessions: Vec<Session> = decode(ctx.api().sessions(&[], limit)?, "session")?;
    let out = render_ps(&sessions, Utc::now(), &Local);
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

fn render_ps<Tz: TimeZone>(sessions: &[Session], now: DateTime<Utc>, tz: &Tz) -> String
where
    Tz::Offset: Display,
{
    if sessions.is_empty() {
        return "No sessions recorded yet.\n".into();
    }
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            let duration = match s.status {
                SessionStatus::Active => {
                    format!("{} (running)", text::duration(elapsed_secs(s, now)))
                }
                _ => text::duration(elapsed_secs(s, now)),
            };
            vec![
                s.session_id.clone(),
                s.component.clone(),
                s.username.clone(),
                s.hostname.clone(),
                s.status.to_string(),
                local_time(s.started_at, tz),
                duration,
                s.command_count.to_string(),
                s.error_count.to_string(),
            ]
        })
        .collect();
    format!(
        "Recent sessions, newest first ({} shown):\n{}",
        sessions.len(),
        text::table(
            &[
                "Session ID",
                "Component",
                "User",
                "Host",
                "Status",
                "Started",
                "Duration",
                "Commands",
                "Errors"
            ],
            &rows
        )
    )
}

// ---------------------------------------------------------------------------------------------
// active

fn active(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 0, "active")?;
    let fetched = fetch_sessions(ctx, &[("status", "active".to_string())])?;
    let out = render_active(&fetched.sessions, Utc::now(), &Local) + &fetched.cap_note();
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

/// Active sessions, the longest running first.
fn active_sessions(sessions: &[Session]) -> Vec<&Session> {
    let mut active: Vec<&Session> = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Active)
        .collect();
    active.sort_by(|a, b| {
        a.started_at
            .cmp(&b.started_at)
            .then_with(|| a.session_id.cmp(&b.session_id))
    });
    active
}

fn render_active<Tz: TimeZone>(sessions: &[Session], now: DateTime<Utc>, tz: &Tz) -> String
where
    Tz::Offset: Display,
{
    let active = active_sessions(sessions);
    if active.is_empty() {
        return "No active sessions.\n".into();
    }
    let mut per_component: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &active {
        *per_component.entry(&s.component).or_default() += 1;
    }
    let rows: Vec<Vec<String>> = active
        .iter()
        .map(|s| {
            vec![
                s.session_id.clone(),
                s.component.clone(),
                s.username.clone(),
                s.hostname.clone(),
                s.pid.to_string(),
                local_time(s.started_at, tz),
                text::duration(secs_between(s.started_at, now)),
                format!("{} ago", text::duration(secs_between(s.last_seen_at, now))),
                s.command_count.to_string(),
            ]
        })
        .collect();
    let by: Vec<String> = per_component
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    format!(
        "{} active session{} ({}), longest running first:\n{}",
        active.len(),
        if active.len() == 1 { "" } else { "s" },
        by.join(", "),
        text::table(
            &[
                "Session ID",
                "Component",
                "User",
                "Host",
                "PID",
                "Started",
                "Running for",
                "Last seen",
                "Commands"
            ],
            &rows
        )
    )
}

// ---------------------------------------------------------------------------------------------
// quality

/// The inputs of a component's quality score (ARCHITECTURE.md, `session_quality_score`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Quality {
    pub sessions: u64,
    /// Sessions with any failure: abandoned, a failed command, a non-zero exit, a signal.
    pub failed_sessions: u64,
    pub abandoned: u64,
    pub with_failed_commands: u64,
    pub nonzero_exit: u64,
    pub signal_or_error_end: u64,
    pub commands: u64,
    pub failed_commands: u64,
}

impl Quality {
    pub fn clean(&self) -> f64 {
        share_ok(self.failed_sessions, self.sessions)
    }

    pub fn commands_ok(&self) -> f64 {
        share_ok(self.failed_commands, self.commands)
    }

    pub fn not_abandoned(&self) -> f64 {
        share_ok(self.abandoned, self.sessions)
    }

    /// `100 × (0.5 × clean + 0.3 × commands_ok + 0.2 × not_abandoned)`.
    pub fn score(&self) -> f64 {
        (100.0 * (0.5 * self.clean() + 0.3 * self.commands_ok() + 0.2 * self.not_abandoned()))
            .clamp(0.0, 100.0)
    }
}

/// `1 − bad/total` in `0..=1`; 1 when there is nothing to judge.
fn share_ok(bad: u64, total: u64) -> f64 {
    if total == 0 {
        1.0
    } else {
        (1.0 - bad as f64 / total as f64).clamp(0.0, 1.0)
    }
}

/// A session that ended by a signal (reason `sigterm`, `sighup`, …) or by an error, as the
/// server's score counts it.
fn ended_by_signal_or_error(s: &Session) -> bool {
    s.end_reason.as_deref().is_some_and(|r| {
        let r = r.to_ascii_lowercase();
        r.starts_with("sig") || r == "error"
    })
}

/// Quality inputs per component over `sessions`.
pub(crate) fn quality_by_component(sessions: &[Session]) -> BTreeMap<String, Quality> {
    let mut out: BTreeMap<String, Quality> = BTreeMap::new();
    for s in sessions {
        let q = out.entry(s.component.clone()).or_default();
        let abandoned = s.status == SessionStatus::Abandoned;
        let failed_commands = s.error_count > 0;
        let nonzero_exit = s.exit_code.is_some_and(|c| c != 0);
        let signal = ended_by_signal_or_error(s);
        q.sessions += 1;
        q.abandoned += u64::from(abandoned);
        q.with_failed_commands += u64::from(failed_commands);
        q.nonzero_exit += u64::from(nonzero_exit);
        q.signal_or_error_end += u64::from(signal);
        q.failed_sessions += u64::from(abandoned || failed_commands || nonzero_exit || signal);
        q.commands += s.command_count;
        q.failed_commands += s.error_count;
    }
    out
}

fn quality(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 0, "quality")?;
    let fetched = fetch_sessions(ctx, &[since_days(Utc::now(), 7)])?;
    let out = render_quality(&quality_by_component(&fetched.sessions)) + &fetched.cap_note();
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

fn render_quality(by_component: &BTreeMap<String, Quality>) -> String {
    if by_component.is_empty() {
        return "No sessions started in the last 7 days: nothing to score.\n".into();
    }
    let mut ranked: Vec<(&String, &Quality)> = by_component.iter().collect();
    // Worst first: that is where the "why" matters.
    ranked.sort_by(|a, b| a.1.score().total_cmp(&b.1.score()).then(a.0.cmp(b.0)));
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let rows: Vec<Vec<String>> = ranked
        .iter()
        .map(|(c, q)| {
            vec![
                c.to_string(),
                format!("{:.1}", q.score()),
                pct(q.clean()),
                pct(q.commands_ok()),
                pct(q.not_abandoned()),
                q.sessions.to_string(),
                q.commands.to_string(),
            ]
        })
        .collect();
    let mut out = String::from(
        "Session quality over the last 7 days, worst first.\n\
         score = 100 × (0.5 × clean + 0.3 × commands_ok + 0.2 × not_abandoned)\n\n",
    );
    out.push_str(&text::table(
        &[
            "Component",
            "Score",
            "Clean",
            "Commands ok",
            "Not abandoned",
            "Sessions",
            "Commands",
        ],
        &rows,
    ));
    out.push_str("\nWhy:\n");
    for (c, q) in ranked {
        let _ = writeln!(
            out,
            "  {c}: {:.1} = 100 × (0.5 × {:.3} + 0.3 × {:.3} + 0.2 × {:.3})",
            q.score(),
            q.clean(),
            q.commands_ok(),
            q.not_abandoned()
        );
        let _ = writeln!(
            out,
            "    clean          {} of {} sessions without a failure ({} failed: {} abandoned, {} with failed commands, {} non-zero exit, {} ended by a signal or error)",
            q.sessions - q.failed_sessions.min(q.sessions),
            q.sessions,
            q.failed_sessions,
            q.abandoned,
            q.with_failed_commands,
            q.nonzero_exit,
            q.signal_or_error_end
        );
        if q.commands == 0 {
            let _ = writeln!(out, "    commands_ok    no commands ran (counts as 1.000)");
        } else {
            let _ = writeln!(
                out,
                "    commands_ok    {} of {} commands succeeded",
                q.commands - q.failed_commands.min(q.commands),
                q.commands
            );
        }
        let _ = writeln!(
            out,
            "    not_abandoned  {} of {} sessions were not abandoned",
            q.sessions - q.abandoned.min(q.sessions),
            q.sessions
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// insights

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

fn insights(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
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

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::testdata::*;
    use serde_json::json;

    #[test]
    fn quality_formula_and_counts() {
        // 10 sessions: 1 abandoned, 1 with failed commands (10 of 100 commands failed),
        // 8 clean → 0.5 × 0.8 + 0.3 × 0.9 + 0.2 × 0.9 = 0.85.
        let mut sessions: Vec<Session> = (0..8)
            .map(|i| {
                let mut s = session(&format!("a-{i}"), "akosha", i, 60.0);
                s.command_count = 10;
                s
            })
            .collect();
        let mut failing = session("a-8", "akosha", 8, 60.0);
        failing.command_count = 20;
        failing.error_count = 10;
        sessions.push(failing);
        sessions.push(abandoned("a-9", "akosha", 9, 60.0));
        let mut other = session("o-1", "oneiric", 0, 5.0);
        other.exit_code = Some(2);
        sessions.push(other);

        let q = quality_by_component(&sessions);
        let a = &q["akosha"];
        assert_eq!(a.sessions, 10);
        assert_eq!(a.failed_sessions, 2);
        assert_eq!(a.abandoned, 1);
        assert_eq!(a.with_failed_commands, 1);
        assert_eq!(a.commands, 100);
        assert_eq!(a.failed_commands, 10);
        assert!((a.score() - 85.0).abs() < 1e-9, "{}", a.score());

        // One session, non-zero exit, no commands: 0.5 × 0 + 0.3 × 1 + 0.2 × 1 = 0.5.
        let o = &q["oneiric"];
        assert_eq!((o.failed_sessions, o.nonzero_exit), (1, 1));
        assert!((o.score() - 50.0).abs() < 1e-9, "{}", o.score());

        let text = render_quality(&q);
        // Worst first, and the why with its counts.
        assert!(text.find("oneiric").unwrap() < text.find("akosha").unwrap());
        assert!(text.contains("akosha: 85.0 = 100 × (0.5 × 0.800 + 0.3 × 0.900 + 0.2 × 0.900)"));
        assert!(text.contains(
            "8 of 10 sessions without a failure (2 failed: 1 abandoned, 1 with failed commands"
        ));
        assert!(text.contains("90 of 100 commands succeeded"));
        assert!(text.contains("9 of 10 sessions were not abandoned"));
    }

    #[test]
    fn signal_ends_are_failures_but_plain_exits_are_not() {
        let mut s = session("x-1", "x", 0, 1.0);
        s.end_reason = Some("sigterm".into());
        s.exit_code = None;
        let plain = session("x-2", "x", 1, 1.0);
        let q = &quality_by_component(&[s, plain])["x"];
        assert_eq!((q.failed_sessions, q.signal_or_error_end), (1, 1));
        assert_eq!(Quality::default().score(), 100.0);
    }

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

    #[test]
    fn ps_and_active_render_their_sessions() {
        let mut a = running("s-old", "akosha", 0);
        a.last_seen_at = at(50);
        let sessions = vec![
            running("s-new", "oneiric", 30),
            a,
            session("s-end", "akosha", 5, 65.0),
        ];
        let now = at(60);
        let ps = render_ps(&sessions, now, &Utc);
        assert!(ps.contains("s-end"), "{ps}");
        assert!(ps.contains("1m 05s"), "{ps}");
        assert!(ps.contains("30m 00s (running)"), "{ps}");
        assert!(ps.contains("2026-02-06 12:05:00"), "{ps}");

        let act = render_active(&sessions, now, &Utc);
        assert!(
            act.starts_with("2 active sessions (akosha 1, oneiric 1)"),
            "{act}"
        );
        assert!(!act.contains("s-end"));
        // Longest running first, last seen 10 minutes ago.
        assert!(act.find("s-old").unwrap() < act.find("s-new").unwrap());
        assert!(act.contains("1h 00m 00s"), "{act}");
        assert!(act.contains("10m 00s ago"), "{act}");
        assert_eq!(render_active(&[], now, &Utc), "No active sessions.\n");
    }

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
