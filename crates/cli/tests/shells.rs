//! The six shells and `track` as real processes against a real server: tracked sessions with
//! their commands, a server that is down, SIGKILL (abandoned) and SIGTERM (clean end).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Server, bin, stderr};

/// A helper per shell that works without anything else set up.
const SHELLS: &[(&str, &str)] = &[
    ("oneiric", "show_layers"),
    ("session-buddy", "ps 5"),
    ("mahavishnu", "top"),
    ("crackerjack", "show_adapters"),
    ("akosha", "aggregate"),
    ("fastblocks", "routes"),
];

fn sessions(url: &str) -> Vec<Value> {
    let mut r = match ureq::get(format!("{url}/v1/sessions"))
        .query("limit", "1000")
        .call()
    {
        Ok(r) => r,
        Err(_) => return Vec::new(),
    };
    let v: Value = r.body_mut().read_json().unwrap();
    v["sessions"].as_array().unwrap().clone()
}

/// Polls until `pred` holds for the server's sessions (delivery is asynchronous).
fn wait_for(
    url: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let s = sessions(url);
        if pred(&s) {
            return s;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out waiting for {what}; sessions: {s:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn shell(home: &std::path::Path, url: &str) -> Command {
    let mut c = bin();
    c.env("SESSION_BUDDY_HOME", home)
        .env("SESSION_BUDDY_URL", url);
    c
}

#[test]
fn six_shells_by_stdin_are_recorded_with_their_commands() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    for (component, helper) in SHELLS {
        let mut child = shell(home.path(), &server.url)
            .args(["shell", component])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        write!(child.stdin.take().unwrap(), "help\n{helper}\nexit\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{component}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Built-ins:"), "{component}: {text}");
    }
    let all = wait_for(
        &server.url,
        "six ended sessions",
        Duration::from_secs(60),
        |s| {
            s.iter()
                .filter(|s| s["status"] == "ended" && s["command_count"] == 1)
                .count()
                == 6
        },
    );
    let mut components: Vec<&str> = all
        .iter()
        .map(|s| s["component"].as_str().unwrap())
        .collect();
    components.sort_unstable();
    let mut want: Vec<&str> = SHELLS.iter().map(|(c, _)| *c).collect();
    want.sort_unstable();
    assert_eq!(components, want);
    for s in &all {
        assert_eq!(s["session_type"], "admin_shell");
        assert_eq!(s["error_count"], 0, "{s}");
        assert_eq!(s["end_reason"], "exit", "{s}");
        assert!(s["pid"].as_u64().is_some(), "{s}");
    }
    // The timeline has the helper call.
    let oneiric = all.iter().find(|s| s["component"] == "oneiric").unwrap();
    let o = server.cli(&["show-session", oneiric["session_id"].as_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("command  #1 show_layers  ok"), "{text}");
}

#[test]
fn a_failing_helper_is_recorded_and_the_shell_goes_on() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let o = shell(home.path(), &server.url)
        .args([
            "shell",
            "oneiric",
            "-c",
            "no_such_helper --token s3cret; show_layers port",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "a failed command makes -c exit 1");
    assert!(
        stderr(&o).contains("unknown command 'no_such_helper'"),
        "{}",
        stderr(&o)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("server.port"));
    let all = wait_for(
        &server.url,
        "the ended session",
        Duration::from_secs(60),
        |s| s.iter().any(|s| s["status"] == "ended"),
    );
    assert_eq!(all[0]["command_count"], 2);
    assert_eq!(all[0]["error_count"], 1);
    let id = all[0]["session_id"].as_str().unwrap();
    let mut r = ureq::get(format!("{}/v1/sessions/{id}/events", server.url))
        .call()
        .unwrap();
    let v: Value = r.body_mut().read_json().unwrap();
    let cmd = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "command")
        .unwrap();
    assert_eq!(
        cmd["payload"]["args"], "--token [REDACTED]",
        "arguments are redacted before they are buffered"
    );
    assert_eq!(cmd["payload"]["success"], false);
}

#[test]
fn with_the_server_down_shells_are_fast_and_sessions_arrive_later_exactly_once() {
    let home = tempfile::tempdir().unwrap();
    // A free port, with nothing listening on it yet.
    let port = crate::common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..3 {
        let started = Instant::now();
        let o = shell(home.path(), &url)
            .args(["shell", "oneiric", "-c", "show_layers port"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the shell waited on the network"
        );
    }
    // The server comes up on that port; the buffered sessions arrive with no replay command.
    let server_home = home.path().join("server");
    let server = Server::start_with(&server_home, &["--port", &port.to_string()]);
    let delivered = wait_for(&url, "three ended sessions", Duration::from_secs(90), |s| {
        s.len() == 3
            && s.iter()
                .all(|s| s["status"] == "ended" && s["command_count"] == 1)
    });
    assert_eq!(delivered.len(), 3);
    // A replay now (twice) changes nothing.
    for _ in 0..2 {
        let o = shell(home.path(), &url)
            .args(["event-buffer", "replay"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let after = sessions(&url);
    assert_eq!(after.len(), 3);
    assert!(after.iter().all(|s| s["command_count"] == 1));
    drop(server);
}

#[test]
fn sigkill_leaves_an_abandoned_session_and_sigterm_ends_cleanly() {
    let home = tempfile::tempdir().unwrap();
    // Killed on drop, even when an assertion fails.
    let server = Server::start_with(home.path(), &["--session-ttl", "2s"]);
    let url = server.url.clone();
    let spawn = |component: &str| {
        shell(home.path(), &url)
            .args(["shell", component])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut killed = spawn("akosha");
    let mut terminated = spawn("oneiric");
    wait_for(&url, "two active sessions", Duration::from_secs(60), |s| {
        s.iter().filter(|s| s["status"] == "active").count() == 2
    });
    killed.kill().unwrap();
    killed.wait().unwrap();
    // Keep its stdin open: `wait` would close it, and EOF is a clean exit of its own.
    let _stdin = terminated.stdin.take();
    let pid = terminated.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = terminated.wait().unwrap();
    assert_eq!(status.code(), Some(143), "SIGTERM exits with 128+15");
    let all = wait_for(
        &url,
        "one abandoned, one ended",
        Duration::from_secs(90),
        |s| {
            s.iter()
                .any(|s| s["component"] == "akosha" && s["status"] == "abandoned")
                && s.iter()
                    .any(|s| s["component"] == "oneiric" && s["status"] == "ended")
        },
    );
    let oneiric = all.iter().find(|s| s["component"] == "oneiric").unwrap();
    assert_eq!(oneiric["end_reason"], "sigterm");
    assert_eq!(oneiric["exit_code"], 143);
    let akosha = all.iter().find(|s| s["component"] == "akosha").unwrap();
    assert_eq!(akosha["end_reason"], "heartbeat_timeout");
    drop(server);
}

#[test]
fn track_runs_a_program_as_a_session_and_exits_as_it_did() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let o = shell(home.path(), &server.url)
        .args(["track", "--", "sh", "-c", "echo hi; exit 3"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hi\n",
        "stdio is the program's"
    );
    let o = shell(home.path(), &server.url)
        .args([
            "track",
            "--component",
            "legacy-py",
            "--type",
            "batch",
            "--",
            "sh",
            "-c",
            "kill -TERM $$",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(143));
    let all = wait_for(
        &server.url,
        "two ended sessions",
        Duration::from_secs(60),
        |s| s.iter().filter(|s| s["status"] == "ended").count() == 2,
    );
    let sh = all.iter().find(|s| s["component"] == "sh").unwrap();
    assert_eq!(sh["exit_code"], 3);
    assert_eq!(sh["session_type"], "admin_shell");
    let py = all.iter().find(|s| s["component"] == "legacy-py").unwrap();
    assert_eq!(py["exit_code"], 143);
    assert_eq!(py["session_type"], "batch");
    let o = shell(home.path(), &server.url)
        .args(["track", "--", "/no/such/program"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot run '/no/such/program'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn tracking_off_records_nothing() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let o = shell(home.path(), &server.url)
        .env("SESSION_BUDDY_TRACKING", "off")
        .args(["shell", "oneiric", "-c", "show_layers port"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = shell(home.path(), &server.url)
        .env("SESSION_BUDDY_TRACKING", "off")
        .args(["event-buffer", "status", "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pending"], 0);
    assert!(
        v["tracking"].as_str().unwrap().starts_with("✗ Disabled"),
        "{v}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(sessions(&server.url).is_empty());
}
