//! `session-buddy analytics sessions|duration|components|errors|active|report|sql`: the
//! original's seven commands (reference §9.2) over the server's `/v1/analytics` API. Text for
//! people (the original's section titles, tables, bar charts, sparklines); `--json` prints the
//! original's shapes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use serde_json::Value;
use session_buddy_store::analytics::{
    ActiveSession, AnalyticsWindow, ComponentUsage, ErrorRate, Report, SQL_QUERY_NAMES,
    SessionStats,
};

use crate::client::Api;
use crate::output::fmt_time;
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

/// `Last N days`, or the explicit range in the user's time zone.
fn period(a: &WindowArgs, v: &Value, utc: bool) -> String {
    if a.since.is_none() && a.until.is_none() {
        return format!("Last {} days", a.days);
    }
    match (time(v, "since"), time(v, "until")) {
        (Some(s), Some(u)) => format!("{} to {}", fmt_time(&s, utc), fmt_time(&u, utc)),
        _ => v["date_range"].as_str().unwrap_or("").to_string(),
    }
}

const RULE: &str =
    "================================================================================";

fn title(out: &mut String, text: &str) {
    out.push_str(RULE);
    out.push('\n');
    out.push_str(text);
    out.push('\n');
    out.push_str(RULE);
    out.push('\n');
}

/// `{label:20} {value:6} ████…` scaled to `width` (the original's `bar_chart`).
pub fn bar_chart(data: &[(String, u64)], width: usize) -> String {
    let max = data.iter().map(|(_, v)| *v).max().unwrap_or(0);
    if data.is_empty() || max == 0 {
        return "No data available\n".into();
    }
    let mut out = String::new();
    for (label, value) in data {
        let len = (*value as f64 / max as f64 * width as f64).round() as usize;
        out.push_str(&format!(
            "{:20} {:6} {}\n",
            truncate(label, 20),
            value,
            "█".repeat(len)
        ));
    }
    out
}

/// `▁▂▃▄▅▆▇█`, 0 … the largest value (the original's `sparkline`).
pub fn sparkline(values: &[u64]) -> String {
    const TICKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    if values.is_empty() {
        return "No data".into();
    }
    values
        .iter()
        .map(|v| {
            if max == 0 {
                TICKS[0]
            } else {
                TICKS[((*v as f64 / max as f64) * 7.0).round() as usize]
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
pub enum Align {
    Left,
    Right,
}

/// Header joined by ` | `, a line of dashes, the rows (the original's `table`).
pub fn ascii_table(headers: &[&str], rows: &[Vec<String>], align: &[Align]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths[i];
                match align.get(i).copied().unwrap_or(Align::Left) {
                    Align::Left => format!("{c:<w$}"),
                    Align::Right => format!("{c:>w$}"),
                }
            })
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    let header = line(headers.to_vec());
    let mut out = format!("{header}\n{}\n", "-".repeat(header.chars().count()));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect()
    }
}

/// `Xh Ym Zs` / `Ym Zs` / `Zs` (the original's duration text); tenths under 10 s, so a short
/// session does not read as `0s`.
pub fn hms(secs: f64) -> String {
    if secs < 9.95 {
        return format!("{:.1}s", secs.max(0.0));
    }
    let total = secs.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// The trend as a sparkline that fits the terminal, under a line saying what it spans. When
/// the window has more buckets than fit, neighbours are summed, from the newest back, so the
/// last bar is whole.
fn trend_line(trend: &[u64], v: &Value, utc: bool) -> String {
    trend_text(trend, v, utc, crate::output::terminal_width())
}

fn trend_text(trend: &[u64], v: &Value, utc: bool, width: usize) -> String {
    let (Some(since), Some(until)) = (time(v, "since"), time(v, "until")) else {
        return String::new();
    };
    let buckets = AnalyticsWindow {
        since,
        until,
        component: None,
    }
    .buckets();
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return String::new();
    };
    if trend.is_empty() {
        return String::new();
    }
    let group = trend.len().div_ceil(width.max(1));
    let mut bars: Vec<u64> = trend.rchunks(group).map(|c| c.iter().sum()).collect();
    bars.reverse();
    let day = |us: i64| {
        DateTime::from_timestamp_micros(us)
            .map(|t| fmt_time(&t, utc).chars().take(10).collect::<String>())
            .unwrap_or_default()
    };
    const DAY_US: f64 = 86_400_000_000.0;
    let days = (last.1 - last.0) as f64 * group as f64 / DAY_US;
    let per = if (days - 1.0).abs() < 1e-6 {
        "day".to_string()
    } else if (days - days.round()).abs() < 1e-6 {
        format!("{} days", days.round())
    } else {
        format!("{days:.1} days")
    };
    // The last bucket ends at `until`, which it excludes: its day is that of the instant before.
    format!(
        "Sessions per {per}, {} … {} (peak {}):\n{}\n",
        day(first.0),
        day(last.1 - 1),
        bars.iter().max().copied().unwrap_or(0),
        sparkline(&bars)
    )
}

/// A duration for people; `-` when nothing is over, so there is no duration to show.
fn over_duration(secs: f64, any_over: bool) -> String {
    if any_over { hms(secs) } else { "-".into() }
}

fn stats_text(stats: &[SessionStats], trend: &[u64], period: &str, v: &Value, utc: bool) -> String {
    let mut out = String::new();
    title(&mut out, "SESSION STATISTICS");
    out.push_str(&format!("Time Period: {period}\n\n"));
    out.push_str("Total Sessions by Component:\n");
    let bars: Vec<(String, u64)> = stats
        .iter()
        .map(|s| (s.component_name.clone(), s.total_sessions))
        .collect();
    out.push_str(&bar_chart(&bars, 50));
    out.push('\n');
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            vec![
                s.component_name.clone(),
                s.total_sessions.to_string(),
                over_duration(s.avg_duration, s.total_sessions > s.active_sessions),
                s.active_sessions.to_string(),
                format!("{:.1}%", s.error_rate),
            ]
        })
        .collect();
    use Align::{Left, Right};
    out.push_str(&ascii_table(
        &[
            "Component",
            "Sessions",
            "Avg Duration",
            "Active",
            "Error Rate",
        ],
        &rows,
        &[Left, Right, Right, Right, Right],
    ));
    out.push('\n');
    out.push_str(&trend_line(trend, v, utc));
    out
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
        stats_text(&stats, &trend, &period(a, &v, utc), &v, utc)
    );
    Ok(())
}

fn duration_text(avg: &BTreeMap<String, f64>, period: &str) -> String {
    let mut out = String::new();
    title(&mut out, "AVERAGE SESSION DURATION");
    out.push_str(&format!("Time Period: {period}\n\n"));
    let mut rows: Vec<(&String, &f64)> = avg.iter().collect();
    rows.sort_by(|a, b| b.1.total_cmp(a.1).then_with(|| a.0.cmp(b.0)));
    for (component, secs) in rows {
        out.push_str(&format!(
            "  {:30} {:>20} ({:.0}s)\n",
            component,
            hms(*secs),
            secs
        ));
    }
    out
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
    print!("{}", duration_text(&avg, &period(a, &v, utc)));
    Ok(())
}

fn usage_text(usage: &[ComponentUsage], period: &str, utc: bool) -> String {
    let mut out = String::new();
    title(&mut out, "COMPONENT USAGE");
    out.push_str(&format!("Time Period: {period}\n\n"));
    let rows: Vec<Vec<String>> = usage
        .iter()
        .map(|u| {
            vec![
                u.component_name.clone(),
                u.session_count.to_string(),
                over_duration(u.total_duration, u.total_duration > 0.0),
                format!("{:.1}", u.avg_quality_score),
                u.last_active
                    .map(|t| fmt_time(&t, utc).chars().take(16).collect())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    use Align::{Left, Right};
    out.push_str(&ascii_table(
        &[
            "Component",
            "Sessions",
            "Total Duration",
            "Avg Quality",
            "Last Active",
        ],
        &rows,
        &[Left, Right, Right, Right, Left],
    ));
    out
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
    print!("{}", usage_text(&usage, &period(a, &v, utc), utc));
    Ok(())
}

fn by_rate(rates: &BTreeMap<String, ErrorRate>) -> Vec<(&String, &ErrorRate)> {
    let mut rows: Vec<(&String, &ErrorRate)> = rates.iter().collect();
    rows.sort_by(|a, b| {
        b.1.error_rate
            .total_cmp(&a.1.error_rate)
            .then_with(|| a.0.cmp(b.0))
    });
    rows
}

fn short_error(e: &str) -> String {
    if e.chars().count() > 60 {
        format!("{}...", e.chars().take(60).collect::<String>())
    } else {
        e.to_string()
    }
}

fn errors_text(rates: &BTreeMap<String, ErrorRate>, period: &str) -> String {
    let mut out = String::new();
    title(&mut out, "ERROR RATE STATISTICS");
    out.push_str(&format!("Time Period: {period}\n"));
    for (component, r) in by_rate(rates) {
        out.push_str(&format!("\n{component}:\n"));
        out.push_str(&format!("  Error Rate:     {:.2}%\n", r.error_rate));
        out.push_str(&format!("  Total Sessions: {}\n", r.total_sessions));
        out.push_str(&format!("  Failed:         {}\n", r.failed_sessions));
        if let Some(e) = &r.most_common_error {
            out.push_str(&format!("  Most Common:    {}\n", short_error(e)));
        }
    }
    out
}

fn errors(a: &WindowArgs, utc: bool) -> CmdResult {
    let v = fetch(a, "errors", utc)?;
    let all: BTreeMap<String, ErrorRate> = field(&v, "error_rates")?;
    // --limit keeps the highest error rates.
    let rates: BTreeMap<String, ErrorRate> = by_rate(&all)
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
    print!("{}", errors_text(&rates, &period(a, &v, utc)));
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
    let mut out = String::new();
    title(&mut out, &format!("ACTIVE SESSIONS ({total})"));
    for s in &sessions {
        out.push_str(&format!("\nSession:   {}\n", s.session_id));
        out.push_str(&format!("Component: {}\n", s.component_name));
        out.push_str(&format!("Project:   {}\n", s.project));
        out.push_str(&format!("Duration:  {}\n", hms(s.duration_seconds as f64)));
        out.push_str(&format!("Started:   {}\n", fmt_time(&s.start_time, utc)));
    }
    if total > sessions.len() as u64 {
        out.push_str(&format!(
            "\n(the newest {} of {total}; see more with --limit up to 100, or `session-buddy list-sessions --status active`)\n",
            sessions.len()
        ));
    }
    print!("{out}");
    Ok(())
}

pub fn report_text(r: &Report, period: &str, utc: bool) -> String {
    let mut out = String::new();
    title(&mut out, "SESSION-BUDDY ANALYTICS REPORT");
    out.push_str(&format!("Generated: {}\n", fmt_time(&r.generated_at, utc)));
    out.push_str(&format!("Time Period: {period}\n\n"));
    let total: u64 = r.session_stats.iter().map(|s| s.total_sessions).sum();
    let failed: u64 = r.error_rates.values().map(|e| e.failed_sessions).sum();
    let avg_rate = if r.error_rates.is_empty() {
        0.0
    } else {
        r.error_rates.values().map(|e| e.error_rate).sum::<f64>() / r.error_rates.len() as f64
    };
    out.push_str("SUMMARY\n");
    out.push_str(&format!("{}\n", "-".repeat(80)));
    out.push_str(&format!("Total Sessions: {total}\n"));
    out.push_str(&format!("Components Analyzed: {}\n", r.session_stats.len()));
    out.push_str(&format!("Total Errors: {failed}\n"));
    out.push_str(&format!("Average Error Rate: {avg_rate:.2}%\n"));
    out.push_str(&format!("Active Sessions (now): {}\n", r.active_sessions));
    let v = serde_json::json!({
        "since": session_buddy_events::format_timestamp(&r.since),
        "until": session_buddy_events::format_timestamp(&r.until),
    });
    out.push_str("\nTOP COMPONENTS (by session count):\n");
    if r.components.is_empty() {
        out.push_str("  (none)\n");
    }
    for c in &r.components {
        out.push_str(&format!(
            "  • {}: {} sessions, {}, quality {:.1}\n",
            c.component_name,
            c.session_count,
            if c.total_duration > 0.0 {
                format!("{} in all", hms(c.total_duration))
            } else {
                "none over yet".to_string()
            },
            c.avg_quality_score
        ));
    }
    out.push_str("\nCOMPONENTS WITH HIGH ERROR RATES:\n");
    let high: Vec<(&String, &ErrorRate)> = by_rate(&r.error_rates)
        .into_iter()
        .filter(|(_, e)| e.error_rate > 5.0)
        .collect();
    if high.is_empty() {
        out.push_str("  None above 5%\n");
    }
    for (component, e) in high {
        out.push_str(&format!(
            "  • {component}: {:.2}% ({} of {} sessions)\n",
            e.error_rate, e.failed_sessions, e.total_sessions
        ));
        if let Some(m) = &e.most_common_error {
            out.push_str(&format!("    Most common: {}\n", short_error(m)));
        }
    }
    if !r.session_stats.is_empty() {
        out.push('\n');
        out.push_str(&stats_text(&r.session_stats, &r.trend, period, &v, utc));
        out.push('\n');
        out.push_str(&duration_text(&r.average_duration, period));
        out.push('\n');
        out.push_str(&usage_text(&r.components, period, utc));
    }
    out.push('\n');
    title(&mut out, "End of Report");
    out
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
        report_text(&r, &period(w, &v, utc), utc)
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
    let Some(text) = session_buddy_store::analytics::sql(&a.query) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_and_durations() {
        assert_eq!(sparkline(&[0, 1, 2, 4]), "▁▃▅█");
        assert_eq!(sparkline(&[]), "No data");
        assert_eq!(hms(3723.0), "1h 2m 3s");
        assert_eq!(hms(300.0), "5m 0s");
        assert_eq!(hms(12.4), "12s");
        assert_eq!(hms(0.24), "0.2s");
        assert_eq!(hms(9.96), "10s");
        let chart = bar_chart(&[("a".into(), 2), ("b".into(), 1)], 10);
        assert_eq!(
            chart,
            format!(
                "{:20} {:6} {}\n{:20} {:6} {}\n",
                "a",
                2,
                "█".repeat(10),
                "b",
                1,
                "█".repeat(5)
            )
        );
        let t = ascii_table(
            &["A", "Num"],
            &[vec!["xy".into(), "5".into()]],
            &[Align::Left, Align::Right],
        );
        assert_eq!(t, "A  | Num\n--------\nxy |   5\n");
    }
}
