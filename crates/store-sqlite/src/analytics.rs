//! Analytics on SQLite: one range scan of the covering index `sessions_analytics`
//! (`0003_analytics.sql`) per component and trend bucket, so no query touches the table rows
//! or sorts; the component list comes from a skip scan of the same index.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use crate::Result;
use crate::read::micros;
use session_buddy_store::analytics::{
    ActiveSession, ActiveSessions, AnalyticsWindow, ComponentSummary, ROLLUP_US, RollupSums,
    most_frequent, project, rollup_hour, rollup_plan,
};

/// Every component with a session, in order: a skip scan (one index seek per component).
const COMPONENTS_SQL: &str = "WITH RECURSIVE c(name) AS (
    SELECT min(component) FROM sessions
    UNION ALL
    SELECT (SELECT min(component) FROM sessions WHERE component > c.name) FROM c WHERE c.name IS NOT NULL
)
SELECT name FROM c WHERE name IS NOT NULL";

/// The integer sums of one component's sessions in a range of starts (the columns of
/// [`RollupSums`], in order): the base query and what a rollup hour is built from.
macro_rules! sums_sql {
    () => {
        concat!(
            "count(*), coalesce(sum(status = 'active'), 0), count(duration_us),
       coalesce(sum(duration_us), 0), coalesce(sum(",
            session_buddy_store::failed_session_sql!(),
            "), 0), coalesce(sum(status = 'abandoned'), 0), coalesce(sum(command_count), 0),
       coalesce(sum(error_count), 0), max(started_at)"
        )
    };
}

/// One component's sessions started in `[?2, ?3)`.
const SUMMARY_SQL: &str = concat!(
    "SELECT ",
    sums_sql!(),
    "\nFROM sessions\nWHERE component = ?1 AND started_at >= ?2 AND started_at < ?3"
);

/// One component's rollup hours `[?2, ?3)`, summed (the same columns as [`SUMMARY_SQL`]).
const ROLLUP_SUMMARY_SQL: &str = "SELECT coalesce(sum(sessions), 0), coalesce(sum(active), 0),
       coalesce(sum(finished), 0), coalesce(sum(duration_us), 0), coalesce(sum(failed), 0),
       coalesce(sum(abandoned), 0), coalesce(sum(commands), 0), coalesce(sum(failed_commands), 0),
       max(last_started)
FROM rollup_hours WHERE component = ?1 AND hour >= ?2 AND hour < ?3";

/// One component's hours `[?2, ?3)` whose rollup is out of date.
const DIRTY_SQL: &str =
    "SELECT hour FROM rollup_dirty WHERE component = ?1 AND hour >= ?2 AND hour < ?3";

/// The errors of one component's failed commands, started in `[?2, ?3)`.
const COMMAND_ERRORS_SQL: &str = "SELECT coalesce(json_extract(e.payload, '$.error'),
                json_extract(e.payload, '$.command') || ' failed', 'failed') AS error,
       count(*) AS n
FROM sessions s JOIN events e ON e.session_id = s.session_id
WHERE s.component = ?1 AND s.started_at >= ?2 AND s.started_at < ?3 AND s.error_count > 0
  AND e.event_type = 'command' AND json_extract(e.payload, '$.success') = 0
GROUP BY error";

/// Why one component's sessions without failed commands failed, started in `[?2, ?3)`.
const SESSION_ERRORS_SQL: &str = concat!(
    "SELECT ",
    session_buddy_store::session_error_sql!(),
    " AS error, count(*) AS n
FROM sessions
WHERE component = ?1 AND started_at >= ?2 AND started_at < ?3 AND error_count = 0 AND ",
    session_buddy_store::failed_session_sql!(),
    "
GROUP BY error"
);

/// One component's error counts over its rollup hours `[?2, ?3)`.
const ROLLUP_ERRORS_SQL: &str = "SELECT error, sum(n) FROM rollup_errors
WHERE component = ?1 AND hour >= ?2 AND hour < ?3 GROUP BY error";

const ACTIVE_COUNT_SQL: &str = "SELECT count(*) FROM sessions WHERE status = 'active'";
const ACTIVE_COUNT_COMPONENT_SQL: &str =
    "SELECT count(*) FROM sessions WHERE status = 'active' AND component = ?1";
/// The active sessions of the visible components (`?1`: a JSON array of names).
const ACTIVE_COUNT_VISIBLE_SQL: &str = "SELECT count(*) FROM sessions WHERE status = 'active'
     AND component IN (SELECT value FROM json_each(?1))";

/// The newest active sessions (`?1` = component or NULL, `?2` = limit, `?3` = the visible
/// components as a JSON array, or NULL for every one).
const ACTIVE_SQL: &str = "SELECT session_id, component, started_at, cwd,
       CASE WHEN json_type(metadata, '$.project') = 'text'
            THEN json_extract(metadata, '$.project') END AS project
FROM sessions
WHERE status = 'active' AND (?1 IS NULL OR component = ?1)
  AND (?3 IS NULL OR component IN (SELECT value FROM json_each(?3)))
ORDER BY started_at DESC, session_id DESC
LIMIT ?2";

/// The components to look at: the one asked for, or every one, of those the window may show.
fn components(conn: &Connection, w: &AnalyticsWindow) -> Result<Vec<String>> {
    if let Some(c) = &w.component {
        return Ok(if w.shows(c) {
            vec![c.clone()]
        } else {
            Vec::new()
        });
    }
    if let Some(visible) = &w.components {
        return Ok(visible.clone());
    }
    let mut stmt = conn.prepare_cached(COMPONENTS_SQL)?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

fn count(v: i64) -> u64 {
    v.max(0) as u64
}

fn sums(r: &rusqlite::Row<'_>) -> rusqlite::Result<RollupSums> {
    Ok(RollupSums {
        sessions: r.get(0)?,
        active: r.get(1)?,
        finished: r.get(2)?,
        duration_us: r.get(3)?,
        failed: r.get(4)?,
        abandoned: r.get(5)?,
        commands: r.get(6)?,
        failed_commands: r.get(7)?,
        last_started: r.get(8)?,
    })
}

/// The hours of `component` in the window `[since, until)` whose rollup is out of date.
fn dirty_hours(
    conn: &Connection,
    component: &str,
    since: i64,
    until: i64,
) -> Result<BTreeSet<i64>> {
    let mut stmt = conn.prepare_cached(DIRTY_SQL)?;
    let hours = stmt
        .query_map(
            params![component, rollup_hour(since), rollup_hour(until) + 1],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(hours)
}

/// One component's sums over `[from, to)`: whole hours from the rollup, the rest from the
/// sessions ([`rollup_plan`]).
fn range_sums(
    conn: &Connection,
    component: &str,
    (from, to): (i64, i64),
    dirty: &BTreeSet<i64>,
) -> Result<RollupSums> {
    let plan = rollup_plan(from, to, dirty);
    let mut total = RollupSums::default();
    let mut rolled = conn.prepare_cached(ROLLUP_SUMMARY_SQL)?;
    for (lo, hi) in &plan.hours {
        total.add(&rolled.query_row(params![component, lo, hi], sums)?);
    }
    let mut base = conn.prepare_cached(SUMMARY_SQL)?;
    for (lo, hi) in &plan.base {
        total.add(&base.query_row(params![component, lo, hi], sums)?);
    }
    Ok(total)
}

pub(super) fn summary(conn: &Connection, w: &AnalyticsWindow) -> Result<Vec<ComponentSummary>> {
    // One snapshot for every statement.
    let tx = conn.unchecked_transaction()?;
    let buckets = w.buckets();
    let (since, until) = (w.since.timestamp_micros(), w.until.timestamp_micros());
    let mut out = Vec::new();
    for component in components(&tx, w)? {
        let dirty = dirty_hours(&tx, &component, since, until)?;
        let mut s = ComponentSummary {
            component: component.clone(),
            trend: Vec::with_capacity(buckets.len()),
            ..ComponentSummary::default()
        };
        let (mut duration_us, mut last) = (0i64, None);
        for bucket in &buckets {
            range_sums(&tx, &component, *bucket, &dirty)?.fold_into(
                &mut s,
                &mut duration_us,
                &mut last,
            );
        }
        if s.sessions == 0 {
            continue;
        }
        s.duration_seconds_total = duration_us as f64 / 1e6;
        s.last_started = last.map(micros);
        out.push(s);
    }
    Ok(out)
}

/// Adds the errors of `component`'s sessions started in `[lo, hi)` to `tally`.
fn tally_base_errors(
    conn: &Connection,
    component: &str,
    (lo, hi): (i64, i64),
    tally: &mut BTreeMap<String, i64>,
) -> Result<()> {
    for sql in [COMMAND_ERRORS_SQL, SESSION_ERRORS_SQL] {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![component, lo, hi], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (error, n) = row?;
            *tally.entry(error).or_default() += n;
        }
    }
    Ok(())
}

pub(super) fn common_errors(
    conn: &Connection,
    w: &AnalyticsWindow,
) -> Result<BTreeMap<String, String>> {
    let tx = conn.unchecked_transaction()?;
    let (since, until) = (w.since.timestamp_micros(), w.until.timestamp_micros());
    let mut out = BTreeMap::new();
    for component in components(&tx, w)? {
        let dirty = dirty_hours(&tx, &component, since, until)?;
        let plan = rollup_plan(since, until, &dirty);
        let mut tally: BTreeMap<String, i64> = BTreeMap::new();
        let mut rolled = tx.prepare_cached(ROLLUP_ERRORS_SQL)?;
        for (lo, hi) in &plan.hours {
            let rows = rolled.query_map(params![component, lo, hi], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (error, n) = row?;
                *tally.entry(error).or_default() += n;
            }
        }
        for range in &plan.base {
            tally_base_errors(&tx, &component, *range, &mut tally)?;
        }
        if let Some(error) = most_frequent(&tally) {
            out.insert(component, error);
        }
    }
    Ok(out)
}

/// Recomputes at most `batch` of the out-of-date rollup hours that end before `before_hour`
/// (hour number), oldest first, from the sessions, and clears their marks; returns how many.
/// A job of the writer thread, so no write comes between the computation and the clearing.
pub(crate) fn refresh_rollups(
    conn: &mut Connection,
    before_hour: i64,
    batch: usize,
) -> Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let hours: Vec<(String, i64)> = tx
        .prepare_cached(
            "SELECT component, hour FROM rollup_dirty WHERE hour < ?1 ORDER BY hour LIMIT ?2",
        )?
        .query_map(
            params![before_hour, batch.min(i64::MAX as usize) as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    for (component, hour) in &hours {
        let range = (hour * ROLLUP_US, (hour + 1) * ROLLUP_US);
        let s = tx
            .prepare_cached(SUMMARY_SQL)?
            .query_row(params![component, range.0, range.1], sums)?;
        tx.prepare_cached("DELETE FROM rollup_hours WHERE component = ?1 AND hour = ?2")?
            .execute(params![component, hour])?;
        tx.prepare_cached("DELETE FROM rollup_errors WHERE component = ?1 AND hour = ?2")?
            .execute(params![component, hour])?;
        if s.sessions > 0 {
            tx.prepare_cached(
                "INSERT INTO rollup_hours (component, hour, sessions, active, finished,
                   duration_us, failed, abandoned, commands, failed_commands, last_started)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                component,
                hour,
                s.sessions,
                s.active,
                s.finished,
                s.duration_us,
                s.failed,
                s.abandoned,
                s.commands,
                s.failed_commands,
                s.last_started
            ])?;
            let mut tally = BTreeMap::new();
            tally_base_errors(&tx, component, range, &mut tally)?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO rollup_errors (component, hour, error, n) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (error, n) in tally {
                insert.execute(params![component, hour, error, n])?;
            }
        }
        tx.prepare_cached("DELETE FROM rollup_dirty WHERE component = ?1 AND hour = ?2")?
            .execute(params![component, hour])?;
    }
    tx.commit()?;
    Ok(hours.len())
}

pub(super) fn active(
    conn: &Connection,
    component: Option<&str>,
    components: Option<&[String]>,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<ActiveSessions> {
    let tx = conn.unchecked_transaction()?;
    let visible = crate::read::visible_param(components);
    let total: i64 = match (component, &visible) {
        (Some(c), _) if components.is_some_and(|v| !v.iter().any(|x| x == c)) => 0,
        (Some(c), _) => tx
            .prepare_cached(ACTIVE_COUNT_COMPONENT_SQL)?
            .query_row([c], |r| r.get(0))?,
        (None, Some(v)) => tx
            .prepare_cached(ACTIVE_COUNT_VISIBLE_SQL)?
            .query_row([v], |r| r.get(0))?,
        (None, None) => tx
            .prepare_cached(ACTIVE_COUNT_SQL)?
            .query_row([], |r| r.get(0))?,
    };
    let now_us = now.timestamp_micros();
    let mut stmt = tx.prepare_cached(ACTIVE_SQL)?;
    let rows = stmt.query_map(params![component, limit as i64, visible], |r| {
        let started: i64 = r.get(2)?;
        let cwd: String = r.get(3)?;
        Ok(ActiveSession {
            session_id: r.get(0)?,
            component_name: r.get(1)?,
            start_time: micros(started),
            duration_seconds: (now_us - started).max(0) / 1_000_000,
            project: project(&cwd, r.get(4)?),
        })
    })?;
    Ok(ActiveSessions {
        total: count(total),
        active_sessions: rows.collect::<rusqlite::Result<_>>()?,
    })
}

/// The SQL behind `analytics sql NAME`, with how it is run.
pub fn analytics_sql(name: &str) -> Option<String> {
    const WINDOW: &str = "-- ?1 = component, ?2 = since, ?3 = until (µs since the Unix epoch, UTC):\n\
                          -- per component and per day of the window (the trend), the whole hours\n\
                          -- whose rollup is up to date (not in rollup_dirty) are summed from\n\
                          -- rollup_hours (?2, ?3 = hour numbers), the partial hours at the edges\n\
                          -- and the out-of-date hours by the query over the sessions after it.\n";
    let components = format!(
        "-- The components (without --component): a skip scan of the index.\n{COMPONENTS_SQL};\n\n"
    );
    Some(match name {
        "active_sessions" => format!(
            "-- ?1 = component or NULL, ?2 = limit, ?3 = the caller's visible components (a JSON \
             array) or NULL; duration_seconds = now - started_at.\n\
             {ACTIVE_SQL};\n"
        ),
        "session_stats" => format!(
            "{components}{WINDOW}{DIRTY_SQL};\n\n{ROLLUP_SUMMARY_SQL};\n\n\
             -- avg_duration = duration_us_total / finished / 1e6; \
             error_rate = failed / sessions * 100.\n{SUMMARY_SQL};\n"
        ),
        "average_duration" => format!(
            "{components}{WINDOW}-- average = duration_us_total / finished / 1e6 \
             (components with finished > 0).\n{SUMMARY_SQL};\n"
        ),
        "most_active" => format!(
            "{components}{WINDOW}-- ordered by sessions, then name; LIMIT applied to the result \
             (default 10); avg_quality_score from the session and command counts.\n{SUMMARY_SQL};\n"
        ),
        "error_rate" => format!(
            "{components}{WINDOW}{SUMMARY_SQL};\n\n\
             -- most_common_error: the most frequent of the rollup's counts over the whole\n\
             -- hours and these two over the rest, summed.\n\
             {ROLLUP_ERRORS_SQL};\n\n{COMMAND_ERRORS_SQL};\n\n{SESSION_ERRORS_SQL};\n"
        ),
        _ => return None,
    })
}
