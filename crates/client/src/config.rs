//! Configuration of the emitter: explicit values, or [`TrackerConfig::from_env`].

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default server URL.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8678";

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
}

impl Default for BufferLimits {
    fn default() -> Self {
        Self {
            max_events: 100_000,
            max_bytes: 256 * 1024 * 1024,
            max_age: Duration::from_secs(7 * 86_400),
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
    /// `$SESSION_BUDDY_URL`, default `http://127.0.0.1:8678`.
    pub url: String,
    /// `$SESSION_BUDDY_TOKEN`, else the file `$SESSION_BUDDY_HOME/token` (ignored when group or
    /// world readable).
    pub token: Option<String>,
    /// False when `SESSION_BUDDY_TRACKING` is `off`/`0`/`false`/`disabled`/`no`, or
    /// `ONEIRIC_EVENT_BUFFER_ENABLED=false`.
    pub enabled: bool,
    /// Why tracking is disabled, as the banner shows it, e.g. `SESSION_BUDDY_TRACKING=off`.
    pub disabled_reason: Option<String>,
    pub limits: BufferLimits,
    /// Default 30 s.
    pub heartbeat_interval: Duration,
    /// Bound of every HTTP call (default 2 s).
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Program run as the detached sender: `<prog> event-buffer replay --daemon`. `None`: no
    /// detached sender; the next tracked process delivers what is left.
    pub sender_program: Option<PathBuf>,
    /// `$SESSION_BUDDY_CA_CERT`: a PEM file of the CA certificates to trust for an `https://`
    /// server (a server with its own certificate authority). Unset: Mozilla's root certificates.
    pub ca_cert: Option<PathBuf>,
}

impl Default for TrackerConfig {
    /// The defaults, without reading the environment.
    fn default() -> Self {
        Self {
            home: default_home(),
            url: DEFAULT_URL.to_string(),
            token: None,
            enabled: true,
            disabled_reason: None,
            limits: BufferLimits::default(),
            heartbeat_interval: Duration::from_secs(30),
            request_timeout: Duration::from_secs(2),
            retry: RetryPolicy::default(),
            sender_program: None,
            ca_cert: None,
        }
    }
}

impl TrackerConfig {
    /// The configuration from the environment (PRODUCT.md §5), with the defaults above.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `var` (for tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| {
            var(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let home = get("SESSION_BUDDY_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(default_home);
        let url = get("SESSION_BUDDY_URL")
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        let token = get("SESSION_BUDDY_TOKEN").or_else(|| read_token_file(&home));

        let mut disabled_reason = None;
        if let Some(v) = get("SESSION_BUDDY_TRACKING")
            && matches!(
                v.to_ascii_lowercase().as_str(),
                "off" | "0" | "false" | "disabled" | "no"
            )
        {
            disabled_reason = Some(format!("SESSION_BUDDY_TRACKING={v}"));
        }
        if disabled_reason.is_none()
            && let Some(v) = get("ONEIRIC_EVENT_BUFFER_ENABLED")
            && matches!(
                v.to_ascii_lowercase().as_str(),
                "false" | "0" | "off" | "no" | "disabled"
            )
        {
            disabled_reason = Some(format!("ONEIRIC_EVENT_BUFFER_ENABLED={v}"));
        }

        let mut limits = BufferLimits::default();
        if let Some(n) = get("ONEIRIC_EVENT_BUFFER_MAX_SIZE").and_then(|v| v.parse::<u64>().ok())
            && n > 0
        {
            limits.max_events = n;
        }
        if let Some(days) =
            get("ONEIRIC_EVENT_BUFFER_MAX_AGE_DAYS").and_then(|v| v.parse::<f64>().ok())
            && days.is_finite()
            && days > 0.0
        {
            limits.max_age = Duration::from_secs_f64((days * 86_400.0).min(1e12));
        }

        Self {
            home,
            url,
            token,
            enabled: disabled_reason.is_none(),
            disabled_reason,
            limits,
            sender_program: default_sender_program(var("PATH")),
            ca_cert: get("SESSION_BUDDY_CA_CERT").map(PathBuf::from),
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
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".session-buddy")
}

/// The token file, unless others can read it (a leaked token is worse than none).
fn read_token_file(home: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = home.join("token");
    let meta = std::fs::metadata(&path).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "ignoring the token file: it is group or world readable (chmod 600 it)");
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
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
