//! Session analytics: the original's numbers (`SessionAnalytics`, docs/api.md, "GET /v1/analytics"), computed from
//! per-component aggregates a backend returns ([`Store::analytics_summary`]), so every backend
//! gives the same answers.
//!
//! Definitions (the same everywhere: analytics, `session_end_total{status="error"}` and
//! `session_quality_score`):
//! - the window is the sessions **started** in `[since, until)`;
//! - a session has **failed** when any of its commands failed, it ended with a non-zero exit
//!   code, a signal or reason `error`, or it was abandoned;
//! - durations are those of sessions that are over (ended, or abandoned: start to last event).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::{ComponentQuality, Result, Store};

/// Which sessions an analytics query looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsWindow {
    /// Started at or after.
    pub since: DateTime<Utc>,
    /// Started before.
    pub until: DateTime<Utc>,
    /// One component only.
    pub component: Option<String>,
    /// Only these components (the caller's visibility, a component-bound `read` token);
    /// `None`: every component.
    pub components: Option<Vec<String>>,
}

impl AnalyticsWindow {
    /// The last `days` days before `now`.
    pub fn last_days(days: u32, now: DateTime<Utc>, component: Option<String>) -> Self {
        Self {
            since: now - TimeDelta::days(i64::from(days)),
            until: now,
            component,
            components: None,
        }
    }

    /// Whether `component` is one this window may show (its visibility restriction).
    pub fn shows(&self, component: &str) -> bool {
        self.components
            .as_ref()
            .is_none_or(|v| v.iter().any(|c| c == component))
    }

    /// The start of each trend bucket, oldest first, ending at `until`: one per day, or wider
    /// when the window spans more than [`MAX_BUCKETS`] days. The first bucket may be partial.
    pub fn buckets(&self) -> Vec<(i64, i64)> {
        let (since, until) = (self.since.timestamp_micros(), self.until.timestamp_micros());
        if until <= since {
            return Vec::new();
        }
        let span = until - since;
        let ceil_div = |a: i64, b: i64| (a + b - 1) / b;
        let count = ceil_div(span, DAY_US).clamp(1, MAX_BUCKETS);
        let width = ceil_div(span, count).max(DAY_US);
        let mut out = Vec::new();
        let mut end = until;
        while end > since {
            let start = (end - width).max(since);
            out.push((start, end));
            end = start;
        }
        out.reverse();
        out
    }
}

const DAY_US: i64 = 86_400_000_000;
/// Most trend buckets per query (a year of days).
pub const MAX_BUCKETS: i64 = 366;

/// What a backend aggregates per component over a window: everything the analytics need
/// except the most common error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentSummary {
    pub component: String,
    pub sessions: u64,
    /// Still active now.
    pub active: u64,
    /// Over (ended or abandoned), so with a duration.
    pub finished: u64,
    pub duration_seconds_total: f64,
    pub failed: u64,
    pub abandoned: u64,
    pub commands: u64,
    pub failed_commands: u64,
    /// The latest start in the window.
    pub last_started: Option<DateTime<Utc>>,
    /// Sessions started per trend bucket ([`AnalyticsWindow::buckets`]), oldest first.
    pub trend: Vec<u64>,
}

impl ComponentSummary {
    /// Failed sessions / all sessions × 100 (0 without sessions).
    pub fn error_rate(&self) -> f64 {
        percent(self.failed, self.sessions)
    }

    /// Mean duration of the sessions that are over; 0 when none is.
    pub fn avg_duration(&self) -> f64 {
        if self.finished == 0 {
            0.0
        } else {
            self.duration_seconds_total / self.finished as f64
        }
    }

    /// The quality score's inputs (ARCHITECTURE.md) over the window.
    pub fn quality(&self) -> ComponentQuality {
        ComponentQuality {
            sessions: self.sessions,
            ended: self.finished - self.abandoned.min(self.finished),
            failed_sessions: self.failed,
            abandoned: self.abandoned,
            commands: self.commands,
            failed_commands: self.failed_commands,
        }
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// One active session (`get_active_sessions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveSession {
    pub session_id: String,
    pub component_name: String,
    pub start_time: DateTime<Utc>,
    /// Now − start, whole seconds.
    pub duration_seconds: i64,
    /// `metadata.project`, else the last component of the session's working directory.
    pub project: String,
}

/// The newest active sessions and how many there are in all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActiveSessions {
    pub total: u64,
    pub active_sessions: Vec<ActiveSession>,
}

/// `SessionStats` (the original's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStats {
    pub component_name: String,
    pub total_sessions: u64,
    pub avg_duration: f64,
    pub active_sessions: u64,
    pub error_rate: f64,
    pub date_range: String,
}

/// `ComponentUsage` (the original's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentUsage {
    pub component_name: String,
    pub session_count: u64,
    pub total_duration: f64,
    pub avg_quality_score: f64,
    pub last_active: Option<DateTime<Utc>>,
}

/// One component of `get_session_error_rate` (the original's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRate {
    pub error_rate: f64,
    pub total_sessions: u64,
    pub failed_sessions: u64,
    pub most_common_error: Option<String>,
}

/// `session_stats`: per component, most sessions first.
pub fn session_stats(summaries: &[ComponentSummary], date_range: &str) -> Vec<SessionStats> {
    let mut out: Vec<SessionStats> = summaries
        .iter()
        .filter(|s| s.sessions > 0)
        .map(|s| SessionStats {
            component_name: s.component.clone(),
            total_sessions: s.sessions,
            avg_duration: s.avg_duration(),
            active_sessions: s.active,
            error_rate: s.error_rate(),
            date_range: date_range.to_string(),
        })
        .collect();
    out.sort_by(|a, b| {
        b.total_sessions
            .cmp(&a.total_sessions)
            .then_with(|| a.component_name.cmp(&b.component_name))
    });
    out
}

/// `average_duration`: component → mean seconds of its sessions that are over.
pub fn average_duration(summaries: &[ComponentSummary]) -> BTreeMap<String, f64> {
    summaries
        .iter()
        .filter(|s| s.finished > 0)
        .map(|s| (s.component.clone(), s.avg_duration()))
        .collect()
}

/// `most_active`: the `limit` components with most sessions.
pub fn component_usage(summaries: &[ComponentSummary], limit: usize) -> Vec<ComponentUsage> {
    let mut out: Vec<ComponentUsage> = summaries
        .iter()
        .filter(|s| s.sessions > 0)
        .map(|s| ComponentUsage {
            component_name: s.component.clone(),
            session_count: s.sessions,
            total_duration: s.duration_seconds_total,
            avg_quality_score: s.quality().score(),
            last_active: s.last_started,
        })
        .collect();
    out.sort_by(|a, b| {
        b.session_count
            .cmp(&a.session_count)
            .then_with(|| a.component_name.cmp(&b.component_name))
    });
    out.truncate(limit);
    out
}

/// `error_rate`: component → its error rate and most common error.
pub fn error_rates(
    summaries: &[ComponentSummary],
    common_errors: &BTreeMap<String, String>,
) -> BTreeMap<String, ErrorRate> {
    summaries
        .iter()
        .filter(|s| s.sessions > 0)
        .map(|s| {
            (
                s.component.clone(),
                ErrorRate {
                    error_rate: s.error_rate(),
                    total_sessions: s.sessions,
                    failed_sessions: s.failed,
                    most_common_error: common_errors.get(&s.component).cloned(),
                },
            )
        })
        .collect()
}

/// Sessions started per trend bucket, all components together.
pub fn trend(summaries: &[ComponentSummary]) -> Vec<u64> {
    let len = summaries.iter().map(|s| s.trend.len()).max().unwrap_or(0);
    let mut out = vec![0; len];
    for s in summaries {
        for (slot, n) in out.iter_mut().zip(&s.trend) {
            *slot += n;
        }
    }
    out
}

/// The full report (`report`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub date_range: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub session_stats: Vec<SessionStats>,
    pub average_duration: BTreeMap<String, f64>,
    pub components: Vec<ComponentUsage>,
    pub error_rates: BTreeMap<String, ErrorRate>,
    pub active_sessions: u64,
    /// Sessions started per day (or wider bucket) of the window, oldest first.
    pub trend: Vec<u64>,
}

/// The whole report over `window`, as of `now`.
pub async fn report(
    store: &dyn Store,
    window: &AnalyticsWindow,
    date_range: &str,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<Report> {
    let summaries = store.analytics_summary(window.clone()).await?;
    let common = store.analytics_common_errors(window.clone()).await?;
    let active = store
        .analytics_active(window.component.clone(), window.components.clone(), 1, now)
        .await?;
    Ok(Report {
        date_range: date_range.to_string(),
        since: window.since,
        until: window.until,
        generated_at: now,
        session_stats: session_stats(&summaries, date_range),
        average_duration: average_duration(&summaries),
        components: component_usage(&summaries, limit),
        error_rates: error_rates(&summaries, &common),
        active_sessions: active.total,
        trend: trend(&summaries),
    })
}

/// The names `analytics sql` knows (the original's `export_sql`).
pub const SQL_QUERY_NAMES: [&str; 5] = [
    "active_sessions",
    "session_stats",
    "average_duration",
    "most_active",
    "error_rate",
];

/// The parameterised SQL (SQLite) a named analytics query runs, with its parameters described.
/// An active session's `project`: `metadata.project`, else the last component of the
/// working directory.
pub fn project(cwd: &str, from_metadata: Option<String>) -> String {
    if let Some(p) = from_metadata.filter(|p| !p.is_empty()) {
        return p;
    }
    let trimmed = cwd.trim_end_matches(['/', '\\']);
    trimmed
        .rsplit(['/', '\\'])
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(cwd)
        .to_string()
}

/// The most frequent error of a tally; on a tie the first alphabetically.
pub fn most_frequent(tally: &BTreeMap<String, i64>) -> Option<String> {
    let mut best: Option<(&String, i64)> = None;
    for (error, n) in tally {
        if best.is_none_or(|(_, m)| *n > m) {
            best = Some((error, *n));
        }
    }
    best.map(|(e, _)| e.clone())
}

/// Width of a rollup bucket: the sessions of one component started in one hour (µs).
///
/// Both backends keep, per component and hour of `started_at`, the integer sums the analytics
/// read (`rollup_hours`) and the count of each error (`rollup_errors`), and a set of hours
/// whose rollup is out of date (`rollup_dirty`): a trigger on `sessions` marks the hour of every
/// row inserted, updated or deleted, so every way a session changes (start, commands, end,
/// late end, reap, revival, retention, erasure, import) is followed without a second rule in
/// the ingest code. A maintenance step ([`Store::refresh_rollups`]) recomputes marked hours
/// that are over from the sessions and clears their marks; until then a query reads those
/// hours from the sessions, as it reads the partial hours at a window's edges. So a query's
/// numbers are the full computation's, whatever has been refreshed. Opening a store builds
/// nothing (a migrated database has every hour marked): the server's maintenance task
/// ([`ROLLUP_REFRESH_BATCH`] hours at a time, from its start) does, while it serves.
pub const ROLLUP_US: i64 = 3_600_000_000;

/// The rollup hour of a start (µs since the epoch): rounded down. The migrations' triggers
/// compute the same with `(started_at - ((started_at % 3600000000) + 3600000000) % 3600000000)
/// / 3600000000`.
pub fn rollup_hour(started_us: i64) -> i64 {
    started_us.div_euclid(ROLLUP_US)
}

/// How the part `[from, to)` (µs) of a window is computed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupPlan {
    /// Runs of whole hours `[lo, hi)` (hour numbers) read from the rollup.
    pub hours: Vec<(i64, i64)>,
    /// Ranges of starts `[lo, hi)` (µs) read from the sessions: the partial hours at the edges
    /// and the whole hours marked out of date.
    pub base: Vec<(i64, i64)>,
}

/// The plan for `[from, to)` given the hours marked out of date (`dirty`, hour numbers).
pub fn rollup_plan(from: i64, to: i64, dirty: &std::collections::BTreeSet<i64>) -> RollupPlan {
    let mut plan = RollupPlan::default();
    if to <= from {
        return plan;
    }
    let first = from.div_euclid(ROLLUP_US) + i64::from(from.rem_euclid(ROLLUP_US) != 0);
    let last = to.div_euclid(ROLLUP_US);
    let base = |lo: i64, hi: i64, plan: &mut RollupPlan| {
        if lo >= hi {
            return;
        }
        match plan.base.last_mut() {
            Some(prev) if prev.1 == lo => prev.1 = hi,
            _ => plan.base.push((lo, hi)),
        }
    };
    if first >= last {
        base(from, to, &mut plan);
        return plan;
    }
    base(from, first * ROLLUP_US, &mut plan);
    let mut run_start = first;
    for &h in dirty.range(first..last) {
        if run_start < h {
            plan.hours.push((run_start, h));
        }
        base(h * ROLLUP_US, (h + 1) * ROLLUP_US, &mut plan);
        run_start = h + 1;
    }
    if run_start < last {
        plan.hours.push((run_start, last));
    }
    base(last * ROLLUP_US, to, &mut plan);
    plan
}

/// The integer sums of one component's sessions over some starts: what a rollup hour holds and
/// what a base range yields, in the columns' order of the backends' queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupSums {
    pub sessions: i64,
    pub active: i64,
    pub finished: i64,
    pub duration_us: i64,
    pub failed: i64,
    pub abandoned: i64,
    pub commands: i64,
    pub failed_commands: i64,
    pub last_started: Option<i64>,
}

impl RollupSums {
    pub fn add(&mut self, o: &RollupSums) {
        self.sessions += o.sessions;
        self.active += o.active;
        self.finished += o.finished;
        self.duration_us += o.duration_us;
        self.failed += o.failed;
        self.abandoned += o.abandoned;
        self.commands += o.commands;
        self.failed_commands += o.failed_commands;
        self.last_started = self.last_started.max(o.last_started);
    }

    /// Folds one trend bucket's sums into `s` (its trend gets the bucket's sessions).
    pub fn fold_into(
        &self,
        s: &mut ComponentSummary,
        duration_us: &mut i64,
        last: &mut Option<i64>,
    ) {
        let n = self.sessions.max(0) as u64;
        s.sessions += n;
        s.active += self.active.max(0) as u64;
        s.finished += self.finished.max(0) as u64;
        *duration_us += self.duration_us;
        s.failed += self.failed.max(0) as u64;
        s.abandoned += self.abandoned.max(0) as u64;
        s.commands += self.commands.max(0) as u64;
        s.failed_commands += self.failed_commands.max(0) as u64;
        *last = (*last).max(self.last_started);
        s.trend.push(n);
    }
}

/// How many marked hours one [`Store::refresh_rollups`] call recomputes at most.
pub const ROLLUP_REFRESH_BATCH: usize = 200;

#[cfg(test)]
mod tests {
    #[test]
    fn project_is_metadata_or_the_last_directory() {
        assert_eq!(super::project("/home/ann/src/oneiric/", None), "oneiric");
        assert_eq!(super::project("/srv", Some("web".into())), "web");
        assert_eq!(super::project("/", None), "/");
        assert_eq!(super::project("C:\\work\\x", None), "x");
    }

    #[test]
    fn the_most_frequent_error_wins_and_ties_go_alphabetically() {
        let tally = std::collections::BTreeMap::from([
            ("b".to_string(), 2),
            ("a".to_string(), 2),
            ("c".to_string(), 1),
        ]);
        assert_eq!(super::most_frequent(&tally).as_deref(), Some("a"));
        assert_eq!(super::most_frequent(&Default::default()), None);
    }

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn buckets_are_days_ending_at_until() {
        let w = AnalyticsWindow {
            since: at("2026-03-01T12:00:00Z"),
            until: at("2026-03-04T00:00:00Z"),
            component: None,
            components: None,
        };
        let b = w.buckets();
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].0, w.since.timestamp_micros());
        assert_eq!(b[0].1, at("2026-03-02T00:00:00Z").timestamp_micros());
        assert_eq!(b[2].1, w.until.timestamp_micros());
        let long = AnalyticsWindow {
            since: at("2020-01-01T00:00:00Z"),
            until: at("2026-01-01T00:00:00Z"),
            component: None,
            components: None,
        };
        assert!(long.buckets().len() as i64 <= MAX_BUCKETS);
        assert_eq!(long.buckets()[0].0, long.since.timestamp_micros());
    }

    #[test]
    fn shapes_from_summaries() {
        let s = |c: &str, sessions, failed, finished, total| ComponentSummary {
            component: c.into(),
            sessions,
            failed,
            finished,
            duration_seconds_total: total,
            ..ComponentSummary::default()
        };
        let sums = vec![
            s("b", 4, 1, 2, 100.0),
            s("a", 4, 0, 0, 0.0),
            s("c", 0, 0, 0, 0.0),
        ];
        let stats = session_stats(&sums, "Last 7 days");
        assert_eq!(
            stats
                .iter()
                .map(|s| s.component_name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(stats[1].error_rate, 25.0);
        assert_eq!(stats[1].avg_duration, 50.0);
        assert_eq!(stats[0].avg_duration, 0.0);
        assert_eq!(average_duration(&sums), [("b".to_string(), 50.0)].into());
        assert_eq!(component_usage(&sums, 1).len(), 1);
    }

    #[test]
    fn a_rollup_plan_covers_the_range_once() {
        use std::collections::BTreeSet;
        let h = ROLLUP_US;
        // Inside one hour: all from the sessions.
        assert_eq!(rollup_plan(10, 20, &BTreeSet::new()).base, vec![(10, 20)]);
        // Partial edges, whole hours between, a dirty hour split out.
        let p = rollup_plan(h / 2, 5 * h + 7, &BTreeSet::from([3, 9]));
        assert_eq!(p.hours, vec![(1, 3), (4, 5)]);
        assert_eq!(p.base, vec![(h / 2, h), (3 * h, 4 * h), (5 * h, 5 * h + 7)]);
        // Aligned edges, every hour dirty: one base range.
        let p = rollup_plan(2 * h, 4 * h, &BTreeSet::from([2, 3]));
        assert!(p.hours.is_empty());
        assert_eq!(p.base, vec![(2 * h, 4 * h)]);
        // Every start falls in exactly one piece, for ranges around zero too.
        for (from, to) in [(-3 * h - 5, 2 * h + 9), (0, h), (-h, 0), (7, 3 * h)] {
            let p = rollup_plan(from, to, &BTreeSet::from([-1, 1]));
            for t in [from, from + 1, -1, 0, 1, h - 1, h, 2 * h, to - 1] {
                if t < from || t >= to {
                    continue;
                }
                let in_hours = p
                    .hours
                    .iter()
                    .filter(|(lo, hi)| (*lo..*hi).contains(&rollup_hour(t)))
                    .count();
                let in_base = p
                    .base
                    .iter()
                    .filter(|(lo, hi)| (*lo..*hi).contains(&t))
                    .count();
                assert_eq!(in_hours + in_base, 1, "{t} in [{from}, {to})");
            }
        }
        assert_eq!(rollup_hour(-1), -1);
        assert_eq!(rollup_hour(h), 1);
    }
}
