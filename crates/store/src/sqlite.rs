//! The embedded SQLite backend.
//!
//! One writer thread owns the only write connection and commits many events per transaction
//! (group commit: it takes the first waiting request, then every request already queued, up to
//! [`MAX_GROUP_EVENTS`], and answers them all after one commit). Reads run on a small pool of
//! read-only connections in `spawn_blocking`. WAL mode: a commit is in the WAL file before the
//! writer answers, so an acknowledged event survives a crash of the process; `SyncMode::Full`
//! also fsyncs every commit (power loss).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use serde_json::{Map, Value};
use session_buddy_events::{
    CommandEvent, Event, EventOutcome, Session, SessionEndEvent, SessionPage, SessionStartEvent,
    SessionStatus, StoredEvent,
};
use tokio::sync::oneshot;

mod analytics;

pub(crate) use analytics::analytics_sql;

use crate::analytics::{ActiveSessions, AnalyticsWindow, ComponentSummary};
use crate::{
    ComponentQuality, EventFilter, IngestOutcome, MAX_PAGE, Origin, Pruned, REDACT_BATCH, Reaped,
    Redaction, Result, SessionEffect, SessionFilter, Store, StoreError, StoreHealth,
};

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// WAL with `synchronous=NORMAL`: durable against a crash of the process.
    #[default]
    Normal,
    /// `synchronous=FULL`: durable against power loss too.
    Full,
}

/// Most events one group commit takes.
const MAX_GROUP_EVENTS: usize = 8192;
/// Read connections kept open.
const READ_POOL: usize = 8;

const MIGRATIONS: &[&str] = &[
    include_str!("sqlite/0001_initial.sql"),
    include_str!("sqlite/0002_revoked_tokens.sql"),
    include_str!("sqlite/0003_analytics.sql"),
    include_str!("sqlite/0004_events_by_time.sql"),
];

/// An event with everything the writer needs already serialised, so the single writer
/// thread spends its time in SQLite only.
struct Prepared {
    event: Event,
    event_id: String,
    session_id: String,
    payload: String,
    /// For a start: its metadata as JSON text.
    metadata: Option<String>,
}

impl Prepared {
    fn new(event: Event) -> Self {
        let metadata = match &event {
            Event::SessionStart(s) => Some(Value::Object(s.metadata.clone()).to_string()),
            _ => None,
        };
        Self {
            event_id: event.storage_id().hyphenated().to_string(),
            session_id: event.session_id(),
            payload: event.to_canonical_json(),
            metadata,
            event,
        }
    }
}

struct IngestRequest {
    events: Vec<Prepared>,
    received_at: DateTime<Utc>,
    origin: Origin,
    reply: oneshot::Sender<Result<Vec<IngestOutcome>>>,
}

/// Work for the writer thread: ingest batches are grouped into one transaction; a job runs
/// alone, in order with them.
enum Request {
    Ingest(IngestRequest),
    Job(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    sender: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub fn open(path: &Path, sync: SyncMode) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let conn = open_writer(path, sync)?;
        migrate(&conn)?;
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let checkpointer = {
            let (db, stop) = (path.to_path_buf(), stop.clone());
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || checkpoint_loop(&db, &stop))
                .map_err(|e| StoreError::Open {
                    path: path.display().to_string(),
                    source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
                })?
        };
        Ok(Self {
            path: path.to_path_buf(),
            sender: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            checkpointer: Mutex::new(Some(checkpointer)),
            stop,
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn submit(&self, request: Request) -> Result<()> {
        let guard = self.sender.lock().map_err(|_| StoreError::WriterGone)?;
        let sender = guard.as_ref().ok_or(StoreError::WriterGone)?;
        sender.send(request).map_err(|_| StoreError::WriterGone)
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = pool.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => open_reader(&path)?,
            };
            let out = f(&conn);
            if let Ok(mut p) = pool.lock()
                && p.len() < READ_POOL
            {
                p.push(conn);
            }
            out
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }
}

fn open_writer(path: &Path, sync: SyncMode) -> Result<Connection> {
    // One thread owns this connection: SQLite's per-connection mutex is not needed.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source,
    })?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous={};
         PRAGMA busy_timeout=5000;
         PRAGMA temp_store=MEMORY;
         PRAGMA cache_size=-65536;
         PRAGMA wal_autocheckpoint=0;
         PRAGMA journal_size_limit=67108864;",
        match sync {
            SyncMode::Normal => "NORMAL",
            SyncMode::Full => "FULL",
        }
    ))?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source,
    })?;
    conn.execute_batch("PRAGMA query_only=1; PRAGMA busy_timeout=5000; PRAGMA cache_size=-8192;")?;
    Ok(conn)
}

/// Copies the WAL back into the database off the writer's thread (the writer's automatic
/// checkpoints are off), so commits never wait for a checkpoint. PASSIVE never blocks the
/// writer; when the WAL grows past [`WAL_RESTART_BYTES`] a RESTART lets it wrap around.
fn checkpoint_loop(path: &Path, stop: &AtomicBool) {
    let Ok(conn) = Connection::open(path) else {
        tracing::error!(path = %path.display(), "cannot open the checkpoint connection; the WAL will grow until restart");
        return;
    };
    let _ = conn.execute_batch("PRAGMA busy_timeout=1000;");
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_RESTART_BYTES);
        let mode = if big { "RESTART" } else { "PASSIVE" };
        if let Err(e) = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

/// WAL size beyond which the checkpointer forces the log to wrap around.
const WAL_RESTART_BYTES: u64 = 256 * 1024 * 1024;

fn migrate(conn: &Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let target = MIGRATIONS.len() as i64;
    if current > target {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {current}, newer than this program's {target}; \
             upgrade session-buddy"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version={}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Request>) {
    let mut carried: Option<Request> = None;
    loop {
        let first = match carried.take() {
            Some(r) => r,
            None => match rx.recv() {
                Ok(r) => r,
                Err(_) => break,
            },
        };
        let first = match first {
            Request::Job(job) => {
                job(&mut conn);
                continue;
            }
            Request::Ingest(r) => r,
        };
        let mut events = first.events.len().max(1);
        let mut group = vec![first];
        while events < MAX_GROUP_EVENTS {
            match rx.try_recv() {
                Ok(Request::Ingest(next)) => {
                    events += next.events.len().max(1);
                    group.push(next);
                }
                Ok(job) => {
                    carried = Some(job);
                    break;
                }
                Err(_) => break,
            }
        }
        commit_group(&mut conn, group);
    }
    // Channel closed: every request sent before has been answered. Checkpoint so the WAL
    // does not have to be replayed at the next start.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

fn commit_group(conn: &mut Connection, group: Vec<IngestRequest>) {
    let attempt = (|| -> Result<Vec<Vec<IngestOutcome>>> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut all = Vec::with_capacity(group.len());
        for r in &group {
            all.push(ingest_events(&tx, &r.events, r.received_at, r.origin)?);
        }
        tx.commit()?;
        Ok(all)
    })();
    match attempt {
        Ok(all) => {
            for (r, outcomes) in group.into_iter().zip(all) {
                let _ = r.reply.send(Ok(outcomes));
            }
        }
        Err(err) if group.len() == 1 => {
            if let Some(r) = group.into_iter().next() {
                let _ = r.reply.send(Err(err));
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, requests = group.len(), "group commit failed; retrying requests one by one");
            for request in group {
                commit_group(conn, vec![request]);
            }
        }
    }
}

/// Marks the candidates abandoned, re-checking under the write lock that each is still active
/// and still silent since the cutoff (a late event may have arrived since they were read).
fn reap_candidates(
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
    for session_id in crate::sessions_of(outcomes) {
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
    crate::attach_abandoned(outcomes, abandoned);
    Ok(())
}

fn ingest_events(
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
    if let Some(error) = crate::conflict_with_stored(event, event_id, payload, stored.as_deref()) {
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
                             last_received_at = max(last_received_at, ?4)
         WHERE session_id = ?1",
    )?
    .execute(params![
        session_id,
        i64::from(!c.success),
        c.timestamp.timestamp_micros(),
        alive_us
    ])?;
    Ok(())
}

fn apply_end(
    tx: &Transaction<'_>,
    row: &SessionRow,
    end: &SessionEndEvent,
    alive_us: i64,
) -> Result<SessionEffect> {
    let end_us = end.timestamp.timestamp_micros();
    let reason = end.end_reason();
    let (duration_us, effect) = crate::end_effect(
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
            return Err(StoreError::Corrupt(format!(
                "unknown stored event type '{other}'"
            )));
        }
    })
}

const SESSION_COLUMNS: &str =
    "session_id, session_type, component, shell_type, component_version, status,
    username, home, hostname, pid, platform, runtime_version, cwd, started_at, ended_at,
    last_seen_at, duration_us, command_count, error_count, exit_code, end_reason, metadata";

fn micros(us: i64) -> DateTime<Utc> {
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
    })
}

fn stored_event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let payload: String = r.get(6)?;
    Ok(StoredEvent {
        event_id: r.get(0)?,
        session_id: r.get(1)?,
        event_type: r.get(2)?,
        timestamp: micros(r.get(3)?),
        received_at: micros(r.get(4)?),
        seq: r.get::<_, Option<i64>>(5)?.map(|s| s.max(0) as u64),
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
    })
}

fn list_sessions_blocking(conn: &Connection, f: &SessionFilter) -> Result<SessionPage> {
    let (tail, args) = crate::session_page_query(f, '?')?;
    let args = args.into_iter().map(|a| match a {
        crate::SqlArg::Text(t) => SqlValue::Text(t),
        crate::SqlArg::Int(i) => SqlValue::Integer(i),
    });
    let mut stmt = conn.prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions{tail}"))?;
    let sessions: Vec<Session> = stmt
        .query_map(rusqlite::params_from_iter(args), session_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(crate::page_of(sessions, f))
}

const EVENT_COLUMNS: &str = "event_id, session_id, event_type, ts, received_at, seq, payload";

#[async_trait]
impl Store for SqliteStore {
    async fn ingest_from(
        &self,
        events: Vec<Event>,
        received_at: DateTime<Utc>,
        origin: Origin,
    ) -> Result<Vec<IngestOutcome>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.submit(Request::Ingest(IngestRequest {
            events: events.into_iter().map(Prepared::new).collect(),
            received_at,
            origin,
            reply,
        }))?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn list_sessions(&self, filter: SessionFilter) -> Result<SessionPage> {
        self.read(move |c| list_sessions_blocking(c, &filter)).await
    }

    async fn get_session(&self, session_id: &str) -> Result<Option<Session>> {
        let id = session_id.to_string();
        self.read(move |c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = ?1"
            ))?
            .query_row([id], session_from_row)
            .optional()?)
        })
        .await
    }

    async fn session_events(&self, session_id: &str) -> Result<Vec<StoredEvent>> {
        let id = session_id.to_string();
        self.read(move |c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE session_id = ?1 ORDER BY ts, rowid"
            ))?
            .query_map([id], stored_event_from_row)?
            .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn list_events(&self, filter: EventFilter) -> Result<Vec<StoredEvent>> {
        self.read(move |c| {
            let limit = filter.limit.clamp(1, MAX_PAGE) as i64;
            let event_type = filter.event_type.map(|t| t.as_str().to_string());
            let sql = match (&filter.session_id, &event_type) {
                (Some(_), _) => format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE session_id = ?1
                     AND (?2 IS NULL OR event_type = ?2) ORDER BY ts, rowid LIMIT ?3"
                ),
                // The latest by their own time, ties by arrival.
                (None, _) => format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE ?1 IS NULL
                     AND (?2 IS NULL OR event_type = ?2) ORDER BY ts DESC, rowid DESC LIMIT ?3"
                ),
            };
            Ok(c.prepare_cached(&sql)?
                .query_map(
                    params![filter.session_id, event_type, limit],
                    stored_event_from_row,
                )?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn active_by_component(&self) -> Result<BTreeMap<String, u64>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT component, count(*) FROM sessions WHERE status = 'active' GROUP BY component",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = BTreeMap::new();
            for row in rows {
                let (c, n) = row?;
                out.insert(c, n.max(0) as u64);
            }
            Ok(out)
        })
        .await
    }

    async fn quality_by_component(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, ComponentQuality>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT component, count(*),
                        sum(status = 'ended'),
                        sum(status = 'abandoned' OR error_count > 0
                            OR coalesce(exit_code, 0) != 0 OR signal IS NOT NULL
                            OR coalesce(end_reason, '') = 'error'),
                        sum(status = 'abandoned'),
                        sum(command_count), sum(error_count)
                 FROM sessions WHERE started_at >= ?1 GROUP BY component",
            )?;
            let rows = stmt.query_map([since.timestamp_micros()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    ComponentQuality {
                        sessions: r.get::<_, i64>(1)?.max(0) as u64,
                        ended: r.get::<_, i64>(2)?.max(0) as u64,
                        failed_sessions: r.get::<_, i64>(3)?.max(0) as u64,
                        abandoned: r.get::<_, i64>(4)?.max(0) as u64,
                        commands: r.get::<_, i64>(5)?.max(0) as u64,
                        failed_commands: r.get::<_, i64>(6)?.max(0) as u64,
                    },
                ))
            })?;
            rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()
                .map_err(StoreError::from)
        })
        .await
    }

    async fn analytics_summary(&self, window: AnalyticsWindow) -> Result<Vec<ComponentSummary>> {
        self.read(move |c| analytics::summary(c, &window)).await
    }

    async fn analytics_common_errors(
        &self,
        window: AnalyticsWindow,
    ) -> Result<BTreeMap<String, String>> {
        self.read(move |c| analytics::common_errors(c, &window))
            .await
    }

    async fn analytics_active(
        &self,
        component: Option<String>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<ActiveSessions> {
        self.read(move |c| analytics::active(c, component.as_deref(), limit, now))
            .await
    }

    async fn health(&self) -> Result<StoreHealth> {
        let location = self.path.display().to_string();
        self.read(move |c| {
            let schema_version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            Ok(StoreHealth {
                backend: "sqlite",
                location,
                schema_version,
                reachable: true,
            })
        })
        .await
    }

    async fn reap(
        &self,
        active_cutoff: DateTime<Utc>,
        legacy_cutoff: DateTime<Utc>,
    ) -> Result<Vec<Reaped>> {
        let cutoffs = (
            active_cutoff.timestamp_micros(),
            legacy_cutoff.timestamp_micros(),
        );
        // Find candidates on a reader, so the scan never holds up ingest.
        let candidates: Vec<String> = self
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT session_id FROM sessions
                     WHERE status = 'active'
                       AND last_received_at < CASE WHEN heartbeat_interval IS NULL THEN ?2 ELSE ?1 END
                     LIMIT 10000",
                )?;
                let rows = stmt.query_map(params![cutoffs.0, cutoffs.1], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.submit(Request::Job(Box::new(move |conn| {
            let _ = reply.send(reap_candidates(conn, &candidates, cutoffs));
        })))?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn revoke_token(&self, jti: &str, expires_at: Option<DateTime<Utc>>) -> Result<()> {
        let jti = jti.to_string();
        let expires_us = expires_at.map(|t| t.timestamp_micros());
        let (reply, answer) = oneshot::channel();
        self.submit(Request::Job(Box::new(move |conn| {
            let now = Utc::now().timestamp_micros();
            let result = (|| -> Result<()> {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute(
                    "INSERT INTO revoked_tokens (jti, revoked_at, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (jti) DO UPDATE SET expires_at =
                       CASE WHEN excluded.expires_at IS NULL OR expires_at IS NULL THEN NULL
                            ELSE max(expires_at, excluded.expires_at) END",
                    params![jti, now, expires_us],
                )?;
                // Revocations of tokens that expired a day ago protect nothing any more.
                tx.execute(
                    "DELETE FROM revoked_tokens WHERE expires_at IS NOT NULL AND expires_at < ?1",
                    params![now - 86_400_000_000],
                )?;
                tx.commit()?;
                Ok(())
            })();
            let _ = reply.send(result);
        })))?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool> {
        let jti = jti.to_string();
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT 1 FROM revoked_tokens WHERE jti = ?1")?
                    .query_row([jti], |_| Ok(()))
                    .optional()?
                    .is_some(),
            )
        })
        .await
    }

    async fn revoked_tokens(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let now_us = now.timestamp_micros();
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT jti FROM revoked_tokens WHERE expires_at IS NULL OR expires_at >= ?1",
            )?
            .query_map([now_us], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn prune(&self, started_before: DateTime<Utc>, batch: usize) -> Result<Pruned> {
        let cutoff = started_before.timestamp_micros();
        let batch = batch.max(1) as i64;
        let (reply, answer) = oneshot::channel();
        self.submit(Request::Job(Box::new(move |conn| {
            let result = (|| -> Result<Pruned> {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let ids: Vec<String> = tx
                    .prepare_cached(
                        "SELECT session_id FROM sessions
                         WHERE status != 'active' AND started_at < ?1 LIMIT ?2",
                    )?
                    .query_map(params![cutoff, batch], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut pruned = Pruned::default();
                for id in &ids {
                    pruned.events += tx
                        .prepare_cached("DELETE FROM events WHERE session_id = ?1")?
                        .execute([id])? as u64;
                    pruned.sessions += tx
                        .prepare_cached("DELETE FROM sessions WHERE session_id = ?1")?
                        .execute([id])? as u64;
                }
                // Pending events whose start never came.
                pruned.events += tx
                    .prepare_cached(
                        "DELETE FROM events WHERE rowid IN (
                           SELECT e.rowid FROM events e
                           WHERE e.ts < ?1 AND NOT EXISTS
                             (SELECT 1 FROM sessions s WHERE s.session_id = e.session_id)
                           LIMIT ?2)",
                    )?
                    .execute(params![cutoff, batch])? as u64;
                tx.commit()?;
                Ok(pruned)
            })();
            let _ = reply.send(result);
        })))?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn events_in_time_order(
        &self,
        since: Option<DateTime<Utc>>,
        after: Option<(DateTime<Utc>, String)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let since = since.map_or(i64::MIN, |t| t.timestamp_micros());
        let (after_ts, after_id) = after.map_or((i64::MIN, String::new()), |(t, id)| {
            (t.timestamp_micros(), id)
        });
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        self.read(move |c| {
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
        })
        .await
    }

    async fn redact_stored(&self, apply: bool) -> Result<Redaction> {
        let mut report = Redaction {
            applied: apply,
            ..Redaction::default()
        };
        let mut after: i64 = 0;
        loop {
            // Read a batch on a reader and compute the new payloads there, so the writer only
            // runs the updates.
            let (last, examined, changes) = self
                .read(move |c| {
                    let rows: Vec<(i64, String, String)> = c
                        .prepare_cached(
                            "SELECT rowid, event_id, payload FROM events
                             WHERE rowid > ?1 AND event_type = 'command' ORDER BY rowid LIMIT ?2",
                        )?
                        .query_map(params![after, REDACT_BATCH as i64], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?
                        .collect::<rusqlite::Result<_>>()?;
                    let last = rows.last().map(|r| r.0);
                    let examined = rows.len();
                    let changes: Vec<(String, String, String)> = rows
                        .into_iter()
                        .filter_map(|(_, id, old)| {
                            crate::reredacted_payload(&old).map(|new| (id, old, new))
                        })
                        .collect();
                    Ok((last, examined, changes))
                })
                .await?;
            let Some(last) = last else {
                break;
            };
            after = last;
            report.examined += examined as u64;
            if !apply {
                report.changed += changes.len() as u64;
            } else if !changes.is_empty() {
                let (reply, answer) = oneshot::channel();
                self.submit(Request::Job(Box::new(move |conn| {
                    let result = (|| -> Result<u64> {
                        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                        let mut changed = 0;
                        for (id, old, new) in &changes {
                            // Only if it is still what was read.
                            changed += tx
                                .prepare_cached(
                                    "UPDATE events SET payload = ?1
                                     WHERE event_id = ?2 AND payload = ?3",
                                )?
                                .execute(params![new, id, old])?
                                as u64;
                        }
                        tx.commit()?;
                        Ok(changed)
                    })();
                    let _ = reply.send(result);
                })))?;
                report.changed += answer.await.map_err(|_| StoreError::WriterGone)??;
            }
            if examined < REDACT_BATCH {
                break;
            }
        }
        Ok(report)
    }

    async fn close(&self) {
        // Dropping the sender ends the writer loop once every queued request is answered.
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        self.stop.store(true, Ordering::Relaxed);
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        let checkpointer = self.checkpointer.lock().ok().and_then(|mut w| w.take());
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(h) = checkpointer {
                let _ = h.join();
            }
            if let Some(h) = writer {
                let _ = h.join();
            }
        })
        .await;
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.checkpointer.lock().ok().and_then(|mut w| w.take()) {
            let _ = h.join();
        }
        if let Some(h) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = h.join();
        }
    }
}
