//! `list-sessions`, `show-session`, `list-events`, `health`: read the server's API.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::Value;
use session_buddy_events::{Session, StoredEvent};

use crate::client::Api;
use crate::output::{csv, fmt_time, table};
use crate::{CmdResult, Failure, Format, ServerArgs};

#[derive(Args)]
pub struct ListSessionsArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Session type, e.g. admin_shell.
    #[arg(long = "type")]
    session_type: Option<String>,
    #[arg(long)]
    component: Option<String>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    host: Option<String>,
    /// active, ended or abandoned.
    #[arg(long, value_parser = ["active", "ended", "abandoned"])]
    status: Option<String>,
    /// Started at or after: RFC 3339, a date, `YYYY-MM-DD HH:MM`, or today, yesterday,
    /// this-week, this-month, this-year (local time unless --utc).
    #[arg(long)]
    after: Option<String>,
    /// Started before (same forms as --after).
    #[arg(long)]
    before: Option<String>,
    /// Ended sessions that lasted more than SECS seconds.
    #[arg(long = "duration-greater", value_name = "SECS")]
    duration_greater: Option<f64>,
    /// Sessions whose id, user, host, component or a command name contains TEXT (case
    /// ignored; at least 3 characters).
    #[arg(long, short = 'q', value_name = "TEXT")]
    search: Option<String>,
    /// How many sessions (pages through the server's 1000-per-page limit).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub struct ShowSessionArgs {
    #[command(flatten)]
    server: ServerArgs,
    session_id: String,
}

#[derive(Args)]
pub struct ListEventsArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// A session's timeline; without it, the latest events.
    #[arg(long)]
    session_id: Option<String>,
    /// session_start, session_end, command or heartbeat.
    #[arg(long = "type")]
    event_type: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

/// Parses a time a person typed ([`session_buddy_events::parse_user_time`]).
pub fn parse_user_time(s: &str, utc: bool) -> anyhow::Result<DateTime<Utc>> {
    session_buddy_events::parse_user_time(s, utc).map_err(anyhow::Error::msg)
}

/// Refuses a time range that holds nothing: `from` at or after `to` (each a flag and its time).
pub fn check_range(
    from: (&str, DateTime<Utc>),
    to: (&str, DateTime<Utc>),
    utc: bool,
) -> anyhow::Result<()> {
    if from.1 >= to.1 {
        bail!(
            "{} {} is not before {} {}, so nothing can match; swap them",
            from.0,
            fmt_time(&from.1, utc),
            to.0,
            fmt_time(&to.1, utc)
        );
    }
    Ok(())
}

pub fn list_sessions(args: ListSessionsArgs, utc: bool) -> CmdResult {
    if args.limit == 0 {
        return Err(anyhow!("--limit must be at least 1").into());
    }
    let api = Api::new(args.server.url.as_deref());
    let mut query: Vec<(&str, String)> = Vec::new();
    let mut add = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            query.push((k, v));
        }
    };
    add("type", args.session_type.clone());
    add("component", args.component.clone());
    add("user", args.user.clone());
    add("host", args.host.clone());
    add("status", args.status.clone());
    add("q", args.search.clone());
    let after = args
        .after
        .as_deref()
        .map(|s| parse_user_time(s, utc).context("--after"))
        .transpose()?;
    let before = args
        .before
        .as_deref()
        .map(|s| parse_user_time(s, utc).context("--before"))
        .transpose()?;
    if let (Some(a), Some(b)) = (after, before) {
        check_range(("--after", a), ("--before", b), utc)?;
    }
    add(
        "after",
        after.map(|t| session_buddy_events::format_timestamp(&t)),
    );
    add(
        "before",
        before.map(|t| session_buddy_events::format_timestamp(&t)),
    );
    if let Some(d) = args.duration_greater {
        if !d.is_finite() || d < 0.0 {
            return Err(
                anyhow!("--duration-greater must be a non-negative number of seconds").into(),
            );
        }
        query.push(("min_duration", d.to_string()));
    }
    let mut sessions: Vec<Session> = Vec::new();
    let mut cursor: Option<String> = None;
    while sessions.len() < args.limit {
        let mut q = query.clone();
        q.push(("limit", (args.limit - sessions.len()).min(1000).to_string()));
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page = api.get_json("/v1/sessions", &q)?;
        let batch: Vec<Session> = serde_json::from_value(page["sessions"].clone())
            .map_err(|e| anyhow!("unexpected answer from the server: {e}"))?;
        sessions.extend(batch);
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    let text = match output_format(args.server.format, args.output.as_deref()) {
        Format::Json => {
            serde_json::to_string_pretty(&sessions).map_err(anyhow::Error::from)? + "\n"
        }
        Format::Csv => session_buddy_text::sessions::sessions_csv(&sessions),
        Format::Table => {
            if sessions.is_empty() {
                "No sessions found.\n".to_string()
            } else {
                session_buddy_text::sessions::sessions_table(&sessions, utc)
            }
        }
    };
    emit(&text, args.output.as_ref())?;
    if let Some(path) = &args.output {
        eprintln!("wrote {} sessions to {}", sessions.len(), path.display());
    }
    Ok(())
}

/// `--output sessions.csv` (or `.json`) without `--format` writes that format, not a table.
fn output_format(format: Format, output: Option<&std::path::Path>) -> Format {
    let ext = output
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match (format, ext.as_deref()) {
        (Format::Table, Some("csv")) => Format::Csv,
        (Format::Table, Some("json")) => Format::Json,
        (f, _) => f,
    }
}

fn emit(text: &str, output: Option<&PathBuf>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()) {
                // A closed pipe (`| head`) is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("cannot write to standard output"),
            }
        }
    }
}

pub fn show_session(args: ShowSessionArgs, utc: bool) -> CmdResult {
    if !session_buddy_events::is_valid_session_id(&args.session_id) {
        return Err(anyhow!(
            "'{}' is not a session id (letters, digits, '-' and '_'); list ids with `session-buddy list-sessions`",
            args.session_id
        )
        .into());
    }
    let api = Api::new(args.server.url.as_deref());
    let path = format!("/v1/sessions/{}", args.session_id);
    let record = api.get_json(&path, &[]).map_err(|e| match e {
        Failure::NotFound(_) => Failure::NotFound(format!(
            "no session '{}' (its start may not have arrived yet); see `session-buddy list-sessions`",
            args.session_id
        )),
        other => other,
    })?;
    let events_page = api.get_json(&format!("{path}/events"), &[])?;
    let session: Session = serde_json::from_value(record.clone())
        .map_err(|e| anyhow!("unexpected answer from the server: {e}"))?;
    let events: Vec<StoredEvent> = serde_json::from_value(events_page["events"].clone())
        .map_err(|e| anyhow!("unexpected answer from the server: {e}"))?;
    let text = match args.server.format {
        Format::Json => {
            let mut v = record;
            v["events"] = events_page["events"].clone();
            serde_json::to_string_pretty(&v).map_err(anyhow::Error::from)? + "\n"
        }
        Format::Csv => session_buddy_text::sessions::sessions_csv(std::slice::from_ref(&session)),
        Format::Table => session_buddy_text::sessions::session_text(&session, &events, utc),
    };
    emit(&text, None)?;
    Ok(())
}

pub fn list_events(args: ListEventsArgs, utc: bool) -> CmdResult {
    let api = Api::new(args.server.url.as_deref());
    let mut q = vec![("limit", args.limit.to_string())];
    if let Some(id) = &args.session_id {
        q.push(("session_id", id.clone()));
    }
    if let Some(t) = &args.event_type {
        q.push(("type", t.clone()));
    }
    let page = api.get_json("/v1/events", &q).map_err(|e| match (e, &args.session_id) {
        (Failure::NotFound(_), Some(id)) => Failure::NotFound(format!(
            "no session '{id}' (its start may not have arrived yet); see `session-buddy list-sessions`"
        )),
        (other, _) => other,
    })?;
    let events: Vec<StoredEvent> = serde_json::from_value(page["events"].clone())
        .map_err(|e| anyhow!("unexpected answer from the server: {e}"))?;
    let headers = ["Time", "Session ID", "Type", "Event ID", "Detail"];
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let p = &e.payload;
            let detail = match e.event_type.as_str() {
                "command" => format!(
                    "#{} {} {}",
                    e.seq.unwrap_or(0),
                    p["command"].as_str().unwrap_or(""),
                    if p["success"].as_bool().unwrap_or(false) {
                        "ok"
                    } else {
                        "failed"
                    }
                ),
                "session_start" => format!(
                    "{} pid {}",
                    p["shell_type"].as_str().unwrap_or(""),
                    p["pid"]
                ),
                "session_end" => p
                    .get("exit_code")
                    .and_then(Value::as_i64)
                    .map(|c| format!("exit {c}"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            vec![
                fmt_time(&e.timestamp, utc),
                e.session_id.clone(),
                e.event_type.clone(),
                e.event_id.clone(),
                detail,
            ]
        })
        .collect();
    let text = match args.server.format {
        Format::Json => serde_json::to_string_pretty(&events).map_err(anyhow::Error::from)? + "\n",
        Format::Csv => csv(&headers, &rows),
        Format::Table if rows.is_empty() => "No events found.\n".to_string(),
        Format::Table => table(&headers, &rows),
    };
    emit(&text, None)?;
    Ok(())
}

pub fn health(args: ServerArgs) -> CmdResult {
    let api = Api::new(args.url.as_deref());
    let h = api.get_json("/health", &[])?;
    if args.format == Format::Json {
        emit(
            &(serde_json::to_string_pretty(&h).map_err(anyhow::Error::from)? + "\n"),
            None,
        )?;
    } else {
        let storage = &h["storage"];
        println!(
            "{}  {} {} at {}",
            h["status"].as_str().unwrap_or("?"),
            h["service"].as_str().unwrap_or("?"),
            h["version"].as_str().unwrap_or("?"),
            api.url()
        );
        println!(
            "storage  {} {} (schema {}, reachable: {})",
            storage["backend"].as_str().unwrap_or("?"),
            storage["location"].as_str().unwrap_or("?"),
            storage["schema_version"],
            storage["reachable"]
        );
    }
    if h["status"] != "ok" {
        return Err(anyhow!("the server reports it is not healthy").into());
    }
    Ok(())
}
