//! `trends`: sessions per hour, day or week of local time, with a sparkline.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, TimeZone, Timelike, Utc};
use session_buddy_events::{Session, SessionStatus};

use crate::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucket {
    Hour,
    Day,
    Week,
}

impl Bucket {
    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hour" => Bucket::Hour,
            "day" => Bucket::Day,
            "week" => Bucket::Week,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
        }
    }

    pub(super) fn default_days(self) -> usize {
        match self {
            Bucket::Hour => 1,
            Bucket::Day => 14,
            Bucket::Week => 84,
        }
    }

    pub(super) fn max_days(self) -> usize {
        match self {
            Bucket::Hour => 14,
            Bucket::Day | Bucket::Week => 365,
        }
    }

    /// The start of the bucket holding local time `t`.
    fn start(self, t: NaiveDateTime) -> NaiveDateTime {
        let date = t.date();
        match self {
            Bucket::Hour => date.and_hms_opt(t.hour(), 0, 0).unwrap_or(t),
            Bucket::Day => date.and_time(chrono::NaiveTime::MIN),
            Bucket::Week => (date
                - Duration::days(i64::from(date.weekday().num_days_from_monday())))
            .and_time(chrono::NaiveTime::MIN),
        }
    }

    fn step(self) -> Duration {
        match self {
            Bucket::Hour => Duration::hours(1),
            Bucket::Day => Duration::days(1),
            Bucket::Week => Duration::weeks(1),
        }
    }

    fn label(self, start: NaiveDateTime) -> String {
        match self {
            Bucket::Hour => start.format("%Y-%m-%d %H:00").to_string(),
            Bucket::Day => start.format("%Y-%m-%d %a").to_string(),
            Bucket::Week => start.format("week of %Y-%m-%d").to_string(),
        }
    }
}

/// One bucket of a trend, starting at a local time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TrendRow {
    pub start: NaiveDateTime,
    pub sessions: u64,
    pub commands: u64,
    pub errors: u64,
    pub abandoned: u64,
}

/// Sessions started from `from` to `to` per bucket of local time in `tz`; every bucket of the
/// window is listed, empty ones too.
pub(crate) fn trend_rows<Tz: TimeZone>(
    sessions: &[Session],
    bucket: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: &Tz,
) -> Vec<TrendRow> {
    let local = |t: DateTime<Utc>| t.with_timezone(tz).naive_local();
    let mut rows: BTreeMap<NaiveDateTime, TrendRow> = BTreeMap::new();
    let last = bucket.start(local(to));
    let mut start = bucket.start(local(from));
    while start <= last {
        rows.insert(
            start,
            TrendRow {
                start,
                sessions: 0,
                commands: 0,
                errors: 0,
                abandoned: 0,
            },
        );
        start += bucket.step();
    }
    for s in sessions
        .iter()
        .filter(|s| s.started_at >= from && s.started_at <= to)
    {
        if let Some(r) = rows.get_mut(&bucket.start(local(s.started_at))) {
            r.sessions += 1;
            r.commands += s.command_count;
            r.errors += s.error_count;
            r.abandoned += u64::from(s.status == SessionStatus::Abandoned);
        }
    }
    rows.into_values().collect()
}

pub(super) fn render_trends(rows: &[TrendRow], bucket: Bucket, days: usize) -> String {
    let counts: Vec<f64> = rows.iter().map(|r| r.sessions as f64).collect();
    let total: u64 = rows.iter().map(|r| r.sessions).sum();
    let peak = rows
        .iter()
        .max_by(|a, b| a.sessions.cmp(&b.sessions).then(b.start.cmp(&a.start)));
    let mut out = format!(
        "Sessions per {} over the last {days} day{} (local time): {total} in all\n",
        bucket.name(),
        if days == 1 { "" } else { "s" }
    );
    let _ = writeln!(out, "  {}", text::sparkline(&counts));
    if let Some(p) = peak.filter(|p| p.sessions > 0) {
        let _ = writeln!(
            out,
            "  peak: {} with {} sessions",
            bucket.label(p.start),
            p.sessions
        );
    }
    out.push('\n');
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                bucket.label(r.start),
                r.sessions.to_string(),
                r.commands.to_string(),
                r.errors.to_string(),
                r.abandoned.to_string(),
            ]
        })
        .collect();
    out.push_str(&text::table(
        &["Bucket", "Sessions", "Commands", "Errors", "Abandoned"],
        &table_rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::testdata::*;

    #[test]
    fn trend_buckets_cover_the_window() {
        let mut s2 = abandoned("s-2", "a", 90, 1.0); // 13:30
        s2.command_count = 3;
        let sessions = vec![
            session("s-1", "a", 10, 1.0), // 12:10
            s2,
            session("s-3", "a", -24 * 60, 1.0), // the day before
            session("s-old", "a", -10 * 24 * 60, 1.0), // outside the window
        ];
        let now = at(150); // 14:30
        let hours = trend_rows(&sessions, Bucket::Hour, now - Duration::hours(3), now, &Utc);
        assert_eq!(
            hours
                .iter()
                .map(|r| (r.start.hour(), r.sessions))
                .collect::<Vec<_>>(),
            [(11, 0), (12, 1), (13, 1), (14, 0)]
        );
        assert_eq!((hours[2].commands, hours[2].abandoned), (3, 1));

        let days = trend_rows(&sessions, Bucket::Day, now - Duration::days(2), now, &Utc);
        assert_eq!(
            days.iter()
                .map(|r| (r.start.day(), r.sessions))
                .collect::<Vec<_>>(),
            [(4, 0), (5, 1), (6, 2)]
        );

        // 2026-02-06 is a Friday; weeks start on Mondays (2026-01-26, 2026-02-02).
        let weeks = trend_rows(&sessions, Bucket::Week, now - Duration::days(8), now, &Utc);
        assert_eq!(
            weeks
                .iter()
                .map(|r| (r.start.format("%Y-%m-%d").to_string(), r.sessions))
                .collect::<Vec<_>>(),
            [("2026-01-26".to_string(), 0), ("2026-02-02".to_string(), 3)]
        );

        let text = render_trends(&days, Bucket::Day, 2);
        assert!(
            text.starts_with(
                "Sessions per day over the last 2 days (local time): 3 in all\n  ▁▅█\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("peak: 2026-02-06 Fri with 2 sessions"),
            "{text}"
        );
    }
}
