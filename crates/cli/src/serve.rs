//! `session-buddy serve` and `config show|validate`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use session_buddy_server::{AppState, ServerOptions};
use session_buddy_store::{SqliteStore, SyncMode};

use crate::config::{Setting, Source, home_dir, load_file, parse_duration, resolve};
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
    /// Database URL (sqlite:///path) [env SESSION_BUDDY_DATABASE_URL].
    #[arg(long)]
    database_url: Option<String>,
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
}

#[derive(Debug, Clone)]
enum Database {
    Sqlite(PathBuf),
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
        }
    }
}

fn parse_database_url(url: &str) -> anyhow::Result<Database> {
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
        bail!(
            "the PostgreSQL backend is not part of this build yet; use the embedded SQLite \
             default (--db-path FILE)"
        );
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
    Ok(Resolved {
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

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn run(args: ServeArgs) -> CmdResult {
    let cfg = resolve_all(&args)?;
    if !is_loopback(&cfg.host.value) {
        return Err(Failure::Error(anyhow!(
            "refusing to listen on {} ({}): this server has no authentication yet, so it serves \
             loopback only; listen on 127.0.0.1 and put a reverse proxy with authentication in front",
            cfg.host.value,
            cfg.host.source
        )));
    }
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_async(cfg)).map_err(Failure::Error)
}

async fn serve_async(cfg: Resolved) -> anyhow::Result<()> {
    let Database::Sqlite(path) = &cfg.database.value;
    let store = SqliteStore::open(path, cfg.sync.value).with_context(|| {
        format!(
            "cannot open the session database {} ({})",
            path.display(),
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
    let mut allowed_hosts = cfg.allowed_hosts.value.clone();
    allowed_hosts.push(format!("{}:{}", local.ip(), local.port()));
    let state = AppState::new(
        Arc::new(store),
        ServerOptions {
            allowed_hosts,
            session_ttl: cfg.session_ttl.value,
            legacy_session_ttl: cfg.legacy_session_ttl.value,
            ..ServerOptions::default()
        },
    );
    eprintln!(
        "session-buddy {} listening on http://{local} (database {}, sync {:?})",
        session_buddy_server::VERSION,
        cfg.database.value,
        cfg.sync.value
    );
    session_buddy_server::serve(listener, state, shutdown_signal()).await?;
    eprintln!("session-buddy stopped; every acknowledged event is stored");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
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
