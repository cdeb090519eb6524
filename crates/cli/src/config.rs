//! Layered configuration: flag > environment > config file > default, with provenance.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// `$SESSION_BUDDY_HOME`, else `~/.session-buddy`.
pub fn home_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("SESSION_BUDDY_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let user_home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    user_home.join(".session-buddy")
}

/// The config file: `--config`, `$SESSION_BUDDY_CONFIG`, else `$SESSION_BUDDY_HOME/config.toml`.
pub fn config_path(flag: Option<&Path>) -> (PathBuf, bool) {
    if let Some(p) = flag {
        return (p.to_path_buf(), true);
    }
    if let Some(p) = std::env::var_os("SESSION_BUDDY_CONFIG").filter(|p| !p.is_empty()) {
        return (PathBuf::from(p), true);
    }
    (home_dir().join("config.toml"), false)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    /// The client's keys (`url`, `tracking`): the shells read them; the server accepts the
    /// section and ignores it.
    #[allow(dead_code)]
    #[serde(default)]
    pub client: Option<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub db_path: Option<PathBuf>,
    pub database_url: Option<String>,
    pub sync: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
    pub session_ttl: Option<String>,
    pub legacy_session_ttl: Option<String>,
    pub db_pool_size: Option<u16>,
    pub retention_days: Option<u32>,
}

/// Reads the config file; a missing file is an empty config unless it was named explicitly.
pub fn load_file(path: &Path, explicit: bool) -> anyhow::Result<FileConfig> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("config file {} is invalid", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(FileConfig::default())
        }
        Err(e) => bail!("cannot read config file {}: {e}", path.display()),
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    File,
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::File => f.write_str("config file"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A resolved setting.
#[derive(Debug, Clone)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

/// Picks flag > env > file > default.
pub fn resolve<T>(
    flag: Option<T>,
    env: &'static str,
    parse_env: impl Fn(&str) -> anyhow::Result<T>,
    file: Option<T>,
    default: impl FnOnce() -> T,
) -> anyhow::Result<Setting<T>> {
    if let Some(value) = flag {
        return Ok(Setting {
            value,
            source: Source::Flag,
        });
    }
    if let Ok(raw) = std::env::var(env)
        && !raw.is_empty()
    {
        let value = parse_env(&raw).with_context(|| format!("environment variable {env}"))?;
        return Ok(Setting {
            value,
            source: Source::Env(env),
        });
    }
    if let Some(value) = file {
        return Ok(Setting {
            value,
            source: Source::File,
        });
    }
    Ok(Setting {
        value: default(),
        source: Source::Default,
    })
}

pub use session_buddy_events::parse_duration;
