//! The Session-Buddy tracking server: REST ingest and query API, MCP at `/mcp`, health and
//! Prometheus metrics.
//!
//! [`app`] builds the router from an [`AppState`] (tests call it without a socket);
//! [`serve`] runs it on a listener until the shutdown future resolves, then lets the store
//! finish every acknowledged batch.

mod admin;
pub mod analytics;
pub mod auth;
mod bucket;
pub mod console;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod host;
mod ingest;
mod mcp;
pub mod metrics;
mod query;
pub mod recording;
pub mod routes;
pub mod stream;
pub mod tls;

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use session_buddy_store::Store;
use tokio::net::TcpListener;

pub use error::AppError;
pub use ingest::{MAX_BODY_BYTES, ingest_values};
pub use metrics::Metrics;
pub use query::parse_session_filter;

/// The server's version, as `/health` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Settings the server needs at run time.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Host names (besides loopback) every route accepts in `Host` headers (`--allowed-host`;
    /// `name` any port, `name:port` that port); see [`host::accepted_hosts`].
    pub allowed_hosts: Vec<String>,
    /// The address the server listens on, accepted as a `Host` too (its `ip:port`).
    pub local_addr: Option<std::net::SocketAddr>,
    /// How often the active-session gauges and quality scores are refreshed from the store.
    pub gauge_refresh: Duration,
    /// A session that announced heartbeats is abandoned after this long without an event.
    pub session_ttl: Duration,
    /// The same for sessions that announced none (the original's 1.0 clients).
    pub legacy_session_ttl: Duration,
    /// Secrets, `/metrics` protection, rate limit (no secret: no authentication).
    pub auth: auth::AuthOptions,
    /// Retention: sessions that are over and started longer ago than this are deleted, with
    /// their events (`--retention-days`); `None` keeps everything.
    pub retention: Option<Duration>,
    /// `GET /v1/stream`'s caps and timings.
    pub stream: stream::StreamOptions,
    /// Whether recordings are accepted, their cap and retention.
    pub recordings: recording::RecordingOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            local_addr: None,
            gauge_refresh: Duration::from_secs(15),
            session_ttl: Duration::from_secs(600),
            legacy_session_ttl: Duration::from_secs(24 * 3600),
            auth: auth::AuthOptions::default(),
            retention: None,
            stream: stream::StreamOptions::default(),
            recordings: recording::RecordingOptions::default(),
        }
    }
}

impl ServerOptions {
    /// How often the reaper runs: a tenth of the shorter TTL, between 1 s and 60 s.
    pub fn reap_interval(&self) -> Duration {
        (self.session_ttl.min(self.legacy_session_ttl) / 10)
            .clamp(Duration::from_secs(1), Duration::from_secs(60))
    }
}

/// Whether this server holds the reaper lease (always, on SQLite): with several servers on one
/// database only the holder reaps, prunes and exports the store-derived gauges.
pub async fn holds_reaper_lease(state: &AppState) -> bool {
    match state.store.reaper_lease().await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the reaper lease");
            false
        }
    }
}

/// The reaper's cutoffs at `now`, `(active, legacy)`: a session that showed no life since
/// then is abandoned (`session_ttl` for sessions that announced heartbeats,
/// `legacy_session_ttl` for the others). Imports are judged by the same cutoffs.
pub(crate) fn reap_cutoffs(
    options: &ServerOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let cutoff = |ttl: Duration| {
        chrono::TimeDelta::from_std(ttl)
            .ok()
            .and_then(|ttl| now.checked_sub_signed(ttl))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
    };
    (
        cutoff(options.session_ttl),
        cutoff(options.legacy_session_ttl),
    )
}

/// One reaper pass: marks silent sessions abandoned and counts them in the metrics. Only the
/// holder of the reaper lease reaps; the others return 0.
pub async fn reap_once(state: &AppState) -> usize {
    reap_at(state, chrono::Utc::now()).await
}

/// [`reap_once`] with the clock reading `now` (tests move it past the TTL instead of waiting).
pub async fn reap_at(state: &AppState, now: chrono::DateTime<chrono::Utc>) -> usize {
    if !holds_reaper_lease(state).await {
        return 0;
    }
    let (active_cutoff, legacy_cutoff) = reap_cutoffs(&state.options, now);
    match state.store.reap(active_cutoff, legacy_cutoff).await {
        Ok(reaped) => {
            state
                .stream
                .abandoned(reaped.iter().map(|r| r.session_id.clone()));
            for r in &reaped {
                state
                    .metrics
                    .session_ended(&r.component, "abandoned", r.duration_seconds, true);
            }
            state.metrics.reaped(reaped.len(), true);
            if !reaped.is_empty() {
                tracing::info!(
                    abandoned = reaped.len(),
                    "reaper marked silent sessions abandoned"
                );
            }
            reaped.len()
        }
        Err(e) => {
            state.metrics.reaped(0, false);
            tracing::warn!(error = %e, "reaper pass failed");
            0
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub options: Arc<ServerOptions>,
    /// Token verification, revocation cache, rate limits.
    pub guard: Arc<auth::Guard>,
    /// The `Host` names every route accepts ([`host::accepted_hosts`]); `None`: any.
    pub accepted_hosts: Option<Arc<[String]>>,
    /// The live stream's hub (`GET /v1/stream`).
    pub stream: Arc<stream::Hub>,
    /// The web console's login sessions.
    pub console: Arc<console::ConsoleSessions>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, options: ServerOptions) -> Self {
        Self {
            store,
            metrics: Arc::new(Metrics::new()),
            guard: Arc::new(auth::Guard::new(&options.auth)),
            accepted_hosts: host::accepted_hosts(&options).map(Arc::from),
            stream: Arc::new(stream::Hub::new(options.stream.clone())),
            console: Arc::new(console::ConsoleSessions::new()),
            options: Arc::new(options),
        }
    }
}

/// The whole HTTP surface: the REST and console routes of [`routes::ROUTES`], MCP at
/// [`routes::MCP_PATH`], every one behind the `Host` check ([`host`]), then authentication;
/// every response carries the console's security headers.
pub fn app(state: AppState) -> Router {
    let mcp = mcp::service(state.clone());
    let router = routes::ROUTES.iter().fold(Router::new(), |router, r| {
        router.route(r.path, r.method_router())
    });
    router
        .nest_service(routes::MCP_PATH, mcp)
        .fallback(query::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .with_state(state)
}

/// Every request's first and last stop, one layer (each layer costs every request): the
/// `Host` check ([`host::refusal`]), the HTTP metrics, the security headers
/// ([`console::secure`]).
async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let path = match &matched {
        Some(p) => p.as_str(),
        None if req.uri().path().starts_with("/mcp") => "/mcp",
        None => "unmatched",
    };
    let response = match host::refusal(&state, &req) {
        Some(refused) => refused,
        None => next.run(req).await,
    };
    state.metrics.http(
        method.as_str(),
        path,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    console::secure(response)
}

/// Loads the gauges that come from the store (so they are true after a restart), then keeps
/// them fresh in the background.
pub async fn refresh_gauges(state: &AppState) {
    let holder = holds_reaper_lease(state).await;
    state.metrics.export_store_gauges(holder);
    if !holder {
        return;
    }
    match state.store.active_by_component().await {
        Ok(counts) => state.metrics.set_active(&counts),
        Err(e) => tracing::warn!(error = %e, "cannot read active sessions for the gauges"),
    }
    match analytics::quality_inputs(state, chrono::Utc::now(), None).await {
        Ok((_, q)) => state.metrics.set_qualities(
            &q.iter()
                .map(|(component, inputs)| (component.clone(), inputs.score()))
                .collect(),
        ),
        Err(e) => tracing::warn!(error = %e, "cannot read quality inputs for the gauges"),
    }
}

/// How often the analytics rollups of the hours that are over are brought up to date.
pub const ROLLUP_REFRESH_EVERY: Duration = Duration::from_secs(60);

/// Brings the analytics rollups up to date (on the reaper-lease holder), a batch at a time
/// with ingest let in between; returns how many hours were recomputed.
pub async fn refresh_rollups_once(state: &AppState) -> usize {
    if !holds_reaper_lease(state).await {
        return 0;
    }
    let (mut total, started) = (0, std::time::Instant::now());
    loop {
        match state.store.refresh_rollups(chrono::Utc::now()).await {
            Ok(n) => {
                total += n;
                if n < session_buddy_store::analytics::ROLLUP_REFRESH_BATCH {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "analytics rollup refresh failed");
                break;
            }
        }
    }
    // More than a batch is a build (a migrated database, a long outage), worth a line; the
    // hours a minute leaves behind are not.
    if total >= session_buddy_store::analytics::ROLLUP_REFRESH_BATCH {
        tracing::info!(
            component_hours = total,
            seconds = started.elapsed().as_secs_f64(),
            "analytics rollups brought up to date"
        );
    }
    total
}

/// Sessions a retention batch deletes at most (one transaction).
pub const PRUNE_BATCH: usize = 1000;

/// One retention pass (with `options.retention`, on the reaper-lease holder): deletes the
/// sessions that are over and started before now − retention, with their events, in batches of
/// [`PRUNE_BATCH`] until none is left.
pub async fn prune_once(state: &AppState) -> session_buddy_store::Pruned {
    let mut total = session_buddy_store::Pruned::default();
    let Some(retention) = state.options.retention else {
        return total;
    };
    if !holds_reaper_lease(state).await {
        return total;
    }
    let cutoff = chrono::Utc::now()
        - chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
    loop {
        match state.store.prune(cutoff, PRUNE_BATCH).await {
            Ok(p) => {
                total.sessions += p.sessions;
                total.events += p.events;
                if p.sessions < PRUNE_BATCH as u64 && p.events < PRUNE_BATCH as u64 {
                    break;
                }
                // Let ingest in between batches.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention pass failed");
                break;
            }
        }
    }
    if total.sessions > 0 || total.events > 0 {
        tracing::info!(
            sessions = total.sessions,
            events = total.events,
            "retention deleted old sessions"
        );
    }
    total
}

/// How long requests still in flight at shutdown may take to finish before the server stops
/// without them. Idle connections are closed at once, so an idle server stops at once.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// Serves `state` on `listener` until `shutdown` resolves; requests in flight get
/// [`SHUTDOWN_DRAIN`] to finish, then the store's writer drains (every acknowledged batch is
/// stored; a request cut off was never acknowledged).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = start_background(&state).await;
    let store = state.store.clone();
    let hub = state.stream.clone();
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        // Open streams end now, so they do not hold the drain.
        hub.shutdown();
        let _ = stopping.send(());
    };
    let server = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .into_future();
    let result = tokio::select! {
        result = server => result,
        () = drain_deadline(stopped) => Ok(()),
    };
    for task in background {
        task.abort();
    }
    store.close().await;
    result
}

/// Resolves [`SHUTDOWN_DRAIN`] after `stopping` fires; never if it is dropped unfired.
async fn drain_deadline(stopping: tokio::sync::oneshot::Receiver<()>) {
    if stopping.await.is_err() {
        return std::future::pending().await;
    }
    tokio::time::sleep(SHUTDOWN_DRAIN).await;
    tracing::warn!(
        seconds = SHUTDOWN_DRAIN.as_secs(),
        "requests still in flight at shutdown did not finish in time; stopping without them"
    );
}

/// Loads the store-derived gauges, then keeps them fresh and runs the reaper in the
/// background; the caller aborts the tasks at shutdown.
pub(crate) async fn start_background(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    refresh_gauges(state).await;
    let refresher = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(state.options.gauge_refresh);
            tick.tick().await;
            loop {
                tick.tick().await;
                refresh_gauges(&state).await;
            }
        })
    };
    let reaper = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(state.options.reap_interval());
            loop {
                tick.tick().await;
                reap_once(&state).await;
            }
        })
    };
    auth::refresh_revocations(state).await;
    let revocations = {
        let state = state.clone();
        tokio::spawn(async move {
            let every = state
                .options
                .auth
                .revocation_refresh
                .max(Duration::from_millis(100));
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                auth::refresh_revocations(&state).await;
            }
        })
    };
    stream::prime(state.store.as_ref(), &state.stream).await;
    let hub = tokio::spawn(stream::run(state.store.clone(), state.stream.clone()));
    let rollups = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ROLLUP_REFRESH_EVERY);
            loop {
                tick.tick().await;
                refresh_rollups_once(&state).await;
            }
        })
    };
    let mut tasks = vec![refresher, reaper, revocations, hub, rollups];
    if state.options.retention.is_some() {
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                prune_once(&state).await;
            }
        }));
    }
    if state.options.recordings.retention.is_some() {
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                recording::prune_recordings_once(&state).await;
            }
        }));
    }
    tasks
}
