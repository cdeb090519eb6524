//! The durable local buffer: `$SESSION_BUDDY_HOME/buffer.db`, SQLite in WAL mode, shared by
//! every process of the host.
//!
//! `queue` holds undelivered events in FIFO order (an `AUTOINCREMENT` id, never reused),
//! `dead_letters` the events the server rejected [`MAX_REJECTIONS`] times, `state` the last
//! delivery result, the breaker and the drop counters (so any process can show them), and
//! `totals` one row of counts kept by triggers, so a bound check costs one row read.
//!
//! This file holds the types and [`Buffer`]'s API; `schema` opens the file, `queue` inserts
//! under the bounds and settles, `state` keeps the shared facts, `journal_import` moves the
//! session journals in.

mod journal_import;
mod queue;
pub(crate) use queue::OUTPUT;
mod schema;
mod state;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use self::state::{
    K_BREAKER, K_DROPPED_REASONS, K_DROPPED_TOTAL, K_DROPPED_UNREPORTED, K_LAST_DELIVERY, get_json,
    get_text, get_u64, set_json, set_text,
};
use crate::config::BufferLimits;
use crate::error::ClientError;
use crate::journal::{self, journal_dir};
use crate::outcome::DeliveryOutcome;

/// Rejections by the server after which an event moves to the dead letters.
pub const MAX_REJECTIONS: u32 = 3;

/// The buffer's file name inside the home directory.
pub const BUFFER_FILE: &str = "buffer.db";

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
    /// Recording chunks queued (their own quota; not in `pending`).
    pub recording_chunks: u64,
    pub recording_bytes: u64,
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
        let deadline = std::time::Instant::now() + schema::OPEN_PATIENCE;
        loop {
            match schema::open_connection(&path) {
                Ok(conn) => {
                    return Ok(Buffer {
                        conn: Mutex::new(conn),
                        path,
                        limits,
                    });
                }
                Err(e) if schema::is_busy(&e) && std::time::Instant::now() < deadline => {
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
        let out = queue::insert(&tx, event, now, now, self.limits)?;
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
            moved += journal_import::import_segment(&mut conn, &name, &path, self.limits).map_err(
                |e| match e {
                    journal_import::ImportError::Io(source) => {
                        ClientError::JournalRead { path, source }
                    }
                    journal_import::ImportError::Buffer(e) => e,
                },
            )?;
        }
        Ok(moved)
    }

    /// The oldest `limit` queued events, oldest first.
    pub fn fetch_batch(&self, limit: usize) -> Result<Vec<BufferedEvent>, ClientError> {
        let conn = self.conn();
        queue::select_events(&conn, "queue", limit)
    }

    /// The oldest `limit` queued events but the recording chunks (kept while the server
    /// does not accept recordings).
    pub fn fetch_batch_without_recordings(
        &self,
        limit: usize,
    ) -> Result<Vec<BufferedEvent>, ClientError> {
        let conn = self.conn();
        queue::select_where(&conn, "queue", "event_type <> 'output'", limit)
    }

    /// Queued events, oldest first (for `event-buffer list`).
    pub fn list(&self, limit: usize) -> Result<Vec<BufferedEvent>, ClientError> {
        self.fetch_batch(limit)
    }

    /// Dead letters, oldest first.
    pub fn list_dead_letters(&self, limit: usize) -> Result<Vec<BufferedEvent>, ClientError> {
        let conn = self.conn();
        queue::select_events(&conn, "dead_letters", limit)
    }

    /// Applies the server's answers about sent events, in one transaction. Ids no longer queued
    /// (delivered meanwhile by another sender, purged) are skipped.
    pub fn settle(&self, items: &[(i64, Settlement)]) -> Result<SettleCounts, ClientError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let counts = queue::settle(&tx, items)?;
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
        state::breaker(&conn)
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
        queue::insert(&tx, &event, now, now, self.limits)?;
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
        let (journal_events, journal_bytes, journal_oldest) =
            journal_import::journal_pending(&conn, home)?;
        let oldest = match (oldest, journal_oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let dead_letters: i64 =
            conn.query_row("SELECT count(*) FROM dead_letters", [], |r| r.get(0))?;
        let breaker = state::breaker(&conn)?;
        let (recording_chunks, recording_bytes): (i64, i64) = conn.query_row(
            "SELECT chunks, bytes FROM recording_totals WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(BufferStats {
            recording_chunks: to_u64(recording_chunks),
            recording_bytes: to_u64(recording_bytes),
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
