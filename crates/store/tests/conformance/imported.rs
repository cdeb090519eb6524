//! Imported history (`Origin::Import`): judged by its events' own times, so an old session
//! that never ended is abandoned at its last event at once; live sessions stay judged by the
//! server's receive time, whatever their clocks say.

use session_buddy_events::{EventOutcome, SessionStatus};
use session_buddy_store::{EndOutcome, Origin, SessionEffect, Store};

use super::*;

/// An import received at `received(n)`, with the reaper's cutoffs of a 10-minute TTL and a
/// 24-hour legacy TTL at that moment.
async fn import(store: &dyn Store, values: &[Value], n: i64) -> Vec<IngestOutcome> {
    let events = values.iter().map(event).collect::<Vec<_>>();
    let origin = Origin::Import {
        active_cutoff: received(n - 600),
        legacy_cutoff: received(n - 86_400),
    };
    let outcomes = store
        .ingest_from(events, received(n), origin)
        .await
        .unwrap();
    assert_eq!(outcomes.len(), values.len(), "one outcome per event");
    outcomes
}

fn abandoned(component: &str, duration_seconds: f64) -> SessionEffect {
    SessionEffect::Abandoned {
        component: component.to_string(),
        duration_seconds,
    }
}

pub async fn an_old_imported_session_without_an_end_is_abandoned_at_its_last_event(
    store: &dyn Store,
) {
    // A year before the import: a 1.1 session (heartbeats announced) with a command an hour
    // in, and a 1.0 session (legacy TTL) with nothing after its start.
    let modern = start_1_1("crackerjack", &uuid(1), "2025-06-01T00:00:00Z");
    let modern_id = event(&modern).session_id();
    let cmd = command(&uuid(2), &modern_id, "2025-06-01T01:00:00Z", 1, true);
    let legacy = start("oneiric", &uuid(3), "2025-06-01T00:00:00Z");
    let legacy_id = event(&legacy).session_id();
    let outcomes = import(store, &[modern, cmd, legacy], 0).await;
    assert!(outcomes.iter().all(|o| o.status == EventOutcome::Accepted));
    assert_eq!(
        outcomes[0].effects,
        vec![started("crackerjack", "RustShell")]
    );
    assert_eq!(outcomes[1].effects, vec![abandoned("crackerjack", 3600.0)]);
    assert_eq!(
        outcomes[2].effects,
        vec![started("oneiric", "TestShell"), abandoned("oneiric", 0.0)]
    );
    let s = session(store, &modern_id).await;
    assert_eq!(s.status, SessionStatus::Abandoned);
    assert_eq!(s.end_reason.as_deref(), Some("heartbeat_timeout"));
    assert_eq!(s.ended_at, Some(at("2025-06-01T01:00:00Z")));
    assert_eq!(s.duration_seconds, Some(3600.0));
    assert_eq!(s.command_count, 1);
    let l = session(store, &legacy_id).await;
    assert_eq!(l.status, SessionStatus::Abandoned);
    assert_eq!(l.ended_at, Some(at("2025-06-01T00:00:00Z")));
    assert_eq!(l.duration_seconds, Some(0.0));
    assert!(active(store).await.is_empty(), "nothing imported is active");
    // The reaper has nothing left to do with them.
    assert!(
        store
            .reap(received(0), received(0))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_recent_imported_session_is_reaped_by_its_event_time(store: &dyn Store) {
    // Last event 60 s before the import: within the TTL, so it stays active for now.
    let recent = start_1_1("akosha", &uuid(1), "2026-05-31T23:59:00Z");
    let id = event(&recent).session_id();
    let outcomes = import(store, &[recent], 0).await;
    assert_eq!(outcomes[0].effects, vec![started("akosha", "RustShell")]);
    assert_eq!(session(store, &id).await.status, SessionStatus::Active);
    assert_eq!(active(store).await, counts(&[("akosha", 1)]));
    // A cutoff after its last event but before its receipt: the reaper goes by event time
    // for imported sessions.
    let reaped = store.reap(received(-30), received(-30)).await.unwrap();
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!(reaped[0].session_id, id);
    assert_eq!(reaped[0].duration_seconds, 0.0);
    assert_eq!(
        session(store, &id).await.ended_at,
        Some(at("2026-05-31T23:59:00Z"))
    );
}

pub async fn a_live_session_with_a_skewed_clock_is_judged_by_receipt(store: &dyn Store) {
    // The client's clock is a year behind; the server receives its events now.
    let skewed = start_1_1("mahavishnu", &uuid(1), "2025-06-01T00:00:00Z");
    let id = event(&skewed).session_id();
    ingest(store, &[skewed], 0).await;
    ingest(
        store,
        &[heartbeat(&uuid(2), &id, "2025-06-01T00:05:00Z")],
        300,
    )
    .await;
    // Cutoffs a year after its timestamps but before its last receipt: not silent.
    assert!(
        store
            .reap(received(200), received(200))
            .await
            .unwrap()
            .is_empty()
    );
    let s = session(store, &id).await;
    assert_eq!(s.status, SessionStatus::Active);
    assert_eq!(s.last_seen_at, at("2025-06-01T00:05:00Z"));
    assert_eq!(active(store).await, counts(&[("mahavishnu", 1)]));
    // Silent since its last receipt: reaped, at its last event.
    let reaped = store.reap(received(301), received(301)).await.unwrap();
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!(reaped[0].duration_seconds, 300.0);
}

pub async fn imported_history_over_several_batches_is_abandoned_once(store: &dyn Store) {
    let s = start_1_1("fastblocks", &uuid(1), "2025-06-01T00:00:00Z");
    let id = event(&s).session_id();
    let first = [s, command(&uuid(2), &id, "2025-06-01T00:10:00Z", 1, true)];
    let outcomes = import(store, &first, 0).await;
    assert_eq!(outcomes[1].effects, vec![abandoned("fastblocks", 600.0)]);
    // The next batch of the same import: older than the TTL, it neither revives the session
    // nor abandons it again; its end moves to the new last event.
    let outcomes = import(
        store,
        &[command(&uuid(3), &id, "2025-06-01T00:20:00Z", 2, false)],
        1,
    )
    .await;
    assert_eq!(outcomes[0].status, EventOutcome::Accepted);
    assert!(outcomes[0].effects.is_empty(), "{outcomes:?}");
    let got = session(store, &id).await;
    assert_eq!(got.status, SessionStatus::Abandoned);
    assert_eq!(got.ended_at, Some(at("2025-06-01T00:20:00Z")));
    assert_eq!(got.duration_seconds, Some(1200.0));
    assert_eq!((got.command_count, got.error_count), (2, 1));
    // Importing the same file again changes nothing.
    let again = import(store, &first, 2).await;
    assert!(
        again
            .iter()
            .all(|o| o.status == EventOutcome::Duplicate && o.effects.is_empty()),
        "{again:?}"
    );
    assert!(active(store).await.is_empty());
    // Its real end, imported later, wins.
    let mut end = end_1_1(&uuid(4), &id, "2025-06-01T00:30:00Z");
    end["exit_code"] = json!(0);
    let outcomes = import(store, &[end], 3).await;
    assert_eq!(
        outcomes[0].effects,
        vec![SessionEffect::Ended {
            component: "fastblocks".into(),
            outcome: EndOutcome::Error,
            duration_seconds: 1800.0,
            was_abandoned: true,
        }]
    );
    let got = session(store, &id).await;
    assert_eq!(got.status, SessionStatus::Ended);
    assert_eq!(got.duration_seconds, Some(1800.0));
}

pub async fn an_imported_session_with_recent_events_comes_back(store: &dyn Store) {
    let s = start_1_1("oneiric", &uuid(1), "2026-05-31T20:00:00Z");
    let id = event(&s).session_id();
    let outcomes = import(store, &[s], 0).await;
    assert_eq!(
        outcomes[0].effects,
        vec![started("oneiric", "RustShell"), abandoned("oneiric", 0.0)]
    );
    // A later batch of the import holds a heartbeat within the TTL: the session was alive.
    let outcomes = import(
        store,
        &[heartbeat(&uuid(2), &id, "2026-05-31T23:58:00Z")],
        1,
    )
    .await;
    assert_eq!(
        outcomes[0].effects,
        vec![SessionEffect::Revived {
            component: "oneiric".into()
        }]
    );
    let got = session(store, &id).await;
    assert_eq!(got.status, SessionStatus::Active);
    assert_eq!(got.ended_at, None);
    assert_eq!(active(store).await, counts(&[("oneiric", 1)]));
}
