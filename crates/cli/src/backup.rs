//! `session-buddy export` (from the database itself, SQLite or PostgreSQL) and
//! `session-buddy import` (through the server's idempotent ingest): backups and moving between
//! backends.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use serde_json::Value;
use session_buddy_store::{MAX_PAGE, SessionFilter, Store, SyncMode};

use crate::client::Api;
use crate::config::home_dir;
use crate::database::Create;
use crate::serve::{Database, parse_database_url};
use crate::{CmdResult, Failure};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// The stored events as event JSON, one per line, in time order: what `import` takes.
    Ndjson,
    /// The session records, newest start first.
    Csv,
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
    format: ExportFormat,
    /// Only events (ndjson) or sessions started (csv) at or after this time.
    #[arg(long)]
    since: Option<String>,
    /// Write here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// SQLite database file [env SESSION_BUDDY_DB_PATH; default $SESSION_BUDDY_HOME/sessions.db].
    #[arg(long, env = "SESSION_BUDDY_DB_PATH", hide_env = true)]
    db_path: Option<PathBuf>,
    /// Database URL (sqlite:///path or postgres://…) [env SESSION_BUDDY_DATABASE_URL].
    #[arg(long, env = "SESSION_BUDDY_DATABASE_URL", hide_env = true)]
    database_url: Option<String>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// An ndjson file from `session-buddy export` (`-` for stdin).
    file: PathBuf,
    /// The server's URL [env SESSION_BUDDY_URL; default: `[client] url` from the config
    /// files, else http://127.0.0.1:<server.port>].
    #[arg(long)]
    url: Option<String>,
    /// Events per request (at most 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    batch: u16,
}

pub fn export(args: ExportArgs, utc: bool) -> CmdResult {
    let database = match (&args.database_url, &args.db_path) {
        (Some(url), _) => parse_database_url(url)?,
        (None, Some(path)) => Database::Sqlite(path.clone()),
        (None, None) => Database::Sqlite(home_dir().join("sessions.db")),
    };
    let since = args
        .since
        .as_deref()
        .map(|s| crate::queries::parse_user_time(s, utc))
        .transpose()
        .context("--since")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let written = runtime.block_on(async {
        // The database first: a wrong path must not leave an empty export behind.
        let store = crate::database::open(&database, Create::Nothing, SyncMode::Normal, 2).await?;
        let mut out: Box<dyn Write> = match &args.output {
            Some(path) => match File::create(path) {
                Ok(f) => Box::new(BufWriter::new(f)),
                Err(e) => {
                    store.close().await;
                    return Err(anyhow!("cannot create {}: {e}", path.display()));
                }
            },
            None => Box::new(BufWriter::new(std::io::stdout().lock())),
        };
        let n = match args.format {
            ExportFormat::Ndjson => export_events(store.as_ref(), since, &mut out).await,
            ExportFormat::Csv => export_sessions(store.as_ref(), since, &mut out).await,
        };
        store.close().await;
        out.flush().context("writing the export")?;
        n
    })?;
    if let Some(path) = &args.output {
        let what = match args.format {
            ExportFormat::Ndjson => "events",
            ExportFormat::Csv => "sessions",
        };
        eprintln!("exported {written} {what} to {}", path.display());
    }
    Ok(())
}

async fn export_events(
    store: &dyn Store,
    since: Option<chrono::DateTime<chrono::Utc>>,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut after = None;
    let mut n = 0u64;
    loop {
        let page = store.events_in_time_order(since, after, MAX_PAGE).await?;
        for e in &page {
            serde_json::to_writer(&mut *out, &e.payload)?;
            out.write_all(b"\n")?;
        }
        n += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == MAX_PAGE => {
                after = Some((last.timestamp, last.event_id.clone()));
            }
            _ => return Ok(n),
        }
    }
}

async fn export_sessions(
    store: &dyn Store,
    since: Option<chrono::DateTime<chrono::Utc>>,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut filter = SessionFilter {
        after: since,
        limit: MAX_PAGE,
        ..SessionFilter::default()
    };
    let mut n = 0u64;
    loop {
        let page = store.list_sessions(filter.clone()).await?;
        let text = crate::queries::sessions_csv(&page.sessions, true);
        // The header once, at the top.
        let body = if n == 0 {
            text.as_str()
        } else {
            text.split_once('\n').map_or("", |(_, rest)| rest)
        };
        out.write_all(body.as_bytes())?;
        n += page.sessions.len() as u64;
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => return Ok(n),
        }
    }
}

/// What the server answered, summed over every batch.
#[derive(Default)]
struct Tally {
    accepted: u64,
    duplicate: u64,
    rejected: u64,
    /// The first few rejections, for the report.
    errors: Vec<String>,
}

impl Tally {
    fn reject(&mut self, what: String) {
        self.rejected += 1;
        if self.errors.len() < 10 {
            self.errors.push(what);
        }
    }
}

pub fn import(args: ImportArgs) -> CmdResult {
    let reader: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        Box::new(BufReader::new(File::open(&args.file).with_context(
            || format!("cannot open {}", args.file.display()),
        )?))
    };
    let api = Api::new(args.url.as_deref());
    let mut tally = Tally::default();
    let mut batch: Vec<Value> = Vec::with_capacity(usize::from(args.batch));
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", args.file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(v) => batch.push(v),
            Err(e) => tally.reject(format!("line {}: not JSON ({e})", i + 1)),
        }
        if batch.len() == usize::from(args.batch) {
            send(&api, &mut batch, &mut tally)?;
        }
    }
    if !batch.is_empty() {
        send(&api, &mut batch, &mut tally)?;
    }
    println!(
        "accepted {}, duplicate {}, rejected {}",
        tally.accepted, tally.duplicate, tally.rejected
    );
    for e in &tally.errors {
        eprintln!("rejected: {e}");
    }
    if tally.rejected > 0 {
        return Err(Failure::Error(anyhow!(
            "{} events were rejected (the first are listed above)",
            tally.rejected
        )));
    }
    Ok(())
}

/// POSTs one batch through the server's ingest, marked as imported history (the server
/// abandons at once, at its last event, a session without an end that has been silent for
/// longer than its TTL), and counts the results.
fn send(api: &Api, batch: &mut Vec<Value>, tally: &mut Tally) -> CmdResult {
    let body = Value::Array(std::mem::take(batch));
    let answer = api.post_json("/v1/events?import=true", &body)?;
    let results = answer
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("the server's answer has no results: {answer}"))?;
    for r in results {
        match r.get("status").and_then(Value::as_str) {
            Some("accepted") => tally.accepted += 1,
            Some("duplicate") => tally.duplicate += 1,
            _ => tally.reject(format!(
                "{}: {}",
                r.get("event_id").and_then(Value::as_str).unwrap_or("?"),
                r.get("error").and_then(Value::as_str).unwrap_or("rejected")
            )),
        }
    }
    Ok(())
}
