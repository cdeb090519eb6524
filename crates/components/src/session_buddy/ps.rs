//! `ps` (recent sessions) and `active` (the active ones, longest running first).

use std::collections::BTreeMap;

use chrono::{DateTime, Local, TimeZone, Utc};
use session_buddy_events::{Session, SessionStatus};
use session_buddy_shell::{Context, HelperResult};

use super::*;
use crate::text;

pub(super) fn ps(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
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

pub(super) fn active(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::testdata::*;

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
}
