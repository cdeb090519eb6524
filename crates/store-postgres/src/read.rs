//! Queries, the reaper, token revocations and retention.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use serde_json::{Map, Value};
use session_buddy_events::{Session, SessionPage, SessionStatus, StoredEvent};
use session_buddy_store::{
    EventFilter, MAX_PAGE, Pruned, REDACT_BATCH, Reaped, Redaction, SessionFilter,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::{PgError, micros};

pub(crate) const SESSION_COLUMNS: &str =
    "session_id, session_type, component, shell_type, component_version, status,
    username, home, hostname, pid, platform, runtime_version, cwd, started_at, ended_at,
    last_seen_at, duration_us, command_count, error_count, exit_code, end_reason, metadata,
    last_command,
    EXISTS (SELECT 1 FROM recordings r WHERE r.session_id = sessions.session_id)";

const EVENT_COLUMNS: &str = "event_id, session_id, event_type, ts, received_at, seq, payload";

fn session_from_row(r: &Row) -> Session {
    let status: String = r.get(5);
    let metadata: String = r.get(21);
    let metadata = match serde_json::from_str::<Value>(&metadata) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Session {
        session_id: r.get(0),
        session_type: r.get(1),
        component: r.get(2),
        shell_type: r.get(3),
        component_version: r.get(4),
        status: SessionStatus::parse(&status).unwrap_or(SessionStatus::Active),
        username: r.get(6),
        home: r.get(7),
        hostname: r.get(8),
        pid: u32::try_from(r.get::<_, i64>(9)).unwrap_or_default(),
        platform: r.get(10),
        runtime_version: r.get(11),
        cwd: r.get(12),
        started_at: micros(r.get(13)),
        ended_at: r.get::<_, Option<i64>>(14).map(micros),
        last_seen_at: micros(r.get(15)),
        duration_seconds: r.get::<_, Option<i64>>(16).map(|us| us as f64 / 1e6),
        command_count: r.get::<_, i64>(17).max(0) as u64,
        error_count: r.get::<_, i64>(18).max(0) as u64,
        exit_code: r
            .get::<_, Option<i64>>(19)
            .and_then(|c| i32::try_from(c).ok()),
        end_reason: r.get(20),
        metadata,
        last_command: r.get(22),
        has_recording: r.get(23),
    }
}

fn stored_event_from_row(r: &Row) -> StoredEvent {
    stored_event_at(r, 0)
}

/// [`EVENT_COLUMNS`] of `events e`.
pub(crate) const FEED_COLUMNS: &str =
    "e.event_id, e.session_id, e.event_type, e.ts, e.received_at, e.seq, e.payload";

/// A stored event from [`EVENT_COLUMNS`] starting at column `at`.
pub(crate) fn stored_event_at(r: &Row, at: usize) -> StoredEvent {
    let payload: String = r.get(at + 6);
    StoredEvent {
        event_id: r.get(at),
        session_id: r.get(at + 1),
        event_type: r.get(at + 2),
        timestamp: micros(r.get(at + 3)),
        received_at: micros(r.get(at + 4)),
        seq: r.get::<_, Option<i64>>(at + 5).map(|s| s.max(0) as u64),
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
    }
}

type Param = Box<dyn ToSql + Sync + Send>;

pub(crate) async fn list_sessions(
    conn: &Object,
    f: &SessionFilter,
) -> session_buddy_store::Result<SessionPage> {
    let search = match session_buddy_store::search_term(f.q.as_deref())? {
        Some(term) => Some(crate::search::clause(match f.search_plan {
            Some(plan) => plan,
            None => crate::search::plan(conn, term, f.limit).await?,
        })),
        None => None,
    };
    let (tail, args) = session_buddy_store::session_page_query(f, '$', search.as_deref())?;
    let args: Vec<Param> = args
        .into_iter()
        .map(|a| -> Param {
            match a {
                session_buddy_store::SqlArg::Text(t) => Box::new(t),
                session_buddy_store::SqlArg::Int(i) => Box::new(i),
            }
        })
        .collect();
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let stmt = conn
        .prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions{tail}"))
        .await
        .map_err(PgError::from)?;
    let rows = conn.query(&stmt, &params).await.map_err(PgError::from)?;
    let sessions: Vec<Session> = rows.iter().map(session_from_row).collect();
    Ok(session_buddy_store::page_of(sessions, f))
}

pub(crate) async fn get_session(
    conn: &Object,
    session_id: &str,
) -> Result<Option<Session>, PgError> {
    let stmt = conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = $1"
        ))
        .await?;
    Ok(conn
        .query_opt(&stmt, &[&session_id])
        .await?
        .as_ref()
        .map(session_from_row))
}

pub(crate) async fn get_sessions(
    conn: &Object,
    session_ids: &[String],
) -> Result<Vec<Session>, PgError> {
    let stmt = conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = ANY($1)"
        ))
        .await?;
    Ok(conn
        .query(&stmt, &[&session_ids])
        .await?
        .iter()
        .map(session_from_row)
        .collect())
}

pub(crate) async fn session_events(
    conn: &Object,
    session_id: &str,
) -> Result<Vec<StoredEvent>, PgError> {
    let stmt = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE session_id = $1 ORDER BY ts, id"
        ))
        .await?;
    Ok(conn
        .query(&stmt, &[&session_id])
        .await?
        .iter()
        .map(stored_event_from_row)
        .collect())
}

/// `$4`: the events of stored sessions of the visible components only (a text array; NULL:
/// every event).
const VISIBLE_EVENTS: &str = "AND ($4::text[] IS NULL OR session_id IN (SELECT session_id
     FROM sessions WHERE component = ANY($4::text[])))";

pub(crate) async fn session_timeline(
    conn: &Object,
    session_id: &str,
    offset: usize,
    limit: usize,
) -> Result<Vec<StoredEvent>, PgError> {
    let (offset, limit) = (offset as i64, limit.clamp(1, MAX_PAGE) as i64);
    let stmt = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE session_id = $1 ORDER BY ts, id \
             LIMIT $2 OFFSET $3"
        ))
        .await?;
    Ok(conn
        .query(&stmt, &[&session_id, &limit, &offset])
        .await?
        .iter()
        .map(stored_event_from_row)
        .collect())
}

pub(crate) async fn list_events(
    conn: &Object,
    filter: &EventFilter,
) -> Result<Vec<StoredEvent>, PgError> {
    let limit = filter.limit.clamp(1, MAX_PAGE) as i64;
    let event_type = filter.event_type.map(|t| t.as_str().to_string());
    let sql = match &filter.session_id {
        Some(_) => format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE session_id = $1
             AND ($2::text IS NULL OR event_type = $2) {VISIBLE_EVENTS}
             ORDER BY ts, id LIMIT $3"
        ),
        // The latest by their own time, ties by arrival.
        None => format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE $1::text IS NULL
             AND ($2::text IS NULL OR event_type = $2) {VISIBLE_EVENTS}
             ORDER BY ts DESC, id DESC LIMIT $3"
        ),
    };
    let stmt = conn.prepare_cached(&sql).await?;
    Ok(conn
        .query(
            &stmt,
            &[&filter.session_id, &event_type, &limit, &filter.components],
        )
        .await?
        .iter()
        .map(stored_event_from_row)
        .collect())
}

pub(crate) async fn events_in_time_order(
    conn: &Object,
    since: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, String)>,
    limit: usize,
) -> Result<Vec<StoredEvent>, PgError> {
    let since = since.map_or(i64::MIN, |t| t.timestamp_micros());
    let (after_ts, after_id) = after.map_or((i64::MIN, String::new()), |(t, id)| {
        (t.timestamp_micros(), id)
    });
    let limit = limit.clamp(1, MAX_PAGE) as i64;
    let stmt = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE ts >= $1 AND (ts, event_id) > ($2, $3)
             ORDER BY ts, event_id LIMIT $4"
        ))
        .await?;
    Ok(conn
        .query(&stmt, &[&since, &after_ts, &after_id, &limit])
        .await?
        .iter()
        .map(stored_event_from_row)
        .collect())
}

pub(crate) async fn active_by_component(conn: &Object) -> Result<BTreeMap<String, u64>, PgError> {
    let stmt = conn
        .prepare_cached(
            "SELECT component, count(*) FROM sessions WHERE status = 'active' GROUP BY component",
        )
        .await?;
    Ok(conn
        .query(&stmt, &[])
        .await?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64))
        .collect())
}

/// Marks silent active sessions abandoned in one statement. Rows an ingest holds are skipped
/// (they are not silent), and the update re-checks each row, so a session is abandoned once
/// even if two reapers ran at the same moment.
pub(crate) async fn reap(
    conn: &Object,
    active_cutoff: i64,
    legacy_cutoff: i64,
) -> Result<Vec<Reaped>, PgError> {
    let stmt = conn
        .prepare_cached(
            "WITH silent AS (
                 SELECT session_id FROM sessions
                 WHERE status = 'active'
                   AND last_received_at < CASE WHEN heartbeat_interval IS NULL THEN $2::int8 ELSE $1::int8 END
                 ORDER BY session_id
                 LIMIT 10000
                 FOR UPDATE SKIP LOCKED)
             UPDATE sessions s SET status = 'abandoned', end_reason = 'heartbeat_timeout',
                    ended_at = s.last_seen_at,
                    duration_us = greatest(0, s.last_seen_at - s.started_at)
             FROM silent WHERE s.session_id = silent.session_id
             RETURNING s.session_id, s.component, s.duration_us",
        )
        .await?;
    let mut reaped: Vec<Reaped> = conn
        .query(&stmt, &[&active_cutoff, &legacy_cutoff])
        .await?
        .iter()
        .map(|r| Reaped {
            session_id: r.get(0),
            component: r.get(1),
            duration_seconds: r.get::<_, i64>(2) as f64 / 1e6,
        })
        .collect();
    reaped.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    Ok(reaped)
}

pub(crate) async fn revoke_token(
    conn: &Object,
    jti: &str,
    expires_us: Option<i64>,
) -> Result<(), PgError> {
    let now = Utc::now().timestamp_micros();
    let upsert = conn
        .prepare_cached(
            "INSERT INTO revoked_tokens (jti, revoked_at, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (jti) DO UPDATE SET expires_at =
               CASE WHEN excluded.expires_at IS NULL OR revoked_tokens.expires_at IS NULL THEN NULL
                    ELSE greatest(revoked_tokens.expires_at, excluded.expires_at) END",
        )
        .await?;
    conn.execute(&upsert, &[&jti, &now, &expires_us]).await?;
    // Revocations of tokens that expired a day ago protect nothing any more.
    let sweep = conn
        .prepare_cached(
            "DELETE FROM revoked_tokens WHERE expires_at IS NOT NULL AND expires_at < $1",
        )
        .await?;
    conn.execute(&sweep, &[&(now - 86_400_000_000)]).await?;
    Ok(())
}

pub(crate) async fn is_revoked(conn: &Object, jti: &str) -> Result<bool, PgError> {
    let stmt = conn
        .prepare_cached("SELECT 1 FROM revoked_tokens WHERE jti = $1")
        .await?;
    Ok(conn.query_opt(&stmt, &[&jti]).await?.is_some())
}

pub(crate) async fn revoked_tokens(conn: &Object, now_us: i64) -> Result<Vec<String>, PgError> {
    let stmt = conn
        .prepare_cached(
            "SELECT jti FROM revoked_tokens WHERE expires_at IS NULL OR expires_at >= $1",
        )
        .await?;
    Ok(conn
        .query(&stmt, &[&now_us])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// One retention batch in one transaction. Sessions an ingest holds are skipped this time.
pub(crate) async fn prune(conn: &mut Object, cutoff: i64, batch: usize) -> Result<Pruned, PgError> {
    let batch = batch.max(1) as i64;
    let tx = conn.transaction().await?;
    let sessions = tx
        .prepare_cached(
            "WITH old AS (
                 SELECT session_id FROM sessions
                 WHERE status != 'active' AND started_at < $1
                 LIMIT $2 FOR UPDATE SKIP LOCKED),
             gone AS (DELETE FROM sessions s USING old WHERE s.session_id = old.session_id
                      RETURNING s.session_id),
             events_gone AS (DELETE FROM events e USING gone WHERE e.session_id = gone.session_id
                             RETURNING 1),
             commands_gone AS (DELETE FROM session_commands c USING gone
                               WHERE c.session_id = gone.session_id
                                 AND c.command IN (SELECT name FROM command_names)),
             chunks_gone AS (DELETE FROM recording_chunks k USING gone
                             WHERE k.session_id = gone.session_id),
             recordings_gone AS (DELETE FROM recordings r USING gone
                                 WHERE r.session_id = gone.session_id)
             SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM events_gone)",
        )
        .await?;
    let row = tx.query_one(&sessions, &[&cutoff, &batch]).await?;
    let mut pruned = Pruned {
        sessions: row.get::<_, i64>(0).max(0) as u64,
        events: row.get::<_, i64>(1).max(0) as u64,
    };
    // Pending events whose start never came.
    let orphans = tx
        .prepare_cached(
            "DELETE FROM events WHERE id IN (
                 SELECT e.id FROM events e
                 WHERE e.ts < $1
                   AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = e.session_id)
                 LIMIT $2)",
        )
        .await?;
    pruned.events += tx.execute(&orphans, &[&cutoff, &batch]).await?;
    tx.commit().await?;
    Ok(pruned)
}

/// `Store::redact_stored`: batches of command events by insertion order; each batch's
/// rewrites in one transaction, each only if the payload is still what was read.
pub(crate) async fn redact_stored(conn: &mut Object, apply: bool) -> Result<Redaction, PgError> {
    let mut report = Redaction {
        applied: apply,
        ..Redaction::default()
    };
    let mut after: i64 = 0;
    loop {
        let stmt = conn
            .prepare_cached(
                "SELECT id, event_id, payload FROM events
                 WHERE id > $1 AND event_type = 'command' ORDER BY id LIMIT $2",
            )
            .await?;
        let rows = conn.query(&stmt, &[&after, &(REDACT_BATCH as i64)]).await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.get(0);
        report.examined += rows.len() as u64;
        let changes: Vec<(String, String, String)> = rows
            .iter()
            .filter_map(|r| {
                let old: String = r.get(2);
                session_buddy_store::reredacted_payload(&old).map(|new| (r.get(1), old, new))
            })
            .collect();
        if !apply {
            report.changed += changes.len() as u64;
        } else if !changes.is_empty() {
            let tx = conn.transaction().await?;
            let update = tx
                .prepare_cached(
                    "UPDATE events SET payload = $1 WHERE event_id = $2 AND payload = $3",
                )
                .await?;
            for (id, old, new) in &changes {
                report.changed += tx.execute(&update, &[new, id, old]).await?;
            }
            tx.commit().await?;
        }
        if rows.len() < REDACT_BATCH {
            break;
        }
    }
    Ok(report)
}
