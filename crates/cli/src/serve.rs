//! `session-buddy serve` and `config show|validate`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use session_buddy_events::auth::secret_problem;
use session_buddy_server::auth::AuthOptions;
use session_buddy_server::{AppState, ServerOptions};
use session_buddy_store_sqlite::SyncMode;

use session_buddy_config::{Flag, Inputs, Layer, Setting, find_key};

use crate::config::parse_duration;
use crate::database::Create;
use crate::{CmdResult, Failure};

#[derive(Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on [env SESSION_BUDDY_HOST; default 127.0.0.1].
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on; 0 picks a free one [env SESSION_BUDDY_PORT; default 8678].
    #[arg(long)]
    port: Option<u16>,
    /// SQLite database file [env SESSION_BUDDY_DB_PATH; default $SESSION_BUDDY_HOME/sessions.db].
    #[arg(long)]
    db_path: Option<PathBuf>,
    /// Database URL (sqlite:///path or postgres://user@host:port/db) [env SESSION_BUDDY_DATABASE_URL].
    #[arg(long)]
    database_url: Option<String>,
    /// PostgreSQL: connections in the pool [env SESSION_BUDDY_DB_POOL_SIZE; default 8].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1000))]
    db_pool_size: Option<u16>,
    /// SQLite: MiB of page cache for all the database's connections together (the writer's
    /// up to 8 MiB, the rest shared by 8 readers); the operating system caches the file
    /// besides [env SESSION_BUDDY_DB_CACHE_MIB; default 32].
    #[arg(long)]
    db_cache_mib: Option<u64>,
    /// Delete sessions that are over and started more than N days ago, with their events
    /// (hourly, in batches) [env SESSION_BUDDY_RETENTION_DAYS; default: keep everything].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
    retention_days: Option<u32>,
    /// Store terminal recordings (`output` chunks); `--accept-recordings=false` refuses them,
    /// and senders keep them for later [env SESSION_BUDDY_ACCEPT_RECORDINGS; default true].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    accept_recordings: Option<bool>,
    /// Bytes one session's recording holds at most; the rest is cut, marked truncated
    /// [env SESSION_BUDDY_RECORDING_MAX_BYTES; default 67108864 (64 MiB)].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    recording_max_bytes: Option<u64>,
    /// Delete recordings whose last chunk is older than N days (hourly); the sessions stay
    /// [env SESSION_BUDDY_RECORDING_RETENTION_DAYS; default: as long as their sessions].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
    recording_retention_days: Option<u32>,
    /// `normal`: durable against a crash of the server; `full`: against power loss too
    /// [env SESSION_BUDDY_SYNC].
    #[arg(long, value_parser = ["normal", "full"])]
    sync: Option<String>,
    /// A host name besides loopback that MCP clients may use in the Host header (repeatable)
    /// [env SESSION_BUDDY_ALLOWED_HOSTS, comma-separated].
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
    /// A session that announced heartbeats is abandoned after this long without an event,
    /// e.g. 3s, 10m [env SESSION_BUDDY_SESSION_TTL; default 10m].
    #[arg(long, value_parser = duration_text)]
    session_ttl: Option<String>,
    /// The same for sessions that announced none, such as the original's 1.0 clients
    /// [env SESSION_BUDDY_LEGACY_SESSION_TTL; default 24h].
    #[arg(long, value_parser = duration_text)]
    legacy_session_ttl: Option<String>,
    /// Config file [env SESSION_BUDDY_CONFIG; default $SESSION_BUDDY_HOME/config.toml].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen beyond loopback even without SESSION_BUDDY_SECRET: anyone who can reach the port
    /// can then write and read every session.
    #[arg(long)]
    allow_unauthenticated: bool,
    /// With a secret, `/metrics` needs a token with the `read` scope (public by default).
    #[arg(long)]
    metrics_require_auth: bool,
    /// Requests per second allowed per token (burst twice that); 0 disables
    /// [env SESSION_BUDDY_RATE_LIMIT; default 0].
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key) [env SESSION_BUDDY_TLS_CERT].
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert [env SESSION_BUDDY_TLS_KEY].
    #[arg(long)]
    tls_key: Option<PathBuf>,
}

/// A duration flag as given, once it parses.
fn duration_text(s: &str) -> Result<String, String> {
    parse_duration(s).map(|_| s.to_string())
}

/// The server's effective configuration.
struct Resolved {
    layers: session_buddy_config::Resolved,
    host: Setting<String>,
    port: Setting<u16>,
    database: Setting<Database>,
    sync: Setting<SyncMode>,
    allowed_hosts: Setting<Vec<String>>,
    session_ttl: Setting<Duration>,
    legacy_session_ttl: Setting<Duration>,
    auth: AuthOptions,
    db_pool_size: usize,
    db_cache_mib: u64,
    retention: Option<Duration>,
    recordings: session_buddy_server::recording::RecordingOptions,
    tls: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, Clone)]
pub(crate) enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Database::Postgres(url) => write!(f, "{}", crate::database::redact(url)),
        }
    }
}

pub(crate) fn parse_database_url(url: &str) -> anyhow::Result<Database> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            bail!("database URL '{url}' names no file; use sqlite:///path/to/sessions.db");
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url.to_string()));
    }
    bail!(
        "database URL '{url}' is not supported; use sqlite:///path/to/sessions.db or --db-path FILE"
    )
}

fn parse_sync(s: &str) -> anyhow::Result<SyncMode> {
    match s {
        "normal" => Ok(SyncMode::Normal),
        "full" => Ok(SyncMode::Full),
        other => bail!("sync mode '{other}' is not one of: normal, full"),
    }
}

/// The serve flags as the flag layer.
fn flags(args: &ServeArgs) -> Vec<Flag> {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let given: [(&str, &str, Option<String>); 17] = [
        ("server.host", "--host", args.host.clone()),
        ("server.port", "--port", args.port.map(|p| p.to_string())),
        ("server.db_path", "--db-path", path(&args.db_path)),
        (
            "server.database_url",
            "--database-url",
            args.database_url.clone(),
        ),
        ("server.sync", "--sync", args.sync.clone()),
        (
            "server.allowed_hosts",
            "--allowed-host",
            (!args.allowed_hosts.is_empty()).then(|| args.allowed_hosts.join(",")),
        ),
        (
            "server.session_ttl",
            "--session-ttl",
            args.session_ttl.clone(),
        ),
        (
            "server.legacy_session_ttl",
            "--legacy-session-ttl",
            args.legacy_session_ttl.clone(),
        ),
        (
            "server.db_pool_size",
            "--db-pool-size",
            args.db_pool_size.map(|n| n.to_string()),
        ),
        (
            "server.db_cache_mib",
            "--db-cache-mib",
            args.db_cache_mib.map(|n| n.to_string()),
        ),
        (
            "server.retention_days",
            "--retention-days",
            args.retention_days.map(|n| n.to_string()),
        ),
        (
            "server.rate_limit",
            "--rate-limit",
            args.rate_limit.map(|n| n.to_string()),
        ),
        (
            "server.accept_recordings",
            "--accept-recordings",
            args.accept_recordings
                .map(|b| if b { "on" } else { "off" }.to_string()),
        ),
        (
            "server.recording_max_bytes",
            "--recording-max-bytes",
            args.recording_max_bytes.map(|n| n.to_string()),
        ),
        (
            "server.recording_retention_days",
            "--recording-retention-days",
            args.recording_retention_days.map(|n| n.to_string()),
        ),
        ("server.tls_cert", "--tls-cert", path(&args.tls_cert)),
        ("server.tls_key", "--tls-key", path(&args.tls_key)),
    ];
    given
        .into_iter()
        .filter_map(|(name, flag, value)| Some(Flag::new(find_key(name)?, value?, flag)))
        .collect()
}

/// Every layer, with the serve flags on top.
fn layers(args: &ServeArgs) -> session_buddy_config::Resolved {
    let mut inputs = Inputs::from_process(flags(args));
    inputs.config_file = args.config.clone();
    session_buddy_config::load(&inputs)
}

/// The value that wins for `key`, parsed; `None` when no layer sets it.
fn typed<T>(
    r: &session_buddy_config::Resolved,
    key: &str,
    parse: impl Fn(&str) -> anyhow::Result<T>,
) -> anyhow::Result<Option<Setting<T>>> {
    let Some((v, source)) = r.effective(key) else {
        return Ok(None);
    };
    let value = parse(v.text.trim()).with_context(|| format!("{key} ({source})"))?;
    Ok(Some(Setting { value, source }))
}

/// A key every build has a default for.
fn required<T>(
    r: &session_buddy_config::Resolved,
    key: &str,
    parse: impl Fn(&str) -> anyhow::Result<T>,
) -> anyhow::Result<Setting<T>> {
    typed(r, key, parse)?.ok_or_else(|| anyhow!("{key} has no value (a default is missing)"))
}

fn number<T: std::str::FromStr>(s: &str) -> anyhow::Result<T> {
    s.parse::<T>()
        .map_err(|_| anyhow!("'{s}' is not a number in range"))
}

fn resolve_all(args: &ServeArgs) -> anyhow::Result<Resolved> {
    if args.db_path.is_some() && args.database_url.is_some() {
        bail!("give either --db-path or --database-url, not both");
    }
    let layers = layers(args);
    if !layers.problems.is_empty() {
        let list: Vec<String> = layers
            .problems
            .iter()
            .map(session_buddy_config::problem_line)
            .collect();
        bail!(
            "the configuration has {} problem(s): {}; see `session-buddy config validate`",
            list.len(),
            list.join("; ")
        );
    }
    let r = &layers;
    let host = required(r, "server.host", |s| Ok(s.to_string()))?;
    let port = required(r, "server.port", number::<u16>)?;
    // server.db_path and server.database_url name the same thing: the higher layer wins, and
    // database_url within one layer.
    let db_path = required(r, "server.db_path", |s| {
        Ok(Database::Sqlite(PathBuf::from(s)))
    })?;
    let database = match typed(r, "server.database_url", parse_database_url)? {
        Some(url) if url.source.layer >= db_path.source.layer => url,
        _ => db_path,
    };
    let sync = required(r, "server.sync", parse_sync)?;
    let allowed_hosts = required(r, "server.allowed_hosts", |s| {
        Ok(s.split(',')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect())
    })?;
    let ttl = |s: &str| parse_duration(s).map_err(|e| anyhow!(e));
    let session_ttl = required(r, "server.session_ttl", ttl)?;
    let legacy_session_ttl = required(r, "server.legacy_session_ttl", ttl)?;
    let rate_limit = required(r, "server.rate_limit", number::<u32>)?;
    let db_pool_size = required(r, "server.db_pool_size", number::<usize>)?.value;
    let db_cache_mib = typed(r, "server.db_cache_mib", number::<u64>)?
        .map_or(session_buddy_store_sqlite::DEFAULT_CACHE_MIB, |s| s.value);
    let retention = typed(r, "server.retention_days", number::<u64>)?
        .map(|d| Duration::from_secs(d.value * 86_400));
    let recordings = session_buddy_server::recording::RecordingOptions {
        accept: typed(r, "server.accept_recordings", |t| {
            session_buddy_config::parse_switch(t).ok_or_else(|| anyhow!("must be on or off"))
        })?
        .is_none_or(|s| s.value),
        max_bytes: typed(r, "server.recording_max_bytes", number::<u64>)?.map_or(
            session_buddy_events::recording::DEFAULT_RECORDING_MAX_BYTES,
            |s| s.value,
        ),
        retention: typed(r, "server.recording_retention_days", number::<u64>)?
            .map(|d| Duration::from_secs(d.value * 86_400)),
    };
    let path = |s: &str| Ok(PathBuf::from(s));
    let tls = match (
        typed(r, "server.tls_cert", path)?,
        typed(r, "server.tls_key", path)?,
    ) {
        (Some(cert), Some(key)) => Some((cert.value, key.value)),
        (None, None) => None,
        (Some(c), None) => bail!("server.tls_cert ({}) needs server.tls_key too", c.source),
        (None, Some(k)) => bail!("server.tls_key ({}) needs server.tls_cert too", k.source),
    };
    let auth = auth_options(args, rate_limit.value)?;
    Ok(Resolved {
        layers,
        auth,
        db_pool_size,
        db_cache_mib,
        retention,
        recordings,
        tls,
        session_ttl,
        legacy_session_ttl,
        host,
        port,
        database,
        sync,
        allowed_hosts,
    })
}

/// The secrets from the environment, checked: a weak secret stops the server.
fn auth_options(args: &ServeArgs, rate_limit: u32) -> anyhow::Result<AuthOptions> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let secret = env("SESSION_BUDDY_SECRET");
    let previous_secret = env("SESSION_BUDDY_PREVIOUS_SECRET");
    if let Some(problem) = secret.as_deref().and_then(secret_problem) {
        bail!("{problem}; the server will not start with it");
    }
    if let Some(problem) = previous_secret.as_deref().and_then(secret_problem) {
        bail!(
            "SESSION_BUDDY_PREVIOUS_SECRET: {}",
            problem.replace("SESSION_BUDDY_SECRET ", "it ")
        );
    }
    if previous_secret.is_some() && secret.is_none() {
        bail!(
            "SESSION_BUDDY_PREVIOUS_SECRET is set but SESSION_BUDDY_SECRET is not; the previous \
             secret only verifies tokens during a rotation to a new SESSION_BUDDY_SECRET"
        );
    }
    Ok(AuthOptions {
        secret,
        previous_secret,
        metrics_require_auth: args.metrics_require_auth,
        rate_limit,
        ..AuthOptions::default()
    })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn run(args: ServeArgs) -> CmdResult {
    let cfg = resolve_all(&args)?;
    // What the layers ignore (an unknown variable, a key a project file may not set, a value a
    // pin overrules), said once at start as `config validate` says it.
    for w in &cfg.layers.warnings {
        eprintln!("warning: {}", session_buddy_config::problem_line(w));
    }
    if cfg.auth.secret.is_none() && !is_loopback(&cfg.host.value) {
        if !args.allow_unauthenticated {
            return Err(Failure::Error(anyhow!(
                "refusing to listen on {} ({}) without authentication: without a secret the \
                 server serves loopback only. Set a secret of at least 32 random characters, \
                 e.g. `export SESSION_BUDDY_SECRET=$(openssl rand -hex 32)`, and give clients \
                 tokens from `session-buddy token create`; or listen on 127.0.0.1; or pass \
                 --allow-unauthenticated to accept that anyone who reaches the port can read \
                 and write every session",
                cfg.host.value,
                cfg.host.source
            )));
        }
        eprintln!(
            "WARNING: serving {} WITHOUT AUTHENTICATION (--allow-unauthenticated): anyone who \
             can reach this port can read and write every session; set SESSION_BUDDY_SECRET",
            cfg.host.value
        );
    }
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let tls = match &cfg.tls {
        Some((cert, key)) => {
            Some(session_buddy_server::tls::load(cert, key).map_err(anyhow::Error::from)?)
        }
        None => None,
    };
    runtime
        .block_on(serve_async(cfg, tls))
        .map_err(Failure::Error)
}

async fn serve_async(
    cfg: Resolved,
    tls: Option<std::sync::Arc<session_buddy_server::tls::ServerConfig>>,
) -> anyhow::Result<()> {
    // The default home is made on first start; a directory someone named must exist.
    let create = match cfg.database.source.layer {
        Layer::Default => Create::FileAndDirectories,
        _ => Create::File,
    };
    let tuning = crate::database::Tuning {
        sqlite: session_buddy_store_sqlite::SqliteOptions {
            sync: cfg.sync.value,
            cache_mib: cfg.db_cache_mib,
        },
        pool_size: cfg.db_pool_size,
    };
    let store = crate::database::open(&cfg.database.value, create, tuning)
        .await
        .map_err(|e| {
            anyhow!(
                "{} (the path came from {})",
                crate::one_line(&e),
                cfg.database.source
            )
        })?;
    let host = cfg.host.value.trim_matches(['[', ']']).to_string();
    let ip: IpAddr = if host == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse()
            .with_context(|| format!("--host '{host}' is not an IP address"))?
    };
    let addr = SocketAddr::new(ip, cfg.port.value);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow!("cannot listen on {addr}: the port is in use (is another session-buddy running? try --port)")
        } else {
            anyhow!("cannot listen on {addr}: {e}")
        }
    })?;
    let local = listener.local_addr()?;
    let state = AppState::new(
        store,
        ServerOptions {
            allowed_hosts: cfg.allowed_hosts.value.clone(),
            local_addr: Some(local),
            session_ttl: cfg.session_ttl.value,
            legacy_session_ttl: cfg.legacy_session_ttl.value,
            auth: cfg.auth.clone(),
            retention: cfg.retention,
            recordings: cfg.recordings.clone(),
            ..ServerOptions::default()
        },
    );
    let shutdown = shutdown_signal()?;
    let tuned = match cfg.database.value {
        Database::Sqlite(_) => format!(
            "sync {:?}, page caches {} MiB",
            cfg.sync.value, cfg.db_cache_mib
        ),
        Database::Postgres(_) => format!("pool {}", cfg.db_pool_size),
    };
    eprintln!(
        "session-buddy {} listening on {}://{local} (database {}, {tuned})",
        session_buddy_server::VERSION,
        if tls.is_some() { "https" } else { "http" },
        cfg.database.value,
    );
    eprintln!("{}", auth_summary(&cfg));
    match tls {
        Some(tls) => session_buddy_server::tls::serve_tls(listener, state, tls, shutdown).await?,
        None => session_buddy_server::serve(listener, state, shutdown).await?,
    }
    eprintln!("session-buddy stopped; every acknowledged event is stored");
    Ok(())
}

/// SIGTERM or SIGINT (Ctrl-C). The handlers are installed here, before the server says it
/// listens, so a signal sent as soon as it does stops it cleanly rather than killing it.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SESSION_BUDDY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .try_init();
}

/// One line on how calls are authenticated.
fn auth_summary(cfg: &Resolved) -> String {
    let a = &cfg.auth;
    if a.secret.is_none() {
        return "authentication: off (no SESSION_BUDDY_SECRET)".into();
    }
    format!(
        "authentication: on (HS256 tokens{}; /metrics {}; rate limit {})",
        if a.previous_secret.is_some() {
            ", previous secret accepted"
        } else {
            ""
        },
        if a.metrics_require_auth {
            "needs read"
        } else {
            "public"
        },
        match a.rate_limit {
            0 => "off".to_string(),
            n => format!("{n}/s per token, burst {}", 2 * u64::from(n)),
        }
    )
}

/// Every layer's file, then every key's value and source (the same lines as oneiric's
/// `show_layers`), then what the server derives from them.
pub fn config_show(args: ServeArgs) -> CmdResult {
    let layers = layers(&args);
    for lv in &layers.layers {
        let state = match &lv.state {
            session_buddy_config::FileState::Absent => " (not present)",
            session_buddy_config::FileState::Broken(_) => " (BROKEN)",
            _ => "",
        };
        if !matches!(lv.state, session_buddy_config::FileState::NotAFile) {
            println!("{:<8} file {}{state}", lv.layer.name(), lv.origin);
        }
        if !lv.pins.is_empty() {
            println!("{:<8} pins {}", lv.layer.name(), lv.pins.join(", "));
        }
    }
    println!("home          {}", layers.home.display());
    println!();
    let keys: Vec<_> = session_buddy_config::KEYS.iter().collect();
    print!("{}", session_buddy_config::effective_lines(&layers, &keys));
    for w in &layers.warnings {
        println!("! {}", session_buddy_config::problem_line(w));
    }
    if !layers.problems.is_empty() {
        println!(
            "{} problem(s) (values marked !); run `session-buddy config validate`",
            layers.problems.len()
        );
        return Ok(());
    }
    let cfg = resolve_all(&args)?;
    println!(
        "auth          {}",
        auth_summary(&cfg).replace("authentication: ", "")
    );
    Ok(())
}

/// Each layer's problems (exit 1 when there are any) and what is ignored, e.g. a key a
/// project file may not set.
pub fn config_validate(args: ServeArgs) -> CmdResult {
    let layers = layers(&args);
    for w in &layers.warnings {
        println!("! {}", session_buddy_config::problem_line(w));
    }
    let cfg = resolve_all(&args)?;
    let files: Vec<String> = cfg
        .layers
        .layers
        .iter()
        .filter(|l| l.state == session_buddy_config::FileState::Loaded)
        .map(|l| l.origin.clone())
        .collect();
    println!(
        "configuration is valid ({})",
        if files.is_empty() {
            "no config file present".to_string()
        } else {
            files.join(", ")
        }
    );
    Ok(())
}
