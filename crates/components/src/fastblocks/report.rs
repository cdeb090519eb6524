//! The static HTML report: pages, tables and inline SVG charts, every value HTML-escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Local, NaiveDate, TimeDelta, Utc};
use serde_json::Value;

use session_buddy_html::{column_chart, escape, row_chart};

use crate::text;
use crate::text::sessions::plain;

/// At most this many days in the sessions-per-day chart (the latest ones).
const MAX_DAYS: i64 = 366;
/// Components shown by name in the by-component chart; the rest are summed as "(others)".
const MAX_COMPONENTS: usize = 20;

/// The file of a session's page: its id, with anything but `[A-Za-z0-9_.-]` replaced.
pub(crate) fn page_file(session_id: &str) -> String {
    let safe: String = session_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.html", safe.trim_start_matches('.'))
}

/// The fields of a session record the report uses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rec {
    pub(crate) id: String,
    pub(crate) component: String,
    pub(crate) status: String,
    pub(crate) username: String,
    pub(crate) hostname: String,
    pub(crate) started: Option<DateTime<Utc>>,
    pub(crate) duration: Option<f64>,
    pub(crate) commands: u64,
    pub(crate) errors: u64,
}

fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("").to_string()
}

impl Rec {
    pub(crate) fn from_json(v: &Value) -> Self {
        Self {
            id: str_of(v, "session_id"),
            component: str_of(v, "component"),
            status: str_of(v, "status"),
            username: str_of(v, "username"),
            hostname: str_of(v, "hostname"),
            started: time_of(&v["started_at"]),
            duration: v["duration_seconds"].as_f64(),
            commands: v["command_count"].as_u64().unwrap_or(0),
            errors: v["error_count"].as_u64().unwrap_or(0),
        }
    }
}

fn local(t: &DateTime<Utc>) -> String {
    t.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:75rem}\
h1,h2{font-weight:600}table{border-collapse:collapse;margin:1rem 0}\
th,td{border-bottom:1px solid #ddd;padding:.3rem .7rem;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.n{text-align:right}.cards{display:flex;flex-wrap:wrap;gap:1rem}\
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:8rem}\
.card b{display:block;font-size:1.5rem}.bar{fill:#4a7bd0}.bar:hover{fill:#27508f}\
svg text{font-size:11px;fill:#444}pre{background:#f7f7f7;padding:.8rem;overflow:auto}\
.fail{color:#b00020}.ok{color:#1b7f3b}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// Sessions started per local day, every day from the first to the last (at most the last
/// [`MAX_DAYS`]), days without sessions included.
pub(crate) fn per_day(recs: &[Rec]) -> Vec<(NaiveDate, usize)> {
    let mut counts: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    for t in recs.iter().filter_map(|r| r.started) {
        *counts
            .entry(t.with_timezone(&Local).date_naive())
            .or_default() += 1;
    }
    let (Some(&first), Some(&last)) = (counts.keys().next(), counts.keys().next_back()) else {
        return Vec::new();
    };
    let first = first.max(last - TimeDelta::days(MAX_DAYS - 1));
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| (d, counts.get(&d).copied().unwrap_or(0)))
        .collect()
}

pub(crate) fn by_component(recs: &[Rec]) -> Vec<(String, f64)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in recs {
        *counts.entry(r.component.as_str()).or_default() += 1;
    }
    let mut sorted: Vec<(&str, usize)> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let others: usize = sorted.iter().skip(MAX_COMPONENTS).map(|c| c.1).sum();
    let mut bars: Vec<(String, f64)> = sorted
        .iter()
        .take(MAX_COMPONENTS)
        .map(|(c, n)| (c.to_string(), *n as f64))
        .collect();
    if others > 0 {
        bars.push(("(others)".into(), others as f64));
    }
    bars
}

/// Buckets of session length (upper bounds in seconds).
const DURATION_BUCKETS: &[(f64, &str)] = &[
    (60.0, "<1m"),
    (300.0, "1-5m"),
    (900.0, "5-15m"),
    (1800.0, "15-30m"),
    (3600.0, "30m-1h"),
    (7200.0, "1-2h"),
    (14400.0, "2-4h"),
    (28800.0, "4-8h"),
    (f64::INFINITY, ">8h"),
];

pub(crate) fn duration_histogram(recs: &[Rec]) -> Vec<(String, f64)> {
    let mut counts = vec![0usize; DURATION_BUCKETS.len()];
    for d in recs.iter().filter_map(|r| r.duration) {
        if let Some(i) = DURATION_BUCKETS.iter().position(|(upper, _)| d < *upper) {
            counts[i] += 1;
        }
    }
    DURATION_BUCKETS
        .iter()
        .zip(counts)
        .map(|((_, label), n)| (label.to_string(), n as f64))
        .collect()
}

/// What the index page says about where its data came from.
pub(crate) struct IndexInfo<'a> {
    pub(crate) server: &'a str,
    pub(crate) generated: DateTime<Utc>,
    /// The fetch stopped at its limit: older sessions are not in the report.
    pub(crate) truncated: bool,
    /// How many rows the recent-sessions table has (each links to its page).
    pub(crate) recent: usize,
}

fn card(out: &mut String, label: &str, value: &str) {
    let _ = write!(
        out,
        "<div class=\"card\"><b>{}</b>{}</div>",
        escape(value),
        escape(label)
    );
}

pub(crate) fn index_page(recs: &[Rec], info: &IndexInfo<'_>) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h1>Session-Buddy report</h1>\n<p>{} sessions from {}{}; generated {}.</p>",
        recs.len(),
        escape(info.server),
        if info.truncated {
            " (the most recent only; older sessions are not included)"
        } else {
            ""
        },
        escape(&local(&info.generated)),
    );
    let count = |status: &str| recs.iter().filter(|r| r.status == status).count();
    let distinct = |f: fn(&Rec) -> &str| {
        recs.iter()
            .map(f)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let mut durations: Vec<f64> = recs.iter().filter_map(|r| r.duration).collect();
    durations.sort_by(f64::total_cmp);
    let median = durations
        .get(durations.len() / 2)
        .map_or("-".to_string(), |d| text::duration(*d));
    let longest = durations
        .last()
        .map_or("-".to_string(), |d| text::duration(*d));
    b.push_str("<div class=\"cards\">");
    card(&mut b, "sessions", &recs.len().to_string());
    card(&mut b, "active", &count("active").to_string());
    card(&mut b, "ended", &count("ended").to_string());
    card(&mut b, "abandoned", &count("abandoned").to_string());
    card(
        &mut b,
        "components",
        &distinct(|r| &r.component).to_string(),
    );
    card(&mut b, "users", &distinct(|r| &r.username).to_string());
    card(&mut b, "hosts", &distinct(|r| &r.hostname).to_string());
    card(
        &mut b,
        "commands",
        &recs.iter().map(|r| r.commands).sum::<u64>().to_string(),
    );
    card(
        &mut b,
        "failed commands",
        &recs.iter().map(|r| r.errors).sum::<u64>().to_string(),
    );
    card(&mut b, "median duration", &median);
    card(&mut b, "longest", &longest);
    b.push_str("</div>\n");

    let days: Vec<(String, f64)> = per_day(recs)
        .into_iter()
        .map(|(d, n)| (d.format("%Y-%m-%d").to_string(), n as f64))
        .collect();
    b.push_str("<h2>Sessions per day</h2>\n");
    b.push_str(column_chart("Sessions started per day", &days).as_str());
    b.push_str("<h2>Sessions by component</h2>\n");
    b.push_str(row_chart("Sessions by component", &by_component(recs)).as_str());
    b.push_str("<h2>Session duration</h2>\n");
    b.push_str(column_chart("Ended sessions by duration", &duration_histogram(recs)).as_str());

    let _ = writeln!(
        b,
        "<h2>Recent sessions</h2>\n<table>\n<tr><th>Session</th><th>Component</th><th>User</th>\
         <th>Host</th><th>Status</th><th>Started</th><th>Duration</th><th>Commands</th>\
         <th>Errors</th></tr>"
    );
    for r in recs.iter().take(info.recent) {
        let _ = writeln!(
            b,
            "<tr><td><a href=\"sessions/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            escape(&page_file(&r.id)),
            escape(&r.id),
            escape(&r.component),
            escape(&r.username),
            escape(&r.hostname),
            escape(&r.status),
            escape(&r.started.as_ref().map(local).unwrap_or_default()),
            escape(&r.duration.map(text::duration).unwrap_or_else(|| "-".into())),
            r.commands,
            r.errors
        );
    }
    b.push_str("</table>\n");
    page("Session-Buddy report", &b)
}

/// The record's fields in the order of the session record (docs/sessions.md), then any others.
const RECORD_FIELDS: &[&str] = &[
    "session_id",
    "session_type",
    "component",
    "shell_type",
    "component_version",
    "status",
    "username",
    "home",
    "hostname",
    "pid",
    "platform",
    "runtime_version",
    "cwd",
    "started_at",
    "ended_at",
    "last_seen_at",
    "duration_seconds",
    "command_count",
    "error_count",
    "exit_code",
    "end_reason",
];

/// What one timeline event says, in a line (the words of [`text::sessions::event_summary`]).
fn event_details(event_type: &str, p: &Value) -> (String, Option<bool>) {
    let e = text::sessions::event_summary(event_type, p);
    let mut s = e.what;
    if let Some(secs) = e.duration_secs {
        let _ = write!(s, " ({})", text::duration(secs));
    }
    if let Some(err) = e.error {
        let _ = write!(s, ": {err}");
    }
    (s, e.success)
}

/// One session's page: its record, its metadata and its timeline (or why there is none).
pub(crate) fn session_page(
    record: &Value,
    events: Result<&[Value], &str>,
    back_link: bool,
) -> String {
    let id = plain(&record["session_id"]);
    let mut b = String::new();
    if back_link {
        b.push_str("<p><a href=\"../index.html\">&larr; all sessions</a></p>\n");
    }
    let _ = writeln!(b, "<h1>Session {}</h1>\n<table>", escape(&id));
    let extra = record
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .filter(|k| !RECORD_FIELDS.contains(k) && *k != "metadata");
    for key in RECORD_FIELDS.iter().copied().chain(extra) {
        let v = &record[key];
        let shown = match (key, v) {
            ("started_at" | "ended_at" | "last_seen_at", _) => time_of(v)
                .map(|t| format!("{} ({})", local(&t), plain(v)))
                .unwrap_or_else(|| plain(v)),
            ("duration_seconds", Value::Number(n)) => {
                format!("{} ({n}s)", text::duration(n.as_f64().unwrap_or(0.0)))
            }
            _ => plain(v),
        };
        let _ = writeln!(
            b,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(key),
            escape(&shown)
        );
    }
    b.push_str("</table>\n");
    if let Some(meta) = record["metadata"].as_object().filter(|m| !m.is_empty()) {
        let pretty = serde_json::to_string_pretty(meta).unwrap_or_default();
        let _ = writeln!(b, "<h2>Metadata</h2>\n<pre>{}</pre>", escape(&pretty));
    }
    b.push_str("<h2>Timeline</h2>\n");
    match events {
        Err(why) => {
            let _ = writeln!(b, "<p>Timeline unavailable: {}</p>", escape(why));
        }
        Ok([]) => b.push_str("<p>No events.</p>\n"),
        Ok(events) => {
            b.push_str("<table>\n<tr><th>Time</th><th>Event</th><th>#</th><th>Details</th></tr>\n");
            for e in events {
                let event_type = plain(&e["event_type"]);
                let (details, success) = event_details(&event_type, &e["payload"]);
                let class = match success {
                    Some(true) => " class=\"ok\"",
                    Some(false) => " class=\"fail\"",
                    None => "",
                };
                let _ = writeln!(
                    b,
                    "<tr{class}><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                    escape(
                        &time_of(&e["timestamp"])
                            .map(|t| local(&t))
                            .unwrap_or_default()
                    ),
                    escape(&event_type),
                    escape(&e["seq"].as_u64().map(|s| s.to_string()).unwrap_or_default()),
                    escape(&details)
                );
            }
            b.push_str("</table>\n");
        }
    }
    page(&format!("Session {id}"), &b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(id: &str, component: &str, started: &str, duration: Option<f64>) -> Rec {
        Rec::from_json(&json!({
            "session_id": id, "component": component, "status": "ended",
            "username": "alice", "hostname": "h1", "started_at": started,
            "duration_seconds": duration, "command_count": 3, "error_count": 1,
        }))
    }

    #[test]
    fn page_files_are_safe_names() {
        assert_eq!(page_file("a/../b c"), "a_.._b_c.html");
        assert_eq!(
            page_file("oneiric-20260206-123456-440000"),
            "oneiric-20260206-123456-440000.html"
        );
    }

    #[test]
    fn the_day_chart_has_one_bar_per_day_including_empty_days() {
        let recs = vec![
            rec("a", "x", "2026-02-01T12:00:00Z", Some(30.0)),
            rec("b", "x", "2026-02-01T12:30:00Z", Some(90.0)),
            rec("c", "y", "2026-02-04T12:00:00Z", None),
        ];
        let days = per_day(&recs);
        assert_eq!(days.iter().map(|d| d.1).collect::<Vec<_>>(), [2, 0, 0, 1]);
        let bars: Vec<(String, f64)> = days
            .iter()
            .map(|(d, n)| (d.to_string(), *n as f64))
            .collect();
        let svg = column_chart("per day", &bars).into_string();
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 4);
        assert!(
            svg.contains("height=\"0.00\""),
            "an empty day is a zero-height bar"
        );
        assert!(per_day(&[]).is_empty());
    }

    #[test]
    fn histogram_and_components_count_sessions() {
        let recs = vec![
            rec("a", "x", "2026-02-01T12:00:00Z", Some(30.0)),
            rec("b", "x", "2026-02-01T12:30:00Z", Some(90.0)),
            rec("c", "y", "2026-02-04T12:00:00Z", Some(40000.0)),
            rec("d", "y", "2026-02-04T12:00:00Z", None),
            rec("e", "y", "2026-02-04T12:00:00Z", None),
        ];
        let h = duration_histogram(&recs);
        assert_eq!(h.len(), DURATION_BUCKETS.len());
        assert_eq!((h[0].1, h[1].1, h[8].1), (1.0, 1.0, 1.0));
        assert_eq!(h.iter().map(|b| b.1).sum::<f64>(), 3.0);
        assert_eq!(
            by_component(&recs),
            [("y".to_string(), 3.0), ("x".to_string(), 2.0)]
        );
    }

    #[test]
    fn pages_escape_every_value() {
        let evil = "<img src=x onerror=alert(1)>";
        let recs = vec![rec("s-1", evil, "2026-02-01T12:00:00Z", Some(5.0))];
        let info = IndexInfo {
            server: "http://127.0.0.1:8678",
            generated: Utc::now(),
            truncated: false,
            recent: 10,
        };
        let html = index_page(&recs, &info);
        assert!(!html.contains(evil));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("<a href=\"sessions/s-1.html\">s-1</a>"));

        let record = json!({"session_id": "s-1", "component": evil, "metadata": {"k": evil}});
        let events = vec![json!({
            "event_type": "command", "timestamp": "2026-02-01T12:00:01Z", "seq": 1,
            "payload": {"command": evil, "args": "--x", "success": false, "error": "boom"}
        })];
        let html = session_page(&record, Ok(&events), true);
        assert!(!html.contains(evil));
        assert!(html.contains("class=\"fail\""));
        assert!(html.contains("boom"));
        let html = session_page(&record, Err("<down>"), false);
        assert!(html.contains("Timeline unavailable: &lt;down&gt;"));
    }
}
