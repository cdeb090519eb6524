//! Session-Buddy storage on SQLite, the embedded default.
//!
//! One writer thread owns the only write connection and commits many events per transaction
//! (group commit: it takes the first waiting request, then every request already queued, up to
//! `MAX_GROUP_EVENTS`, and answers them all after one commit). Reads run on a small pool of
//! read-only connections in `spawn_blocking`. WAL mode: a commit is in the WAL file before the
//! writer answers, so an acknowledged event survives a crash of the process; `SyncMode::Full`
//! also fsyncs every commit (power loss).
//!
//! - `conn`: the writer's and readers' connections, the WAL checkpointer;
//! - `migrate`: `migrations/*.sql`, counted by `PRAGMA user_version`;
//! - `writer`: the writer thread and its group commit;
//! - `ingest`: the ingest rules of one batch, the reaper's re-check;
//! - `read`: the queries; `analytics`: the analytics queries ([`analytics_sql`] shows them);
//! - `maintenance`: revocations, retention, re-redaction.
//!
//! The rules every backend shares (duplicates, end effects, pages, import cutoffs) live in
//! `session-buddy-store`.

mod analytics;
mod conn;
mod error;
mod ingest;
mod maintenance;
mod migrate;
mod read;
mod recording;
mod search;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use session_buddy_events::{Event, Session, SessionPage, StoredEvent};
use session_buddy_store::{
    ActiveSessions, AnalyticsWindow, AuditEntry, ChunkOutcome, ComponentSummary, Erased,
    EventFilter, IngestOutcome, MAX_PAGE, Origin, PackedChunk, Pruned, REDACT_BATCH, Reaped,
    Recording, RecordingInfo, Redaction, SessionFilter, Store, StoreError, StoreHealth,
};
use tokio::sync::oneshot;

pub use analytics::analytics_sql;
pub use error::SqliteError;

use crate::writer::{IngestRequest, Request};

/// Results inside this crate; [`SqliteError`] becomes a [`StoreError`] at the trait's edge.
pub(crate) type Result<T> = std::result::Result<T, SqliteError>;

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// WAL with `synchronous=NORMAL`: durable against a crash of the process.
    #[default]
    Normal,
    /// `synchronous=FULL`: durable against power loss too.
    Full,
}

/// Read connections at most, open and in use: a read waits for one to be free, so the page
/// caches (and file descriptors) a store holds are bounded whatever the load.
pub(crate) const READ_POOL: usize = 8;

/// The page-cache budget of one store by default, MiB (`server.db_cache_mib`): the writer's
/// 8 MiB and 3 MiB for each of the eight readers.
pub const DEFAULT_CACHE_MIB: u64 = 32;

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    pub sync: SyncMode,
    /// SQLite's page caches of all the store's connections together, MiB (at least 1); see
    /// docs/SCALING.md, "Memory".
    pub cache_mib: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            sync: SyncMode::default(),
            cache_mib: DEFAULT_CACHE_MIB,
        }
    }
}

/// What [`SqliteStore::page_caches`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCaches {
    pub writer_kib: u64,
    pub reader_kib: u64,
    /// Read connections at most.
    pub readers: usize,
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    sender: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// One per read connection ([`READ_POOL`]).
    read_permits: Arc<tokio::sync::Semaphore>,
    reader_cache_kib: u64,
    disk_full: writer::DiskFull,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations, with the
    /// default page caches.
    pub fn open(path: &Path, sync: SyncMode) -> session_buddy_store::Result<Self> {
        Self::open_with(
            path,
            SqliteOptions {
                sync,
                ..SqliteOptions::default()
            },
        )
    }

    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub fn open_with(path: &Path, options: SqliteOptions) -> session_buddy_store::Result<Self> {
        let open_error = |e: std::io::Error| StoreError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(open_error)?;
        }
        let caches = conn::Caches::split(options.cache_mib);
        let conn = conn::open_writer(path, options.sync, caches.writer_kib)?;
        migrate::migrate(&conn)?;
        let (tx, rx) = mpsc::channel();
        let disk_full = writer::DiskFull::default();
        let writer = {
            let disk_full = disk_full.clone();
            std::thread::Builder::new()
                .name("sqlite-writer".into())
                .spawn(move || writer::writer_loop(conn, rx, disk_full))
                .map_err(open_error)?
        };
        let stop = Arc::new(AtomicBool::new(false));
        let checkpointer = {
            let (db, stop) = (path.to_path_buf(), stop.clone());
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || conn::checkpoint_loop(&db, &stop))
                .map_err(open_error)?
        };
        Ok(Self {
            path: path.to_path_buf(),
            sender: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            checkpointer: Mutex::new(Some(checkpointer)),
            stop,
            readers: Arc::new(Mutex::new(Vec::new())),
            read_permits: Arc::new(tokio::sync::Semaphore::new(READ_POOL)),
            reader_cache_kib: caches.reader_kib,
            disk_full,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The page caches SQLite reports for the writer and for a reader, KiB (`PRAGMA
    /// cache_size`).
    pub async fn page_caches(&self) -> session_buddy_store::Result<PageCaches> {
        fn kib(conn: &Connection) -> Result<u64> {
            // Negative: KiB; positive: pages.
            let n: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
            let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok(if n < 0 {
                n.unsigned_abs()
            } else {
                (n * page / 1024) as u64
            })
        }
        Ok(PageCaches {
            writer_kib: self.job(|c| kib(c)).await?,
            reader_kib: self.read(kib).await?,
            readers: READ_POOL,
        })
    }

    fn submit(&self, request: Request) -> session_buddy_store::Result<()> {
        let guard = self.sender.lock().map_err(|_| StoreError::WriterGone)?;
        let sender = guard.as_ref().ok_or(StoreError::WriterGone)?;
        sender.send(request).map_err(|_| StoreError::WriterGone)
    }

    /// Runs `f` on the writer thread, alone, in order with the ingest requests.
    async fn job<T, F>(&self, f: F) -> session_buddy_store::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(Request::Job(Box::new(move |conn| {
            let _ = reply.send(f(conn));
        })))?;
        Ok(answer.await.map_err(|_| StoreError::WriterGone)??)
    }

    /// Runs `f` on a pooled read-only connection.
    async fn read<T, F>(&self, f: F) -> session_buddy_store::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::WriterGone)?;
        let pool = self.readers.clone();
        let path = self.path.clone();
        let cache_kib = self.reader_cache_kib;
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = pool.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => conn::open_reader(&path, cache_kib)?,
            };
            let out = f(&conn);
            if let Ok(mut p) = pool.lock() {
                p.push(conn);
            }
            out
        })
        .await
        .map_err(|_| StoreError::WriterGone)?;
        Ok(out?)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest_from(
        &self,
        events: Vec<Event>,
        received_at: DateTime<Utc>,
        origin: Origin,
    ) -> session_buddy_store::Result<Vec<IngestOutcome>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.submit(Request::Ingest(IngestRequest {
            events: events
                .into_iter()
                .map(session_buddy_store::Prepared::new)
                .collect(),
            received_at,
            origin,
            reply,
        }))?;
        Ok(answer.await.map_err(|_| StoreError::WriterGone)??)
    }

    async fn list_sessions(
        &self,
        filter: SessionFilter,
    ) -> session_buddy_store::Result<SessionPage> {
        self.read(move |c| read::list_sessions(c, &filter)).await
    }

    async fn get_session(&self, session_id: &str) -> session_buddy_store::Result<Option<Session>> {
        let id = session_id.to_string();
        self.read(move |c| read::get_session(c, &id)).await
    }

    async fn get_sessions(
        &self,
        session_ids: &[String],
    ) -> session_buddy_store::Result<Vec<Session>> {
        let ids = serde_json::to_string(session_ids)
            .map_err(|e| session_buddy_store::StoreError::Backend(Box::new(e)))?;
        self.read(move |c| read::get_sessions(c, &ids)).await
    }

    async fn session_events(
        &self,
        session_id: &str,
    ) -> session_buddy_store::Result<Vec<StoredEvent>> {
        let id = session_id.to_string();
        self.read(move |c| read::session_events(c, &id)).await
    }

    async fn session_timeline(
        &self,
        session_id: &str,
        offset: usize,
        limit: usize,
    ) -> session_buddy_store::Result<Vec<StoredEvent>> {
        let id = session_id.to_string();
        self.read(move |c| read::session_timeline(c, &id, offset, limit))
            .await
    }

    async fn list_events(
        &self,
        filter: EventFilter,
    ) -> session_buddy_store::Result<Vec<StoredEvent>> {
        self.read(move |c| read::list_events(c, &filter)).await
    }

    async fn active_by_component(&self) -> session_buddy_store::Result<BTreeMap<String, u64>> {
        self.read(read::active_by_component).await
    }

    async fn analytics_summary(
        &self,
        window: AnalyticsWindow,
    ) -> session_buddy_store::Result<Vec<ComponentSummary>> {
        self.read(move |c| analytics::summary(c, &window)).await
    }

    async fn analytics_common_errors(
        &self,
        window: AnalyticsWindow,
    ) -> session_buddy_store::Result<BTreeMap<String, String>> {
        self.read(move |c| analytics::common_errors(c, &window))
            .await
    }

    async fn analytics_active(
        &self,
        component: Option<String>,
        components: Option<Vec<String>>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> session_buddy_store::Result<ActiveSessions> {
        self.read(move |c| {
            analytics::active(c, component.as_deref(), components.as_deref(), limit, now)
        })
        .await
    }

    async fn health(&self) -> session_buddy_store::Result<StoreHealth> {
        if self.disk_full.is_full() {
            // The last write found the disk full: ready again once there is room and a write
            // commits.
            let full = self.disk_full.clone();
            self.job(move |conn| full.probe(conn)).await?;
        }
        let location = self.path.display().to_string();
        let schema_version = self.read(read::schema_version).await?;
        Ok(StoreHealth {
            backend: "sqlite",
            location,
            schema_version,
            reachable: true,
        })
    }

    async fn reap(
        &self,
        active_cutoff: DateTime<Utc>,
        legacy_cutoff: DateTime<Utc>,
    ) -> session_buddy_store::Result<Vec<Reaped>> {
        let cutoffs = (
            active_cutoff.timestamp_micros(),
            legacy_cutoff.timestamp_micros(),
        );
        // Find candidates on a reader, so the scan never holds up ingest.
        let candidates = self
            .read(move |c| read::reap_candidates(c, cutoffs))
            .await?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        self.job(move |conn| ingest::reap_candidates(conn, &candidates, cutoffs))
            .await
    }

    async fn feed(
        &self,
        query: session_buddy_store::FeedQuery,
    ) -> session_buddy_store::Result<session_buddy_store::FeedPage> {
        self.read(move |c| read::feed(c, &query)).await
    }

    async fn revoke_token(
        &self,
        jti: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> session_buddy_store::Result<()> {
        let jti = jti.to_string();
        let expires_us = expires_at.map(|t| t.timestamp_micros());
        self.job(move |conn| maintenance::revoke_token(conn, &jti, expires_us))
            .await
    }

    async fn is_revoked(&self, jti: &str) -> session_buddy_store::Result<bool> {
        let jti = jti.to_string();
        self.read(move |c| read::is_revoked(c, &jti)).await
    }

    async fn revoked_tokens(&self, now: DateTime<Utc>) -> session_buddy_store::Result<Vec<String>> {
        let now_us = now.timestamp_micros();
        self.read(move |c| read::revoked_tokens(c, now_us)).await
    }

    async fn prune(
        &self,
        started_before: DateTime<Utc>,
        batch: usize,
    ) -> session_buddy_store::Result<Pruned> {
        let cutoff = started_before.timestamp_micros();
        let batch = batch.max(1) as i64;
        self.job(move |conn| maintenance::prune(conn, cutoff, batch))
            .await
    }

    async fn refresh_rollups(&self, now: DateTime<Utc>) -> session_buddy_store::Result<usize> {
        let before = session_buddy_store::analytics::rollup_hour(now.timestamp_micros());
        let batch = session_buddy_store::analytics::ROLLUP_REFRESH_BATCH;
        self.job(move |conn| analytics::refresh_rollups(conn, before, batch))
            .await
    }

    async fn events_in_time_order(
        &self,
        since: Option<DateTime<Utc>>,
        after: Option<(DateTime<Utc>, String)>,
        limit: usize,
    ) -> session_buddy_store::Result<Vec<StoredEvent>> {
        let since = since.map_or(i64::MIN, |t| t.timestamp_micros());
        let after = after.map_or((i64::MIN, String::new()), |(t, id)| {
            (t.timestamp_micros(), id)
        });
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        self.read(move |c| read::events_in_time_order(c, since, after, limit))
            .await
    }

    async fn redact_stored(&self, apply: bool) -> session_buddy_store::Result<Redaction> {
        let mut report = Redaction {
            applied: apply,
            ..Redaction::default()
        };
        let mut after: i64 = 0;
        loop {
            // Read a batch on a reader and compute the new payloads there, so the writer only
            // runs the updates.
            let batch = self
                .read(move |c| maintenance::redact_batch(c, after))
                .await?;
            let Some(last) = batch.last else {
                break;
            };
            after = last;
            report.examined += batch.examined as u64;
            if !apply {
                report.changed += batch.changes.len() as u64;
            } else if !batch.changes.is_empty() {
                let changes = batch.changes;
                report.changed += self
                    .job(move |conn| maintenance::rewrite(conn, &changes))
                    .await?;
            }
            if batch.examined < REDACT_BATCH {
                break;
            }
        }
        Ok(report)
    }

    async fn store_chunks(
        &self,
        chunks: Vec<PackedChunk>,
        cap: u64,
    ) -> session_buddy_store::Result<Vec<ChunkOutcome>> {
        self.job(move |conn| recording::store_chunks(conn, &chunks, cap))
            .await
    }

    async fn recording_infos(
        &self,
        session_ids: &[String],
    ) -> session_buddy_store::Result<Vec<RecordingInfo>> {
        let ids = session_ids.to_vec();
        self.read(move |c| recording::infos(c, &ids)).await
    }

    async fn recording(&self, session_id: &str) -> session_buddy_store::Result<Option<Recording>> {
        let id = session_id.to_string();
        self.read(move |c| recording::recording(c, &id)).await
    }

    async fn recorded_sessions(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> session_buddy_store::Result<Vec<String>> {
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        self.read(move |c| recording::recorded_sessions(c, after.as_deref(), limit))
            .await
    }

    async fn prune_recordings(
        &self,
        before: DateTime<Utc>,
        batch: usize,
    ) -> session_buddy_store::Result<u64> {
        let before = before.timestamp_micros();
        let batch = batch.max(1) as i64;
        self.job(move |conn| recording::prune_recordings(conn, before, batch))
            .await
    }

    async fn erase_session(
        &self,
        session_id: &str,
        audit: AuditEntry,
    ) -> session_buddy_store::Result<Erased> {
        let id = session_id.to_string();
        self.job(move |conn| recording::erase(conn, &id, &audit))
            .await
    }

    async fn record_audit(&self, entry: AuditEntry) -> session_buddy_store::Result<()> {
        self.job(move |conn| recording::record_audit(conn, &entry))
            .await
    }

    async fn audit_log(
        &self,
        session_id: Option<String>,
        limit: usize,
    ) -> session_buddy_store::Result<Vec<AuditEntry>> {
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        self.read(move |c| recording::audit_log(c, session_id.as_deref(), limit))
            .await
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
