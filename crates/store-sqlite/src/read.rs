//! Reads on SQLite, each on a pooled read-only connection: sessions and their pages, events,
//! the counts the metrics need, revocations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use session_buddy_events::{Session, SessionPage, SessionStatus, StoredEvent};
use session_buddy_store::{EventFilter, MAX_PAGE, SessionFilter};

use crate::Result;

const SESSION_COLUMNS: &str =
    "session_id, session_type, component, shell_type, component_version, status,
    username, home, hostname, pid, platform, runtime_version, cwd, started_at, ended_at,
    last_seen_at, duration_us, command_count, error_count, exit_code, end_reason, metadata,
    last_command,
    EXISTS (SELECT 1 FROM recordings r WHERE r.session_id = sessions.session_id)";

pub(crate) fn micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    let status: String = r.get(5)?;
    let metadata: String = r.get(21)?;
    let metadata = match serde_json::from_str::<Value>(&metadata) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Ok(Session {
        session_id: r.get(0)?,
        session_type: r.get(1)?,
        component: r.get(2)?,
        shell_type: r.get(3)?,
        component_version: r.get(4)?,
        status: SessionStatus::parse(&status).unwrap_or(SessionStatus::Active),
        username: r.get(6)?,
        home: r.get(7)?,
        hostname: r.get(8)?,
        pid: r.get(9)?,
        platform: r.get(10)?,
        runtime_version: r.get(11)?,
        cwd: r.get(12)?,
        started_at: micros(r.get(13)?),
        ended_at: r.get::<_, Option<i64>>(14)?.map(micros),
        last_seen_at: micros(r.get(15)?),
        duration_seconds: r.get::<_, Option<i64>>(16)?.map(|us| us as f64 / 1e6),
        command_count: r.get::<_, i64>(17)?.max(0) as u64,
        error_count: r.get::<_, i64>(18)?.max(0) as u64,
        exit_code: r.get(19)?,
        end_reason: r.get(20)?,
        metadata,
        last_command: r.get(22)?,
        has_recording: r.get(23)?,
    })
}

fn stored_event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    stored_event_at(r, 0)
}

/// A stored event from [`EVENT_COLUMNS`] starting at column `at`.
fn stored_event_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<StoredEvent> {
    let payload: String = r.get(at + 6)?;
    Ok(StoredEvent {
        event_id: r.get(at)?,
        session_id: r.get(at + 1)?,
        event_type: r.get(at + 2)?,
        timestamp: micros(r.get(at + 3)?),
        received_at: micros(r.get(at + 4)?),
        seq: r.get::<_, Option<i64>>(at + 5)?.map(|s| s.max(0) as u64),
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
    })
}

/// A visibility restriction as one SQL parameter: a JSON array of component names, which the
/// statements read with `component IN (SELECT value FROM json_each(?N))`; NULL: every
/// component. One parameter keeps each statement fixed (and cached) whatever the list.
pub(crate) fn visible_param(components: Option<&[String]>) -> Option<String> {
    components.map(|c| serde_json::Value::from(c.to_vec()).to_string())
}

pub(crate) fn list_sessions(conn: &Connection, f: &SessionFilter) -> Result<SessionPage> {
    let search = match session_buddy_store::search_term(f.q.as_deref())? {
        Some(term) => Some(crate::search::clause(match f.search_plan {
            Some(plan) => plan,
            None => crate::search::plan(conn, term, f.limit)?,
        })),
        None => None,
    };
    let (tail, args) = session_buddy_store::session_page_query(f, '?', search.as_deref())?;
    let args = args.into_iter().map(|a| match a {
        session_buddy_store::SqlArg::Text(t) => SqlValue::Text(t),
        session_buddy_store::SqlArg::Int(i) => SqlValue::Integer(i),
    });
    let mut stmt = conn.prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions{tail}"))?;
    let sessions: Vec<Session> = stmt
        .query_map(rusqlite::params_from_iter(args), session_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(session_buddy_store::page_of(sessions, f))
}

const EVENT_COLUMNS: &str = "event_id, session_id, event_type, ts, received_at, seq, payload";
/// [`EVENT_COLUMNS`] of `events e`.
const FEED_COLUMNS: &str =
    "e.event_id, e.session_id, e.event_type, e.ts, e.received_at, e.seq, e.payload";

pub(crate) fn get_session(c: &Connection, id: &str) -> Result<Option<Session>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = ?1"
    ))?
    .query_row([id], session_from_row)
    .optional()?)
}

/// `ids`: a JSON array of session ids.
pub(crate) fn get_sessions(c: &Connection, ids: &str) -> Result<Vec<Session>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions
         WHERE session_id IN (SELECT value FROM json_each(?1))"
    ))?
    .query_map([ids], session_from_row)?
    .collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn session_events(c: &Connection, id: &str) -> Result<Vec<StoredEvent>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE session_id = ?1 ORDER BY ts, rowid"
    ))?
    .query_map([id], stored_event_from_row)?
    .collect::<rusqlite::Result<_>>()?)
}

/// `?4`: the events of stored sessions of the visible components only ([`visible_param`]).
const VISIBLE_EVENTS: &str = "AND (?4 IS NULL OR session_id IN (SELECT session_id FROM sessions
     WHERE component IN (SELECT value FROM json_each(?4))))";

pub(crate) fn session_timeline(
    c: &Connection,
    id: &str,
    offset: usize,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    let (offset, limit) = (offset as i64, limit.clamp(1, MAX_PAGE) as i64);
    Ok(c.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE session_id = ?1 ORDER BY ts, rowid \
         LIMIT ?2 OFFSET ?3"
    ))?
    .query_map(params![id, limit, offset], stored_event_from_row)?
    .collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn list_events(c: &Connection, filter: &EventFilter) -> Result<Vec<StoredEvent>> {
    let limit = filter.limit.clamp(1, MAX_PAGE) as i64;
    let event_type = filter.event_type.map(|t| t.as_str().to_string());
    let sql = match (&filter.session_id, &event_type) {
        (Some(_), _) => format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE session_id = ?1
             AND (?2 IS NULL OR event_type = ?2) {VISIBLE_EVENTS} ORDER BY ts, rowid LIMIT ?3"
        ),
        // The latest by their own time, ties by arrival.
        (None, _) => format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE ?1 IS NULL
             AND (?2 IS NULL OR event_type = ?2) {VISIBLE_EVENTS}
             ORDER BY ts DESC, rowid DESC LIMIT ?3"
        ),
    };
    let visible = visible_param(filter.components.as_deref());
    Ok(c.prepare_cached(&sql)?
        .query_map(
            params![filter.session_id, event_type, limit, visible],
            stored_event_from_row,
        )?
        .collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn active_by_component(c: &Connection) -> Result<BTreeMap<String, u64>> {
    let mut stmt = c.prepare_cached(
        "SELECT component, count(*) FROM sessions INDEXED BY sessions_active_by_component
         WHERE status = 'active' GROUP BY component",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (c, n) = row?;
        out.insert(c, n.max(0) as u64);
    }
    Ok(out)
}

pub(crate) fn schema_version(c: &Connection) -> Result<i64> {
    Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// The reaper's candidates (`cutoffs` = `(active, legacy)` in µs), found on a reader so the
/// scan never holds up ingest; the writer re-checks each.
pub(crate) fn reap_candidates(c: &Connection, cutoffs: (i64, i64)) -> Result<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT session_id FROM sessions
         WHERE status = 'active'
           AND last_received_at < CASE WHEN heartbeat_interval IS NULL THEN ?2 ELSE ?1 END
         LIMIT 10000",
    )?;
    let rows = stmt.query_map(params![cutoffs.0, cutoffs.1], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn is_revoked(c: &Connection, jti: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM revoked_tokens WHERE jti = ?1")?
            .query_row([jti], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

pub(crate) fn revoked_tokens(c: &Connection, now_us: i64) -> Result<Vec<String>> {
    Ok(c.prepare_cached(
        "SELECT jti FROM revoked_tokens WHERE expires_at IS NULL OR expires_at >= ?1",
    )?
    .query_map([now_us], |r| r.get(0))?
    .collect::<rusqlite::Result<_>>()?)
}

/// Export: one page of events in time order after `(after_ts, after_id)`.
pub(crate) fn events_in_time_order(
    c: &Connection,
    since: i64,
    (after_ts, after_id): (i64, String),
    limit: i64,
) -> Result<Vec<StoredEvent>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE ts >= ?1 AND (ts > ?2 OR (ts = ?2 AND event_id > ?3))
         ORDER BY ts, event_id LIMIT ?4"
    ))?
    .query_map(
        params![since, after_ts, after_id, limit],
        stored_event_from_row,
    )?
    .collect::<rusqlite::Result<_>>()?)
}

/// The change feed: events above `q.after` by rowid (at most `q.limit`), those in the
/// `recheck` ranges, and the highest rowid, in one read transaction (one snapshot).
pub(crate) fn feed(
    c: &Connection,
    q: &session_buddy_store::FeedQuery,
) -> Result<session_buddy_store::FeedPage> {
    let tx = c.unchecked_transaction()?;
    let limit = q.limit.clamp(1, MAX_PAGE) as i64;
    let (join, components) = match &q.components {
        None => (String::new(), Vec::new()),
        Some(list) => {
            let marks = (0..list.len())
                .map(|i| format!("?{}", i + 4))
                .collect::<Vec<_>>()
                .join(", ");
            (
                format!(
                    " AND e.session_id IN (SELECT session_id FROM sessions WHERE component IN ({}))",
                    if list.is_empty() {
                        "NULL".into()
                    } else {
                        marks
                    }
                ),
                list.clone(),
            )
        }
    };
    let sql = format!(
        "SELECT e.rowid, {FEED_COLUMNS} FROM events e WHERE e.rowid BETWEEN ?1 AND ?2{join}
         ORDER BY e.rowid LIMIT ?3"
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut read = |lo: i64, hi: i64| -> Result<Vec<session_buddy_store::FeedEvent>> {
        let mut args: Vec<SqlValue> = vec![
            SqlValue::Integer(lo),
            SqlValue::Integer(hi),
            SqlValue::Integer(limit),
        ];
        args.extend(components.iter().cloned().map(SqlValue::Text));
        Ok(stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok(session_buddy_store::FeedEvent {
                    position: r.get(0)?,
                    event: stored_event_at(r, 1)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    };
    let mut events = Vec::new();
    for &(lo, hi) in &q.recheck {
        if lo <= hi && hi <= q.after {
            events.extend(read(lo, hi)?);
        }
    }
    events.extend(read(q.after.saturating_add(1), i64::MAX)?);
    drop(stmt);
    events.sort_by_key(|e| e.position);
    events.dedup_by_key(|e| e.position);
    let position: i64 = tx.query_row("SELECT coalesce(max(rowid), 0) FROM events", [], |r| {
        r.get(0)
    })?;
    tx.commit()?;
    Ok(session_buddy_store::FeedPage { events, position })
}
