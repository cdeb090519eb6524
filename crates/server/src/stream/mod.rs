//! The live stream: one [`Hub`] per server follows the store's change feed and broadcasts
//! coalesced per-session frames to the viewers of `GET /v1/stream` (`sse.rs`).
//!
//! - **Waking.** Local ingest calls [`Hub::ingested`] (a `Notify`: ingest never waits for the
//!   hub, let alone a viewer); the reaper hands over what it abandoned ([`Hub::abandoned`]);
//!   on PostgreSQL the hub also listens for the other servers' `NOTIFY`s
//!   ([`Store::listen_feed`]); a slow poll ([`StreamOptions::poll`]) catches anything else.
//! - **Holes.** Positions need not become visible in order (PostgreSQL), so a gap the hub
//!   read past is remembered for [`HOLE_TTL`] and asked for again at every read.
//! - **Coalescing.** Events are grouped per session; a session gets at most one frame per
//!   [`COALESCE`] (its first change goes out at once, later ones within that second).
//! - **Rounds.** The hub reads the feed and sends frames at most once per
//!   [`StreamOptions::round`], however often ingest wakes it: a round's frames are serialised
//!   once and broadcast together ([`Batch`]) through a bounded `broadcast` channel, so a
//!   viewer writes one chunk per round, not one per frame. A viewer that falls
//!   [`StreamOptions::buffer`] rounds behind gets `resync` (`lagged`).
//! - **Budget.** A viewer is sent at most [`StreamOptions::viewer_bytes_per_second`] (a
//!   token bucket with a second's burst); a round that does not fit is replaced by one
//!   `resync` (`busy`), and nothing more goes to that viewer until its budget is full again.
//!   What no viewer can read is never written: a live view under a flood of new sessions
//!   costs a bounded number of bytes, not a copy of the flood.
//! - **Resume mark.** Each frame carries the hub's mark: every event at or below it has been
//!   broadcast (nothing pending, no hole below it), which is the `id:` a viewer resumes from.

mod sse;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use session_buddy_events::Session;
use session_buddy_store::{FeedEvent, FeedListener, FeedNotice, FeedQuery, Store};
use tokio::sync::{Notify, broadcast, watch};

use sse::Filter;
pub(crate) use sse::stream;

/// A session gets at most one frame per this long.
pub const COALESCE: Duration = Duration::from_secs(1);
/// How long a gap in the positions read is asked for again.
pub const HOLE_TTL: Duration = Duration::from_secs(10);
/// Gaps remembered at most (the oldest are forgotten first).
const HOLES_MAX: usize = 1024;
/// Events read per feed call.
const FEED_PAGE: usize = 1000;
/// Feed pages read per wake before frames go out.
const PAGES_PER_ROUND: usize = 20;
/// Events a frame lists at most (the latest); earlier ones are counted in `events_omitted`.
pub const FRAME_EVENTS_MAX: usize = 100;
/// Session records read by one query when frames go out.
const RECORD_READS: usize = 500;
/// Abandoned session ids waiting for the hub at most.
const ABANDONED_MAX: usize = 100_000;

/// Limits and timings of the stream.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Open streams in all; beyond, `503` with `Retry-After`. 1024: 200 live views and
    /// plenty of `watch`es fit, and each idle viewer costs a task and a socket.
    pub max_streams: usize,
    /// Open streams per token (by its `jti`); 256 lets 200 live views share one token.
    pub max_streams_per_token: usize,
    /// Rounds a viewer may fall behind before it gets `resync` (the broadcast's capacity;
    /// each entry is one round's frames).
    pub buffer: usize,
    /// The least time between two rounds of the hub (read the feed, send frames).
    pub round: Duration,
    /// Bytes a viewer is sent per second at most (burst: one second's worth); beyond,
    /// `resync` with reason `busy`.
    pub viewer_bytes_per_second: usize,
    /// A comment line this often, so proxies and clients see the stream is alive.
    pub keep_alive: Duration,
    /// The feed is read at least this often even with no wake-up.
    pub poll: Duration,
    /// A resumed viewer is sent the events from this many positions before its
    /// `Last-Event-ID` again (duplicates it drops by event id).
    pub resume_overlap: i64,
    /// A viewer further behind than this many events gets `resync` instead of a replay.
    pub replay_max: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            max_streams: 1024,
            max_streams_per_token: 256,
            buffer: 16,
            round: Duration::from_millis(200),
            viewer_bytes_per_second: 256 * 1024,
            keep_alive: Duration::from_secs(15),
            poll: Duration::from_secs(5),
            resume_overlap: 256,
            replay_max: 10_000,
        }
    }
}

/// One frame: what viewers filter on, and its text.
#[derive(Debug)]
pub(crate) struct Frame {
    pub component: String,
    pub username: String,
    pub hostname: String,
    /// `event: session` … with `id: <mark>`.
    pub text: Bytes,
}

/// One round's frames, broadcast together.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The hub's mark when they were sent (the frames' `id:`).
    pub mark: i64,
    pub frames: Vec<Frame>,
}

/// The stream's state, shared by the hub task and the viewers.
pub struct Hub {
    options: StreamOptions,
    wake: Notify,
    abandoned: Mutex<Vec<String>>,
    frames: broadcast::Sender<Arc<Batch>>,
    /// Every event at or below it has been broadcast.
    mark: AtomicI64,
    /// The feed has been read once (the mark is meaningful).
    ready: AtomicBool,
    stopping: watch::Sender<bool>,
    open: AtomicUsize,
    /// What each open viewer follows, and whether it rests after a `busy` resync: the hub
    /// makes frames only for sessions that a viewer not resting would be sent.
    listeners: Mutex<HashMap<u64, (Arc<Filter>, bool)>>,
    next_listener: AtomicU64,
    /// The feed has been read up to here (a viewer that starts now starts here at the
    /// latest: frames of events up to it may have been made without its filter).
    read_through: AtomicI64,
    per_token: Mutex<HashMap<String, usize>>,
    /// Held by a stream while it takes its place and its start, and by the follower while it
    /// skips the feed for want of viewers: a viewer then starts after what was skipped.
    pub(crate) gate: tokio::sync::Mutex<()>,
}

impl Hub {
    pub fn new(options: StreamOptions) -> Self {
        let (frames, _) = broadcast::channel(options.buffer.max(1));
        Self {
            options,
            wake: Notify::new(),
            abandoned: Mutex::new(Vec::new()),
            frames,
            mark: AtomicI64::new(0),
            ready: AtomicBool::new(false),
            stopping: watch::channel(false).0,
            open: AtomicUsize::new(0),
            listeners: Mutex::new(HashMap::new()),
            next_listener: AtomicU64::new(0),
            read_through: AtomicI64::new(0),
            per_token: Mutex::new(HashMap::new()),
            gate: tokio::sync::Mutex::new(()),
        }
    }

    pub fn options(&self) -> &StreamOptions {
        &self.options
    }

    /// Local ingest stored events: read the feed (never waits).
    pub fn ingested(&self) {
        self.wake.notify_one();
    }

    /// The reaper abandoned these sessions.
    pub fn abandoned(&self, session_ids: impl IntoIterator<Item = String>) {
        if let Ok(mut list) = self.abandoned.lock() {
            list.extend(session_ids);
            if list.len() > ABANDONED_MAX {
                let extra = list.len() - ABANDONED_MAX;
                list.drain(..extra);
            }
        }
        self.wake.notify_one();
    }

    /// Ends every stream (server shutdown).
    pub fn shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// The resume mark now.
    pub fn mark(&self) -> i64 {
        self.mark.load(Ordering::Acquire)
    }

    /// A viewer's filter joins the hub's (under the gate, before it takes its start).
    pub(crate) fn listen(&self, filter: Arc<Filter>) -> u64 {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = self.listeners.lock() {
            l.insert(id, (filter, false));
        }
        id
    }

    /// A viewer has gone.
    pub(crate) fn unlisten(&self, id: u64) {
        if let Ok(mut l) = self.listeners.lock() {
            l.remove(&id);
        }
    }

    /// A viewer starts (`true`) or ends (`false`) a rest after a `busy` resync.
    pub(crate) fn rest(&self, id: u64, on: bool) {
        if let Ok(mut l) = self.listeners.lock()
            && let Some(entry) = l.get_mut(&id)
        {
            entry.1 = on;
        }
    }

    /// The filters of the viewers not resting.
    fn listening(&self) -> Vec<Arc<Filter>> {
        self.listeners
            .lock()
            .map(|l| {
                l.values()
                    .filter(|(_, resting)| !resting)
                    .map(|(f, _)| f.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether no open viewer would be sent a frame now: none is open, or every one rests.
    fn nobody_listens(&self) -> bool {
        self.listeners
            .lock()
            .map(|l| l.values().all(|(_, resting)| *resting))
            .unwrap_or(true)
    }

    /// Where a viewer that starts now, without a position, starts.
    pub(crate) fn start_position(&self) -> i64 {
        self.mark().max(self.read_through.load(Ordering::Acquire))
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Batch>> {
        self.frames.subscribe()
    }

    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// A place among the open streams for `token` (its `jti`; `None` without authentication),
    /// or `None` when the caps are reached.
    pub(crate) fn admit(self: &Arc<Self>, token: Option<&str>) -> Option<Permit> {
        let total = self.open.fetch_add(1, Ordering::AcqRel);
        if total >= self.options.max_streams {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        if let Some(t) = token {
            let Ok(mut per) = self.per_token.lock() else {
                self.open.fetch_sub(1, Ordering::AcqRel);
                return None;
            };
            let n = per.entry(t.to_string()).or_default();
            if *n >= self.options.max_streams_per_token {
                drop(per);
                self.open.fetch_sub(1, Ordering::AcqRel);
                return None;
            }
            *n += 1;
        }
        Some(Permit {
            hub: self.clone(),
            token: token.map(str::to_string),
        })
    }
}

/// An open stream's place; dropping it frees the place.
pub(crate) struct Permit {
    hub: Arc<Hub>,
    token: Option<String>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.hub.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(t) = &self.token
            && let Ok(mut per) = self.hub.per_token.lock()
            && let Some(n) = per.get_mut(t)
        {
            *n -= 1;
            if *n == 0 {
                per.remove(t);
            }
        }
    }
}

/// A session's changes not yet sent.
#[derive(Default)]
struct Pending {
    events: Vec<FeedEvent>,
    abandoned: bool,
}

impl Pending {
    fn lowest(&self) -> Option<i64> {
        self.events.iter().map(|e| e.position).min()
    }
}

/// The hub's task state.
struct Follower {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    /// The feed has been read up to here.
    after: i64,
    /// Gaps read past: `(low, high, first seen)`.
    holes: VecDeque<(i64, i64, Instant)>,
    pending: HashMap<String, Pending>,
    /// When each session last got a frame (entries older than [`COALESCE`] are dropped).
    sent: HashMap<String, Instant>,
    /// Abandonments announced recently (the reaper's own and the `NOTIFY` echo of it).
    recent_abandoned: HashMap<String, Instant>,
}

/// Reads where the feed ends now: the hub starts there (viewers asking for older positions
/// are replayed from the store). False when the store cannot answer.
pub async fn prime(store: &dyn Store, hub: &Hub) -> bool {
    match store
        .feed(FeedQuery {
            after: i64::MAX,
            limit: 1,
            ..FeedQuery::default()
        })
        .await
    {
        Ok(page) => {
            hub.mark.store(page.position, Ordering::Release);
            hub.ready.store(true, Ordering::Release);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "the stream cannot read the change feed");
            false
        }
    }
}

/// Runs the hub until the server stops (the caller aborts the task); [`prime`] first.
pub async fn run(store: Arc<dyn Store>, hub: Arc<Hub>) {
    let mut follower = Follower {
        store: store.clone(),
        hub: hub.clone(),
        after: 0,
        holes: VecDeque::new(),
        pending: HashMap::new(),
        sent: HashMap::new(),
        recent_abandoned: HashMap::new(),
    };
    while !ready(&hub) && !prime(store.as_ref(), &hub).await {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    follower.after = hub.mark();
    let mut listener: Option<Box<dyn FeedListener>> = None;
    let mut listen_retry = Instant::now();
    let mut stopping = hub.stopping();
    let mut last_round: Option<Instant> = None;
    loop {
        if listener.is_none() && Instant::now() >= listen_retry {
            match store.listen_feed().await {
                Ok(l) => listener = l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for the other servers' changes");
                }
            }
            // A backend without a listener answers None every time: ask again rarely.
            listen_retry = Instant::now() + Duration::from_secs(5);
        }
        let wait = follower.next_due().unwrap_or(hub.options.poll);
        let notice = tokio::select! {
            () = hub.wake.notified() => None,
            n = next_notice(&mut listener) => n,
            () = tokio::time::sleep(wait) => None,
            _ = stopping.changed() => return,
        };
        match notice {
            Some(Ok(FeedNotice::Abandoned(ids))) => follower.add_abandoned(ids),
            Some(Ok(FeedNotice::Events)) => {}
            Some(Err(e)) => {
                tracing::warn!(error = %e, "lost the LISTEN connection; listening again");
                listener = None;
            }
            None => {}
        }
        // However often ingest wakes the hub, one round per `round` at most: the wake-ups
        // in between fold into the next round.
        if let Some(at) = last_round {
            let wait = hub.options.round.saturating_sub(at.elapsed());
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stopping.changed() => return,
                }
            }
        }
        last_round = Some(Instant::now());
        let local: Vec<String> = hub
            .abandoned
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        follower.add_abandoned(local);
        if let Err(e) = follower.read().await {
            tracing::warn!(error = %e, "the stream cannot read the change feed");
        }
        follower.flush().await;
    }
}

async fn next_notice(
    listener: &mut Option<Box<dyn FeedListener>>,
) -> Option<session_buddy_store::Result<FeedNotice>> {
    match listener {
        Some(l) => Some(l.next().await),
        None => std::future::pending().await,
    }
}

impl Follower {
    fn add_abandoned(&mut self, ids: Vec<String>) {
        let now = Instant::now();
        self.recent_abandoned
            .retain(|_, at| now.duration_since(*at) < HOLE_TTL);
        for id in ids {
            if self.recent_abandoned.insert(id.clone(), now).is_none() {
                self.pending.entry(id).or_default().abandoned = true;
            }
        }
    }

    /// Reads what the feed has after `after` and in the remembered holes.
    async fn read(&mut self) -> session_buddy_store::Result<()> {
        {
            let _gate = self.hub.gate.lock().await;
            if self.hub.nobody_listens() {
                // Nobody follows the stream, or every viewer rests after `busy`: skip to the
                // feed's end instead of reading every event, so that ingest pays nothing for
                // frames nobody would be sent.
                let end = self
                    .store
                    .feed(FeedQuery {
                        after: i64::MAX,
                        recheck: Vec::new(),
                        limit: 1,
                        components: None,
                    })
                    .await?
                    .position;
                self.after = self.after.max(end);
                self.holes.clear();
                self.pending.clear();
                self.hub.mark.store(self.after, Ordering::Release);
                self.hub.read_through.store(self.after, Ordering::Release);
                return Ok(());
            }
        }
        let now = Instant::now();
        self.holes
            .retain(|(_, _, since)| now.duration_since(*since) < HOLE_TTL);
        for _ in 0..PAGES_PER_ROUND {
            let page = self
                .store
                .feed(FeedQuery {
                    after: self.after,
                    recheck: self.holes.iter().map(|&(lo, hi, _)| (lo, hi)).collect(),
                    limit: FEED_PAGE,
                    components: None,
                })
                .await?;
            let mut above = 0;
            let mut found_in_holes = Vec::new();
            for e in page.events {
                if e.position > self.after {
                    if e.position > self.after + 1 {
                        self.remember_hole(self.after + 1, e.position - 1, now);
                    }
                    self.after = e.position;
                    above += 1;
                } else {
                    found_in_holes.push(e.position);
                }
                self.pending
                    .entry(e.event.session_id.clone())
                    .or_default()
                    .events
                    .push(e);
            }
            for p in found_in_holes {
                self.fill_hole(p);
            }
            if above < FEED_PAGE {
                break;
            }
        }
        self.hub.read_through.store(self.after, Ordering::Release);
        Ok(())
    }

    fn remember_hole(&mut self, lo: i64, hi: i64, now: Instant) {
        self.holes.push_back((lo, hi, now));
        while self.holes.len() > HOLES_MAX {
            self.holes.pop_front();
        }
    }

    /// An event was found at `p` inside a hole: the hole shrinks around it.
    fn fill_hole(&mut self, p: i64) {
        let mut kept = VecDeque::with_capacity(self.holes.len() + 1);
        for (lo, hi, since) in self.holes.drain(..) {
            if p < lo || p > hi {
                kept.push_back((lo, hi, since));
                continue;
            }
            if lo < p {
                kept.push_back((lo, p - 1, since));
            }
            if p < hi {
                kept.push_back((p + 1, hi, since));
            }
        }
        self.holes = kept;
    }

    /// How long until a pending session may get its frame.
    fn next_due(&self) -> Option<Duration> {
        let now = Instant::now();
        self.pending
            .keys()
            .filter_map(|id| self.sent.get(id))
            .map(|at| (*at + COALESCE).saturating_duration_since(now))
            .min()
            .map(|d| d.max(Duration::from_millis(10)))
    }

    /// Sends a frame for every pending session that is due, then moves the mark.
    async fn flush(&mut self) {
        let now = Instant::now();
        self.sent.retain(|_, at| now.duration_since(*at) < COALESCE);
        let due: Vec<String> = self
            .pending
            .keys()
            .filter(|id| !self.sent.contains_key(*id))
            .cloned()
            .collect();
        let mut frames = Vec::with_capacity(due.len());
        // The records are read a chunk at a time, one query each.
        for chunk in due.chunks(RECORD_READS) {
            let records = match self.store.get_sessions(chunk).await {
                Ok(records) => records,
                Err(e) => {
                    // They stay pending, for the next round.
                    tracing::warn!(error = %e, "the stream cannot read the sessions it shows");
                    continue;
                }
            };
            let mut records: HashMap<String, Session> = records
                .into_iter()
                .map(|s| (s.session_id.clone(), s))
                .collect();
            for id in chunk {
                let Some(pending) = self.pending.remove(id) else {
                    continue;
                };
                // Events of a session whose start is not stored: nothing to show yet.
                if let Some(session) = records.remove(id) {
                    self.sent.insert(id.clone(), now);
                    frames.push((session, pending));
                }
            }
        }
        let mark = self.mark_now();
        // Frames only for what a listening viewer would be sent (a session nobody follows
        // costs its record's read, not its serialisation and broadcast).
        let listening = self.hub.listening();
        let frames: Vec<Frame> = frames
            .into_iter()
            .filter(|(s, _)| {
                listening
                    .iter()
                    .any(|f| f.matches(&s.component, &s.username, &s.hostname))
            })
            .map(|(session, pending)| session_frame(&session, pending.events, mark))
            .collect();
        if !frames.is_empty() {
            // No viewer is no error.
            let _ = self.hub.frames.send(Arc::new(Batch { mark, frames }));
        }
        self.hub.mark.store(mark, Ordering::Release);
    }

    /// Every event at or below it has been broadcast: below the lowest pending event and the
    /// lowest remembered hole.
    fn mark_now(&self) -> i64 {
        let pending = self.pending.values().filter_map(Pending::lowest).min();
        let hole = self.holes.iter().map(|&(lo, _, _)| lo).min();
        [pending, hole]
            .into_iter()
            .flatten()
            .map(|p| p - 1)
            .fold(self.after, i64::min)
    }
}

/// The JSON of one event in a frame (docs/api.md, "GET /v1/stream"), written straight from
/// the stored event (no intermediate `Value`: the hub writes thousands a second).
#[derive(Serialize)]
struct FrameEvent<'a> {
    position: i64,
    event_id: &'a str,
    event_type: &'a str,
    timestamp: &'a DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    success: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<&'a Value>,
}

impl<'a> FrameEvent<'a> {
    fn of(e: &'a FeedEvent) -> Self {
        let field = |key: &str| e.event.payload.get(key).filter(|x| !x.is_null());
        Self {
            position: e.position,
            event_id: &e.event.event_id,
            event_type: &e.event.event_type,
            timestamp: &e.event.timestamp,
            command: field("command"),
            success: field("success"),
            duration_ms: field("duration_ms"),
            error: field("error"),
            exit_code: field("exit_code"),
        }
    }
}

/// A `session` frame's data.
#[derive(Serialize)]
struct FrameData<'a> {
    position: i64,
    session: &'a Session,
    events: Vec<FrameEvent<'a>>,
    events_omitted: usize,
}

/// A `session` frame: the record, its latest events (at most [`FRAME_EVENTS_MAX`]), `id:`
/// the resume mark.
pub(crate) fn session_frame(session: &Session, mut events: Vec<FeedEvent>, mark: i64) -> Frame {
    events.sort_by_key(|e| e.position);
    events.dedup_by(|a, b| a.event.event_id == b.event.event_id);
    let omitted = events.len().saturating_sub(FRAME_EVENTS_MAX);
    let data = FrameData {
        position: mark,
        session,
        events: events[omitted..].iter().map(FrameEvent::of).collect(),
        events_omitted: omitted,
    };
    let mut text = format!("event: session\nid: {mark}\ndata: ").into_bytes();
    if let Err(e) = serde_json::to_writer(&mut text, &data) {
        // Records and stored events always serialise; should one not, say so rather than
        // send half a frame.
        tracing::error!(error = %e, session_id = session.session_id, "cannot write a stream frame");
        text = resync_text("store_unavailable", mark).into_bytes();
    } else {
        text.extend_from_slice(b"\n\n");
    }
    Frame {
        component: session.component.clone(),
        username: session.username.clone(),
        hostname: session.hostname.clone(),
        text: Bytes::from(text),
    }
}

/// A `resync` frame's text.
pub(crate) fn resync_text(reason: &str, position: i64) -> String {
    let data = json!({"reason": reason, "position": position});
    format!("event: resync\nid: {position}\ndata: {data}\n\n")
}

/// Whether the hub has read the feed once.
pub(crate) fn ready(hub: &Hub) -> bool {
    hub.ready.load(Ordering::Acquire)
}

/// Distinct session ids, first seen first.
pub(crate) fn sessions_in_order(events: &[FeedEvent]) -> Vec<String> {
    let mut seen = HashSet::new();
    events
        .iter()
        .filter(|e| seen.insert(e.event.session_id.as_str()))
        .map(|e| e.event.session_id.clone())
        .collect()
}
