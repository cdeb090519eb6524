//! The six layers: defaults < system file < user file < project file < `SESSION_BUDDY_*`
//! environment < flags, read from explicit [`Inputs`] (so tests never touch the process
//! environment or the working directory), with the layer and file that set each value.
//!
//! Three rules sit on top of plain precedence:
//! - a project file (`.session-buddy.toml`, found from the working directory upward) lives in
//!   a checkout that may not be trusted: it may not say where events and tokens go
//!   (`client.url`, `client.token_file`, `client.ca_cert`) nor switch tracking off; such a key
//!   there is reported (a warning) and ignored;
//! - the system file may pin keys (`pin = ["client.tracking"]`, see [`PINNABLE`]): its value
//!   (or the default) then wins over every layer above it;
//! - `client.url` left at its default is derived from the server's settings
//!   ([`derived_url`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::keys::{KEYS, Key, OTHER_ENV, PINNABLE, check_value, known_keys};

/// One layer, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    Default,
    System,
    User,
    Project,
    Env,
    Flag,
}

impl Layer {
    pub const ALL: [Layer; 6] = [
        Layer::Default,
        Layer::System,
        Layer::User,
        Layer::Project,
        Layer::Env,
        Layer::Flag,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::Default => "default",
            Layer::System => "system",
            Layer::User => "user",
            Layer::Project => "project",
            Layer::Env => "env",
            Layer::Flag => "flag",
        }
    }
}

/// The operator's system file. `SESSION_BUDDY_SYSTEM_CONFIG` names another one only while this
/// one does not exist, so a user cannot step around an operator's pins.
pub const SYSTEM_FILE: &str = "/etc/session-buddy/config.toml";
/// The project file, searched from the working directory upward.
pub const PROJECT_FILE: &str = ".session-buddy.toml";

/// A flag: a key, its value, and how it was given (`--port`, `port=9000`).
#[derive(Debug, Clone)]
pub struct Flag {
    pub key: &'static Key,
    pub value: String,
    pub origin: String,
}

impl Flag {
    pub fn new(key: &'static Key, value: impl Into<String>, origin: impl Into<String>) -> Self {
        Self {
            key,
            value: value.into(),
            origin: origin.into(),
        }
    }
}

/// What the layers are read from.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub flags: Vec<Flag>,
    /// The user file named on the command line (`serve --config FILE`).
    pub config_file: Option<PathBuf>,
    /// [`SYSTEM_FILE`]; tests name a file of their own.
    pub system_file: PathBuf,
}

impl Default for Inputs {
    fn default() -> Self {
        Self {
            env: BTreeMap::new(),
            cwd: PathBuf::from("/"),
            flags: Vec::new(),
            config_file: None,
            system_file: PathBuf::from(SYSTEM_FILE),
        }
    }
}

/// `$SESSION_BUDDY_HOME`, else `$HOME/.session-buddy`: the one place this is decided.
pub fn home_from(var: impl Fn(&str) -> Option<String>) -> PathBuf {
    let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    if let Some(h) = get("SESSION_BUDDY_HOME") {
        return PathBuf::from(h);
    }
    PathBuf::from(get("HOME").unwrap_or_else(|| ".".into())).join(".session-buddy")
}

/// [`home_from`] the process environment.
pub fn process_home() -> PathBuf {
    home_from(|k| std::env::var(k).ok())
}

impl Inputs {
    /// The process environment (its UTF-8 variables) and working directory.
    pub fn from_process(flags: Vec<Flag>) -> Self {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        // Without a working directory there is no project file: search from the root.
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        Self {
            env,
            cwd,
            flags,
            ..Self::default()
        }
    }

    /// Only the variables `var` gives for the names the configuration reads (for a caller
    /// that looks variables up one by one).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>, cwd: PathBuf) -> Self {
        let names = KEYS
            .iter()
            .flat_map(|k| k.env.iter().copied())
            .chain(OTHER_ENV.iter().copied())
            .chain(["HOME", "PATH"]);
        let env = names
            .filter_map(|n| Some((n.to_string(), var(n)?)))
            .collect();
        Self {
            env,
            cwd,
            ..Self::default()
        }
    }

    /// A variable, trimmed; empty counts as unset.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// `$SESSION_BUDDY_HOME`, else `~/.session-buddy` ([`home_from`]).
    pub fn home(&self) -> PathBuf {
        home_from(|k| self.var(k).map(str::to_string))
    }

    /// The system file, and a warning when `SESSION_BUDDY_SYSTEM_CONFIG` is overruled.
    fn system_file(&self) -> (PathBuf, Option<String>) {
        let named = self.var("SESSION_BUDDY_SYSTEM_CONFIG").map(PathBuf::from);
        match named {
            Some(p) if self.system_file.exists() && p != self.system_file => (
                self.system_file.clone(),
                Some(format!(
                    "ignored: {} exists, and the operator's system file cannot be replaced",
                    self.system_file.display()
                )),
            ),
            Some(p) => (p, None),
            None => (self.system_file.clone(), None),
        }
    }

    /// The user file: `--config`, `$SESSION_BUDDY_CONFIG`, else `$SESSION_BUDDY_HOME/config.toml`;
    /// with what named it, when something did.
    fn user_file(&self) -> (PathBuf, Option<&'static str>) {
        if let Some(p) = &self.config_file {
            return (p.clone(), Some("--config"));
        }
        match self.var("SESSION_BUDDY_CONFIG") {
            Some(p) => (PathBuf::from(p), Some("SESSION_BUDDY_CONFIG")),
            None => (self.home().join("config.toml"), None),
        }
    }

    fn project_file(&self) -> Option<PathBuf> {
        self.cwd
            .ancestors()
            .map(|dir| dir.join(PROJECT_FILE))
            .find(|p| p.is_file())
    }
}

/// Parses helper arguments `key=value` (key as `server.port` or `port`).
pub fn parse_flags(args: &[String]) -> Result<Vec<Flag>, String> {
    args.iter()
        .map(|arg| {
            let (k, v) = arg
                .split_once('=')
                .ok_or_else(|| format!("'{arg}' is not key=value (e.g. port=9000)"))?;
            let key = crate::find_key(k.trim())
                .ok_or_else(|| format!("unknown key '{k}'; known: {}", known_keys()))?;
            Ok(Flag::new(key, v.trim(), arg.trim()))
        })
        .collect()
}

/// A value as one layer has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub valid: bool,
    /// Where exactly: the environment variable, the flag as given, or for a default how it
    /// was derived (empty for a built-in default; a file layer's file is the layer's origin).
    pub origin: String,
}

/// Whether a layer's file exists and could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Not a file layer.
    NotAFile,
    Absent,
    Loaded,
    /// Present but unreadable or not TOML: the message.
    Broken(String),
}

/// One layer's values.
#[derive(Debug, Clone)]
pub struct LayerValues {
    pub layer: Layer,
    /// The file's path, or a description of where the values came from.
    pub origin: String,
    pub state: FileState,
    pub values: BTreeMap<&'static str, Value>,
    /// The keys this layer pins (the system file only).
    pub pins: Vec<&'static str>,
}

/// Something wrong in a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub layer: Layer,
    pub origin: String,
    pub message: String,
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub layer: Layer,
    /// The file for a file layer; the variable, the flag, or how a default was derived.
    pub origin: String,
    /// Pinned by the system file: no layer above it can change the value.
    pub pinned: bool,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.layer.name())?;
        if !self.origin.is_empty() {
            write!(f, " {}", self.origin)?;
        }
        if self.pinned {
            f.write_str(", pinned")?;
        }
        Ok(())
    }
}

/// Every layer, read now.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub layers: Vec<LayerValues>,
    /// Unknown keys, bad types, bad values: the configuration is invalid.
    pub problems: Vec<Problem>,
    /// Worth knowing, not invalid: an unknown `SESSION_BUDDY_*` variable, a key a project file
    /// may not set, a value a pin overrules. What they name is ignored.
    pub warnings: Vec<Problem>,
    /// `$SESSION_BUDDY_HOME` as resolved.
    pub home: PathBuf,
    /// The token from `SESSION_BUDDY_TOKEN` (a secret: never a file key, never shown).
    pub env_token: Option<String>,
}

/// The effective value of every key and where it came from.
pub type Snapshot = BTreeMap<&'static str, (String, Source)>;

impl Resolved {
    pub fn layer(&self, layer: Layer) -> Option<&LayerValues> {
        self.layers.iter().find(|l| l.layer == layer)
    }

    fn pinned(&self, key: &str) -> bool {
        self.layer(Layer::System)
            .is_some_and(|l| l.pins.contains(&key))
    }

    fn source(&self, lv: &LayerValues, v: &Value, pinned: bool) -> Source {
        let origin = match lv.state {
            FileState::NotAFile => v.origin.clone(),
            _ => lv.origin.clone(),
        };
        Source {
            layer: lv.layer,
            origin,
            pinned,
        }
    }

    fn pick(&self, key: &str, valid_only: bool) -> Option<(&Value, Source)> {
        self.pick_from(key, valid_only, |_| true)
    }

    /// Like [`pick`](Self::pick), over the layers `include` accepts.
    fn pick_from(
        &self,
        key: &str,
        valid_only: bool,
        include: impl Fn(Layer) -> bool,
    ) -> Option<(&Value, Source)> {
        let pinned = self.pinned(key);
        self.layers
            .iter()
            .rev()
            .filter(|l| include(l.layer))
            .filter(|l| !pinned || l.layer <= Layer::System)
            .find_map(|l| {
                let v = l.values.get(key).filter(|v| v.valid || !valid_only)?;
                // A pin without a value of its own pins the default, and says who pinned it.
                let lv = if pinned {
                    self.layer(Layer::System)?
                } else {
                    l
                };
                Some((v, self.source(lv, v, pinned)))
            })
    }

    /// The value that wins for `key` (valid or not) and where it came from.
    pub fn effective(&self, key: &str) -> Option<(&Value, Source)> {
        self.pick(key, false)
    }

    /// The topmost valid value: what a client uses (an invalid layer is skipped, and reported
    /// by `validate_config`/`config validate`).
    pub fn valid(&self, key: &str) -> Option<(&str, Source)> {
        self.pick(key, true).map(|(v, s)| (v.text.as_str(), s))
    }

    pub fn snapshot(&self) -> Snapshot {
        KEYS.iter()
            .filter_map(|k| {
                self.effective(k.name)
                    .map(|(v, source)| (k.name, (v.text.clone(), source)))
            })
            .collect()
    }
}

/// Reads every layer.
pub fn load(inputs: &Inputs) -> Resolved {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut layers = vec![defaults(inputs)];

    let (system, overruled) = inputs.system_file();
    if let Some(message) = overruled {
        warnings.push(Problem {
            layer: Layer::Env,
            origin: "SESSION_BUDDY_SYSTEM_CONFIG".into(),
            message,
        });
    }
    layers.push(crate::files::read_file(
        Layer::System,
        &system,
        &mut problems,
        &mut warnings,
    ));

    let (user, named_by) = inputs.user_file();
    let lv = crate::files::read_file(Layer::User, &user, &mut problems, &mut warnings);
    if let (FileState::Absent, Some(by)) = (&lv.state, named_by) {
        problems.push(Problem {
            layer: Layer::User,
            origin: lv.origin.clone(),
            message: format!("the config file named by {by} does not exist"),
        });
    }
    layers.push(lv);

    layers.push(match inputs.project_file() {
        Some(path) => crate::files::read_file(Layer::Project, &path, &mut problems, &mut warnings),
        None => LayerValues {
            layer: Layer::Project,
            origin: format!("{PROJECT_FILE} (none from {} up)", inputs.cwd.display()),
            state: FileState::Absent,
            values: BTreeMap::new(),
            pins: Vec::new(),
        },
    });
    layers.push(read_env(inputs, &mut problems, &mut warnings));
    layers.push(read_flags(inputs, &mut problems));
    let mut resolved = Resolved {
        layers,
        problems,
        warnings,
        home: inputs.home(),
        env_token: inputs.var("SESSION_BUDDY_TOKEN").map(str::to_string),
    };
    report_pinned(&mut resolved);
    derive_url(&mut resolved);
    resolved
}

/// A warning for each value above a pin that differs from the pinned one: it is ignored.
fn report_pinned(r: &mut Resolved) {
    let mut found = Vec::new();
    for key in PINNABLE.iter().filter(|k| r.pinned(k)) {
        let Some((pinned, source)) = r.effective(key) else {
            continue;
        };
        for lv in r.layers.iter().filter(|l| l.layer > Layer::System) {
            if let Some(v) = lv.values.get(key)
                && v.text != pinned.text
            {
                let (origin, what) = match lv.state {
                    FileState::NotAFile => (v.origin.clone(), "ignored".to_string()),
                    _ => (lv.origin.clone(), format!("{key} = {} is ignored", v.text)),
                };
                found.push(Problem {
                    layer: lv.layer,
                    origin,
                    message: format!(
                        "{what}: {key} is pinned to {} by the system file {}",
                        pinned.text, source.origin
                    ),
                });
            }
        }
    }
    r.warnings.extend(found);
}

/// `client.url` when no layer sets it: derived from the server's settings, so a client finds
/// a server started with the same configuration. The host is `server.host`, with an
/// unspecified address (`0.0.0.0`, `::`) replaced by loopback; the scheme is `https` when
/// `server.tls_cert` is set; the port is `server.port`.
pub fn derived_url(host: &str, port: &str, tls: bool) -> String {
    let host = host.trim().trim_matches(['[', ']']);
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1".to_string(),
        "::" => "[::1]".to_string(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_string(),
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}:{}", port.trim())
}

fn derive_url(r: &mut Resolved) {
    if r.valid("client.url")
        .is_some_and(|(_, s)| s.layer != Layer::Default)
    {
        return;
    }
    // A project file may not say where events and tokens go, so its `[server]` keys (which
    // `serve` in that checkout does use) never move the clients' URL.
    let trusted = |key: &str| {
        r.pick_from(key, true, |l| l != Layer::Project)
            .map(|(v, s)| (v.text.as_str(), s))
    };
    let (Some((host, host_from)), Some((port, port_from))) =
        (trusted("server.host"), trusted("server.port"))
    else {
        return;
    };
    let tls = trusted("server.tls_cert");
    let url = derived_url(host, port, tls.is_some());
    let mut from: Vec<String> = [("server.host", host_from), ("server.port", port_from)]
        .into_iter()
        .chain(tls.map(|(_, s)| ("server.tls_cert", s)))
        .filter(|(_, s)| s.layer != Layer::Default)
        .map(|(k, s)| format!("{k} ({s})"))
        .collect();
    if from.is_empty() {
        return;
    }
    from.sort();
    let origin = format!("from {}", from.join(", "));
    if let Some(v) = r.layers[0].values.get_mut("client.url") {
        *v = Value {
            text: url,
            valid: true,
            origin,
        };
    }
}

fn defaults(inputs: &Inputs) -> LayerValues {
    let home = inputs.home();
    let values = [
        ("server.host", "127.0.0.1".to_string()),
        ("server.port", "8678".to_string()),
        (
            "server.db_path",
            home.join("sessions.db").display().to_string(),
        ),
        ("server.sync", "normal".to_string()),
        ("server.allowed_hosts", String::new()),
        ("server.session_ttl", "10m".to_string()),
        ("server.legacy_session_ttl", "24h".to_string()),
        ("server.rate_limit", "0".to_string()),
        // PostgreSQL connections in the pool (SQLite has no pool).
        ("server.db_pool_size", "8".to_string()),
        ("client.url", "http://127.0.0.1:8678".to_string()),
        (
            "client.token_file",
            home.join("token").display().to_string(),
        ),
        ("client.tracking", "on".to_string()),
        (
            "client.buffer_max_size",
            crate::DEFAULT_BUFFER_MAX_SIZE.to_string(),
        ),
        (
            "client.buffer_max_age_days",
            crate::DEFAULT_BUFFER_MAX_AGE_DAYS.to_string(),
        ),
    ];
    LayerValues {
        layer: Layer::Default,
        origin: "built in".to_string(),
        state: FileState::NotAFile,
        values: values
            .into_iter()
            .map(|(k, text)| {
                let v = Value {
                    text,
                    valid: true,
                    origin: String::new(),
                };
                (k, v)
            })
            .collect(),
        pins: Vec::new(),
    }
}

fn read_env(
    inputs: &Inputs,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> LayerValues {
    let mut values = BTreeMap::new();
    for key in KEYS {
        let mut given = key
            .env
            .iter()
            .filter_map(|name| Some((*name, inputs.var(name)?)));
        let first = given.clone().next();
        // Of a key's names (SESSION_BUDDY_TRACKING, ONEIRIC_EVENT_BUFFER_ENABLED), one that
        // switches it off wins, as the original's clients did.
        let off = given.find(|(_, v)| crate::parse_switch(v) == Some(false));
        let chosen = if key.kind == crate::keys::Kind::Switch {
            off.or(first)
        } else {
            first
        };
        if let Some((name, text)) = chosen {
            let error = check_value(key, text).err();
            if let Some(e) = &error {
                problems.push(Problem {
                    layer: Layer::Env,
                    origin: name.to_string(),
                    message: format!("{}: {e}", key.name),
                });
            }
            values.insert(
                key.name,
                Value {
                    text: text.to_string(),
                    valid: error.is_none(),
                    origin: format!("{name}={text}"),
                },
            );
        }
    }
    for name in inputs.env.keys() {
        let known = KEYS.iter().any(|k| k.env.contains(&name.as_str()))
            || OTHER_ENV.contains(&name.as_str());
        if name.starts_with("SESSION_BUDDY_") && !known {
            warnings.push(Problem {
                layer: Layer::Env,
                origin: name.clone(),
                message: "unknown environment variable (a typo?); it is ignored".into(),
            });
        }
    }
    LayerValues {
        layer: Layer::Env,
        origin: "SESSION_BUDDY_* environment".to_string(),
        state: FileState::NotAFile,
        values,
        pins: Vec::new(),
    }
}

fn read_flags(inputs: &Inputs, problems: &mut Vec<Problem>) -> LayerValues {
    let mut values = BTreeMap::new();
    for flag in &inputs.flags {
        let error = check_value(flag.key, &flag.value).err();
        if let Some(e) = &error {
            problems.push(Problem {
                layer: Layer::Flag,
                origin: flag.origin.clone(),
                message: format!("{}: {e}", flag.key.name),
            });
        }
        values.insert(
            flag.key.name,
            Value {
                text: flag.value.clone(),
                valid: error.is_none(),
                origin: flag.origin.clone(),
            },
        );
    }
    LayerValues {
        layer: Layer::Flag,
        origin: "command line".to_string(),
        state: FileState::NotAFile,
        values,
        pins: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
