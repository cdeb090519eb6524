//! `session-buddy bench`: the options of the benchmarks and their wiring; the benchmarks
//! themselves are the `session-buddy-bench` library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use session_buddy_bench::{BufferOptions, Common as CommonOptions, IngestOptions, McpOptions};
use session_buddy_bench::{SearchOptions, SeedOptions, ShellOptions};

use crate::CmdResult;
use crate::config::parse_duration;
use crate::database::{Create, Tuning};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// POST session_start events to /v1/events.
    Ingest(IngestArgs),
    /// track_session_start + track_session_end through the MCP tools.
    Mcp(McpArgs),
    /// The client's local buffer: enqueue latency (buffer.db, and a tracker's journal line);
    /// with --url, the drain rate after an outage.
    Buffer(BufferArgs),
    /// Whole shell runs: server up, down and hanging; tracked and untracked.
    Shell(ShellBenchArgs),
    /// Load the query benchmarks' dataset straight into a SQLite file (no server needed).
    Seed(SeedArgs),
    /// Time the text search (list-sessions --search, GET /v1/sessions?q=) through the store,
    /// over a seeded database (no server needed).
    Search(SearchArgs),
    /// Ingest with no viewer, with N open /v1/stream viewers, and with none again, side by
    /// side, and the latency from ingest to a viewer's frame (p50/p99).
    Stream(StreamBenchArgs),
    /// The web console: each page's time over loopback and the first load's size.
    Console(ConsoleArgs),
    /// The recorder's throughput: `cat` of a file in a pseudo-terminal drained as fast as it
    /// can, untracked and as `track --record`, side by side.
    Record(RecordBenchArgs),
}

#[derive(Args)]
pub struct RecordBenchArgs {
    /// Megabytes of text to show.
    #[arg(long, default_value_t = 100)]
    megabytes: u64,
    /// Runs per configuration (alternating).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Deliver the recording to this server (loopback; start it with a raised
    /// --recording-max-bytes) [default: nowhere: the chunks stay in the local buffer].
    #[arg(long)]
    url: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ConsoleArgs {
    /// The server (loopback only), e.g. over `bench seed`'s sessions.
    #[arg(
        long,
        env = "SESSION_BUDDY_URL",
        default_value = "http://127.0.0.1:8678"
    )]
    url: String,
    /// Requests per page.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// A read token, when the server has a secret.
    #[arg(long, env = "SESSION_BUDDY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct StreamBenchArgs {
    #[command(flatten)]
    common: Common,
    /// Concurrent ingest connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Events per request (1..=1000).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Stream viewers open during the second phase.
    #[arg(long, default_value_t = 200)]
    viewers: usize,
    /// How often a probe start is posted to time ingest → frame.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    probe_every: Duration,
}

#[derive(Args)]
pub struct Common {
    /// The server (loopback only).
    #[arg(
        long,
        env = "SESSION_BUDDY_URL",
        default_value = "http://127.0.0.1:8678"
    )]
    url: String,
    /// How long to run, e.g. 10s, 500ms, 1m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many requests in all, whichever comes first.
    #[arg(long, default_value_t = 10_000_000)]
    max_requests: i64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct IngestArgs {
    #[command(flatten)]
    common: Common,
    /// Concurrent connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Events per request (1..=1000).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Another server to drive at the same time (repeatable; loopback only): the connections
    /// are spread over --url and these in turn, e.g. two servers on one PostgreSQL.
    #[arg(long, value_name = "URL")]
    also: Vec<String>,
}

#[derive(Args)]
pub struct McpArgs {
    #[command(flatten)]
    common: Common,
    /// Concurrent MCP clients, each with its own connection and MCP session.
    #[arg(long, default_value_t = 8)]
    clients: usize,
}

#[derive(Args)]
pub struct BufferArgs {
    /// Events to enqueue (the "outage" backlog).
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// A running server (loopback only) to drain the backlog into; without it only enqueue is
    /// measured.
    #[arg(long)]
    url: Option<String>,
    /// Longest drain.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    duration: Duration,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ShellBenchArgs {
    /// A running server (loopback) for the "server up" runs.
    #[arg(
        long,
        env = "SESSION_BUDDY_URL",
        default_value = "http://127.0.0.1:8678"
    )]
    url: String,
    /// Runs per configuration.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// The shell and the `-c` commands to run.
    #[arg(long, default_value = "oneiric")]
    component: String,
    #[arg(long, default_value = "show_layers port")]
    command: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SeedArgs {
    /// How many sessions to create.
    #[arg(long)]
    sessions: u64,
    /// The SQLite file [env SESSION_BUDDY_DB_PATH; default $SESSION_BUDDY_HOME/sessions.db].
    #[arg(
        long,
        env = "SESSION_BUDDY_DB_PATH",
        hide_env = true,
        conflicts_with = "database_url"
    )]
    db_path: Option<PathBuf>,
    /// Seed a database by URL instead, e.g. postgres://… (sqlite:///path works too).
    #[arg(long)]
    database_url: Option<String>,
    /// Seed of the pseudo-random choices (the same seed gives the same shape of data).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
pub struct SearchArgs {
    /// The SQLite file [env SESSION_BUDDY_DB_PATH; default $SESSION_BUDDY_HOME/sessions.db].
    #[arg(
        long,
        env = "SESSION_BUDDY_DB_PATH",
        hide_env = true,
        conflicts_with = "database_url"
    )]
    db_path: Option<PathBuf>,
    /// A database by URL instead, e.g. postgres://… (sqlite:///path works too).
    #[arg(long)]
    database_url: Option<String>,
    /// A text to search for (repeatable); without it, a set chosen for the seeded dataset, from
    /// a session id's tail to every session.
    #[arg(long = "q", value_name = "TEXT")]
    texts: Vec<String>,
    /// Runs per text.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Page size.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Also time each search plan forced (lookup, walk), not only the backend's choice.
    #[arg(long)]
    every_plan: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(command: BenchCommand) -> CmdResult {
    match command {
        BenchCommand::Ingest(a) => session_buddy_bench::ingest(IngestOptions {
            common: a.common.into(),
            connections: a.connections,
            batch: a.batch,
            also: a.also,
        })?,
        BenchCommand::Mcp(a) => session_buddy_bench::mcp(McpOptions {
            common: a.common.into(),
            clients: a.clients,
        })?,
        BenchCommand::Buffer(a) => session_buddy_bench::buffer(BufferOptions {
            events: a.events,
            url: a.url,
            duration: a.duration,
            json: a.json,
        })?,
        BenchCommand::Shell(a) => session_buddy_bench::shell(ShellOptions {
            exe: std::env::current_exe().context("cannot find this program")?,
            url: a.url,
            runs: a.runs,
            component: a.component,
            command: a.command,
            json: a.json,
        })?,
        BenchCommand::Record(a) => {
            session_buddy_bench::record(session_buddy_bench::RecordOptions {
                exe: std::env::current_exe().context("cannot find this program")?,
                url: a.url,
                megabytes: a.megabytes,
                runs: a.runs,
                json: a.json,
            })?
        }
        BenchCommand::Seed(a) => return seed(a),
        BenchCommand::Search(a) => return search(a),
        BenchCommand::Stream(a) => {
            session_buddy_bench::stream(session_buddy_bench::StreamOptions {
                ingest: IngestOptions {
                    common: a.common.into(),
                    connections: a.connections,
                    batch: a.batch,
                    also: Vec::new(),
                },
                viewers: a.viewers,
                probe_every: a.probe_every,
            })?
        }
        BenchCommand::Console(a) => {
            session_buddy_bench::console(session_buddy_bench::ConsoleOptions {
                url: a.url,
                runs: a.runs,
                token: a.token,
                json: a.json,
            })?
        }
    }
    Ok(())
}

impl From<Common> for CommonOptions {
    fn from(c: Common) -> Self {
        Self {
            url: c.url,
            duration: c.duration,
            max_requests: c.max_requests,
            json: c.json,
        }
    }
}

fn seed(args: SeedArgs) -> CmdResult {
    if args.sessions == 0 {
        return Err(anyhow::anyhow!("--sessions must be at least 1").into());
    }
    let (database, create) = match (&args.database_url, &args.db_path) {
        (Some(url), _) => (crate::serve::parse_database_url(url)?, Create::File),
        (None, Some(path)) => (crate::serve::Database::Sqlite(path.clone()), Create::File),
        (None, None) => (
            crate::serve::Database::Sqlite(crate::config::home_dir().join("sessions.db")),
            Create::FileAndDirectories,
        ),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let options = SeedOptions {
        sessions: args.sessions,
        seed: args.seed,
    };
    runtime.block_on(async {
        let store = crate::database::open(&database, create, Tuning::pool(16)).await?;
        session_buddy_bench::seed(store, database.to_string(), options).await
    })?;
    Ok(())
}

fn search(args: SearchArgs) -> CmdResult {
    let database = match (&args.database_url, &args.db_path) {
        (Some(url), _) => crate::serve::parse_database_url(url)?,
        (None, Some(path)) => crate::serve::Database::Sqlite(path.clone()),
        (None, None) => {
            crate::serve::Database::Sqlite(crate::config::home_dir().join("sessions.db"))
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let options = SearchOptions {
        texts: args.texts,
        runs: args.runs,
        limit: args.limit,
        every_plan: args.every_plan,
        json: args.json,
    };
    runtime.block_on(async {
        let store = crate::database::open(&database, Create::Nothing, Tuning::pool(4)).await?;
        session_buddy_bench::search(store, database.to_string(), options).await
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
