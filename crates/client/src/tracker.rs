//! The [`Tracker`]: one tracked session of the host program. Every method is a local write at
//! most (one line appended to the session's journal); delivery happens on a background
//! thread, and what is left at exit goes to a detached sender process.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::{Map, Value};
use session_buddy_events::{
    CommandEvent, EVENT_VERSION_1_1, EnvironmentInfo, Event, EventType, HeartbeatEvent,
    SessionEndEvent, SessionIdRule, SessionStartEvent, UserInfo, limits, redact_args,
};
use uuid::Uuid;

use crate::buffer::{BreakerState, Buffer, DeliveryRecord, OutgoingEvent};
use crate::config::TrackerConfig;
use crate::host::{clip_bytes, clip_chars, host_facts};
use crate::journal::JournalWriter;
use crate::sender::{Sender, Step, try_sender_lock};

/// How often a sender without the lock tries to take it.
const LOCK_POLL: Duration = Duration::from_millis(250);
/// How often the lock holder looks for events other processes queued.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// What the host program says about its session.
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    /// `component_name`: `^[a-zA-Z0-9_-]+$`, at most 64 characters.
    pub component: String,
    /// The shell's kind, e.g. `OneiricShell`.
    pub shell_type: String,
    /// Default `admin_shell`.
    pub session_type: Option<String>,
    pub component_version: Option<String>,
    /// `environment.runtime`, e.g. [`rust_runtime`](crate::rust_runtime)`()` for a Rust
    /// program; `None` leaves it out (the runtime is not known).
    pub runtime: Option<String>,
    pub metadata: Map<String, Value>,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Exit,
    Eof,
    Sigterm,
    Sighup,
    Sigint,
    Error,
}

impl EndReason {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Exit => "exit",
            EndReason::Eof => "eof",
            EndReason::Sigterm => "sigterm",
            EndReason::Sighup => "sighup",
            EndReason::Sigint => "sigint",
            EndReason::Error => "error",
        }
    }
}

/// The live state of tracking, for `status` and the banner.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingStatus {
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub session_id: Option<String>,
    pub server_url: String,
    pub pending: u64,
    pub dead_letters: u64,
    pub dropped: u64,
    pub breaker: BreakerState,
    pub last_delivery: Option<DeliveryRecord>,
}

/// Wakes the background threads: for new work, or to stop.
#[derive(Default)]
struct Signal {
    state: Mutex<SignalState>,
    cv: Condvar,
}

#[derive(Default)]
struct SignalState {
    stop: bool,
    work: bool,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, SignalState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.cv.notify_all();
    }

    fn stopped(&self) -> bool {
        self.lock().stop
    }

    fn work(&self) {
        self.lock().work = true;
        self.cv.notify_all();
    }

    /// Waits up to `d` for stop (and for new work if `on_work`); true when stopped.
    fn wait(&self, d: Duration, on_work: bool) -> bool {
        let deadline = std::time::Instant::now() + d;
        let mut s = self.lock();
        loop {
            if s.stop {
                return true;
            }
            if on_work && s.work {
                s.work = false;
                return false;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            s = match self.cv.wait_timeout(s, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// State shared by the tracker and its threads.
struct Shared {
    config: TrackerConfig,
    session_id: String,
    seq: AtomicU64,
    ended: AtomicBool,
    signal: Signal,
    /// The host's sender lock, while this process holds it.
    lock: Mutex<Option<File>>,
    /// Where this session's events are written.
    journal: JournalWriter,
}

impl Shared {
    fn lock_slot(&self) -> MutexGuard<'_, Option<File>> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when this process holds the sender lock (taking it if free and not stopping).
    fn hold_lock(&self) -> bool {
        let mut slot = self.lock_slot();
        if slot.is_some() {
            return true;
        }
        if self.signal.stopped() {
            return false;
        }
        match try_sender_lock(&self.config.home) {
            Ok(Some(file)) => {
                *slot = Some(file);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(error = %e, "cannot take the sender lock");
                false
            }
        }
    }

    fn release_lock(&self) {
        self.lock_slot().take();
    }

    /// Appends one event to the journal and wakes the sender.
    fn record(&self, event: &Event) {
        match OutgoingEvent::from_event(event).and_then(|e| self.journal.append(e, Utc::now())) {
            Ok(()) => self.signal.work(),
            Err(e) => tracing::warn!(error = %e, "cannot record an event"),
        }
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn command_event(
        &self,
        name: &str,
        args: &str,
        success: bool,
        duration_ms: f64,
        error: Option<&str>,
        exit_code: Option<i32>,
    ) -> Event {
        let args = clip_bytes(&redact_args(args), limits::ARGS_MAX_BYTES);
        Event::Command(CommandEvent {
            event_version: EVENT_VERSION_1_1.to_string(),
            event_id: Uuid::new_v4(),
            event_type: EventType::Command,
            session_id: self.session_id.clone(),
            timestamp: now(),
            seq: self.next_seq(),
            command: clip_chars(name, limits::COMMAND_MAX),
            args: (!args.is_empty()).then_some(args),
            success,
            exit_code,
            duration_ms: Some(duration_ms),
            // An error can quote what was typed (a URL with its password): the same rule.
            error: error.map(|e| clip_bytes(&redact_args(e), limits::ERROR_MAX_BYTES)),
        })
    }
}

struct Live {
    shared: Arc<Shared>,
}

/// One tracked session. Never fails, never blocks on the network, never prints.
pub struct Tracker {
    config: TrackerConfig,
    disabled_reason: Option<String>,
    live: Option<Live>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("session_id", &self.session_id())
            .field("disabled_reason", &self.disabled_reason)
            .finish()
    }
}

pub(crate) fn now() -> DateTime<Utc> {
    let t = Utc::now();
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

impl Tracker {
    /// Starts tracking: writes the `session_start` durably to the session's journal and starts
    /// its background thread (heartbeats, delivery). If tracking is disabled or the journal
    /// cannot be written, returns a tracker whose methods do nothing and whose
    /// [`status`](Self::status) says why.
    pub fn start(config: TrackerConfig, info: SessionInfo) -> Tracker {
        Self::start_as(config, info, None)
    }

    /// [`start`](Self::start) with the start's identity (event id and time, hence the session
    /// id) given rather than drawn: a recorded shell's parent drew it to name the recording
    /// ([`crate::record::StartIdentity`]).
    pub fn start_as(
        config: TrackerConfig,
        info: SessionInfo,
        identity: Option<crate::record::StartIdentity>,
    ) -> Tracker {
        if !config.enabled {
            return Tracker {
                disabled_reason: Some(config.disabled_words()),
                config,
                live: None,
            };
        }
        let disabled = |config: TrackerConfig, e: crate::ClientError| {
            tracing::warn!(error = %e, "session tracking disabled: cannot write the session journal");
            Tracker {
                disabled_reason: Some(e.to_string()),
                config,
                live: None,
            }
        };
        let facts = host_facts();
        let identity = identity.unwrap_or_default();
        let start = SessionStartEvent {
            event_version: EVENT_VERSION_1_1.to_string(),
            event_id: identity.event_id,
            event_type: EventType::SessionStart,
            component_name: info.component.clone(),
            shell_type: info.shell_type,
            timestamp: identity.timestamp,
            pid: std::process::id(),
            user: UserInfo {
                username: facts.username,
                home: facts.home,
            },
            hostname: facts.hostname,
            environment: EnvironmentInfo {
                python_version: None,
                platform: facts.platform,
                cwd: facts.cwd,
                runtime: info
                    .runtime
                    .filter(|r| !r.is_empty())
                    .map(|r| clip_chars(&r, limits::SHORT_TEXT_MAX)),
            },
            metadata: info.metadata,
            session_type: info.session_type,
            component_version: info.component_version,
            heartbeat_interval_seconds: Some(
                u32::try_from(config.heartbeat_interval.as_secs().max(1)).unwrap_or(u32::MAX),
            ),
            session_id_version: SessionIdRule::CURRENT.version(),
        };
        let session_id = start.session_id();
        let journal = match JournalWriter::create(&config.home, config.limits) {
            Ok(j) => j,
            Err(e) => return disabled(config, e),
        };
        let written = OutgoingEvent::from_event(&Event::SessionStart(start))
            .and_then(|e| journal.append(e, Utc::now()));
        if let Err(e) = written {
            return disabled(config, e);
        }
        let shared = Arc::new(Shared {
            config: config.clone(),
            session_id,
            seq: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            signal: Signal::default(),
            lock: Mutex::new(None),
            journal,
        });
        spawn_thread("session-buddy-tracker", {
            let shared = Arc::clone(&shared);
            move || background_loop(&shared)
        });
        Tracker {
            config,
            disabled_reason: None,
            live: Some(Live { shared }),
        }
    }

    /// This session's id (known before the server has seen anything); `None` when disabled.
    pub fn session_id(&self) -> Option<&str> {
        self.live.as_ref().map(|l| l.shared.session_id.as_str())
    }

    fn active(&self) -> Option<&Live> {
        self.live
            .as_ref()
            .filter(|l| !l.shared.ended.load(Ordering::Acquire))
    }

    /// Records one helper call (arguments redacted before they are buffered).
    pub fn command(
        &self,
        name: &str,
        args: &str,
        success: bool,
        duration: Duration,
        error: Option<&str>,
        exit_code: Option<i32>,
    ) {
        let Some(live) = self.active() else { return };
        let event = live.shared.command_event(
            name,
            args,
            success,
            duration.as_secs_f64() * 1000.0,
            error,
            exit_code,
        );
        live.shared.record(&event);
    }

    /// Records a heartbeat now (the background thread also records one every interval).
    pub fn heartbeat(&self) {
        let Some(live) = self.active() else { return };
        live.shared
            .record(&heartbeat_event(&live.shared.session_id));
    }

    /// Ends the session: writes the end, stops the background thread without waiting on the
    /// network, and hands what is undelivered to the detached sender. Idempotent.
    pub fn end(&self, reason: EndReason, exit_code: Option<i32>, signal: Option<&str>) {
        self.end_with_metadata(reason, exit_code, signal, Map::new());
    }

    /// [`end`](Self::end) with the end event's `metadata` (the original's
    /// `emit_session_end(session_id, metadata)`).
    pub fn end_with_metadata(
        &self,
        reason: EndReason,
        exit_code: Option<i32>,
        signal: Option<&str>,
        metadata: Map<String, Value>,
    ) {
        let Some(live) = &self.live else { return };
        if live.shared.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        let event = Event::SessionEnd(SessionEndEvent {
            event_version: Some(EVENT_VERSION_1_1.to_string()),
            event_id: Some(Uuid::new_v4()),
            event_type: EventType::SessionEnd,
            session_id: live.shared.session_id.clone(),
            timestamp: now(),
            metadata,
            exit_code,
            signal: signal.map(|s| clip_chars(s, limits::SHORT_TEXT_MAX)),
            reason: Some(reason.as_str().to_string()),
        });
        // Stopped first: the background thread starts no step for the end; it is left to the
        // host's sender (possibly started below).
        live.shared.signal.stop();
        live.shared.record(&event);
        // Nothing more is written: the slot is released, and whichever sender imports it
        // next empties it for the next session.
        live.shared.journal.close();
        // A call in flight is abandoned: its thread ends on its own within the request
        // timeout. The lock goes now, so the detached sender can take it at once.
        live.shared.release_lock();
        // The end just queued is undelivered, so something must deliver it: another process
        // holding the sender lock (a lingering detached sender, or another shell's sender),
        // or a detached sender started now.
        if !crate::sender::sender_running(&self.config.home) {
            spawn_detached_sender(&self.config);
        }
    }

    /// In a child `fork()`ed from the process that started the session, which stays the
    /// parent's: lets go of it without writing anything (no end; later calls do nothing) and
    /// closes the child's copies of the host's sender lock and of the journal slots, which
    /// would keep them locked after the parent let go of them. Never blocks.
    pub fn forget_after_fork(&self) {
        let Some(live) = &self.live else { return };
        live.shared.ended.store(true, Ordering::Release);
        // fork() copies the descriptor table before the memory, while the parent's other
        // threads run on: the copied `File`s may name descriptors the child does not have, or
        // has for something else. They are forgotten (where a mutex that a thread of the
        // parent held at the fork does not keep them out of reach), never closed, and the
        // child's copies are found by what they are.
        if let Ok(mut slot) = live.shared.lock.try_lock() {
            std::mem::forget(slot.take());
        }
        live.shared.journal.forget_after_fork();
        close_inherited(&self.config.home);
    }

    /// The live state, from the buffer and the journals (never a network call).
    pub fn status(&self) -> TrackingStatus {
        let mut status = TrackingStatus {
            enabled: self.live.is_some(),
            disabled_reason: self.disabled_reason.clone(),
            session_id: self.session_id().map(str::to_string),
            server_url: self.config.url.clone(),
            pending: 0,
            dead_letters: 0,
            dropped: 0,
            breaker: BreakerState::Closed,
            last_delivery: None,
        };
        if self.live.is_some() {
            // Moving the journals in first (what any sender does) applies the bounds, so the
            // counts are the ones delivery will see.
            let stats = Buffer::open(&self.config.home, self.config.limits).and_then(|b| {
                if let Err(e) = b.import_journals() {
                    tracing::debug!(error = %e, "cannot move the session journals into the buffer");
                }
                b.stats()
            });
            match stats {
                Ok(s) => {
                    status.pending = s.pending;
                    status.dead_letters = s.dead_letters;
                    status.dropped = s.dropped;
                    status.breaker = s.breaker;
                    status.last_delivery = s.last_delivery;
                }
                Err(e) => tracing::debug!(error = %e, "cannot read the buffer state"),
            }
        }
        status
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.end(EndReason::Exit, None, None);
    }
}

fn heartbeat_event(session_id: &str) -> Event {
    Event::Heartbeat(HeartbeatEvent {
        event_version: EVENT_VERSION_1_1.to_string(),
        event_id: Uuid::new_v4(),
        event_type: EventType::Heartbeat,
        session_id: session_id.to_string(),
        timestamp: now(),
    })
}

fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name.to_string()).spawn(f) {
        tracing::warn!(error = %e, thread = name, "cannot start a tracking thread");
    }
}

/// The session's one background thread: a heartbeat every interval, and, while this process
/// holds the host's sender lock, the sender: it moves every process's journals into the
/// buffer and delivers the whole buffer, in order.
fn background_loop(shared: &Shared) {
    let interval = shared.config.heartbeat_interval;
    let mut next_beat = Instant::now() + interval;
    // When the sender may next step (a backoff or breaker wait pushes it out).
    let mut next_step = Instant::now();
    // Opened only once this process holds the lock: while another sender delivers (a
    // lingering detached sender, another shell), this costs nothing.
    let mut sender: Option<Sender> = None;
    loop {
        if shared.signal.stopped() {
            break;
        }
        let now = Instant::now();
        if now >= next_beat {
            shared.record(&heartbeat_event(&shared.session_id));
            next_beat = now + interval;
        }
        // Every wait ends at the next heartbeat, then the loop comes back here.
        let wait = |d: Duration, on_work: bool| {
            let until_beat = next_beat.saturating_duration_since(Instant::now());
            shared.signal.wait(d.min(until_beat), on_work)
        };
        if !shared.config.deliver {
            // Heartbeats only: another process delivers.
            if wait(interval, false) {
                break;
            }
            continue;
        }
        if now < next_step {
            if wait(next_step - now, false) {
                break;
            }
            continue;
        }
        if !shared.hold_lock() {
            if wait(LOCK_POLL, false) {
                break;
            }
            continue;
        }
        let sender = match &mut sender {
            Some(s) => s,
            None => match Buffer::open(&shared.config.home, shared.config.limits) {
                Ok(b) => sender.insert(Sender::new(b, &shared.config, true)),
                Err(e) => {
                    tracing::warn!(error = %e, "the sender cannot open the buffer");
                    shared.release_lock();
                    next_step = Instant::now() + Duration::from_secs(5);
                    continue;
                }
            },
        };
        let step = match sender.step() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "sender step failed");
                Step::Wait(Duration::from_secs(1))
            }
        };
        let stopped = match step {
            Step::Idle => wait(IDLE_POLL, true),
            Step::Sent(counts) => {
                if counts.accepted + counts.duplicates > 0 {
                    report_drops(shared, &sender.buffer);
                }
                shared.signal.stopped()
            }
            Step::Wait(d) => {
                next_step = Instant::now() + d;
                wait(d, false)
            }
        };
        if stopped {
            break;
        }
    }
    shared.release_lock();
}

/// Closes this process's descriptors of `home`'s sender lock and journal slots: in a
/// `fork()`ed child, only the parent's threads (not in the child) and the forgotten session
/// owned them. Linux (`/proc/self/fd`); elsewhere they stay open until the child exits.
fn close_inherited(home: &std::path::Path) {
    let Ok(home) = std::fs::canonicalize(home) else {
        return;
    };
    let lock = home.join(crate::sender::LOCK_FILE);
    let journals = crate::journal::journal_dir(&home);
    // Listed first: the listing's own descriptor is closed before any is.
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{fd}")) else {
            continue;
        };
        let ours = target == lock || target.parent() == Some(journals.as_path());
        if ours && let Err(e) = nix::unistd::close(fd) {
            tracing::debug!(fd, error = %e, "cannot close an inherited descriptor");
        }
    }
}

/// Delivery works again: record what the bounds dropped as a command of this session.
fn report_drops(shared: &Shared, buffer: &Buffer) {
    if shared.ended.load(Ordering::Acquire) {
        return;
    }
    let made = buffer.report_drops(|n, reasons| {
        let args = format!("{n} events dropped ({reasons})");
        let event = shared.command_event("tracking.events_dropped", &args, true, 0.0, None, None);
        OutgoingEvent::from_event(&event).ok()
    });
    match made {
        Ok(0) => {}
        Ok(n) => tracing::info!(dropped = n, "recorded dropped events in the session"),
        Err(e) => tracing::debug!(error = %e, "cannot record dropped events"),
    }
}

/// Starts `<sender_program> <sender_args…> event-buffer replay --daemon`, fully detached from
/// our stdio.
fn spawn_detached_sender(config: &TrackerConfig) {
    let Some(program) = &config.sender_program else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(program);
    command
        .args(&config.sender_args)
        .args(["event-buffer", "replay", "--daemon"])
        // Out of the terminal's foreground group from the first instant: closing the terminal
        // right after the shell exits (its SIGHUP) must not kill it before it detaches.
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .env("SESSION_BUDDY_HOME", &config.home)
        .env("SESSION_BUDDY_URL", &config.url);
    if let Some(token) = &config.token {
        command.env("SESSION_BUDDY_TOKEN", token);
    }
    match command.spawn() {
        // Reap it when it ends, so a long-lived host keeps no zombie.
        Ok(mut child) => spawn_thread("session-buddy-reaper", move || {
            let _ = child.wait();
        }),
        Err(e) => {
            tracing::warn!(error = %e, program = %program.display(), "cannot start the detached sender")
        }
    }
}
