//! The durable local buffer: `$SESSION_BUDDY_HOME/buffer.db`, SQLite in WAL mode, shared by
//! every process of the host.
//!
//! `queue` holds undelivered events in FIFO order (an `AUTOINCREMENT` id, never reused),
//! `dead_letters` the events the server rejected [`MAX_REJECTIONS`] times, `state` the last
//! delivery result, the breaker and the drop counters (so any process can show them), and
//! `totals` one row of counts kept by triggers, so a bound check costs one row read.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::config::BufferLimits;
use crate::error::ClientError;
use crate::journal::{self, Line, journal_dir};
use crate::outcome::DeliveryOutcome;

/// Rejections by the server after which an event moves to the dead letters.
pub const MAX_REJECTIONS: u32 = 3;

/// The buffer's file name inside the home directory.
pub const BUFFER_FILE: &str = "buffer.db";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT    NOT NULL,
    session_id  TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    bytes       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT    NOT NULL,
    session_id  TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    bytes       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  TEXT,
    dead_at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS totals (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    events INTEGER NOT NULL,
    bytes  INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (id, events, bytes) VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS queue_ins AFTER INSERT ON queue BEGIN
    UPDATE totals SET events = events + 1, bytes = bytes + NEW.bytes WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS queue_del AFTER DELETE ON queue BEGIN
    UPDATE totals SET events = events - 1, bytes = bytes - OLD.bytes WHERE id = 1;
END;
PRAGMA user_version = 1;
"#;

/// Version 2: how far each session journal has been moved into the queue.
const SCHEMA_2: &str = r#"
CREATE TABLE IF NOT EXISTS journal_offsets (
    name    TEXT PRIMARY KEY,
    offset  INTEGER NOT NULL
);
PRAGMA user_version = 2;
"#;

const K_LAST_DELIVERY: &str = "last_delivery";
const K_BREAKER: &str = "breaker";
const K_DROPPED_TOTAL: &str = "dropped_total";
const K_DROPPED_UNREPORTED: &str = "dropped_unreported";
const K_DROPPED_REASONS: &str = "dropped_reasons";

/// An event ready to be buffered: its ids and its JSON text as it will be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent {
    pub event_id: String,
    pub session_id: String,
    pub event_type: String,
    pub payload: String,
}

impl OutgoingEvent {
    /// From a wire event; the JSON is the one the server will store.
    pub fn from_event(event: &session_buddy_events::Event) -> Result<Self, ClientError> {
        Ok(Self {
            event_id: event.storage_id().to_string(),
            session_id: event.session_id(),
            event_type: event.event_type().as_str().to_string(),
            payload: serde_json::to_string(event)?,
        })
    }
}

/// A queued (or dead-lettered) event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BufferedEvent {
    /// Position in the queue (FIFO order).
    pub id: i64,
    pub event_id: String,
    pub session_id: String,
    pub event_type: String,
    /// The event's JSON text.
    pub payload: String,
    pub bytes: u64,
    pub created_at: DateTime<Utc>,
    /// Times the server rejected it.
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// Counts and state of the buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferStats {
    pub path: PathBuf,
    /// Events waiting for delivery: queued, or written to a session journal and not yet moved
    /// into the queue.
    pub pending: u64,
    pub pending_bytes: u64,
    pub oldest_pending: Option<DateTime<Utc>>,
    pub dead_letters: u64,
    /// Events dropped by the bounds, ever.
    pub dropped: u64,
    /// Dropped events not yet reported as a `tracking.events_dropped` command.
    pub dropped_unreported: u64,
    pub breaker: BreakerState,
    pub last_delivery: Option<DeliveryRecord>,
}

/// What `purge` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeWhat {
    All,
    DeadLetters,
    Pending,
}

/// The circuit breaker, as the sender last recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Nothing touches the network until `until`.
    Open { until: DateTime<Utc> },
    /// The next call is a probe; success closes the breaker.
    HalfOpen,
}

/// The result of the last delivery attempt on this host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub at: DateTime<Utc>,
    /// What the call came to.
    pub outcome: DeliveryOutcome,
    /// Since when calls have not been answered (the first such call after the last answered
    /// one; see [`DeliveryOutcome::answered`]).
    pub failing_since: Option<DateTime<Utc>>,
}

/// What the server said about one sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// `accepted` or `duplicate`: remove it.
    Delivered,
    /// `rejected`: count it; dead-letter after [`MAX_REJECTIONS`].
    Rejected(String),
    /// Dead-letter it now (an envelope 4xx for this event alone).
    DeadLetter(String),
}

/// Counts of one [`Buffer::settle`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettleCounts {
    pub delivered: u64,
    pub rejected: u64,
    pub dead_lettered: u64,
}

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: i64,
    /// Older events dropped to stay within the bounds (possibly this one too).
    pub dropped: u64,
}

/// The durable buffer. One connection; cheap to open; safe to share between threads and
/// processes.
pub struct Buffer {
    conn: Mutex<Connection>,
    path: PathBuf,
    limits: BufferLimits,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer").field("path", &self.path).finish()
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Buffer {
    /// Opens (creating if needed) `home/buffer.db`.
    pub fn open(home: &Path, limits: BufferLimits) -> Result<Buffer, ClientError> {
        std::fs::create_dir_all(home).map_err(|source| ClientError::Home {
            path: home.to_path_buf(),
            source,
        })?;
        let path = home.join(BUFFER_FILE);
        // Several processes (or a shell's banner and its sender) may create the file at the
        // same moment; switching a new file to WAL then reports "locked" at once instead of
        // waiting, so the whole open is retried for a while.
        let deadline = std::time::Instant::now() + OPEN_PATIENCE;
        loop {
            match open_connection(&path) {
                Ok(conn) => {
                    return Ok(Buffer {
                        conn: Mutex::new(conn),
                        path,
                        limits,
                    });
                }
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(source) => return Err(ClientError::Open { path, source }),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn limits(&self) -> BufferLimits {
        self.limits
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an event durably (committed to the WAL before this returns), then drops the
    /// oldest events while a bound is exceeded.
    pub fn enqueue(&self, event: &OutgoingEvent) -> Result<Enqueued, ClientError> {
        self.enqueue_at(event, Utc::now())
    }

    /// [`enqueue`](Self::enqueue) with an explicit clock (the age bound is relative to `now`).
    pub fn enqueue_at(
        &self,
        event: &OutgoingEvent,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, ClientError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = insert(&tx, event, now, now, self.limits)?;
        tx.commit()?;
        Ok(out)
    }

    /// Moves what the session journals hold into the queue (slot by slot, each in the order
    /// written), and empties the slots no writer holds once wholly moved. Safe against
    /// concurrent importers: each slot is read inside the write transaction that records its
    /// offset. Returns the events moved.
    pub fn import_journals(&self) -> Result<u64, ClientError> {
        let home = self.path.parent().unwrap_or(Path::new("."));
        let read_err = |source| ClientError::JournalRead {
            path: journal_dir(home),
            source,
        };
        let segs = journal::segments(home).map_err(read_err)?;
        let mut moved = 0;
        let mut conn = self.conn();
        if segs.is_empty() {
            return Ok(0);
        }
        // Offsets of journal files someone removed.
        let known: Vec<String> = conn
            .prepare_cached("SELECT name FROM journal_offsets")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for name in known {
            if !journal_dir(home).join(&name).exists() {
                conn.execute("DELETE FROM journal_offsets WHERE name = ?1", [&name])?;
            }
        }
        for (name, path) in segs {
            moved += import_segment(&mut conn, &name, &path, self.limits).map_err(|e| match e {
                ImportError::Io(source) => ClientError::JournalRead { path, source },
                ImportError::Buffer(e) => e,
            })?;
        }
        Ok(moved)
    }

    /// The oldest `limit` queued events, oldest first.
    pub fn fetch_batch(&self, limit: usize) -> Result<Vec<BufferedEvent>, ClientError> {
        let conn = self.conn();
        select_events(&conn, "queue", limit)
    }

    /// Queued events, oldest first (for `event-buffer list`).
    pub fn list(&self, limit: usize) -> Result<Vec<BufferedEvent>, ClientError> {
        self.fetch_batch(limit)
    }

    /// Dead letters, oldest first.
    pub fn list_dead_letters(&self, limit: usize) -> Result<Vec<BufferedEvent>, ClientError> {
        let conn = self.conn();
        select_events(&conn, "dead_letters", limit)
    }

    /// Applies the server's answers about sent events, in one transaction. Ids no longer queued
    /// (delivered meanwhile by another sender, purged) are skipped.
    pub fn settle(&self, items: &[(i64, Settlement)]) -> Result<SettleCounts, ClientError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut counts = SettleCounts::default();
        let now = micros(Utc::now());
        {
            let mut delete = tx.prepare_cached("DELETE FROM queue WHERE id = ?1")?;
            let mut reject = tx.prepare_cached(
                "UPDATE queue SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1 \
                 RETURNING attempts",
            )?;
            let mut bury = tx.prepare_cached(
                "INSERT OR REPLACE INTO dead_letters \
                 (id, event_id, session_id, event_type, payload, bytes, created_at, attempts, last_error, dead_at) \
                 SELECT id, event_id, session_id, event_type, payload, bytes, created_at, attempts, ?2, ?3 \
                 FROM queue WHERE id = ?1",
            )?;
            for (id, settlement) in items {
                match settlement {
                    Settlement::Delivered => {
                        counts.delivered +=
                            to_u64(i64::try_from(delete.execute([id])?).unwrap_or(0));
                    }
                    Settlement::Rejected(error) => {
                        let attempts: Option<i64> = reject
                            .query_row(params![id, error], |r| r.get(0))
                            .optional()?;
                        let Some(attempts) = attempts else { continue };
                        counts.rejected += 1;
                        if attempts >= i64::from(MAX_REJECTIONS) {
                            bury.execute(params![id, error, now])?;
                            delete.execute([id])?;
                            counts.dead_lettered += 1;
                        }
                    }
                    Settlement::DeadLetter(error) => {
                        if bury.execute(params![id, error, now])? > 0 {
                            delete.execute([id])?;
                            counts.dead_lettered += 1;
                        }
                    }
                }
            }
        }
        tx.commit()?;
        Ok(counts)
    }

    /// Records the result of a delivery call, for every process of the host to show; keeps
    /// `failing_since` across unanswered calls.
    pub fn record_delivery(
        &self,
        outcome: DeliveryOutcome,
        at: DateTime<Utc>,
    ) -> Result<DeliveryRecord, ClientError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let previous: Option<DeliveryRecord> = get_json(&tx, K_LAST_DELIVERY)?;
        let failing_since = if outcome.answered() {
            None
        } else {
            previous
                .and_then(|p| {
                    if p.outcome.answered() {
                        None
                    } else {
                        p.failing_since
                    }
                })
                .or(Some(at))
        };
        let record = DeliveryRecord {
            at,
            outcome,
            failing_since,
        };
        set_json(&tx, K_LAST_DELIVERY, &record)?;
        tx.commit()?;
        Ok(record)
    }

    pub fn last_delivery(&self) -> Result<Option<DeliveryRecord>, ClientError> {
        let conn = self.conn();
        get_json(&conn, K_LAST_DELIVERY)
    }

    /// The breaker as last recorded; an open breaker whose time is up reads as half-open.
    pub fn breaker(&self) -> Result<BreakerState, ClientError> {
        let conn = self.conn();
        let state: Option<BreakerState> = get_json(&conn, K_BREAKER)?;
        Ok(match state {
            Some(BreakerState::Open { until }) if until <= Utc::now() => BreakerState::HalfOpen,
            Some(s) => s,
            None => BreakerState::Closed,
        })
    }

    pub fn set_breaker(&self, state: &BreakerState) -> Result<(), ClientError> {
        let conn = self.conn();
        set_json(&conn, K_BREAKER, state)
    }

    /// If events were dropped and not yet reported, enqueues the report `make(n, reasons)`
    /// builds and resets the count, in one transaction. Returns how many drops it reported.
    pub fn report_drops(
        &self,
        make: impl FnOnce(u64, &str) -> Option<OutgoingEvent>,
    ) -> Result<u64, ClientError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = get_u64(&tx, K_DROPPED_UNREPORTED)?;
        if n == 0 {
            return Ok(0);
        }
        let reasons = get_text(&tx, K_DROPPED_REASONS)?.unwrap_or_default();
        let Some(event) = make(n, &reasons) else {
            return Ok(0);
        };
        set_text(&tx, K_DROPPED_UNREPORTED, "0")?;
        set_text(&tx, K_DROPPED_REASONS, "")?;
        let now = Utc::now();
        insert(&tx, &event, now, now, self.limits)?;
        tx.commit()?;
        Ok(n)
    }

    pub fn stats(&self) -> Result<BufferStats, ClientError> {
        let conn = self.conn();
        let (pending, pending_bytes): (i64, i64) =
            conn.query_row("SELECT events, bytes FROM totals WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let oldest: Option<i64> = conn
            .query_row(
                "SELECT created_at FROM queue ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let home = self.path.parent().unwrap_or(Path::new("."));
        let (journal_events, journal_bytes, journal_oldest) = journal_pending(&conn, home)?;
        let oldest = match (oldest, journal_oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let dead_letters: i64 =
            conn.query_row("SELECT count(*) FROM dead_letters", [], |r| r.get(0))?;
        let breaker: Option<BreakerState> = get_json(&conn, K_BREAKER)?;
        let breaker = match breaker {
            Some(BreakerState::Open { until }) if until <= Utc::now() => BreakerState::HalfOpen,
            Some(s) => s,
            None => BreakerState::Closed,
        };
        Ok(BufferStats {
            path: self.path.clone(),
            pending: to_u64(pending) + journal_events,
            pending_bytes: to_u64(pending_bytes) + journal_bytes,
            oldest_pending: oldest.map(from_micros),
            dead_letters: to_u64(dead_letters),
            dropped: get_u64(&conn, K_DROPPED_TOTAL)?,
            dropped_unreported: get_u64(&conn, K_DROPPED_UNREPORTED)?,
            breaker,
            last_delivery: get_json(&conn, K_LAST_DELIVERY)?,
        })
    }

    /// Removes queued events, dead letters or both; returns how many.
    pub fn purge(&self, what: PurgeWhat) -> Result<u64, ClientError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0;
        if matches!(what, PurgeWhat::All | PurgeWhat::Pending) {
            n += tx.execute("DELETE FROM queue", [])?;
        }
        if matches!(what, PurgeWhat::All | PurgeWhat::DeadLetters) {
            n += tx.execute("DELETE FROM dead_letters", [])?;
        }
        tx.commit()?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

/// Inserts one event and enforces the bounds by dropping the oldest.
fn insert(
    tx: &Transaction<'_>,
    event: &OutgoingEvent,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
    limits: BufferLimits,
) -> Result<Enqueued, ClientError> {
    let bytes = event.payload.len() as u64;
    tx.prepare_cached(
        "INSERT INTO queue (event_id, session_id, event_type, payload, bytes, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        event.event_id,
        event.session_id,
        event.event_type,
        event.payload,
        to_i64(bytes),
        micros(created)
    ])?;
    let id = tx.last_insert_rowid();
    let (events, total_bytes): (i64, i64) = tx
        .prepare_cached("SELECT events, bytes FROM totals WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut dropped = 0u64;
    let mut reasons: Vec<String> = Vec::new();

    let excess = to_u64(events).saturating_sub(limits.max_events);
    if excess > 0 {
        let n = tx.execute(
            "DELETE FROM queue WHERE id IN (SELECT id FROM queue ORDER BY id LIMIT ?1)",
            [to_i64(excess)],
        )?;
        dropped += n as u64;
        reasons.push(format!("buffer over {} events", limits.max_events));
    }
    let total_bytes: i64 = if excess > 0 {
        tx.prepare_cached("SELECT bytes FROM totals WHERE id = 1")?
            .query_row([], |r| r.get(0))?
    } else {
        total_bytes
    };
    if to_u64(total_bytes) > limits.max_bytes {
        let mut to_free = to_u64(total_bytes) - limits.max_bytes;
        let mut last_id = None;
        {
            let mut stmt = tx.prepare("SELECT id, bytes FROM queue ORDER BY id")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (rid, b): (i64, i64) = (row.get(0)?, row.get(1)?);
                last_id = Some(rid);
                to_free = to_free.saturating_sub(to_u64(b));
                if to_free == 0 {
                    break;
                }
            }
        }
        if let Some(last) = last_id {
            let n = tx.execute("DELETE FROM queue WHERE id <= ?1", [last])?;
            dropped += n as u64;
            reasons.push(format!("buffer over {} bytes", limits.max_bytes));
        }
    }
    let max_age = chrono::Duration::from_std(limits.max_age).unwrap_or(chrono::Duration::MAX);
    let cutoff = micros(now.checked_sub_signed(max_age).unwrap_or_default());
    let oldest: Option<i64> = tx
        .prepare_cached("SELECT created_at FROM queue ORDER BY id LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    if oldest.is_some_and(|t| t < cutoff) {
        // Ids follow time, so the expired events are at the head; delete in slices to keep
        // each statement short.
        loop {
            let n = tx.execute(
                "DELETE FROM queue WHERE id IN \
                 (SELECT id FROM queue ORDER BY id LIMIT 1000) AND created_at < ?1",
                [cutoff],
            )?;
            dropped += n as u64;
            if n < 1000 {
                break;
            }
        }
        reasons.push(format!("older than {}", describe_age(limits.max_age)));
    }
    if dropped > 0 {
        tracing::warn!(dropped, reasons = %reasons.join(", "), "event buffer full: dropped the oldest events");
        record_drops(tx, dropped, &reasons)?;
    }
    Ok(Enqueued { id, dropped })
}

/// Counts dropped events (in total and not yet reported) and remembers why.
fn record_drops(conn: &Connection, dropped: u64, reasons: &[String]) -> Result<(), ClientError> {
    let total = get_u64(conn, K_DROPPED_TOTAL)? + dropped;
    set_text(conn, K_DROPPED_TOTAL, &total.to_string())?;
    let unreported = get_u64(conn, K_DROPPED_UNREPORTED)? + dropped;
    set_text(conn, K_DROPPED_UNREPORTED, &unreported.to_string())?;
    let mut all: Vec<String> = get_text(conn, K_DROPPED_REASONS)?
        .unwrap_or_default()
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for r in reasons {
        if !all.contains(r) {
            all.push(r.clone());
        }
    }
    set_text(conn, K_DROPPED_REASONS, &all.join(", "))
}

enum ImportError {
    Io(std::io::Error),
    Buffer(ClientError),
}

impl From<rusqlite::Error> for ImportError {
    fn from(e: rusqlite::Error) -> Self {
        ImportError::Buffer(e.into())
    }
}

impl From<ClientError> for ImportError {
    fn from(e: ClientError) -> Self {
        ImportError::Buffer(e)
    }
}

/// Moves one journal slot's new lines into the queue; empties the slot when no writer holds it
/// and everything in it is moved.
fn import_segment(
    conn: &mut Connection,
    name: &str,
    path: &Path,
    limits: BufferLimits,
) -> Result<u64, ImportError> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::FileExt;

    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(ImportError::Io(e)),
    };
    // Taken before reading and held to the end: with it, no writer appends meanwhile, so a
    // line without its newline was cut by a crash, and the slot may be emptied.
    let idle = file.try_lock().is_ok();
    // Nothing new and nothing to empty (an empty slot, or a writer's slot read to its end):
    // no write transaction, which would only contend with the other processes of the host.
    let len = file.metadata().map_err(ImportError::Io)?.len();
    if len == 0 || (!idle && recorded_offset(conn, name)? == len) {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again inside the transaction: another importer may have moved lines meanwhile.
    let recorded = recorded_offset(&tx, name)?;
    let len = file.metadata().map_err(ImportError::Io)?.len();
    // An offset past the end: the file was emptied behind our back; all of it is new.
    let offset = if recorded > len { 0 } else { recorded };
    let mut new = Vec::new();
    file.seek(SeekFrom::Start(offset))
        .map_err(ImportError::Io)?;
    file.read_to_end(&mut new).map_err(ImportError::Io)?;
    let chunk = journal::parse_chunk(&new, idle);
    let now = Utc::now();
    let max_age = chrono::Duration::from_std(limits.max_age).unwrap_or(chrono::Duration::MAX);
    let cutoff = micros(now.checked_sub_signed(max_age).unwrap_or_default());
    let mut moved = 0;
    let mut unreadable = 0u64;
    let mut expired = 0u64;
    for line in chunk.lines {
        match line {
            // A journal left unimported past the age bound (no sender ran on this host):
            // dropped as the queue drops its own expired events.
            Some(Line::Event { created_us, .. }) if created_us < cutoff => expired += 1,
            Some(Line::Event { created_us, event }) => {
                insert(&tx, &event, from_micros(created_us), now, limits)?;
                moved += 1;
            }
            Some(Line::Dropped { count, reason }) => record_drops(&tx, count, &[reason])?,
            None => unreadable += 1,
        }
    }
    if expired > 0 {
        tracing::warn!(journal = %path.display(), expired, "dropped expired journal lines");
        let reason = format!("older than {}", describe_age(limits.max_age));
        record_drops(&tx, expired, &[reason])?;
    }
    if unreadable > 0 {
        tracing::warn!(journal = %path.display(), unreadable, "dropped unreadable journal lines");
        record_drops(&tx, unreadable, &["unreadable journal line".to_string()])?;
    }
    let end = offset + chunk.consumed;
    let empty_it = idle && chunk.consumed == new.len() as u64 && end > 0;
    if empty_it {
        tx.prepare_cached("DELETE FROM journal_offsets WHERE name = ?1")?
            .execute([name])?;
        // Emptied inside the transaction: another importer reads the offset only after our
        // commit, and then finds the file empty too, never its old lines from offset 0.
        file.set_len(0).map_err(ImportError::Io)?;
    } else if end != recorded {
        tx.prepare_cached(
            "INSERT INTO journal_offsets (name, offset) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET offset = excluded.offset",
        )?
        .execute(params![name, to_i64(end)])?;
    }
    if let Err(e) = tx.commit() {
        if empty_it {
            // Nothing was moved after all: put the lines back where the offset still points.
            if let Err(w) = file.write_all_at(&new, offset) {
                tracing::error!(journal = %path.display(), error = %w, "cannot restore a journal after a failed import");
            }
        }
        return Err(e.into());
    }
    if !idle && end / journal::RECLAIM_BYTES > recorded / journal::RECLAIM_BYTES {
        // A long session still writes here: free the disk space of what is moved.
        let upto = end & !4095;
        let punched = nix::fcntl::fallocate(
            &file,
            nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
            0,
            i64::try_from(upto).unwrap_or(0),
        );
        if let Err(e) = punched {
            tracing::debug!(journal = %path.display(), error = %e, "cannot free the moved part of a journal");
        }
    }
    Ok(moved)
}

/// How far the journal slot `name` has been moved into the queue (0 when never).
fn recorded_offset(conn: &Connection, name: &str) -> rusqlite::Result<u64> {
    Ok(conn
        .prepare_cached("SELECT offset FROM journal_offsets WHERE name = ?1")?
        .query_row([name], |r| r.get::<_, i64>(0))
        .optional()?
        .map_or(0, to_u64))
}

/// Events in the journals not yet moved into the queue: (count, bytes, oldest creation).
fn journal_pending(conn: &Connection, home: &Path) -> Result<(u64, u64, Option<i64>), ClientError> {
    use std::io::{Read, Seek, SeekFrom};
    let segs = journal::segments(home).map_err(|source| ClientError::JournalRead {
        path: journal_dir(home),
        source,
    })?;
    let (mut events, mut bytes, mut oldest) = (0u64, 0u64, None::<i64>);
    for (name, path) in segs {
        let offset = recorded_offset(conn, &name)?;
        let Ok(mut file) = std::fs::File::open(&path) else {
            continue;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let offset = if offset > len { 0 } else { offset };
        let mut buf = Vec::new();
        if file.seek(SeekFrom::Start(offset)).is_err() || file.read_to_end(&mut buf).is_err() {
            continue;
        }
        for line in journal::parse_chunk(&buf, false)
            .lines
            .into_iter()
            .flatten()
        {
            if let Line::Event { created_us, event } = line {
                events += 1;
                bytes += event.payload.len() as u64;
                oldest = Some(oldest.map_or(created_us, |o| o.min(created_us)));
            }
        }
    }
    Ok((events, bytes, oldest))
}

/// How long [`Buffer::open`] keeps trying while another opener holds the new file.
const OPEN_PATIENCE: Duration = Duration::from_secs(5);

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < 2 {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have upgraded it meanwhile: the scripts are idempotent.
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(SCHEMA_2)?;
        tx.commit()?;
    }
    Ok(conn)
}

fn describe_age(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 86_400 && secs.is_multiple_of(86_400) {
        format!("{} days", secs / 86_400)
    } else {
        format!("{secs} s")
    }
}

fn select_events(
    conn: &Connection,
    table: &str,
    limit: usize,
) -> Result<Vec<BufferedEvent>, ClientError> {
    let sql = format!(
        "SELECT id, event_id, session_id, event_type, payload, bytes, created_at, attempts, last_error \
         FROM {table} ORDER BY id LIMIT ?1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        Ok(BufferedEvent {
            id: r.get(0)?,
            event_id: r.get(1)?,
            session_id: r.get(2)?,
            event_type: r.get(3)?,
            payload: r.get(4)?,
            bytes: to_u64(r.get(5)?),
            created_at: from_micros(r.get(6)?),
            attempts: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(u32::MAX),
            last_error: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn get_text(conn: &Connection, key: &str) -> Result<Option<String>, ClientError> {
    Ok(conn
        .prepare_cached("SELECT value FROM state WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

fn set_text(conn: &Connection, key: &str, value: &str) -> Result<(), ClientError> {
    conn.prepare_cached(
        "INSERT INTO state (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

fn get_u64(conn: &Connection, key: &str) -> Result<u64, ClientError> {
    Ok(get_text(conn, key)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn get_json<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    key: &str,
) -> Result<Option<T>, ClientError> {
    // A value another version wrote that we cannot read is treated as absent.
    Ok(get_text(conn, key)?.and_then(|v| serde_json::from_str(&v).ok()))
}

fn set_json<T: Serialize>(conn: &Connection, key: &str, value: &T) -> Result<(), ClientError> {
    set_text(conn, key, &serde_json::to_string(value)?)
}

#[cfg(test)]
mod open_tests {
    use super::*;

    /// A shell's first start: its banner and its sender open a buffer that does not exist
    /// yet at the same moment. Both must get it.
    #[test]
    fn concurrent_first_opens_all_succeed() {
        for _ in 0..50 {
            let dir = tempfile::tempdir().unwrap();
            let home = dir.path().to_path_buf();
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let home = home.clone();
                    std::thread::spawn(move || {
                        Buffer::open(&home, BufferLimits::default()).map(|b| b.stats().is_ok())
                    })
                })
                .collect();
            for t in threads {
                let r = t.join().unwrap();
                assert!(matches!(r, Ok(true)), "{r:?}");
            }
        }
    }
}
