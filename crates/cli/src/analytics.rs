//! `session-buddy analytics sessions|duration|components|errors|active|report|sql`: the
//! original's seven commands (docs/api.md, "GET /v1/analytics/…") over the server's `/v1/analytics` API: arguments,
//! the fetch and the choice of text or JSON (`--json` prints the original's shapes). The text
//! is `session_buddy_analytics_text`'s.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use serde_json::Value;
use session_buddy_analytics_text as text;
use session_buddy_store::analytics::{
    ActiveSession, AnalyticsWindow, ComponentUsage, ErrorRate, Report, SQL_QUERY_NAMES,
    SessionStats,
};

use crate::client::Api;
use crate::output::terminal_width;
use crate::queries::{check_range, parse_user_time};
use crate::{CmdResult, Failure};

#[derive(Subcommand)]
pub enum AnalyticsCommand {
    /// Sessions per component: count, average duration, active, error rate.
    Sessions(WindowArgs),
    /// Average duration of the sessions that are over, per component.
    Duration(WindowArgs),
    /// The most active components: sessions, total time, quality score, last start.
    Components(WindowArgs),
    /// Error rate per component and its most common error.
    Errors(WindowArgs),
    /// The active sessions, newest first.
    Active(WindowArgs),
    /// The full summary report.
    Report(ReportArgs),
    /// Print the parameterised SQL a query runs: active_sessions, session_stats,
    /// average_duration, most_active, error_rate.
    Sql(SqlArgs),
}

#[derive(Args)]
pub struct WindowArgs {
    /// The server's URL [env SESSION_BUDDY_URL; default: `[client] url` from the config
    /// files, else http://127.0.0.1:<server.port>].
    #[arg(long)]
    url: Option<String>,
    /// Sessions started in the last DAYS days (1..365).
    #[arg(short = 'd', long, default_value_t = 7, allow_negative_numbers = true)]
    days: i64,
    /// One component only.
    #[arg(short = 'c', long)]
    component: Option<String>,
    /// At most this many rows (components, active sessions; 1..100).
    #[arg(short = 'l', long, default_value_t = 10, allow_negative_numbers = true)]
    limit: i64,
    /// JSON (the original's shapes) instead of text.
    #[arg(short = 'j', long)]
    json: bool,
    /// Started at or after (replaces --days): RFC 3339, a date, `YYYY-MM-DD HH:MM`, or today,
    /// yesterday, this-week, this-month, this-year (local time unless --utc).
    #[arg(long)]
    since: Option<String>,
    /// Started before (same forms as --since; default now).
    #[arg(long)]
    until: Option<String>,
}

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    window: WindowArgs,
    /// Write the report to FILE.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub struct SqlArgs {
    /// active_sessions, session_stats, average_duration, most_active or error_rate.
    query: String,
    #[arg(short = 'd', long, default_value_t = 7, allow_negative_numbers = true)]
    days: i64,
    #[arg(short = 'c', long)]
    component: Option<String>,
}

/// A validation error in the original's words: printed as is, exit 1.
fn refuse(message: &str) -> ! {
    eprintln!("Error: {message}");
    std::process::exit(1);
}

fn check_days(days: i64) {
    if days < 1 {
        refuse("days must be at least 1");
    }
    if days > 365 {
        refuse("days cannot exceed 365");
    }
}

fn check_limit(limit: i64) {
    if limit < 1 {
        refuse("limit must be at least 1");
    }
    if limit > 100 {
        refuse("limit cannot exceed 100");
    }
}

pub fn run(command: AnalyticsCommand, utc: bool) -> CmdResult {
    match command {
        AnalyticsCommand::Sessions(a) => sessions(&a, utc),
        AnalyticsCommand::Duration(a) => duration(&a, utc),
        AnalyticsCommand::Components(a) => components(&a, utc),
        AnalyticsCommand::Errors(a) => errors(&a, utc),
        AnalyticsCommand::Active(a) => active(&a, utc),
        AnalyticsCommand::Report(a) => report(&a, utc),
        AnalyticsCommand::Sql(a) => sql(&a),
    }
}

/// GETs `/v1/analytics/{what}` with the window's parameters.
fn fetch(a: &WindowArgs, what: &str, utc: bool) -> Result<Value, Failure> {
    check_days(a.days);
    check_limit(a.limit);
    let mut q: Vec<(&str, String)> =
        vec![("days", a.days.to_string()), ("limit", a.limit.to_string())];
    if let Some(c) = &a.component {
        q.push(("component", c.clone()));
    }
    let mut times = Vec::new();
    for (key, value) in [("since", &a.since), ("until", &a.until)] {
        if let Some(v) = value {
            let t = parse_user_time(v, utc).with_context(|| format!("--{key}"))?;
            q.push((key, session_buddy_events::format_timestamp(&t)));
            times.push((key, t));
        }
    }
    match times.as_slice() {
        [("since", since), ("until", until)] => {
            check_range(("--since", *since), ("--until", *until), utc)?;
        }
        [("since", since)] => check_range(("--since", *since), ("now", Utc::now()), utc)?,
        _ => {}
    }
    Api::new(a.url.as_deref()).get_json(&format!("/v1/analytics/{what}"), &q)
}

fn field<T: DeserializeOwned>(v: &Value, key: &str) -> Result<T, Failure> {
    serde_json::from_value(v.get(key).cloned().unwrap_or(Value::Null))
        .map_err(|e| Failure::Error(anyhow!("unexpected answer from the server ({key}): {e}")))
}

fn print_json<T: serde::Serialize>(v: &T) -> CmdResult {
    let text = serde_json::to_string_pretty(v).map_err(anyhow::Error::from)?;
    println!("{text}");
    Ok(())
}

fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|s| session_buddy_events::parse_timestamp(s).ok())
}

/// The answer's `since` and `until`.
fn range(v: &Value) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    Some((time(v, "since")?, time(v, "until")?))
}

/// The section's time period: `Last N days`, or the explicit range in the user's time zone.
fn period(a: &WindowArgs, v: &Value, utc: bool) -> String {
    text::period(
        a.days,
        a.since.is_some() || a.until.is_some(),
        range(v),
        v["date_range"].as_str().unwrap_or(""),
        utc,
    )
}

fn sessions(a: &WindowArgs, utc: bool) -> CmdResult {
    let v = fetch(a, "sessions", utc)?;
    let stats: Vec<SessionStats> = field(&v, "session_stats")?;
    if a.json {
        return print_json(&stats);
    }
    if stats.is_empty() {
        println!("No session data found for the specified time period.");
        return Ok(());
    }
    let trend: Vec<u64> = field(&v, "trend")?;
    print!(
        "{}",
        text::stats_text(
            &stats,
            &trend,
            &period(a, &v, utc),
            range(&v),
            utc,
            terminal_width()
        )
    );
    Ok(())
}

fn duration(a: &WindowArgs, utc: bool) -> CmdResult {
    let v = fetch(a, "duration", utc)?;
    let avg: BTreeMap<String, f64> = field(&v, "average_duration")?;
    if a.json {
        return print_json(&avg);
    }
    if avg.is_empty() {
        println!("No session data found for the specified time period.");
        return Ok(());
    }
    print!("{}", text::duration_text(&avg, &period(a, &v, utc)));
    Ok(())
}

fn components(a: &WindowArgs, utc: bool) -> CmdResult {
    let v = fetch(a, "components", utc)?;
    let usage: Vec<ComponentUsage> = field(&v, "components")?;
    if a.json {
        return print_json(&usage);
    }
    if usage.is_empty() {
        println!("No component data found for the specified time period.");
        return Ok(());
    }
    print!("{}", text::usage_text(&usage, &period(a, &v, utc), utc));
    Ok(())
}

fn errors(a: &WindowArgs, utc: bool) -> CmdResult {
    let v = fetch(a, "errors", utc)?;
    let all: BTreeMap<String, ErrorRate> = field(&v, "error_rates")?;
    // --limit keeps the highest error rates.
    let rates: BTreeMap<String, ErrorRate> = text::by_rate(&all)
        .into_iter()
        .take(usize::try_from(a.limit).unwrap_or(usize::MAX))
        .map(|(c, r)| (c.clone(), r.clone()))
        .collect();
    if a.json {
        return print_json(&rates);
    }
    if rates.is_empty() {
        println!("No session data found for the specified time period.");
        return Ok(());
    }
    print!("{}", text::errors_text(&rates, &period(a, &v, utc)));
    if all.len() > rates.len() {
        println!(
            "\n(the {} highest error rates of {} components; see more with --limit up to 100)",
            rates.len(),
            all.len()
        );
    }
    Ok(())
}

fn active(a: &WindowArgs, utc: bool) -> CmdResult {
    let v = fetch(a, "active", utc)?;
    let sessions: Vec<ActiveSession> = field(&v, "active_sessions")?;
    let total: u64 = field(&v, "total")?;
    if a.json {
        return print_json(&sessions);
    }
    if sessions.is_empty() {
        println!("No active sessions found.");
        return Ok(());
    }
    print!("{}", text::active_text(&sessions, total, utc));
    Ok(())
}

fn report(a: &ReportArgs, utc: bool) -> CmdResult {
    let w = &a.window;
    check_days(w.days);
    if w.since.is_none() && w.until.is_none() {
        eprintln!("Generating analytics report for last {} days...", w.days);
    } else {
        eprintln!("Generating analytics report...");
    }
    let v = fetch(w, "report", utc)?;
    let r: Report = serde_json::from_value(v.clone())
        .map_err(|e| anyhow!("unexpected answer from the server: {e}"))?;
    let text = if w.json {
        serde_json::to_string_pretty(&r).map_err(anyhow::Error::from)? + "\n"
    } else {
        text::report_text(&r, &period(w, &v, utc), utc, terminal_width())
    };
    match &a.output {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("Report saved to: {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn sql(a: &SqlArgs) -> CmdResult {
    check_days(a.days);
    let Some(text) = session_buddy_store_sqlite::analytics_sql(&a.query) else {
        refuse(&format!(
            "query '{}' not found; the queries are: {}",
            a.query,
            SQL_QUERY_NAMES.join(", ")
        ));
    };
    let now = Utc::now();
    let w = AnalyticsWindow::last_days(a.days as u32, now, a.component.clone());
    println!("-- {}: the last {} days", a.query, a.days);
    if a.query != "active_sessions" {
        println!(
            "-- ?2 = {} ({}), ?3 = {} (now)",
            w.since.timestamp_micros(),
            session_buddy_events::format_timestamp(&w.since),
            w.until.timestamp_micros()
        );
    }
    if let Some(c) = &a.component {
        println!("-- ?1 = '{}'", c.replace('\'', "''"));
    }
    print!("{text}");
    Ok(())
}
