//! Configuration from the environment, and disabled tracking.

use std::collections::HashMap;
use std::time::Duration;

use session_buddy_client::{BreakerState, EndReason, Tracker, TrackerConfig, banner_state};

use super::common::{config, info, wait_until};

fn from(vars: &[(&str, &str)]) -> TrackerConfig {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TrackerConfig::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn environment_sets_home_url_limits_and_switches() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap();
    let c = from(&[
        ("SESSION_BUDDY_HOME", home),
        ("SESSION_BUDDY_URL", "http://127.0.0.1:9999/"),
        ("ONEIRIC_EVENT_BUFFER_MAX_SIZE", "50"),
        ("ONEIRIC_EVENT_BUFFER_MAX_AGE_DAYS", "2"),
    ]);
    assert!(c.enabled);
    assert_eq!(c.home, dir.path());
    assert_eq!(c.url, "http://127.0.0.1:9999");
    assert_eq!(c.limits.max_events, 50);
    assert_eq!(c.limits.max_age, Duration::from_secs(2 * 86_400));
    assert_eq!(c.limits.max_bytes, 256 * 1024 * 1024);
    assert_eq!(c.request_timeout, Duration::from_secs(2));
    assert_eq!(c.heartbeat_interval, Duration::from_secs(30));

    let d = from(&[]);
    assert_eq!(d.url, "http://127.0.0.1:8678");
    assert_eq!(d.limits.max_events, 100_000);

    for v in ["off", "0", "false", "disabled", "OFF"] {
        let c = from(&[("SESSION_BUDDY_TRACKING", v)]);
        assert!(!c.enabled, "{v}");
        assert_eq!(
            c.disabled_reason.as_deref(),
            Some(format!("SESSION_BUDDY_TRACKING={v}").as_str())
        );
    }
    assert!(from(&[("SESSION_BUDDY_TRACKING", "on")]).enabled);
    let c = from(&[("ONEIRIC_EVENT_BUFFER_ENABLED", "false")]);
    assert!(!c.enabled);
    assert_eq!(
        c.disabled_reason.as_deref(),
        Some("ONEIRIC_EVENT_BUFFER_ENABLED=false")
    );
}

#[test]
fn the_token_comes_from_env_or_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "file-token\n").unwrap();

    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        from(&[("SESSION_BUDDY_HOME", home)]).token,
        None,
        "readable by others"
    );

    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        from(&[("SESSION_BUDDY_HOME", home)]).token.as_deref(),
        Some("file-token")
    );
    assert_eq!(
        from(&[
            ("SESSION_BUDDY_HOME", home),
            ("SESSION_BUDDY_TOKEN", "env-token")
        ])
        .token
        .as_deref(),
        Some("env-token")
    );
}

#[test]
fn disabled_tracking_does_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let mut cfg = config(&home, "http://127.0.0.1:9");
    cfg.enabled = false;
    cfg.disabled_reason = Some("SESSION_BUDDY_TRACKING=off".into());

    let tracker = Tracker::start(cfg.clone(), info("oneiric"));
    tracker.command("x", "", true, Duration::ZERO, None, None);
    tracker.heartbeat();
    tracker.end(EndReason::Exit, Some(0), None);
    assert_eq!(tracker.session_id(), None);
    let status = tracker.status();
    assert!(!status.enabled);
    assert_eq!(
        status.disabled_reason.as_deref(),
        Some("SESSION_BUDDY_TRACKING=off")
    );
    assert_eq!(status.pending, 0);
    assert_eq!(status.breaker, BreakerState::Closed);
    assert!(!home.exists(), "a disabled tracker touches nothing");
    assert_eq!(
        banner_state(&cfg),
        "✗ Disabled (SESSION_BUDDY_TRACKING=off)"
    );
}

#[test]
fn an_unusable_buffer_disables_tracking_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("not-a-dir");
    std::fs::write(&home, "a file").unwrap();
    let tracker = Tracker::start(config(&home, "http://127.0.0.1:9"), info("oneiric"));
    tracker.command("x", "", true, Duration::ZERO, None, None);
    let status = tracker.status();
    assert!(!status.enabled);
    assert!(
        status.disabled_reason.unwrap().contains("not-a-dir"),
        "the reason names the path"
    );
}

#[test]
fn heartbeats_are_sent_on_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "http://127.0.0.1:9");
    cfg.heartbeat_interval = Duration::from_millis(100);
    let t0 = std::time::Instant::now();
    let tracker = Tracker::start(cfg, info("oneiric"));
    // Four heartbeats come (however busy the machine), and never more than one per interval.
    assert!(
        wait_until(Duration::from_secs(20), || tracker.status().pending >= 5),
        "start + 4 heartbeats, got {}",
        tracker.status().pending
    );
    let pending = tracker.status().pending;
    let most = 1 + (t0.elapsed().as_millis() / 100) as u64;
    assert!(pending <= most, "{pending} events in {:?}", t0.elapsed());
    // An explicit one is recorded at once (background ones may come meanwhile).
    tracker.heartbeat();
    assert!(tracker.status().pending > pending);
}

#[test]
fn a_tracker_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Tracker>();
    send_sync::<session_buddy_client::Buffer>();
}
