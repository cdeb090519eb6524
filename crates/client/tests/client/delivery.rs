//! Delivery against a real server: in order, exactly once, through outages, with rejections,
//! oversized batches and drops.

use std::time::Duration;

use serde_json::{Value, json};
use session_buddy_client::{
    BreakerState, Buffer, BufferLimits, DeliveryOutcome, EndReason, OutgoingEvent, Tracker,
    banner_state, deliver_now, run_sender_daemon, try_sender_lock,
};

use super::common::{TestServer, config, free_port, info, wait_until};

fn session(server: &TestServer, id: &str) -> Value {
    server.get(&format!("/v1/sessions/{id}"))
}

#[test]
fn background_sender_delivers_in_order_and_the_next_process_delivers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let home = dir.path().join("home");
    let cfg = config(&home, &server.url);

    let tracker = Tracker::start(cfg.clone(), info("oneiric"));
    let id = tracker.session_id().unwrap().to_string();
    assert!(id.starts_with("oneiric-"), "{id}");
    // Rule 2 of the session ids: 16 hex digits, which the server computes the same way.
    let tail = id.rsplit('-').next().unwrap();
    assert_eq!(tail.len(), 16, "{id}");
    for i in 0..5 {
        tracker.command(
            "show_layers",
            &format!("--token abc{i} --verbose"),
            i != 3,
            Duration::from_millis(12),
            (i == 3).then_some("boom"),
            None,
        );
    }
    // Delivered by the background thread, no replay.
    assert!(
        wait_until(
            Duration::from_secs(5),
            || session(&server, &id)["command_count"] == 5
        ),
        "commands not delivered: {}",
        session(&server, &id)
    );
    let s = session(&server, &id);
    assert_eq!(s["status"], "active");
    assert_eq!(s["error_count"], 1);
    assert_eq!(
        s["runtime_version"],
        format!("rust {}", env!("CARGO_PKG_RUST_VERSION"))
    );
    assert_eq!(s["pid"], std::process::id());
    let events = server.events(&id);
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    for e in &events {
        if e["event_type"] == "command" {
            let args = e["payload"]["args"].as_str().unwrap();
            assert!(!args.contains("abc"), "args not redacted: {args}");
        }
    }
    assert_eq!(
        tracker.status().last_delivery.unwrap().outcome,
        DeliveryOutcome::Delivered
    );
    assert_eq!(banner_state(&cfg), "✓ Enabled (connected, just now)");

    tracker.end(EndReason::Sigterm, Some(143), Some("SIGTERM"));
    tracker.end(EndReason::Exit, Some(0), None); // idempotent
    // The end waits for a sender (unless a step already under way took it along).
    assert!(tracker.status().pending <= 1);

    // The next tracked process's sender picks up what is left.
    let next = Tracker::start(cfg.clone(), info("oneiric"));
    assert!(wait_until(Duration::from_secs(5), || session(&server, &id)
        ["status"]
        == "ended"));
    let s = session(&server, &id);
    assert_eq!(s["exit_code"], 143);
    assert_eq!(s["end_reason"], "sigterm");
    assert_eq!(
        server.events(&id).len(),
        7,
        "start + 5 commands + end, once each"
    );
    drop(next);
}

#[test]
fn outage_buffers_opens_the_breaker_and_delivers_once_when_the_server_returns() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let home = dir.path().join("home");
    let cfg = config(&home, &format!("http://{addr}"));

    assert_eq!(banner_state(&cfg), "✓ Enabled (nothing sent yet)");
    let tracker = Tracker::start(cfg.clone(), info("akosha"));
    let id = tracker.session_id().unwrap().to_string();
    for _ in 0..3 {
        tracker.command(
            "search",
            "errors",
            true,
            Duration::from_millis(3),
            None,
            Some(0),
        );
    }
    assert!(
        wait_until(Duration::from_secs(5), || matches!(
            tracker.status().breaker,
            BreakerState::Open { .. }
        )),
        "breaker never opened: {:?}",
        tracker.status()
    );
    let status = tracker.status();
    assert_eq!(status.pending, 4, "start + 3 commands stay buffered");
    let last = status.last_delivery.unwrap();
    assert_eq!(last.outcome.kind(), "unreachable", "{last:?}");
    assert!(last.failing_since.is_some());
    assert!(
        banner_state(&cfg).starts_with("✓ Enabled (buffering: server unreachable since "),
        "{}",
        banner_state(&cfg)
    );

    let server = TestServer::start_at(dir.path(), addr);
    assert!(
        wait_until(
            Duration::from_secs(5),
            || session(&server, &id)["command_count"] == 3
        ),
        "not delivered after the server came back: {:?}",
        tracker.status()
    );
    assert!(wait_until(Duration::from_secs(2), || tracker
        .status()
        .pending
        == 0));
    assert_eq!(server.events(&id).len(), 4, "every event exactly once");
    let status = tracker.status();
    assert_eq!(
        status.last_delivery.unwrap().outcome,
        DeliveryOutcome::Delivered
    );
    assert_eq!(status.breaker, BreakerState::Closed);
    assert_eq!(banner_state(&cfg), "✓ Enabled (connected, just now)");
}

fn raw(event: Value, session_id: &str) -> OutgoingEvent {
    OutgoingEvent {
        event_id: event["event_id"].as_str().unwrap().to_string(),
        session_id: session_id.to_string(),
        event_type: event["event_type"].as_str().unwrap().to_string(),
        payload: event.to_string(),
    }
}

fn heartbeat(session_id: &str, extra: Value) -> Value {
    let mut e = json!({
        "event_version": "1.1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "heartbeat",
        "session_id": session_id,
        "timestamp": "2026-02-06T12:00:00Z",
    });
    if let (Some(obj), Some(more)) = (e.as_object_mut(), extra.as_object()) {
        obj.extend(more.clone());
    }
    e
}

/// A buffer written before the session id rule was versioned holds starts without
/// `session_id_version`: they keep their 6-digit ids, which their ends already name.
#[test]
fn an_old_buffer_keeps_its_session_ids() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let home = dir.path().join("home");
    let cfg = config(&home, &server.url);
    let buffer = Buffer::open(&home, cfg.limits).unwrap();
    let old_id = "oneiric-20260206-120000-440000";
    let start = json!({
        "event_version": "1.1",
        "event_id": "550e8400-e29b-41d4-a716-446655440000",
        "event_type": "session_start",
        "component_name": "oneiric",
        "shell_type": "OneiricShell",
        "timestamp": "2026-02-06T12:00:00.5Z",
        "pid": 4321,
        "user": {"username": "ann", "home": "/home/ann"},
        "hostname": "h1",
        "environment": {"platform": "Linux", "cwd": "/srv", "runtime": "rust 1.95"},
        "heartbeat_interval_seconds": 30
    });
    let end = json!({
        "event_version": "1.1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "session_end",
        "session_id": old_id,
        "timestamp": "2026-02-06T12:00:30.5Z",
        "metadata": {},
        "reason": "exit"
    });
    buffer.enqueue(&raw(start, old_id)).unwrap();
    buffer.enqueue(&raw(end, old_id)).unwrap();
    let report = deliver_now(&cfg, Duration::from_secs(10)).unwrap();
    assert_eq!((report.delivered, report.rejected), (2, 0), "{report:?}");
    let s = session(&server, old_id);
    assert_eq!(s["status"], "ended", "{s}");
    assert_eq!(s["duration_seconds"], 30.0);
}

#[test]
fn rejected_events_are_dead_lettered_after_three_rejections_and_spare_their_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let home = dir.path().join("home");
    let cfg = config(&home, &server.url);
    let buffer = Buffer::open(&home, cfg.limits).unwrap();
    let mut bad = heartbeat("x-1", json!({}));
    bad["timestamp"] = json!("2026-02-06T12:00:00"); // naive: rejected, naming timestamp
    buffer.enqueue(&raw(bad, "x-1")).unwrap();
    buffer
        .enqueue(&raw(heartbeat("x-1", json!({})), "x-1"))
        .unwrap();

    let report = deliver_now(&cfg, Duration::from_secs(10)).unwrap();
    assert_eq!(report.delivered, 1);
    assert_eq!(report.rejected, 3);
    assert_eq!(report.dead_lettered, 1);
    assert_eq!(report.remaining, 0);
    assert_eq!(report.error, None);
    assert_eq!(report.outcome.as_ref().map(|o| o.kind()), Some("rejected"));
    let last = buffer.last_delivery().unwrap().unwrap();
    assert!(
        last.outcome.answered(),
        "a rejection is an answer: {last:?}"
    );
    assert_eq!(last.failing_since, None);
    let dead = buffer.list_dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert!(dead[0].last_error.as_deref().unwrap().contains("timestamp"));

    // Replay twice: the second changes nothing.
    let again = deliver_now(&cfg, Duration::from_secs(10)).unwrap();
    assert_eq!(again, Default::default());
}

#[test]
fn large_events_are_sent_in_byte_bounded_batches_and_an_oversized_one_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let home = dir.path().join("home");
    let mut cfg = config(&home, &server.url);
    // 8 MiB batches: a busy machine may need more than the tests' usual half second.
    cfg.request_timeout = Duration::from_secs(60);
    let buffer = Buffer::open(&home, cfg.limits).unwrap();
    // Unknown fields are ignored by the server but count towards its 16 MiB body limit.
    let pad = "x".repeat(40 * 1024);
    for _ in 0..500 {
        buffer
            .enqueue(&raw(heartbeat("big-1", json!({ "pad": pad })), "big-1"))
            .unwrap();
    }
    // Over the server's 16 MiB limit on its own: dead-lettered without a call.
    let huge = "y".repeat(17 * 1024 * 1024);
    buffer
        .enqueue(&raw(heartbeat("big-1", json!({ "pad": huge })), "big-1"))
        .unwrap();

    let report = deliver_now(&cfg, Duration::from_secs(60)).unwrap();
    assert_eq!(report.delivered, 500, "{report:?}");
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    assert_eq!(report.remaining, 0);
    assert_eq!(server.events("big-1").len(), 500);
}

#[test]
fn dropped_events_are_counted_and_recorded_once_delivery_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let home = dir.path().join("home");
    let mut cfg = config(&home, &format!("http://{addr}"));
    cfg.limits = BufferLimits {
        max_events: 5,
        ..BufferLimits::default()
    };
    let tracker = Tracker::start(cfg.clone(), info("crackerjack"));
    let id = tracker.session_id().unwrap().to_string();
    for _ in 0..9 {
        tracker.command("lint", "", true, Duration::from_millis(1), None, None);
    }
    let status = tracker.status();
    assert_eq!(status.pending, 5);
    assert_eq!(status.dropped, 5, "the start and 4 oldest commands");

    let server = TestServer::start_at(dir.path(), addr);
    let found = wait_until(Duration::from_secs(10), || {
        server.events(&id).iter().any(|e| {
            e["payload"]["command"] == "tracking.events_dropped"
                && e["payload"]["args"] == "5 events dropped (buffer over 5 events)"
        })
    });
    assert!(found, "no drop record: {:?}", server.events(&id));
    assert_eq!(
        server.events(&id).len(),
        6,
        "5 kept commands + the drop record"
    );
    assert_eq!(tracker.status().dropped, 5);
    assert_eq!(
        Buffer::open(&home, cfg.limits)
            .unwrap()
            .stats()
            .unwrap()
            .dropped_unreported,
        0
    );
}

#[test]
fn the_daemon_sender_stops_when_its_buffer_is_removed_even_if_another_takes_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // Nobody listens: the events can only wait.
    let cfg = config(&home, &format!("http://{}", free_port()));
    let buffer = Buffer::open(&home, cfg.limits).unwrap();
    buffer
        .enqueue(&raw(heartbeat("gone-1", json!({})), "gone-1"))
        .unwrap();
    drop(buffer);
    let (done, report) = std::sync::mpsc::channel();
    let daemon_cfg = cfg.clone();
    std::thread::spawn(move || {
        let _ = done.send(run_sender_daemon(
            &daemon_cfg,
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        ));
    });
    // The home goes away (a test's temporary directory, a user's cleanup) and a new buffer
    // is made at the same path: the old sender must not deliver the removed buffer for a day.
    // Its first attempt recorded (asking for the lock here could take it from under the
    // starting sender).
    assert!(
        wait_until(Duration::from_secs(60), || Buffer::open(&home, cfg.limits)
            .and_then(|b| b.last_delivery())
            .is_ok_and(|d| d.is_some())),
        "the sender never tried"
    );
    std::fs::remove_dir_all(&home).unwrap();
    Buffer::open(&home, cfg.limits).unwrap();
    let report = report
        .recv_timeout(Duration::from_secs(120))
        .expect("the sender stopped")
        .unwrap();
    assert_eq!(report.delivered, 0);
    assert_eq!(report.error.as_deref(), Some("the buffer file was removed"));
}

#[test]
fn the_daemon_sender_delivers_everything_and_steps_aside_for_a_lock_holder() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let home = dir.path().join("home");
    let cfg = config(&home, &server.url);
    let buffer = Buffer::open(&home, cfg.limits).unwrap();
    for i in 0..1200 {
        let session = format!("daemon-{}", i % 3);
        buffer
            .enqueue(&raw(heartbeat(&session, json!({})), &session))
            .unwrap();
    }

    // While another process holds the sender lock, one daemon stands by; a second one finds
    // the standby taken and exits at once.
    let held = try_sender_lock(&home).unwrap().unwrap();
    let standby = std::thread::spawn({
        let cfg = cfg.clone();
        move || run_sender_daemon(&cfg, Duration::from_secs(60), Duration::ZERO)
    });
    // Held: /proc/locks lists a lock on the standby file's inode (looked at, not taken).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let standing_by = || {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(home.join("sender.standby.lock")) else {
            return false;
        };
        let inode = format!(":{} ", meta.ino());
        std::fs::read_to_string("/proc/locks").is_ok_and(|l| l.contains(&inode))
    };
    while !standing_by() {
        assert!(std::time::Instant::now() < deadline, "no daemon stood by");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = std::time::Instant::now();
    assert!(run_sender_daemon(&cfg, Duration::from_secs(60), Duration::ZERO).is_err());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a second one exits at once"
    );
    assert_eq!(
        server.events("daemon-0").len(),
        0,
        "nothing sent while the lock is held"
    );
    // The holder goes (as a SIGKILLed shell would): the standby takes over and sends it all.
    drop(held);
    let report = standby.join().unwrap().unwrap();
    assert_eq!(report.delivered, 1200);
    assert_eq!(report.remaining, 0);
    for i in 0..3 {
        assert_eq!(server.events(&format!("daemon-{i}")).len(), 400);
    }
}
