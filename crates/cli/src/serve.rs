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

use crate::config::{Setting, Source, home_dir, load_file, parse_duration, resolve};
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
    #[arg(long, env = "SESSION_BUDDY_DB_POOL_SIZE", hide_env = true, value_parser = clap::value_parser!(u16).range(1..=1000))]
    db_pool_size: Option<u16>,
    /// Delete sessions that are over and started more than N days ago, with their events
    /// (hourly, in batches) [env SESSION_BUDDY_RETENTION_DAYS; default: keep everything].
    #[arg(long, env = "SESSION_BUDDY_RETENTION_DAYS", hide_env = true, value_parser = clap::value_parser!(u32).range(1..=36500))]
    retention_days: Option<u32>,
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
    #[arg(long, value_parser = parse_duration)]
    session_ttl: Option<Duration>,
    /// The same for sessions that announced none, such as the original's 1.0 clients
    /// [env SESSION_BUDDY_LEGACY_SESSION_TTL; default 24h].
    #[arg(long, value_parser = parse_duration)]
    legacy_session_ttl: Option<Duration>,
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
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "SESSION_BUDDY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "SESSION_BUDDY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// The server's effective configuration.
struct Resolved {
    config_file: (PathBuf, bool),
    host: Setting<String>,
    port: Setting<u16>,
    database: Setting<Database>,
    sync: Setting<SyncMode>,
    allowed_hosts: Setting<Vec<String>>,
    session_ttl: Setting<Duration>,
    legacy_session_ttl: Setting<Duration>,
    auth: AuthOptions,
    rate_limit: Setting<u32>,
    db_pool_size: usize,
    retention: Option<Duration>,
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

fn resolve_all(args: &ServeArgs) -> anyhow::Result<Resolved> {
    let config_file = crate::config::config_path(args.config.as_deref());
    let file = load_file(&config_file.0, config_file.1)?.server;
    let host = resolve(
        args.host.clone(),
        "SESSION_BUDDY_HOST",
        |s| Ok(s.to_string()),
        file.host.clone(),
        || "127.0.0.1".to_string(),
    )?;
    let port = resolve(
        args.port,
        "SESSION_BUDDY_PORT",
        |s| {
            s.parse::<u16>()
                .map_err(|_| anyhow!("'{s}' is not a port number (0-65535)"))
        },
        file.port,
        || 8678,
    )?;
    // --db-path and --database-url name the same thing; a flag of either beats env of either.
    let db_flag = match (&args.db_path, &args.database_url) {
        (Some(_), Some(_)) => bail!("give either --db-path or --database-url, not both"),
        (Some(p), None) => Some(Database::Sqlite(p.clone())),
        (None, Some(u)) => Some(parse_database_url(u)?),
        (None, None) => None,
    };
    let db_file = match (&file.db_path, &file.database_url) {
        (Some(p), _) => Some(Database::Sqlite(p.clone())),
        (None, Some(u)) => Some(parse_database_url(u).context("config file")?),
        (None, None) => None,
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let database = if let Some(value) = db_flag {
        Setting {
            value,
            source: Source::Flag,
        }
    } else if let Some(url) = env("SESSION_BUDDY_DATABASE_URL") {
        Setting {
            value: parse_database_url(&url)
                .context("environment variable SESSION_BUDDY_DATABASE_URL")?,
            source: Source::Env("SESSION_BUDDY_DATABASE_URL"),
        }
    } else if let Some(path) = env("SESSION_BUDDY_DB_PATH") {
        Setting {
            value: Database::Sqlite(PathBuf::from(path)),
            source: Source::Env("SESSION_BUDDY_DB_PATH"),
        }
    } else if let Some(value) = db_file {
        Setting {
            value,
            source: Source::File,
        }
    } else {
        Setting {
            value: Database::Sqlite(home_dir().join("sessions.db")),
            source: Source::Default,
        }
    };
    let sync = resolve(
        args.sync.as_deref().map(parse_sync).transpose()?,
        "SESSION_BUDDY_SYNC",
        parse_sync,
        file.sync
            .as_deref()
            .map(parse_sync)
            .transpose()
            .context("config file")?,
        SyncMode::default,
    )?;
    let allowed_hosts = resolve(
        (!args.allowed_hosts.is_empty()).then(|| args.allowed_hosts.clone()),
        "SESSION_BUDDY_ALLOWED_HOSTS",
        |s| {
            Ok(s.split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect())
        },
        file.allowed_hosts.clone(),
        Vec::new,
    )?;
    let ttl = |s: &str| parse_duration(s).map_err(|e| anyhow!(e));
    let file_ttl = |v: &Option<String>| v.as_deref().map(ttl).transpose().context("config file");
    let session_ttl = resolve(
        args.session_ttl,
        "SESSION_BUDDY_SESSION_TTL",
        ttl,
        file_ttl(&file.session_ttl)?,
        || Duration::from_secs(600),
    )?;
    let legacy_session_ttl = resolve(
        args.legacy_session_ttl,
        "SESSION_BUDDY_LEGACY_SESSION_TTL",
        ttl,
        file_ttl(&file.legacy_session_ttl)?,
        || Duration::from_secs(24 * 3600),
    )?;
    for (name, s) in [
        ("session TTL", &session_ttl),
        ("legacy session TTL", &legacy_session_ttl),
    ] {
        if s.value < Duration::from_secs(1) {
            bail!("the {name} must be at least 1s ({})", s.source);
        }
    }
    let rate_limit = resolve(
        args.rate_limit,
        "SESSION_BUDDY_RATE_LIMIT",
        |s| {
            s.parse::<u32>()
                .map_err(|_| anyhow!("'{s}' is not a number of requests per second"))
        },
        None,
        || 0,
    )?;
    let auth = auth_options(args, rate_limit.value)?;
    if let Some(n) = file.db_pool_size.filter(|n| !(1..=1000).contains(n)) {
        bail!("config file: db_pool_size {n} must be from 1 to 1000");
    }
    if let Some(d) = file.retention_days.filter(|d| !(1..=36_500).contains(d)) {
        bail!("config file: retention_days {d} must be from 1 to 36500");
    }
    Ok(Resolved {
        auth,
        rate_limit,
        db_pool_size: args
            .db_pool_size
            .or(file.db_pool_size)
            .map_or(session_buddy_store_postgres::DEFAULT_POOL_SIZE, usize::from),
        retention: args
            .retention_days
            .or(file.retention_days)
            .map(|d| Duration::from_secs(u64::from(d) * 86_400)),
        session_ttl,
        legacy_session_ttl,
        config_file,
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
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(session_buddy_server::tls::load(cert, key).map_err(anyhow::Error::from)?)
        }
        _ => None,
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
    let create = match cfg.database.source {
        Source::Default => Create::FileAndDirectories,
        _ => Create::File,
    };
    let store = crate::database::open(
        &cfg.database.value,
        create,
        cfg.sync.value,
        cfg.db_pool_size,
    )
    .await
    .map_err(|e| {
        let from = match cfg.database.source {
            Source::Flag => "the command line",
            Source::Env(name) => name,
            Source::File => "the config file",
            Source::Default => "the default",
        };
        anyhow!("{} (the path came from {from})", crate::one_line(&e))
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
    let mut allowed_hosts = cfg.allowed_hosts.value.clone();
    allowed_hosts.push(format!("{}:{}", local.ip(), local.port()));
    let state = AppState::new(
        store,
        ServerOptions {
            allowed_hosts,
            session_ttl: cfg.session_ttl.value,
            legacy_session_ttl: cfg.legacy_session_ttl.value,
            auth: cfg.auth.clone(),
            retention: cfg.retention,
            ..ServerOptions::default()
        },
    );
    let shutdown = shutdown_signal()?;
    eprintln!(
        "session-buddy {} listening on {}://{local} (database {}, sync {:?})",
        session_buddy_server::VERSION,
        if tls.is_some() { "https" } else { "http" },
        cfg.database.value,
        cfg.sync.value
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

pub fn config_show(args: ServeArgs) -> CmdResult {
    let cfg = resolve_all(&args)?;
    let (path, _) = &cfg.config_file;
    println!(
        "config file     {}{}",
        path.display(),
        if path.exists() { "" } else { " (not present)" }
    );
    println!("home            {}", home_dir().display());
    println!(
        "host            {:<40} ({})",
        cfg.host.value, cfg.host.source
    );
    println!(
        "port            {:<40} ({})",
        cfg.port.value, cfg.port.source
    );
    println!(
        "database        {:<40} ({})",
        cfg.database.value.to_string(),
        cfg.database.source
    );
    println!(
        "sync            {:<40} ({})",
        format!("{:?}", cfg.sync.value).to_lowercase(),
        cfg.sync.source
    );
    println!(
        "session ttl     {:<40} ({})",
        format!("{:?}", cfg.session_ttl.value),
        cfg.session_ttl.source
    );
    println!(
        "legacy ttl      {:<40} ({})",
        format!("{:?}", cfg.legacy_session_ttl.value),
        cfg.legacy_session_ttl.source
    );
    println!("db pool size    {}", cfg.db_pool_size);
    println!(
        "retention       {}",
        cfg.retention
            .map(|r| format!("{} days", r.as_secs() / 86_400))
            .unwrap_or_else(|| "keep everything".into())
    );
    println!(
        "auth            {}",
        auth_summary(&cfg).replace("authentication: ", "")
    );
    println!(
        "rate limit      {:<40} ({})",
        cfg.rate_limit.value, cfg.rate_limit.source
    );
    println!(
        "allowed hosts   {:<40} ({})",
        if cfg.allowed_hosts.value.is_empty() {
            "(loopback only)".to_string()
        } else {
            cfg.allowed_hosts.value.join(",")
        },
        cfg.allowed_hosts.source
    );
    Ok(())
}

pub fn config_validate(args: ServeArgs) -> CmdResult {
    let cfg = resolve_all(&args)?;
    println!("configuration is valid ({})", cfg.config_file.0.display());
    Ok(())
}
