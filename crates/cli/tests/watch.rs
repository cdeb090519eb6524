//! `session-buddy watch`: a line per change as it happens, resuming across a server restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Server, bin, free_port, session_id, start_event};

const BOUND: Duration = Duration::from_secs(30);

struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(home: &std::path::Path, url: &str, extra: &[&str]) -> Self {
        let mut child = bin()
            .env("SESSION_BUDDY_HOME", home)
            .args(["watch", "--url", url])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one contains `text`; returns it.
    fn until(&mut self, text: &str) -> String {
        let deadline = Instant::now() + BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with '{text}'; saw {:#?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
    }

    fn interrupt(mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(session_id: &str, seq: u64, name: &str, success: bool) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "command",
        "session_id": session_id,
        "timestamp": format!("2026-03-01T10:00:0{seq}Z"),
        "seq": seq,
        "command": name,
        "success": success,
        "duration_ms": 7.0,
        "error": if success { Value::Null } else { json!("it broke") }
    })
}

fn end(session_id: &str) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "session_end",
        "session_id": session_id,
        "timestamp": "2026-03-01T10:00:09Z",
        "exit_code": 0
    })
}

/// Posts warm-up starts until `watch` prints one: it is connected from then on.
fn connected(server: &Server, watch: &mut Watch) {
    let deadline = Instant::now() + BOUND;
    let mut n = 0;
    loop {
        assert!(Instant::now() < deadline, "the watch never connected");
        let start = start_event(
            "warmup",
            &format!("2026-02-01T10:{:02}:{:02}Z", n / 60, n % 60),
        );
        n += 1;
        server.post(&[start]);
        if let Ok(line) = watch.lines.recv_timeout(Duration::from_millis(500)) {
            watch.seen.push(line.clone());
            if line.contains("warmup") {
                return;
            }
        }
    }
}

#[test]
fn watch_prints_a_shells_life_and_resumes_after_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let mut server = Server::start_with(home.path(), &["--port", &port]);
    let mut watch = Watch::start(home.path(), &server.url, &[]);
    let mut json = Watch::start(home.path(), &server.url, &["--format", "json"]);

    connected(&server, &mut watch);
    connected(&server, &mut json);
    let start = start_event("oneiric", "2026-03-01T10:00:00Z");
    let id = session_id(&start);
    server.post(&[start]);
    let line = watch.until(&id);
    assert!(
        line.contains("oneiric  alice@box1") && line.ends_with("start"),
        "{line}"
    );
    server.post(&[command(&id, 1, "deploy", true)]);
    let line = watch.until("command deploy");
    assert!(line.ends_with("command deploy ok (7 ms)"), "{line}");

    // The server restarts on the same port; meanwhile a failed command and the end.
    assert!(server.terminate().success());
    server = Server::start_with(home.path(), &["--port", &port]);
    server.post(&[command(&id, 2, "migrate", false), end(&id)]);
    let line = watch.until("command migrate");
    assert!(
        line.ends_with("command migrate failed (7 ms): it broke"),
        "{line}"
    );
    let line = watch.until(" end");
    assert!(line.ends_with("end (exit 0)"), "{line}");
    // Nothing printed twice across the resume.
    let deploys = watch.seen.iter().filter(|l| l.contains("deploy")).count();
    assert_eq!(deploys, 1, "{:#?}", watch.seen);
    let starts = watch
        .seen
        .iter()
        .filter(|l| l.contains(&id) && l.ends_with("start"))
        .count();
    assert_eq!(starts, 1, "{:#?}", watch.seen);

    // NDJSON: one object per change, in order.
    let mut changes = Vec::new();
    while changes.len() < 4 {
        let line = json.until(&id);
        let v: Value = serde_json::from_str(&line).unwrap();
        changes.push(v);
    }
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["start", "command", "command", "end"]);
    assert_eq!(changes[2]["command"], "migrate");
    assert_eq!(changes[2]["success"], false);
    assert_eq!(changes[3]["session_id"], id.as_str());
    assert!(changes.iter().all(|c| c["event_id"].is_string()));

    let status = watch.interrupt();
    assert_eq!(status.code(), Some(130));
    let status = json.interrupt();
    assert_eq!(status.code(), Some(130));
}

#[test]
fn watch_filters_by_component() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let watch = Watch::start(home.path(), &server.url, &["--component", "akosha"]);
    let other = start_event("oneiric", "2026-03-01T10:00:00Z");
    let mine = start_event("akosha", "2026-03-01T10:00:01Z");
    // Posted until the watch is connected and prints the akosha start.
    let deadline = Instant::now() + BOUND;
    let mut n = 0;
    let line = loop {
        assert!(Instant::now() < deadline, "nothing printed");
        let mut o = other.clone();
        o["event_id"] = json!(uuid::Uuid::new_v4().to_string());
        let mut m = mine.clone();
        m["event_id"] = json!(uuid::Uuid::new_v4().to_string());
        m["timestamp"] = json!(format!("2026-03-01T10:{:02}:01Z", n % 60));
        n += 1;
        server.post(&[o, m]);
        if let Ok(line) = watch.lines.recv_timeout(Duration::from_millis(500)) {
            break line;
        }
    };
    assert!(
        line.contains("akosha") && !line.contains("oneiric"),
        "{line}"
    );
}
