//! Ingest: one transaction per call, the same semantics as the SQLite backend (the reference),
//! safe with several servers writing at once.
//!
//! 1. `pg_advisory_xact_lock` on every session of the batch, in key order: the events of one
//!    session are applied one transaction at a time, whichever server received them.
//! 2. One `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING event_id, id` for
//!    the whole batch. An event not inserted is already stored (same content: duplicate;
//!    otherwise rejected, naming `event_id`), or it is a second end (duplicate).
//! 3. Each inserted event is applied to its session in batch order. A start merges the pending
//!    events of its session inserted before it (`id` below its own): those committed by earlier
//!    transactions and those earlier in this batch; later ones apply themselves.

use std::collections::HashMap;

use deadpool_postgres::{Object, Transaction};
use session_buddy_events::{CommandEvent, Event, EventOutcome, SessionEndEvent, SessionStartEvent};
use session_buddy_store::{IngestOutcome, Origin, Prepared, SessionEffect};

use crate::error::retried;
use crate::{PgError, session_lock_key};

/// Ingests a batch in one transaction, retried after a deadlock ([`retried`]).
pub(crate) async fn ingest(
    conn: &mut Object,
    events: &[Prepared],
    received_us: i64,
    origin: Origin,
) -> Result<Vec<IngestOutcome>, PgError> {
    retried("ingest", conn, events, |conn, events| {
        Box::pin(ingest_once(conn, events, received_us, origin))
    })
    .await
}

async fn ingest_once(
    conn: &mut Object,
    events: &[Prepared],
    received_us: i64,
    origin: Origin,
) -> Result<Vec<IngestOutcome>, PgError> {
    let tx = conn.transaction().await?;
    let mut keys: Vec<i64> = events
        .iter()
        .map(|e| session_lock_key(&e.session_id))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let lock = tx
        .prepare_cached("SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::int8[]) AS k")
        .await?;
    tx.query_one(&lock, &[&keys]).await?;

    let inserted = insert_events(&tx, events, received_us).await?;
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut outcomes = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        // Only the first copy of an id in the batch can have been the one inserted.
        let first = *first_seen.entry(e.event_id.as_str()).or_insert(i) == i;
        let row_id = if first {
            inserted.get(e.event_id.as_str()).copied()
        } else {
            None
        };
        let out = match row_id {
            Some(row_id) => apply_new(&tx, e, row_id, received_us, origin).await?,
            None => already_stored(&tx, e).await?,
        };
        outcomes.push(out);
    }
    if let Some(cutoffs) = origin.import_cutoffs_us() {
        settle_imported(&tx, &mut outcomes, cutoffs).await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// The reaper's rule for one session: active, and no life since its cutoff (`cutoffs` =
/// `(active, legacy)` in µs, by whether it announced heartbeats) → abandoned at its last
/// event. Returns its component and duration (µs) when it did.
async fn abandon_if_silent(
    tx: &Transaction<'_>,
    session_id: &str,
    cutoffs: (i64, i64),
) -> Result<Option<(String, i64)>, PgError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE sessions SET status = 'abandoned', end_reason = 'heartbeat_timeout',
                    ended_at = last_seen_at, duration_us = greatest(0, last_seen_at - started_at)
             WHERE session_id = $1 AND status = 'active'
               AND last_received_at < CASE WHEN heartbeat_interval IS NULL THEN $3::int8 ELSE $2::int8 END
             RETURNING component, duration_us",
        )
        .await?;
    Ok(tx
        .query_opt(&stmt, &[&session_id, &cutoffs.0, &cutoffs.1])
        .await?
        .map(|r| (r.get(0), r.get(1))))
}

/// An import's last step for each session it touched: abandon the silent ones at their last
/// event; an abandoned one that got older events keeps ending at its (new) last event.
async fn settle_imported(
    tx: &Transaction<'_>,
    outcomes: &mut [IngestOutcome],
    cutoffs: (i64, i64),
) -> Result<(), PgError> {
    let mut abandoned = Vec::new();
    for session_id in session_buddy_store::sessions_of(outcomes) {
        match abandon_if_silent(tx, &session_id, cutoffs).await? {
            Some((component, duration_us)) => abandoned.push((session_id, component, duration_us)),
            None => {
                let stmt = tx
                    .prepare_cached(
                        "UPDATE sessions SET ended_at = last_seen_at,
                                duration_us = greatest(0, last_seen_at - started_at)
                         WHERE session_id = $1 AND status = 'abandoned'
                           AND end_reason = 'heartbeat_timeout' AND ended_at < last_seen_at",
                    )
                    .await?;
                tx.execute(&stmt, &[&session_id]).await?;
            }
        }
    }
    session_buddy_store::attach_abandoned(outcomes, abandoned);
    Ok(())
}

/// Inserts the batch; returns the stored row id of each event id it inserted.
async fn insert_events(
    tx: &Transaction<'_>,
    events: &[Prepared],
    received_us: i64,
) -> Result<HashMap<String, i64>, PgError> {
    let n = events.len();
    let (mut ids, mut sessions, mut types, mut ts, mut seqs, mut payloads) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for e in events {
        ids.push(e.event_id.as_str());
        sessions.push(e.session_id.as_str());
        types.push(e.event.event_type().as_str());
        ts.push(e.event.timestamp().timestamp_micros());
        seqs.push(match &e.event {
            Event::Command(c) => Some(c.seq as i64),
            _ => None,
        });
        payloads.push(e.payload.as_str());
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO events (event_id, session_id, event_type, ts, received_at, seq, payload)
             SELECT i, s, t, ts, $5, q, p
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $6::int8[], $7::text[])
                  AS u(i, s, t, ts, q, p)
             ON CONFLICT DO NOTHING
             RETURNING event_id, id",
        )
        .await?;
    let rows = tx
        .query(
            &stmt,
            &[&ids, &sessions, &types, &ts, &received_us, &seqs, &payloads],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect())
}

/// The event was just inserted: apply it to its session.
async fn apply_new(
    tx: &Transaction<'_>,
    prepared: &Prepared,
    row_id: i64,
    received_us: i64,
    origin: Origin,
) -> Result<IngestOutcome, PgError> {
    let session_id = prepared.session_id.clone();
    let mut out = IngestOutcome::new(EventOutcome::Accepted, session_id.clone());
    match &prepared.event {
        Event::SessionStart(start) => {
            let metadata = prepared.metadata.as_deref().unwrap_or("{}");
            let alive_us = origin.life_us(start.timestamp.timestamp_micros(), received_us);
            if !insert_session(tx, start, metadata, alive_us).await? {
                // Another start owns this id (same component, second and last 6 hex).
                let del = tx
                    .prepare_cached("DELETE FROM events WHERE id = $1")
                    .await?;
                tx.execute(&del, &[&row_id]).await?;
                out.reject_taken_session_id();
                return Ok(out);
            }
            out.started(start);
            merge_pending(tx, &session_id, row_id, &mut out, origin).await?;
        }
        other => {
            if let Some(row) = session_row(tx, &session_id).await? {
                out.component = Some(row.component.clone());
                out.session_known = true;
                if let Some(effect) = apply_to_session(tx, &row, other, received_us, origin).await?
                {
                    out.effects.push(effect);
                }
            }
        }
    }
    Ok(out)
}

/// The event id is taken (or, for an end, the session already has one): a duplicate when the
/// content is the same, a rejection naming `event_id` when it is not.
async fn already_stored(
    tx: &Transaction<'_>,
    prepared: &Prepared,
) -> Result<IngestOutcome, PgError> {
    let Prepared {
        event,
        event_id,
        session_id,
        payload,
        ..
    } = prepared;
    let stmt = tx
        .prepare_cached("SELECT payload FROM events WHERE event_id = $1")
        .await?;
    let stored: Option<String> = tx.query_opt(&stmt, &[event_id]).await?.map(|r| r.get(0));
    let known = session_row(tx, session_id).await?;
    let mut out = IngestOutcome::new(EventOutcome::Duplicate, session_id.clone());
    out.component = known.as_ref().map(|r| r.component.clone());
    out.session_known = known.is_some();
    if let Some(error) =
        session_buddy_store::conflict_with_stored(event, event_id, payload, stored.as_deref())
    {
        out.status = EventOutcome::Rejected;
        out.error = Some(error);
    }
    Ok(out)
}

/// `alive_us`: the start's life time ([`Origin::life_us`]).
async fn insert_session(
    tx: &Transaction<'_>,
    s: &SessionStartEvent,
    metadata: &str,
    alive_us: i64,
) -> Result<bool, PgError> {
    let started = s.timestamp.timestamp_micros();
    let runtime = s.runtime_version();
    let component_version = s.effective_component_version();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO sessions (
                session_id, session_type, component, shell_type, component_version, status,
                username, home, hostname, pid, platform, runtime_version, cwd,
                started_at, last_seen_at, last_received_at, heartbeat_interval, metadata,
                start_event_id)
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $9, $10, $11, $12, $13, $13, $14,
                     $15, $16, $17)
             ON CONFLICT (session_id) DO NOTHING",
        )
        .await?;
    let n = tx
        .execute(
            &stmt,
            &[
                &s.session_id(),
                &s.session_type(),
                &s.component_name,
                &s.shell_type,
                &component_version,
                &s.user.username,
                &s.user.home,
                &s.hostname,
                &i64::from(s.pid),
                &s.environment.platform,
                &runtime,
                &s.environment.cwd,
                &started,
                &alive_us,
                &s.heartbeat_interval_seconds.map(i64::from),
                &metadata,
                &s.event_id.hyphenated().to_string(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// The columns of a session the ingest path needs.
struct SessionRow {
    session_id: String,
    component: String,
    status: String,
    started_us: i64,
    error_count: i64,
    /// It announced no heartbeats (the legacy TTL applies).
    legacy: bool,
}

/// The session's row, locked until commit (the reaper skips locked rows).
async fn session_row(
    tx: &Transaction<'_>,
    session_id: &str,
) -> Result<Option<SessionRow>, PgError> {
    let stmt = tx
        .prepare_cached(
            "SELECT session_id, component, status, started_at, error_count,
                    heartbeat_interval IS NULL
             FROM sessions WHERE session_id = $1 FOR UPDATE",
        )
        .await?;
    Ok(tx
        .query_opt(&stmt, &[&session_id])
        .await?
        .map(|r| SessionRow {
            session_id: r.get(0),
            component: r.get(1),
            status: r.get(2),
            started_us: r.get(3),
            error_count: r.get(4),
            legacy: r.get(5),
        }))
}

async fn apply_to_session(
    tx: &Transaction<'_>,
    row: &SessionRow,
    event: &Event,
    received_us: i64,
    origin: Origin,
) -> Result<Option<SessionEffect>, PgError> {
    let event_us = event.timestamp().timestamp_micros();
    let alive_us = origin.life_us(event_us, received_us);
    match event {
        Event::SessionStart(_) => Ok(None),
        Event::SessionEnd(end) => apply_end(tx, row, end, alive_us).await.map(Some),
        Event::Command(c) => {
            apply_command(tx, &row.session_id, c, alive_us).await?;
            revive(tx, row, origin.revives(event_us, row.legacy)).await
        }
        Event::Heartbeat(_) => {
            touch(tx, &row.session_id, event_us, alive_us).await?;
            revive(tx, row, origin.revives(event_us, row.legacy)).await
        }
        Event::Output(_) => Ok(None),
    }
}

/// A reaped session that speaks again was only silent (a long outage): active again, when
/// the event `revives` it ([`Origin::revives`]).
async fn revive(
    tx: &Transaction<'_>,
    row: &SessionRow,
    revives: bool,
) -> Result<Option<SessionEffect>, PgError> {
    if row.status != "abandoned" || !revives {
        return Ok(None);
    }
    let stmt = tx
        .prepare_cached(
            "UPDATE sessions SET status = 'active', ended_at = NULL, duration_us = NULL,
                                 end_reason = NULL
             WHERE session_id = $1 AND status = 'abandoned'",
        )
        .await?;
    tx.execute(&stmt, &[&row.session_id]).await?;
    Ok(Some(SessionEffect::Revived {
        component: row.component.clone(),
    }))
}

async fn touch(
    tx: &Transaction<'_>,
    session_id: &str,
    ts_us: i64,
    alive_us: i64,
) -> Result<(), PgError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE sessions SET last_seen_at = greatest(last_seen_at, $2),
                                 last_received_at = greatest(last_received_at, $3)
             WHERE session_id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&session_id, &ts_us, &alive_us]).await?;
    Ok(())
}

async fn apply_command(
    tx: &Transaction<'_>,
    session_id: &str,
    c: &CommandEvent,
    alive_us: i64,
) -> Result<(), PgError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE sessions SET command_count = command_count + 1,
                                 error_count = error_count + $2,
                                 last_seen_at = greatest(last_seen_at, $3),
                                 last_received_at = greatest(last_received_at, $4),
                                 last_command = $5
             WHERE session_id = $1",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &session_id,
            &i64::from(!c.success),
            &c.timestamp.timestamp_micros(),
            &alive_us,
            &c.command,
        ],
    )
    .await?;
    crate::search::index_command(tx, session_id, &c.command).await
}

async fn apply_end(
    tx: &Transaction<'_>,
    row: &SessionRow,
    end: &SessionEndEvent,
    alive_us: i64,
) -> Result<SessionEffect, PgError> {
    let end_us = end.timestamp.timestamp_micros();
    let reason = end.end_reason();
    let (duration_us, effect) = session_buddy_store::end_effect(
        &row.component,
        &row.status,
        row.started_us,
        row.error_count,
        end,
    );
    let stmt = tx
        .prepare_cached(
            "UPDATE sessions SET status = 'ended', ended_at = $2, duration_us = $3,
                                 exit_code = $4, signal = $5, end_reason = $6,
                                 last_seen_at = greatest(last_seen_at, $2),
                                 last_received_at = greatest(last_received_at, $7)
             WHERE session_id = $1",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &row.session_id,
            &end_us,
            &duration_us,
            &end.exit_code.map(i64::from),
            &end.signal,
            &reason,
            &alive_us,
        ],
    )
    .await?;
    Ok(effect)
}

/// A start just arrived: fold in the commands, heartbeats and end stored before it.
async fn merge_pending(
    tx: &Transaction<'_>,
    session_id: &str,
    start_row_id: i64,
    out: &mut IngestOutcome,
    origin: Origin,
) -> Result<(), PgError> {
    let stmt = tx
        .prepare_cached(
            "SELECT event_type, payload, received_at FROM events
             WHERE session_id = $1 AND id < $2 ORDER BY ts, id",
        )
        .await?;
    let pending = tx.query(&stmt, &[&session_id, &start_row_id]).await?;
    if pending.is_empty() {
        return Ok(());
    }
    let mut end = None;
    for r in &pending {
        let (event_type, payload, received_us): (String, String, i64) =
            (r.get(0), r.get(1), r.get(2));
        match decode_stored(&event_type, &payload)? {
            Event::SessionEnd(e) => end = Some((e, received_us)),
            other => {
                if let Some(row) = session_row(tx, session_id).await? {
                    apply_to_session(tx, &row, &other, received_us, origin).await?;
                }
            }
        }
    }
    if let Some((e, received_us)) = end
        && let Some(row) = session_row(tx, session_id).await?
    {
        let alive_us = origin.life_us(e.timestamp.timestamp_micros(), received_us);
        out.effects.push(apply_end(tx, &row, &e, alive_us).await?);
    }
    Ok(())
}

pub(crate) fn decode_stored(event_type: &str, payload: &str) -> Result<Event, PgError> {
    let corrupt =
        |e: serde_json::Error| PgError::Corrupt(format!("stored {event_type} event: {e}"));
    Ok(match event_type {
        "session_start" => Event::SessionStart(serde_json::from_str(payload).map_err(corrupt)?),
        "session_end" => Event::SessionEnd(serde_json::from_str(payload).map_err(corrupt)?),
        "command" => Event::Command(serde_json::from_str(payload).map_err(corrupt)?),
        "heartbeat" => Event::Heartbeat(serde_json::from_str(payload).map_err(corrupt)?),
        other => {
            return Err(PgError::Corrupt(format!(
                "unknown stored event type '{other}'"
            )));
        }
    })
}
