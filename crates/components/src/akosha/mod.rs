//! Akosha (Diviner): patterns in the tracked data: aggregates by component, user, host or
//! day; text search over sessions and commands; anomalies; who uses what where; trends.
//!
//! This module is the shell and its helpers (fetch, call, write); each analysis is a pure
//! function over `&[Session]`/`&[StoredEvent]` in its own module, with its rendering.

use chrono::{Duration, Local, Utc};
use session_buddy_shell::{Context, Helper, HelperError, HelperResult, ShellSpec};

use crate::reading::{at_most_args, count_arg, fetch_command_events, fetch_sessions, since_days};

mod aggregate;
mod detect;
mod graph;
mod search;
mod trends;

use aggregate::{GroupBy, aggregate_by, render_aggregate};
use detect::render_detect;
use graph::{render_graph, usage_graph};
use search::render_search;
use trends::{Bucket, render_trends, trend_rows};

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
// Helpers: fetch through the API, analyse, write.

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

fn graph(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 0, "graph")?;
    let fetched = fetch_sessions(ctx, &[])?;
    let out = render_graph(&usage_graph(&fetched.sessions)) + &fetched.cap_note();
    ctx.out.write_all(out.as_bytes())?;
    Ok(())
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
