//! `session-buddy`: argument parsing and wiring; the work happens in the library crates and the
//! modules below.

mod analytics;
mod backup;
mod bench;
mod client;
mod config;
mod database;
mod docs;
mod event_buffer;
mod output;
mod queries;
mod recording;
mod redact;
mod serve;
mod token;
mod track;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "session-buddy",
    version,
    about = "Automatic, reliable session tracking for admin shells",
    long_about = None,
    propagate_version = true
)]
struct Cli {
    /// Show and parse times in UTC instead of local time.
    #[arg(long, global = true)]
    utc: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the tracking server (REST, MCP, /health, /metrics).
    Serve(serve::ServeArgs),
    /// Open a component's admin shell (tracked): oneiric, session-buddy, mahavishnu,
    /// crackerjack, akosha, fastblocks.
    Shell {
        /// The component; without one, the list.
        component: Option<String>,
        #[command(flatten)]
        args: session_buddy_shell::ShellArgs,
    },
    /// Run any program as a tracked session: `session-buddy track -- python3 -m myshell`.
    Track(track::TrackArgs),
    /// Play a session's terminal recording here (space pause, . step, q quit).
    Play(recording::PlayArgs),
    /// Terminal recordings: export one as asciicast v2.
    Recording {
        #[command(subcommand)]
        command: recording::RecordingCommand,
    },
    /// Remove one session for good: its record, events and recording (admin; audited).
    Erase(recording::EraseArgs),
    /// The audit log: recordings played and exported, sessions erased (admin).
    Audit(recording::AuditArgs),
    /// List sessions, newest first.
    ListSessions(queries::ListSessionsArgs),
    /// Show one session: its record and its timeline.
    ShowSession(queries::ShowSessionArgs),
    /// List events: a session's timeline, or the latest events.
    ListEvents(queries::ListEventsArgs),
    /// Follow changes as they happen: a line per shell start, command and end (NDJSON with
    /// --format json); reconnects by itself and resumes where it was.
    Watch(watch::WatchArgs),
    /// Session analytics: sessions, duration, components, errors, active, report, sql.
    Analytics {
        #[command(subcommand)]
        command: analytics::AnalyticsCommand,
    },
    /// Ask the server whether it and its storage are healthy.
    Health(ServerArgs),
    /// The JSON Schemas of the wire format.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
    /// Load generators against a running server (loopback), bounded in time and requests.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// The local event buffer: status, replay (deliver now), list, purge.
    EventBuffer {
        #[command(subcommand)]
        command: event_buffer::EventBufferCommand,
    },
    /// Tokens for a server with SESSION_BUDDY_SECRET: create, verify, revoke.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Export the database (SQLite or PostgreSQL): events as ndjson (for `import`) or
    /// sessions as CSV.
    Export(backup::ExportArgs),
    /// Send an ndjson export to a server through its idempotent ingest (batches of ≤ 1000).
    Import(backup::ImportArgs),
    /// Re-apply the current redaction rules to stored command arguments (admin); without
    /// --apply, a dry run that says how many events would change.
    Redact(redact::RedactArgs),
    /// Show or check the configuration (six layers, for the server and the clients).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the completion script for a shell, e.g.
    /// `session-buddy completions bash > ~/.local/share/bash-completion/completions/session-buddy`.
    Completions(docs::CompletionsArgs),
    /// Man pages for every command: `session-buddy man --dir ~/.local/share/man/man1`; without
    /// --dir, session-buddy(1) on standard output (`session-buddy man | man -l -`).
    Man(docs::ManArgs),
}

#[derive(Args, Clone)]
pub(crate) struct ServerArgs {
    /// The server's URL [env SESSION_BUDDY_URL; default: `[client] url` from the config
    /// files, else http://127.0.0.1:<server.port>].
    #[arg(long)]
    url: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// List the schemas.
    List,
    /// Print one schema.
    Show { name: String },
    /// Write every schema to DIR/<name>.schema.json.
    Export { dir: PathBuf },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print every key's effective value (server and clients) and the layer and file that
    /// set it, as oneiric's show_layers does.
    Show(serve::ServeArgs),
    /// Check every layer; exit 1 when a value is invalid; report what is ignored (a key a
    /// project file may not set, a value a system pin overrules).
    Validate(serve::ServeArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
    Csv,
}

/// Exit codes: 0 success, 1 error, 2 usage, 3 server unreachable, 4 not found.
#[derive(Debug)]
pub(crate) enum Failure {
    Error(anyhow::Error),
    Unreachable(String),
    NotFound(String),
    /// The server refused the token (401/403).
    Refused(String),
    /// The server rejected events (they are dead letters now).
    Rejected(String),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

pub(crate) type CmdResult = Result<(), Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let utc = cli.utc;
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Shell { component, args } => shell(component, &args),
        Command::Track(args) => track::run(args),
        Command::Play(args) => recording::play(args),
        Command::Recording { command } => recording::run(command),
        Command::Erase(args) => recording::erase(args),
        Command::Audit(args) => recording::audit(args),
        Command::ListSessions(args) => queries::list_sessions(args, utc),
        Command::ShowSession(args) => queries::show_session(args, utc),
        Command::ListEvents(args) => queries::list_events(args, utc),
        Command::Watch(args) => watch::run(args, utc),
        Command::Analytics { command } => analytics::run(command, utc),
        Command::Health(args) => queries::health(args),
        Command::Schema { command } => schema(command),
        Command::Bench { command } => bench::run(command),
        Command::EventBuffer { command } => event_buffer::run(command, utc),
        Command::Token { command } => token::run(command),
        Command::Export(args) => backup::export(args, utc),
        Command::Import(args) => backup::import(args),
        Command::Redact(args) => redact::run(args),
        Command::Config { command } => match command {
            ConfigCommand::Show(args) => serve::config_show(args),
            ConfigCommand::Validate(args) => serve::config_validate(args),
        },
        Command::Completions(args) => {
            docs::completions(&args, <Cli as clap::CommandFactory>::command())
        }
        Command::Man(args) => docs::man(&args, <Cli as clap::CommandFactory>::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Error(e)) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
        Err(Failure::Unreachable(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(3)
        }
        Err(Failure::NotFound(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(4)
        }
        Err(Failure::Refused(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(5)
        }
        Err(Failure::Rejected(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(6)
        }
    }
}

fn shell(component: Option<String>, args: &session_buddy_shell::ShellArgs) -> CmdResult {
    let known = session_buddy_components::COMPONENTS.join(", ");
    let Some(name) = component else {
        println!("Shells: {known}\nOpen one with `session-buddy shell NAME`.");
        return Ok(());
    };
    let Some(spec) = session_buddy_components::spec(&name) else {
        return Err(Failure::NotFound(format!(
            "no shell '{name}'; the shells are: {known}"
        )));
    };
    let code = spec.run_with(args);
    std::process::exit(code);
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

fn schema(command: SchemaCommand) -> CmdResult {
    use session_buddy_events::SchemaRegistry;
    match command {
        SchemaCommand::List => {
            for (name, description) in SchemaRegistry::list() {
                println!("{name:<22} {description}");
            }
        }
        SchemaCommand::Show { name } => {
            let schema =
                SchemaRegistry::get(&name).map_err(|e| Failure::NotFound(e.to_string()))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).map_err(anyhow::Error::from)?
            );
        }
        SchemaCommand::Export { dir } => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            let names = session_buddy_events::schema_names();
            for name in &names {
                let schema = SchemaRegistry::get(name).map_err(|e| anyhow::anyhow!(e))?;
                let path = dir.join(format!("{name}.schema.json"));
                let text = serde_json::to_string_pretty(&schema).map_err(anyhow::Error::from)?;
                std::fs::write(&path, text + "\n")
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            }
            eprintln!("wrote {} schemas to {}", names.len(), dir.display());
        }
    }
    Ok(())
}
