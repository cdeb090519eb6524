//! `/metrics` tells the truth about the events sent.

use serde_json::json;

use crate::common::{TestServer, command, end, session_id_of, start};

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_values_match_the_events_sent() {
    let server = TestServer::start().await;
    let a = start("oneiric", "2026-05-01T10:00:00Z");
    let b = start("oneiric", "2026-05-01T10:00:01Z");
    let c = start("session-buddy", "2026-05-01T10:00:02Z");
    let (ia, ib) = (session_id_of(&a), session_id_of(&b));
    let mut bad = start("akosha", "2026-05-01T10:00:03Z");
    bad["pid"] = json!(-1);
    server
        .post_events(&[
            a,
            b,
            c,
            bad,
            command(&ia, 1, "2026-05-01T10:00:10Z", true),
            end(&ia, "2026-05-01T10:05:00Z", 0),
            end(&ib, "2026-05-01T12:00:01Z", 2),
        ])
        .await;
    let m = server.metrics().await;
    assert_eq!(
        value(
            &m,
            r#"session_start_total{component_name="oneiric",shell_type="oneiricShell"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            r#"session_start_total{component_name="session-buddy",shell_type="session-buddyShell"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            r#"session_end_total{component_name="oneiric",status="success"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            r#"session_end_total{component_name="oneiric",status="error"}"#
        ),
        1.0
    );
    // The real session lengths: 300 s and 7200 s.
    assert_eq!(
        value(
            &m,
            r#"session_duration_seconds_sum{component_name="oneiric"}"#
        ),
        7500.0
    );
    assert_eq!(
        value(
            &m,
            r#"session_duration_seconds_bucket{component_name="oneiric",le="300"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            r#"session_duration_seconds_bucket{component_name="oneiric",le="7200"}"#
        ),
        2.0
    );
    assert_eq!(
        value(&m, r#"active_sessions{component_name="oneiric"}"#),
        0.0
    );
    // Label values are real component names, never a split of the session id.
    assert_eq!(
        value(&m, r#"active_sessions{component_name="session-buddy"}"#),
        1.0
    );
    assert!(!m.contains(r#"component_name="session""#), "{m}");
    assert_eq!(
        value(
            &m,
            r#"mcp_event_emit_success_total{component_name="oneiric",event_type="session_start"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            r#"mcp_event_emit_success_total{component_name="oneiric",event_type="command"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            r#"mcp_event_emit_success_total{component_name="oneiric",event_type="session_end"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            r#"mcp_event_emit_failure_total{component_name="akosha",event_type="session_start",error_type="pid"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            r#"session_buddy_ingest_events_total{status="accepted"}"#
        ),
        6.0
    );
    assert_eq!(
        value(
            &m,
            r#"session_buddy_ingest_events_total{status="rejected"}"#
        ),
        1.0
    );
    assert!(m.contains("# TYPE session_duration_seconds histogram"));
    assert!(m.contains(
        r#"session_buddy_http_requests_total{method="POST",path="/v1/events",status="200"} 1"#
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_sessions_come_from_the_store_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let open = || {
        let store = session_buddy_store_sqlite::SqliteStore::open(
            &path,
            session_buddy_store_sqlite::SyncMode::Normal,
        )
        .unwrap();
        session_buddy_server::AppState::new(std::sync::Arc::new(store), Default::default())
    };
    let state = open();
    let events = vec![
        start("crackerjack", "2026-05-02T10:00:00Z"),
        start("crackerjack", "2026-05-02T10:00:01Z"),
    ];
    session_buddy_server::ingest_values(&state, events)
        .await
        .unwrap();
    state.store.close().await;
    drop(state);
    let state = open();
    session_buddy_server::refresh_gauges(&state).await;
    let m = state.metrics.render();
    assert_eq!(
        value(&m, r#"active_sessions{component_name="crackerjack"}"#),
        2.0
    );
    state.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_abandons_silent_sessions_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = session_buddy_store_sqlite::SqliteStore::open(
        &dir.path().join("s.db"),
        session_buddy_store_sqlite::SyncMode::Normal,
    )
    .unwrap();
    let options = session_buddy_server::ServerOptions::default();
    let ttl = chrono::TimeDelta::from_std(options.session_ttl).unwrap();
    let state = session_buddy_server::AppState::new(std::sync::Arc::new(store), options);
    let s = start("akosha", "2026-05-03T10:00:00Z");
    let id = session_id_of(&s);
    let before = chrono::Utc::now();
    session_buddy_server::ingest_values(&state, vec![s])
        .await
        .unwrap();
    let after = chrono::Utc::now();
    // The reaper's clock is injected: the TTL after the receipt at the latest, then past it.
    assert_eq!(
        session_buddy_server::reap_at(&state, before + ttl).await,
        0,
        "not silent long enough yet"
    );
    let past = after + ttl + chrono::TimeDelta::seconds(1);
    assert_eq!(session_buddy_server::reap_at(&state, past).await, 1);
    let m = state.metrics.render();
    assert_eq!(
        value(
            &m,
            r#"session_end_total{component_name="akosha",status="abandoned"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&m, r#"active_sessions{component_name="akosha"}"#),
        0.0
    );
    assert_eq!(value(&m, "session_buddy_reaper_abandoned_total"), 1.0);
    // A real end that arrives later wins, without counting the session as active twice.
    session_buddy_server::ingest_values(&state, vec![end(&id, "2026-05-03T10:20:00Z", 0)])
        .await
        .unwrap();
    let session = state.store.get_session(&id).await.unwrap().unwrap();
    assert_eq!(session.status.as_str(), "ended");
    let m = state.metrics.render();
    assert_eq!(
        value(&m, r#"active_sessions{component_name="akosha"}"#),
        0.0
    );
    assert_eq!(
        value(
            &m,
            r#"session_end_total{component_name="akosha",status="success"}"#
        ),
        1.0
    );
    state.store.close().await;
}
