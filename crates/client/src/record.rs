//! Terminal recording (`track --record`, `shell --record`): the program runs in a
//! pseudo-terminal whose output is relayed to ours as it comes and recorded as timed frames;
//! the frames travel as `output` chunks through the session's own journal, the buffer and the
//! sender, like every other event (docs/recordings.md).
//!
//! - Our terminal is in raw mode while the program runs, so every key (Ctrl-C, Ctrl-Z, Ctrl-\)
//!   reaches the program's terminal, whose line discipline turns it into the signal; the
//!   previous state is restored on every way out of [`run_in_pty`] (a guard's drop, also
//!   when a panic unwinds).
//! - A resize of our window (SIGWINCH) is passed to the program's terminal and recorded.
//! - Typed input is recorded only when asked (`--record-input`), and never while the
//!   program's terminal is at a password prompt: canonical mode with echo off. (Raw-mode line
//!   editors turn echo off too; their input is recorded. Keys typed ahead, before a prompt
//!   turns echo off, are recorded: a documented limit.)
//! - Output is recorded as shown, JWTs, bearer tokens and PEM private-key bodies masked
//!   ([`session_buddy_events::mask_output`]), a private-key block held until its end line
//!   so that a read cutting it does not leak half of it.
//! - Without a terminal on stdin, no pseudo-terminal is faked: the program's stdout and stderr
//!   are pipes, relayed and recorded.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use session_buddy_events::recording::{CHUNK_MAX_BYTES, Frame, FrameKind, Utf8Carry};
use session_buddy_events::{EVENT_VERSION_1_1, Event, EventType, OutputEvent, mask_output};
use uuid::Uuid;

use crate::buffer::OutgoingEvent;
use crate::config::TrackerConfig;
use crate::journal::JournalWriter;

/// A chunk is cut once this much data is waiting, or [`CHUNK_EVERY`] after its first frame.
const CHUNK_TARGET: usize = 48 * 1024;
/// The longest a frame waits before its chunk is written (what a crash can lose).
pub const CHUNK_EVERY: Duration = Duration::from_millis(500);
/// Longest a private-key block is held waiting for its end line.
const HOLD_MAX: Duration = Duration::from_secs(2);

/// What to record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordOptions {
    /// Record typed input too (never at a password prompt).
    pub input: bool,
}

impl RecordOptions {
    /// Whether a session of `component` is recorded: `--record` or `--record-input` (`record`,
    /// `input`) asked for it, or the configuration (`client.record`) covers the component.
    pub fn wanted(
        config: &TrackerConfig,
        component: &str,
        record: bool,
        input: bool,
    ) -> Option<Self> {
        (record || input || config.record.covers(component)).then_some(Self { input })
    }
}

/// The environment variable through which a recording parent hands its child shell the
/// identity of the session it records (`shell --record`): `PID:EVENT_ID:MICROS`, the parent's
/// pid, the start's event id and its time in microseconds since the epoch. Internal to one
/// parent and its child: a child whose parent is not PID ignores it.
pub use session_buddy_config::RECORDED_START_ENV;

/// The identity of a session's start: its event id and time, from which its session id
/// follows ([`session_buddy_events::session_id_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartIdentity {
    pub event_id: Uuid,
    pub timestamp: DateTime<Utc>,
}

impl StartIdentity {
    pub fn new() -> Self {
        Self {
            event_id: Uuid::new_v4(),
            timestamp: crate::tracker::now(),
        }
    }

    /// The session id this start gives `component`.
    pub fn session_id(&self, component: &str) -> String {
        session_buddy_events::session_id_for(component, self.timestamp, &self.event_id)
    }

    /// The value of [`RECORDED_START_ENV`] for a child of this process.
    pub fn env_value(&self) -> String {
        format!(
            "{}:{}:{}",
            std::process::id(),
            self.event_id,
            self.timestamp.timestamp_micros()
        )
    }

    /// The identity our recording parent handed us, if [`RECORDED_START_ENV`] holds one and
    /// names our parent (a process further down, such as a helper's shell, ignores it).
    pub fn inherited() -> Option<Self> {
        let value = std::env::var(RECORDED_START_ENV).ok()?;
        Self::parse_for(&value, Some(nix::unistd::getppid().as_raw()))
    }

    fn parse_for(value: &str, parent: Option<i32>) -> Option<Self> {
        let mut parts = value.splitn(3, ':');
        let pid: i32 = parts.next()?.parse().ok()?;
        let event_id = parts.next()?.parse().ok()?;
        let micros: i64 = parts.next()?.parse().ok()?;
        (Some(pid) == parent).then_some(())?;
        Some(Self {
            event_id,
            timestamp: DateTime::from_timestamp_micros(micros)?,
        })
    }
}

impl Default for StartIdentity {
    fn default() -> Self {
        Self::new()
    }
}

enum Msg {
    Output(Vec<u8>, Instant),
    Input(Vec<u8>, Instant),
    Resize(u16, u16, Instant),
    /// Write what is left and stop.
    Finish,
}

/// The recording of one session: frames in, chunks written to its own journal slot by a
/// thread of its own, so the relay never waits on a write.
pub struct Recorder {
    tap: Tap,
    thread: Option<JoinHandle<()>>,
}

/// Where the relays hand what they see to a [`Recorder`] (cheap to clone; once the recorder
/// has finished, what is handed is dropped).
#[derive(Clone)]
pub struct Tap {
    tx: SyncSender<Msg>,
}

impl Tap {
    pub fn output(&self, bytes: &[u8]) {
        let _ = self.tx.send(Msg::Output(bytes.to_vec(), Instant::now()));
    }

    pub fn input(&self, bytes: &[u8]) {
        let _ = self.tx.send(Msg::Input(bytes.to_vec(), Instant::now()));
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let _ = self.tx.send(Msg::Resize(cols, rows, Instant::now()));
    }
}

impl Recorder {
    /// Starts recording `session_id` at our terminal's size; `None` (with a warning) when its
    /// journal cannot be written.
    pub fn start(config: &TrackerConfig, session_id: &str) -> Option<Self> {
        let (cols, rows) = terminal_size();
        let journal = match JournalWriter::create(&config.home, config.limits) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "recording disabled: cannot write its journal");
                return None;
            }
        };
        // Bounded: a recorder that falls behind slows the relay rather than filling memory.
        let (tx, rx) = sync_channel(256);
        let chunker = Chunker::new(
            journal,
            session_id.to_string(),
            cols.max(1),
            rows.max(1),
            config.limits.max_recording_bytes,
        );
        let thread = std::thread::Builder::new()
            .name("session-buddy-recorder".into())
            .spawn(move || chunker.run(rx))
            .map_err(|e| tracing::warn!(error = %e, "cannot start the recorder"))
            .ok()?;
        Some(Self {
            tap: Tap { tx },
            thread: Some(thread),
        })
    }

    pub fn tap(&self) -> Tap {
        self.tap.clone()
    }

    /// Writes what is left and closes the journal (also on drop).
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.tap.tx.send(Msg::Finish);
            let _ = t.join();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Frames into chunks, chunks into the journal.
struct Chunker {
    journal: JournalWriter,
    session_id: String,
    began: Instant,
    started_at: DateTime<Utc>,
    cols: u16,
    rows: u16,
    seq: u64,
    frames: Vec<Frame>,
    bytes: usize,
    first_at: Option<Instant>,
    out: Utf8Carry,
    inp: Utf8Carry,
    /// An unfinished private-key block: its offset, text and since when it is held.
    held: Option<(f64, String, Instant)>,
    recorded: u64,
    quota: u64,
    stopped: bool,
}

impl Chunker {
    fn new(journal: JournalWriter, session_id: String, cols: u16, rows: u16, quota: u64) -> Self {
        Self {
            journal,
            session_id,
            began: Instant::now(),
            started_at: Utc::now(),
            cols,
            rows,
            seq: 0,
            frames: Vec::new(),
            bytes: 0,
            first_at: None,
            out: Utf8Carry::default(),
            inp: Utf8Carry::default(),
            held: None,
            recorded: 0,
            quota,
            stopped: false,
        }
    }

    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let wait = self
                .first_at
                .map_or(CHUNK_EVERY, |t| CHUNK_EVERY.saturating_sub(t.elapsed()));
            match rx.recv_timeout(wait) {
                Ok(Msg::Finish) => break,
                Ok(m) => self.take(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Some((_, _, since)) = &self.held
                && since.elapsed() >= HOLD_MAX
            {
                self.release_held();
            }
            if self.first_at.is_some_and(|t| t.elapsed() >= CHUNK_EVERY) {
                self.flush(None);
            }
        }
        let tail = self.out.finish();
        if !tail.is_empty() {
            self.output_text(self.began.elapsed().as_secs_f64(), tail);
        }
        self.release_held();
        self.flush(None);
        self.journal.close();
    }

    fn offset(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.began).as_secs_f64()
    }

    fn take(&mut self, m: Msg) {
        if self.stopped {
            return;
        }
        match m {
            Msg::Output(b, at) => {
                let text = self.out.push(&b);
                let t = self.offset(at);
                self.output_text(t, text);
            }
            Msg::Input(b, at) => {
                let text = self.inp.push(&b);
                if !text.is_empty() {
                    let t = self.offset(at);
                    self.push(Frame(t, FrameKind::Input, mask_output(&text).into_owned()));
                }
            }
            Msg::Resize(c, r, at) => {
                let t = self.offset(at);
                self.push(Frame(t, FrameKind::Resize, format!("{c}x{r}")));
            }
            Msg::Finish => {}
        }
    }

    /// Output, masked; a private-key block that has not ended yet is held for what follows.
    fn output_text(&mut self, t: f64, text: String) {
        if text.is_empty() {
            return;
        }
        let (t, text) = match self.held.take() {
            Some((t0, mut held, since)) => {
                held.push_str(&text);
                if unfinished_key(&held) && held.len() < CHUNK_MAX_BYTES {
                    self.held = Some((t0, held, since));
                    return;
                }
                (t0, held)
            }
            None if unfinished_key(&text) && text.len() < CHUNK_MAX_BYTES => {
                self.held = Some((t, text, Instant::now()));
                return;
            }
            None => (t, text),
        };
        let masked = mask_output(&text).into_owned();
        self.push(Frame(t, FrameKind::Output, masked));
    }

    fn release_held(&mut self) {
        if let Some((t, text, _)) = self.held.take() {
            let masked = mask_output(&text).into_owned();
            self.push(Frame(t, FrameKind::Output, masked));
        }
    }

    fn push(&mut self, frame: Frame) {
        if self.stopped {
            return;
        }
        let len = frame.2.len();
        if self.recorded + len as u64 > self.quota {
            let reason = format!(
                "over the local buffer's recording quota of {} bytes",
                self.quota
            );
            tracing::warn!(session_id = %self.session_id, %reason, "recording stopped");
            self.flush(Some(reason));
            self.stopped = true;
            return;
        }
        self.recorded += len as u64;
        if len > CHUNK_MAX_BYTES {
            // One read larger than a chunk: split at character boundaries.
            let Frame(t, kind, data) = frame;
            let mut rest = data.as_str();
            while !rest.is_empty() {
                let mut cut = rest.len().min(CHUNK_MAX_BYTES / 2);
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                let (piece, tail) = rest.split_at(cut);
                self.push_small(Frame(t, kind, piece.to_string()));
                rest = tail;
            }
            return;
        }
        self.push_small(frame);
    }

    fn push_small(&mut self, frame: Frame) {
        if self.bytes + frame.2.len() > CHUNK_MAX_BYTES {
            self.flush(None);
        }
        self.bytes += frame.2.len();
        self.frames.push(frame);
        self.first_at.get_or_insert_with(Instant::now);
        if self.bytes >= CHUNK_TARGET {
            self.flush(None);
        }
    }

    fn flush(&mut self, truncated: Option<String>) {
        if self.frames.is_empty() && truncated.is_none() {
            return;
        }
        self.seq += 1;
        let event = Event::Output(OutputEvent {
            event_version: EVENT_VERSION_1_1.to_string(),
            event_id: Uuid::new_v4(),
            event_type: EventType::Output,
            session_id: self.session_id.clone(),
            timestamp: Utc::now(),
            seq: self.seq,
            started_at: self.started_at,
            cols: self.cols,
            rows: self.rows,
            frames: std::mem::take(&mut self.frames),
            truncated,
        });
        self.bytes = 0;
        self.first_at = None;
        let written =
            OutgoingEvent::from_event(&event).and_then(|e| self.journal.append(e, Utc::now()));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write a recording chunk");
        }
    }
}

/// Whether `text` opens a private-key block it does not close.
fn unfinished_key(text: &str) -> bool {
    text.rfind("-----BEGIN ")
        .is_some_and(|at| text[at..].contains("PRIVATE KEY") && !text[at..].contains("-----END "))
}

/// How the recorded program ended.
pub struct Ended {
    pub status: std::process::ExitStatus,
}

/// Why a recorded program could not run.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot run '{program}': {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open a pseudo-terminal: {0}")]
    Pty(String),
    #[error("waiting for the recorded program: {0}")]
    Wait(#[source] std::io::Error),
}

/// Our terminal's size (80×24 when it has none).
pub fn terminal_size() -> (u16, u16) {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .or_else(|| rustix::termios::tcgetwinsize(std::io::stdin()).ok())
        .filter(|w| w.ws_col > 0 && w.ws_row > 0)
        .map_or((80, 24), |w| (w.ws_col, w.ws_row))
}

/// Our terminal in raw mode until dropped, then back as it was (the recorder's relay and
/// `session-buddy play` use it).
pub struct RawGuard {
    saved: rustix::termios::Termios,
}

impl RawGuard {
    /// Raw mode on stdin's terminal; `None` when stdin is not one.
    pub fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// Runs `command` recorded, relaying its terminal; `on_spawn` gets its pid (to pass signals
/// on). Returns how it ended. Without a terminal on stdin, its output pipes are recorded.
pub fn run_in_pty(
    command: &[String],
    env: &[(String, String)],
    recorder: Option<Recorder>,
    options: RecordOptions,
    on_spawn: impl FnOnce(u32),
) -> Result<Ended, RecordError> {
    let program = command.first().cloned().unwrap_or_default();
    let args = command.get(1..).unwrap_or_default();
    if !std::io::stdin().is_terminal() {
        return run_piped(&program, args, env, recorder, on_spawn);
    }
    let (cols, rows) = terminal_size();
    let (pty, pts) = pty_process::blocking::open().map_err(|e| RecordError::Pty(e.to_string()))?;
    pty.resize(pty_process::Size::new(rows, cols))
        .map_err(|e| RecordError::Pty(e.to_string()))?;
    let mut cmd = pty_process::blocking::Command::new(&program).args(args);
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    let mut child = cmd.spawn(pts).map_err(|e| RecordError::Spawn {
        program: program.clone(),
        source: match e {
            pty_process::Error::Io(io) => io,
            other => std::io::Error::other(other.to_string()),
        },
    })?;
    on_spawn(child.id());
    let pty = Arc::new(pty);
    let tap = recorder.as_ref().map(Recorder::tap);
    let guard = RawGuard::enter();
    let keys = spawn_input(pty.clone(), tap.clone(), options);
    spawn_resizer(pty.clone(), tap.clone());
    let status = relay_output(&pty, &mut child, tap.as_ref());
    // Stop taking keys before our terminal goes back to the shell that started us.
    keys.stop();
    drop(guard);
    if let Some(r) = recorder {
        r.finish();
    }
    Ok(Ended { status: status? })
}

/// The program's terminal → ours (and the recorder), until the program has ended and its
/// terminal is drained. Each read is shown and recorded at once. (Measured with `bench
/// record`: reading again at once without `poll`, or gathering a burst before showing it,
/// both lower the throughput; letting the terminal fill between reads is what helps.)
fn relay_output(
    pty: &pty_process::blocking::Pty,
    child: &mut std::process::Child,
    recorder: Option<&Tap>,
) -> Result<std::process::ExitStatus, RecordError> {
    use rustix::event::{PollFd, PollFlags, poll};
    use rustix::io::Errno;
    let stdout = std::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    let tick = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    let mut exited: Option<std::process::ExitStatus> = None;
    loop {
        let mut fds = [PollFd::new(pty, PollFlags::IN)];
        if poll(&mut fds, Some(&tick)).unwrap_or(0) > 0 {
            match rustix::io::read(pty, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // Our terminal's descriptor itself: std's line-buffered stdout would write
                    // a read in two pieces.
                    let _ = write_all(&stdout, &buf[..n]);
                    if let Some(r) = recorder {
                        r.output(&buf[..n]);
                    }
                    continue;
                }
                Err(Errno::INTR | Errno::AGAIN) => continue,
                // EIO: every holder of the program's terminal has closed it.
                Err(_) => break,
            }
        }
        if exited.is_some() {
            // Ended, and nothing more came within a tick: a process it left behind may
            // still hold the terminal, but the session is over.
            break;
        }
        exited = child.try_wait().map_err(RecordError::Wait)?;
    }
    match exited {
        Some(s) => Ok(s),
        None => child.wait().map_err(RecordError::Wait),
    }
}

/// A thread reading our keyboard (stdin) and handing each read to `on_keys` until it returns
/// false, stdin ends, or [`KeyReader::stop`]. It waits with `poll`, never inside a read, so
/// that once stopped it leaves what is typed next to whoever reads the terminal after us (a
/// thread blocked in `read` would take the shell's next line).
pub struct KeyReader {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl KeyReader {
    pub fn spawn(mut on_keys: impl FnMut(&[u8]) -> bool + Send + 'static) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("session-buddy-keys".into())
            .spawn(move || {
                use rustix::event::{PollFd, PollFlags, poll};
                let stdin = std::io::stdin();
                let tick = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 20_000_000,
                };
                let mut buf = [0u8; 4096];
                while !stopped.load(Ordering::Acquire) {
                    let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
                    match poll(&mut fds, Some(&tick)) {
                        Ok(0) => continue,
                        Ok(_) => {}
                        Err(rustix::io::Errno::INTR) => continue,
                        Err(_) => return,
                    }
                    if stopped.load(Ordering::Acquire) {
                        return;
                    }
                    // The descriptor itself: std's buffered stdin could keep bytes that
                    // poll no longer reports.
                    let n = match rustix::io::read(&stdin, &mut buf) {
                        Ok(0) => return,
                        Ok(n) => n,
                        Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
                        Err(_) => return,
                    };
                    if !on_keys(&buf[..n]) {
                        return;
                    }
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "cannot start the keyboard relay"))
            .ok();
        Self { stop, thread }
    }

    /// Stops reading (within one poll tick) and waits for the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for KeyReader {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Our keyboard → the program's terminal; recorded with `--record-input`, except at a
/// password prompt.
fn spawn_input(
    pty: Arc<pty_process::blocking::Pty>,
    recorder: Option<Tap>,
    options: RecordOptions,
) -> KeyReader {
    KeyReader::spawn(move |keys| {
        if options.input
            && let Some(r) = &recorder
            && !at_password_prompt(pty.as_fd())
        {
            r.input(keys);
        }
        write_all(&*pty, keys).is_ok()
    })
}

/// All of `bytes` to `fd`, waiting while it is full (if another program made it non-blocking).
fn write_all(fd: impl AsFd, mut bytes: &[u8]) -> rustix::io::Result<()> {
    use rustix::event::{PollFd, PollFlags, poll};
    use rustix::io::Errno;
    while !bytes.is_empty() {
        match rustix::io::write(&fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
                let _ = poll(&mut fds, None);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Canonical mode with echo off: what `read -s`, `sudo` and `getpass` set.
pub(crate) fn at_password_prompt(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use rustix::termios::LocalModes;
    match rustix::termios::tcgetattr(fd) {
        Ok(t) => {
            t.local_modes.contains(LocalModes::ICANON) && !t.local_modes.contains(LocalModes::ECHO)
        }
        // Unknown: assume the worst.
        Err(_) => true,
    }
}

/// SIGWINCH: our new size to the program's terminal, and into the recording.
fn spawn_resizer(pty: Arc<pty_process::blocking::Pty>, recorder: Option<Tap>) {
    let mut signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH]) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow window resizes");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("session-buddy-winch".into())
        .spawn(move || {
            for _ in signals.forever() {
                let (cols, rows) = terminal_size();
                if pty.resize(pty_process::Size::new(rows, cols)).is_ok()
                    && let Some(r) = &recorder
                {
                    r.resize(cols, rows);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the resize relay");
    }
}

/// No terminal: the program's stdout and stderr through pipes, relayed and recorded.
fn run_piped(
    program: &str,
    args: &[String],
    env: &[(String, String)],
    recorder: Option<Recorder>,
    on_spawn: impl FnOnce(u32),
) -> Result<Ended, RecordError> {
    use std::process::Stdio;
    let mut child = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| RecordError::Spawn {
            program: program.to_string(),
            source,
        })?;
    on_spawn(child.id());
    let tap = recorder.as_ref().map(Recorder::tap);
    let mut relays = Vec::new();
    let out = child
        .stdout
        .take()
        .map(|p| Box::new(p) as Box<dyn Read + Send>);
    let err = child
        .stderr
        .take()
        .map(|p| Box::new(p) as Box<dyn Read + Send>);
    for (pipe, to_stderr) in [(out, false), (err, true)] {
        let Some(mut pipe) = pipe else { continue };
        let recorder = tap.clone();
        relays.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let written = if to_stderr {
                    std::io::stderr().write_all(&buf[..n])
                } else {
                    let mut o = std::io::stdout().lock();
                    o.write_all(&buf[..n]).and_then(|()| o.flush())
                };
                let _ = written;
                if let Some(r) = &recorder {
                    r.output(&buf[..n]);
                }
            }
        }));
    }
    let status = child.wait().map_err(RecordError::Wait)?;
    for r in relays {
        let _ = r.join();
    }
    if let Some(r) = recorder {
        r.finish();
    }
    Ok(Ended { status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_identity_goes_to_its_child_only() {
        let id = StartIdentity::new();
        let value = id.env_value();
        let me = std::process::id() as i32;
        assert_eq!(StartIdentity::parse_for(&value, Some(me)), Some(id));
        assert_eq!(StartIdentity::parse_for(&value, Some(me + 1)), None);
        assert_eq!(StartIdentity::parse_for(&value, None), None);
        assert_eq!(StartIdentity::parse_for("12:nonsense:3", Some(12)), None);
        assert_eq!(
            id.session_id("oneiric"),
            session_buddy_events::session_id_for("oneiric", id.timestamp, &id.event_id)
        );
    }

    #[test]
    fn an_unfinished_private_key_is_recognised() {
        assert!(unfinished_key(
            "x\r\n-----BEGIN RSA PRIVATE KEY-----\r\nMIIE"
        ));
        assert!(!unfinished_key(
            "-----BEGIN PRIVATE KEY-----\r\nMIIE\r\n-----END PRIVATE KEY-----"
        ));
        assert!(!unfinished_key("-----BEGIN CERTIFICATE-----\r\nMIIE"));
    }
}
