//! `session-buddy analytics …` end to end (TZ=UTC): every number of a dataset with known
//! answers, in text and JSON, the original's validation messages and short flags.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::common::{Server, session_id, start_event, stderr, stdout};

fn end(session_id: &str, ts: &str, exit_code: i32) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "session_end",
        "session_id": session_id,
        "timestamp": ts,
        "exit_code": exit_code,
        "reason": if exit_code == 0 { "exit" } else { "error" }
    })
}

fn failed_command(session_id: &str, ts: &str, error: &str) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "command",
        "session_id": session_id,
        "timestamp": ts,
        "seq": 1,
        "command": "crack",
        "success": false,
        "error": error
    })
}

/// March 2026: alpha a1 (600 s, a failed command "boom"), alpha a2 (3600 s), beta b1 (30 s,
/// exit code 1). Now: gamma g1 started an hour ago, active.
fn dataset(server: &Server) -> String {
    let a1 = start_event("alpha", "2026-03-01T10:00:00Z");
    let a2 = start_event("alpha", "2026-03-02T10:00:00Z");
    let b1 = start_event("beta", "2026-03-02T12:00:00Z");
    let g1 = start_event(
        "gamma",
        &session_buddy_events::format_timestamp(&(Utc::now() - TimeDelta::hours(1))),
    );
    let (i1, i2, j1, k1) = (
        session_id(&a1),
        session_id(&a2),
        session_id(&b1),
        session_id(&g1),
    );
    let results = server.post(&[
        a1,
        a2,
        b1,
        g1,
        failed_command(&i1, "2026-03-01T10:01:00Z", "boom"),
        end(&i1, "2026-03-01T10:10:00Z", 0),
        end(&i2, "2026-03-02T11:00:00Z", 0),
        end(&j1, "2026-03-02T12:00:30Z", 1),
    ]);
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "{results:?}"
    );
    k1
}

const MARCH: [&str; 4] = ["--since", "2026-03-01", "--until", "2026-03-04"];

fn json_out(server: &Server, args: &[&str]) -> Value {
    let o = server.cli(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&o)))
}

fn text_out(server: &Server, args: &[&str]) -> String {
    let o = server.cli(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The cells of the table row that starts with `first`.
fn row(text: &str, first: &str) -> Vec<String> {
    text.lines()
        .find(|l| l.split('|').next().map(str::trim) == Some(first))
        .unwrap_or_else(|| panic!("no row {first} in\n{text}"))
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn every_analytics_number_in_json_and_text() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let active_id = dataset(&server);
    let with = |cmd: &str, extra: &[&str]| -> Vec<String> {
        let mut v = vec!["analytics".to_string(), cmd.to_string()];
        v.extend(MARCH.iter().map(|s| s.to_string()));
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    // sessions
    let v = json_out(&server, &args(&with("sessions", &["--json"])));
    let range = "2026-03-01T00:00:00.000000Z to 2026-03-04T00:00:00.000000Z";
    assert_eq!(
        v,
        json!([
            {"component_name": "alpha", "total_sessions": 2, "avg_duration": 2100.0,
             "active_sessions": 0, "error_rate": 50.0, "date_range": range},
            {"component_name": "beta", "total_sessions": 1, "avg_duration": 30.0,
             "active_sessions": 0, "error_rate": 100.0, "date_range": range},
        ])
    );
    let t = text_out(&server, &args(&with("sessions", &[])));
    assert!(t.contains("SESSION STATISTICS"), "{t}");
    assert!(
        t.contains("Time Period: 2026-03-01 00:00:00 to 2026-03-04 00:00:00"),
        "{t}"
    );
    assert!(t.contains("Total Sessions by Component:"), "{t}");
    assert!(
        t.contains(&format!("{:20} {:6} {}", "alpha", 2, "█".repeat(50))),
        "{t}"
    );
    assert!(
        t.contains(&format!("{:20} {:6} {}", "beta", 1, "█".repeat(25))),
        "{t}"
    );
    assert_eq!(row(&t, "alpha"), ["alpha", "2", "35m 0s", "0", "50.0%"]);
    assert_eq!(row(&t, "beta"), ["beta", "1", "30s", "0", "100.0%"]);
    assert!(
        t.contains("Sessions per day, 2026-03-01 … 2026-03-03 (peak 2):\n▅█▁\n"),
        "{t}"
    );

    // duration
    let v = json_out(&server, &args(&with("duration", &["-j"])));
    assert_eq!(v, json!({"alpha": 2100.0, "beta": 30.0}));
    let t = text_out(&server, &args(&with("duration", &[])));
    assert!(t.contains("AVERAGE SESSION DURATION"), "{t}");
    assert!(
        t.contains(&format!("  {:30} {:>20} (2100s)", "alpha", "35m 0s")),
        "{t}"
    );
    assert!(
        t.contains(&format!("  {:30} {:>20} (30s)", "beta", "30s")),
        "{t}"
    );

    // components
    let v = json_out(&server, &args(&with("components", &["-j"])));
    assert_eq!(v[0]["component_name"], "alpha");
    assert_eq!(v[0]["session_count"], 2);
    assert_eq!(v[0]["total_duration"], 4200.0);
    // 100 × (0.5 × 1/2 + 0.3 × 0/1 + 0.2 × 1)
    assert_eq!(v[0]["avg_quality_score"], 45.0);
    assert_eq!(v[0]["last_active"], "2026-03-02T10:00:00Z");
    assert_eq!(v[1]["avg_quality_score"], 50.0);
    let v = json_out(&server, &args(&with("components", &["-j", "-l", "1"])));
    assert_eq!(v.as_array().unwrap().len(), 1);
    let t = text_out(&server, &args(&with("components", &[])));
    assert!(t.contains("COMPONENT USAGE"), "{t}");
    assert_eq!(
        row(&t, "alpha"),
        ["alpha", "2", "1h 10m 0s", "45.0", "2026-03-02 10:00"]
    );
    assert_eq!(row(&t, "beta")[2], "30s");

    // errors
    let v = json_out(&server, &args(&with("errors", &["--json"])));
    assert_eq!(
        v,
        json!({
            "alpha": {"error_rate": 50.0, "total_sessions": 2, "failed_sessions": 1, "most_common_error": "boom"},
            "beta": {"error_rate": 100.0, "total_sessions": 1, "failed_sessions": 1, "most_common_error": "exit code 1"},
        })
    );
    let t = text_out(&server, &args(&with("errors", &["-c", "alpha"])));
    assert!(t.contains("ERROR RATE STATISTICS"), "{t}");
    assert!(t.contains("alpha:\n  Error Rate:     50.00%\n  Total Sessions: 2\n  Failed:         1\n  Most Common:    boom\n"), "{t}");
    assert!(!t.contains("beta"), "{t}");

    // report
    let file = home.path().join("report.txt");
    let mut report_args = with("report", &["-o"]);
    report_args.push(file.display().to_string());
    let o = server.cli(&args(&report_args));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("Generating analytics report..."));
    assert!(stderr(&o).contains(&format!("Report saved to: {}", file.display())));
    let t = std::fs::read_to_string(&file).unwrap();
    for line in [
        "SESSION-BUDDY ANALYTICS REPORT",
        "Total Sessions: 3",
        "Components Analyzed: 2",
        "Total Errors: 2",
        "Average Error Rate: 75.00%",
        "TOP COMPONENTS (by session count):",
        "  • alpha: 2 sessions, 1h 10m 0s in all, quality 45.0",
        "COMPONENTS WITH HIGH ERROR RATES:",
        "  • beta: 100.00% (1 of 1 sessions)",
        "    Most common: exit code 1",
        "End of Report",
    ] {
        assert!(t.contains(line), "{line:?} in\n{t}");
    }
    let v = json_out(&server, &args(&with("report", &["-j"])));
    assert_eq!(v["session_stats"][0]["total_sessions"], 2);
    assert_eq!(v["average_duration"]["beta"], 30.0);
    assert_eq!(v["trend"], json!([1, 2, 0]));

    // The recent session: --days, keywords, active.
    let v = json_out(&server, &["analytics", "sessions", "-d", "7", "-j"]);
    assert_eq!(
        v,
        json!([{"component_name": "gamma", "total_sessions": 1, "avg_duration": 0.0,
                "active_sessions": 1, "error_rate": 0.0, "date_range": "Last 7 days"}])
    );
    let t = text_out(&server, &["analytics", "sessions"]);
    assert!(t.contains("Time Period: Last 7 days"), "{t}");
    let v = json_out(
        &server,
        &["analytics", "sessions", "--since", "yesterday", "-j"],
    );
    assert_eq!(v[0]["component_name"], "gamma");
    let v = json_out(&server, &["analytics", "active", "--json"]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["session_id"], active_id.as_str());
    assert_eq!(v[0]["component_name"], "gamma");
    assert_eq!(v[0]["project"], "work");
    let age = v[0]["duration_seconds"].as_i64().unwrap();
    assert!((3600..3700).contains(&age), "{v}");
    let t = text_out(&server, &["analytics", "active"]);
    assert!(t.contains("ACTIVE SESSIONS (1)"), "{t}");
    assert!(t.contains(&format!("Session:   {active_id}")), "{t}");
    assert!(t.contains("Project:   work"), "{t}");
    let t = text_out(&server, &["analytics", "active", "-c", "alpha"]);
    assert_eq!(t, "No active sessions found.\n");
    let t = text_out(
        &server,
        &["analytics", "errors", "--days", "1", "-c", "nobody"],
    );
    assert_eq!(t, "No session data found for the specified time period.\n");
}

#[test]
fn validation_and_sql() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    for (args, message) in [
        (
            vec!["analytics", "sessions", "--days", "0"],
            "Error: days must be at least 1\n",
        ),
        (
            vec!["analytics", "duration", "-d", "366"],
            "Error: days cannot exceed 365\n",
        ),
        (
            vec!["analytics", "components", "--limit", "0"],
            "Error: limit must be at least 1\n",
        ),
        (
            vec!["analytics", "components", "-l", "101"],
            "Error: limit cannot exceed 100\n",
        ),
        (
            vec!["analytics", "report", "-d", "-3"],
            "Error: days must be at least 1\n",
        ),
        (
            vec!["analytics", "sql", "nope"],
            "Error: query 'nope' not found; the queries are: active_sessions, session_stats, average_duration, most_active, error_rate\n",
        ),
    ] {
        let o = server.cli(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&o), message, "{args:?}");
    }
    let o = server.cli(&["analytics", "sessions", "--since", "someday"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--since"), "{}", stderr(&o));

    let t = text_out(&server, &["analytics", "sql", "session_stats", "-d", "30"]);
    assert!(
        t.starts_with("-- session_stats: the last 30 days\n-- ?2 = "),
        "{t}"
    );
    assert!(t.contains("WHERE component = ?1 AND started_at >= ?2 AND started_at < ?3"));
    for name in [
        "active_sessions",
        "average_duration",
        "most_active",
        "error_rate",
    ] {
        let t = text_out(&server, &["analytics", "sql", name]);
        assert!(t.contains("SELECT"), "{name}: {t}");
        assert!(!t.contains("'{"), "{name}: nothing interpolated: {t}");
    }
    // No server: exit 3, as every query.
    let o = crate::common::run(
        home.path(),
        &["analytics", "sessions", "--url", "http://127.0.0.1:1"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

#[test]
fn list_sessions_output_file_takes_the_format_of_its_extension() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    dataset(&server);
    let csv = home.path().join("sessions.csv");
    let o = server.cli(&["list-sessions", "--output", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("session_id,component,"), "{text}");
    assert_eq!(text.lines().count(), 5);
    let json = home.path().join("sessions.json");
    let o = server.cli(&[
        "list-sessions",
        "-o",
        json.to_str().unwrap(),
        "--component",
        "alpha",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    // An explicit --format wins.
    let o = server.cli(&[
        "list-sessions",
        "--format",
        "json",
        "-o",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(std::fs::read_to_string(&csv).unwrap().starts_with('['));
}

#[test]
fn list_sessions_search_finds_by_command_and_component_and_refuses_short_text() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    dataset(&server);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["list-sessions", "--format", "json"];
        all.extend_from_slice(args);
        let o = server.cli(&all);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["component"].as_str().unwrap().to_string())
            .collect()
    };
    // a1's failed command is `crack`.
    assert_eq!(ids(&["--search", "CRAC"]), ["alpha"]);
    assert_eq!(ids(&["-q", "alph"]), ["alpha", "alpha"]);
    assert_eq!(ids(&["-q", "alph", "--limit", "1"]), ["alpha"]);
    assert_eq!(
        ids(&["-q", "gamma", "--status", "ended"]),
        Vec::<String>::new()
    );
    let o = server.cli(&["list-sessions", "-q", "ab"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("at least 3 characters"),
        "{}",
        stderr(&o)
    );
}

/// The text output says what it knows: the trend's dates are those of its data, it fits the
/// terminal, durations read as durations and `-` where nothing is over, the report's statistics
/// show the trend, `errors` honours `--limit`, and an empty range is an error.
#[test]
fn analytics_text_fits_the_terminal_and_says_what_it_knows() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    dataset(&server);
    let with_columns = |columns: &str, args: &[&str]| {
        let o = crate::common::bin()
            .env("SESSION_BUDDY_HOME", home.path())
            .env("SESSION_BUDDY_URL", &server.url)
            .env("COLUMNS", columns)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let spark = |t: &str| -> (String, String) {
        let mut lines = t.lines().skip_while(|l| !l.starts_with("Sessions per"));
        let label = lines.next().unwrap_or_else(|| panic!("no trend in\n{t}"));
        (label.to_string(), lines.next().unwrap_or("").to_string())
    };

    // gamma's one session started an hour ago, today (TZ=UTC): the last bar is today's.
    let before = Utc::now().date_naive();
    let t = text_out(&server, &["analytics", "sessions", "-d", "7"]);
    let after = Utc::now().date_naive();
    let (label, bars) = spark(&t);
    assert!(
        label.ends_with(&format!("… {before} (peak 1):"))
            || label.ends_with(&format!("… {after} (peak 1):")),
        "{label}"
    );
    assert!(label.starts_with("Sessions per day, "), "{label}");
    assert_eq!(bars, "▁▁▁▁▁▁█");
    assert_eq!(row(&t, "gamma"), ["gamma", "1", "-", "1", "0.0%"]);
    let t = text_out(&server, &["analytics", "components"]);
    assert_eq!(row(&t, "gamma")[2], "-");

    // A year on an 80-column terminal: five days a bar.
    let t = with_columns("80", &["analytics", "sessions", "-d", "365"]);
    let (label, bars) = spark(&t);
    assert!(label.starts_with("Sessions per 5 days, "), "{label}");
    assert_eq!(bars.chars().count(), 73, "{bars}");
    let t = with_columns("40", &["analytics", "sessions", "-d", "7"]);
    assert_eq!(spark(&t).1.chars().count(), 7);

    // The report's SESSION STATISTICS carries the trend.
    let t = text_out(&server, &["analytics", "report"]);
    let stats = t
        .split("SESSION STATISTICS")
        .nth(1)
        .unwrap_or_else(|| panic!("{t}"));
    assert!(!t.contains("No data"), "{t}");
    assert_eq!(spark(stats).1, "▁▁▁▁▁▁█", "{t}");

    // errors -l keeps the highest error rates.
    let mut errors = vec!["analytics", "errors", "-l", "1"];
    errors.extend(MARCH);
    let t = text_out(&server, &errors);
    assert!(t.contains("\nbeta:\n") && !t.contains("alpha"), "{t}");
    assert!(
        t.contains("the 1 highest error rates of 2 components"),
        "{t}"
    );
    errors.push("-j");
    let v = json_out(&server, &errors);
    assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["beta"]);

    // A range that holds nothing is an error, not "no data".
    for args in [
        &[
            "analytics",
            "sessions",
            "--since",
            "2026-03-04",
            "--until",
            "2026-03-01",
        ][..],
        &[
            "analytics",
            "report",
            "--since",
            "2026-03-04",
            "--until",
            "2026-03-04",
        ],
        &[
            "list-sessions",
            "--after",
            "2026-03-04",
            "--before",
            "2026-03-01",
        ],
    ] {
        let o = server.cli(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stdout(&o));
        let (from, to) = (args[args.len() - 4], args[args.len() - 2]);
        assert!(
            stderr(&o).contains(&format!("{from} 2026-03-04 00:00:00 is not before {to} ")),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = server.cli(&["analytics", "sessions", "--since", "2999-01-01"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not before now"), "{}", stderr(&o));
}
