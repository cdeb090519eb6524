//! `import` of old history: sessions that never ended are abandoned at their last event at
//! once, not shown `active` for a day; a live client with a skewed clock stays active while it
//! keeps sending.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::common::{Server, session_id, start_event, stderr, stdout};

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn metrics(url: &str) -> String {
    ureq::get(format!("{url}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// A sample's value in `/metrics` text (0 when the series is absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn session(url: &str, id: &str) -> Value {
    ureq::get(format!("{url}/v1/sessions/{id}"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap()
}

fn heartbeat(session_id: &str, ts: &str) -> Value {
    json!({"event_version": "1.1", "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "heartbeat", "session_id": session_id, "timestamp": ts})
}

#[test]
fn imported_history_without_an_end_is_abandoned_at_its_last_event() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    // Last year: a shell that announced heartbeats and ran one command an hour in, and an
    // original 1.0-style client (no heartbeats) with nothing after its start. Neither ended.
    let year_ago = Utc::now() - TimeDelta::days(365);
    let mut shell = start_event("history", &rfc3339(year_ago));
    shell["heartbeat_interval_seconds"] = json!(30);
    let shell_id = session_id(&shell);
    let command = json!({"event_version": "1.1", "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "command", "session_id": shell_id,
        "timestamp": rfc3339(year_ago + TimeDelta::hours(1)), "seq": 1, "command": "status",
        "success": true});
    let legacy = start_event("history-legacy", &rfc3339(year_ago + TimeDelta::minutes(5)));
    let legacy_id = session_id(&legacy);
    let file = home.path().join("last-year.ndjson");
    let lines: Vec<String> = [&shell, &command, &legacy]
        .iter()
        .map(|v| v.to_string())
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let o = server.cli(&["import", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "accepted 3, duplicate 0, rejected 0");

    // At once, without waiting for any reaper: abandoned at the last event.
    let o = server.cli(&["show-session", &shell_id, "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "abandoned", "{v}");
    assert_eq!(v["end_reason"], "heartbeat_timeout", "{v}");
    assert_eq!(v["duration_seconds"], 3600.0, "{v}");
    assert_eq!(v["ended_at"], command["timestamp"], "{v}");
    let o = server.cli(&["show-session", &shell_id]);
    let text = stdout(&o);
    assert!(text.contains("abandoned"), "{text}");
    assert!(text.contains("(1h 00m"), "a sane duration: {text}");
    let legacy = session(&server.url, &legacy_id);
    assert_eq!(legacy["status"], "abandoned", "{legacy}");
    assert_eq!(legacy["duration_seconds"], 0.0, "{legacy}");

    let o = server.cli(&["list-sessions"]);
    let table = stdout(&o);
    for id in [&shell_id, &legacy_id] {
        let row = table.lines().find(|l| l.starts_with(id.as_str())).unwrap();
        assert!(row.contains("abandoned"), "{row}");
    }
    let o = server.cli(&["list-sessions", "--status", "active", "--format", "json"]);
    let active: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(active.is_empty(), "{active:?}");

    let m = metrics(&server.url);
    for component in ["history", "history-legacy"] {
        let series = format!("active_sessions{{component_name=\"{component}\"}}");
        assert_eq!(sample(&m, &series), 0.0, "{series} in\n{m}");
        let ended =
            format!("session_end_total{{component_name=\"{component}\",status=\"abandoned\"}}");
        assert_eq!(sample(&m, &ended), 1.0, "{ended} in\n{m}");
    }

    // The same file again: duplicates, and nothing is counted twice.
    let o = server.cli(&["import", file.to_str().unwrap()]);
    assert_eq!(stdout(&o).trim(), "accepted 0, duplicate 3, rejected 0");
    let m = metrics(&server.url);
    assert_eq!(
        sample(
            &m,
            "session_end_total{component_name=\"history\",status=\"abandoned\"}"
        ),
        1.0,
        "{m}"
    );
}

#[test]
fn a_live_client_with_a_skewed_clock_stays_active_while_it_sends() {
    let home = tempfile::tempdir().unwrap();
    // Short TTLs, so the reaper runs every few seconds.
    let server = Server::start_with(
        home.path(),
        &["--session-ttl", "30s", "--legacy-session-ttl", "30s"],
    );
    // The client's clock is a year behind: every timestamp it sends is far older than the TTL.
    let skew = TimeDelta::days(365);
    let mut start = start_event("skewed", &rfc3339(Utc::now() - skew));
    start["heartbeat_interval_seconds"] = json!(1);
    let id = session_id(&start);
    assert_eq!(server.post(&[start])[0]["status"], "accepted");
    let runs = |m: &str| sample(m, "session_buddy_reaper_runs_total{outcome=\"ok\"}");
    for _ in 0..3 {
        let results = server.post(&[heartbeat(&id, &rfc3339(Utc::now() - skew))]);
        assert_eq!(results[0]["status"], "accepted", "{results:?}");
        // Two reaper passes after this heartbeat (the second started after it arrived).
        let before = runs(&metrics(&server.url));
        let deadline = Instant::now() + Duration::from_secs(60);
        while runs(&metrics(&server.url)) < before + 2.0 {
            assert!(Instant::now() < deadline, "the reaper did not run");
            std::thread::sleep(Duration::from_millis(200));
        }
        let s = session(&server.url, &id);
        assert_eq!(s["status"], "active", "{s}");
        let m = metrics(&server.url);
        assert_eq!(
            sample(&m, "active_sessions{component_name=\"skewed\"}"),
            1.0,
            "{m}"
        );
    }
}
