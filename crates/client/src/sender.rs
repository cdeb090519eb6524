//! Delivery: batches in FIFO order over `POST /v1/events`, every call bounded by the request
//! timeout, exponential backoff with jitter, and a circuit breaker.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use session_buddy_events::{EventOutcome, IngestResponse};

use crate::buffer::{BreakerState, Buffer, BufferedEvent, SettleCounts, Settlement};
use crate::config::{RetryPolicy, TrackerConfig};
use crate::error::ClientError;
use crate::outcome::{DeliveryOutcome, error_message};

/// Events per request: as many as the server takes in one.
pub const MAX_BATCH: usize = session_buddy_events::limits::MAX_EVENTS_PER_REQUEST;

/// Bytes of events per request; a batch stops before it (but holds at least one event).
pub const MAX_BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// The server's request body limit: an event larger than this can never be delivered.
pub const SERVER_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// The lock file that makes one process per host the sender.
pub const LOCK_FILE: &str = "sender.lock";

/// Takes the host's sender lock without waiting; `Ok(None)` when another holds it.
pub fn try_sender_lock(home: &Path) -> Result<Option<File>, ClientError> {
    try_lock(home, LOCK_FILE)
}

/// The lock of the one detached sender that stands by while another process sends.
const STANDBY_LOCK_FILE: &str = "sender.standby.lock";

/// `home/name` locked exclusively, or `None` when another process holds it.
fn try_lock(home: &Path, name: &str) -> Result<Option<File>, ClientError> {
    let path = home.join(name);
    let lock_err = |source| ClientError::Lock {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(home).map_err(lock_err)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_err)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(lock_err(e)),
    }
}

/// Whether some process holds the sender lock now.
pub fn sender_running(home: &Path) -> bool {
    matches!(try_sender_lock(home), Ok(None))
}

enum CallError {
    /// Not answered (transport failure, timeout, 5xx, 429, an answer we cannot read), refused
    /// (401, 403) or not made (the configuration is wrong): retry later.
    Failed(DeliveryOutcome),
    /// The server refused the request itself (400, 413): split the batch or dead-letter.
    Envelope(u16, String),
}

/// What one step of the sender did.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing queued.
    Idle,
    /// A call was answered.
    Sent(SentCounts),
    /// A call failed or the breaker is open: wait this long before the next step.
    Wait(Duration),
}

/// Counts of answered calls.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SentCounts {
    pub accepted: u64,
    pub duplicates: u64,
    pub settle: SettleCounts,
}

enum Breaker {
    Closed,
    Open(Instant),
    HalfOpen,
}

pub(crate) struct Sender {
    pub(crate) buffer: Buffer,
    agent: crate::http::ServerAgent,
    /// The server's URL, as configured.
    base: String,
    endpoint: String,
    token: Option<String>,
    policy: RetryPolicy,
    batch_limit: usize,
    failures: u32,
    breaker: Breaker,
    /// Whether this sender writes its breaker to the shared state (the host's sender does;
    /// a one-off `deliver_now` does not).
    publish_breaker: bool,
    /// What the last call came to (also recorded in the buffer's state).
    pub(crate) last_outcome: Option<DeliveryOutcome>,
    /// While set, recording chunks stay queued: the server refused one as a recording it
    /// does not accept (an older server, or `--accept-recordings=false`). When it passes,
    /// `/health` says whether the server accepts them now.
    recordings_paused_until: Option<Instant>,
}

/// How long recording chunks wait after a server refused them before `/health` is asked again.
pub const RECORDINGS_RETRY: Duration = Duration::from_secs(60);

impl Sender {
    pub(crate) fn new(buffer: Buffer, config: &TrackerConfig, publish_breaker: bool) -> Self {
        // A CA file that cannot be used fails every HTTPS call, saying why, in the status.
        let agent = crate::http::ServerAgent::new(
            config.ca_cert.as_deref(),
            config.request_timeout,
            config.request_timeout,
        );
        Self {
            buffer,
            agent,
            base: config.url.trim_end_matches('/').to_string(),
            endpoint: format!("{}/v1/events", config.url.trim_end_matches('/')),
            token: config.token.clone(),
            policy: config.retry,
            batch_limit: MAX_BATCH,
            failures: 0,
            breaker: Breaker::Closed,
            publish_breaker,
            last_outcome: None,
            recordings_paused_until: None,
        }
    }

    /// Moves the session journals into the buffer, then sends the oldest batch, unless the
    /// breaker is open.
    pub(crate) fn step(&mut self) -> Result<Step, ClientError> {
        // An unreadable journal must not stop delivery of everything else.
        if let Err(e) = self.buffer.import_journals() {
            tracing::warn!(error = %e, "cannot move the session journals into the buffer");
        }
        if let Breaker::Open(until) = self.breaker {
            let now = Instant::now();
            if now < until {
                return Ok(Step::Wait(until - now));
            }
            self.set_breaker(Breaker::HalfOpen);
        }
        if let Some(until) = self.recordings_paused_until
            && Instant::now() >= until
        {
            self.recordings_paused_until = if self.server_accepts_recordings() {
                None
            } else {
                Some(Instant::now() + RECORDINGS_RETRY)
            };
        }
        let mut batch = if self.recordings_paused_until.is_some() {
            self.buffer
                .fetch_batch_without_recordings(self.batch_limit)?
        } else {
            self.buffer.fetch_batch(self.batch_limit)?
        };
        if batch.is_empty() {
            return Ok(Step::Idle);
        }
        if batch[0].bytes + 2 > SERVER_MAX_BODY_BYTES {
            let error = format!(
                "the event is {} bytes, over the server's request limit of {} bytes",
                batch[0].bytes, SERVER_MAX_BODY_BYTES
            );
            tracing::warn!(event_id = %batch[0].event_id, %error, "dead-lettered an event that cannot be sent");
            let settle = self
                .buffer
                .settle(&[(batch[0].id, Settlement::DeadLetter(error))])?;
            return Ok(Step::Sent(SentCounts {
                settle,
                ..SentCounts::default()
            }));
        }
        let mut bytes = 0;
        let keep = batch
            .iter()
            .take_while(|e| {
                bytes += e.bytes + 1;
                bytes <= MAX_BATCH_BYTES
            })
            .count();
        batch.truncate(keep.max(1));
        match self.post(&batch) {
            Ok(response) => self.on_answer(&batch, response).map(Step::Sent),
            Err(CallError::Envelope(status, message)) => {
                let error = format!("HTTP {status}: {message}");
                if batch.len() > 1 {
                    // Not a verdict on any event yet: the halves will tell.
                    self.on_reachable(None)?;
                    self.batch_limit = (batch.len() / 2).max(1);
                    tracing::warn!(status, batch = batch.len(), next = self.batch_limit, %message, "the server refused a batch; splitting it");
                    Ok(Step::Sent(SentCounts::default()))
                } else {
                    let settle = self
                        .buffer
                        .settle(&[(batch[0].id, Settlement::DeadLetter(error.clone()))])?;
                    tracing::warn!(status, event_id = %batch[0].event_id, %message, "the server refused an event; dead-lettered");
                    self.on_reachable(Some(DeliveryOutcome::Rejected { events: 1, error }))?;
                    Ok(Step::Sent(SentCounts {
                        settle,
                        ..SentCounts::default()
                    }))
                }
            }
            Err(CallError::Failed(outcome)) => self.on_failure(outcome).map(Step::Wait),
        }
    }

    /// Whether `/health` says the server accepts recordings (`accept_recordings`; a server
    /// that does not say is an older one, which does not).
    fn server_accepts_recordings(&self) -> bool {
        if self.agent.usable_for(&self.base).is_err() {
            return false;
        }
        let answer = self
            .agent
            .agent
            .get(format!("{}/health", self.base))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<serde_json::Value>().ok());
        answer
            .and_then(|v| {
                v.get("accept_recordings")
                    .and_then(serde_json::Value::as_bool)
            })
            .unwrap_or(false)
    }

    fn post(&self, batch: &[BufferedEvent]) -> Result<IngestResponse, CallError> {
        self.agent
            .usable_for(&self.base)
            .map_err(|error| CallError::Failed(DeliveryOutcome::Misconfigured { error }))?;
        let mut body =
            String::with_capacity(batch.iter().map(|e| e.payload.len() + 1).sum::<usize>() + 2);
        body.push('[');
        for (i, e) in batch.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&e.payload);
        }
        body.push(']');
        let mut request = self
            .agent
            .agent
            .post(&self.endpoint)
            .header("content-type", "application/json");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let unreachable = |error: String| CallError::Failed(DeliveryOutcome::Unreachable { error });
        let mut response = request
            .send(body.as_bytes())
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| unreachable(format!("reading the answer: {e}")))?;
        match status {
            200..=299 => {
                let answer: IngestResponse = serde_json::from_str(&text).map_err(|e| {
                    unreachable(format!("the answer is not an ingest result ({e})"))
                })?;
                if answer.results.len() != batch.len() {
                    return Err(unreachable(format!(
                        "the answer has {} results for {} events",
                        answer.results.len(),
                        batch.len()
                    )));
                }
                Ok(answer)
            }
            400 | 413 => Err(CallError::Envelope(status, error_message(&text))),
            _ => Err(CallError::Failed(DeliveryOutcome::from_failed_answer(
                status, &text,
            ))),
        }
    }

    fn on_answer(
        &mut self,
        batch: &[BufferedEvent],
        response: IngestResponse,
    ) -> Result<SentCounts, ClientError> {
        let mut counts = SentCounts::default();
        let mut items = Vec::with_capacity(batch.len());
        let mut rejected: Option<(u64, String)> = None;
        for (event, result) in batch.iter().zip(response.results) {
            let settlement = match result.status {
                EventOutcome::Accepted => {
                    counts.accepted += 1;
                    Settlement::Delivered
                }
                EventOutcome::Duplicate => {
                    counts.duplicates += 1;
                    Settlement::Delivered
                }
                EventOutcome::Rejected
                    if event.event_type == crate::buffer::OUTPUT
                        && result
                            .error
                            .as_deref()
                            .is_some_and(|e| e.starts_with("event_type")) =>
                {
                    // A server that takes no recordings: the chunk waits, the session's other
                    // events go on.
                    if self.recordings_paused_until.is_none() {
                        tracing::info!(error = ?result.error, "the server does not accept recordings; keeping them");
                    }
                    self.recordings_paused_until = Some(Instant::now() + RECORDINGS_RETRY);
                    continue;
                }
                EventOutcome::Rejected => {
                    let error = result.error.unwrap_or_else(|| "rejected".to_string());
                    tracing::warn!(event_id = %event.event_id, %error, "the server rejected an event");
                    let r = rejected.get_or_insert_with(|| (0, error.clone()));
                    r.0 += 1;
                    Settlement::Rejected(error)
                }
            };
            items.push((event.id, settlement));
        }
        counts.settle = self.buffer.settle(&items)?;
        self.batch_limit = (self.batch_limit * 2).min(MAX_BATCH);
        let outcome = match rejected {
            Some((events, error)) => DeliveryOutcome::Rejected { events, error },
            None => DeliveryOutcome::Delivered,
        };
        self.on_reachable(Some(outcome))?;
        Ok(counts)
    }

    /// The server answered: the breaker closes; `outcome`, when the answer says one, is
    /// recorded.
    fn on_reachable(&mut self, outcome: Option<DeliveryOutcome>) -> Result<(), ClientError> {
        self.failures = 0;
        if !matches!(self.breaker, Breaker::Closed) {
            tracing::info!("server reachable again; circuit breaker closed");
            self.set_breaker(Breaker::Closed);
        }
        if let Some(outcome) = outcome {
            self.buffer.record_delivery(outcome.clone(), Utc::now())?;
            self.last_outcome = Some(outcome);
        }
        Ok(())
    }

    fn on_failure(&mut self, outcome: DeliveryOutcome) -> Result<Duration, ClientError> {
        self.failures = self.failures.saturating_add(1);
        tracing::debug!(failures = self.failures, kind = outcome.kind(), error = %outcome.describe(), "delivery failed");
        self.buffer.record_delivery(outcome.clone(), Utc::now())?;
        self.last_outcome = Some(outcome);
        let backoff = backoff(self.policy, self.failures);
        let open = matches!(self.breaker, Breaker::HalfOpen)
            || self.failures >= self.policy.breaker_threshold;
        if open {
            let until = Instant::now() + self.policy.breaker_open;
            self.set_breaker(Breaker::Open(until));
            return Ok(backoff.max(self.policy.breaker_open));
        }
        Ok(backoff)
    }

    fn set_breaker(&mut self, breaker: Breaker) {
        let shared = match breaker {
            Breaker::Closed => BreakerState::Closed,
            Breaker::HalfOpen => BreakerState::HalfOpen,
            Breaker::Open(until) => BreakerState::Open {
                until: Utc::now()
                    + chrono::Duration::from_std(until.saturating_duration_since(Instant::now()))
                        .unwrap_or_default(),
            },
        };
        if matches!(breaker, Breaker::Open(_)) {
            tracing::info!("circuit breaker open");
        }
        self.breaker = breaker;
        if self.publish_breaker
            && let Err(e) = self.buffer.set_breaker(&shared)
        {
            tracing::debug!(error = %e, "cannot record the breaker state");
        }
    }
}

/// `base × 2^(failures−1)`, capped, with jitter: uniformly in [d/2, d].
pub(crate) fn backoff(policy: RetryPolicy, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let d = policy
        .backoff_base
        .saturating_mul(1u32 << exp)
        .min(policy.backoff_cap);
    let half = d / 2;
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0;
    half + half.mul_f64(jitter)
}

/// The result of [`deliver_now`] or of a daemon run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Events the server accepted now.
    pub delivered: u64,
    /// Events the server already had.
    pub duplicates: u64,
    /// Rejections answered (an event may be rejected more than once before dead-lettering).
    pub rejected: u64,
    pub dead_lettered: u64,
    /// Events still queued.
    pub remaining: u64,
    /// What the last call came to (`None`: no call was made).
    pub outcome: Option<DeliveryOutcome>,
    /// Why delivery stopped early, if it did.
    pub error: Option<String>,
}

impl DeliveryReport {
    fn add(&mut self, c: SentCounts) {
        self.delivered += c.accepted;
        self.duplicates += c.duplicates;
        self.rejected += c.settle.rejected;
        self.dead_lettered += c.settle.dead_lettered;
    }
}

impl std::fmt::Display for DeliveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "delivered {}, duplicates {}, rejected {}, dead-lettered {}, remaining {}",
            self.delivered, self.duplicates, self.rejected, self.dead_lettered, self.remaining
        )?;
        if let Some(e) = &self.error {
            write!(f, " ({e})")?;
        }
        Ok(())
    }
}

/// Delivers everything queued now, without waiting for the sender lock (the server
/// deduplicates, so a concurrent sender costs at most duplicates). Stops at the first failed
/// call (reported in `error`), when the buffer is empty, or at `deadline`.
pub fn deliver_now(
    config: &TrackerConfig,
    deadline: Duration,
) -> Result<DeliveryReport, ClientError> {
    let started = Instant::now();
    let buffer = Buffer::open(&config.home, config.limits)?;
    let mut sender = Sender::new(buffer, config, false);
    let mut report = DeliveryReport::default();
    loop {
        if started.elapsed() >= deadline {
            report.error = Some(format!("stopped after {:?}", deadline));
            break;
        }
        match sender.step()? {
            Step::Idle => break,
            Step::Sent(c) => report.add(c),
            Step::Wait(_) => {
                report.error = sender.last_outcome.as_ref().map(DeliveryOutcome::describe);
                break;
            }
        }
    }
    report.outcome = sender.last_outcome.clone();
    report.remaining = sender.buffer.stats()?.pending;
    Ok(report)
}

/// How long the detached sender waits for new events once the buffer is empty.
pub const DAEMON_LINGER: Duration = Duration::from_secs(30);

/// How often a standing-by sender tries the sender lock.
const STANDBY_POLL: Duration = Duration::from_millis(500);

/// The detached sender (`event-buffer replay --daemon`): takes the host's sender lock and
/// delivers with backoff until the buffer is empty (and [`DAEMON_LINGER`] has passed) or
/// `max_runtime` has. While another process holds the lock (a running shell's own sender),
/// one detached sender stands by and takes over when that process goes, even by SIGKILL, so
/// what it left in the buffer is not stranded until the next run; a second one finds the
/// standby taken and fails with [`ClientError::SenderBusy`] at once.
pub fn run_sender_daemon(
    config: &TrackerConfig,
    max_runtime: Duration,
    linger: Duration,
) -> Result<DeliveryReport, ClientError> {
    let started = Instant::now();
    let busy = || ClientError::SenderBusy(config.home.join(LOCK_FILE));
    let lock = match try_sender_lock(&config.home)? {
        Some(lock) => lock,
        None => {
            let Some(standby) = try_lock(&config.home, STANDBY_LOCK_FILE)? else {
                return Err(busy());
            };
            loop {
                if started.elapsed() >= max_runtime || home_removed(&standby, &config.home) {
                    return Err(busy());
                }
                std::thread::sleep(STANDBY_POLL);
                if let Some(lock) = try_sender_lock(&config.home)? {
                    break lock;
                }
            }
        }
    };
    let buffer = Buffer::open(&config.home, config.limits)?;
    let mut sender = Sender::new(buffer, config, true);
    let mut report = DeliveryReport::default();
    let mut idle_since: Option<Instant> = None;
    loop {
        let elapsed = started.elapsed();
        if elapsed >= max_runtime {
            report.error = Some(format!("gave up after {:?}", max_runtime));
            break;
        }
        if home_removed(&lock, &config.home) {
            report.error = Some("the buffer file was removed".into());
            return Ok(report);
        }
        match sender.step()? {
            // Linger a while for the next shells' events, so that on a busy host one sender
            // keeps delivering and shells need not start another.
            Step::Idle if linger.is_zero() => break,
            Step::Idle => match idle_since {
                Some(t) if t.elapsed() >= linger => break,
                Some(_) => std::thread::sleep(Duration::from_millis(200)),
                None => idle_since = Some(Instant::now()),
            },
            Step::Sent(c) => {
                idle_since = None;
                report.add(c)
            }
            Step::Wait(d) => std::thread::sleep(d.min(max_runtime - elapsed)),
        }
    }
    report.outcome = sender.last_outcome.clone();
    report.remaining = sender.buffer.stats()?.pending;
    if report.error.is_none() && report.remaining > 0 {
        report.error = sender.last_outcome.as_ref().map(DeliveryOutcome::describe);
    }
    Ok(report)
}

/// Whether the home this sender delivers for is gone: its buffer file is missing, or the lock
/// file the sender holds open was unlinked (the home was removed, and perhaps a new one made
/// at the same path, whose buffer another sender will deliver). Nobody is left to deliver
/// for then, and the events of a removed buffer must not be retried for a day. The held
/// lock's link count is the test, not the path's inode, which a new file may reuse.
fn home_removed(lock: &File, home: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let unlinked = lock.metadata().map(|m| m.nlink() == 0).unwrap_or(true);
    unlinked || !home.join(crate::buffer::BUFFER_FILE).exists()
}

/// Where the lock lives, for messages.
pub fn lock_path(home: &Path) -> PathBuf {
    home.join(LOCK_FILE)
}
