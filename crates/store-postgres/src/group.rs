//! Group commit: the live ingest requests that wait together go into one transaction, as the
//! SQLite writer does, and every caller is answered after that commit. A few committers
//! ([`committers`]) take turns at the queue: while one transaction commits (its WAL flush),
//! the next group gathers behind it, so the busier the server, the larger the groups and the
//! fewer commits per event. Acknowledged still means committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use deadpool_postgres::Pool;
use session_buddy_store::{IngestOutcome, Origin, Prepared, StoreError};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::PgError;
use crate::ingest::ingest;

/// Most events one group takes (a request has at most 1 000).
const MAX_GROUP_EVENTS: usize = 4096;

/// Requests queued before callers wait to queue (back-pressure, not a bound on memory only).
const QUEUE: usize = 1024;

type Answer = Result<Vec<IngestOutcome>, StoreError>;

struct Job {
    events: Vec<Prepared>,
    received_us: i64,
    reply: oneshot::Sender<Answer>,
    /// [`QUEUED`], [`TAKEN`] by a committer, or [`GAVE_UP`] by its caller.
    state: Arc<AtomicU8>,
}

const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const GAVE_UP: u8 = 2;

impl Job {
    /// Claims the job for a group; false if its caller no longer waits for it.
    fn take(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// The queue of live ingest requests and its committer tasks.
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Job>,
    /// How long a request waits for a committer to take it: the pool's wait for a
    /// connection, the same rule (every committer stuck behind a database that does not
    /// answer is an exhausted pool).
    wait: Duration,
}

/// How many transactions may commit at once: half the pool (the rest serves reads), at least
/// one, at most four (more only adds lock waits on two cores).
pub(crate) fn committers(pool_size: usize) -> usize {
    (pool_size / 2).clamp(1, 4)
}

impl GroupCommit {
    /// Starts the committers on the current runtime; they stop when this is dropped.
    pub(crate) fn start(pool: Pool, committers: usize, wait: Duration) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..committers.max(1) {
            tokio::spawn(committer(pool.clone(), rx.clone()));
        }
        Self { queue, wait }
    }

    /// Ingests live events in the next group; answered once their transaction committed.
    /// A request that no committer takes within the pool's wait is refused as
    /// [`StoreError::Unavailable`] and never committed afterwards (no late write behind a
    /// refusal: the client's retry is the only copy).
    pub(crate) async fn ingest(&self, events: Vec<Prepared>, received_us: i64) -> Answer {
        let (reply, mut answer) = oneshot::channel();
        let state = Arc::new(AtomicU8::new(QUEUED));
        let job = Job {
            events,
            received_us,
            reply,
            state: state.clone(),
        };
        let gone = || Err(StoreError::WriterGone);
        let deadline = tokio::time::Instant::now() + self.wait;
        match tokio::time::timeout_at(deadline, self.queue.send(job)).await {
            Err(_) => return Err(exhausted(self.wait)),
            Ok(Err(_)) => return gone(),
            Ok(Ok(())) => {}
        }
        if let Ok(reply) = tokio::time::timeout_at(deadline, &mut answer).await {
            return reply.unwrap_or_else(|_| gone());
        }
        if state
            .compare_exchange(QUEUED, GAVE_UP, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return Err(exhausted(self.wait));
        }
        // Taken: its transaction is under way, and its answer is the truth.
        answer.await.unwrap_or_else(|_| gone())
    }
}

/// The refusal of a request that waited too long for a committer.
fn exhausted(wait: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "every database connection for ingest stayed busy for {} ms (the database is slow or \
         locked); retry later",
        wait.as_millis()
    ))
}

async fn committer(pool: Pool, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let group = {
            let mut rx = rx.lock().await;
            let first = loop {
                let Some(job) = rx.recv().await else { return };
                if job.take() {
                    break job;
                }
            };
            let mut events = first.events.len();
            let mut group = vec![first];
            while events < MAX_GROUP_EVENTS {
                match rx.try_recv() {
                    Ok(next) if next.take() => {
                        events += next.events.len();
                        group.push(next);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            group
        };
        commit(&pool, group).await;
    }
}

/// One transaction for the group. When it fails for the database's sake (gone, full: the
/// [`PgError`] rule), every caller gets that answer; for another reason with several
/// requests, each is tried alone, so one bad request never fails its neighbours.
async fn commit(pool: &Pool, mut group: Vec<Job>) {
    let sizes: Vec<usize> = group.iter().map(|j| j.events.len()).collect();
    let mut events = Vec::with_capacity(sizes.iter().sum());
    let mut received = Vec::with_capacity(events.capacity());
    for job in &mut group {
        received.extend(std::iter::repeat_n(job.received_us, job.events.len()));
        events.append(&mut job.events);
    }
    let result = match pool.get().await {
        Ok(mut conn) => ingest(&mut conn, &events, &received, Origin::Live).await,
        Err(e) => Err(PgError::Pool(e.to_string())),
    };
    match result {
        Ok(mut outcomes) => {
            for (job, n) in group.into_iter().zip(sizes).rev() {
                let mine = outcomes.split_off(outcomes.len() - n);
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(e) if group.len() == 1 || e.is_fault() => {
            let error = StoreError::from(e);
            for job in group {
                let _ = job.reply.send(Err(copy(&error)));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, requests = group.len(), "group commit failed; retrying requests one by one");
            let mut parts = Vec::with_capacity(group.len());
            for n in sizes.iter().rev() {
                parts.push(events.split_off(events.len() - n));
            }
            for (mut job, part) in group.into_iter().zip(parts.into_iter().rev()) {
                job.events = part;
                Box::pin(commit(pool, vec![job])).await;
            }
        }
    }
}

/// The same answer for another caller of the group.
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Full(m) => StoreError::Full(m.clone()),
        StoreError::WriterGone => StoreError::WriterGone,
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        StoreError::InvalidQuery(m) => StoreError::InvalidQuery(m.clone()),
        other => StoreError::Backend(other.to_string().into()),
    }
}
