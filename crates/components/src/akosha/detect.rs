//! `detect`: anomalies: duration outliers (Q3 + 3 × IQR per component), error spikes per
//! hour, bursts of abandoned sessions.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};

use chrono::{DateTime, Duration, TimeZone, Utc};
use session_buddy_events::{Session, SessionStatus, StoredEvent};

use crate::reading::{MAX_EVENTS, command_view, local_time};
use crate::text;

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

pub(super) fn render_detect<Tz: TimeZone>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::testdata::*;

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
}
