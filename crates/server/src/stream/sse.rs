//! `GET /v1/stream`: one viewer of the hub as server-sent events (docs/api.md).
//!
//! Each viewer is a task writing into a small bounded channel that the response body reads:
//! when the client does not read, the socket fills, the task waits, and the hub's broadcast
//! moves on without it; the viewer then finds it lagged and sends `resync`. A round's
//! matching frames go out as one chunk, within the viewer's byte budget ([`Budget`]).
//! Nothing a viewer does reaches ingest.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use session_buddy_store::{FeedEvent, FeedQuery, MAX_PAGE};
use std::time::Instant;
use tokio::sync::{broadcast, mpsc, watch};

use super::{Batch, Frame, Hub, Permit, resync_text, session_frame, sessions_in_order};
use crate::auth::Principal;
use crate::bucket::Bucket;
use crate::{AppError, AppState};

const KEYS: &[&str] = &["component", "user", "host", "after"];
/// Seconds a refused viewer is asked to wait.
const RETRY_AFTER_SECS: u32 = 5;

/// What one viewer sees.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    component: Option<String>,
    user: Option<String>,
    host: Option<String>,
    /// The caller's visible components (`None`: all).
    visible: Option<Vec<String>>,
}

impl Filter {
    pub(crate) fn matches(&self, component: &str, user: &str, host: &str) -> bool {
        self.component.as_deref().is_none_or(|c| c == component)
            && self.user.as_deref().is_none_or(|u| u == user)
            && self.host.as_deref().is_none_or(|h| h == host)
            && self
                .visible
                .as_ref()
                .is_none_or(|v| v.iter().any(|c| c == component))
    }

    fn matches_frame(&self, f: &Frame) -> bool {
        self.matches(&f.component, &f.username, &f.hostname)
    }

    /// The components a replay reads from the store.
    fn components(&self) -> Option<Vec<String>> {
        match (&self.component, &self.visible) {
            (Some(c), Some(v)) if !v.contains(c) => Some(Vec::new()),
            (Some(c), _) => Some(vec![c.clone()]),
            (None, v) => v.clone(),
        }
    }
}

fn parse(
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(Filter, Option<i64>), AppError> {
    if let Some(unknown) = params.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(AppError::BadRequest(format!(
            "unknown parameter '{unknown}'; known: {}",
            KEYS.join(", ")
        )));
    }
    let text = |k: &str| -> Result<Option<String>, AppError> {
        match params.get(k) {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) if s.len() > 255 || s.contains('\0') => Err(AppError::BadRequest(format!(
                "{k}: must be at most 255 characters without NUL"
            ))),
            Some(s) => Ok(Some(s.clone())),
        }
    };
    let position = |what: &str, s: &str| -> Result<i64, AppError> {
        s.trim()
            .parse::<i64>()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| {
                AppError::BadRequest(format!(
                    "{what}: must be a stream position (a non-negative integer), got '{}'",
                    s.chars().take(40).collect::<String>()
                ))
            })
    };
    let resume = match headers.get("last-event-id") {
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| AppError::BadRequest("Last-Event-ID: not printable ASCII".into()))?;
            (!v.trim().is_empty())
                .then(|| position("Last-Event-ID", v))
                .transpose()?
        }
        None => None,
    };
    let resume = match resume {
        Some(p) => Some(p),
        None => text("after")?.map(|s| position("after", &s)).transpose()?,
    };
    Ok((
        Filter {
            component: text("component")?,
            user: text("user")?,
            host: text("host")?,
            visible: None,
        },
        resume,
    ))
}

/// `503` with `Retry-After`.
fn unavailable(message: String) -> Response {
    let mut r = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    r
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let principal = principal.map(|Extension(p)| p);
    let (mut filter, resume) = parse(&params, &headers)?;
    filter.visible = crate::auth::visible_components(principal.as_ref());
    let hub = state.stream.clone();
    if !super::ready(&hub) {
        return Ok(unavailable(
            "the stream is starting (the change feed is not read yet); retry".into(),
        ));
    }
    // Under the gate: the follower does not skip the feed between our place and our start.
    let gate = hub.gate.lock().await;
    let Some(permit) = hub.admit(principal.as_ref().map(|p| p.0.jti.as_str())) else {
        return Ok(unavailable(format!(
            "too many open streams (at most {} in all, {} per token); retry later",
            hub.options().max_streams,
            hub.options().max_streams_per_token
        )));
    };
    // Subscribe before reading anything, so nothing broadcast from now on is missed; the
    // filter joins the hub's before the start is taken, so no frame after it is left unmade.
    let frames = hub.subscribe();
    let listener = hub.listen(Arc::new(filter.clone()));
    let start = resume.unwrap_or_else(|| hub.start_position());
    drop(gate);
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let viewer = Viewer {
        state: state.clone(),
        hub: hub.clone(),
        filter,
        tx,
        stopping: hub.stopping(),
        mark: start,
        budget: Budget::new(hub.options().viewer_bytes_per_second, Instant::now()),
        listener,
        _permit: permit,
    };
    tokio::spawn(viewer.run(frames, resume));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

struct Viewer {
    state: AppState,
    hub: Arc<Hub>,
    filter: Filter,
    tx: mpsc::Sender<Bytes>,
    stopping: watch::Receiver<bool>,
    /// The latest resume mark this viewer has passed.
    mark: i64,
    budget: Budget,
    /// Its place among the hub's listeners ([`Hub::listen`]).
    listener: u64,
    _permit: Permit,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.hub.unlisten(self.listener);
    }
}

/// A viewer's byte budget: a token bucket refilled at `rate` bytes a second, holding a
/// second's worth at most. After a `busy` resync the viewer is sent nothing until the bucket
/// is full again, so a flood costs it one resync a second, not one a round.
#[derive(Debug)]
struct Budget {
    bytes: Bucket,
    /// A `busy` resync was sent; waiting for a full bucket.
    resting: bool,
}

/// What a viewer does with a round.
#[derive(Debug, PartialEq)]
enum Verdict {
    Send,
    /// Over budget: one `resync` (`busy`), then rest.
    Busy,
    /// Resting after `Busy`: drop the round.
    Skip,
}

impl Budget {
    fn new(rate: usize, now: Instant) -> Self {
        let rate = rate.max(1) as f64;
        Self {
            bytes: Bucket::full(rate, rate, now),
            resting: false,
        }
    }

    /// When a rest ends (the bucket is full again); `None` when not resting.
    fn rest_ends(&self, now: Instant) -> Option<Instant> {
        self.resting.then(|| now + self.bytes.until_full(now))
    }

    /// Whether `bytes` may be sent now (and, if so, takes them).
    fn take(&mut self, bytes: usize, now: Instant) -> Verdict {
        if self.resting {
            if !self.bytes.is_full(now) {
                return Verdict::Skip;
            }
            self.resting = false;
        }
        if self.bytes.take(bytes as f64, now) {
            Verdict::Send
        } else {
            self.resting = true;
            self.bytes.drain(now);
            Verdict::Busy
        }
    }

    /// The rest is over (its timer fired): send again.
    fn wake(&mut self) {
        self.resting = false;
    }
}

impl Viewer {
    /// Sends `text`; false when the client is gone or the server stops.
    async fn send(&mut self, text: impl Into<Bytes>) -> bool {
        if *self.stopping.borrow() {
            return false;
        }
        tokio::select! {
            sent = self.tx.send(text.into()) => sent.is_ok(),
            _ = self.stopping.changed() => false,
        }
    }

    /// What of a round this viewer sends: its matching frames as one chunk, a `busy`
    /// resync, or nothing.
    fn chunk(&mut self, batch: &Batch) -> Option<Bytes> {
        let mine: Vec<&Frame> = batch
            .frames
            .iter()
            .filter(|f| self.filter.matches_frame(f))
            .collect();
        let size: usize = mine.iter().map(|f| f.text.len()).sum();
        if size == 0 {
            return None;
        }
        let was_resting = self.budget.resting;
        let verdict = self.budget.take(size, Instant::now());
        if self.budget.resting != was_resting {
            // The hub makes frames for resting viewers no more ([`Hub::rest`]).
            self.hub.rest(self.listener, self.budget.resting);
        }
        match verdict {
            Verdict::Skip => None,
            Verdict::Busy => Some(Bytes::from(resync_text("busy", self.mark))),
            Verdict::Send if mine.len() == 1 => Some(mine[0].text.clone()),
            Verdict::Send => {
                let mut chunk = Vec::with_capacity(size);
                for f in mine {
                    chunk.extend_from_slice(&f.text);
                }
                Some(Bytes::from(chunk))
            }
        }
    }

    async fn run(mut self, mut frames: broadcast::Receiver<Arc<Batch>>, resume: Option<i64>) {
        if !self
            .send(format!(": connected\nid: {}\n\n", self.mark))
            .await
        {
            return;
        }
        if let Some(after) = resume
            && !self.replay(after).await
        {
            return;
        }
        let every = self.hub.options().keep_alive;
        let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            let now = Instant::now();
            let rest_ends = self.budget.rest_ends(now).unwrap_or(now);
            let text = tokio::select! {
                _ = self.stopping.changed() => return,
                () = self.tx.closed() => return,
                // Rested: the hub makes frames for this viewer again.
                () = tokio::time::sleep_until(rest_ends.into()), if self.budget.resting => {
                    self.budget.wake();
                    self.hub.rest(self.listener, false);
                    continue;
                }
                _ = keep_alive.tick() => Bytes::from(format!(": keep-alive\nid: {}\n\n", self.mark)),
                batch = frames.recv() => match batch {
                    Ok(batch) => {
                        self.mark = self.mark.max(batch.mark);
                        match self.chunk(&batch) {
                            Some(chunk) => chunk,
                            None => continue,
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "a stream viewer fell behind; resync");
                        self.mark = self.hub.mark();
                        Bytes::from(resync_text("lagged", self.mark))
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if !self.send(text).await {
                return;
            }
        }
    }

    /// Sends the changes after `after` (less the overlap) from the store; `resync` when the
    /// position is unknown or too far behind. False when the viewer is gone.
    async fn replay(&mut self, after: i64) -> bool {
        let store = self.state.store.clone();
        let options = self.hub.options().clone();
        let from = after.saturating_sub(options.resume_overlap).max(0);
        let components = self.filter.components();
        let mut events: Vec<FeedEvent> = Vec::new();
        let mut cursor = from;
        let verdict = loop {
            let page = match store
                .feed(FeedQuery {
                    after: cursor,
                    recheck: Vec::new(),
                    limit: MAX_PAGE,
                    components: components.clone(),
                })
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot replay the stream from the store");
                    break Some("store_unavailable");
                }
            };
            if after > page.position {
                break Some("unknown_position");
            }
            let full = page.events.len() >= MAX_PAGE;
            if let Some(last) = page.events.last() {
                cursor = last.position;
            }
            events.extend(page.events);
            if events.len() > options.replay_max {
                break Some("too_far_behind");
            }
            if !full {
                break None;
            }
        };
        if let Some(reason) = verdict {
            self.mark = self.mark.max(self.hub.mark());
            let text = resync_text(reason, self.mark);
            return self.send(text).await;
        }
        for session_id in sessions_in_order(&events) {
            let mine: Vec<FeedEvent> = events
                .iter()
                .filter(|e| e.event.session_id == session_id)
                .cloned()
                .collect();
            let session = match store.get_session(&session_id).await {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot replay a session of the stream");
                    continue;
                }
            };
            if !self
                .filter
                .matches(&session.component, &session.username, &session.hostname)
            {
                continue;
            }
            // The requested position stays the resume point until the replay is over.
            let frame = session_frame(&session, mine, after);
            if !self.send(frame.text).await {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Budget, Instant, Verdict};

    #[test]
    fn a_budget_sends_within_its_rate_then_one_busy_then_rests_a_second() {
        let t0 = Instant::now();
        let mut b = Budget::new(1000, t0);
        assert_eq!(b.take(600, t0), Verdict::Send);
        assert_eq!(b.take(300, t0), Verdict::Send);
        // 100 left: a round of 200 does not fit.
        assert_eq!(b.take(200, t0), Verdict::Busy);
        // Resting until the bucket is full again, even for what would fit.
        assert_eq!(b.take(10, t0 + Duration::from_millis(500)), Verdict::Skip);
        assert_eq!(b.take(10, t0 + Duration::from_millis(999)), Verdict::Skip);
        assert_eq!(b.take(10, t0 + Duration::from_millis(1000)), Verdict::Send);
        // The bucket holds a second's worth at most, however long the viewer was idle.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(b.take(1000, later), Verdict::Send);
        assert_eq!(b.take(1, later), Verdict::Busy);
    }

    #[test]
    fn a_round_bigger_than_a_seconds_budget_is_busy_on_a_full_bucket() {
        let t0 = Instant::now();
        let mut b = Budget::new(1000, t0);
        assert_eq!(b.take(1001, t0), Verdict::Busy);
        assert_eq!(b.take(1, t0 + Duration::from_secs(1)), Verdict::Send);
    }
}
