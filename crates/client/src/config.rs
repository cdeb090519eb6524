//! Configuration of the emitter: explicit values, or [`TrackerConfig::from_env`] (the layers
//! of `session-buddy-config`).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default server URL.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8678";

/// The local buffer's default recording quota.
pub const DEFAULT_RECORDING_QUOTA: u64 = 256 * 1024 * 1024;

/// Bounds of the local buffer. On overflow the **oldest** events are dropped (the newest
/// describe the current state of the shells); drops are counted and reported as a
/// `tracking.events_dropped` command once delivery resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimits {
    /// Events queued at most (`ONEIRIC_EVENT_BUFFER_MAX_SIZE`, default 100 000).
    pub max_events: u64,
    /// Payload bytes queued at most (default 256 MiB).
    pub max_bytes: u64,
    /// Age after which a queued event is dropped (`ONEIRIC_EVENT_BUFFER_MAX_AGE_DAYS`, default 7 days).
    pub max_age: Duration,
    /// Bytes of recording chunks queued at most, a quota of their own (default 256 MiB): on
    /// overflow the oldest chunks go, never another event; one recording stops (marked
    /// truncated) when it alone would pass it.
    pub max_recording_bytes: u64,
}

impl Default for BufferLimits {
    fn default() -> Self {
        Self {
            max_events: session_buddy_config::DEFAULT_BUFFER_MAX_SIZE,
            max_bytes: 256 * 1024 * 1024,
            max_age: Duration::from_secs(
                session_buddy_config::DEFAULT_BUFFER_MAX_AGE_DAYS * 86_400,
            ),
            max_recording_bytes: DEFAULT_RECORDING_QUOTA,
        }
    }
}

/// Retry, backoff and circuit-breaker settings of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First backoff after a failed call (default 200 ms); doubles per failure, with jitter.
    pub backoff_base: Duration,
    /// Largest backoff (default 30 s).
    pub backoff_cap: Duration,
    /// Consecutive failed calls that open the breaker (default 3).
    pub breaker_threshold: u32,
    /// How long the breaker stays open before one half-open probe (default 10 s).
    pub breaker_open: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(30),
            breaker_threshold: 3,
            breaker_open: Duration::from_secs(10),
        }
    }
}

/// Everything the tracker, the buffer and the sender need.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// `$SESSION_BUDDY_HOME`, default `~/.session-buddy`; holds `buffer.db` and `sender.lock`.
    pub home: PathBuf,
    /// `$SESSION_BUDDY_URL`, else `[client] url` from the files, else derived from the port
    /// setting (`server.port`, `SESSION_BUDDY_PORT`); default `http://127.0.0.1:8678`.
    pub url: String,
    /// `$SESSION_BUDDY_TOKEN`, else the token file (`client.token_file`, default
    /// `$SESSION_BUDDY_HOME/token`; ignored when group or world readable).
    pub token: Option<String>,
    /// False when `SESSION_BUDDY_TRACKING` is `off`/`0`/`false`/`disabled`/`no`, or
    /// `ONEIRIC_EVENT_BUFFER_ENABLED=false`.
    pub enabled: bool,
    /// Why tracking is disabled, as the banner shows it, e.g. `SESSION_BUDDY_TRACKING=off`.
    pub disabled_reason: Option<String>,
    /// `pinned by the system file …` when the operator pinned tracking (`pin` in the system
    /// file): no user file, environment variable or flag turns it off.
    pub tracking_pin: Option<String>,
    pub limits: BufferLimits,
    /// Default 30 s.
    pub heartbeat_interval: Duration,
    /// Bound of every HTTP call (default 2 s).
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Program run as the detached sender: `<prog> <sender_args…> event-buffer replay
    /// --daemon`. `None`: no detached sender; the next tracked process delivers what is left.
    pub sender_program: Option<PathBuf>,
    /// Arguments before `event-buffer replay --daemon`: none for `session-buddy`; a program
    /// that carries the sender itself names how to reach it (the Python package:
    /// `python -m session_buddy_client`).
    pub sender_args: Vec<String>,
    /// Whether this process may become the host's sender (default true). False in a
    /// `fork()`ed child, whose memory holds its parent's SQLite state (SQLite must not be used
    /// across a fork): it writes its journal only, and delivery is left to another process
    /// (the detached sender it starts at the end is a program of its own).
    pub deliver: bool,
    /// `$SESSION_BUDDY_CA_CERT`: a PEM file of the CA certificates to trust for an `https://`
    /// server (a server with its own certificate authority). Unset: Mozilla's root certificates.
    pub ca_cert: Option<PathBuf>,
    /// Which sessions are recorded without `--record` (`SESSION_BUDDY_RECORD`, `client.record`).
    pub record: session_buddy_config::RecordRule,
}

impl Default for TrackerConfig {
    /// The defaults; only the home is read from the environment (`$SESSION_BUDDY_HOME`).
    fn default() -> Self {
        Self {
            home: default_home(),
            url: DEFAULT_URL.to_string(),
            token: None,
            enabled: true,
            disabled_reason: None,
            tracking_pin: None,
            limits: BufferLimits::default(),
            heartbeat_interval: Duration::from_secs(30),
            request_timeout: Duration::from_secs(2),
            retry: RetryPolicy::default(),
            sender_program: None,
            sender_args: Vec::new(),
            deliver: true,
            ca_cert: None,
            record: session_buddy_config::RecordRule::Off,
        }
    }
}

impl TrackerConfig {
    /// The configuration from the layers (docs/api.md, "Environment and configuration"): the system, user and project files
    /// and the environment of this process, resolved by `session-buddy-config`.
    pub fn from_env() -> Self {
        Self::from_inputs(&session_buddy_config::Inputs::from_process(Vec::new()))
    }

    /// Like [`from_env`](Self::from_env), reading variables through `var` (for tests); the
    /// files are still read (from `$SESSION_BUDDY_HOME`, the system file, and a project file
    /// from the working directory up).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        Self::from_inputs(&session_buddy_config::Inputs::from_lookup(var, cwd))
    }

    /// The configuration from explicit inputs (environment, working directory, flags).
    pub fn from_inputs(inputs: &session_buddy_config::Inputs) -> Self {
        let resolved = session_buddy_config::load(inputs);
        let settings = session_buddy_config::ClientSettings::from_resolved(&resolved);
        let token = resolved
            .env_token
            .clone()
            .or_else(|| read_token_file(&settings.token_file.value));
        let limits = BufferLimits {
            max_events: settings.buffer_max_size.value,
            max_age: settings.buffer_max_age.value,
            ..BufferLimits::default()
        };
        Self {
            home: settings.home.clone(),
            url: settings.url.value.clone(),
            token,
            enabled: settings.tracking.value,
            disabled_reason: settings.disabled_reason(),
            tracking_pin: settings.tracking_pin(),
            limits,
            sender_program: default_sender_program(inputs.var("PATH").map(str::to_string)),
            ca_cert: settings.ca_cert.map(|c| c.value),
            record: settings.record.value,
            ..Self::default()
        }
    }

    /// The words after "Disabled" in the banner.
    pub fn disabled_words(&self) -> String {
        self.disabled_reason
            .clone()
            .unwrap_or_else(|| "disabled by configuration".to_string())
    }
}

/// `url` as the user wrote it, for an error message: `SESSION_BUDDY_URL=…` when that is where
/// it came from, else `the server URL …` (a flag, a program's own setting).
pub(crate) fn name_url(url: &str) -> String {
    match std::env::var("SESSION_BUDDY_URL") {
        Ok(v) if v.trim().trim_end_matches('/') == url.trim_end_matches('/') => {
            format!("SESSION_BUDDY_URL={url}")
        }
        _ => format!("the server URL {url}"),
    }
}

fn default_home() -> PathBuf {
    session_buddy_config::process_home()
}

/// The token file, unless others can read it (a leaked token is worse than none).
fn read_token_file(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "ignoring the token file: it is group or world readable (chmod 600 it)");
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// This executable when it is `session-buddy`, else `session-buddy` on `PATH`.
fn default_sender_program(path_var: Option<String>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(exe) = std::env::current_exe()
        && exe.file_name().is_some_and(|n| n == "session-buddy")
    {
        return Some(exe);
    }
    std::env::split_paths(&path_var?)
        .map(|dir| dir.join("session-buddy"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
