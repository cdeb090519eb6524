//! The change feed on PostgreSQL: reading events by `id`, and telling the other servers on the
//! database what changed with `NOTIFY` on [`CHANNEL`].
//!
//! - After an ingest commits, the store wakes its [`Announcer`], a task that sends one
//!   `NOTIFY` and then waits for the next wake: every ingest that commits while a `NOTIFY` is
//!   on its way shares the next one, so there is at most one in flight per server and never
//!   one per event. The `NOTIFY` runs on a connection of its own, outside the ingest
//!   transactions: a transaction that notifies takes a database-wide lock at commit, which
//!   would serialise every ingest.
//! - The reaper's abandonments are not events, so the reaper sends their session ids
//!   (`abandoned:<id>,<id>…`, in payloads under PostgreSQL's 8000-byte limit) right after its
//!   update committed.
//! - [`listen`] opens a connection that `LISTEN`s and turns notifications into
//!   [`FeedNotice`]s.

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};
use session_buddy_store::{FeedEvent, FeedListener, FeedNotice, FeedPage, FeedQuery, MAX_PAGE};
use tokio::sync::{Notify, mpsc};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::PgError;
use crate::read::{FEED_COLUMNS, stored_event_at};

/// The notification channel of the change feed.
pub(crate) const CHANNEL: &str = "session_buddy_feed";
/// The payload announcing new events.
const EVENTS: &str = "events";
/// The prefix of a payload naming abandoned sessions.
const ABANDONED: &str = "abandoned:";
/// PostgreSQL refuses payloads of 8000 bytes or more.
const PAYLOAD_MAX: usize = 7900;

pub(crate) async fn feed(conn: &mut Object, q: &FeedQuery) -> Result<FeedPage, PgError> {
    let limit = q.limit.clamp(1, MAX_PAGE) as i64;
    let tx = conn
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let components_clause = if q.components.is_some() {
        " AND e.session_id IN (SELECT session_id FROM sessions WHERE component = ANY($3))"
    } else {
        " AND $3::text[] IS NULL"
    };
    let above = tx
        .prepare_cached(&format!(
            "SELECT e.id, {FEED_COLUMNS} FROM events e WHERE e.id > $1{components_clause}
             ORDER BY e.id LIMIT $2"
        ))
        .await?;
    let components: Option<Vec<String>> = q.components.clone();
    let mut events: Vec<FeedEvent> = Vec::new();
    let ranges: Vec<(i64, i64)> = q
        .recheck
        .iter()
        .copied()
        .filter(|&(lo, hi)| lo <= hi && hi <= q.after)
        .collect();
    if !ranges.is_empty() {
        let (lows, highs): (Vec<i64>, Vec<i64>) = ranges.into_iter().unzip();
        let again = tx
            .prepare_cached(&format!(
                "SELECT e.id, {FEED_COLUMNS}
                 FROM unnest($1::int8[], $2::int8[]) AS r(lo, hi)
                 JOIN events e ON e.id BETWEEN r.lo AND r.hi
                 WHERE $3::text[] IS NULL
                    OR e.session_id IN (SELECT session_id FROM sessions WHERE component = ANY($3))
                 ORDER BY e.id LIMIT $4"
            ))
            .await?;
        for row in tx
            .query(&again, &[&lows, &highs, &components, &limit])
            .await?
        {
            events.push(FeedEvent {
                position: row.get(0),
                event: stored_event_at(&row, 1),
            });
        }
    }
    for row in tx.query(&above, &[&q.after, &limit, &components]).await? {
        events.push(FeedEvent {
            position: row.get(0),
            event: stored_event_at(&row, 1),
        });
    }
    let position: i64 = tx
        .query_one("SELECT coalesce(max(id), 0)::int8 FROM events", &[])
        .await?
        .get(0);
    tx.commit().await?;
    events.sort_by_key(|e| e.position);
    events.dedup_by_key(|e| e.position);
    Ok(FeedPage { events, position })
}

/// Sends one `NOTIFY` per burst of ingests (see the module's text).
pub(crate) struct Announcer {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Announcer {
    pub(crate) fn start(pool: Pool) -> Self {
        let wake = Arc::new(Notify::new());
        let task = {
            let wake = wake.clone();
            tokio::spawn(async move {
                loop {
                    wake.notified().await;
                    if let Err(e) = notify(&pool, EVENTS).await {
                        tracing::warn!(error = %e, "cannot announce new events to the other servers");
                    }
                }
            })
        };
        Self { wake, task }
    }

    /// An ingest committed: announce it (never waits).
    pub(crate) fn committed(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn notify(pool: &Pool, payload: &str) -> Result<(), PgError> {
    let conn = pool.get().await.map_err(|e| PgError::Pool(e.to_string()))?;
    conn.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await?;
    Ok(())
}

/// Tells the other servers which sessions the reaper abandoned.
pub(crate) async fn announce_abandoned(pool: &Pool, session_ids: &[String]) {
    for payload in abandoned_payloads(session_ids) {
        if let Err(e) = notify(pool, &payload).await {
            tracing::warn!(error = %e, "cannot announce abandoned sessions to the other servers");
        }
    }
}

/// `abandoned:<id>,<id>…` payloads, each under [`PAYLOAD_MAX`] bytes.
fn abandoned_payloads(session_ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::from(ABANDONED);
    for id in session_ids {
        if current.len() + id.len() + 1 > PAYLOAD_MAX && current.len() > ABANDONED.len() {
            out.push(std::mem::replace(&mut current, String::from(ABANDONED)));
        }
        if current.len() > ABANDONED.len() {
            current.push(',');
        }
        current.push_str(id);
    }
    if current.len() > ABANDONED.len() {
        out.push(current);
    }
    out
}

/// What a payload on [`CHANNEL`] says.
fn notice_of(payload: &str) -> FeedNotice {
    match payload.strip_prefix(ABANDONED) {
        Some(ids) => FeedNotice::Abandoned(
            ids.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        None => FeedNotice::Events,
    }
}

/// A connection that `LISTEN`s on [`CHANNEL`].
struct Listener {
    /// Kept so the connection stays open.
    _client: tokio_postgres::Client,
    notices: mpsc::Receiver<FeedNotice>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[async_trait]
impl FeedListener for Listener {
    async fn next(&mut self) -> session_buddy_store::Result<FeedNotice> {
        self.notices.recv().await.ok_or_else(|| {
            session_buddy_store::StoreError::Backend("the LISTEN connection closed".into())
        })
    }
}

pub(crate) async fn listen(
    config: &tokio_postgres::Config,
    location: &str,
) -> Result<Box<dyn FeedListener>, PgError> {
    let (client, mut connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|source| PgError::Connect {
                location: location.to_string(),
                source,
            })?;
    // A full queue means the reader is stuck; the connection then stops reading and
    // PostgreSQL keeps the notifications.
    let (tx, notices) = mpsc::channel(1024);
    let task = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(notice_of(n.payload())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the feed's LISTEN connection failed");
                    return;
                }
                None => return,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok(Box::new(Listener {
        _client: client,
        notices,
        task,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abandoned_ids_fit_in_payloads_and_read_back() {
        let ids: Vec<String> = (0..1000)
            .map(|i| format!("oneiric-20260206-123456-{i:06}"))
            .collect();
        let payloads = abandoned_payloads(&ids);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= PAYLOAD_MAX));
        let back: Vec<String> = payloads
            .iter()
            .flat_map(|p| match notice_of(p) {
                FeedNotice::Abandoned(ids) => ids,
                FeedNotice::Events => Vec::new(),
            })
            .collect();
        assert_eq!(back, ids);
        assert_eq!(notice_of(EVENTS), FeedNotice::Events);
        assert!(abandoned_payloads(&[]).is_empty());
    }
}
