//! Mahavishnu (Orchestrator): the tracked shells of this host and whether their processes
//! live, the most active components and users, the latest failed commands everywhere, and
//! delivering this host's event buffer on demand.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Local, TimeZone, Utc};
use serde_json::Value;
use session_buddy_events::{Session, SessionStatus, StoredEvent};
use session_buddy_shell::{Context, Helper, HelperError, HelperResult, ShellSpec};

use crate::reading::{
    MAX_EVENTS, at_most_args, clip, command_view, count_arg, elapsed_secs, fetch_command_events,
    fetch_sessions, local_time, secs_between, since_days,
};
use crate::text;

pub(crate) fn spec() -> ShellSpec {
    ShellSpec {
        component: "mahavishnu".into(),
        display_name: "Mahavishnu".into(),
        version: crate::VERSION.into(),
        tagline: "Orchestration of the tracked shells across hosts".into(),
        role: "Orchestrator".into(),
        shell_type: "MahavishnuShell".into(),
        help_notes: String::new(),
        helpers: vec![
            Helper::new("ps", "tracked shells on this host: pid, alive or stale", ps),
            Helper::new(
                "top",
                "components and users by activity over the last 7 days",
                top,
            )
            .usage("[limit]"),
            Helper::new("errors", "the latest failed commands everywhere", errors).usage("[limit]"),
            Helper::new(
                "sync",
                "deliver this host's event buffer now and report it",
                sync,
            ),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// ps

/// This machine's hostname: `/proc/sys/kernel/hostname`, else `$HOSTNAME`.
fn this_hostname() -> Result<String, HelperError> {
    choose_hostname(
        std::fs::read_to_string("/proc/sys/kernel/hostname").ok(),
        std::env::var("HOSTNAME").ok(),
    )
    .ok_or_else(|| {
        HelperError::new(
            "cannot tell this machine's hostname: /proc/sys/kernel/hostname is unreadable and HOSTNAME is not set",
        )
    })
}

fn choose_hostname(proc_file: Option<String>, env: Option<String>) -> Option<String> {
    [proc_file, env]
        .into_iter()
        .flatten()
        .map(|h| h.trim().to_string())
        .find(|h| !h.is_empty())
}

/// Whether a process lives, as far as this machine can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidState {
    Alive,
    Gone,
    /// No `/proc` to look in.
    Unknown,
}

/// Looks for `/proc/<pid>`.
pub(crate) fn pid_state(pid: u32) -> PidState {
    pid_state_in(Path::new("/proc"), pid)
}

fn pid_state_in(proc_dir: &Path, pid: u32) -> PidState {
    if !proc_dir.join("self").exists() {
        PidState::Unknown
    } else if pid > 0 && proc_dir.join(pid.to_string()).exists() {
        PidState::Alive
    } else {
        PidState::Gone
    }
}

/// An active session on this host and the state of its process.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostShell<'a> {
    pub session: &'a Session,
    pub pid: PidState,
}

impl HostShell<'_> {
    /// Active on the server, but its process is gone.
    pub fn stale(&self) -> bool {
        self.pid == PidState::Gone
    }
}

/// The active sessions of `hostname`, the oldest first, with the state of each pid.
pub(crate) fn host_shells<'a>(
    sessions: &'a [Session],
    hostname: &str,
    probe: impl Fn(u32) -> PidState,
) -> Vec<HostShell<'a>> {
    let mut out: Vec<HostShell<'a>> = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Active && s.hostname == hostname)
        .map(|s| HostShell {
            session: s,
            pid: probe(s.pid),
        })
        .collect();
    out.sort_by(|a, b| {
        a.session
            .started_at
            .cmp(&b.session.started_at)
            .then_with(|| a.session.session_id.cmp(&b.session.session_id))
    });
    out
}

fn ps(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 0, "ps")?;
    let host = this_hostname()?;
    let fetched = fetch_sessions(
        ctx,
        &[("status", "active".to_string()), ("host", host.clone())],
    )?;
    let shells = host_shells(&fetched.sessions, &host, pid_state);
    let out = render_ps(
        &shells,
        &host,
        ctx.session_id.as_deref(),
        Utc::now(),
        &Local,
    ) + &fetched.cap_note();
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

fn render_ps<Tz: TimeZone>(
    shells: &[HostShell<'_>],
    host: &str,
    this_session: Option<&str>,
    now: DateTime<Utc>,
    tz: &Tz,
) -> String
where
    Tz::Offset: Display,
{
    let mut out = String::new();
    if shells.is_empty() {
        let _ = writeln!(out, "No tracked shells active on {host}.");
    } else {
        let stale = shells.iter().filter(|s| s.stale()).count();
        let _ = writeln!(
            out,
            "{} tracked shell{} active on {host}: {} alive, {stale} stale.",
            shells.len(),
            if shells.len() == 1 { "" } else { "s" },
            shells.iter().filter(|s| s.pid == PidState::Alive).count(),
        );
        let rows: Vec<Vec<String>> = shells
            .iter()
            .map(|h| {
                let s = h.session;
                let note = if Some(s.session_id.as_str()) == this_session {
                    "this shell"
                } else if h.stale() {
                    "STALE: process gone; the reaper will mark it abandoned"
                } else {
                    ""
                };
                vec![
                    s.session_id.clone(),
                    s.component.clone(),
                    s.username.clone(),
                    s.pid.to_string(),
                    match h.pid {
                        PidState::Alive => "yes",
                        PidState::Gone => "no",
                        PidState::Unknown => "?",
                    }
                    .to_string(),
                    local_time(s.started_at, tz),
                    text::duration(secs_between(s.started_at, now)),
                    format!("{} ago", text::duration(secs_between(s.last_seen_at, now))),
                    note.to_string(),
                ]
            })
            .collect();
        out.push_str(&text::table(
            &[
                "Session ID",
                "Component",
                "User",
                "PID",
                "Alive",
                "Started",
                "Running for",
                "Last seen",
                "Note",
            ],
            &rows,
        ));
        if shells.iter().any(|s| s.pid == PidState::Unknown) {
            out.push_str("(no /proc on this machine: process liveness unknown)\n");
        }
    }
    if let Some(id) = this_session
        && !shells.iter().any(|s| s.session.session_id == id)
    {
        let _ = writeln!(
            out,
            "This shell ({id}) is not on the server yet: its events wait in the buffer (try `sync`)."
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// top

/// What one component or user did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Activity {
    pub name: String,
    pub sessions: u64,
    pub commands: u64,
    pub errors: u64,
    /// Ended sessions' durations plus active ones' running time so far.
    pub duration_secs: f64,
}

/// Activity per `key` (component, user, …), the most sessions first, then the most commands,
/// then the longest total time, then the name.
pub(crate) fn activity_by(
    sessions: &[Session],
    key: impl Fn(&Session) -> &str,
    now: DateTime<Utc>,
) -> Vec<Activity> {
    let mut groups: BTreeMap<&str, Activity> = BTreeMap::new();
    for s in sessions {
        let name = key(s);
        let a = groups.entry(name).or_insert_with(|| Activity {
            name: name.to_string(),
            sessions: 0,
            commands: 0,
            errors: 0,
            duration_secs: 0.0,
        });
        a.sessions += 1;
        a.commands += s.command_count;
        a.errors += s.error_count;
        a.duration_secs += elapsed_secs(s, now);
    }
    let mut out: Vec<Activity> = groups.into_values().collect();
    out.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then(b.commands.cmp(&a.commands))
            .then(b.duration_secs.total_cmp(&a.duration_secs))
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

fn top(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 1, "top [limit]")?;
    let limit = count_arg(args, 0, "limit", 10, 1000)?;
    let now = Utc::now();
    let fetched = fetch_sessions(ctx, &[since_days(now, 7)])?;
    let out = render_top(&fetched.sessions, limit, now) + &fetched.cap_note();
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

fn render_top(sessions: &[Session], limit: usize, now: DateTime<Utc>) -> String {
    if sessions.is_empty() {
        return "No sessions started in the last 7 days.\n".into();
    }
    let mut out = format!(
        "Activity over the last 7 days ({} sessions), ranked by sessions, then commands:\n",
        sessions.len()
    );
    let section = |title: &str, column: &str, rows: Vec<Activity>| {
        let shown = rows.len().min(limit);
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .take(limit)
            .map(|a| {
                vec![
                    a.name.clone(),
                    a.sessions.to_string(),
                    a.commands.to_string(),
                    a.errors.to_string(),
                    text::duration(a.duration_secs),
                ]
            })
            .collect();
        format!(
            "\n{title} (top {shown} of {}):\n{}",
            rows.len(),
            text::table(
                &[column, "Sessions", "Commands", "Errors", "Total time"],
                &table_rows
            )
        )
    };
    out.push_str(&section(
        "Components",
        "Component",
        activity_by(sessions, |s| &s.component, now),
    ));
    out.push_str(&section(
        "Users",
        "User",
        activity_by(sessions, |s| &s.username, now),
    ));
    out
}

// ---------------------------------------------------------------------------------------------
// errors

pub(crate) use session_buddy_events::component_from_session_id;

/// One failed command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FailedCommand {
    pub at: DateTime<Utc>,
    pub session_id: String,
    /// From the session id rule; `None` when the id does not follow it.
    pub component: Option<String>,
    pub command: String,
    pub args: String,
    pub error: Option<String>,
}

/// The failed commands among `events`, the newest first, at most `limit`.
pub(crate) fn failed_commands(events: &[StoredEvent], limit: usize) -> Vec<FailedCommand> {
    let mut out: Vec<FailedCommand> = events
        .iter()
        .filter_map(|e| {
            let c = command_view(e)?;
            (!c.success).then(|| FailedCommand {
                at: e.timestamp,
                session_id: e.session_id.clone(),
                component: component_from_session_id(&e.session_id).map(str::to_string),
                command: c.command.to_string(),
                args: c.args.to_string(),
                error: c.error.map(str::to_string),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.at.cmp(&a.at)
            .then_with(|| a.session_id.cmp(&b.session_id))
    });
    out.truncate(limit);
    out
}

fn errors(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 1, "errors [limit]")?;
    let limit = count_arg(args, 0, "limit", 10, 1000)?;
    let events = fetch_command_events(ctx)?;
    let mut failed = failed_commands(&events, limit);
    // Ids that do not follow the rule: ask the server, once per session.
    let api = ctx.api();
    let mut looked_up: BTreeMap<String, Option<String>> = BTreeMap::new();
    for f in failed.iter_mut().filter(|f| f.component.is_none()) {
        let component = looked_up
            .entry(f.session_id.clone())
            .or_insert_with(|| {
                api.get(&format!("/v1/sessions/{}", f.session_id), &[])
                    .ok()
                    .and_then(|v| {
                        v.get("component")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
            })
            .clone();
        f.component = component;
    }
    let out = render_errors(&failed, events.len(), &Local);
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

fn render_errors<Tz: TimeZone>(failed: &[FailedCommand], searched: usize, tz: &Tz) -> String
where
    Tz::Offset: Display,
{
    let scope = if searched >= MAX_EVENTS {
        format!("the latest {searched} command events")
    } else {
        format!("all {searched} command events")
    };
    if failed.is_empty() {
        return format!("No failed commands among {scope}.\n");
    }
    let rows: Vec<Vec<String>> = failed
        .iter()
        .map(|f| {
            vec![
                local_time(f.at, tz),
                f.session_id.clone(),
                f.component.clone().unwrap_or_else(|| "?".into()),
                f.command.clone(),
                clip(&f.args, 40),
                clip(f.error.as_deref().unwrap_or("-"), 80),
            ]
        })
        .collect();
    format!(
        "The latest {} failed command{}, newest first (from {scope}):\n{}",
        failed.len(),
        if failed.len() == 1 { "" } else { "s" },
        text::table(
            &["Time", "Session", "Component", "Command", "Args", "Error"],
            &rows
        )
    )
}

// ---------------------------------------------------------------------------------------------
// sync

fn sync(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 0, "sync")?;
    if !ctx.config.enabled {
        writeln!(
            ctx.out,
            "Tracking is disabled ({}); delivering what the buffer already holds.",
            ctx.config
                .disabled_reason
                .as_deref()
                .unwrap_or("no reason recorded")
        )?;
    }
    writeln!(
        ctx.out,
        "Delivering {} to {} …",
        ctx.config
            .home
            .join(session_buddy_client::BUFFER_FILE)
            .display(),
        ctx.config.url
    )?;
    let config = ctx.config.clone();
    let report = ctx
        .cancel
        .run(move || session_buddy_client::deliver_now(&config, Duration::from_secs(10)))?
        .map_err(|e| HelperError::new(format!("cannot deliver the buffer: {e}")))?;
    let (text, failure) = render_sync(&report);
    ctx.out.write_all(text.as_bytes())?;
    match failure {
        Some(message) => Err(HelperError::new(message)),
        None => Ok(()),
    }
}

/// The report, and an error message when delivery stopped with events left.
fn render_sync(r: &session_buddy_client::DeliveryReport) -> (String, Option<String>) {
    let rows = vec![
        vec!["delivered".to_string(), r.delivered.to_string()],
        vec!["duplicates".to_string(), r.duplicates.to_string()],
        vec!["rejected".to_string(), r.rejected.to_string()],
        vec!["dead-lettered".to_string(), r.dead_lettered.to_string()],
        vec!["remaining".to_string(), r.remaining.to_string()],
        vec![
            "error".to_string(),
            r.error.clone().unwrap_or_else(|| "none".into()),
        ],
    ];
    let text = text::table(&["Result", "Events"], &rows);
    let failure = match (&r.error, r.remaining) {
        (Some(e), n) if n > 0 => Some(format!(
            "delivery stopped: {e}; {n} event{} still queued (the background sender keeps trying)",
            if n == 1 { "" } else { "s" }
        )),
        _ => None,
    };
    let summary = if failure.is_some() {
        "Sync incomplete.\n"
    } else if r.remaining == 0 {
        "Sync complete: the buffer is empty.\n"
    } else {
        "Sync done; events queued meanwhile remain.\n"
    };
    (text + summary, failure)
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests;
