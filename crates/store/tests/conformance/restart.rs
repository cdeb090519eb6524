//! Restart safety: what was acknowledged before a restart is all there after it, including
//! pending events and what deduplication needs.

use session_buddy_events::SessionStatus;
use session_buddy_store::{ComponentQuality, StoreHealth};

use super::*;

/// What the store answered before the restart.
pub struct BeforeRestart {
    sessions: Vec<Session>,
    timelines: Vec<Vec<StoredEvent>>,
    events: Vec<StoredEvent>,
    active: BTreeMap<String, u64>,
    quality: BTreeMap<String, ComponentQuality>,
    health: StoreHealth,
    alpha: String,
}

pub async fn before_restart(store: &dyn Store) -> BeforeRestart {
    // Ended, active with commands and a heartbeat, and an end whose start has not arrived.
    accept_all(store, &[mahavishnu_start(), mahavishnu_end()], 1).await;
    let alpha = accept_all(
        store,
        &[start_1_1("alpha", &uuid(1), "2026-03-01T10:00:00Z")],
        2,
    )
    .await
    .remove(0)
    .session_id;
    let more = [
        command(&uuid(2), &alpha, "2026-03-01T10:00:10Z", 1, true),
        command(&uuid(3), &alpha, "2026-03-01T10:00:20Z", 2, false),
        heartbeat(&uuid(4), &alpha, "2026-03-01T10:00:30Z"),
    ];
    ingest(store, &more, 3).await;
    accept_all(store, &[oneiric_end()], 4).await;

    let sessions = store.list_sessions(all()).await.unwrap().sessions;
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[1].duration_seconds, Some(302.876545));
    assert_eq!((sessions[0].command_count, sessions[0].error_count), (2, 1));
    let mut timelines = Vec::new();
    for id in [MAHAVISHNU, alpha.as_str(), ONEIRIC] {
        timelines.push(store.session_events(id).await.unwrap());
    }
    assert_eq!(
        timelines.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 4, 1]
    );
    BeforeRestart {
        sessions,
        timelines,
        events: store.list_events(all_events()).await.unwrap(),
        active: active(store).await,
        quality: quality(store).await,
        health: store.health().await.unwrap(),
        alpha,
    }
}

/// The quality inputs of everything stored.
async fn quality(store: &dyn Store) -> BTreeMap<String, ComponentQuality> {
    let (since, until) = (at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"));
    session_buddy_store::quality_by_component(store, since, until, None)
        .await
        .unwrap()
}

pub async fn after_restart(store: &dyn Store, before: BeforeRestart) {
    let alpha = before.alpha.as_str();
    assert_eq!(
        store.list_sessions(all()).await.unwrap().sessions,
        before.sessions
    );
    for (id, timeline) in [MAHAVISHNU, alpha, ONEIRIC].iter().zip(&before.timelines) {
        assert_eq!(&store.session_events(id).await.unwrap(), timeline, "{id}");
    }
    assert_eq!(
        store.list_events(all_events()).await.unwrap(),
        before.events
    );
    assert_eq!(active(store).await, before.active);
    assert_eq!(active(store).await, counts(&[("alpha", 1)]));
    assert_eq!(quality(store).await, before.quality);
    let health = store.health().await.unwrap();
    assert_eq!(health.schema_version, before.health.schema_version);
    assert!(health.reachable);

    // Deduplication still knows every event.
    let again = [
        mahavishnu_start(),
        mahavishnu_end(),
        command(&uuid(2), alpha, "2026-03-01T10:00:10Z", 1, true),
        oneiric_end(),
    ];
    let outs = ingest(store, &again, 5).await;
    assert_eq!(outs[0], duplicate(MAHAVISHNU, Some("mahavishnu")));
    assert_eq!(outs[1], duplicate(MAHAVISHNU, Some("mahavishnu")));
    assert_eq!(outs[2], duplicate(alpha, Some("alpha")));
    assert_eq!(outs[3], duplicate(ONEIRIC, None));

    // The pending end is merged when its start arrives after the restart.
    let out = ingest_one(store, &oneiric_start(), 6).await;
    assert_eq!(
        out,
        accepted(
            ONEIRIC,
            Some("oneiric"),
            vec![
                started("oneiric", "OneiricShell"),
                ended("oneiric", EndOutcome::Success, 300.0)
            ]
        )
    );
    let s = session(store, ONEIRIC).await;
    assert_eq!(
        (s.status, s.end_reason.as_deref()),
        (SessionStatus::Ended, Some("user_exit"))
    );

    // The active session goes on counting.
    accept_all(
        store,
        &[command(&uuid(5), alpha, "2026-03-01T10:00:40Z", 3, true)],
        7,
    )
    .await;
    let s = session(store, alpha).await;
    assert_eq!((s.command_count, s.error_count), (3, 1));
    assert_eq!(s.last_seen_at, at("2026-03-01T10:00:40Z"));
}
