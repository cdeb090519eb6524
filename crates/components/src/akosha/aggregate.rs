//! `aggregate`: sessions, durations and errors per component, user, host or local day.

use std::collections::BTreeMap;

use chrono::TimeZone;
use session_buddy_events::{Session, SessionStatus};

use crate::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupBy {
    Component,
    User,
    Host,
    Day,
}

impl GroupBy {
    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "component" => GroupBy::Component,
            "user" => GroupBy::User,
            "host" => GroupBy::Host,
            "day" => GroupBy::Day,
            _ => return None,
        })
    }

    fn title(self) -> &'static str {
        match self {
            GroupBy::Component => "Component",
            GroupBy::User => "User",
            GroupBy::Host => "Host",
            GroupBy::Day => "Day",
        }
    }
}

/// The numbers of one group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub key: String,
    pub sessions: u64,
    pub active: u64,
    pub abandoned: u64,
    /// Sessions with a duration (ended or abandoned).
    pub timed: u64,
    pub total_duration: f64,
    pub commands: u64,
    pub errors: u64,
    pub sessions_with_errors: u64,
}

impl Group {
    pub fn mean_duration(&self) -> Option<f64> {
        (self.timed > 0).then(|| self.total_duration / self.timed as f64)
    }
}

/// Groups of `sessions`; days are local dates in `tz`, listed in order; other groups the
/// most sessions first.
pub(crate) fn aggregate_by<Tz: TimeZone>(sessions: &[Session], by: GroupBy, tz: &Tz) -> Vec<Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for s in sessions {
        let key = match by {
            GroupBy::Component => s.component.clone(),
            GroupBy::User => s.username.clone(),
            GroupBy::Host => s.hostname.clone(),
            GroupBy::Day => s
                .started_at
                .with_timezone(tz)
                .date_naive()
                .format("%Y-%m-%d")
                .to_string(),
        };
        let g = groups.entry(key.clone()).or_insert_with(|| Group {
            key,
            sessions: 0,
            active: 0,
            abandoned: 0,
            timed: 0,
            total_duration: 0.0,
            commands: 0,
            errors: 0,
            sessions_with_errors: 0,
        });
        g.sessions += 1;
        g.active += u64::from(s.status == SessionStatus::Active);
        g.abandoned += u64::from(s.status == SessionStatus::Abandoned);
        if let Some(d) = s.duration_seconds {
            g.timed += 1;
            g.total_duration += d.max(0.0);
        }
        g.commands += s.command_count;
        g.errors += s.error_count;
        g.sessions_with_errors += u64::from(s.error_count > 0);
    }
    let mut out: Vec<Group> = groups.into_values().collect();
    if by != GroupBy::Day {
        out.sort_by(|a, b| b.sessions.cmp(&a.sessions).then_with(|| a.key.cmp(&b.key)));
    }
    out
}

pub(super) fn render_aggregate(groups: &[Group], by: GroupBy, total: usize) -> String {
    if groups.is_empty() {
        return "No sessions recorded yet.\n".into();
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.key.clone(),
                g.sessions.to_string(),
                g.active.to_string(),
                g.abandoned.to_string(),
                // Nothing over yet: no time to add up, which is not zero time.
                match g.mean_duration() {
                    Some(_) => text::duration(g.total_duration),
                    None => "-".into(),
                },
                g.mean_duration()
                    .map(text::duration)
                    .unwrap_or_else(|| "-".into()),
                g.commands.to_string(),
                g.errors.to_string(),
                g.sessions_with_errors.to_string(),
            ]
        })
        .collect();
    format!(
        "{total} {} by {} (durations of ended and abandoned sessions):\n{}",
        if total == 1 { "session" } else { "sessions" },
        by.title().to_lowercase(),
        text::table(
            &[
                by.title(),
                "Sessions",
                "Active",
                "Abandoned",
                "Total time",
                "Mean time",
                "Commands",
                "Errors",
                "Sessions w/ errors",
            ],
            &rows
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::testdata::*;
    use chrono::Utc;

    #[test]
    fn aggregate_groups_count_and_average() {
        let mut a1 = session("a-1", "akosha", 0, 60.0);
        a1.command_count = 4;
        a1.error_count = 2;
        let a2 = session("a-2", "akosha", 10, 120.0);
        let a3 = running("a-3", "akosha", 20);
        let mut o1 = abandoned("o-1", "oneiric", 30, 30.0);
        o1.username = "bob".into();
        o1.hostname = "host-b".into();
        let o2 = session("o-2", "oneiric", 24 * 60 + 5, 10.0); // the next day
        let sessions = vec![a1, a2, a3, o1, o2];

        let g = aggregate_by(&sessions, GroupBy::Component, &Utc);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].key, "akosha");
        assert_eq!(
            (
                g[0].sessions,
                g[0].active,
                g[0].timed,
                g[0].commands,
                g[0].errors,
                g[0].sessions_with_errors
            ),
            (3, 1, 2, 4, 2, 1)
        );
        assert_eq!(g[0].total_duration, 180.0);
        assert_eq!(g[0].mean_duration(), Some(90.0));
        assert_eq!(
            (g[1].key.as_str(), g[1].abandoned, g[1].total_duration),
            ("oneiric", 1, 40.0)
        );

        let users = aggregate_by(&sessions, GroupBy::User, &Utc);
        assert_eq!(
            users
                .iter()
                .map(|g| (g.key.as_str(), g.sessions))
                .collect::<Vec<_>>(),
            [("alice", 4), ("bob", 1)]
        );
        let hosts = aggregate_by(&sessions, GroupBy::Host, &Utc);
        assert_eq!(hosts[1].key, "host-b");
        let days = aggregate_by(&sessions, GroupBy::Day, &Utc);
        assert_eq!(
            days.iter()
                .map(|g| (g.key.as_str(), g.sessions))
                .collect::<Vec<_>>(),
            [("2026-02-06", 4), ("2026-02-07", 1)]
        );
        // 12:00 UTC is 23:00 on the 5th at UTC−13.
        let minus13 = chrono::FixedOffset::west_opt(13 * 3600).unwrap();
        assert_eq!(
            aggregate_by(&sessions, GroupBy::Day, &minus13)[0].key,
            "2026-02-05"
        );
        let text = render_aggregate(&g, GroupBy::Component, 5);
        assert!(text.contains("1m 30s"), "{text}");
        assert!(text.starts_with("5 sessions by component "), "{text}");
        let one = aggregate_by(&sessions[..1], GroupBy::Component, &Utc);
        let text = render_aggregate(&one, GroupBy::Component, 1);
        assert!(text.starts_with("1 session by component "), "{text}");
        assert_eq!(GroupBy::parse("weekday"), None);
    }
}
