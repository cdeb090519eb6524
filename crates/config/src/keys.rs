//! The configuration keys, what their values must look like, and how a value is checked.

use std::time::Duration;

use session_buddy_events::parse_duration;

/// What a key's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Host,
    Port,
    Path,
    DatabaseUrl,
    Sync,
    HostList,
    Duration,
    Url,
    Switch,
    /// A whole number in this range.
    Count(u64, u64),
    /// A positive number of days (fractions allowed).
    Days,
    /// Which components' sessions are recorded: on, off, or a list of component names.
    Record,
}

/// A configuration key: `section.name` in the files, `env` in the environment (the first name
/// is the product's, later ones are the original's honoured aliases).
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub env: &'static [&'static str],
    pub(crate) kind: Kind,
}

impl Key {
    pub(crate) fn section(&self) -> &'static str {
        self.name.split_once('.').map_or("", |(s, _)| s)
    }

    pub(crate) fn field(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(_, f)| f)
    }
}

const fn key(name: &'static str, env: &'static [&'static str], kind: Kind) -> Key {
    Key { name, env, kind }
}

/// Every key: the server's (`[server]`, what `session-buddy serve` uses) and the clients'
/// (`[client]`, what shells, `track` and the query commands use).
pub const KEYS: &[Key] = &[
    key("server.host", &["SESSION_BUDDY_HOST"], Kind::Host),
    key("server.port", &["SESSION_BUDDY_PORT"], Kind::Port),
    key("server.db_path", &["SESSION_BUDDY_DB_PATH"], Kind::Path),
    key(
        "server.database_url",
        &["SESSION_BUDDY_DATABASE_URL"],
        Kind::DatabaseUrl,
    ),
    key("server.sync", &["SESSION_BUDDY_SYNC"], Kind::Sync),
    key(
        "server.allowed_hosts",
        &["SESSION_BUDDY_ALLOWED_HOSTS"],
        Kind::HostList,
    ),
    key(
        "server.session_ttl",
        &["SESSION_BUDDY_SESSION_TTL"],
        Kind::Duration,
    ),
    key(
        "server.legacy_session_ttl",
        &["SESSION_BUDDY_LEGACY_SESSION_TTL"],
        Kind::Duration,
    ),
    key(
        "server.db_pool_size",
        &["SESSION_BUDDY_DB_POOL_SIZE"],
        Kind::Count(1, 1000),
    ),
    key(
        "server.db_cache_mib",
        &["SESSION_BUDDY_DB_CACHE_MIB"],
        Kind::Count(4, 65_536),
    ),
    key(
        "server.retention_days",
        &["SESSION_BUDDY_RETENTION_DAYS"],
        Kind::Count(1, 36_500),
    ),
    key(
        "server.rate_limit",
        &["SESSION_BUDDY_RATE_LIMIT"],
        Kind::Count(0, u32::MAX as u64),
    ),
    key(
        "server.accept_recordings",
        &["SESSION_BUDDY_ACCEPT_RECORDINGS"],
        Kind::Switch,
    ),
    key(
        "server.recording_max_bytes",
        &["SESSION_BUDDY_RECORDING_MAX_BYTES"],
        Kind::Count(1, u64::MAX),
    ),
    key(
        "server.recording_retention_days",
        &["SESSION_BUDDY_RECORDING_RETENTION_DAYS"],
        Kind::Count(1, 36_500),
    ),
    key("server.tls_cert", &["SESSION_BUDDY_TLS_CERT"], Kind::Path),
    key("server.tls_key", &["SESSION_BUDDY_TLS_KEY"], Kind::Path),
    key("client.url", &["SESSION_BUDDY_URL"], Kind::Url),
    key("client.token_file", &[], Kind::Path),
    key("client.ca_cert", &["SESSION_BUDDY_CA_CERT"], Kind::Path),
    key(
        "client.tracking",
        &["SESSION_BUDDY_TRACKING", "ONEIRIC_EVENT_BUFFER_ENABLED"],
        Kind::Switch,
    ),
    key(
        "client.buffer_max_size",
        &["ONEIRIC_EVENT_BUFFER_MAX_SIZE"],
        Kind::Count(1, u64::MAX),
    ),
    key(
        "client.buffer_max_age_days",
        &["ONEIRIC_EVENT_BUFFER_MAX_AGE_DAYS"],
        Kind::Days,
    ),
    key("client.record", &["SESSION_BUDDY_RECORD"], Kind::Record),
];

/// Keys the system file may pin (`pin = ["client.tracking"]`): once pinned, no user file,
/// project file, environment variable or flag changes them.
pub const PINNABLE: &[&str] = &["client.tracking", "client.record"];

/// `SESSION_BUDDY_*` variables that are not configuration keys but are known to the product.
pub(crate) const OTHER_ENV: &[&str] = &[
    "SESSION_BUDDY_HOME",
    "SESSION_BUDDY_CONFIG",
    "SESSION_BUDDY_SYSTEM_CONFIG",
    "SESSION_BUDDY_TOKEN",
    "SESSION_BUDDY_SECRET",
    "SESSION_BUDDY_PREVIOUS_SECRET",
    "SESSION_BUDDY_LOG",
    // Set by the detached sender on the child it hands over to.
    "SESSION_BUDDY_DETACHED",
    // Set by a recording parent on the shell it runs (`shell --record`).
    RECORDED_START_ENV,
];

/// The variable through which a recording parent hands its child shell the identity of the
/// session it records (`session_buddy_client::record::StartIdentity`).
pub const RECORDED_START_ENV: &str = "SESSION_BUDDY_RECORDED_START";

/// Finds a key by its full name (`server.port`) or its field name (`port`, `url`).
pub fn find_key(name: &str) -> Option<&'static Key> {
    KEYS.iter()
        .find(|k| k.name == name)
        .or_else(|| KEYS.iter().find(|k| k.field() == name))
}

pub fn known_keys() -> String {
    KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// Which sessions are recorded (`client.record`, `SESSION_BUDDY_RECORD`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RecordRule {
    #[default]
    Off,
    /// Every component's.
    All,
    /// These components'.
    Components(Vec<String>),
}

impl RecordRule {
    /// `on`/`off` (and the other switch words) or component names separated by commas.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some(on) = parse_switch(t) {
            return Ok(if on { Self::All } else { Self::Off });
        }
        let names: Vec<String> = t
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        match names
            .iter()
            .find(|n| !session_buddy_events::is_valid_name(n))
        {
            Some(bad) => Err(format!(
                "must be on, off or component names separated by commas, got '{bad}'"
            )),
            None if names.is_empty() => Err("must be on, off or component names".into()),
            None => Ok(Self::Components(names)),
        }
    }

    /// Whether sessions of `component` are recorded.
    pub fn covers(&self, component: &str) -> bool {
        match self {
            Self::Off => false,
            Self::All => true,
            Self::Components(c) => c.iter().any(|n| n == component),
        }
    }
}

/// `on`/`true`/`1`/`yes`/`enabled` → true, `off`/`false`/`0`/`no`/`disabled` → false.
pub fn parse_switch(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" | "enabled" => Some(true),
        "off" | "false" | "0" | "no" | "disabled" => Some(false),
        _ => None,
    }
}

/// A file value's text, or why its TOML type is wrong for `key`.
pub(crate) fn file_value_text(key: &Key, raw: &toml::Value) -> Result<String, String> {
    use toml::Value as T;
    match (key.kind, raw) {
        (Kind::Port | Kind::Count(..), T::Integer(n)) => Ok(n.to_string()),
        (Kind::Port, other) => Err(format!(
            "must be an integer from 0 to 65535, got {} {}",
            other.type_str(),
            toml_text(other)
        )),
        (Kind::Count(lo, hi), other) => Err(format!(
            "must be an integer from {lo} to {hi}, got {} {}",
            other.type_str(),
            toml_text(other)
        )),
        (Kind::Days, T::Integer(n)) => Ok(n.to_string()),
        (Kind::Days, T::Float(f)) => Ok(f.to_string()),
        (Kind::Days, other) => Err(format!(
            "must be a number of days, got {} {}",
            other.type_str(),
            toml_text(other)
        )),
        (Kind::HostList, T::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    format!("must be a list of strings, got a {} in it", i.type_str())
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(",")),
        (Kind::HostList, other) => Err(format!(
            "must be a list of strings (e.g. [\"tracker.internal\"]), got {} {}",
            other.type_str(),
            toml_text(other)
        )),
        (Kind::Switch | Kind::Record, T::Boolean(b)) => {
            Ok(if *b { "on" } else { "off" }.to_string())
        }
        (Kind::Record, T::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    format!(
                        "must be a list of component names, got a {} in it",
                        i.type_str()
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(",")),
        (Kind::Duration, other @ (T::Integer(_) | T::Float(_))) => Err(format!(
            "must be a string with a unit (e.g. \"{}s\"), got {} {}",
            toml_text(other),
            other.type_str(),
            toml_text(other)
        )),
        (_, T::String(s)) => Ok(s.clone()),
        (_, other) => Err(format!(
            "must be a string, got {} {}",
            other.type_str(),
            toml_text(other)
        )),
    }
}

/// A TOML value as written in a file (toml's `Display` is not in this build's features).
pub(crate) fn toml_text(v: &toml::Value) -> String {
    use toml::Value as T;
    match v {
        T::String(s) => format!("{s:?}"),
        T::Integer(n) => n.to_string(),
        T::Float(f) => f.to_string(),
        T::Boolean(b) => b.to_string(),
        T::Datetime(d) => d.to_string(),
        T::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_text).collect::<Vec<_>>().join(", ")
        ),
        T::Table(_) => "a table".to_string(),
    }
}

/// Checks a value given as text (from a file, the environment or a flag).
pub(crate) fn check_value(key: &Key, text: &str) -> Result<(), String> {
    let t = text.trim();
    match key.kind {
        Kind::Host | Kind::Path if t.is_empty() => Err("must not be empty".into()),
        Kind::Host | Kind::Path => Ok(()),
        Kind::Port => t
            .parse::<u16>()
            .map(|_| ())
            .map_err(|_| format!("must be a port number from 0 to 65535, got '{t}'")),
        Kind::Count(lo, hi) => match t.parse::<u64>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(()),
            _ => Err(format!("must be an integer from {lo} to {hi}, got '{t}'")),
        },
        Kind::Days => match t.parse::<f64>() {
            Ok(d) if d.is_finite() && d > 0.0 => Ok(()),
            _ => Err(format!("must be a positive number of days, got '{t}'")),
        },
        Kind::DatabaseUrl => {
            let sqlite = t
                .strip_prefix("sqlite://")
                .or_else(|| t.strip_prefix("sqlite:"));
            match sqlite {
                Some("") => Err(format!(
                    "'{t}' names no file; use sqlite:///path/to/sessions.db"
                )),
                Some(_) => Ok(()),
                None if t.starts_with("postgres://") || t.starts_with("postgresql://") => Ok(()),
                None => Err(format!(
                    "'{t}' is not a database URL; use sqlite:///path/to/sessions.db or postgres://…"
                )),
            }
        }
        Kind::Sync => match t {
            "normal" | "full" => Ok(()),
            other => Err(format!("must be normal or full, got '{other}'")),
        },
        Kind::HostList => match t
            .split(',')
            .map(str::trim)
            .find(|h| h.contains(char::is_whitespace))
        {
            Some(h) => Err(format!("'{h}' is not a host name")),
            None => Ok(()),
        },
        Kind::Duration => {
            let d = parse_duration(t)?;
            if d < Duration::from_secs(1) {
                Err(format!("must be at least 1s, got '{t}'"))
            } else {
                Ok(())
            }
        }
        Kind::Url => {
            let rest = t
                .strip_prefix("http://")
                .or_else(|| t.strip_prefix("https://"))
                .ok_or_else(|| format!("must be an http:// or https:// URL, got '{t}'"))?;
            if rest.trim_end_matches('/').is_empty() {
                Err(format!("'{t}' names no host"))
            } else {
                Ok(())
            }
        }
        Kind::Switch => match parse_switch(t) {
            Some(_) => Ok(()),
            None => Err(format!("must be on or off, got '{t}'")),
        },
        Kind::Record => RecordRule::parse(t).map(|_| ()),
    }
}
