//! What a client (a shell, `track`, a query command) takes from the layers.

use std::path::PathBuf;
use std::time::Duration;

use crate::layers::{Layer, Resolved, Source};

/// A resolved value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

/// The clients' keys, typed. Invalid values (reported by `validate_config`/`config validate`)
/// are skipped for the layer below them, except the URL: a client never fails on its
/// configuration, and never sends somewhere else than the URL it was given.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub home: PathBuf,
    /// `SESSION_BUDDY_URL`; else `[client] url` from the files; else derived from
    /// `server.host`/`server.port`/`server.tls_cert` ([`crate::derived_url`]).
    pub url: Setting<String>,
    pub token_file: Setting<PathBuf>,
    pub ca_cert: Option<Setting<PathBuf>>,
    pub tracking: Setting<bool>,
    pub buffer_max_size: Setting<u64>,
    pub buffer_max_age: Setting<Duration>,
    /// Which sessions are recorded without `--record` (`client.record`, may be pinned on).
    pub record: Setting<crate::keys::RecordRule>,
}

fn built_in() -> Source {
    Source {
        layer: Layer::Default,
        origin: String::new(),
        pinned: false,
    }
}

impl ClientSettings {
    pub fn from_resolved(r: &Resolved) -> Self {
        let text = |key: &str| r.valid(key);
        let typed = |key: &str, parse: &dyn Fn(&str) -> Option<u64>| {
            text(key).and_then(|(t, source)| Some((parse(t)?, source)))
        };
        // The URL as written even when it is invalid (e.g. no scheme): the HTTP client then
        // fails every call naming it and saying how to write it, rather than quietly sending
        // elsewhere.
        let url = match r.effective("client.url").map(|(v, s)| (v.text.as_str(), s)) {
            Some((t, source)) => Setting {
                value: t.trim().trim_end_matches('/').to_string(),
                source,
            },
            None => Setting {
                value: "http://127.0.0.1:8678".into(),
                source: built_in(),
            },
        };
        let path = |key: &str| {
            text(key).map(|(t, source)| Setting {
                value: PathBuf::from(t),
                source,
            })
        };
        let tracking = match text("client.tracking") {
            Some((t, source)) => Setting {
                value: crate::parse_switch(t).unwrap_or(true),
                source,
            },
            None => Setting {
                value: true,
                source: built_in(),
            },
        };
        let (max_size, size_from) = typed("client.buffer_max_size", &|t| t.trim().parse().ok())
            .unwrap_or((crate::DEFAULT_BUFFER_MAX_SIZE, built_in()));
        let days = text("client.buffer_max_age_days")
            .and_then(|(t, s)| Some((t.trim().parse::<f64>().ok()?, s)))
            .filter(|(d, _)| d.is_finite() && *d > 0.0);
        let (age, age_from) = match days {
            Some((d, s)) => (Duration::from_secs_f64((d * 86_400.0).min(1e12)), s),
            None => (
                Duration::from_secs(crate::DEFAULT_BUFFER_MAX_AGE_DAYS * 86_400),
                built_in(),
            ),
        };
        Self {
            home: r.home.clone(),
            url,
            token_file: path("client.token_file").unwrap_or_else(|| Setting {
                value: r.home.join("token"),
                source: built_in(),
            }),
            ca_cert: path("client.ca_cert"),
            tracking,
            buffer_max_size: Setting {
                value: max_size,
                source: size_from,
            },
            buffer_max_age: Setting {
                value: age,
                source: age_from,
            },
            record: match text("client.record")
                .and_then(|(t, s)| Some((crate::keys::RecordRule::parse(t).ok()?, s)))
            {
                Some((value, source)) => Setting { value, source },
                None => Setting {
                    value: crate::keys::RecordRule::Off,
                    source: built_in(),
                },
            },
        }
    }

    /// Why tracking is off, as the banner says it: `SESSION_BUDDY_TRACKING=off`,
    /// `client.tracking = off in /path/config.toml`, `pinned off by the system file …`.
    pub fn disabled_reason(&self) -> Option<String> {
        if self.tracking.value {
            return None;
        }
        let s = &self.tracking.source;
        Some(match s.layer {
            Layer::Env | Layer::Flag => s.origin.clone(),
            _ if s.pinned => format!("pinned off by the system file {}", s.origin),
            _ => format!(
                "client.tracking = off in the {} file {}",
                s.layer.name(),
                s.origin
            ),
        })
    }

    /// `pinned by the system file …` when the system file pins tracking.
    pub fn tracking_pin(&self) -> Option<String> {
        let s = &self.tracking.source;
        s.pinned
            .then(|| format!("pinned by the system file {}", s.origin))
    }
}
