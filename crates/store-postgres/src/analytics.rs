//! Analytics on PostgreSQL: the same numbers as the SQLite backend (its definitions are in
//! `session_buddy_store::analytics`), each in one statement grouped by component and trend
//! bucket.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use session_buddy_store::analytics::{
    ActiveSession, ROLLUP_US, RollupSums, most_frequent, project, rollup_hour, rollup_plan,
};
use session_buddy_store::{ActiveSessions, AnalyticsWindow, ComponentSummary};
use tokio_postgres::IsolationLevel;

use crate::{PgError, micros};

/// The integer sums of sessions (the columns of [`RollupSums`], in order).
macro_rules! sums_sql {
    () => {
        concat!(
            "count(*),
       count(*) FILTER (WHERE status = 'active'),
       count(duration_us),
       coalesce(sum(duration_us), 0)::INT8,
       count(*) FILTER (WHERE ",
            session_buddy_store::failed_session_sql!(),
            "),
       count(*) FILTER (WHERE status = 'abandoned'),
       coalesce(sum(command_count), 0)::INT8,
       coalesce(sum(error_count), 0)::INT8,
       max(started_at)"
        )
    };
}

/// Sessions per component and piece (`$1`/`$2` the pieces' bounds in µs, `$3` the trend bucket
/// each belongs to, `$4` the component or NULL, `$5` the visible components or NULL). Each piece
/// is its own range scan (`LATERAL`): a join over all pieces at once lets the planner scan
/// every session instead.
const SUMMARY_SQL: &str = concat!(
    "SELECT x.*
FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS b(lo, hi, i)
CROSS JOIN LATERAL (
  SELECT s.component, b.i, ",
    sums_sql!(),
    "
  FROM sessions s
  WHERE s.started_at >= b.lo AND s.started_at < b.hi
    AND ($4::text IS NULL OR s.component = $4)
    AND ($5::text[] IS NULL OR s.component = ANY($5::text[]))
  GROUP BY s.component
) x"
);

/// The rollup per component and piece (`$1`/`$2` the pieces' bounds in hours; the rest as in
/// [`SUMMARY_SQL`]).
const ROLLUP_SUMMARY_SQL: &str = "SELECT x.*
FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS b(lo, hi, i)
CROSS JOIN LATERAL (
  SELECT r.component, b.i,
         sum(sessions)::INT8, sum(active)::INT8, sum(finished)::INT8, sum(duration_us)::INT8,
         sum(failed)::INT8, sum(abandoned)::INT8, sum(commands)::INT8,
         sum(failed_commands)::INT8, max(last_started)
  FROM rollup_hours r
  WHERE r.hour >= b.lo AND r.hour < b.hi
    AND ($4::text IS NULL OR r.component = $4)
    AND ($5::text[] IS NULL OR r.component = ANY($5::text[]))
  GROUP BY r.component
) x";

/// The hours `[$1, $2)` whose rollup is out of date, of any component: marked, or claimed by
/// a refresh that has not committed their new rows.
const DIRTY_SQL: &str = "SELECT hour FROM rollup_dirty WHERE hour >= $1 AND hour < $2
UNION SELECT hour FROM rollup_building WHERE hour >= $1 AND hour < $2";

/// A failed command's error (the analytics' most common error), over an `events` row `e`.
macro_rules! command_error_sql {
    () => {
        "coalesce(e.payload::jsonb ->> 'error', (e.payload::jsonb ->> 'command') || ' failed', \
         'failed')"
    };
}

/// Which events are failed commands of a session `s` with failed commands.
macro_rules! failed_command_sql {
    () => {
        "s.error_count > 0 AND e.event_type = 'command' \
         AND e.payload::jsonb -> 'success' = 'false'::jsonb"
    };
}

/// The errors of failed commands of the sessions started in the pieces `$1`/`$2` (µs), a range
/// scan per piece.
const COMMAND_ERRORS_SQL: &str = concat!(
    "SELECT x.component, x.error, sum(x.n)::INT8
FROM unnest($1::int8[], $2::int8[]) AS b(lo, hi)
CROSS JOIN LATERAL (
  SELECT s.component, ",
    command_error_sql!(),
    " AS error, count(*) AS n
  FROM sessions s JOIN events e ON e.session_id = s.session_id
  WHERE s.started_at >= b.lo AND s.started_at < b.hi
    AND ($3::text IS NULL OR s.component = $3)
    AND ($4::text[] IS NULL OR s.component = ANY($4::text[]))
    AND ",
    failed_command_sql!(),
    "
  GROUP BY 1, 2
) x
GROUP BY 1, 2"
);

/// Why sessions without failed commands failed, started in the pieces `$1`/`$2` (µs).
const SESSION_ERRORS_SQL: &str = concat!(
    "SELECT x.component, x.error, sum(x.n)::INT8
FROM unnest($1::int8[], $2::int8[]) AS b(lo, hi)
CROSS JOIN LATERAL (
  SELECT component, ",
    session_buddy_store::session_error_sql!(),
    " AS error, count(*) AS n
  FROM sessions s
  WHERE s.started_at >= b.lo AND s.started_at < b.hi
    AND ($3::text IS NULL OR component = $3)
    AND ($4::text[] IS NULL OR component = ANY($4::text[]))
    AND error_count = 0 AND ",
    session_buddy_store::failed_session_sql!(),
    "
  GROUP BY 1, 2
) x
GROUP BY 1, 2"
);

/// The rollup's error counts over the pieces `$1`/`$2` (hours).
const ROLLUP_ERRORS_SQL: &str = "SELECT x.component, x.error, sum(x.n)::INT8
FROM unnest($1::int8[], $2::int8[]) AS b(lo, hi)
CROSS JOIN LATERAL (
  SELECT r.component, r.error, sum(r.n) AS n
  FROM rollup_errors r
  WHERE r.hour >= b.lo AND r.hour < b.hi
    AND ($3::text IS NULL OR r.component = $3)
    AND ($4::text[] IS NULL OR r.component = ANY($4::text[]))
  GROUP BY 1, 2
) x
GROUP BY 1, 2";

/// The marked hours (`$1` component, `$2` hour, `$3`/`$4` its bounds in µs) and the sessions
/// started in them.
macro_rules! marked_sessions_sql {
    () => {
        "unnest($1::text[], $2::int8[], $3::int8[], $4::int8[]) AS d(component, hour, lo, hi)
         JOIN sessions s
           ON s.component = d.component AND s.started_at >= d.lo AND s.started_at < d.hi"
    };
}

/// Rebuilds the rollup of the marked hours (their old rows deleted first).
const REFRESH_HOURS_SQL: &str = concat!(
    "INSERT INTO rollup_hours (component, hour, sessions, active, finished, duration_us,
   failed, abandoned, commands, failed_commands, last_started)
SELECT d.component, d.hour, ",
    sums_sql!(),
    "
FROM ",
    marked_sessions_sql!(),
    "
GROUP BY d.component, d.hour"
);

/// Rebuilds the error counts of the marked hours (their old rows deleted first).
const REFRESH_ERRORS_SQL: &str = concat!(
    "INSERT INTO rollup_errors (component, hour, error, n)
SELECT component, hour, error, sum(n)::INT8 FROM (
  SELECT d.component, d.hour, ",
    command_error_sql!(),
    " AS error, count(*) AS n
  FROM ",
    marked_sessions_sql!(),
    "
  JOIN events e ON e.session_id = s.session_id
  WHERE ",
    failed_command_sql!(),
    "
  GROUP BY 1, 2, 3
  UNION ALL
  SELECT d.component, d.hour, ",
    session_buddy_store::session_error_sql!(),
    ", count(*)
  FROM ",
    marked_sessions_sql!(),
    "
  WHERE error_count = 0 AND ",
    session_buddy_store::failed_session_sql!(),
    "
  GROUP BY 1, 2, 3
) x GROUP BY 1, 2, 3"
);

fn count(v: i64) -> u64 {
    v.max(0) as u64
}

fn sums(r: &tokio_postgres::Row) -> RollupSums {
    RollupSums {
        sessions: r.get(2),
        active: r.get(3),
        finished: r.get(4),
        duration_us: r.get(5),
        failed: r.get(6),
        abandoned: r.get(7),
        commands: r.get(8),
        failed_commands: r.get(9),
        last_started: r.get(10),
    }
}

/// The pieces of a window's trend buckets: whole hours from the rollup (`hours`, with the
/// bucket of each) and the rest from the sessions (`base`). An hour out of date for any
/// component is read from the sessions for all (such hours are few: the current one and those
/// changed since the last refresh).
#[derive(Default)]
struct Pieces {
    hours: (Vec<i64>, Vec<i64>, Vec<i64>),
    base: (Vec<i64>, Vec<i64>, Vec<i64>),
}

async fn pieces(
    tx: &deadpool_postgres::Transaction<'_>,
    ranges: &[(i64, i64)],
) -> Result<Pieces, PgError> {
    let mut out = Pieces::default();
    let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
        return Ok(out);
    };
    let stmt = tx.prepare_cached(DIRTY_SQL).await?;
    let dirty: BTreeSet<i64> = tx
        .query(&stmt, &[&rollup_hour(first.0), &(rollup_hour(last.1) + 1)])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (i, (from, to)) in ranges.iter().enumerate() {
        let plan = rollup_plan(*from, *to, &dirty);
        let i = i as i64 + 1;
        for (lo, hi) in plan.hours {
            out.hours.0.push(lo);
            out.hours.1.push(hi);
            out.hours.2.push(i);
        }
        for (lo, hi) in plan.base {
            out.base.0.push(lo);
            out.base.1.push(hi);
            out.base.2.push(i);
        }
    }
    Ok(out)
}

async fn snapshot(conn: &mut Object) -> Result<deadpool_postgres::Transaction<'_>, PgError> {
    Ok(conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

pub(crate) async fn summary(
    conn: &mut Object,
    w: &AnalyticsWindow,
) -> Result<Vec<ComponentSummary>, PgError> {
    let buckets = w.buckets();
    // One snapshot: the rollup, its marks and the sessions as of one moment.
    let tx = snapshot(conn).await?;
    let p = pieces(&tx, &buckets).await?;
    let mut per: BTreeMap<String, Vec<RollupSums>> = BTreeMap::new();
    for (sql, (lo, hi, i)) in [(ROLLUP_SUMMARY_SQL, &p.hours), (SUMMARY_SQL, &p.base)] {
        if lo.is_empty() {
            continue;
        }
        let stmt = tx.prepare_cached(sql).await?;
        for r in tx
            .query(&stmt, &[lo, hi, i, &w.component, &w.components])
            .await?
        {
            let bucket = usize::try_from(r.get::<_, i64>(1) - 1).unwrap_or(0);
            let slots = per
                .entry(r.get(0))
                .or_insert_with(|| vec![RollupSums::default(); buckets.len()]);
            if let Some(slot) = slots.get_mut(bucket) {
                slot.add(&sums(&r));
            }
        }
    }
    tx.commit().await?;
    Ok(per
        .into_iter()
        .filter_map(|(component, slots)| {
            let mut s = ComponentSummary {
                component,
                trend: Vec::with_capacity(slots.len()),
                ..ComponentSummary::default()
            };
            let (mut duration_us, mut last) = (0i64, None);
            for slot in &slots {
                slot.fold_into(&mut s, &mut duration_us, &mut last);
            }
            (s.sessions > 0).then(|| {
                s.duration_seconds_total = duration_us as f64 / 1e6;
                s.last_started = last.map(micros);
                s
            })
        })
        .collect())
}

pub(crate) async fn common_errors(
    conn: &mut Object,
    w: &AnalyticsWindow,
) -> Result<BTreeMap<String, String>, PgError> {
    let (since, until) = (w.since.timestamp_micros(), w.until.timestamp_micros());
    let tx = snapshot(conn).await?;
    let p = pieces(&tx, &[(since, until)]).await?;
    let mut tally: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let work = [
        (ROLLUP_ERRORS_SQL, &p.hours),
        (COMMAND_ERRORS_SQL, &p.base),
        (SESSION_ERRORS_SQL, &p.base),
    ];
    for (sql, (lo, hi, _)) in work {
        if lo.is_empty() {
            continue;
        }
        let stmt = tx.prepare_cached(sql).await?;
        for r in tx
            .query(&stmt, &[lo, hi, &w.component, &w.components])
            .await?
        {
            *tally
                .entry(r.get(0))
                .or_default()
                .entry(r.get(1))
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

/// Recomputes at most `batch` out-of-date rollup hours before `before_hour`, oldest first;
/// returns how many (0 when ingest held the marks for `lock_wait`).
///
/// Two transactions (`0006_rollup_claims.sql`): the claim moves the hours' marks to
/// `rollup_building` under a `SHARE` lock of `rollup_dirty`, which the mark triggers take in
/// `ROW EXCLUSIVE` mode before they look for a mark: the claim waits for the writes in progress
/// (a write that found a mark and wrote none is committed before the mark goes) and a write
/// after it writes a new mark. The recomputation then reads a snapshot taken after the claim,
/// so it holds nothing ingest or autovacuum waits for; a write it does not see has marked its
/// hour again. Queries read claimed hours from the sessions until the new rows commit. Hours a
/// refresh claimed and did not finish (an error, a crash) are taken first by the next.
pub(crate) async fn refresh_rollups(
    conn: &mut Object,
    before_hour: i64,
    batch: usize,
    lock_wait: std::time::Duration,
) -> Result<usize, PgError> {
    let batch = batch.min(i64::MAX as usize) as i64;
    let tx = conn.transaction().await?;
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{}ms'",
        lock_wait.as_millis().max(1)
    ))
    .await?;
    if let Err(e) = tx
        .batch_execute("LOCK TABLE rollup_dirty IN SHARE MODE")
        .await
    {
        if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            return Ok(0);
        }
        return Err(e.into());
    }
    tx.execute(
        "WITH claimed AS (
           DELETE FROM rollup_dirty r USING (
             SELECT component, hour FROM rollup_dirty WHERE hour < $1
             ORDER BY hour, component
             LIMIT greatest($2 - (SELECT count(*) FROM rollup_building), 0)
           ) d
           WHERE r.component = d.component AND r.hour = d.hour
           RETURNING r.component, r.hour)
         INSERT INTO rollup_building (component, hour) SELECT component, hour FROM claimed
         ON CONFLICT DO NOTHING",
        &[&before_hour, &batch],
    )
    .await?;
    tx.commit().await?;

    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .await?;
    let rows = tx
        .query(
            "SELECT component, hour FROM rollup_building ORDER BY hour, component LIMIT $1",
            &[&batch],
        )
        .await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let components: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let hours: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
    let (lo, hi): (Vec<i64>, Vec<i64>) = hours
        .iter()
        .map(|h| (h * ROLLUP_US, (h + 1) * ROLLUP_US))
        .unzip();
    let marked = "unnest($1::text[], $2::int8[]) AS d(component, hour)";
    for table in ["rollup_hours", "rollup_errors"] {
        tx.execute(
            &format!(
                "DELETE FROM {table} r USING {marked}
                 WHERE r.component = d.component AND r.hour = d.hour"
            ),
            &[&components, &hours],
        )
        .await?;
    }
    // The same sums and errors as the queries over the sessions, per claimed hour.
    let args: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&components, &hours, &lo, &hi];
    tx.execute(REFRESH_HOURS_SQL, &args).await?;
    tx.execute(REFRESH_ERRORS_SQL, &args).await?;
    tx.execute(
        &format!(
            "DELETE FROM rollup_building r USING {marked}
             WHERE r.component = d.component AND r.hour = d.hour"
        ),
        &[&components, &hours],
    )
    .await?;
    tx.commit().await?;
    Ok(rows.len())
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
