//! The text of `session-buddy analytics sessions|duration|components|errors|active|report`
//! (docs/api.md, "GET /v1/analytics/…"): the original's section titles, tables, bar charts and sparklines over the
//! server's `/v1/analytics` answers. Pure functions: the binary fetches, picks text or JSON and
//! prints; the formatting primitives are `session-buddy-text`'s.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use session_buddy_store::analytics::{
    ActiveSession, AnalyticsWindow, ComponentUsage, ErrorRate, Report, SessionStats,
};
use session_buddy_text::{Align, ascii_table, bar_chart, fmt_time, hms, sparkline};

/// The time period a section names: `Last N days`, or the explicit range (`since`, `until`
/// from the answer) in the user's time zone; `date_range` (the answer's own words) otherwise.
pub fn period(
    days: i64,
    explicit: bool,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    date_range: &str,
    utc: bool,
) -> String {
    if !explicit {
        return format!("Last {days} days");
    }
    match range {
        Some((s, u)) => format!("{} to {}", fmt_time(&s, utc), fmt_time(&u, utc)),
        None => date_range.to_string(),
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

/// The trend as a sparkline of at most `width` bars, under a line saying what it spans. When
/// the window `range` has more buckets than fit, neighbours are summed, from the newest back,
/// so the last bar is whole. Empty without a range or a trend.
pub fn trend_text(
    trend: &[u64],
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    utc: bool,
    width: usize,
) -> String {
    let Some((since, until)) = range else {
        return String::new();
    };
    let buckets = AnalyticsWindow {
        since,
        until,
        component: None,
        components: None,
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
    let heights: Vec<f64> = bars.iter().map(|b| *b as f64).collect();
    // The last bucket ends at `until`, which it excludes: its day is that of the instant before.
    format!(
        "Sessions per {per}, {} … {} (peak {}):\n{}\n",
        day(first.0),
        day(last.1 - 1),
        bars.iter().max().copied().unwrap_or(0),
        sparkline(&heights)
    )
}

/// A duration for people; `-` when nothing is over, so there is no duration to show.
fn over_duration(secs: f64, any_over: bool) -> String {
    if any_over { hms(secs) } else { "-".into() }
}

/// `SESSION STATISTICS`: sessions per component as bars, the table, the trend (`width`
/// columns wide).
pub fn stats_text(
    stats: &[SessionStats],
    trend: &[u64],
    period: &str,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    utc: bool,
    width: usize,
) -> String {
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
    out.push_str(&trend_text(trend, range, utc, width));
    out
}

/// `AVERAGE SESSION DURATION`, the longest first.
pub fn duration_text(avg: &BTreeMap<String, f64>, period: &str) -> String {
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

/// `COMPONENT USAGE`.
pub fn usage_text(usage: &[ComponentUsage], period: &str, utc: bool) -> String {
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

/// Error rates, the highest first (then by component).
pub fn by_rate(rates: &BTreeMap<String, ErrorRate>) -> Vec<(&String, &ErrorRate)> {
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

/// `ERROR RATE STATISTICS`, the highest rate first.
pub fn errors_text(rates: &BTreeMap<String, ErrorRate>, period: &str) -> String {
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

/// `ACTIVE SESSIONS (total)`: one block per session, and a note when `total` is more than
/// shown.
pub fn active_text(sessions: &[ActiveSession], total: u64, utc: bool) -> String {
    let mut out = String::new();
    title(&mut out, &format!("ACTIVE SESSIONS ({total})"));
    for s in sessions {
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
    out
}

/// `SESSION-BUDDY ANALYTICS REPORT`: the summary, then every section (the trend `width`
/// columns wide).
pub fn report_text(r: &Report, period: &str, utc: bool, width: usize) -> String {
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
        let range = Some((r.since, r.until));
        out.push('\n');
        out.push_str(&stats_text(
            &r.session_stats,
            &r.trend,
            period,
            range,
            utc,
            width,
        ));
        out.push('\n');
        out.push_str(&duration_text(&r.average_duration, period));
        out.push('\n');
        out.push_str(&usage_text(&r.components, period, utc));
    }
    out.push('\n');
    title(&mut out, "End of Report");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_trend_sums_neighbours_from_the_newest_back_to_fit_the_width() {
        let until = Utc.with_ymd_and_hms(2026, 3, 15, 0, 0, 0).unwrap();
        let since = until - chrono::Duration::days(14);
        let trend: Vec<u64> = (1..=14).collect();
        let text = trend_text(&trend, Some((since, until)), true, 5);
        // 14 days in at most 5 bars: groups of 3 (3, 12, 21, 30, 39), the oldest partial (1+2).
        assert_eq!(
            text,
            "Sessions per 3 days, 2026-03-01 … 2026-03-14 (peak 39):\n▂▃▅▆█\n"
        );
        let fits = trend_text(
            &trend[..7],
            Some((until - chrono::Duration::days(7), until)),
            true,
            80,
        );
        assert!(
            fits.starts_with("Sessions per day, 2026-03-08 … 2026-03-14 (peak 7):\n"),
            "{fits}"
        );
        assert_eq!(trend_text(&trend, None, true, 80), "");
    }

    #[test]
    fn periods_name_the_window() {
        let until = Utc.with_ymd_and_hms(2026, 3, 15, 0, 0, 0).unwrap();
        let since = until - chrono::Duration::days(1);
        assert_eq!(period(7, false, None, "", true), "Last 7 days");
        assert_eq!(
            period(7, true, Some((since, until)), "", true),
            "2026-03-14 00:00:00Z to 2026-03-15 00:00:00Z"
        );
        assert_eq!(period(7, true, None, "given", true), "given");
    }
}
