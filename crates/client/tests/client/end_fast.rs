//! Exit never waits on the network: a server that accepts and never answers, no server at
//! all; and what is left goes to a detached sender.

use std::time::{Duration, Instant};

use session_buddy_client::{EndReason, Tracker};

use super::common::{config, free_port, info, wait_until};

/// Calls here may take this long: a tracker that waited on the network would show it.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(10);

/// What "fast" means on a busy machine: far below the network timeout, never near it.
const FAST: Duration = Duration::from_secs(2);

fn run_session(url: &str, home: &std::path::Path, settle: Duration) -> (Duration, Duration) {
    let mut cfg = config(home, url);
    cfg.request_timeout = NETWORK_TIMEOUT;
    let t0 = Instant::now();
    let tracker = Tracker::start(cfg, info("mahavishnu"));
    let start = t0.elapsed();
    for _ in 0..20 {
        tracker.command("ps", "", true, Duration::from_millis(1), None, None);
    }
    // Let the sender get stuck in a call (or in backoff).
    std::thread::sleep(settle);
    let t1 = Instant::now();
    tracker.end(EndReason::Eof, Some(0), None);
    drop(tracker);
    let end = t1.elapsed();
    (start, end)
}

#[test]
fn end_returns_fast_when_the_server_accepts_and_never_answers() {
    let dir = tempfile::tempdir().unwrap();
    // The kernel accepts connections into the backlog; nobody ever reads them.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    for settle in [Duration::from_millis(0), Duration::from_millis(200)] {
        let (start, end) = run_session(&url, dir.path(), settle);
        assert!(start < FAST, "start took {start:?}");
        assert!(end < FAST, "end took {end:?}");
    }
    drop(listener);
}

#[test]
fn end_returns_fast_when_no_server_listens() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}", free_port());
    for settle in [Duration::from_millis(0), Duration::from_millis(200)] {
        let (start, end) = run_session(&url, dir.path(), settle);
        assert!(start < FAST, "start took {start:?}");
        assert!(end < FAST, "end took {end:?}");
    }
}

#[test]
fn end_hands_what_is_left_to_a_detached_sender() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let script = dir.path().join("fake-session-buddy");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         fds=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2)\n\
         printf '%s\\n%s\\n' \"$*\" \"$fds\" > \"$SESSION_BUDDY_HOME/spawned.tmp\"\n\
         mv \"$SESSION_BUDDY_HOME/spawned.tmp\" \"$SESSION_BUDDY_HOME/spawned\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cfg = config(&home, &format!("http://{}", free_port()));
    cfg.sender_program = Some(script);

    let tracker = Tracker::start(cfg, info("fastblocks"));
    tracker.command("build", "", true, Duration::from_millis(1), None, None);
    let t = Instant::now();
    tracker.end(EndReason::Exit, Some(0), None);
    assert!(t.elapsed() < FAST, "{:?}", t.elapsed());

    let spawned = home.join("spawned");
    assert!(wait_until(Duration::from_secs(5), || spawned.exists()));
    let text = std::fs::read_to_string(&spawned).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("event-buffer replay --daemon"));
    for line in lines {
        assert_eq!(line, "/dev/null", "stdio not on /dev/null");
    }
}
