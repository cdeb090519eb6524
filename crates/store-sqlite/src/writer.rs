//! The writer thread: the only write connection, group commit of ingest requests and jobs
//! (reaper, retention, revocations, redaction) run alone in order with them, and between
//! them the search index's steps (`search::Indexer`).

use std::sync::mpsc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};
use session_buddy_store::{IngestOutcome, Origin};
use tokio::sync::oneshot;

use crate::Result;
use crate::ingest::ingest_events;
use crate::search::Indexer;
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

pub(crate) fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Request>) {
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
        commit_group(&mut conn, group);
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
