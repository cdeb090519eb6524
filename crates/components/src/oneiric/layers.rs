//! The product's layered configuration: defaults < system file < user file < project file <
//! `SESSION_BUDDY_*` environment < flags, with the layer that set each value.
//!
//! Everything here takes its inputs ([`Inputs`]) explicitly, so tests never touch the process
//! environment or the working directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One layer, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Layer {
    Default,
    System,
    User,
    Project,
    Env,
    Flag,
}

impl Layer {
    pub(crate) const ALL: [Layer; 6] = [
        Layer::Default,
        Layer::System,
        Layer::User,
        Layer::Project,
        Layer::Env,
        Layer::Flag,
    ];

    pub(crate) fn name(self) -> &'static str {
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

/// What a key's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    Port,
    Path,
    DatabaseUrl,
    Sync,
    HostList,
    Duration,
    Url,
    Switch,
}

/// A configuration key: `section.name` in the files, `env` in the environment.
#[derive(Debug)]
pub(crate) struct Key {
    pub(crate) name: &'static str,
    pub(crate) env: &'static str,
    kind: Kind,
}

impl Key {
    fn section(&self) -> &'static str {
        self.name.split_once('.').map_or("", |(s, _)| s)
    }

    fn field(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(_, f)| f)
    }
}

/// The server's keys (the `[server]` section `session-buddy serve` reads) and the client's.
pub(crate) const KEYS: &[Key] = &[
    Key {
        name: "server.host",
        env: "SESSION_BUDDY_HOST",
        kind: Kind::Host,
    },
    Key {
        name: "server.port",
        env: "SESSION_BUDDY_PORT",
        kind: Kind::Port,
    },
    Key {
        name: "server.db_path",
        env: "SESSION_BUDDY_DB_PATH",
        kind: Kind::Path,
    },
    Key {
        name: "server.database_url",
        env: "SESSION_BUDDY_DATABASE_URL",
        kind: Kind::DatabaseUrl,
    },
    Key {
        name: "server.sync",
        env: "SESSION_BUDDY_SYNC",
        kind: Kind::Sync,
    },
    Key {
        name: "server.allowed_hosts",
        env: "SESSION_BUDDY_ALLOWED_HOSTS",
        kind: Kind::HostList,
    },
    Key {
        name: "server.session_ttl",
        env: "SESSION_BUDDY_SESSION_TTL",
        kind: Kind::Duration,
    },
    Key {
        name: "server.legacy_session_ttl",
        env: "SESSION_BUDDY_LEGACY_SESSION_TTL",
        kind: Kind::Duration,
    },
    Key {
        name: "client.url",
        env: "SESSION_BUDDY_URL",
        kind: Kind::Url,
    },
    Key {
        name: "client.tracking",
        env: "SESSION_BUDDY_TRACKING",
        kind: Kind::Switch,
    },
];

/// `SESSION_BUDDY_*` variables that are not configuration keys but are known to the product.
const OTHER_ENV: &[&str] = &[
    "SESSION_BUDDY_HOME",
    "SESSION_BUDDY_CONFIG",
    "SESSION_BUDDY_SYSTEM_CONFIG",
    "SESSION_BUDDY_TOKEN",
    "SESSION_BUDDY_SECRET",
    "SESSION_BUDDY_PREVIOUS_SECRET",
    "SESSION_BUDDY_LOG",
    "SESSION_BUDDY_CA_CERT",
    "SESSION_BUDDY_TLS_CERT",
    "SESSION_BUDDY_TLS_KEY",
    "SESSION_BUDDY_DB_POOL_SIZE",
    "SESSION_BUDDY_RETENTION_DAYS",
    "SESSION_BUDDY_RATE_LIMIT",
    // Set by the detached sender on the child it hands over to.
    "SESSION_BUDDY_DETACHED",
];

/// The default system file, overridable with `SESSION_BUDDY_SYSTEM_CONFIG`.
const SYSTEM_FILE: &str = "/etc/session-buddy/config.toml";
/// The project file, searched from the working directory upward.
pub(crate) const PROJECT_FILE: &str = ".session-buddy.toml";

/// Finds a key by its full name (`server.port`) or its field name (`port`, `url`).
pub(crate) fn find_key(name: &str) -> Option<&'static Key> {
    KEYS.iter()
        .find(|k| k.name == name)
        .or_else(|| KEYS.iter().find(|k| k.field() == name))
}

pub(crate) fn known_keys() -> String {
    KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// What the layers are read from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inputs {
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) cwd: PathBuf,
    pub(crate) flags: Vec<(&'static Key, String)>,
}

impl Inputs {
    /// The process environment (its UTF-8 variables) and working directory.
    pub(crate) fn from_process(flags: Vec<(&'static Key, String)>) -> Result<Self, String> {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read the working directory: {e}"))?;
        Ok(Self { env, cwd, flags })
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `$SESSION_BUDDY_HOME`, else `~/.session-buddy`.
    pub(crate) fn home(&self) -> PathBuf {
        if let Some(h) = self.var("SESSION_BUDDY_HOME") {
            return PathBuf::from(h);
        }
        PathBuf::from(self.var("HOME").unwrap_or(".")).join(".session-buddy")
    }

    fn system_file(&self) -> PathBuf {
        PathBuf::from(
            self.var("SESSION_BUDDY_SYSTEM_CONFIG")
                .unwrap_or(SYSTEM_FILE),
        )
    }

    /// The file `session-buddy serve` reads: `$SESSION_BUDDY_CONFIG`, else
    /// `$SESSION_BUDDY_HOME/config.toml`.
    fn user_file(&self) -> PathBuf {
        match self.var("SESSION_BUDDY_CONFIG") {
            Some(p) => PathBuf::from(p),
            None => self.home().join("config.toml"),
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
pub(crate) fn parse_flags(args: &[String]) -> Result<Vec<(&'static Key, String)>, String> {
    args.iter()
        .map(|arg| {
            let (k, v) = arg
                .split_once('=')
                .ok_or_else(|| format!("'{arg}' is not key=value (e.g. port=9000)"))?;
            let key = find_key(k.trim())
                .ok_or_else(|| format!("unknown key '{k}'; known: {}", known_keys()))?;
            Ok((key, v.trim().to_string()))
        })
        .collect()
}

/// A value as one layer has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) text: String,
    pub(crate) valid: bool,
}

/// Whether a layer's file exists and could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileState {
    /// Not a file layer.
    NotAFile,
    Absent,
    Loaded,
    /// Present but unreadable or not TOML: the message.
    Broken(String),
}

/// One layer's values.
#[derive(Debug, Clone)]
pub(crate) struct LayerValues {
    pub(crate) layer: Layer,
    /// The file's path, or a description of where the values came from.
    pub(crate) origin: String,
    pub(crate) state: FileState,
    pub(crate) values: BTreeMap<&'static str, Value>,
}

/// Something wrong in a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) layer: Layer,
    pub(crate) origin: String,
    pub(crate) message: String,
}

/// Every layer, read now.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) layers: Vec<LayerValues>,
    /// Unknown keys, bad types, bad values: the configuration is invalid.
    pub(crate) problems: Vec<Problem>,
    /// Worth knowing, not invalid (e.g. an unknown `SESSION_BUDDY_*` variable).
    pub(crate) warnings: Vec<Problem>,
}

/// The effective value of every key and the layer that set it.
pub(crate) type Snapshot = BTreeMap<&'static str, (String, Layer)>;

impl Resolved {
    pub(crate) fn layer(&self, layer: Layer) -> Option<&LayerValues> {
        self.layers.iter().find(|l| l.layer == layer)
    }

    /// The topmost layer's value for `key`.
    pub(crate) fn effective(&self, key: &str) -> Option<(&Value, Layer)> {
        self.layers
            .iter()
            .rev()
            .find_map(|l| l.values.get(key).map(|v| (v, l.layer)))
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        KEYS.iter()
            .filter_map(|k| {
                self.effective(k.name)
                    .map(|(v, layer)| (k.name, (v.text.clone(), layer)))
            })
            .collect()
    }

    /// `env SESSION_BUDDY_PORT`, `user`, … for the layer that set `key`.
    pub(crate) fn set_by(&self, key: &Key) -> String {
        match self.effective(key.name) {
            Some((_, Layer::Env)) => format!("env {}", key.env),
            Some((_, layer)) => layer.name().to_string(),
            None => "-".to_string(),
        }
    }
}

/// Reads every layer.
pub(crate) fn load(inputs: &Inputs) -> Resolved {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut layers = vec![defaults(inputs)];
    let project = inputs.project_file();
    let files = [
        (Layer::System, Some(inputs.system_file())),
        (Layer::User, Some(inputs.user_file())),
        (Layer::Project, project),
    ];
    for (layer, path) in files {
        let Some(path) = path else {
            layers.push(LayerValues {
                layer,
                origin: format!("{PROJECT_FILE} (none from {} upward)", inputs.cwd.display()),
                state: FileState::Absent,
                values: BTreeMap::new(),
            });
            continue;
        };
        layers.push(read_file(layer, &path, &mut problems));
    }
    layers.push(read_env(inputs, &mut problems, &mut warnings));
    layers.push(read_flags(inputs, &mut problems));
    Resolved {
        layers,
        problems,
        warnings,
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
        ("client.url", "http://127.0.0.1:8678".to_string()),
        ("client.tracking", "on".to_string()),
    ];
    LayerValues {
        layer: Layer::Default,
        origin: "built in".to_string(),
        state: FileState::NotAFile,
        values: values
            .into_iter()
            .map(|(k, text)| (k, Value { text, valid: true }))
            .collect(),
    }
}

fn read_file(layer: Layer, path: &Path, problems: &mut Vec<Problem>) -> LayerValues {
    let origin = path.display().to_string();
    let mut lv = LayerValues {
        layer,
        origin: origin.clone(),
        state: FileState::Loaded,
        values: BTreeMap::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            lv.state = FileState::Absent;
            return lv;
        }
        Err(e) => {
            let message = format!("cannot read the file: {e}");
            lv.state = FileState::Broken(message.clone());
            problems.push(Problem {
                layer,
                origin,
                message,
            });
            return lv;
        }
    };
    let mut push = |message: String| {
        problems.push(Problem {
            layer,
            origin: origin.clone(),
            message,
        })
    };
    let table = match text.parse::<toml::Table>() {
        Ok(t) => t,
        Err(e) => {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let message = match line {
                Some(n) => format!("not valid TOML (line {n}): {}", e.message()),
                None => format!("not valid TOML: {}", e.message()),
            };
            lv.state = FileState::Broken(message.clone());
            push(message);
            return lv;
        }
    };
    for (section, body) in &table {
        if !KEYS.iter().any(|k| k.section() == section) {
            push(format!(
                "unknown key '{section}' (known sections: [server], [client])"
            ));
            continue;
        }
        let Some(body) = body.as_table() else {
            push(format!("'{section}' must be a table ([{section}])"));
            continue;
        };
        for (field, raw) in body {
            let name = format!("{section}.{field}");
            let Some(key) = KEYS.iter().find(|k| k.name == name) else {
                push(format!("unknown key '{name}'; known: {}", known_keys()));
                continue;
            };
            let (text, error) = match file_value_text(key, raw) {
                Ok(text) => {
                    let error = check_value(key, &text).err();
                    (text, error)
                }
                Err(e) => (toml_text(raw), Some(e)),
            };
            if let Some(e) = &error {
                push(format!("{}: {e}", key.name));
            }
            lv.values.insert(
                key.name,
                Value {
                    text,
                    valid: error.is_none(),
                },
            );
        }
    }
    lv
}

/// A file value's text, or why its TOML type is wrong for `key`.
fn file_value_text(key: &Key, raw: &toml::Value) -> Result<String, String> {
    use toml::Value as T;
    match (key.kind, raw) {
        (Kind::Port, T::Integer(n)) => Ok(n.to_string()),
        (Kind::Port, other) => Err(format!(
            "must be an integer from 0 to 65535, got {} {}",
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
        (Kind::Switch, T::Boolean(b)) => Ok(if *b { "on" } else { "off" }.to_string()),
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
fn toml_text(v: &toml::Value) -> String {
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
fn check_value(key: &Key, text: &str) -> Result<(), String> {
    let t = text.trim();
    match key.kind {
        Kind::Host | Kind::Path if t.is_empty() => Err("must not be empty".into()),
        Kind::Host | Kind::Path => Ok(()),
        Kind::Port => t
            .parse::<u16>()
            .map(|_| ())
            .map_err(|_| format!("must be a port number from 0 to 65535, got '{t}'")),
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
        Kind::Switch => match t.to_ascii_lowercase().as_str() {
            "on" | "off" | "true" | "false" | "1" | "0" | "yes" | "no" | "enabled" | "disabled" => {
                Ok(())
            }
            _ => Err(format!("must be on or off, got '{t}'")),
        },
    }
}

fn read_env(
    inputs: &Inputs,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> LayerValues {
    let origin = "SESSION_BUDDY_* environment".to_string();
    let mut values = BTreeMap::new();
    for key in KEYS {
        if let Some(text) = inputs.var(key.env) {
            let error = check_value(key, text).err();
            if let Some(e) = &error {
                problems.push(Problem {
                    layer: Layer::Env,
                    origin: key.env.to_string(),
                    message: format!("{}: {e}", key.name),
                });
            }
            values.insert(
                key.name,
                Value {
                    text: text.to_string(),
                    valid: error.is_none(),
                },
            );
        }
    }
    for name in inputs.env.keys() {
        let known = KEYS.iter().any(|k| k.env == name) || OTHER_ENV.contains(&name.as_str());
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
        origin,
        state: FileState::NotAFile,
        values,
    }
}

fn read_flags(inputs: &Inputs, problems: &mut Vec<Problem>) -> LayerValues {
    let mut values = BTreeMap::new();
    for (key, text) in &inputs.flags {
        let error = check_value(key, text).err();
        if let Some(e) = &error {
            problems.push(Problem {
                layer: Layer::Flag,
                origin: format!("{}={text}", key.name),
                message: format!("{}: {e}", key.name),
            });
        }
        values.insert(
            key.name,
            Value {
                text: text.clone(),
                valid: error.is_none(),
            },
        );
    }
    LayerValues {
        layer: Layer::Flag,
        origin: "reload_settings key=value".to_string(),
        state: FileState::NotAFile,
        values,
    }
}

pub(crate) use session_buddy_events::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, text).unwrap();
    }

    /// A system file, a home with a user file, and a project two levels above the cwd.
    struct Fixture {
        _dir: tempfile::TempDir,
        inputs: Inputs,
        system: PathBuf,
        user: PathBuf,
        project: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let system = root.join("etc/config.toml");
        let home = root.join("home/.session-buddy");
        let user = home.join("config.toml");
        let project = root.join("proj/.session-buddy.toml");
        let cwd = root.join("proj/src/deep");
        std::fs::create_dir_all(&cwd).unwrap();
        let env = BTreeMap::from([
            (
                "SESSION_BUDDY_SYSTEM_CONFIG".to_string(),
                system.display().to_string(),
            ),
            ("SESSION_BUDDY_HOME".to_string(), home.display().to_string()),
            ("PATH".to_string(), "/usr/bin".to_string()),
        ]);
        Fixture {
            _dir: dir,
            inputs: Inputs {
                env,
                cwd,
                flags: Vec::new(),
            },
            system,
            user,
            project,
        }
    }

    fn effective(r: &Resolved, key: &str) -> (String, Layer) {
        let (v, l) = r.effective(key).unwrap();
        (v.text.clone(), l)
    }

    #[test]
    fn each_layer_overrides_the_ones_below_and_says_so() {
        let mut f = fixture();
        write(
            &f.system,
            "[server]\nport = 1001\nhost = \"10.0.0.1\"\nsync = \"full\"\nsession_ttl = \"5m\"\n",
        );
        write(
            &f.user,
            "[server]\nport = 1002\nhost = \"10.0.0.2\"\nsync = \"normal\"\n",
        );
        write(
            &f.project,
            "[server]\nport = 1003\nhost = \"10.0.0.3\"\n[client]\nurl = \"http://tracker:1\"\n",
        );
        f.inputs
            .env
            .insert("SESSION_BUDDY_PORT".into(), "1004".into());
        f.inputs.flags = parse_flags(&["port=1005".to_string()]).unwrap();

        let r = load(&f.inputs);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(effective(&r, "server.port"), ("1005".into(), Layer::Flag));
        assert_eq!(
            effective(&r, "server.host"),
            ("10.0.0.3".into(), Layer::Project)
        );
        assert_eq!(effective(&r, "server.sync"), ("normal".into(), Layer::User));
        assert_eq!(
            effective(&r, "server.session_ttl"),
            ("5m".into(), Layer::System)
        );
        assert_eq!(
            effective(&r, "server.legacy_session_ttl"),
            ("24h".into(), Layer::Default)
        );
        assert_eq!(
            effective(&r, "client.url"),
            ("http://tracker:1".into(), Layer::Project)
        );
        // Every layer keeps its own value, for the provenance table.
        let port_of = |layer| r.layer(layer).unwrap().values["server.port"].text.clone();
        assert_eq!(
            Layer::ALL.map(port_of),
            ["8678", "1001", "1002", "1003", "1004", "1005"].map(String::from)
        );
        assert_eq!(r.set_by(find_key("port").unwrap()), "flag");

        f.inputs.flags.clear();
        let r = load(&f.inputs);
        assert_eq!(effective(&r, "server.port"), ("1004".into(), Layer::Env));
        assert_eq!(
            r.set_by(find_key("server.port").unwrap()),
            "env SESSION_BUDDY_PORT"
        );
    }

    #[test]
    fn the_project_file_is_found_upward_and_missing_files_are_absent() {
        let f = fixture();
        let r = load(&f.inputs);
        assert!(r.problems.is_empty());
        for layer in [Layer::System, Layer::User, Layer::Project] {
            assert_eq!(
                r.layer(layer).unwrap().state,
                FileState::Absent,
                "{layer:?}"
            );
        }
        assert_eq!(
            effective(&r, "server.port"),
            ("8678".into(), Layer::Default)
        );
        let home_db = f.user.with_file_name("sessions.db");
        assert_eq!(
            effective(&r, "server.db_path").0,
            home_db.display().to_string()
        );

        write(&f.project, "[server]\nallowed_hosts = [\"a\", \"b\"]\n");
        let r = load(&f.inputs);
        let project = r.layer(Layer::Project).unwrap();
        assert_eq!(project.state, FileState::Loaded);
        assert_eq!(project.origin, f.project.display().to_string());
        assert_eq!(
            effective(&r, "server.allowed_hosts"),
            ("a,b".into(), Layer::Project)
        );
    }

    #[test]
    fn bad_files_report_unknown_keys_types_and_values() {
        let mut f = fixture();
        write(
            &f.user,
            "[server]\nprot = 1\nport = 70000\nsync = \"fast\"\nsession_ttl = 600\nallowed_hosts = \"x\"\n\
             legacy_session_ttl = \"3 weeks\"\n[client]\nurl = \"ftp://x\"\ntracking = \"maybe\"\n[extra]\n",
        );
        write(&f.system, "[server\nport = 1\n");
        f.inputs
            .env
            .insert("SESSION_BUDDY_PORT".into(), "-1".into());
        f.inputs.env.insert("SESSION_BUDDY_PROT".into(), "1".into());
        // Variables the product reads that are not configuration keys are no typos.
        for known in [
            "SESSION_BUDDY_CA_CERT",
            "SESSION_BUDDY_TLS_CERT",
            "SESSION_BUDDY_PREVIOUS_SECRET",
        ] {
            f.inputs.env.insert(known.into(), "x".into());
        }
        let r = load(&f.inputs);
        let messages: Vec<&str> = r.problems.iter().map(|p| p.message.as_str()).collect();
        let has = |needle: &str| {
            assert!(
                messages.iter().any(|m| m.contains(needle)),
                "no problem mentions {needle:?}: {messages:#?}"
            )
        };
        has("not valid TOML (line 1)");
        has("unknown key 'server.prot'");
        has("server.port: must be a port number from 0 to 65535, got '70000'");
        has("server.sync: must be normal or full, got 'fast'");
        has("server.session_ttl: must be a string with a unit");
        has("server.allowed_hosts: must be a list of strings");
        has("server.legacy_session_ttl: '3 weeks' has an unknown unit");
        has("client.url: must be an http:// or https:// URL");
        has("client.tracking: must be on or off");
        has("unknown key 'extra'");
        assert!(
            r.problems
                .iter()
                .any(|p| p.layer == Layer::Env && p.message.contains("'-1'"))
        );
        assert_eq!(messages.len(), 11, "{messages:#?}");
        assert!(matches!(
            r.layer(Layer::System).unwrap().state,
            FileState::Broken(_)
        ));
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].origin, "SESSION_BUDDY_PROT");
        // An invalid value still shows where it was set, marked invalid.
        let (v, layer) = r.effective("server.sync").unwrap();
        assert_eq!(
            (v.text.as_str(), v.valid, layer),
            ("fast", false, Layer::User)
        );
    }

    #[test]
    fn a_valid_file_has_no_problems() {
        let f = fixture();
        write(
            &f.user,
            "[server]\nhost = \"0.0.0.0\"\nport = 0\ndb_path = \"/var/db.sqlite\"\n\
             database_url = \"sqlite:///x.db\"\nsync = \"full\"\nallowed_hosts = []\n\
             session_ttl = \"90s\"\nlegacy_session_ttl = \"2d\"\n[client]\nurl = \"https://t.example/\"\ntracking = false\n",
        );
        let r = load(&f.inputs);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(
            effective(&r, "client.tracking"),
            ("off".into(), Layer::User)
        );
    }

    #[test]
    fn flags_must_be_known_key_value_pairs() {
        assert!(
            parse_flags(&["port".into()])
                .unwrap_err()
                .contains("key=value")
        );
        assert!(
            parse_flags(&["nope=1".into()])
                .unwrap_err()
                .contains("unknown key 'nope'")
        );
        let flags = parse_flags(&["server.sync=full".into(), "url=http://x".into()]).unwrap();
        assert_eq!(flags[0].0.name, "server.sync");
        assert_eq!(flags[1].0.name, "client.url");
    }

    #[test]
    fn durations_parse_like_the_server() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
        let key = find_key("session_ttl").unwrap();
        assert!(
            check_value(key, "500ms")
                .unwrap_err()
                .contains("at least 1s")
        );
    }
}
