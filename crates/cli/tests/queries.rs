//! `list-sessions`, `show-session`, `list-events`, `health` against a real server process.

use serde_json::{Value, json};

use crate::common::{Server, run, session_id, start_event, stderr, stdout};

fn seeded() -> (tempfile::TempDir, Server, String) {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let start = start_event("oneiric", "2026-02-06T12:34:56.789Z");
    let id = session_id(&start);
    let cmd = json!({"event_id": uuid::Uuid::new_v4().to_string(), "event_type": "command",
        "session_id": id, "timestamp": "2026-02-06T12:35:00Z", "seq": 1, "command": "show_layers",
        "success": false, "duration_ms": 3.0, "error": "layer missing"});
    let end = json!({"event_type": "session_end", "session_id": id,
        "timestamp": "2026-02-06T12:39:56.789Z", "metadata": {"exit_reason": "user_exit"}});
    let other = start_event("akosha", "2026-02-07T08:00:00Z");
    let results = server.post(&[start, cmd, end, other]);
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "{results:?}"
    );
    (home, server, id)
}

#[test]
fn list_sessions_table_json_csv_and_output_file() {
    let (_home, server, id) = seeded();
    let o = server.cli(&["list-sessions", "--type", "admin_shell"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let header = out.lines().next().unwrap();
    let cols: Vec<&str> = header
        .split("  ")
        .filter(|c| !c.trim().is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        &cols[..4],
        ["Session ID", "Component", "Type", "Status"],
        "{header}"
    );
    let row = out.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        row.contains("ended") && row.contains("5m 00s") && row.contains("admin_shell"),
        "{row}"
    );
    // Newest first: akosha (Feb 7) above oneiric (Feb 6).
    assert!(out.lines().nth(1).unwrap().starts_with("akosha-"), "{out}");

    let o = server.cli(&["list-sessions", "--format", "json", "--status", "ended"]);
    let v: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["session_id"], id.as_str());
    assert_eq!(v[0]["duration_seconds"], 300.0);
    assert_eq!(v[0]["command_count"], 1);
    assert_eq!(v[0]["error_count"], 1);
    assert_eq!(v[0]["end_reason"], "user_exit");

    let file = _home.path().join("out.csv");
    let o = server.cli(&[
        "list-sessions",
        "--format",
        "csv",
        "--output",
        file.to_str().unwrap(),
        "--component",
        "oneiric",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(
        csv.starts_with("session_id,component,session_type,status"),
        "{csv}"
    );
    assert!(
        csv.contains(&format!("{id},oneiric,admin_shell,ended")),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 2);

    for (args, want) in [
        (vec!["--duration-greater", "299"], 1),
        (vec!["--duration-greater", "301"], 0),
        (vec!["--after", "2026-02-07"], 1),
        (vec!["--before", "2026-02-07 00:00"], 1),
        (vec!["--user", "alice", "--host", "box1"], 2),
        (vec!["--limit", "1"], 1),
    ] {
        let mut a = vec!["list-sessions", "--format", "json"];
        a.extend(args.iter());
        let o = server.cli(&a);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let v: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v.len(), want, "{args:?}");
    }
    let o = server.cli(&["list-sessions", "--after", "last tuesday"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--after"), "{}", stderr(&o));
}

#[test]
fn show_session_prints_the_timeline() {
    let (_home, server, id) = seeded();
    let o = server.cli(&["show-session", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "Status     ended (user_exit)",
        "300.000 seconds (5m 00s)",
        "Timeline",
        "command  #1 show_layers  FAILED  3 ms  layer missing",
        "end",
    ] {
        assert!(out.contains(needle), "missing '{needle}' in\n{out}");
    }
    let o = server.cli(&["show-session", &id, "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "ended");
    assert_eq!(v["events"].as_array().unwrap().len(), 3);
    let o = server.cli(&["show-session", "nope-20200101-000000-000000"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let o = server.cli(&["list-events", "--session-id", &id]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).lines().count(), 4, "{}", stdout(&o));
    let o = server.cli(&["health"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).starts_with("ok  session-buddy"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_server_that_is_not_running_is_a_one_line_error_naming_the_url() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        vec!["list-sessions", "--url", "http://127.0.0.1:9"],
        vec![
            "show-session",
            "x-20260101-000000-aaaaaa",
            "--url",
            "http://127.0.0.1:9",
        ],
        vec!["health", "--url", "http://127.0.0.1:9"],
    ] {
        let o = run(home.path(), &args);
        assert_eq!(o.status.code(), Some(3), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("http://127.0.0.1:9") && err.contains("session-buddy serve"),
            "{err}"
        );
        assert!(!err.contains("panicked"));
    }
}
