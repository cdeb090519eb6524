//! The client's local buffer under load: enqueue latency (buffer.db, and a tracker's journal
//! line) and, with a server, the drain rate after an outage.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{BufferOptions, loopback_target};

/// The `p` quantile of sorted durations, in microseconds (0 when empty).
fn percentile_us(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Times `events` calls of [`Tracker::command`](session_buddy_client::Tracker::command) of one
/// session in `home`, with no server (its sender backs off, and keeps moving the journal into
/// the buffer meanwhile).
fn tracker_record_latencies(home: &std::path::Path, events: u64) -> Vec<Duration> {
    use session_buddy_client::{EndReason, SessionInfo, Tracker, TrackerConfig};
    // Nothing listens on the discard port of loopback.
    let config = TrackerConfig {
        home: home.to_path_buf(),
        url: "http://127.0.0.1:9".into(),
        heartbeat_interval: Duration::from_secs(3600),
        ..TrackerConfig::default()
    };
    let tracker = Tracker::start(
        config,
        SessionInfo {
            component: "bench-buffer".into(),
            shell_type: "BenchShell".into(),
            ..SessionInfo::default()
        },
    );
    let mut latencies = Vec::with_capacity(events as usize);
    for _ in 0..events {
        let t = Instant::now();
        tracker.command(
            "show_layers",
            "--verbose --layer user",
            true,
            Duration::from_micros(12_500),
            None,
            Some(0),
        );
        latencies.push(t.elapsed());
    }
    tracker.end(EndReason::Exit, Some(0), None);
    latencies
}

/// Enqueues `events` command events into a fresh buffer, timing each; then, with a server,
/// delivers the backlog and reports the drain rate.
pub fn buffer(args: BufferOptions) -> anyhow::Result<()> {
    use session_buddy_client::{Buffer, BufferLimits, OutgoingEvent, TrackerConfig, deliver_now};
    use session_buddy_events::{CommandEvent, Event, EventType, SessionStartEvent};

    if let Some(url) = &args.url {
        loopback_target(url)?;
    }
    let home = std::env::temp_dir().join(format!(
        "session-buddy-bench-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let limits = BufferLimits {
        max_events: args.events.max(1),
        ..BufferLimits::default()
    };
    let result = (|| -> anyhow::Result<Value> {
        let buffer = Buffer::open(&home, limits)?;
        let start_time = chrono::Utc::now();
        let start = SessionStartEvent {
            event_version: "1.1".into(),
            event_id: uuid::Uuid::new_v4(),
            event_type: EventType::SessionStart,
            component_name: "bench-buffer".into(),
            shell_type: "BenchShell".into(),
            timestamp: start_time,
            pid: std::process::id(),
            user: session_buddy_events::UserInfo {
                username: "bench".into(),
                home: "/home/bench".into(),
            },
            hostname: "bench-host".into(),
            environment: session_buddy_events::EnvironmentInfo {
                python_version: None,
                platform: "Linux".into(),
                cwd: "/srv".into(),
                runtime: Some("rust".into()),
            },
            metadata: Default::default(),
            session_type: None,
            component_version: None,
            heartbeat_interval_seconds: Some(30),
            session_id_version: session_buddy_events::SessionIdRule::CURRENT.version(),
        };
        let session_id = start.session_id();
        buffer.enqueue(&OutgoingEvent::from_event(&Event::SessionStart(start))?)?;
        let mut latencies = Vec::with_capacity(args.events as usize);
        let t0 = Instant::now();
        for seq in 1..args.events {
            let event = Event::Command(CommandEvent {
                event_version: "1.1".into(),
                event_id: uuid::Uuid::new_v4(),
                event_type: EventType::Command,
                session_id: session_id.clone(),
                timestamp: chrono::Utc::now(),
                seq,
                command: "show_layers".into(),
                args: Some("--verbose --layer user".into()),
                success: true,
                exit_code: Some(0),
                duration_ms: Some(12.5),
                error: None,
            });
            let outgoing = OutgoingEvent::from_event(&event)?;
            let t = Instant::now();
            buffer.enqueue(&outgoing)?;
            latencies.push(t.elapsed());
        }
        let enqueue_secs = t0.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let mut out = json!({
            "events": args.events,
            "enqueue_p50_us": percentile_us(&latencies, 0.50),
            "enqueue_p99_us": percentile_us(&latencies, 0.99),
            "enqueue_max_us": percentile_us(&latencies, 1.0),
            "enqueue_events_per_s": (args.events as f64 - 1.0) / enqueue_secs.max(1e-9),
        });
        // What a shell pays per event: `Tracker::command` (redaction, encoding, one journal
        // line), while its background thread moves the journal into its buffer.
        let mut record = tracker_record_latencies(&home.join("tracker"), args.events);
        record.sort_unstable();
        out["record_p50_us"] = json!(percentile_us(&record, 0.50));
        out["record_p99_us"] = json!(percentile_us(&record, 0.99));
        out["record_max_us"] = json!(percentile_us(&record, 1.0));
        if let Some(url) = &args.url {
            let config = TrackerConfig {
                home: home.clone(),
                url: url.trim_end_matches('/').to_string(),
                request_timeout: Duration::from_secs(30),
                limits,
                ..TrackerConfig::default()
            };
            let t = Instant::now();
            let report = deliver_now(&config, args.duration)?;
            let secs = t.elapsed().as_secs_f64();
            let sent = report.delivered + report.duplicates;
            out["drain_events"] = json!(sent);
            out["drain_seconds"] = json!(secs);
            out["drain_events_per_s"] = json!(sent as f64 / secs.max(1e-9));
            out["drain_remaining"] = json!(report.remaining);
            if let Some(e) = report.error {
                out["drain_error"] = json!(e);
            }
        }
        Ok(out)
    })();
    let _ = std::fs::remove_dir_all(&home);
    let out = result?;
    if args.json {
        println!("{out}");
    } else {
        println!(
            "buffer enqueue: {} events, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({:.0} events/s)",
            out["events"],
            out["enqueue_p50_us"].as_f64().unwrap_or(0.0),
            out["enqueue_p99_us"].as_f64().unwrap_or(0.0),
            out["enqueue_max_us"].as_f64().unwrap_or(0.0),
            out["enqueue_events_per_s"].as_f64().unwrap_or(0.0),
        );
        println!(
            "tracker record (journal line): {} events, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            out["events"],
            out["record_p50_us"].as_f64().unwrap_or(0.0),
            out["record_p99_us"].as_f64().unwrap_or(0.0),
            out["record_max_us"].as_f64().unwrap_or(0.0),
        );
        if out.get("drain_events").is_some() {
            println!(
                "buffer drain: {} events in {:.2} s = {:.0} events/s{}{}",
                out["drain_events"],
                out["drain_seconds"].as_f64().unwrap_or(0.0),
                out["drain_events_per_s"].as_f64().unwrap_or(0.0),
                match out["drain_remaining"].as_u64() {
                    Some(0) | None => String::new(),
                    Some(n) => format!(", {n} remaining"),
                },
                out["drain_error"]
                    .as_str()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default(),
            );
        }
    }
    Ok(())
}
