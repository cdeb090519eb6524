//! Session-Buddy storage on PostgreSQL.
//!
//! [`PostgresStore`] implements the same [`Store`] trait as the embedded SQLite backend and
//! passes the same conformance suite, so several `serve` processes on one database behave as one
//! service:
//!
//! - **Idempotent ingest across servers.** One transaction per ingest call. It first takes a
//!   transaction-scoped advisory lock per session of the batch (sorted, so two batches never
//!   deadlock), then inserts every event in one `INSERT … SELECT FROM unnest(…) ON CONFLICT DO
//!   NOTHING`; an event that was not inserted is compared with the stored one (duplicate or
//!   rejected). Events of one session are therefore applied one transaction at a time, whichever
//!   server received them, and a start merges exactly the pending events committed before it.
//! - **One reaper at a time.** The reaper lease is a session-level advisory lock held by a
//!   dedicated connection ([`Store::reaper_lease`]); it is released when that connection (or
//!   the process) dies. The reaper's update skips rows an ingest holds (`FOR UPDATE SKIP
//!   LOCKED`), so even two reapers could never abandon a session twice.
//! - **Migrations** are embedded (`migrations/*.sql`), tracked in `schema_migrations` and applied
//!   under an advisory lock, so servers starting together do not race.
//!
//! No TLS (`NoTls`): reach PostgreSQL over loopback, a Unix socket or a local proxy.

mod analytics;
mod error;
mod feed;
mod group;
mod ingest;
mod lease;
mod migrate;
mod read;
mod recording;
mod search;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use session_buddy_events::{Event, Session, SessionPage, StoredEvent};
use session_buddy_store::{
    ActiveSessions, AnalyticsWindow, ComponentSummary, EventFilter, FeedListener, FeedPage,
    FeedQuery, IngestOutcome, Origin, Pruned, Reaped, Redaction, Result, SessionFilter, Store,
    StoreHealth,
};
use tokio_postgres::NoTls;

pub use error::PgError;

/// Advisory lock keys (one bigint space per database). Session locks use a hash of the
/// session id with the top bit cleared; these two have it set, so they never collide.
const MIGRATION_LOCK: i64 = i64::MIN + 0x5B_0001;
const REAPER_LOCK: i64 = i64::MIN + 0x5B_0002;

/// How long a request waits for a database connection (the pool) or for an ingest
/// committer to take it ([`group::GroupCommit`]) before it is refused as unavailable.
const POOL_WAIT: Duration = Duration::from_secs(1);

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    location: String,
    lease: lease::Lease,
    announcer: feed::Announcer,
    group: group::GroupCommit,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`), applies the
    /// migrations and keeps a pool of at most `pool_size` connections.
    pub async fn connect(url: &str, pool_size: usize) -> std::result::Result<Self, PgError> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| PgError::Url {
            url: redact(url),
            source: e,
        })?;
        let location = describe(&config);
        migrate::run(&config, &location).await?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            // Bounded waits: an exhausted pool answers 503 (`StoreError::Unavailable`) within
            // the emitter's 2 s request timeout instead of a hang the client gives up on; no
            // slot free for 1 s is a backlog, not a blip (an ingest holds one for
            // milliseconds). Opening a connection takes milliseconds; 2 s bounds a database
            // host that does not answer.
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(Duration::from_secs(2)))
            .build()
            .map_err(|e| PgError::Pool(e.to_string()))?;
        Ok(Self {
            announcer: feed::Announcer::start(pool.clone()),
            group: group::GroupCommit::start(pool.clone(), group::committers(pool_size), POOL_WAIT),
            pool,
            lease: lease::Lease::new(config.clone()),
            config,
            location,
        })
    }

    /// `postgres://user@host:port/database` (never the password).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The connection settings (tests open more connections to the same database).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    async fn conn(&self) -> std::result::Result<Object, PgError> {
        self.pool
            .get()
            .await
            .map_err(|e| PgError::Pool(e.to_string()))
    }
}

/// `postgres://user@host:port/database`, for logs and `/health`.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_string());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap_or("postgres")
    )
}

/// A URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The lock key of a session's events: FNV-1a of its id, top bit cleared.
pub(crate) fn session_lock_key(session_id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in session_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 1) as i64
}

pub(crate) fn micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

#[async_trait]
impl Store for PostgresStore {
    async fn ingest_from(
        &self,
        events: Vec<Event>,
        received_at: DateTime<Utc>,
        origin: Origin,
    ) -> Result<Vec<IngestOutcome>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if events.iter().any(|e| matches!(e, Event::Output(_))) {
            // Chunks are recordings (store_chunks), never events: answered here, the rest
            // ingested, the answers in the order of the events.
            let (outputs, others): (Vec<_>, Vec<_>) = events
                .into_iter()
                .enumerate()
                .partition(|(_, e)| matches!(e, Event::Output(_)));
            let mut answers: Vec<Option<IngestOutcome>> = vec![None; outputs.len() + others.len()];
            for (i, e) in &outputs {
                answers[*i] = Some(IngestOutcome::output_is_not_an_event(e.session_id()));
            }
            let (at, rest): (Vec<usize>, Vec<Event>) = others.into_iter().unzip();
            let stored = self.ingest_from(rest, received_at, origin).await?;
            for (i, o) in at.into_iter().zip(stored) {
                answers[i] = Some(o);
            }
            return Ok(answers.into_iter().flatten().collect());
        }
        let prepared: Vec<session_buddy_store::Prepared> = events
            .into_iter()
            .map(session_buddy_store::Prepared::new)
            .collect();
        let received_us = received_at.timestamp_micros();
        let outcomes = match origin {
            Origin::Live => self.group.ingest(prepared, received_us).await?,
            // An import's batch settles its sessions at its end: a transaction of its own.
            Origin::Import { .. } => {
                let received = vec![received_us; prepared.len()];
                let mut conn = self.conn().await?;
                ingest::ingest(&mut conn, &prepared, &received, origin).await?
            }
        };
        if outcomes
            .iter()
            .any(|o| o.status == session_buddy_events::EventOutcome::Accepted)
        {
            self.announcer.committed();
        }
        Ok(outcomes)
    }

    async fn list_sessions(&self, filter: SessionFilter) -> Result<SessionPage> {
        read::list_sessions(&self.conn().await?, &filter).await
    }

    async fn get_session(&self, session_id: &str) -> Result<Option<Session>> {
        Ok(read::get_session(&self.conn().await?, session_id).await?)
    }

    async fn get_sessions(&self, session_ids: &[String]) -> Result<Vec<Session>> {
        Ok(read::get_sessions(&self.conn().await?, session_ids).await?)
    }

    async fn session_events(&self, session_id: &str) -> Result<Vec<StoredEvent>> {
        Ok(read::session_events(&self.conn().await?, session_id).await?)
    }

    async fn session_timeline(
        &self,
        session_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        Ok(read::session_timeline(&self.conn().await?, session_id, offset, limit).await?)
    }

    async fn list_events(&self, filter: EventFilter) -> Result<Vec<StoredEvent>> {
        Ok(read::list_events(&self.conn().await?, &filter).await?)
    }

    async fn active_by_component(&self) -> Result<BTreeMap<String, u64>> {
        Ok(read::active_by_component(&self.conn().await?).await?)
    }

    async fn analytics_summary(&self, window: AnalyticsWindow) -> Result<Vec<ComponentSummary>> {
        Ok(analytics::summary(&mut self.conn().await?, &window).await?)
    }

    async fn analytics_common_errors(
        &self,
        window: AnalyticsWindow,
    ) -> Result<BTreeMap<String, String>> {
        Ok(analytics::common_errors(&mut self.conn().await?, &window).await?)
    }

    async fn analytics_active(
        &self,
        component: Option<String>,
        components: Option<Vec<String>>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<ActiveSessions> {
        Ok(analytics::active(
            &mut self.conn().await?,
            component.as_deref(),
            components.as_deref(),
            limit,
            now,
        )
        .await?)
    }

    async fn health(&self) -> Result<StoreHealth> {
        let conn = self.conn().await?;
        let schema_version = migrate::current_version(&conn).await?;
        Ok(StoreHealth {
            backend: "postgres",
            location: self.location.clone(),
            schema_version,
            reachable: true,
        })
    }

    async fn reap(
        &self,
        active_cutoff: DateTime<Utc>,
        legacy_cutoff: DateTime<Utc>,
    ) -> Result<Vec<Reaped>> {
        let reaped = read::reap(
            &self.conn().await?,
            active_cutoff.timestamp_micros(),
            legacy_cutoff.timestamp_micros(),
        )
        .await?;
        if !reaped.is_empty() {
            let ids: Vec<String> = reaped.iter().map(|r| r.session_id.clone()).collect();
            feed::announce_abandoned(&self.pool, &ids).await;
        }
        Ok(reaped)
    }

    async fn feed(&self, query: FeedQuery) -> Result<FeedPage> {
        Ok(feed::feed(&mut self.conn().await?, &query).await?)
    }

    async fn listen_feed(&self) -> Result<Option<Box<dyn FeedListener>>> {
        Ok(Some(feed::listen(&self.config, &self.location).await?))
    }

    async fn revoke_token(&self, jti: &str, expires_at: Option<DateTime<Utc>>) -> Result<()> {
        Ok(read::revoke_token(
            &self.conn().await?,
            jti,
            expires_at.map(|t| t.timestamp_micros()),
        )
        .await?)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool> {
        Ok(read::is_revoked(&self.conn().await?, jti).await?)
    }

    async fn revoked_tokens(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        Ok(read::revoked_tokens(&self.conn().await?, now.timestamp_micros()).await?)
    }

    async fn reaper_lease(&self) -> Result<bool> {
        Ok(self.lease.holds().await)
    }

    async fn refresh_rollups(&self, now: DateTime<Utc>) -> Result<usize> {
        let before = session_buddy_store::analytics::rollup_hour(now.timestamp_micros());
        let batch = session_buddy_store::analytics::ROLLUP_REFRESH_BATCH;
        Ok(analytics::refresh_rollups(&mut self.conn().await?, before, batch, POOL_WAIT).await?)
    }

    async fn prune(&self, started_before: DateTime<Utc>, batch: usize) -> Result<Pruned> {
        Ok(read::prune(
            &mut self.conn().await?,
            started_before.timestamp_micros(),
            batch,
        )
        .await?)
    }

    async fn events_in_time_order(
        &self,
        since: Option<DateTime<Utc>>,
        after: Option<(DateTime<Utc>, String)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        Ok(read::events_in_time_order(&self.conn().await?, since, after, limit).await?)
    }

    async fn redact_stored(&self, apply: bool) -> Result<Redaction> {
        Ok(read::redact_stored(&mut self.conn().await?, apply).await?)
    }

    async fn store_chunks(
        &self,
        chunks: Vec<session_buddy_store::PackedChunk>,
        cap: u64,
    ) -> Result<Vec<session_buddy_store::ChunkOutcome>> {
        Ok(recording::store_chunks(&mut self.conn().await?, &chunks, cap).await?)
    }

    async fn recording_infos(
        &self,
        session_ids: &[String],
    ) -> Result<Vec<session_buddy_store::RecordingInfo>> {
        Ok(recording::infos(&self.conn().await?, session_ids).await?)
    }

    async fn recording(&self, session_id: &str) -> Result<Option<session_buddy_store::Recording>> {
        Ok(recording::recording(&self.conn().await?, session_id).await?)
    }

    async fn recorded_sessions(&self, after: Option<String>, limit: usize) -> Result<Vec<String>> {
        let limit = limit.clamp(1, session_buddy_store::MAX_PAGE) as i64;
        Ok(recording::recorded_sessions(&self.conn().await?, after.as_deref(), limit).await?)
    }

    async fn prune_recordings(&self, before: DateTime<Utc>, batch: usize) -> Result<u64> {
        Ok(recording::prune_recordings(
            &mut self.conn().await?,
            before.timestamp_micros(),
            batch.max(1) as i64,
        )
        .await?)
    }

    async fn erase_session(
        &self,
        session_id: &str,
        audit: session_buddy_store::AuditEntry,
    ) -> Result<session_buddy_store::Erased> {
        Ok(recording::erase(&mut self.conn().await?, session_id, &audit).await?)
    }

    async fn record_audit(&self, entry: session_buddy_store::AuditEntry) -> Result<()> {
        Ok(recording::record_audit(&self.conn().await?, &entry).await?)
    }

    async fn audit_log(
        &self,
        session_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<session_buddy_store::AuditEntry>> {
        let limit = limit.clamp(1, session_buddy_store::MAX_PAGE) as i64;
        Ok(recording::audit_log(&self.conn().await?, session_id.as_deref(), limit).await?)
    }

    async fn close(&self) {
        // Every acknowledged ingest has committed before it was answered; closing only lets
        // the other servers take the reaper lease at once.
        self.lease.release().await;
        self.announcer.stop();
        self.pool.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://ann:s3cret@db:5432/x"),
            "postgres://ann:***@db:5432/x"
        );
        assert_eq!(redact("postgres://ann@db/x"), "postgres://ann@db/x");
    }

    #[test]
    fn session_keys_never_meet_the_fixed_locks() {
        for id in ["a", "oneiric-20260206-123456-440000", ""] {
            assert!(session_lock_key(id) >= 0);
        }
        const { assert!(MIGRATION_LOCK < 0 && REAPER_LOCK < 0) };
    }
}
