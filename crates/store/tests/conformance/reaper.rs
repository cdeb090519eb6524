//! The reaper: silent sessions become `abandoned`; a late real end wins; a late event revives.

use session_buddy_events::SessionStatus;
use session_buddy_store::{SessionEffect, Store};

use super::*;

/// Received at `received(0)`: one 1.1 session (heartbeats announced) and one 1.0 (legacy).
async fn two_sessions(store: &dyn Store) -> (String, String) {
    let modern = start_1_1("crackerjack", &uuid(1), "2026-06-01T00:00:00Z");
    let legacy = start("oneiric", &uuid(2), "2026-06-01T00:00:00Z");
    let outcomes = ingest(store, &[modern, legacy], 0).await;
    (
        outcomes[0].session_id.clone(),
        outcomes[1].session_id.clone(),
    )
}

pub async fn silent_sessions_are_abandoned_by_their_ttl(store: &dyn Store) {
    let (modern, legacy) = two_sessions(store).await;
    // The modern session's last event is a heartbeat at 00:02 (received at received(120)).
    ingest(
        store,
        &[heartbeat(&uuid(3), &modern, "2026-06-01T00:02:00Z")],
        120,
    )
    .await;
    // Cutoffs before the last receive: nothing happens.
    let none = store.reap(received(100), received(-1)).await.unwrap();
    assert!(none.is_empty(), "{none:?}");
    // The active cutoff passes the modern session's last event; the legacy cutoff does not
    // reach the legacy session.
    let reaped = store.reap(received(121), received(-1)).await.unwrap();
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!(reaped[0].session_id, modern);
    assert_eq!(reaped[0].component, "crackerjack");
    assert_eq!(reaped[0].duration_seconds, 120.0);
    let s = store.get_session(&modern).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Abandoned);
    assert_eq!(s.end_reason.as_deref(), Some("heartbeat_timeout"));
    assert_eq!(s.ended_at, Some(at("2026-06-01T00:02:00Z")));
    assert_eq!(s.duration_seconds, Some(120.0));
    let l = store.get_session(&legacy).await.unwrap().unwrap();
    assert_eq!(l.status, SessionStatus::Active);
    // Reaping is idempotent; the legacy TTL reaches the legacy session.
    let reaped = store.reap(received(121), received(1)).await.unwrap();
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!(reaped[0].session_id, legacy);
    assert!(
        store
            .reap(received(500), received(500))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.active_by_component().await.unwrap().is_empty());
}

pub async fn a_late_real_end_wins(store: &dyn Store) {
    let (modern, _) = two_sessions(store).await;
    store.reap(received(10), received(-1)).await.unwrap();
    let mut end = end_1_1(&uuid(4), &modern, "2026-06-01T00:30:00Z");
    end["exit_code"] = json!(0);
    end["reason"] = json!("exit");
    let outcome = &ingest(store, &[end], 2000).await[0];
    assert!(
        matches!(
            &outcome.effects[..],
            [SessionEffect::Ended {
                was_abandoned: true,
                ..
            }]
        ),
        "{outcome:?}"
    );
    let s = store.get_session(&modern).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Ended);
    assert_eq!(s.end_reason.as_deref(), Some("exit"));
    assert_eq!(s.duration_seconds, Some(1800.0));
    assert_eq!(s.exit_code, Some(0));
    // An ended session is never reaped.
    assert!(
        store
            .reap(received(5000), received(5000))
            .await
            .unwrap()
            .iter()
            .all(|r| r.session_id != modern)
    );
}

pub async fn an_event_after_reaping_revives_the_session(store: &dyn Store) {
    let (modern, _) = two_sessions(store).await;
    store.reap(received(10), received(-1)).await.unwrap();
    let outcome = &ingest(
        store,
        &[command(&uuid(5), &modern, "2026-06-01T00:20:00Z", 1, true)],
        1300,
    )
    .await[0];
    assert!(
        matches!(&outcome.effects[..], [SessionEffect::Revived { component }] if component == "crackerjack"),
        "{outcome:?}"
    );
    let s = store.get_session(&modern).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Active);
    assert_eq!(s.ended_at, None);
    assert_eq!(s.end_reason, None);
    assert_eq!(s.command_count, 1);
}
