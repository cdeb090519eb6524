//! Session-Buddy storage.
//!
//! The [`Store`] trait is what the server talks to: batch-first ingest (one call, many events,
//! durable when it returns), session queries and the numbers the metrics need. Every backend
//! passes the same conformance suite (`tests/conformance/`, run by each backend's tests). The
//! backends live in crates of their own: `session-buddy-store-sqlite` (the embedded default)
//! and `session-buddy-store-postgres`; this crate holds the trait and the rules they share.

pub mod analytics;
pub mod export;
mod prepared;
pub mod recording;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use session_buddy_events::{
    CommandEvent, Event, EventOutcome, EventType, Session, SessionPage, SessionStatus, StoredEvent,
};

pub use analytics::{ActiveSessions, AnalyticsWindow, ComponentSummary};
pub use prepared::Prepared;
pub use recording::{AuditEntry, ChunkOutcome, Erased, PackedChunk, Recording, RecordingInfo};

/// A storage failure, in the user's words.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("the storage writer has stopped (the server is shutting down)")]
    WriterGone,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database cannot be reached or cannot take work now (PostgreSQL stopped or
    /// restarting, no pooled connection within the wait): nothing of the call was
    /// acknowledged; the same call may succeed later. The text says what happened.
    #[error("storage is unavailable: {0}; retry later")]
    Unavailable(String),
    /// The disk under the database is full: nothing of the call was acknowledged; writes
    /// succeed again once space is freed. The text says where and what to do.
    #[error("storage is full: {0}")]
    Full(String),
    /// A failure of the backend (SQLite, PostgreSQL) that is none of the above.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl StoreError {
    /// What kind of failure this is, for the answer every face gives (503, 507, 500) and
    /// the cause `/readyz` and `/health` name.
    pub fn kind(&self) -> FailureKind {
        match self {
            StoreError::Unavailable(_) | StoreError::WriterGone => FailureKind::Unavailable,
            StoreError::Full(_) => FailureKind::Full,
            _ => FailureKind::Error,
        }
    }
}

/// The kinds of storage failure a caller acts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Passes by itself: the database is away or busy, or the server is stopping. Retry later.
    Unavailable,
    /// Passes once disk space is freed.
    Full,
    /// Anything else.
    Error,
}

impl FailureKind {
    /// `unavailable`, `full` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unavailable => "unavailable",
            FailureKind::Full => "full",
            FailureKind::Error => "error",
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// What storing one event did.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestOutcome {
    pub status: EventOutcome,
    pub session_id: String,
    /// For a rejection: `<field>: <rule>`.
    pub error: Option<String>,
    /// The session's component, when the session is known.
    pub component: Option<String>,
    /// Whether the event's session (its start) is stored.
    pub session_known: bool,
    /// Session state changes this event caused (a start may also close a pending end).
    pub effects: Vec<SessionEffect>,
}

impl IngestOutcome {
    /// An outcome with no session facts yet.
    pub fn new(status: EventOutcome, session_id: String) -> Self {
        Self {
            status,
            session_id,
            error: None,
            component: None,
            session_known: false,
            effects: Vec::new(),
        }
    }

    /// The start was stored: its session is known and has started.
    pub fn started(&mut self, start: &session_buddy_events::SessionStartEvent) {
        self.component = Some(start.component_name.clone());
        self.session_known = true;
        self.effects.push(SessionEffect::Started {
            component: start.component_name.clone(),
            shell_type: start.shell_type.clone(),
        });
    }

    /// An `output` chunk given to ingest: chunks are stored as recordings
    /// ([`Store::store_chunks`]), never as events.
    pub fn output_is_not_an_event(session_id: String) -> Self {
        let mut out = Self::new(EventOutcome::Rejected, session_id);
        out.error =
            Some("event_type: an output chunk is stored as a recording, not an event".into());
        out
    }

    /// The start's session id is held by a different start (same component, second and last
    /// 6 hex): rejected, naming `event_id`.
    pub fn reject_taken_session_id(&mut self) {
        self.status = EventOutcome::Rejected;
        self.error = Some(format!(
            "event_id: maps to session id {}, which a different start event already holds",
            self.session_id
        ));
    }
}

/// A change of a session's state, for the metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEffect {
    Started {
        component: String,
        shell_type: String,
    },
    Ended {
        component: String,
        /// `success` or `error` (a non-zero exit, a signal, failed commands or reason `error`).
        outcome: EndOutcome,
        duration_seconds: f64,
        /// The session had been marked abandoned before this real end arrived.
        was_abandoned: bool,
    },
    /// An abandoned session sent a command or heartbeat: it is active again.
    Revived { component: String },
    /// An imported session was silent for longer than its TTL at its last event: abandoned
    /// there at once (see [`Origin::Import`]).
    Abandoned {
        component: String,
        /// From its start to its last event.
        duration_seconds: f64,
    },
}

/// Where a batch of events comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// Sent by a running client. A session shows life when the server receives something from
    /// it, whatever the client's clock says, so a client with a skewed clock that keeps
    /// sending heartbeats is never reaped.
    #[default]
    Live,
    /// History (`session-buddy import`). An imported event shows its session's life at its own
    /// timestamp (never later than its receipt), so the reaper judges imported sessions by
    /// event time; and each session of the batch that is still active but silent since before
    /// its cutoff (`active_cutoff` for sessions that announced heartbeats, `legacy_cutoff`
    /// for the others, the reaper's cutoffs) is abandoned at its last event in the same
    /// transaction. An old imported event never revives an abandoned session; it moves its
    /// end to the session's last event.
    Import {
        active_cutoff: DateTime<Utc>,
        legacy_cutoff: DateTime<Utc>,
    },
}

impl Origin {
    /// The time (µs) an event at `event_us` received at `received_us` shows its session alive:
    /// the session's `last_received_at` moves to it.
    pub fn life_us(self, event_us: i64, received_us: i64) -> i64 {
        match self {
            Origin::Live => received_us,
            Origin::Import { .. } => event_us.min(received_us),
        }
    }

    /// For an import: the cutoffs in µs, `(active, legacy)`.
    pub fn import_cutoffs_us(self) -> Option<(i64, i64)> {
        match self {
            Origin::Live => None,
            Origin::Import {
                active_cutoff,
                legacy_cutoff,
            } => Some((
                active_cutoff.timestamp_micros(),
                legacy_cutoff.timestamp_micros(),
            )),
        }
    }

    /// Whether an event at `event_us` may revive an abandoned session: a live one always; an
    /// imported one only when it is newer than the session's cutoff (`legacy`: the session
    /// announced no heartbeats).
    pub fn revives(self, event_us: i64, legacy: bool) -> bool {
        match self.import_cutoffs_us() {
            None => true,
            Some((active, legacy_cutoff)) => {
                event_us >= if legacy { legacy_cutoff } else { active }
            }
        }
    }
}

/// Attaches each abandonment an import caused to the outcome of the last event of its
/// session in the batch that was not rejected (`abandoned`: session id, component, duration
/// in µs).
pub fn attach_abandoned(outcomes: &mut [IngestOutcome], abandoned: Vec<(String, String, i64)>) {
    for (session_id, component, duration_us) in abandoned {
        if let Some(out) = outcomes
            .iter_mut()
            .rev()
            .find(|o| o.session_id == session_id && o.status != EventOutcome::Rejected)
        {
            out.effects.push(SessionEffect::Abandoned {
                component,
                duration_seconds: duration_us.max(0) as f64 / 1e6,
            });
        }
    }
}

/// The distinct session ids of a batch's outcomes that were not rejected, in first-seen
/// order: the sessions an import rechecks.
pub fn sessions_of(outcomes: &[IngestOutcome]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    outcomes
        .iter()
        .filter(|o| o.status != EventOutcome::Rejected && o.session_known)
        .filter(|o| seen.insert(o.session_id.as_str()))
        .map(|o| o.session_id.clone())
        .collect()
}

/// A session the reaper marked abandoned.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaped {
    pub session_id: String,
    pub component: String,
    /// From its start to its last event.
    pub duration_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOutcome {
    Success,
    Error,
}

impl EndOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EndOutcome::Success => "success",
            EndOutcome::Error => "error",
        }
    }
}

/// What an end does to a session, the same in every backend: the duration in µs (end − start,
/// never negative) and the effect for the metrics.
pub fn end_effect(
    component: &str,
    status_before: &str,
    started_us: i64,
    error_count: i64,
    end: &session_buddy_events::SessionEndEvent,
) -> (i64, SessionEffect) {
    let duration_us = (end.timestamp.timestamp_micros() - started_us).max(0);
    let failed = end.reports_failure() || error_count > 0;
    let effect = SessionEffect::Ended {
        component: component.to_string(),
        outcome: if failed {
            EndOutcome::Error
        } else {
            EndOutcome::Success
        },
        duration_seconds: duration_us as f64 / 1e6,
        was_abandoned: status_before == "abandoned",
    };
    (duration_us, effect)
}

/// Filters of `GET /v1/sessions` and `list-sessions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionFilter {
    pub session_type: Option<String>,
    pub component: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    pub status: Option<SessionStatus>,
    /// Started at or after.
    pub after: Option<DateTime<Utc>>,
    /// Started before.
    pub before: Option<DateTime<Utc>>,
    /// Ended sessions lasting at least this many seconds.
    pub min_duration: Option<f64>,
    /// Text search: sessions whose id, user, host, component or one of whose command names
    /// contains this text, ignoring ASCII case (see [`search_term`]).
    pub q: Option<String>,
    /// How the backend finds what `q` matches; `None` (what the API gives): it chooses per
    /// query. Set by the conformance suite, to check both plans answer alike, and by the bench.
    pub search_plan: Option<SearchPlan>,
    pub limit: usize,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Only sessions of these components (the caller's visibility, a component-bound `read`
    /// token); `None`: every component, `Some(empty)`: none.
    pub components: Option<Vec<String>>,
}

pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 1000;

/// Filters of `list-events`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub session_id: Option<String>,
    pub event_type: Option<EventType>,
    pub limit: usize,
    /// Only events of stored sessions of these components (the caller's visibility); a
    /// pending event, whose start is not stored, has no known component and is left out.
    /// `None`: every event.
    pub components: Option<Vec<String>>,
}

/// A read of the change feed ([`Store::feed`]): the stored events after a position.
///
/// A position is the store's event sequence (SQLite: the `events` rowid; PostgreSQL:
/// `events.id`). PostgreSQL hands out ids when a transaction inserts and makes them visible
/// when it commits, so ids do not become visible in order: a reader that passed position 10
/// may later see 9 commit. A reader therefore remembers the holes it saw for a while and asks
/// for them again ([`FeedQuery::recheck`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedQuery {
    /// Events at positions above this one.
    pub after: i64,
    /// Position ranges (inclusive) at or below `after` to read again: holes the reader saw.
    pub recheck: Vec<(i64, i64)>,
    /// At most this many events above `after` (≤ [`MAX_PAGE`]); the rechecked ones come on top,
    /// at most as many again.
    pub limit: usize,
    /// Only the events of sessions of these components (pending events, whose start is not
    /// stored, have none and are left out); `None`: every event.
    pub components: Option<Vec<String>>,
}

/// One event of the change feed, at its position.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    pub position: i64,
    pub event: StoredEvent,
}

/// What [`Store::feed`] read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedPage {
    /// Ascending by position: the rechecked ones found, then those above `after`.
    pub events: Vec<FeedEvent>,
    /// The highest position visible when the page was read (0 for an empty store): a new
    /// reader starts after it.
    pub position: i64,
}

/// What another server on the same database announced ([`Store::listen_feed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedNotice {
    /// New events were committed: read the feed.
    Events,
    /// The reaper abandoned these sessions (no event records that).
    Abandoned(Vec<String>),
}

/// Notices from the other processes on one database, as they arrive.
#[async_trait]
pub trait FeedListener: Send {
    /// The next notice; an error when the listening connection is lost (listen again).
    async fn next(&mut self) -> Result<FeedNotice>;
}

/// What `/health` and `/readyz` say about storage.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoreHealth {
    pub backend: &'static str,
    pub location: String,
    pub schema_version: i64,
    pub reachable: bool,
}

/// Numbers per component for the quality score (docs/sessions.md, "The quality score").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ComponentQuality {
    pub sessions: u64,
    pub ended: u64,
    pub failed_sessions: u64,
    pub abandoned: u64,
    pub commands: u64,
    pub failed_commands: u64,
}

/// Quality inputs per component over the sessions started in `[since, until)`, of
/// `components` only when given (the caller's visibility): the sums of
/// [`Store::analytics_summary`], so they come from the analytics rollups and cost the same
/// whatever the history holds.
pub async fn quality_by_component(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    components: Option<Vec<String>>,
) -> Result<BTreeMap<String, ComponentQuality>> {
    let window = AnalyticsWindow {
        since,
        until,
        component: None,
        components,
    };
    Ok(store
        .analytics_summary(window)
        .await?
        .iter()
        .map(|s| (s.component.clone(), s.quality()))
        .collect())
}

/// How the quality score is computed, as the API and the helpers show it.
pub const QUALITY_FORMULA: &str =
    "score = 100 × (0.5 × clean + 0.3 × commands_ok + 0.2 × not_abandoned)";
/// When a session counts as failed (the same rule for the score, the error rate and
/// `session_end_total{status="error"}`), in words. [`failed_session_sql!`] is the same rule
/// over a `sessions` row, which every backend's queries use, and [`end_effect`] applies it to
/// an end as it is stored; the conformance suite checks that the three agree.
pub const FAILURE_RULE: &str = "a session failed when a command failed, it ended with a \
     non-zero exit code, a signal or reason 'error', or it was abandoned";

/// [`FAILURE_RULE`] as an SQL condition over a `sessions` row (the same text on SQLite and
/// PostgreSQL), a literal so that backends can `concat!` it into their statements.
#[macro_export]
macro_rules! failed_session_sql {
    () => {
        "(status = 'abandoned' OR error_count > 0 OR coalesce(exit_code, 0) != 0 \
         OR signal IS NOT NULL OR coalesce(end_reason, '') = 'error')"
    };
}

/// Why a session without failed commands failed (the analytics' most common error), as an SQL
/// expression over a `sessions` row that [`failed_session_sql!`] holds for (the same text on
/// SQLite and PostgreSQL).
#[macro_export]
macro_rules! session_error_sql {
    () => {
        "CASE WHEN status = 'abandoned'
                 THEN 'abandoned (' || coalesce(end_reason, 'heartbeat_timeout') || ')'
            WHEN signal IS NOT NULL THEN 'signal ' || signal
            WHEN coalesce(exit_code, 0) != 0 THEN 'exit code ' || exit_code
            ELSE 'ended with reason error' END"
    };
}

impl ComponentQuality {
    /// Share of sessions without a failure (1 without sessions).
    pub fn clean(&self) -> f64 {
        share_ok(self.failed_sessions, self.sessions)
    }

    /// Share of commands that succeeded (1 without commands).
    pub fn commands_ok(&self) -> f64 {
        share_ok(self.failed_commands, self.commands)
    }

    /// Share of sessions not abandoned (1 without sessions).
    pub fn not_abandoned(&self) -> f64 {
        share_ok(self.abandoned, self.sessions)
    }

    /// 0–100: 50 % clean sessions, 30 % successful commands, 20 % sessions not abandoned
    /// ([`QUALITY_FORMULA`]).
    pub fn score(&self) -> f64 {
        if self.sessions == 0 {
            return 100.0;
        }
        (100.0 * (0.5 * self.clean() + 0.3 * self.commands_ok() + 0.2 * self.not_abandoned()))
            .clamp(0.0, 100.0)
    }
}

/// `1 − bad/total` in `0..=1`; 1 when there is nothing to judge.
fn share_ok(bad: u64, total: u64) -> f64 {
    if total == 0 {
        1.0
    } else {
        (1.0 - bad as f64 / total as f64).clamp(0.0, 1.0)
    }
}

/// The storage a server runs on.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a batch of validated events from a live client, each with the time the server
    /// received it; returns one outcome per event, in order. When it returns, the accepted
    /// events are durable (against a crash of the process; against power loss with
    /// SQLite's `SyncMode::Full`).
    async fn ingest(
        &self,
        events: Vec<Event>,
        received_at: DateTime<Utc>,
    ) -> Result<Vec<IngestOutcome>> {
        self.ingest_from(events, received_at, Origin::Live).await
    }

    /// [`ingest`](Self::ingest) for a batch from `origin` (history from an import is judged
    /// by its events' own times, see [`Origin::Import`]).
    async fn ingest_from(
        &self,
        events: Vec<Event>,
        received_at: DateTime<Utc>,
        origin: Origin,
    ) -> Result<Vec<IngestOutcome>>;

    /// Sessions matching `filter`, newest start first, one page.
    async fn list_sessions(&self, filter: SessionFilter) -> Result<SessionPage>;

    async fn get_session(&self, session_id: &str) -> Result<Option<Session>>;

    /// The stored sessions among `session_ids` (unknown ids are left out), in no particular
    /// order; one query however many (the stream reads a round's records with it).
    async fn get_sessions(&self, session_ids: &[String]) -> Result<Vec<Session>>;

    /// A session's events in time order (its timeline), pending ones included.
    async fn session_events(&self, session_id: &str) -> Result<Vec<StoredEvent>>;

    /// One page of a session's timeline (the order of [`session_events`](Self::session_events)):
    /// at most `limit` events after the first `offset`.
    async fn session_timeline(
        &self,
        session_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<StoredEvent>>;

    /// With a session id: that session's timeline, oldest first; without: the latest events,
    /// newest first.
    async fn list_events(&self, filter: EventFilter) -> Result<Vec<StoredEvent>>;

    /// Active sessions per component.
    async fn active_by_component(&self) -> Result<BTreeMap<String, u64>>;

    /// Analytics: per-component aggregates of the sessions started in `window`, with a
    /// session count per trend bucket ([`AnalyticsWindow::buckets`]).
    async fn analytics_summary(&self, window: AnalyticsWindow) -> Result<Vec<ComponentSummary>>;

    /// Analytics: per component, the most common failure in `window` (a failed command's
    /// error, else the session's: exit code, signal, abandoned); ties go to the first in
    /// alphabetical order. Components without failures are absent.
    async fn analytics_common_errors(
        &self,
        window: AnalyticsWindow,
    ) -> Result<BTreeMap<String, String>>;

    /// Analytics: the active sessions, newest start first (at most `limit`), their age at
    /// `now`, and how many there are in all; of `components` only when given (the caller's
    /// visibility).
    async fn analytics_active(
        &self,
        component: Option<String>,
        components: Option<Vec<String>>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<ActiveSessions>;

    async fn health(&self) -> Result<StoreHealth>;

    /// Marks abandoned (`end_reason = "heartbeat_timeout"`, `ended_at` = its last event) every
    /// active session that showed no life since `active_cutoff` (sessions that announced
    /// heartbeats) or `legacy_cutoff` (sessions that did not): life is the server's receipt of
    /// a live event, an imported event's own time ([`Origin`]). A real end that arrives later
    /// wins. A backend shared by several servers tells the others which sessions it abandoned
    /// ([`FeedNotice::Abandoned`]): no event records an abandonment.
    async fn reap(
        &self,
        active_cutoff: DateTime<Utc>,
        legacy_cutoff: DateTime<Utc>,
    ) -> Result<Vec<Reaped>>;

    /// The change feed: the stored events after a position, bounded, optionally only those of
    /// some components, and the current position ([`FeedQuery`]).
    async fn feed(&self, query: FeedQuery) -> Result<FeedPage>;

    /// Listens for what other servers on the same database commit and abandon (PostgreSQL's
    /// `LISTEN`); `None` for a backend that serves one process (SQLite), whose server sees
    /// every change itself.
    async fn listen_feed(&self) -> Result<Option<Box<dyn FeedListener>>> {
        Ok(None)
    }

    /// Records that the token `jti` is revoked; `expires_at` (the token's `exp`, when known)
    /// lets the record be dropped once the token could not be used anyway.
    async fn revoke_token(&self, jti: &str, expires_at: Option<DateTime<Utc>>) -> Result<()>;

    /// Whether the token `jti` is revoked.
    async fn is_revoked(&self, jti: &str) -> Result<bool>;

    /// Every revoked `jti` whose token has not expired by `now` (the server caches these).
    async fn revoked_tokens(&self, now: DateTime<Utc>) -> Result<Vec<String>>;

    /// Whether this instance holds the reaper lease: with several servers on one database only
    /// the holder reaps, prunes and exports the gauges that come from the store (so summing
    /// them over servers does not multiply them). A backend that serves one process (SQLite)
    /// always holds it.
    async fn reaper_lease(&self) -> Result<bool> {
        Ok(true)
    }

    /// Retention: deletes at most `batch` sessions that are over (ended or abandoned) and
    /// started before `started_before`, with their events, and at most `batch` pending events
    /// (no start stored) older than it; returns how many sessions and events went. Callers
    /// repeat while it returns a full batch.
    async fn prune(&self, started_before: DateTime<Utc>, batch: usize) -> Result<Pruned>;

    /// Analytics rollups ([`analytics::ROLLUP_US`]): recomputes at most
    /// [`analytics::ROLLUP_REFRESH_BATCH`] of the out-of-date hours that are over by `now`,
    /// oldest first, and returns how many. Callers repeat while it returns a full batch. A
    /// query is exact whether or not this ran; it only makes queries cheaper.
    async fn refresh_rollups(&self, now: DateTime<Utc>) -> Result<usize>;

    /// Export: stored events (pending ones too) with a timestamp at or after `since`, in time
    /// order (timestamp, then event id), after the key `after` (the previous page's last
    /// event's timestamp and id), at most `limit` (≤ [`MAX_PAGE`]).
    async fn events_in_time_order(
        &self,
        since: Option<DateTime<Utc>>,
        after: Option<(DateTime<Utc>, String)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>>;

    /// Redaction (`session-buddy redact`): re-applies the current rules
    /// ([`session_buddy_events::redact_args`]) to the stored arguments and error of every
    /// command event, pending ones too, in batches ([`reredacted_payload`]). With `apply` it
    /// rewrites the events they change; without, it only counts them. Session rows hold
    /// neither.
    async fn redact_stored(&self, apply: bool) -> Result<Redaction>;

    /// Stores recording chunks idempotently (a session's sequence number once), each while the
    /// session's recording stays within `cap` data bytes; the first chunk over it marks the
    /// recording truncated instead ([`recording::over_cap_reason`]). One outcome per chunk, in
    /// order; durable when it returns. A chunk may come before its session's start.
    async fn store_chunks(&self, chunks: Vec<PackedChunk>, cap: u64) -> Result<Vec<ChunkOutcome>>;

    /// The summary of each recording among `session_ids` that has one.
    async fn recording_infos(&self, session_ids: &[String]) -> Result<Vec<RecordingInfo>>;

    /// A session's whole recording, chunks in sequence order; `None` when it has none.
    async fn recording(&self, session_id: &str) -> Result<Option<Recording>>;

    /// Export: the sessions with a recording, in session-id order after `after`, at most
    /// `limit`.
    async fn recorded_sessions(&self, after: Option<String>, limit: usize) -> Result<Vec<String>>;

    /// Retention of recordings: deletes at most `batch` recordings whose newest chunk was cut
    /// before `before`; returns how many.
    async fn prune_recordings(&self, before: DateTime<Utc>, batch: usize) -> Result<u64>;

    /// Removes one session for good (its record, events, search entries and recording) and
    /// writes `audit` to the audit log, in one transaction.
    async fn erase_session(&self, session_id: &str, audit: AuditEntry) -> Result<Erased>;

    /// Appends to the audit log (its `id` is assigned).
    async fn record_audit(&self, entry: AuditEntry) -> Result<()>;

    /// The audit log, newest first: at most `limit` entries, of `session_id` when given.
    async fn audit_log(&self, session_id: Option<String>, limit: usize) -> Result<Vec<AuditEntry>>;

    /// Waits until everything acknowledged is written, then stops the writer.
    async fn close(&self);
}

/// What one [`Store::redact_stored`] call found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Redaction {
    /// Command events read.
    pub examined: u64,
    /// Events whose arguments or error the current rules change (rewritten when applied).
    pub changed: u64,
    pub applied: bool,
}

/// Command events [`Store::redact_stored`] reads per batch (and rewrites per transaction).
pub const REDACT_BATCH: usize = 500;

/// A stored command's payload with the current redaction rules applied to its arguments and
/// error, or `None` when they change nothing. A payload that is not a command event is left
/// alone.
pub fn reredacted_payload(payload: &str) -> Option<String> {
    use session_buddy_events::limits::{ARGS_MAX_BYTES, ERROR_MAX_BYTES};
    let mut command: CommandEvent = match serde_json::from_str(payload) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "a stored command event does not decode; left as it is");
            return None;
        }
    };
    let mut changed = false;
    for (text, max) in [
        (&mut command.args, ARGS_MAX_BYTES),
        (&mut command.error, ERROR_MAX_BYTES),
    ] {
        if let Some(old) = text.as_deref() {
            let redacted = session_buddy_events::redact_clipped(old, max);
            if redacted != old {
                *text = Some(redacted);
                changed = true;
            }
        }
    }
    changed.then(|| Event::Command(command).to_canonical_json())
}

/// What one [`Store::prune`] call deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub sessions: u64,
    pub events: u64,
}

/// A cursor for the next page: `{started_at µs}:{session_id}` (every backend issues the same).
pub fn encode_cursor(started_us: i64, session_id: &str) -> String {
    format!("{started_us}:{session_id}")
}

/// Reads a cursor [`encode_cursor`] issued; anything else is an [`StoreError::InvalidQuery`].
pub fn decode_cursor(cursor: &str) -> Result<(i64, String)> {
    let (us, id) = cursor.split_once(':').ok_or_else(|| {
        StoreError::InvalidQuery(format!("cursor '{cursor}' is not one this server issued"))
    })?;
    let us = us.parse::<i64>().map_err(|_| {
        StoreError::InvalidQuery(format!("cursor '{cursor}' is not one this server issued"))
    })?;
    if !session_buddy_events::is_valid_session_id(id) {
        return Err(StoreError::InvalidQuery(format!(
            "cursor '{cursor}' is not one this server issued"
        )));
    }
    Ok((us, id.to_string()))
}

pub use session_buddy_events::component_from_session_id;

/// A parameter of a query built by [`session_page_query`].
#[derive(Debug, Clone, PartialEq)]
pub enum SqlArg {
    Text(String),
    Int(i64),
}

/// Everything after `FROM sessions` for one page of [`SessionFilter`]: the filters, the
/// keyset cursor, the order and `LIMIT limit+1`, with placeholders written `{mark}1`,
/// `{mark}2`, … (`?` for SQLite, `$` for PostgreSQL), and their values in order. Every
/// backend pages the same way, so [`page_of`] can cut the extra row into a cursor.
///
/// `search` is the backend's condition for [`SessionFilter::q`] (see [`search_clause`]); it is
/// needed only when the filter searches.
pub fn session_page_query(
    f: &SessionFilter,
    mark: char,
    search: Option<&str>,
) -> Result<(String, Vec<SqlArg>)> {
    let mut sql = String::from(" WHERE 1=1");
    let mut args: Vec<SqlArg> = Vec::new();
    let mut add = |clause: &str, v: SqlArg| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("{mark}{}", args.len())));
    };
    let text = |s: &String| SqlArg::Text(s.clone());
    if let Some(t) = &f.session_type {
        add(" AND session_type = ?", text(t));
    }
    if let Some(c) = &f.component {
        add(" AND component = ?", text(c));
    }
    if let Some(u) = &f.user {
        add(" AND username = ?", text(u));
    }
    if let Some(h) = &f.host {
        add(" AND hostname = ?", text(h));
    }
    if let Some(st) = f.status {
        add(" AND status = ?", SqlArg::Text(st.as_str().to_string()));
    }
    if let Some(a) = f.after {
        add(" AND started_at >= ?", SqlArg::Int(a.timestamp_micros()));
    }
    if let Some(b) = f.before {
        add(" AND started_at < ?", SqlArg::Int(b.timestamp_micros()));
    }
    if let Some(d) = f.min_duration {
        add(
            " AND duration_us >= ?",
            SqlArg::Int((d * 1e6).round() as i64),
        );
    }
    if let Some(visible) = &f.components {
        if visible.is_empty() {
            sql.push_str(" AND 1=0");
        } else {
            sql.push_str(" AND component IN (");
            for (i, c) in visible.iter().enumerate() {
                args.push(SqlArg::Text(c.clone()));
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("{mark}{}", args.len()));
            }
            sql.push(')');
        }
    }
    search_clause(f, mark, search, &mut sql, &mut args)?;
    if let Some(c) = &f.cursor {
        let (us, id) = decode_cursor(c)?;
        args.push(SqlArg::Int(us));
        args.push(SqlArg::Text(id));
        let (a, b) = (args.len() - 1, args.len());
        sql.push_str(&format!(
            " AND (started_at < {mark}{a} OR (started_at = {mark}{a} AND session_id < {mark}{b}))"
        ));
    }
    args.push(SqlArg::Int(f.limit.clamp(1, MAX_PAGE) as i64 + 1));
    sql.push_str(&format!(
        " ORDER BY started_at DESC, session_id DESC LIMIT {mark}{}",
        args.len()
    ));
    Ok((sql, args))
}

/// The shortest text [`SessionFilter::q`] searches for: trigram indexes (SQLite FTS5's
/// `trigram` tokenizer, PostgreSQL's `pg_trgm`) cannot look up fewer characters.
pub const SEARCH_MIN_CHARS: usize = 3;
/// The longest search text.
pub const SEARCH_MAX_CHARS: usize = 200;
/// A backend counts the sessions a search matches through its indexes up to this many (the
/// count's cost grows with it); see [`SearchPlan::choose`].
pub const SEARCH_COUNT_MAX: i64 = 20_000;
/// How many of the newest sessions a backend tests one by one to see how common the matches
/// are where a walk would start; see [`SearchPlan::choose`].
pub const SEARCH_SAMPLE: i64 = 1_000;

/// The text `q` searches for: trimmed; `None` when empty (an empty search box); refused when
/// shorter than [`SEARCH_MIN_CHARS`] or longer than [`SEARCH_MAX_CHARS`] characters, or
/// holding a NUL or another control character. The one rule for every front end and backend.
pub fn search_term(q: Option<&str>) -> Result<Option<&str>> {
    let Some(t) = q.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let n = t.chars().count();
    if n < SEARCH_MIN_CHARS {
        return Err(StoreError::InvalidQuery(format!(
            "q: type at least {SEARCH_MIN_CHARS} characters to search (got {n})"
        )));
    }
    if n > SEARCH_MAX_CHARS || t.chars().any(char::is_control) {
        return Err(StoreError::InvalidQuery(format!(
            "q: must be at most {SEARCH_MAX_CHARS} characters without control characters"
        )));
    }
    Ok(Some(t))
}

/// A `LIKE` pattern matching `term` anywhere, with `%`, `_` and `\` escaped by `\` (the
/// statements say `ESCAPE '\'`).
pub fn like_pattern(term: &str) -> String {
    let mut p = String::with_capacity(term.len() + 2);
    p.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// `term` as one FTS5 phrase (`"…"`, inner quotes doubled): with the trigram tokenizer, a
/// substring match.
pub fn fts_phrase(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// How a backend finds the sessions a search matches, chosen per query by
/// [`SearchPlan::choose`]: `Lookup` takes the matching ids from the indexes and sorts them
/// (its cost grows with the number of matches); `Walk` walks the sessions newest first and
/// tests each until the page is full (its cost grows with how rare the matches are among the
/// newest sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchPlan {
    Lookup,
    Walk,
}

impl SearchPlan {
    /// The plan for a page of `limit` when the indexes count `matches` sessions (up to
    /// [`SEARCH_COUNT_MAX`]) and `sample_hits` of the [`SEARCH_SAMPLE`] newest sessions match.
    /// A walk tests about `(limit + 1) × SEARCH_SAMPLE / sample_hits` rows, a lookup sorts
    /// `matches`, each about three times dearer per row: the cheaper wins. With no hit in the
    /// sample (the matches are rare or old) a walk could test every session, so it is a lookup.
    pub fn choose(matches: i64, sample_hits: i64, limit: usize) -> Self {
        let walk_rows = (limit.clamp(1, MAX_PAGE) as i64 + 1) * SEARCH_SAMPLE;
        if sample_hits > 0 && walk_rows < matches.saturating_mul(sample_hits).saturating_mul(3) {
            SearchPlan::Walk
        } else {
            SearchPlan::Lookup
        }
    }
}

/// Appends the text-search condition of `f` (if it searches) to `sql`: the backend's
/// `search` SQL, in which `{like}` stands for the [`like_pattern`] and `{phrase}` for the
/// [`fts_phrase`] of the term, each bound as one parameter.
fn search_clause(
    f: &SessionFilter,
    mark: char,
    search: Option<&str>,
    sql: &mut String,
    args: &mut Vec<SqlArg>,
) -> Result<()> {
    let Some(term) = search_term(f.q.as_deref())? else {
        return Ok(());
    };
    let mut clause = search
        .ok_or_else(|| StoreError::InvalidQuery("q: this backend cannot search".into()))?
        .to_string();
    for (token, value) in [
        ("{like}", like_pattern(term)),
        ("{phrase}", fts_phrase(term)),
    ] {
        if clause.contains(token) {
            args.push(SqlArg::Text(value));
            clause = clause.replace(token, &format!("{mark}{}", args.len()));
        }
    }
    sql.push_str(&clause);
    Ok(())
}

/// The page for `filter` from the rows [`session_page_query`] returned (one more than the
/// limit when there is a next page).
pub fn page_of(mut sessions: Vec<Session>, filter: &SessionFilter) -> SessionPage {
    let limit = filter.limit.clamp(1, MAX_PAGE);
    let next_cursor = if sessions.len() > limit {
        sessions.truncate(limit);
        sessions
            .last()
            .map(|s| encode_cursor(s.started_at.timestamp_micros(), &s.session_id))
    } else {
        None
    };
    SessionPage {
        sessions,
        next_cursor,
    }
}

/// Why a stored event with the same id is no duplicate of `event` (whose canonical JSON is
/// `payload`), or `None` when storing it again is a duplicate; `stored` is the stored
/// payload under `event_id`, or `None` when no row has that id (the one-end-per-session
/// index refused it). The same in every backend.
pub fn conflict_with_stored(
    event: &Event,
    event_id: &str,
    payload: &str,
    stored: Option<&str>,
) -> Option<String> {
    let is_end = event.event_type() == EventType::SessionEnd;
    match stored {
        Some(p) if p == payload => None,
        // An end without an event id is stored under an id derived from its session, so
        // this row is that session's end: a second end is a duplicate whatever its content.
        Some(_) if is_end && event.sent_event_id().is_none() => None,
        // The same command, its arguments redacted by other rules (stored before a change of
        // the rules, or rewritten by `redact --apply` since).
        Some(p) if same_command_but_redaction(event, p) => None,
        Some(_) => Some(format!(
            "event_id: {event_id} is already stored with different content"
        )),
        // A session has one end; a second end is a duplicate.
        None if is_end => None,
        None => Some(format!(
            "event_id: {event_id} conflicts with a stored event"
        )),
    }
}

/// Whether `stored` is `event` (a command) but for how secrets in its arguments and error were
/// redacted: every other field equal, those two [`redactions_compatible`].
///
/// [`redactions_compatible`]: session_buddy_events::redactions_compatible
fn same_command_but_redaction(event: &Event, stored: &str) -> bool {
    let Event::Command(incoming) = event else {
        return false;
    };
    let Ok(stored) = serde_json::from_str::<CommandEvent>(stored) else {
        return false;
    };
    let compatible = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => session_buddy_events::redactions_compatible(a, b),
        (None, None) => true,
        _ => false,
    };
    compatible(&stored.args, &incoming.args)
        && compatible(&stored.error, &incoming.error)
        && CommandEvent {
            args: None,
            error: None,
            ..stored
        } == CommandEvent {
            args: None,
            error: None,
            ..incoming.clone()
        }
}

#[cfg(test)]
mod tests;
