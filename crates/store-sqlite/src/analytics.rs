//! Analytics on SQLite: one range scan of the covering index `sessions_analytics`
//! (`0003_analytics.sql`) per component and trend bucket, so no query touches the table rows
//! or sorts; the component list comes from a skip scan of the same index.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use crate::Result;
use crate::read::micros;
use session_buddy_store::analytics::{
    ActiveSession, ActiveSessions, AnalyticsWindow, ComponentSummary, most_frequent, project,
};

/// Every component with a session, in order: a skip scan (one index seek per component).
const COMPONENTS_SQL: &str = "WITH RECURSIVE c(name) AS (
    SELECT min(component) FROM sessions
    UNION ALL
    SELECT (SELECT min(component) FROM sessions WHERE component > c.name) FROM c WHERE c.name IS NOT NULL
)
SELECT name FROM c WHERE name IS NOT NULL";

/// One component's sessions started in `[?2, ?3)`.
const SUMMARY_SQL: &str = concat!(
    "SELECT count(*) AS sessions,
       coalesce(sum(status = 'active'), 0) AS active,
       count(duration_us) AS finished,
       total(duration_us) AS duration_us_total,
       coalesce(sum(",
    session_buddy_store::failed_session_sql!(),
    "), 0) AS failed,
       coalesce(sum(status = 'abandoned'), 0) AS abandoned,
       total(command_count) AS commands,
       total(error_count) AS failed_commands,
       max(started_at) AS last_started
FROM sessions
WHERE component = ?1 AND started_at >= ?2 AND started_at < ?3"
);

/// The errors of one component's failed commands in the window.
const COMMAND_ERRORS_SQL: &str = "SELECT coalesce(json_extract(e.payload, '$.error'),
                json_extract(e.payload, '$.command') || ' failed') AS error,
       count(*) AS n
FROM sessions s JOIN events e ON e.session_id = s.session_id
WHERE s.component = ?1 AND s.started_at >= ?2 AND s.started_at < ?3 AND s.error_count > 0
  AND e.event_type = 'command' AND json_extract(e.payload, '$.success') = 0
GROUP BY error";

/// Why one component's sessions without failed commands failed, in the window.
const SESSION_ERRORS_SQL: &str = concat!(
    "SELECT CASE WHEN status = 'abandoned'
                 THEN 'abandoned (' || coalesce(end_reason, 'heartbeat_timeout') || ')'
            WHEN signal IS NOT NULL THEN 'signal ' || signal
            WHEN coalesce(exit_code, 0) != 0 THEN 'exit code ' || exit_code
            ELSE 'ended with reason error' END AS error,
       count(*) AS n
FROM sessions
WHERE component = ?1 AND started_at >= ?2 AND started_at < ?3 AND error_count = 0 AND ",
    session_buddy_store::failed_session_sql!(),
    "
GROUP BY error"
);

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

pub(super) fn summary(conn: &Connection, w: &AnalyticsWindow) -> Result<Vec<ComponentSummary>> {
    // One snapshot for every statement.
    let tx = conn.unchecked_transaction()?;
    let buckets = w.buckets();
    let mut stmt = tx.prepare_cached(SUMMARY_SQL)?;
    let mut out = Vec::new();
    for component in components(&tx, w)? {
        let mut s = ComponentSummary {
            component: component.clone(),
            trend: Vec::with_capacity(buckets.len()),
            ..ComponentSummary::default()
        };
        let mut duration_us = 0.0;
        let mut last: Option<i64> = None;
        for (from, to) in &buckets {
            let row = stmt.query_row(params![component, from, to], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, f64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, f64>(6)?,
                    r.get::<_, f64>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                ))
            })?;
            let (n, active, finished, dur, failed, abandoned, commands, failed_commands, max) = row;
            s.sessions += count(n);
            s.active += count(active);
            s.finished += count(finished);
            duration_us += dur;
            s.failed += count(failed);
            s.abandoned += count(abandoned);
            s.commands += commands.max(0.0) as u64;
            s.failed_commands += failed_commands.max(0.0) as u64;
            last = last.max(max);
            s.trend.push(count(n));
        }
        if s.sessions == 0 {
            continue;
        }
        s.duration_seconds_total = duration_us / 1e6;
        s.last_started = last.map(micros);
        out.push(s);
    }
    Ok(out)
}

pub(super) fn common_errors(
    conn: &Connection,
    w: &AnalyticsWindow,
) -> Result<BTreeMap<String, String>> {
    let tx = conn.unchecked_transaction()?;
    let (since, until) = (w.since.timestamp_micros(), w.until.timestamp_micros());
    let mut commands = tx.prepare_cached(COMMAND_ERRORS_SQL)?;
    let mut sessions = tx.prepare_cached(SESSION_ERRORS_SQL)?;
    let mut out = BTreeMap::new();
    for component in components(&tx, w)? {
        let mut tally: BTreeMap<String, i64> = BTreeMap::new();
        for stmt in [&mut commands, &mut sessions] {
            let rows = stmt.query_map(params![component, since, until], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (error, n) = row?;
                *tally
                    .entry(error.unwrap_or_else(|| "failed".into()))
                    .or_default() += n;
            }
        }
        if let Some(error) = most_frequent(&tally) {
            out.insert(component, error);
        }
    }
    Ok(out)
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
                          -- run once per component and per day of the window (the trend),\n\
                          -- each a range scan of the covering index sessions_analytics.\n";
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
            "{components}{WINDOW}-- avg_duration = duration_us_total / finished / 1e6; \
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
             -- most_common_error: the most frequent of these two, summed.\n\
             {COMMAND_ERRORS_SQL};\n\n{SESSION_ERRORS_SQL};\n"
        ),
        _ => return None,
    })
}
