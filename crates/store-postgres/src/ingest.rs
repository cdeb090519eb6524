//! Ingest: one transaction per batch (the requests waiting together: [`crate::group`]), the
//! same semantics as the SQLite backend (the reference), safe with several servers writing at
//! once.
//!
//! 1. `pg_advisory_xact_lock` on every session of the batch, in key order: the events of one
//!    session are applied one transaction at a time, whichever server received them.
//! 2. One `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING event_id, id` for
//!    the whole batch. An event not inserted is already stored (same content: duplicate;
//!    otherwise rejected, naming `event_id`), or it is a second end (duplicate).
//! 3. The starts that open a session no earlier event of the batch names (nearly all): their
//!    sessions in one `INSERT … FROM unnest`, then one query for the events stored before them
//!    (pending; usually none), merged per session. Doing them first is doing each at its place.
//! 4. The sessions that get only new commands and heartbeats in the batch (nearly all the
//!    rest): their rows in one `SELECT … FOR UPDATE`, their counts and times in one
//!    `UPDATE … FROM unnest`, their command names in one statement, the revivals in one.
//! 5. Every other event is applied to its session in batch order. Such a start merges the
//!    pending events of its session inserted before it (`id` below its own): those committed
//!    by earlier transactions and those earlier in this batch; later ones apply themselves.

use std::collections::{BTreeMap, HashMap, HashSet};

use deadpool_postgres::{Object, Transaction};
use session_buddy_events::{Event, EventOutcome, SessionEndEvent, SessionStartEvent};
use session_buddy_store::{IngestOutcome, Origin, Prepared, SessionEffect};

use crate::error::retried;
use crate::{PgError, session_lock_key};

/// Ingests a batch in one transaction, retried after a deadlock ([`retried`]); `received[i]`
/// is when `events[i]` was received (µs), since one transaction may take the requests of
/// several callers ([`crate::group`]).
pub(crate) async fn ingest(
    conn: &mut Object,
    events: &[Prepared],
    received: &[i64],
    origin: Origin,
) -> Result<Vec<IngestOutcome>, PgError> {
    let input = (events, received);
    retried("ingest", conn, &input, |conn, (events, received)| {
        Box::pin(ingest_once(conn, events, received, origin))
    })
    .await
}

async fn ingest_once(
    conn: &mut Object,
    events: &[Prepared],
    received: &[i64],
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

    let inserted = insert_events(&tx, events, received).await?;
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let row_ids: Vec<Option<i64>> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            // Only the first copy of an id in the batch can have been the one inserted.
            let first = *first_seen.entry(e.event_id.as_str()).or_insert(i) == i;
            first
                .then(|| inserted.get(e.event_id.as_str()).copied())
                .flatten()
        })
        .collect();
    let mut outcomes: Vec<Option<IngestOutcome>> =
        start_sessions(&tx, events, &row_ids, received, origin).await?;
    apply_activity_together(&tx, events, &row_ids, received, origin, &mut outcomes).await?;
    for (i, e) in events.iter().enumerate() {
        if outcomes[i].is_some() {
            continue;
        }
        outcomes[i] = Some(match row_ids[i] {
            Some(row_id) => apply_new(&tx, e, row_id, received[i], origin).await?,
            None => already_stored(&tx, e).await?,
        });
    }
    let mut outcomes: Vec<IngestOutcome> = outcomes.into_iter().flatten().collect();
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
    received: &[i64],
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
             SELECT i, s, t, ts, r, q, p
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[],
                         $7::text[])
                  AS u(i, s, t, ts, r, q, p)
             ON CONFLICT DO NOTHING
             RETURNING event_id, id",
        )
        .await?;
    let rows = tx
        .query(
            &stmt,
            &[&ids, &sessions, &types, &ts, &received, &seqs, &payloads],
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
            let alive_us = origin.life_us(start.timestamp.timestamp_micros(), received_us);
            if insert_sessions(tx, &[(prepared, start, alive_us)])
                .await?
                .is_empty()
            {
                // Another start owns this id (same component, second and hex digits).
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
    Ok(session_rows(tx, &[session_id]).await?.pop())
}

/// The rows of the sessions that exist among `ids` (sorted), locked until commit.
async fn session_rows(tx: &Transaction<'_>, ids: &[&str]) -> Result<Vec<SessionRow>, PgError> {
    let stmt = tx
        .prepare_cached(
            "SELECT session_id, component, status, started_at, error_count,
                    heartbeat_interval IS NULL
             FROM sessions WHERE session_id = ANY($1::text[]) ORDER BY session_id FOR UPDATE",
        )
        .await?;
    Ok(tx
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(|r| SessionRow {
            session_id: r.get(0),
            component: r.get(1),
            status: r.get(2),
            started_us: r.get(3),
            error_count: r.get(4),
            legacy: r.get(5),
        })
        .collect())
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
        Event::Command(_) | Event::Heartbeat(_) => {
            let mut activity = Activity::new(&row.session_id);
            activity.add(event, alive_us);
            apply_activity(tx, &[activity]).await?;
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
    revive_all(tx, &[row.session_id.as_str()]).await?;
    Ok(Some(SessionEffect::Revived {
        component: row.component.clone(),
    }))
}

async fn revive_all(tx: &Transaction<'_>, ids: &[&str]) -> Result<(), PgError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE sessions SET status = 'active', ended_at = NULL, duration_us = NULL,
                                 end_reason = NULL
             WHERE session_id = ANY($1::text[]) AND status = 'abandoned'",
        )
        .await?;
    tx.execute(&stmt, &[&ids]).await?;
    Ok(())
}

/// What a session's commands and heartbeats do to its row, summed over several of them.
struct Activity<'a> {
    session_id: &'a str,
    commands: i64,
    failed: i64,
    /// The latest event time and life time (µs): see [`Origin::life_us`].
    seen_us: i64,
    alive_us: i64,
    /// The last command in batch order, and every command's name for the search.
    names: Vec<&'a str>,
}

impl<'a> Activity<'a> {
    fn new(session_id: &'a str) -> Self {
        Self {
            session_id,
            commands: 0,
            failed: 0,
            seen_us: i64::MIN,
            alive_us: i64::MIN,
            names: Vec::new(),
        }
    }

    /// Adds a command or a heartbeat (anything else is not activity).
    fn add(&mut self, event: &'a Event, alive_us: i64) {
        self.seen_us = self.seen_us.max(event.timestamp().timestamp_micros());
        self.alive_us = self.alive_us.max(alive_us);
        if let Event::Command(c) = event {
            self.commands += 1;
            self.failed += i64::from(!c.success);
            self.names.push(&c.command);
        }
    }
}

/// Applies commands and heartbeats to their sessions (rows that exist): the counts, the
/// latest times, the last command, and the command names for the search. Sessions with
/// heartbeats only get their times alone: their counts are not in the statement, so the
/// rollups' update trigger (`UPDATE OF command_count, …`) does not mark their hour.
async fn apply_activity(tx: &Transaction<'_>, items: &[Activity<'_>]) -> Result<(), PgError> {
    let (counted, touched): (Vec<&Activity>, Vec<&Activity>) =
        items.iter().partition(|a| a.commands > 0);
    let column = |of: &[&Activity], f: fn(&Activity<'_>) -> i64| -> Vec<i64> {
        of.iter().map(|a| f(a)).collect()
    };
    fn ids<'a>(of: &[&Activity<'a>]) -> Vec<&'a str> {
        of.iter().map(|a| a.session_id).collect()
    }
    if !touched.is_empty() {
        let stmt = tx
            .prepare_cached(
                "UPDATE sessions s SET last_seen_at = greatest(s.last_seen_at, u.seen),
                                       last_received_at = greatest(s.last_received_at, u.alive)
                 FROM unnest($1::text[], $2::int8[], $3::int8[]) AS u(id, seen, alive)
                 WHERE s.session_id = u.id",
            )
            .await?;
        let (seen, alive) = (
            column(&touched, |a| a.seen_us),
            column(&touched, |a| a.alive_us),
        );
        tx.execute(&stmt, &[&ids(&touched), &seen, &alive]).await?;
    }
    if counted.is_empty() {
        return Ok(());
    }
    let (commands, failed) = (
        column(&counted, |a| a.commands),
        column(&counted, |a| a.failed),
    );
    let (seen, alive) = (
        column(&counted, |a| a.seen_us),
        column(&counted, |a| a.alive_us),
    );
    let last: Vec<Option<&str>> = counted.iter().map(|a| a.names.last().copied()).collect();
    let pairs: Vec<(&str, &str)> = counted
        .iter()
        .flat_map(|a| a.names.iter().map(move |name| (*name, a.session_id)))
        .collect();
    let stmt = tx
        .prepare_cached(
            "UPDATE sessions s SET command_count = s.command_count + u.n,
                                   error_count = s.error_count + u.f,
                                   last_seen_at = greatest(s.last_seen_at, u.seen),
                                   last_received_at = greatest(s.last_received_at, u.alive),
                                   last_command = u.last
             FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],
                         $6::text[]) AS u(id, n, f, seen, alive, last)
             WHERE s.session_id = u.id",
        )
        .await?;
    tx.execute(
        &stmt,
        &[&ids(&counted), &commands, &failed, &seen, &alive, &last],
    )
    .await?;
    crate::search::index_commands(tx, pairs).await
}

/// The events that only add commands and heartbeats to their sessions, all at once: those of
/// the sessions whose remaining events in the batch are all new commands and heartbeats
/// (newly inserted, so not duplicates). Applying them together is applying them in order:
/// nothing else in the batch touches those sessions, and what they do sums (counts, latest
/// times, the last command; a revival by the first event that may revive). Fills their
/// outcomes; the others stay `None` for the caller.
async fn apply_activity_together(
    tx: &Transaction<'_>,
    events: &[Prepared],
    row_ids: &[Option<i64>],
    received: &[i64],
    origin: Origin,
    outcomes: &mut [Option<IngestOutcome>],
) -> Result<(), PgError> {
    let mut together: BTreeMap<&str, bool> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if outcomes[i].is_some() {
            continue;
        }
        let activity =
            row_ids[i].is_some() && matches!(e.event, Event::Command(_) | Event::Heartbeat(_));
        *together.entry(e.session_id.as_str()).or_insert(true) &= activity;
    }
    let ids: Vec<&str> = together
        .iter()
        .filter(|(_, all)| **all)
        .map(|(id, _)| *id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let rows: HashMap<String, SessionRow> = session_rows(tx, &ids)
        .await?
        .into_iter()
        .map(|r| (r.session_id.clone(), r))
        .collect();
    let mut activity: BTreeMap<&str, Activity> = BTreeMap::new();
    let mut revived: Vec<&str> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let session_id = e.session_id.as_str();
        if outcomes[i].is_some() || !together.get(session_id).copied().unwrap_or(false) {
            continue;
        }
        let mut out = IngestOutcome::new(EventOutcome::Accepted, e.session_id.clone());
        // A session not stored yet: the event waits for its start (pending).
        if let Some(row) = rows.get(session_id) {
            out.component = Some(row.component.clone());
            out.session_known = true;
            let event_us = e.event.timestamp().timestamp_micros();
            activity
                .entry(session_id)
                .or_insert_with(|| Activity::new(session_id))
                .add(&e.event, origin.life_us(event_us, received[i]));
            if row.status == "abandoned"
                && !revived.contains(&session_id)
                && origin.revives(event_us, row.legacy)
            {
                revived.push(session_id);
                out.effects.push(SessionEffect::Revived {
                    component: row.component.clone(),
                });
            }
        }
        outcomes[i] = Some(out);
    }
    let items: Vec<Activity> = activity.into_values().collect();
    if !items.is_empty() {
        apply_activity(tx, &items).await?;
    }
    if !revived.is_empty() {
        revive_all(tx, &revived).await?;
    }
    Ok(())
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
    let rows = tx.query(&stmt, &[&session_id, &start_row_id]).await?;
    let pending = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect::<Vec<_>>();
    apply_pending(tx, session_id, pending, out, origin).await
}

/// Applies a session's pending events (`(event_type, payload, received_at)`, in time order)
/// to its just-started session: the commands and heartbeats, then the end.
async fn apply_pending(
    tx: &Transaction<'_>,
    session_id: &str,
    pending: Vec<(String, String, i64)>,
    out: &mut IngestOutcome,
    origin: Origin,
) -> Result<(), PgError> {
    let mut end = None;
    for (event_type, payload, received_us) in pending {
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

/// The starts of the batch that open a session no earlier event of the batch names, all at
/// once: one `INSERT … FROM unnest` for their sessions, one query for the events stored
/// before them (pending: usually none). Doing them first is the same as doing each at its
/// place, since nothing before it in the batch touches its session. Returns their outcomes
/// at their places; `None` for every other event, which the caller applies in order.
async fn start_sessions(
    tx: &Transaction<'_>,
    events: &[Prepared],
    row_ids: &[Option<i64>],
    received: &[i64],
    origin: Origin,
) -> Result<Vec<Option<IngestOutcome>>, PgError> {
    let mut outcomes: Vec<Option<IngestOutcome>> = vec![None; events.len()];
    let mut named: HashSet<&str> = HashSet::new();
    let mut starts: Vec<(usize, &SessionStartEvent, i64)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if let (Event::SessionStart(start), Some(row_id)) = (&e.event, row_ids[i])
            && !named.contains(e.session_id.as_str())
        {
            starts.push((i, start, row_id));
        }
        named.insert(e.session_id.as_str());
    }
    if starts.is_empty() {
        return Ok(outcomes);
    }
    let new: Vec<(&Prepared, &SessionStartEvent, i64)> = starts
        .iter()
        .map(|&(i, s, _)| {
            let alive_us = origin.life_us(s.timestamp.timestamp_micros(), received[i]);
            (&events[i], s, alive_us)
        })
        .collect();
    let opened = insert_sessions(tx, &new).await?;
    let mut refused = Vec::new();
    let mut merge: Vec<(&str, i64)> = Vec::new();
    for &(i, start, row_id) in &starts {
        let session_id = events[i].session_id.as_str();
        let mut out = IngestOutcome::new(EventOutcome::Accepted, session_id.to_string());
        if opened.contains(session_id) {
            out.started(start);
            merge.push((session_id, row_id));
        } else {
            // Another start owns this id (same component, second and hex digits).
            refused.push(row_id);
            out.reject_taken_session_id();
        }
        outcomes[i] = Some(out);
    }
    if !refused.is_empty() {
        let del = tx
            .prepare_cached("DELETE FROM events WHERE id = ANY($1::int8[])")
            .await?;
        tx.execute(&del, &[&refused]).await?;
    }
    if merge.is_empty() {
        return Ok(outcomes);
    }
    let (sessions, start_rows): (Vec<&str>, Vec<i64>) = merge.into_iter().unzip();
    let stmt = tx
        .prepare_cached(
            "SELECT e.session_id, e.event_type, e.payload, e.received_at
             FROM unnest($1::text[], $2::int8[]) AS s(session_id, start_row)
             JOIN events e ON e.session_id = s.session_id AND e.id < s.start_row
             ORDER BY e.session_id, e.ts, e.id",
        )
        .await?;
    let rows = tx.query(&stmt, &[&sessions, &start_rows]).await?;
    let mut pending: BTreeMap<String, Vec<(String, String, i64)>> = BTreeMap::new();
    for r in &rows {
        pending
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2), r.get(3)));
    }
    for (session_id, events_before) in pending {
        let at = starts
            .iter()
            .find(|(i, _, _)| events[*i].session_id == session_id)
            .map(|(i, _, _)| *i);
        if let Some(out) = at.and_then(|i| outcomes[i].as_mut()) {
            apply_pending(tx, &session_id, events_before, out, origin).await?;
        }
    }
    Ok(outcomes)
}

/// Inserts the sessions of `starts` (`(prepared start, start, its life time in µs)`: see
/// [`Origin::life_us`]); returns the ids it inserted (an id not among them is held by another
/// start).
async fn insert_sessions(
    tx: &Transaction<'_>,
    starts: &[(&Prepared, &SessionStartEvent, i64)],
) -> Result<HashSet<String>, PgError> {
    let mut cols = SessionColumns::with_capacity(starts.len());
    for &(prepared, s, alive_us) in starts {
        let metadata = prepared.metadata.as_deref().unwrap_or("{}");
        cols.push(&prepared.session_id, s, metadata, alive_us);
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO sessions (
                session_id, session_type, component, shell_type, component_version, status,
                username, home, hostname, pid, platform, runtime_version, cwd,
                started_at, last_seen_at, last_received_at, heartbeat_interval, metadata,
                start_event_id)
             SELECT id, st, c, sh, cv, 'active', u, h, hn, pid, pl, rt, cwd, t, t, a, hb, m, e
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::int8[], $10::text[],
                         $11::text[], $12::text[], $13::int8[], $14::int8[], $15::int8[],
                         $16::text[], $17::text[])
                  AS u(id, st, c, sh, cv, u, h, hn, pid, pl, rt, cwd, t, a, hb, m, e)
             ON CONFLICT (session_id) DO NOTHING
             RETURNING session_id",
        )
        .await?;
    let c = &cols;
    let rows = tx
        .query(
            &stmt,
            &[
                &c.ids,
                &c.types,
                &c.components,
                &c.shells,
                &c.versions,
                &c.users,
                &c.homes,
                &c.hosts,
                &c.pids,
                &c.platforms,
                &c.runtimes,
                &c.cwds,
                &c.started,
                &c.alive,
                &c.heartbeats,
                &c.metadata,
                &c.start_ids,
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// The columns of new sessions, one array each (for `unnest`).
#[derive(Default)]
struct SessionColumns<'a> {
    ids: Vec<&'a str>,
    types: Vec<&'a str>,
    components: Vec<&'a str>,
    shells: Vec<&'a str>,
    versions: Vec<Option<String>>,
    users: Vec<&'a str>,
    homes: Vec<&'a str>,
    hosts: Vec<&'a str>,
    pids: Vec<i64>,
    platforms: Vec<&'a str>,
    runtimes: Vec<Option<String>>,
    cwds: Vec<&'a str>,
    started: Vec<i64>,
    alive: Vec<i64>,
    heartbeats: Vec<Option<i64>>,
    metadata: Vec<&'a str>,
    start_ids: Vec<String>,
}

impl<'a> SessionColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        let mut c = Self::default();
        c.ids.reserve(n);
        c
    }

    fn push(
        &mut self,
        session_id: &'a str,
        s: &'a SessionStartEvent,
        metadata: &'a str,
        alive_us: i64,
    ) {
        self.ids.push(session_id);
        self.types.push(s.session_type());
        self.components.push(&s.component_name);
        self.shells.push(&s.shell_type);
        self.versions.push(s.effective_component_version());
        self.users.push(&s.user.username);
        self.homes.push(&s.user.home);
        self.hosts.push(&s.hostname);
        self.pids.push(i64::from(s.pid));
        self.platforms.push(&s.environment.platform);
        self.runtimes.push(s.runtime_version());
        self.cwds.push(&s.environment.cwd);
        self.started.push(s.timestamp.timestamp_micros());
        self.alive.push(alive_us);
        self.heartbeats
            .push(s.heartbeat_interval_seconds.map(i64::from));
        self.metadata.push(metadata);
        self.start_ids.push(s.event_id.hyphenated().to_string());
    }
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
