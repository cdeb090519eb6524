//! The writer thread: the only write connection, group commit of ingest requests and jobs
//! (reaper, retention, revocations, redaction) run alone in order with them, and between
//! them the search index's steps (`search::Indexer`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};
use session_buddy_store::{IngestOutcome, Origin};
use tokio::sync::oneshot;

use crate::ingest::ingest_events;
use crate::search::Indexer;
use crate::{Result, SqliteError};
use session_buddy_store::Prepared;

/// Most events one group commit takes.
const MAX_GROUP_EVENTS: usize = 8192;

pub(crate) struct IngestRequest {
    pub(crate) events: Vec<Prepared>,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) origin: Origin,
    pub(crate) reply: oneshot::Sender<Result<Vec<IngestOutcome>>>,
}

/// Work for the writer thread: ingest batches are grouped into one transaction; a job runs
/// alone, in order with them.
pub(crate) enum Request {
    Ingest(IngestRequest),
    Job(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// Whether the writer's last write failed for want of disk space. While it did, every write
/// first needs room on the disk again ([`DiskFull::admit`]), so all writes answer "full"
/// until there is real room (not 200 for a small write and 507 for a batch), and readiness
/// says so while reads still work.
#[derive(Clone, Default)]
pub(crate) struct DiskFull(Arc<AtomicBool>);

/// Free space the disk must have again before a full store takes writes: a few large group
/// commits' worth. A small test write would not tell: a transaction that failed for want of
/// space leaves WAL pages it had taken, so small writes fit while batches fail.
const ROOM_AGAIN_BYTES: usize = 4 << 20;

impl DiskFull {
    pub(crate) fn is_full(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Notes what a write came to.
    fn wrote<T>(&self, result: &Result<T>) {
        match result {
            Ok(_) => self.0.store(false, Ordering::Release),
            Err(e) if e.is_disk_full() => self.0.store(true, Ordering::Release),
            Err(_) => {}
        }
    }

    /// Before a write: when the last one found the disk full, [`ROOM_AGAIN_BYTES`] must be
    /// writable beside the database (then removed) again.
    fn admit(&self, conn: &Connection) -> Result<()> {
        if !self.is_full() {
            return Ok(());
        }
        let Some(db) = conn.path().filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        let probe = PathBuf::from(format!("{db}-space-probe"));
        let written =
            std::fs::File::create(&probe).and_then(|mut f| f.write_all(&vec![0; ROOM_AGAIN_BYTES]));
        let _ = std::fs::remove_file(&probe);
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                Err(SqliteError::NoSpace(format!(
                    "less than {} MiB free beside it ({e})",
                    ROOM_AGAIN_BYTES >> 20
                )))
            }
            // Anything else is for SQLite's own write to tell.
            _ => Ok(()),
        }
    }

    /// Whether the store takes writes again: [`DiskFull::admit`], then a transaction that
    /// rewrites the schema version with its own value commits.
    pub(crate) fn probe(&self, conn: &mut Connection) -> Result<()> {
        let attempt = self.admit(conn).and_then(|()| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            tx.execute_batch(&format!("PRAGMA user_version={version}"))?;
            tx.commit()?;
            Ok(())
        });
        self.wrote(&attempt);
        attempt
    }
}

pub(crate) fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Request>, full: DiskFull) {
    let mut carried: Option<Request> = None;
    let mut indexer = match Indexer::load(&conn) {
        Ok(i) => Some(i),
        Err(e) => {
            // Searches still work: every session is then tested directly.
            tracing::error!(error = %e, "cannot read the search index's state; not indexing");
            None
        }
    };
    loop {
        let first = match carried.take() {
            Some(r) => r,
            None => {
                let due = indexer.as_ref().and_then(|i| i.due_in(Instant::now()));
                let next = match due {
                    None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                    Some(wait) => rx.recv_timeout(wait),
                };
                match next {
                    Ok(r) => r,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Some(i) = indexer.as_mut() {
                            i.run_due(&mut conn, Instant::now());
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        let first = match first {
            Request::Job(job) => {
                job(&mut conn);
                observe(&mut indexer, &mut conn);
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
        commit_group(&mut conn, group, &full);
        observe(&mut indexer, &mut conn);
    }
    // Channel closed: every request sent before has been answered. The search index catches
    // up (a few thousand sessions at most), then a checkpoint, so the WAL does not have to be
    // replayed at the next start.
    if let Some(i) = indexer.as_mut()
        && let Err(e) = i.catch_up(&mut conn)
    {
        tracing::warn!(error = %e, "cannot bring the search index up to date; it will at the next start");
    }
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

/// After a commit or a job: where `events` ends, and an indexing step if one is due.
fn observe(indexer: &mut Option<Indexer>, conn: &mut Connection) {
    let Some(i) = indexer.as_mut() else { return };
    let now = Instant::now();
    match i.observe(conn, now) {
        Ok(()) => i.run_due(conn, now),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read where the events end; search index waits")
        }
    }
}

/// One transaction for the group, every request answered after its commit; on failure, one by
/// one. A failed request is answered with the failure, so nothing is acknowledged that was not
/// committed (a full disk too: `SQLITE_FULL` rolls the transaction back). After a full disk,
/// the group waits for room ([`DiskFull::admit`]).
fn commit_group(conn: &mut Connection, group: Vec<IngestRequest>, full: &DiskFull) {
    let attempt = (|| -> Result<Vec<Vec<IngestOutcome>>> {
        full.admit(conn)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut all = Vec::with_capacity(group.len());
        for r in &group {
            all.push(ingest_events(&tx, &r.events, r.received_at, r.origin)?);
        }
        tx.commit()?;
        Ok(all)
    })();
    full.wrote(&attempt);
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
        // A full disk is no one request's fault: retrying them one by one would not help.
        Err(err) if err.is_disk_full() => {
            tracing::warn!(error = %err, requests = group.len(), "group commit failed: the disk is full");
            for r in group {
                let _ = r.reply.send(Err(SqliteError::NoSpace(err.to_string())));
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, requests = group.len(), "group commit failed; retrying requests one by one");
            for request in group {
                commit_group(conn, vec![request], full);
            }
        }
    }
}
