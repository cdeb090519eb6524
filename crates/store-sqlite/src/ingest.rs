//! Ingest on SQLite: the writer thread's rules for one batch in one transaction (insert each
//! event, a duplicate or rejection when its id is taken, apply it to its session, merge what
//! came before a start) and the reaper's abandonment under the write lock.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use session_buddy_events::{CommandEvent, Event, EventOutcome, SessionEndEvent, SessionStartEvent};
use session_buddy_store::{IngestOutcome, Origin, Prepared, Reaped, SessionEffect, StoreError};

use crate::Result;

/// Marks the candidates abandoned, re-checking under the write lock that each is still active
/// and still silent since the cutoff (a late event may have arrived since they were read).
pub(crate) fn reap_candidates(
    conn: &mut Connection,
    candidates: &[String],
    cutoffs: (i64, i64),
) -> Result<Vec<Reaped>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut reaped = Vec::new();
    for session_id in candidates {
        if let Some((component, duration_us)) = abandon_if_silent(&tx, session_id, cutoffs)? {
            reaped.push(Reaped {
                session_id: session_id.clone(),
                component,
                duration_seconds: duration_us as f64 / 1e6,
            });
        }
    }
    tx.commit()?;
    Ok(reaped)
}

/// The reaper's rule for one session: active, and no life since its cutoff (`cutoffs` =
/// `(active, legacy)` in µs, by whether it announced heartbeats) → abandoned at its last
/// event. Returns its component and duration (µs) when it did.
fn abandon_if_silent(
    tx: &Transaction<'_>,
    session_id: &str,
    cutoffs: (i64, i64),
) -> Result<Option<(String, i64)>> {
    Ok(tx
        .prepare_cached(
            "UPDATE sessions SET status = 'abandoned', end_reason = 'heartbeat_timeout',
                    ended_at = last_seen_at, duration_us = max(0, last_seen_at - started_at)
             WHERE session_id = ?1 AND status = 'active'
               AND last_received_at < CASE WHEN heartbeat_interval IS NULL THEN ?3 ELSE ?2 END
             RETURNING component, duration_us",
        )?
        .query_row(params![session_id, cutoffs.0, cutoffs.1], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

/// An import's last step for each session it touched: abandon the silent ones at their last
/// event; an abandoned one that got older events keeps ending at its (new) last event.
fn settle_imported(
    tx: &Transaction<'_>,
    outcomes: &mut [IngestOutcome],
    cutoffs: (i64, i64),
) -> Result<()> {
    let mut abandoned = Vec::new();
    for session_id in session_buddy_store::sessions_of(outcomes) {
        match abandon_if_silent(tx, &session_id, cutoffs)? {
            Some((component, duration_us)) => abandoned.push((session_id, component, duration_us)),
            None => {
                tx.prepare_cached(
                    "UPDATE sessions SET ended_at = last_seen_at,
                            duration_us = max(0, last_seen_at - started_at)
                     WHERE session_id = ?1 AND status = 'abandoned'
                       AND end_reason = 'heartbeat_timeout' AND ended_at < last_seen_at",
                )?
                .execute([&session_id])?;
            }
        }
    }
    session_buddy_store::attach_abandoned(outcomes, abandoned);
    Ok(())
}

pub(crate) fn ingest_events(
    tx: &Transaction<'_>,
    events: &[Prepared],
    received_at: DateTime<Utc>,
    origin: Origin,
) -> Result<Vec<IngestOutcome>> {
    let received_us = received_at.timestamp_micros();
    let mut outcomes = events
        .iter()
        .map(|e| ingest_one(tx, e, received_us, origin))
        .collect::<Result<Vec<_>>>()?;
    if let Some(cutoffs) = origin.import_cutoffs_us() {
        settle_imported(tx, &mut outcomes, cutoffs)?;
    }
    Ok(outcomes)
}

fn ingest_one(
    tx: &Transaction<'_>,
    prepared: &Prepared,
    received_us: i64,
    origin: Origin,
) -> Result<IngestOutcome> {
    let Prepared {
        event,
        event_id,
        session_id,
        payload,
        metadata,
    } = prepared;
    let (event_id, session_id) = (event_id.as_str(), session_id.clone());
    if matches!(event, Event::Output(_)) {
        return Ok(IngestOutcome::output_is_not_an_event(session_id));
    }
    let seq = match event {
        Event::Command(c) => Some(c.seq as i64),
        _ => None,
    };
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO events (event_id, session_id, event_type, ts, received_at, seq, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            event_id,
            session_id,
            event.event_type().as_str(),
            event.timestamp().timestamp_micros(),
            received_us,
            seq,
            payload
        ])?;
    if inserted == 0 {
        return already_stored(tx, event, event_id, session_id, payload);
    }
    let mut out = IngestOutcome::new(EventOutcome::Accepted, session_id.clone());
    match event {
        Event::SessionStart(start) => {
            let alive_us = origin.life_us(start.timestamp.timestamp_micros(), received_us);
            let created = insert_session(tx, start, metadata.as_deref().unwrap_or("{}"), alive_us)?;
            if !created {
                // Another start owns this id (same component, second and last 6 hex).
                tx.prepare_cached("DELETE FROM events WHERE event_id = ?1")?
                    .execute([&event_id])?;
                out.reject_taken_session_id();
                return Ok(out);
            }
            out.started(start);
            merge_pending(tx, &session_id, event_id, &mut out, origin)?;
        }
        other => {
            if let Some(row) = session_row(tx, &session_id)? {
                out.component = Some(row.component.clone());
                out.session_known = true;
                if let Some(effect) = apply_to_session(tx, &row, other, received_us, origin)? {
                    out.effects.push(effect);
                }
            }
        }
    }
    Ok(out)
}

/// The event id is taken (or, for an end, the session already has one): a duplicate when the
/// content is the same, a rejection naming `event_id` when it is not.
fn already_stored(
    tx: &Transaction<'_>,
    event: &Event,
    event_id: &str,
    session_id: String,
    payload: &str,
) -> Result<IngestOutcome> {
    let stored: Option<String> = tx
        .prepare_cached("SELECT payload FROM events WHERE event_id = ?1")?
        .query_row([event_id], |r| r.get(0))
        .optional()?;
    let known = session_row(tx, &session_id)?;
    let mut out = IngestOutcome::new(EventOutcome::Duplicate, session_id);
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
fn insert_session(
    tx: &Transaction<'_>,
    s: &SessionStartEvent,
    metadata: &str,
    alive_us: i64,
) -> Result<bool> {
    let started = s.timestamp.timestamp_micros();
    let runtime = s.runtime_version();
    let component_version = s.effective_component_version();
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO sessions (
                session_id, session_type, component, shell_type, component_version, status,
                username, home, hostname, pid, platform, runtime_version, cwd,
                started_at, last_seen_at, last_received_at, heartbeat_interval, metadata,
                start_event_id)
             VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14, ?15, ?16, ?17)",
        )?
        .execute(params![
            s.session_id(),
            s.session_type(),
            s.component_name,
            s.shell_type,
            component_version,
            s.user.username,
            s.user.home,
            s.hostname,
            s.pid,
            s.environment.platform,
            runtime,
            s.environment.cwd,
            started,
            alive_us,
            s.heartbeat_interval_seconds,
            metadata,
            s.event_id.hyphenated().to_string(),
        ])?;
    // Its searchable fields are indexed behind ingest (`search::Indexer`).
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

fn session_row(tx: &Transaction<'_>, session_id: &str) -> Result<Option<SessionRow>> {
    Ok(tx
        .prepare_cached(
            "SELECT session_id, component, status, started_at, error_count,
                    heartbeat_interval IS NULL
             FROM sessions WHERE session_id = ?1",
        )?
        .query_row([session_id], |r| {
            Ok(SessionRow {
                session_id: r.get(0)?,
                component: r.get(1)?,
                status: r.get(2)?,
                started_us: r.get(3)?,
                error_count: r.get(4)?,
                legacy: r.get(5)?,
            })
        })
        .optional()?)
}

fn apply_to_session(
    tx: &Transaction<'_>,
    row: &SessionRow,
    event: &Event,
    received_us: i64,
    origin: Origin,
) -> Result<Option<SessionEffect>> {
    let event_us = event.timestamp().timestamp_micros();
    let alive_us = origin.life_us(event_us, received_us);
    match event {
        Event::SessionStart(_) => Ok(None),
        Event::SessionEnd(end) => apply_end(tx, row, end, alive_us).map(Some),
        Event::Command(c) => {
            apply_command(tx, &row.session_id, c, alive_us)?;
            revive(tx, row, origin.revives(event_us, row.legacy))
        }
        Event::Heartbeat(_) => {
            touch(tx, &row.session_id, event_us, alive_us)?;
            revive(tx, row, origin.revives(event_us, row.legacy))
        }
        Event::Output(_) => Ok(None),
    }
}

/// A reaped session that speaks again was only silent (a long outage): active again, when
/// the event `revives` it ([`Origin::revives`]).
fn revive(tx: &Transaction<'_>, row: &SessionRow, revives: bool) -> Result<Option<SessionEffect>> {
    if row.status != "abandoned" || !revives {
        return Ok(None);
    }
    tx.prepare_cached(
        "UPDATE sessions SET status = 'active', ended_at = NULL, duration_us = NULL, end_reason = NULL
         WHERE session_id = ?1 AND status = 'abandoned'",
    )?
    .execute([&row.session_id])?;
    Ok(Some(SessionEffect::Revived {
        component: row.component.clone(),
    }))
}

fn touch(tx: &Transaction<'_>, session_id: &str, ts_us: i64, alive_us: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE sessions SET last_seen_at = max(last_seen_at, ?2),
                             last_received_at = max(last_received_at, ?3)
         WHERE session_id = ?1",
    )?
    .execute(params![session_id, ts_us, alive_us])?;
    Ok(())
}

fn apply_command(
    tx: &Transaction<'_>,
    session_id: &str,
    c: &CommandEvent,
    alive_us: i64,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE sessions SET command_count = command_count + 1,
                             error_count = error_count + ?2,
                             last_seen_at = max(last_seen_at, ?3),
                             last_received_at = max(last_received_at, ?4),
                             last_command = ?5
         WHERE session_id = ?1",
    )?
    .execute(params![
        session_id,
        i64::from(!c.success),
        c.timestamp.timestamp_micros(),
        alive_us,
        c.command
    ])?;
    crate::search::index_command(tx, session_id, &c.command)
}

fn apply_end(
    tx: &Transaction<'_>,
    row: &SessionRow,
    end: &SessionEndEvent,
    alive_us: i64,
) -> Result<SessionEffect> {
    let end_us = end.timestamp.timestamp_micros();
    let reason = end.end_reason();
    let (duration_us, effect) = session_buddy_store::end_effect(
        &row.component,
        &row.status,
        row.started_us,
        row.error_count,
        end,
    );
    tx.prepare_cached(
        "UPDATE sessions SET status = 'ended', ended_at = ?2, duration_us = ?3,
                             exit_code = ?4, signal = ?5, end_reason = ?6,
                             last_seen_at = max(last_seen_at, ?2),
                             last_received_at = max(last_received_at, ?7)
         WHERE session_id = ?1",
    )?
    .execute(params![
        row.session_id,
        end_us,
        duration_us,
        end.exit_code,
        end.signal,
        reason,
        alive_us
    ])?;
    Ok(effect)
}

/// A start just arrived: fold in the commands, heartbeats and end that came before it.
fn merge_pending(
    tx: &Transaction<'_>,
    session_id: &str,
    start_id: &str,
    out: &mut IngestOutcome,
    origin: Origin,
) -> Result<()> {
    let pending: Vec<(String, String, i64)> = tx
        .prepare_cached(
            "SELECT event_type, payload, received_at FROM events
             WHERE session_id = ?1 AND event_id != ?2 ORDER BY ts, rowid",
        )?
        .query_map([session_id, start_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if pending.is_empty() {
        return Ok(());
    }
    let mut end = None;
    for (event_type, payload, received_us) in pending {
        let event = decode_stored(&event_type, &payload)?;
        match event {
            Event::SessionEnd(e) => end = Some((e, received_us)),
            other => {
                if let Some(row) = session_row(tx, session_id)? {
                    apply_to_session(tx, &row, &other, received_us, origin)?;
                }
            }
        }
    }
    if let (Some((e, received_us)), Some(row)) = (end, session_row(tx, session_id)?) {
        let alive_us = origin.life_us(e.timestamp.timestamp_micros(), received_us);
        out.effects.push(apply_end(tx, &row, &e, alive_us)?);
    }
    Ok(())
}

fn decode_stored(event_type: &str, payload: &str) -> Result<Event> {
    let corrupt =
        |e: serde_json::Error| StoreError::Corrupt(format!("stored {event_type} event: {e}"));
    Ok(match event_type {
        "session_start" => Event::SessionStart(serde_json::from_str(payload).map_err(corrupt)?),
        "session_end" => Event::SessionEnd(serde_json::from_str(payload).map_err(corrupt)?),
        "command" => Event::Command(serde_json::from_str(payload).map_err(corrupt)?),
        "heartbeat" => Event::Heartbeat(serde_json::from_str(payload).map_err(corrupt)?),
        other => {
            return Err(StoreError::Corrupt(format!("unknown stored event type '{other}'")).into());
        }
    })
}
