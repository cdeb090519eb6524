//! Delivery outcomes, classified once and recorded for every process: delivered, server
//! unreachable, refused by the server (401/403, with its reason), events rejected, and a
//! configuration that cannot work (a URL without a scheme); the banner's words with their age;
//! the live check `status` makes.

use std::time::Duration;

use chrono::Utc;
use session_buddy_client::{
    Buffer, DeliveryOutcome, OutgoingEvent, TOKEN_ADVICE, Tracker, banner_state, check_server,
    check_server_url, deliver_now,
};
use session_buddy_events::auth::{AUDIENCE, Claims};

use super::common::{TestServer, config, free_port, info, wait_until};

const SECRET: &str = "Vq3nZ8rT1wY6uI0oP4aS7dF2gH5jK9lX-client";

fn token(scopes: &[&str], exp_in: i64) -> String {
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: "test".into(),
        aud: AUDIENCE.into(),
        iss: None,
        iat: Some(now),
        exp: now + exp_in,
        jti: uuid::Uuid::new_v4().to_string(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        component: None,
        read_components: Vec::new(),
    };
    session_buddy_server::auth::mint_token(SECRET, &claims).unwrap()
}

fn last_outcome(home: &std::path::Path) -> Option<DeliveryOutcome> {
    Buffer::open(home, Default::default())
        .unwrap()
        .last_delivery()
        .unwrap()
        .map(|r| r.outcome)
}

#[test]
fn a_refused_token_is_recorded_as_refused_with_the_servers_reason_not_as_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_secured(dir.path(), SECRET);
    let home = dir.path().join("home");
    let mut cfg = config(&home, &server.url);
    cfg.token = Some("bad.to.ken".into());

    let tracker = Tracker::start(cfg.clone(), info("oneiric"));
    tracker.command(
        "show_layers",
        "",
        true,
        Duration::from_millis(1),
        None,
        None,
    );
    assert!(
        wait_until(Duration::from_secs(10), || matches!(
            last_outcome(&home),
            Some(DeliveryOutcome::Refused { .. })
        )),
        "not recorded as refused: {:?}",
        last_outcome(&home)
    );
    let Some(DeliveryOutcome::Refused { status, reason }) = last_outcome(&home) else {
        unreachable!()
    };
    assert_eq!(status, 401);
    assert!(reason.contains("malformed token"), "{reason}");
    let banner = banner_state(&cfg);
    assert!(
        banner.starts_with("✓ Enabled (buffering: the server refused the token since "),
        "{banner}"
    );
    assert!(banner.contains("malformed token"), "{banner}");
    assert!(banner.contains(TOKEN_ADVICE), "{banner}");
    assert!(!banner.contains("unreachable"), "{banner}");
    let status = tracker.status();
    assert_eq!(status.pending, 2, "start + command stay buffered");
    assert_eq!(status.dead_letters, 0, "a refusal never dead-letters");

    // The live check says the same, in one call.
    let check = check_server(&cfg, Duration::from_secs(5));
    assert!(
        matches!(check.outcome, DeliveryOutcome::Refused { status: 401, .. }),
        "{check:?}"
    );
    assert!(check.describe().contains("refused the token"), "{check:?}");

    // A token without the emit scope: 403, with the server's words.
    let mut reader = cfg.clone();
    reader.token = Some(token(&["read"], 3600));
    let check = check_server(&reader, Duration::from_secs(5));
    match &check.outcome {
        DeliveryOutcome::Refused { status, reason } => {
            assert_eq!(*status, 403);
            assert!(reason.contains("'emit' scope"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    // The rest in a home of its own, with no background sender to record over it.
    drop(tracker);
    let home = dir.path().join("home2");
    let cfg = config(&home, &server.url);
    let buffer = Buffer::open(&home, cfg.limits).unwrap();
    for _ in 0..2 {
        buffer.enqueue(&heartbeat("refused-1")).unwrap();
    }

    // An expired token: 401, the token has expired.
    let mut expired = cfg.clone();
    expired.token = Some(token(&["emit"], -3600));
    let report = deliver_now(&expired, Duration::from_secs(10)).unwrap();
    assert_eq!(report.delivered, 0);
    assert_eq!(report.remaining, 2);
    match &report.outcome {
        Some(DeliveryOutcome::Refused {
            status: 401,
            reason,
        }) => {
            assert!(reason.contains("expired"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(report.error.unwrap().contains("expired"));
    assert_eq!(buffer.stats().unwrap().dead_letters, 0);

    // A good token delivers everything, and the record says so.
    let mut good = cfg.clone();
    good.token = Some(token(&["emit"], 3600));
    assert_eq!(
        check_server(&good, Duration::from_secs(5)).outcome,
        DeliveryOutcome::Delivered
    );
    let report = deliver_now(&good, Duration::from_secs(10)).unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");
    assert_eq!(report.outcome, Some(DeliveryOutcome::Delivered));
    assert_eq!(last_outcome(&home), Some(DeliveryOutcome::Delivered));
    assert_eq!(banner_state(&cfg), "✓ Enabled (connected, just now)");
}

fn heartbeat(session_id: &str) -> OutgoingEvent {
    let event_id = uuid::Uuid::new_v4().to_string();
    let payload = serde_json::json!({
        "event_version": "1.1",
        "event_id": event_id,
        "event_type": "heartbeat",
        "session_id": session_id,
        "timestamp": "2026-02-06T12:00:00Z",
    });
    OutgoingEvent {
        event_id,
        session_id: session_id.to_string(),
        event_type: "heartbeat".into(),
        payload: payload.to_string(),
    }
}

#[test]
fn an_unreachable_server_is_recorded_as_unreachable_and_checked_live() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let cfg = config(&home, &format!("http://{}", free_port()));
    let tracker = Tracker::start(cfg.clone(), info("akosha"));
    assert!(wait_until(Duration::from_secs(10), || last_outcome(&home).is_some()));
    drop(tracker);
    let report = deliver_now(&cfg, Duration::from_secs(10)).unwrap();
    assert_eq!(
        report.outcome.as_ref().map(|o| o.kind()),
        Some("unreachable")
    );
    assert!(report.remaining > 0);
    let banner = banner_state(&cfg);
    assert!(
        banner.starts_with("✓ Enabled (buffering: server unreachable since "),
        "{banner}"
    );
    assert!(banner.contains(", last tried "), "{banner}");
    let check = check_server(&cfg, Duration::from_secs(5));
    assert_eq!(check.outcome.kind(), "unreachable", "{check:?}");

    // The server comes up: the live check says so at once, before any delivery.
    let server = TestServer::start(dir.path());
    let up = config(&home, &server.url);
    let check = check_server(&up, Duration::from_secs(5));
    assert_eq!(check.outcome, DeliveryOutcome::Delivered, "{check:?}");
    assert!(check.describe().starts_with("answers"), "{check:?}");
}

#[test]
fn the_banner_shows_the_last_result_with_its_age() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let cfg = config(&home, "http://127.0.0.1:9");
    let buffer = Buffer::open(&home, cfg.limits).unwrap();
    assert_eq!(banner_state(&cfg), "✓ Enabled (nothing sent yet)");

    let now = Utc::now();
    buffer
        .record_delivery(
            DeliveryOutcome::Delivered,
            now - chrono::Duration::minutes(3),
        )
        .unwrap();
    assert_eq!(banner_state(&cfg), "✓ Enabled (connected, 3 min ago)");
    buffer
        .record_delivery(DeliveryOutcome::Delivered, now - chrono::Duration::hours(5))
        .unwrap();
    assert_eq!(banner_state(&cfg), "✓ Enabled (connected, 5 h ago)");

    // Failures keep the time they began; the age is that of the last try.
    let down = |error: &str| DeliveryOutcome::Unreachable {
        error: error.into(),
    };
    let first = buffer
        .record_delivery(
            down("connection refused"),
            now - chrono::Duration::minutes(10),
        )
        .unwrap();
    let second = buffer
        .record_delivery(down("timed out"), now - chrono::Duration::seconds(40))
        .unwrap();
    assert_eq!(second.failing_since, first.failing_since);
    let since = first
        .failing_since
        .unwrap()
        .with_timezone(&chrono::Local)
        .format("%H:%M")
        .to_string();
    let banner = banner_state(&cfg);
    let today = (now - chrono::Duration::minutes(10))
        .with_timezone(&chrono::Local)
        .date_naive()
        == now.with_timezone(&chrono::Local).date_naive();
    assert!(banner.starts_with("✓ Enabled (buffering: server unreachable since "));
    assert!(
        banner.ends_with(&format!("{since}, last tried 40 s ago)")),
        "{banner}"
    );
    if today {
        assert_eq!(
            banner,
            format!("✓ Enabled (buffering: server unreachable since {since}, last tried 40 s ago)")
        );
    }
    // Rejected events are an answer: the failure is over.
    let r = buffer
        .record_delivery(
            DeliveryOutcome::Rejected {
                events: 2,
                error: "timestamp: must have a time zone".into(),
            },
            now,
        )
        .unwrap();
    assert_eq!(r.failing_since, None);
    assert_eq!(
        banner_state(&cfg),
        "✓ Enabled (connected, just now; the server rejected 2 events (timestamp: must have a time zone))"
    );
}

#[test]
fn a_url_without_a_scheme_says_that_http_is_missing() {
    let e = check_server_url("localhost:18678").unwrap_err();
    assert!(
        e.ends_with("has no scheme; write http://localhost:18678"),
        "{e}"
    );
    let e = check_server_url("ftp://example.com").unwrap_err();
    assert!(e.contains("http:// or https://"), "{e}");
    let e = check_server_url("http://").unwrap_err();
    assert!(e.contains("has no host"), "{e}");
    assert!(check_server_url("http://127.0.0.1:8678").is_ok());
    assert!(check_server_url("HTTPS://tracker.example.com/base").is_ok());

    // The emitter records it as a configuration problem, not an outage, and never calls.
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let cfg = config(&home, "localhost:18678");
    let tracker = Tracker::start(cfg.clone(), info("oneiric"));
    assert!(wait_until(Duration::from_secs(10), || last_outcome(&home).is_some()));
    match last_outcome(&home) {
        Some(DeliveryOutcome::Misconfigured { error }) => {
            assert!(
                error.contains("has no scheme; write http://localhost:18678"),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }
    let banner = banner_state(&cfg);
    assert!(banner.contains("cannot send since"), "{banner}");
    assert!(banner.contains("write http://localhost:18678"), "{banner}");
    assert_eq!(
        check_server(&cfg, Duration::from_secs(5)).outcome.kind(),
        "misconfigured"
    );
    drop(tracker);
}
