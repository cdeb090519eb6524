//! Akosha (Diviner): patterns in the tracked data: aggregates by component, user, host or
//! day; text search over sessions and commands; anomalies; who uses what where; trends.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};

use chrono::{DateTime, Datelike, Duration, Local, NaiveDateTime, TimeZone, Timelike, Utc};
use serde_json::Value;
use session_buddy_events::{Session, SessionStatus, StoredEvent};
use session_buddy_shell::{Context, Helper, HelperError, HelperResult, ShellSpec};

use crate::session_buddy::{
    MAX_EVENTS, at_most_args, clip, command_view, count_arg, fetch_command_events, fetch_sessions,
    local_time, since_days,
};
use crate::text;

pub(crate) fn spec() -> ShellSpec {
    ShellSpec {
        component: "akosha".into(),
        display_name: "Akosha".into(),
        version: crate::VERSION.into(),
        tagline: "Distributed Intelligence & Pattern Recognition over tracked sessions".into(),
        role: "Diviner".into(),
        shell_type: "AkoshaShell".into(),
        help_notes: String::new(),
        helpers: vec![
            Helper::new(
                "aggregate",
                "sessions, durations and errors per component, user, host or day",
                aggregate,
            )
            .usage("[component|user|host|day]")
            .complete(|req| req.first(["component", "user", "host", "day"])),
            Helper::new(
                "search",
                "case-insensitive text search over sessions and commands",
                search,
            )
            .usage("TEXT"),
            Helper::new(
                "detect",
                "anomalies of the last 7 days: duration outliers, error spikes, abandoned bursts",
                detect,
            ),
            Helper::new(
                "graph",
                "who uses which component where: user → component → host",
                graph,
            ),
            Helper::new(
                "trends",
                "sessions per hour, day or week with a sparkline",
                trends,
            )
            .usage("[hour|day|week] [days]")
            .complete(|req| req.first(["hour", "day", "week"])),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// aggregate

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupBy {
    Component,
    User,
    Host,
    Day,
}

impl GroupBy {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "component" => GroupBy::Component,
            "user" => GroupBy::User,
            "host" => GroupBy::Host,
            "day" => GroupBy::Day,
            _ => return None,
        })
    }

    fn title(self) -> &'static str {
        match self {
            GroupBy::Component => "Component",
            GroupBy::User => "User",
            GroupBy::Host => "Host",
            GroupBy::Day => "Day",
        }
    }
}

/// The numbers of one group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub key: String,
    pub sessions: u64,
    pub active: u64,
    pub abandoned: u64,
    /// Sessions with a duration (ended or abandoned).
    pub timed: u64,
    pub total_duration: f64,
    pub commands: u64,
    pub errors: u64,
    pub sessions_with_errors: u64,
}

impl Group {
    pub fn mean_duration(&self) -> Option<f64> {
        (self.timed > 0).then(|| self.total_duration / self.timed as f64)
    }
}

/// Groups of `sessions`; days are local dates in `tz`, listed in order; other groups the
/// most sessions first.
pub(crate) fn aggregate_by<Tz: TimeZone>(sessions: &[Session], by: GroupBy, tz: &Tz) -> Vec<Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for s in sessions {
        let key = match by {
            GroupBy::Component => s.component.clone(),
            GroupBy::User => s.username.clone(),
            GroupBy::Host => s.hostname.clone(),
            GroupBy::Day => s
                .started_at
                .with_timezone(tz)
                .date_naive()
                .format("%Y-%m-%d")
                .to_string(),
        };
        let g = groups.entry(key.clone()).or_insert_with(|| Group {
            key,
            sessions: 0,
            active: 0,
            abandoned: 0,
            timed: 0,
            total_duration: 0.0,
            commands: 0,
            errors: 0,
            sessions_with_errors: 0,
        });
        g.sessions += 1;
        g.active += u64::from(s.status == SessionStatus::Active);
        g.abandoned += u64::from(s.status == SessionStatus::Abandoned);
        if let Some(d) = s.duration_seconds {
            g.timed += 1;
            g.total_duration += d.max(0.0);
        }
        g.commands += s.command_count;
        g.errors += s.error_count;
        g.sessions_with_errors += u64::from(s.error_count > 0);
    }
    let mut out: Vec<Group> = groups.into_values().collect();
    if by != GroupBy::Day {
        out.sort_by(|a, b| b.sessions.cmp(&a.sessions).then_with(|| a.key.cmp(&b.key)));
    }
    out
}

fn aggregate(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    let usage = "aggregate [component|user|host|day]";
    at_most_args(args, 1, usage)?;
    let by = match args.first() {
        None => GroupBy::Component,
        Some(a) => GroupBy::parse(a).ok_or_else(|| {
            HelperError::new(format!(
                "cannot group by '{a}': use component, user, host or day"
            ))
        })?,
    };
    let fetched = fetch_sessions(ctx, &[])?;
    let groups = aggregate_by(&fetched.sessions, by, &Local);
    let out = render_aggregate(&groups, by, fetched.sessions.len()) + &fetched.cap_note();
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

fn render_aggregate(groups: &[Group], by: GroupBy, total: usize) -> String {
    if groups.is_empty() {
        return "No sessions recorded yet.\n".into();
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.key.clone(),
                g.sessions.to_string(),
                g.active.to_string(),
                g.abandoned.to_string(),
                // Nothing over yet: no time to add up, which is not zero time.
                match g.mean_duration() {
                    Some(_) => text::duration(g.total_duration),
                    None => "-".into(),
                },
                g.mean_duration()
                    .map(text::duration)
                    .unwrap_or_else(|| "-".into()),
                g.commands.to_string(),
                g.errors.to_string(),
                g.sessions_with_errors.to_string(),
            ]
        })
        .collect();
    format!(
        "{total} sessions by {} (durations of ended and abandoned sessions):\n{}",
        by.title().to_lowercase(),
        text::table(
            &[
                by.title(),
                "Sessions",
                "Active",
                "Abandoned",
                "Total time",
                "Mean time",
                "Commands",
                "Errors",
                "Sessions w/ errors",
            ],
            &rows
        )
    )
}

// ---------------------------------------------------------------------------------------------
// search

/// A session with the fields where the text was found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionHit<'a> {
    pub session: &'a Session,
    /// (field, value) pairs, e.g. `("metadata.role", "Diviner")`.
    pub fields: Vec<(String, String)>,
}

/// A command event with the fields where the text was found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CommandHit<'a> {
    pub event: &'a StoredEvent,
    pub fields: Vec<(String, String)>,
}

fn contains(haystack: &str, needle_lower: &str) -> bool {
    haystack.to_lowercase().contains(needle_lower)
}

/// Sessions whose id, component, user, host, cwd, shell type, end reason or metadata (keys
/// or values) contain `needle`, ignoring case.
pub(crate) fn search_sessions<'a>(sessions: &'a [Session], needle: &str) -> Vec<SessionHit<'a>> {
    let needle = needle.to_lowercase();
    sessions
        .iter()
        .filter_map(|s| {
            let mut fields: Vec<(String, String)> = [
                ("session_id", Some(&s.session_id)),
                ("component", Some(&s.component)),
                ("user", Some(&s.username)),
                ("host", Some(&s.hostname)),
                ("cwd", Some(&s.cwd)),
                ("shell_type", Some(&s.shell_type)),
                ("end_reason", s.end_reason.as_ref()),
            ]
            .into_iter()
            .filter_map(|(name, v)| {
                let v = v?;
                contains(v, &needle).then(|| (name.to_string(), v.clone()))
            })
            .collect();
            for (k, v) in &s.metadata {
                search_json(v, &format!("metadata.{k}"), k, &needle, &mut fields);
            }
            (!fields.is_empty()).then_some(SessionHit { session: s, fields })
        })
        .collect()
}

/// Where `needle` occurs in `value` (a key or a scalar), as `(path, value)` pairs.
fn search_json(
    value: &Value,
    path: &str,
    key: &str,
    needle: &str,
    hits: &mut Vec<(String, String)>,
) {
    match value {
        Value::Object(map) => {
            if contains(key, needle) {
                hits.push((path.to_string(), clip(&value.to_string(), 80)));
            }
            for (k, v) in map {
                search_json(v, &format!("{path}.{k}"), k, needle, hits);
            }
        }
        Value::Array(items) => {
            if contains(key, needle) {
                hits.push((path.to_string(), clip(&value.to_string(), 80)));
            }
            for (i, v) in items.iter().enumerate() {
                search_json(v, &format!("{path}[{i}]"), "", needle, hits);
            }
        }
        scalar => {
            let text = match scalar {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if contains(&text, needle) || contains(key, needle) {
                hits.push((path.to_string(), clip(&text, 80)));
            }
        }
    }
}

/// Command events whose command, args or error contain `needle`, ignoring case; the newest
/// first.
pub(crate) fn search_commands<'a>(events: &'a [StoredEvent], needle: &str) -> Vec<CommandHit<'a>> {
    let needle = needle.to_lowercase();
    let mut hits: Vec<CommandHit<'a>> = events
        .iter()
        .filter_map(|e| {
            let c = command_view(e)?;
            let fields: Vec<(String, String)> = [
                ("command", Some(c.command)),
                ("args", Some(c.args)),
                ("error", c.error),
            ]
            .into_iter()
            .filter_map(|(name, v)| {
                let v = v?;
                contains(v, &needle).then(|| (name.to_string(), v.to_string()))
            })
            .collect();
            (!fields.is_empty()).then_some(CommandHit { event: e, fields })
        })
        .collect();
    hits.sort_by(|a, b| {
        b.event
            .timestamp
            .cmp(&a.event.timestamp)
            .then_with(|| a.event.event_id.cmp(&b.event.event_id))
    });
    hits
}

/// How many hits of each kind `search` prints.
const SHOWN_HITS: usize = 50;

fn search(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    let needle = args.join(" ");
    if needle.trim().is_empty() {
        return Err(HelperError::new("usage: search TEXT"));
    }
    let fetched = fetch_sessions(ctx, &[])?;
    let events = fetch_command_events(ctx)?;
    let out = render_search(&needle, &fetched.sessions, &events, &Local) + &fetched.cap_note();
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

fn render_search<Tz: TimeZone>(
    needle: &str,
    sessions: &[Session],
    events: &[StoredEvent],
    tz: &Tz,
) -> String
where
    Tz::Offset: Display,
{
    let session_hits = search_sessions(sessions, needle);
    let command_hits = search_commands(events, needle);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Sessions matching '{needle}': {} of {} searched",
        session_hits.len(),
        sessions.len()
    );
    for h in session_hits.iter().take(SHOWN_HITS) {
        let s = h.session;
        let _ = writeln!(
            out,
            "  {}  {}  {}@{}  {}  {}",
            s.session_id,
            s.component,
            s.username,
            s.hostname,
            s.status,
            local_time(s.started_at, tz)
        );
        for (field, value) in &h.fields {
            let _ = writeln!(out, "      {field}: {value}");
        }
    }
    if session_hits.len() > SHOWN_HITS {
        let _ = writeln!(out, "  … and {} more", session_hits.len() - SHOWN_HITS);
    }
    let scope = if events.len() >= MAX_EVENTS {
        format!("the latest {} command events", events.len())
    } else {
        format!("{} command events", events.len())
    };
    let _ = writeln!(
        out,
        "Commands matching '{needle}': {} of {scope}",
        command_hits.len()
    );
    for h in command_hits.iter().take(SHOWN_HITS) {
        let e = h.event;
        let (name, ok) = command_view(e)
            .map(|c| (c.command, c.success))
            .unwrap_or(("?", true));
        let _ = writeln!(
            out,
            "  {}  {}  {name}  {}",
            local_time(e.timestamp, tz),
            e.session_id,
            if ok { "ok" } else { "failed" }
        );
        for (field, value) in &h.fields {
            let _ = writeln!(out, "      {field}: {}", clip(value, 100));
        }
    }
    if command_hits.len() > SHOWN_HITS {
        let _ = writeln!(out, "  … and {} more", command_hits.len() - SHOWN_HITS);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// detect

/// Fewest durations of a component to judge outliers.
const MIN_SAMPLES: usize = 8;
/// An hour is a spike with at least this many failed commands …
const SPIKE_MIN_FAILURES: u64 = 3;
/// … and at least this many times the median per active hour.
const SPIKE_FACTOR: f64 = 3.0;
/// Abandoned sessions of one component within [`BURST_WINDOW_MIN`] minutes.
const BURST_MIN_SESSIONS: usize = 3;
const BURST_WINDOW_MIN: i64 = 10;

/// The first and third quartiles of sorted values (linear interpolation).
fn quartiles(sorted: &[f64]) -> Option<(f64, f64)> {
    let q = |p: f64| {
        let h = (sorted.len() - 1) as f64 * p;
        let lo = h.floor() as usize;
        let hi = (lo + 1).min(sorted.len() - 1);
        sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
    };
    (!sorted.is_empty()).then(|| (q(0.25), q(0.75)))
}

/// A component's duration sample and its outlier threshold (`None` below [`MIN_SAMPLES`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DurationCheck {
    pub component: String,
    pub samples: usize,
    pub threshold: Option<f64>,
    /// (session id, duration), the longest first.
    pub outliers: Vec<(String, f64)>,
}

/// Sessions longer than Q3 + 3 × IQR of their component's durations.
pub(crate) fn duration_outliers(sessions: &[Session]) -> Vec<DurationCheck> {
    let mut by_component: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
    for s in sessions {
        if let Some(d) = s.duration_seconds {
            by_component
                .entry(&s.component)
                .or_default()
                .push((&s.session_id, d));
        }
    }
    by_component
        .into_iter()
        .map(|(component, samples)| {
            let mut sorted: Vec<f64> = samples.iter().map(|(_, d)| *d).collect();
            sorted.sort_by(f64::total_cmp);
            let threshold = (sorted.len() >= MIN_SAMPLES)
                .then(|| quartiles(&sorted))
                .flatten()
                .map(|(q1, q3)| q3 + 3.0 * (q3 - q1));
            let mut outliers: Vec<(String, f64)> = match threshold {
                Some(t) => samples
                    .iter()
                    .filter(|(_, d)| *d > t)
                    .map(|(id, d)| (id.to_string(), *d))
                    .collect(),
                None => Vec::new(),
            };
            outliers.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            DurationCheck {
                component: component.to_string(),
                samples: sorted.len(),
                threshold,
                outliers,
            }
        })
        .collect()
}

/// An hour with unusually many failed commands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ErrorSpike {
    pub hour: DateTime<Utc>,
    pub failed: u64,
}

/// Failed commands per hour of activity since `since`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ErrorSpikes {
    /// Hours with at least one command.
    pub active_hours: usize,
    /// Median failed commands per active hour.
    pub median: f64,
    pub spikes: Vec<ErrorSpike>,
}

/// Hours (UTC hour buckets) whose failed-command count is ≥ 3 and ≥ 3 × the median count of
/// the hours that saw any command.
pub(crate) fn error_spikes(events: &[StoredEvent], since: DateTime<Utc>) -> ErrorSpikes {
    let mut per_hour: BTreeMap<i64, u64> = BTreeMap::new();
    for e in events.iter().filter(|e| e.timestamp >= since) {
        let Some(c) = command_view(e) else { continue };
        let failed = per_hour
            .entry(e.timestamp.timestamp().div_euclid(3600))
            .or_default();
        *failed += u64::from(!c.success);
    }
    let mut counts: Vec<u64> = per_hour.values().copied().collect();
    counts.sort_unstable();
    let median = match counts.len() {
        0 => 0.0,
        n if n % 2 == 1 => counts[n / 2] as f64,
        n => (counts[n / 2 - 1] + counts[n / 2]) as f64 / 2.0,
    };
    let spikes = per_hour
        .iter()
        .filter(|(_, n)| **n >= SPIKE_MIN_FAILURES && **n as f64 >= SPIKE_FACTOR * median)
        .filter_map(|(h, n)| {
            Some(ErrorSpike {
                hour: DateTime::from_timestamp(h * 3600, 0)?,
                failed: *n,
            })
        })
        .collect();
    ErrorSpikes {
        active_hours: counts.len(),
        median,
        spikes,
    }
}

/// Abandoned sessions of one component close together.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AbandonedBurst {
    pub component: String,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub sessions: Vec<String>,
}

/// Runs of ≥ 3 abandoned sessions of one component whose last signs of life fall within
/// 10 minutes.
pub(crate) fn abandoned_bursts(sessions: &[Session]) -> Vec<AbandonedBurst> {
    let mut by_component: BTreeMap<&str, Vec<(DateTime<Utc>, &str)>> = BTreeMap::new();
    for s in sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Abandoned)
    {
        by_component
            .entry(&s.component)
            .or_default()
            .push((s.ended_at.unwrap_or(s.last_seen_at), &s.session_id));
    }
    let window = Duration::minutes(BURST_WINDOW_MIN);
    let mut out = Vec::new();
    for (component, mut times) in by_component {
        times.sort();
        let mut i = 0;
        while i < times.len() {
            let mut j = i;
            while j + 1 < times.len() && times[j + 1].0 - times[i].0 <= window {
                j += 1;
            }
            if j + 1 - i >= BURST_MIN_SESSIONS {
                out.push(AbandonedBurst {
                    component: component.to_string(),
                    first: times[i].0,
                    last: times[j].0,
                    sessions: times[i..=j].iter().map(|(_, id)| id.to_string()).collect(),
                });
                i = j + 1;
            } else {
                i += 1;
            }
        }
    }
    out.sort_by(|a, b| {
        b.first
            .cmp(&a.first)
            .then_with(|| a.component.cmp(&b.component))
    });
    out
}

fn detect(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 0, "detect")?;
    let now = Utc::now();
    let fetched = fetch_sessions(ctx, &[since_days(now, 7)])?;
    let events = fetch_command_events(ctx)?;
    let since = now - Duration::days(7);
    let out = render_detect(&fetched.sessions, &events, since, &Local) + &fetched.cap_note();
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

fn render_detect<Tz: TimeZone>(
    sessions: &[Session],
    events: &[StoredEvent],
    since: DateTime<Utc>,
    tz: &Tz,
) -> String
where
    Tz::Offset: Display,
{
    let durations = duration_outliers(sessions);
    let spikes = error_spikes(events, since);
    let bursts = abandoned_bursts(sessions);
    let mut out = format!(
        "Anomalies since {} ({} sessions, {} command events):\n",
        local_time(since, tz),
        sessions.len(),
        events.iter().filter(|e| e.timestamp >= since).count()
    );

    out.push_str(&format!(
        "\nDuration outliers (longer than Q3 + 3 × IQR of the component, at least {MIN_SAMPLES} durations):\n"
    ));
    for c in &durations {
        match c.threshold {
            None => {
                let _ = writeln!(
                    out,
                    "  {}: {} duration{}, too few to judge",
                    c.component,
                    c.samples,
                    if c.samples == 1 { "" } else { "s" }
                );
            }
            Some(t) => {
                let _ = writeln!(
                    out,
                    "  {}: threshold {} over {} durations, {} outlier{}",
                    c.component,
                    text::duration(t),
                    c.samples,
                    c.outliers.len(),
                    if c.outliers.len() == 1 { "" } else { "s" }
                );
                for (id, d) in &c.outliers {
                    let _ = writeln!(out, "    ! {id} lasted {}", text::duration(*d));
                }
            }
        }
    }
    if durations.is_empty() {
        out.push_str("  no ended sessions\n");
    }

    let _ = writeln!(
        out,
        "\nError spikes (an hour with ≥ {SPIKE_MIN_FAILURES} failed commands and ≥ {SPIKE_FACTOR} × the median; median {} per active hour over {} active hours{}):",
        spikes.median,
        spikes.active_hours,
        if events.len() >= MAX_EVENTS {
            format!(", from the latest {MAX_EVENTS} command events")
        } else {
            String::new()
        }
    );
    if spikes.spikes.is_empty() {
        out.push_str("  none\n");
    }
    for s in &spikes.spikes {
        let _ = writeln!(
            out,
            "  ! {} – {}: {} failed commands",
            local_time(s.hour, tz),
            (s.hour + Duration::hours(1))
                .with_timezone(tz)
                .format("%H:%M"),
            s.failed
        );
    }

    let _ = writeln!(
        out,
        "\nAbandoned bursts (≥ {BURST_MIN_SESSIONS} abandoned sessions of one component within {BURST_WINDOW_MIN} minutes):"
    );
    if bursts.is_empty() {
        out.push_str("  none\n");
    }
    for b in &bursts {
        let _ = writeln!(
            out,
            "  ! {}: {} sessions abandoned between {} and {}: {}",
            b.component,
            b.sessions.len(),
            local_time(b.first, tz),
            local_time(b.last, tz),
            b.sessions.join(", ")
        );
    }

    let found = durations.iter().map(|c| c.outliers.len()).sum::<usize>()
        + spikes.spikes.len()
        + bursts.len();
    if found == 0 {
        out.push_str("\nNo anomalies found.\n");
    } else {
        let _ = writeln!(
            out,
            "\n{found} anomal{} found.",
            if found == 1 { "y" } else { "ies" }
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// graph

/// user → component → host, with session counts at every level.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub name: String,
    pub sessions: u64,
    pub children: Vec<Node>,
}

/// The user → component → host tree; at each level the most sessions first, then the name.
pub(crate) fn usage_graph(sessions: &[Session]) -> Vec<Node> {
    type Hosts<'a> = BTreeMap<&'a str, u64>;
    let mut tree: BTreeMap<&str, BTreeMap<&str, Hosts<'_>>> = BTreeMap::new();
    for s in sessions {
        *tree
            .entry(&s.username)
            .or_default()
            .entry(&s.component)
            .or_default()
            .entry(&s.hostname)
            .or_default() += 1;
    }
    fn ranked(mut nodes: Vec<Node>) -> Vec<Node> {
        nodes.sort_by(|a, b| {
            b.sessions
                .cmp(&a.sessions)
                .then_with(|| a.name.cmp(&b.name))
        });
        nodes
    }
    ranked(
        tree.into_iter()
            .map(|(user, components)| {
                let children = ranked(
                    components
                        .into_iter()
                        .map(|(component, hosts)| {
                            let hosts = ranked(
                                hosts
                                    .into_iter()
                                    .map(|(h, n)| Node {
                                        name: h.to_string(),
                                        sessions: n,
                                        children: Vec::new(),
                                    })
                                    .collect(),
                            );
                            Node {
                                name: component.to_string(),
                                sessions: hosts.iter().map(|h| h.sessions).sum(),
                                children: hosts,
                            }
                        })
                        .collect(),
                );
                Node {
                    name: user.to_string(),
                    sessions: children.iter().map(|c| c.sessions).sum(),
                    children,
                }
            })
            .collect(),
    )
}

fn graph(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 0, "graph")?;
    let fetched = fetch_sessions(ctx, &[])?;
    let out = render_graph(&usage_graph(&fetched.sessions)) + &fetched.cap_note();
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

fn render_graph(users: &[Node]) -> String {
    if users.is_empty() {
        return "No sessions recorded yet.\n".into();
    }
    let components: std::collections::BTreeSet<&str> = users
        .iter()
        .flat_map(|u| u.children.iter().map(|c| c.name.as_str()))
        .collect();
    let hosts: std::collections::BTreeSet<&str> = users
        .iter()
        .flat_map(|u| u.children.iter())
        .flat_map(|c| c.children.iter().map(|h| h.name.as_str()))
        .collect();
    let user_edges: usize = users.iter().map(|u| u.children.len()).sum();
    let host_edges: usize = users
        .iter()
        .flat_map(|u| u.children.iter())
        .map(|c| c.children.len())
        .sum();
    let mut out = format!(
        "user → component → host ({} users, {} components, {} hosts; {user_edges} user→component and {host_edges} component→host edges; counts are sessions):\n",
        users.len(),
        components.len(),
        hosts.len()
    );
    for u in users {
        let _ = writeln!(out, "{} ({})", u.name, u.sessions);
        for (ci, c) in u.children.iter().enumerate() {
            let last_c = ci + 1 == u.children.len();
            let _ = writeln!(
                out,
                "{} {} ({})",
                if last_c { "└─" } else { "├─" },
                c.name,
                c.sessions
            );
            for (hi, h) in c.children.iter().enumerate() {
                let last_h = hi + 1 == c.children.len();
                let _ = writeln!(
                    out,
                    "{}  {} {} ({})",
                    if last_c { " " } else { "│" },
                    if last_h { "└─" } else { "├─" },
                    h.name,
                    h.sessions
                );
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// trends

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucket {
    Hour,
    Day,
    Week,
}

impl Bucket {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hour" => Bucket::Hour,
            "day" => Bucket::Day,
            "week" => Bucket::Week,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
        }
    }

    fn default_days(self) -> usize {
        match self {
            Bucket::Hour => 1,
            Bucket::Day => 14,
            Bucket::Week => 84,
        }
    }

    fn max_days(self) -> usize {
        match self {
            Bucket::Hour => 14,
            Bucket::Day | Bucket::Week => 365,
        }
    }

    /// The start of the bucket holding local time `t`.
    fn start(self, t: NaiveDateTime) -> NaiveDateTime {
        let date = t.date();
        match self {
            Bucket::Hour => date.and_hms_opt(t.hour(), 0, 0).unwrap_or(t),
            Bucket::Day => date.and_time(chrono::NaiveTime::MIN),
            Bucket::Week => (date
                - Duration::days(i64::from(date.weekday().num_days_from_monday())))
            .and_time(chrono::NaiveTime::MIN),
        }
    }

    fn step(self) -> Duration {
        match self {
            Bucket::Hour => Duration::hours(1),
            Bucket::Day => Duration::days(1),
            Bucket::Week => Duration::weeks(1),
        }
    }

    fn label(self, start: NaiveDateTime) -> String {
        match self {
            Bucket::Hour => start.format("%Y-%m-%d %H:00").to_string(),
            Bucket::Day => start.format("%Y-%m-%d %a").to_string(),
            Bucket::Week => start.format("week of %Y-%m-%d").to_string(),
        }
    }
}

/// One bucket of a trend, starting at a local time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TrendRow {
    pub start: NaiveDateTime,
    pub sessions: u64,
    pub commands: u64,
    pub errors: u64,
    pub abandoned: u64,
}

/// Sessions started from `from` to `to` per bucket of local time in `tz`; every bucket of the
/// window is listed, empty ones too.
pub(crate) fn trend_rows<Tz: TimeZone>(
    sessions: &[Session],
    bucket: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: &Tz,
) -> Vec<TrendRow> {
    let local = |t: DateTime<Utc>| t.with_timezone(tz).naive_local();
    let mut rows: BTreeMap<NaiveDateTime, TrendRow> = BTreeMap::new();
    let last = bucket.start(local(to));
    let mut start = bucket.start(local(from));
    while start <= last {
        rows.insert(
            start,
            TrendRow {
                start,
                sessions: 0,
                commands: 0,
                errors: 0,
                abandoned: 0,
            },
        );
        start += bucket.step();
    }
    for s in sessions
        .iter()
        .filter(|s| s.started_at >= from && s.started_at <= to)
    {
        if let Some(r) = rows.get_mut(&bucket.start(local(s.started_at))) {
            r.sessions += 1;
            r.commands += s.command_count;
            r.errors += s.error_count;
            r.abandoned += u64::from(s.status == SessionStatus::Abandoned);
        }
    }
    rows.into_values().collect()
}

fn trends(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    let usage = "trends [hour|day|week] [days]";
    at_most_args(args, 2, usage)?;
    // `trends 30` means days by day.
    let (bucket, days_at) = match args.first() {
        None => (Bucket::Day, 1),
        Some(a) if a.parse::<usize>().is_ok() && args.len() == 1 => (Bucket::Day, 0),
        Some(a) => (
            Bucket::parse(a)
                .ok_or_else(|| HelperError::new(format!("unknown bucket '{a}'; usage: {usage}")))?,
            1,
        ),
    };
    let days = count_arg(
        args,
        days_at,
        "days",
        bucket.default_days(),
        bucket.max_days(),
    )?;
    let now = Utc::now();
    let days_i64 = i64::try_from(days).unwrap_or(365);
    let fetched = fetch_sessions(ctx, &[since_days(now, days_i64)])?;
    let rows = trend_rows(
        &fetched.sessions,
        bucket,
        now - Duration::days(days_i64),
        now,
        &Local,
    );
    let out = render_trends(&rows, bucket, days) + &fetched.cap_note();
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
}

fn render_trends(rows: &[TrendRow], bucket: Bucket, days: usize) -> String {
    let counts: Vec<f64> = rows.iter().map(|r| r.sessions as f64).collect();
    let total: u64 = rows.iter().map(|r| r.sessions).sum();
    let peak = rows
        .iter()
        .max_by(|a, b| a.sessions.cmp(&b.sessions).then(b.start.cmp(&a.start)));
    let mut out = format!(
        "Sessions per {} over the last {days} day{} (local time): {total} in all\n",
        bucket.name(),
        if days == 1 { "" } else { "s" }
    );
    let _ = writeln!(out, "  {}", text::sparkline(&counts));
    if let Some(p) = peak.filter(|p| p.sessions > 0) {
        let _ = writeln!(
            out,
            "  peak: {} with {} sessions",
            bucket.label(p.start),
            p.sessions
        );
    }
    out.push('\n');
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                bucket.label(r.start),
                r.sessions.to_string(),
                r.commands.to_string(),
                r.errors.to_string(),
                r.abandoned.to_string(),
            ]
        })
        .collect();
    out.push_str(&text::table(
        &["Bucket", "Sessions", "Commands", "Errors", "Abandoned"],
        &table_rows,
    ));
    out
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_buddy::testdata::*;
    use serde_json::json;

    #[test]
    fn aggregate_groups_count_and_average() {
        let mut a1 = session("a-1", "akosha", 0, 60.0);
        a1.command_count = 4;
        a1.error_count = 2;
        let a2 = session("a-2", "akosha", 10, 120.0);
        let a3 = running("a-3", "akosha", 20);
        let mut o1 = abandoned("o-1", "oneiric", 30, 30.0);
        o1.username = "bob".into();
        o1.hostname = "host-b".into();
        let o2 = session("o-2", "oneiric", 24 * 60 + 5, 10.0); // the next day
        let sessions = vec![a1, a2, a3, o1, o2];

        let g = aggregate_by(&sessions, GroupBy::Component, &Utc);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].key, "akosha");
        assert_eq!(
            (
                g[0].sessions,
                g[0].active,
                g[0].timed,
                g[0].commands,
                g[0].errors,
                g[0].sessions_with_errors
            ),
            (3, 1, 2, 4, 2, 1)
        );
        assert_eq!(g[0].total_duration, 180.0);
        assert_eq!(g[0].mean_duration(), Some(90.0));
        assert_eq!(
            (g[1].key.as_str(), g[1].abandoned, g[1].total_duration),
            ("oneiric", 1, 40.0)
        );

        let users = aggregate_by(&sessions, GroupBy::User, &Utc);
        assert_eq!(
            users
                .iter()
                .map(|g| (g.key.as_str(), g.sessions))
                .collect::<Vec<_>>(),
            [("alice", 4), ("bob", 1)]
        );
        let hosts = aggregate_by(&sessions, GroupBy::Host, &Utc);
        assert_eq!(hosts[1].key, "host-b");
        let days = aggregate_by(&sessions, GroupBy::Day, &Utc);
        assert_eq!(
            days.iter()
                .map(|g| (g.key.as_str(), g.sessions))
                .collect::<Vec<_>>(),
            [("2026-02-06", 4), ("2026-02-07", 1)]
        );
        // 12:00 UTC is 23:00 on the 5th at UTC−13.
        let minus13 = chrono::FixedOffset::west_opt(13 * 3600).unwrap();
        assert_eq!(
            aggregate_by(&sessions, GroupBy::Day, &minus13)[0].key,
            "2026-02-05"
        );
        let text = render_aggregate(&g, GroupBy::Component, 5);
        assert!(text.contains("1m 30s"), "{text}");
        assert_eq!(GroupBy::parse("weekday"), None);
    }

    #[test]
    fn search_finds_fields_metadata_and_commands() {
        let mut s1 = session("akosha-1", "akosha", 0, 1.0);
        s1.cwd = "/srv/Payments".into();
        s1.metadata.insert("role".into(), json!("Diviner"));
        s1.metadata
            .insert("tags".into(), json!(["blue", "payments-team"]));
        let mut s2 = session("oneiric-1", "oneiric", 1, 1.0);
        s2.metadata.insert("payments".into(), json!({"on": true}));
        let s3 = session("other-1", "other", 2, 1.0);
        let sessions = vec![s1, s2, s3];

        let hits = search_sessions(&sessions, "PAYMENTS");
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].session.session_id, "akosha-1");
        assert_eq!(
            hits[0].fields,
            vec![
                ("cwd".to_string(), "/srv/Payments".to_string()),
                ("metadata.tags[1]".to_string(), "payments-team".to_string()),
            ]
        );
        assert_eq!(
            hits[1].fields,
            vec![("metadata.payments".to_string(), "{\"on\":true}".to_string())]
        );
        assert_eq!(
            search_sessions(&sessions, "diviner")[0].fields[0].0,
            "metadata.role"
        );
        assert!(search_sessions(&sessions, "no such text").is_empty());

        let events = vec![
            command("akosha-1", 0, "search", "payments", None),
            command("akosha-1", 1, "detect", "", Some("Payments DB timeout")),
            command("akosha-1", 2, "graph", "", None),
        ];
        let c = search_commands(&events, "payments");
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0].fields,
            vec![("error".to_string(), "Payments DB timeout".to_string())],
            "newest first"
        );
        assert_eq!(
            c[1].fields,
            vec![("args".to_string(), "payments".to_string())]
        );
        let text = render_search("payments", &sessions, &events, &Utc);
        assert!(
            text.contains("Sessions matching 'payments': 2 of 3 searched"),
            "{text}"
        );
        assert!(
            text.contains("Commands matching 'payments': 2 of 3 command events"),
            "{text}"
        );
        assert!(text.contains("detect  failed"), "{text}");
    }

    #[test]
    fn duration_outliers_over_q3_plus_three_iqr() {
        // 10..=17 and 100: Q1 = 12, Q3 = 16, threshold 16 + 3 × 4 = 28.
        let mut sessions: Vec<Session> = (10..=17)
            .map(|d| session(&format!("a-{d}"), "akosha", d, d as f64))
            .collect();
        sessions.push(session("a-long", "akosha", 30, 100.0));
        let checks = duration_outliers(&sessions);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].samples, 9);
        assert_eq!(checks[0].threshold, Some(28.0));
        assert_eq!(checks[0].outliers, vec![("a-long".to_string(), 100.0)]);

        // Without it: 8 samples, Q1 = 11.75, Q3 = 15.25, threshold 25.75, nothing.
        sessions.pop();
        let checks = duration_outliers(&sessions);
        assert_eq!(checks[0].threshold, Some(25.75));
        assert!(checks[0].outliers.is_empty());

        // Too few samples: never judged, however long.
        let few: Vec<Session> = (0..7)
            .map(|i| {
                session(
                    &format!("o-{i}"),
                    "oneiric",
                    i,
                    if i == 6 { 1e6 } else { 1.0 },
                )
            })
            .collect();
        let checks = duration_outliers(&few);
        assert_eq!((checks[0].samples, checks[0].threshold), (7, None));
        assert!(checks[0].outliers.is_empty());
        // Active sessions have no duration and are not samples.
        assert!(duration_outliers(&[running("x", "x", 0)]).is_empty());
    }

    /// `failed` failed and `ok` successful commands in the hour starting `hour` hours after
    /// 12:00.
    fn hour_of(hour: i64, failed: usize, ok: usize) -> Vec<StoredEvent> {
        (0..failed + ok)
            .map(|i| {
                command(
                    "s-1",
                    hour * 60 + i as i64,
                    "c",
                    "",
                    (i < failed).then_some("boom"),
                )
            })
            .collect()
    }

    #[test]
    fn error_spikes_need_three_failures_and_three_times_the_median() {
        // Nine hours with 1 failure each, one with 5: median 1, so 5 is a spike.
        let mut events: Vec<StoredEvent> = (0..9).flat_map(|h| hour_of(h, 1, 2)).collect();
        events.extend(hour_of(9, 5, 0));
        let r = error_spikes(&events, at(-60));
        assert_eq!((r.active_hours, r.median), (10, 1.0));
        assert_eq!(
            r.spikes,
            vec![ErrorSpike {
                hour: at(9 * 60),
                failed: 5
            }]
        );

        // Every hour has 3 failures: median 3, nothing reaches 9.
        let events: Vec<StoredEvent> = (0..6).flat_map(|h| hour_of(h, 3, 0)).collect();
        let r = error_spikes(&events, at(-60));
        assert_eq!(r.median, 3.0);
        assert!(r.spikes.is_empty());

        // Two failures are never a spike, even over a median of 0.
        let mut events: Vec<StoredEvent> = (0..5).flat_map(|h| hour_of(h, 0, 1)).collect();
        events.extend(hour_of(5, 2, 0));
        let r = error_spikes(&events, at(-60));
        assert_eq!(r.median, 0.0);
        assert!(r.spikes.is_empty());

        // Events before the window do not count.
        let r = error_spikes(&hour_of(0, 5, 0), at(120));
        assert_eq!(r.active_hours, 0);
        assert!(r.spikes.is_empty());
    }

    #[test]
    fn abandoned_bursts_within_ten_minutes_per_component() {
        // akosha: last signs of life at 0, 4, 9 minutes → a burst; a fourth at 30 is not in it.
        let sessions = vec![
            abandoned("a-1", "akosha", -60, 3600.0),
            abandoned("a-2", "akosha", -30, 30.0 * 60.0 + 240.0),
            abandoned("a-3", "akosha", 0, 540.0),
            abandoned("a-4", "akosha", 0, 1800.0),
            // oneiric: 0, 6, 12 minutes: the span is 12 > 10, no burst.
            abandoned("o-1", "oneiric", 0, 0.0),
            abandoned("o-2", "oneiric", 0, 360.0),
            abandoned("o-3", "oneiric", 0, 720.0),
            // Different components close together are no burst either.
            abandoned("x-1", "x", 0, 60.0),
            abandoned("y-1", "y", 0, 60.0),
            session("e-1", "akosha", 0, 60.0),
        ];
        let bursts = abandoned_bursts(&sessions);
        assert_eq!(bursts.len(), 1);
        assert_eq!(bursts[0].component, "akosha");
        assert_eq!(bursts[0].sessions, ["a-1", "a-2", "a-3"]);
        assert_eq!((bursts[0].first, bursts[0].last), (at(0), at(9)));
    }

    #[test]
    fn detect_says_when_nothing_was_found() {
        let sessions = vec![session("s-1", "a", 0, 1.0)];
        let text = render_detect(&sessions, &[], at(-60), &Utc);
        assert!(text.ends_with("\nNo anomalies found.\n"), "{text}");
        assert!(text.contains("a: 1 duration, too few to judge"), "{text}");

        let bursts: Vec<Session> = (0..3)
            .map(|i| abandoned(&format!("b-{i}"), "b", i, 10.0))
            .collect();
        // Three quiet hours, then one with 4 failures: median 0 → a spike.
        let mut events: Vec<StoredEvent> = (0..3).flat_map(|h| hour_of(h, 0, 1)).collect();
        events.extend(hour_of(3, 4, 0));
        let text = render_detect(&bursts, &events, at(-60), &Utc);
        assert!(text.contains("! b: 3 sessions abandoned between"), "{text}");
        assert!(
            text.contains("! 2026-02-06 15:00:00 – 16:00: 4 failed commands"),
            "{text}"
        );
        assert!(text.ends_with("\n2 anomalies found.\n"), "{text}");
    }

    #[test]
    fn graph_edges_and_tree() {
        let mut b = session("b-1", "oneiric", 0, 1.0);
        b.username = "bob".into();
        let mut a3 = session("a-3", "akosha", 2, 1.0);
        a3.hostname = "host-b".into();
        let sessions = vec![
            session("a-1", "akosha", 0, 1.0),
            session("a-2", "akosha", 1, 1.0),
            a3,
            session("a-4", "oneiric", 3, 1.0),
            b,
        ];
        let g = usage_graph(&sessions);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].name.as_str(), g[0].sessions), ("alice", 4));
        assert_eq!(
            (g[0].children[0].name.as_str(), g[0].children[0].sessions),
            ("akosha", 3)
        );
        assert_eq!(
            g[0].children[0]
                .children
                .iter()
                .map(|h| (h.name.as_str(), h.sessions))
                .collect::<Vec<_>>(),
            [("host-a", 2), ("host-b", 1)]
        );
        assert_eq!(
            render_graph(&g),
            "user → component → host (2 users, 2 components, 2 hosts; 3 user→component and 4 component→host edges; counts are sessions):\n\
             alice (4)\n\
             ├─ akosha (3)\n\
             │  ├─ host-a (2)\n\
             │  └─ host-b (1)\n\
             └─ oneiric (1)\n   \
             └─ host-a (1)\n\
             bob (1)\n\
             └─ oneiric (1)\n   \
             └─ host-a (1)\n"
        );
    }

    #[test]
    fn trend_buckets_cover_the_window() {
        let mut s2 = abandoned("s-2", "a", 90, 1.0); // 13:30
        s2.command_count = 3;
        let sessions = vec![
            session("s-1", "a", 10, 1.0), // 12:10
            s2,
            session("s-3", "a", -24 * 60, 1.0), // the day before
            session("s-old", "a", -10 * 24 * 60, 1.0), // outside the window
        ];
        let now = at(150); // 14:30
        let hours = trend_rows(&sessions, Bucket::Hour, now - Duration::hours(3), now, &Utc);
        assert_eq!(
            hours
                .iter()
                .map(|r| (r.start.hour(), r.sessions))
                .collect::<Vec<_>>(),
            [(11, 0), (12, 1), (13, 1), (14, 0)]
        );
        assert_eq!((hours[2].commands, hours[2].abandoned), (3, 1));

        let days = trend_rows(&sessions, Bucket::Day, now - Duration::days(2), now, &Utc);
        assert_eq!(
            days.iter()
                .map(|r| (r.start.day(), r.sessions))
                .collect::<Vec<_>>(),
            [(4, 0), (5, 1), (6, 2)]
        );

        // 2026-02-06 is a Friday; weeks start on Mondays (2026-01-26, 2026-02-02).
        let weeks = trend_rows(&sessions, Bucket::Week, now - Duration::days(8), now, &Utc);
        assert_eq!(
            weeks
                .iter()
                .map(|r| (r.start.format("%Y-%m-%d").to_string(), r.sessions))
                .collect::<Vec<_>>(),
            [("2026-01-26".to_string(), 0), ("2026-02-02".to_string(), 3)]
        );

        let text = render_trends(&days, Bucket::Day, 2);
        assert!(
            text.starts_with(
                "Sessions per day over the last 2 days (local time): 3 in all\n  ▁▅█\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("peak: 2026-02-06 Fri with 2 sessions"),
            "{text}"
        );
    }
}
