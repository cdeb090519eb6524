//! Analytics on PostgreSQL: the same numbers as the SQLite backend (its definitions are in
//! `session_buddy_store::analytics`), each in one statement grouped by component and trend
//! bucket.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use session_buddy_store::analytics::{ActiveSession, most_frequent, project};
use session_buddy_store::{ActiveSessions, AnalyticsWindow, ComponentSummary};
use tokio_postgres::IsolationLevel;

use crate::{PgError, micros};

/// Per component and bucket (`$1`/`$2` the bucket bounds, `$3` the component or NULL, `$4`
/// the visible components or NULL).
const SUMMARY_SQL: &str = concat!(
    "SELECT s.component, b.i,
       count(*),
       count(*) FILTER (WHERE status = 'active'),
       count(duration_us),
       coalesce(sum(duration_us), 0)::FLOAT8,
       count(*) FILTER (WHERE ",
    session_buddy_store::failed_session_sql!(),
    "),
       count(*) FILTER (WHERE status = 'abandoned'),
       coalesce(sum(command_count), 0)::FLOAT8,
       coalesce(sum(error_count), 0)::FLOAT8,
       max(started_at)
FROM unnest($1::int8[], $2::int8[]) WITH ORDINALITY AS b(lo, hi, i)
JOIN sessions s ON s.started_at >= b.lo AND s.started_at < b.hi
WHERE ($3::text IS NULL OR s.component = $3)
  AND ($4::text[] IS NULL OR s.component = ANY($4::text[]))
GROUP BY s.component, b.i"
);

/// The errors of failed commands in the window.
const COMMAND_ERRORS_SQL: &str = "SELECT s.component,
       coalesce(e.payload::jsonb ->> 'error', (e.payload::jsonb ->> 'command') || ' failed'),
       count(*)
FROM sessions s JOIN events e ON e.session_id = s.session_id
WHERE ($1::text IS NULL OR s.component = $1) AND s.started_at >= $2 AND s.started_at < $3
  AND ($4::text[] IS NULL OR s.component = ANY($4::text[]))
  AND s.error_count > 0
  AND e.event_type = 'command' AND e.payload::jsonb -> 'success' = 'false'::jsonb
GROUP BY 1, 2";

/// Why sessions without failed commands failed, in the window.
const SESSION_ERRORS_SQL: &str = concat!(
    "SELECT component,
       CASE WHEN status = 'abandoned'
                 THEN 'abandoned (' || coalesce(end_reason, 'heartbeat_timeout') || ')'
            WHEN signal IS NOT NULL THEN 'signal ' || signal
            WHEN coalesce(exit_code, 0) != 0 THEN 'exit code ' || exit_code
            ELSE 'ended with reason error' END,
       count(*)
FROM sessions
WHERE ($1::text IS NULL OR component = $1) AND started_at >= $2 AND started_at < $3
  AND ($4::text[] IS NULL OR component = ANY($4::text[]))
  AND error_count = 0 AND ",
    session_buddy_store::failed_session_sql!(),
    "
GROUP BY 1, 2"
);

fn count(v: i64) -> u64 {
    v.max(0) as u64
}

pub(crate) async fn summary(
    conn: &mut Object,
    w: &AnalyticsWindow,
) -> Result<Vec<ComponentSummary>, PgError> {
    let buckets = w.buckets();
    let (lo, hi): (Vec<i64>, Vec<i64>) = buckets.iter().copied().unzip();
    let stmt = conn.prepare_cached(SUMMARY_SQL).await?;
    let rows = conn
        .query(&stmt, &[&lo, &hi, &w.component, &w.components])
        .await?;
    let mut by_component: BTreeMap<String, (ComponentSummary, f64, Option<i64>)> = BTreeMap::new();
    for r in &rows {
        let component: String = r.get(0);
        let bucket = usize::try_from(r.get::<_, i64>(1) - 1).unwrap_or(0);
        let (s, duration_us, last) = by_component.entry(component.clone()).or_insert_with(|| {
            (
                ComponentSummary {
                    component,
                    trend: vec![0; buckets.len()],
                    ..ComponentSummary::default()
                },
                0.0,
                None,
            )
        });
        let n = count(r.get(2));
        s.sessions += n;
        s.active += count(r.get(3));
        s.finished += count(r.get(4));
        *duration_us += r.get::<_, f64>(5);
        s.failed += count(r.get(6));
        s.abandoned += count(r.get(7));
        s.commands += r.get::<_, f64>(8).max(0.0) as u64;
        s.failed_commands += r.get::<_, f64>(9).max(0.0) as u64;
        *last = (*last).max(r.get::<_, Option<i64>>(10));
        if let Some(slot) = s.trend.get_mut(bucket) {
            *slot += n;
        }
    }
    Ok(by_component
        .into_values()
        .filter(|(s, _, _)| s.sessions > 0)
        .map(|(mut s, duration_us, last)| {
            s.duration_seconds_total = duration_us / 1e6;
            s.last_started = last.map(micros);
            s
        })
        .collect())
}

pub(crate) async fn common_errors(
    conn: &mut Object,
    w: &AnalyticsWindow,
) -> Result<BTreeMap<String, String>, PgError> {
    let (since, until) = (w.since.timestamp_micros(), w.until.timestamp_micros());
    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let mut tally: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for sql in [COMMAND_ERRORS_SQL, SESSION_ERRORS_SQL] {
        let stmt = tx.prepare_cached(sql).await?;
        for r in tx
            .query(&stmt, &[&w.component, &since, &until, &w.components])
            .await?
        {
            let error: Option<String> = r.get(1);
            *tally
                .entry(r.get(0))
                .or_default()
                .entry(error.unwrap_or_else(|| "failed".into()))
                .or_default() += r.get::<_, i64>(2);
        }
    }
    tx.commit().await?;
    let mut out = BTreeMap::new();
    for (component, errors) in tally {
        if let Some(error) = most_frequent(&errors) {
            out.insert(component, error);
        }
    }
    Ok(out)
}

pub(crate) async fn active(
    conn: &mut Object,
    component: Option<&str>,
    components: Option<&[String]>,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<ActiveSessions, PgError> {
    let visible: Option<Vec<String>> = components.map(<[String]>::to_vec);
    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let total_stmt = tx
        .prepare_cached(
            "SELECT count(*) FROM sessions
             WHERE status = 'active' AND ($1::text IS NULL OR component = $1)
               AND ($2::text[] IS NULL OR component = ANY($2::text[]))",
        )
        .await?;
    let total: i64 = tx
        .query_one(&total_stmt, &[&component, &visible])
        .await?
        .get(0);
    let stmt = tx
        .prepare_cached(
            "SELECT session_id, component, started_at, cwd,
                    CASE WHEN jsonb_typeof(metadata::jsonb -> 'project') = 'string'
                         THEN metadata::jsonb ->> 'project' END
             FROM sessions
             WHERE status = 'active' AND ($1::text IS NULL OR component = $1)
               AND ($3::text[] IS NULL OR component = ANY($3::text[]))
             ORDER BY started_at DESC, session_id DESC
             LIMIT $2",
        )
        .await?;
    let now_us = now.timestamp_micros();
    let rows = tx
        .query(&stmt, &[&component, &(limit as i64), &visible])
        .await?;
    tx.commit().await?;
    Ok(ActiveSessions {
        total: count(total),
        active_sessions: rows
            .iter()
            .map(|r| {
                let started: i64 = r.get(2);
                let cwd: String = r.get(3);
                ActiveSession {
                    session_id: r.get(0),
                    component_name: r.get(1),
                    start_time: micros(started),
                    duration_seconds: (now_us - started).max(0) / 1_000_000,
                    project: project(&cwd, r.get(4)),
                }
            })
            .collect(),
    })
}
