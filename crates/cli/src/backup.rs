//! `session-buddy export` (from the database itself, SQLite or PostgreSQL) and
//! `session-buddy import` (through the server's idempotent ingest): backups and moving between
//! backends.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use session_buddy_store::export;

use crate::client::Api;
use crate::config::home_dir;
use crate::database::{Create, Tuning};
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
        let store = crate::database::open(&database, Create::Nothing, Tuning::pool(2)).await?;
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
            ExportFormat::Ndjson => export::export_events(store.as_ref(), since, &mut out).await,
            ExportFormat::Csv => {
                export::export_sessions(store.as_ref(), since, &mut out, |page, first| {
                    let text = session_buddy_text::sessions::sessions_csv(page);
                    // The header once, at the top.
                    if first {
                        text
                    } else {
                        text.split_once('\n')
                            .map_or("", |(_, rest)| rest)
                            .to_string()
                    }
                })
                .await
            }
        };
        store.close().await;
        out.flush().context("writing the export")?;
        Ok::<_, anyhow::Error>(n?)
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

pub fn import(args: ImportArgs) -> CmdResult {
    use session_buddy_client::import::{IMPORT_PATH, ImportError, import_ndjson};

    let reader: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        Box::new(BufReader::new(File::open(&args.file).with_context(
            || format!("cannot open {}", args.file.display()),
        )?))
    };
    let api = Api::new(args.url.as_deref());
    let what = args.file.display().to_string();
    let tally = import_ndjson(reader, &what, usize::from(args.batch), |body| {
        api.post_json(IMPORT_PATH, body)
    })
    .map_err(|e| match e {
        ImportError::Post(failure) => failure,
        ImportError::Import(e) => Failure::Error(e.into()),
    })?;
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
