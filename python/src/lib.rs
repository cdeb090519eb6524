//! `session_buddy_client._native`: the Rust client (`session-buddy-client`) for Python.
//!
//! A thin layer: one [`Tracker`] per tracked session, the same journal, buffer and sender as
//! the Rust shells, and the detached sender's entry point (`python -m session_buddy_client
//! event-buffer replay --daemon`). The Python package (`session_buddy_client/`) builds the
//! original's API and the context managers on top. Every call that touches a file runs with
//! the GIL released (a command's one-line write while writes are slow: `SLOW_WRITES`); none
//! waits on the network, none raises for a tracking failure (a session that cannot be tracked
//! is a disabled one whose `disabled_reason` says why).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set in a `fork()`ed child of a process that may have used the buffer: SQLite's state in
/// its memory is the parent's, so this process never opens the buffer (its trackers write
/// their journals; delivery and the banner's delivery state are left to other processes).
static FORKED: AtomicBool = AtomicBool::new(false);
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use serde_json::{Map, Value};
use session_buddy_client::{ClientError, EndReason, SessionInfo, TrackerConfig};
use session_buddy_events::limits;

/// Whether the GIL is released around a command's write: while writes are slow (the last
/// took [`SLOW_WRITE`] or more: a stalling disk, a network home), so the program's other
/// threads run meanwhile. A command is one line appended to the journal, a few microseconds;
/// releasing the GIL for that costs the caller more than it saves the others, who take the GIL
/// and make it wait to get it back (0.8 ms a cell in IPython, whose history thread is waiting
/// for it then; BENCHMARKS.md). Every other call that touches a file (start, end, the banner)
/// always releases it.
static SLOW_WRITES: AtomicBool = AtomicBool::new(false);

/// A write this slow makes the next ones release the GIL, until one is fast again.
const SLOW_WRITE: Duration = Duration::from_millis(1);

/// How long the detached sender keeps trying at most, as `session-buddy event-buffer replay
/// --daemon` does.
const DAEMON_MAX_RUNTIME: Duration = Duration::from_secs(24 * 3600);

/// The configuration of a tracker started from Python: the layers of `session-buddy-config`
/// (files, `SESSION_BUDDY_*`, `ONEIRIC_EVENT_BUFFER_*`) and, when the interpreter is known,
/// the package's own detached sender: `<python> -m session_buddy_client event-buffer replay
/// --daemon`, the Rust sender compiled into this module, so a wheel needs no `session-buddy`
/// binary (without an interpreter path, `session-buddy` on `PATH`, the client's default).
fn config_for(python: Option<String>) -> TrackerConfig {
    let mut config = TrackerConfig::from_env();
    config.deliver = !FORKED.load(Ordering::Acquire);
    if let Some(python) = python.filter(|p| !p.is_empty()) {
        config.sender_program = Some(PathBuf::from(python));
        config.sender_args = vec!["-m".to_string(), "session_buddy_client".to_string()];
    }
    config
}

/// `metadata` (JSON text from Python) as the wire format takes it: an object of at most
/// [`limits::METADATA_MAX_BYTES`] bytes without NUL characters; else why not.
fn metadata(json: Option<&str>) -> Result<Map<String, Value>, String> {
    let Some(json) = json else {
        return Ok(Map::new());
    };
    let map = match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(m)) => m,
        Ok(Value::Null) => return Ok(Map::new()),
        Ok(_) => return Err("metadata is not a dict".to_string()),
        Err(e) => return Err(format!("metadata is not JSON: {e}")),
    };
    // Measured as the server measures it.
    let size = serde_json::to_string(&map).map_or(usize::MAX, |s| s.len());
    if size > limits::METADATA_MAX_BYTES {
        return Err(format!(
            "metadata is {size} bytes of JSON; at most {} are sent",
            limits::METADATA_MAX_BYTES
        ));
    }
    if map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
        return Err("metadata contains a NUL character".to_string());
    }
    Ok(map)
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn end_reason(reason: &str) -> EndReason {
    match reason {
        "eof" => EndReason::Eof,
        "sigterm" => EndReason::Sigterm,
        "sighup" => EndReason::Sighup,
        "sigint" => EndReason::Sigint,
        "error" => EndReason::Error,
        _ => EndReason::Exit,
    }
}

/// One tracked session of this process (or a disabled one).
#[pyclass(frozen, module = "session_buddy_client._native")]
struct Tracker {
    /// `None` when the session is not tracked (see `disabled_reason`).
    inner: Option<session_buddy_client::Tracker>,
    config: TrackerConfig,
    disabled_reason: Option<String>,
    /// What was left out of the start (metadata too large, …), for one Python warning.
    notes: Vec<String>,
    /// The process that started the session: a `fork()`ed child must not write to it.
    owner: u32,
    ended: AtomicBool,
}

impl Tracker {
    /// The tracker, unless this process is not the one that started it (a forked child,
    /// which then lets go of it).
    fn live(&self) -> Option<&session_buddy_client::Tracker> {
        let inner = self.inner.as_ref()?;
        if std::process::id() != self.owner {
            self.forget();
            return None;
        }
        Some(inner)
    }

    fn forget(&self) {
        FORKED.store(true, Ordering::Release);
        if let Some(inner) = &self.inner
            && !self.ended.swap(true, Ordering::AcqRel)
        {
            inner.forget_after_fork();
        }
    }
}

#[pymethods]
impl Tracker {
    /// The session id (known before the server has seen anything); `None` when not tracked.
    #[getter]
    fn session_id(&self) -> Option<String> {
        self.inner
            .as_ref()
            .and_then(|t| t.session_id())
            .map(str::to_string)
    }

    /// Why the session is not tracked: tracking is off, the component name is invalid, the
    /// journal cannot be written, …; `None` when it is.
    #[getter]
    fn disabled_reason(&self) -> Option<String> {
        self.disabled_reason.clone()
    }

    /// Whether the configuration turned tracking off (`SESSION_BUDDY_TRACKING=off`, …): not
    /// a failure, nothing to warn about.
    #[getter]
    fn turned_off(&self) -> bool {
        !self.config.enabled
    }

    /// What the start left out, each worth one warning.
    #[getter]
    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    /// Whether the session is over: ended, let go of in a forked child, or never tracked.
    #[getter]
    fn ended(&self) -> bool {
        self.inner.as_ref().and_then(|t| t.session_id()).is_none()
            || self.ended.load(Ordering::Acquire)
    }

    /// Records one command: a line appended to the session's journal (arguments and error
    /// redacted first); the GIL released while writes are slow (`SLOW_WRITES`).
    #[pyo3(signature = (name, args, success, duration_seconds, error=None, exit_code=None))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn command(
        &self,
        py: Python<'_>,
        name: &str,
        args: &str,
        success: bool,
        duration_seconds: f64,
        error: Option<&str>,
        exit_code: Option<i32>,
    ) {
        let Some(tracker) = self.live() else { return };
        let duration = Duration::try_from_secs_f64(duration_seconds).unwrap_or_default();
        let write = || {
            let started = Instant::now();
            tracker.command(name, args, success, duration, error, exit_code);
            started.elapsed()
        };
        // See `SLOW_WRITES`.
        if SLOW_WRITES.load(Ordering::Relaxed) {
            if py.detach(write) < SLOW_WRITE {
                SLOW_WRITES.store(false, Ordering::Relaxed);
            }
        } else if write() >= SLOW_WRITE {
            SLOW_WRITES.store(true, Ordering::Relaxed);
        }
    }

    /// Records a heartbeat now (the background thread records one every interval).
    fn heartbeat(&self, py: Python<'_>) {
        let Some(tracker) = self.live() else { return };
        py.detach(|| tracker.heartbeat());
    }

    /// Ends the session (`reason`: exit, eof, sigterm, sighup, sigint, error) and hands what
    /// is undelivered to the detached sender; true when this call ended it. Metadata that the
    /// wire format would refuse is left out.
    #[pyo3(signature = (reason, exit_code=None, signal=None, metadata_json=None))]
    fn end(
        &self,
        py: Python<'_>,
        reason: &str,
        exit_code: Option<i32>,
        signal: Option<&str>,
        metadata_json: Option<&str>,
    ) -> bool {
        let Some(tracker) = self.live() else {
            return false;
        };
        if self.ended.swap(true, Ordering::AcqRel) {
            return false;
        }
        let metadata = metadata(metadata_json).unwrap_or_default();
        let reason = end_reason(reason);
        py.detach(|| tracker.end_with_metadata(reason, exit_code, signal, metadata));
        true
    }

    /// In a `fork()`ed child: lets go of the parent's session without writing to it.
    fn forget_after_fork(&self) {
        self.forget();
    }

    /// The banner's words after `Session Tracking: `, as the Rust shells print them (the last
    /// delivery result recorded on this host and its age; never a network call).
    fn banner_state(&self, py: Python<'_>) -> String {
        if let Some(reason) = &self.disabled_reason
            && self.config.enabled
        {
            return format!("✗ Disabled ({reason})");
        }
        py.detach(|| banner_words(&self.config))
    }
}

/// Starts a session: writes its `session_start` to the journal and starts its background
/// thread (heartbeats, delivery). Never fails: a session that cannot be tracked comes back
/// disabled, with the reason.
#[pyfunction]
#[pyo3(signature = (component, shell_type, session_type=None, component_version=None, runtime=None, metadata_json=None, python=None))]
#[allow(clippy::too_many_arguments)] // the Python signature
fn start(
    py: Python<'_>,
    component: String,
    shell_type: String,
    session_type: Option<String>,
    component_version: Option<String>,
    runtime: Option<String>,
    metadata_json: Option<String>,
    python: Option<String>,
) -> Tracker {
    let config = py.detach(|| config_for(python));
    let mut notes = Vec::new();
    let invalid = if !session_buddy_events::is_valid_name(&component) {
        Some(format!(
            "invalid component name {component:?}: letters, digits, '_' and '-', at most {} characters",
            limits::COMPONENT_NAME_MAX
        ))
    } else {
        session_type
            .as_deref()
            .filter(|t| !session_buddy_events::is_valid_name(t))
            .map(|t| format!("invalid session type {t:?}: letters, digits, '_' and '-'"))
    };
    let disabled = |config: TrackerConfig, reason: String| Tracker {
        inner: None,
        config,
        disabled_reason: Some(reason),
        notes: Vec::new(),
        owner: std::process::id(),
        ended: AtomicBool::new(false),
    };
    if let Some(reason) = invalid {
        return disabled(config, reason);
    }
    let metadata = metadata(metadata_json.as_deref()).unwrap_or_else(|e| {
        notes.push(format!("{e}; the session starts without it"));
        Map::new()
    });
    let info = SessionInfo {
        component,
        shell_type: clip(&shell_type, limits::SHORT_TEXT_MAX),
        session_type,
        component_version: component_version.map(|v| clip(&v, limits::SHORT_TEXT_MAX)),
        runtime,
        metadata,
    };
    let tracker = py.detach(|| session_buddy_client::Tracker::start(config.clone(), info));
    let disabled_reason = if tracker.session_id().is_some() {
        None
    } else {
        tracker.status().disabled_reason
    };
    Tracker {
        inner: Some(tracker),
        config,
        disabled_reason,
        notes,
        owner: std::process::id(),
        ended: AtomicBool::new(false),
    }
}

/// The banner's tracking words for this host's configuration, without a session.
#[pyfunction]
fn banner_state(py: Python<'_>) -> String {
    py.detach(|| banner_words(&TrackerConfig::from_env()))
}

fn banner_words(config: &TrackerConfig) -> String {
    if config.enabled && FORKED.load(Ordering::Acquire) {
        return "✓ Enabled (a forked process: another process delivers)".to_string();
    }
    session_buddy_client::banner_state(config)
}

/// Called in every `fork()`ed child (`os.register_at_fork`): see [`FORKED`].
#[pyfunction]
fn after_fork_in_child() {
    FORKED.store(true, Ordering::Release);
}

/// `text` with its secrets replaced by `[REDACTED]`: the rules the client applies to every
/// command's arguments and error before they are buffered.
#[pyfunction]
fn redact(text: &str) -> String {
    session_buddy_events::redact_args(text)
}

/// The detached sender (`event-buffer replay --daemon`): delivers this host's buffer until it
/// is empty (then lingers a while), the same loop `session-buddy event-buffer replay --daemon`
/// runs. Returns the exit code: 0 when done or when another process delivers, 1 on an error.
#[pyfunction]
fn run_sender_daemon(py: Python<'_>) -> i32 {
    py.detach(|| {
        let config = TrackerConfig::from_env();
        match session_buddy_client::run_sender_daemon(
            &config,
            DAEMON_MAX_RUNTIME,
            session_buddy_client::DAEMON_LINGER,
        ) {
            Ok(_) | Err(ClientError::SenderBusy(_)) => 0,
            Err(_) => 1,
        }
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Tracker>()?;
    m.add_function(wrap_pyfunction!(start, m)?)?;
    m.add_function(wrap_pyfunction!(banner_state, m)?)?;
    m.add_function(wrap_pyfunction!(redact, m)?)?;
    m.add_function(wrap_pyfunction!(run_sender_daemon, m)?)?;
    m.add_function(wrap_pyfunction!(after_fork_in_child, m)?)?;
    m.add("ARGS_MAX_BYTES", limits::ARGS_MAX_BYTES)?;
    Ok(())
}
