//! Re-applying the redaction rules to stored events, and what depends on stored content.

use serde_json::json;
use session_buddy_events::{Event, EventOutcome, EventType, redact_args};
use session_buddy_store::{EventFilter, Redaction, Store};

use super::*;

const SESSION: &str = "alpha-20260301-100000-000001";
/// As typed; older rules let the URL password through.
const TYPED: &str = "fetch http://bob:hunter2@example.com/x --password s3cret";
const REDACTED_NOW: &str = "fetch http://bob:[REDACTED]@example.com/x --password [REDACTED]";
/// An error older rules stored as it came, and as it is stored now.
const ERROR_STORED_BY_OLDER_RULES: &str = "cannot reach http://bob:hunter2@example.com";
const ERROR_REDACTED_NOW: &str = "cannot reach http://bob:[REDACTED]@example.com";
/// What older rules stored for [`TYPED`].
const STORED_BY_OLDER_RULES: &str = "fetch http://bob:hunter2@example.com/x --password [REDACTED]";

fn command_with_args(n: u64, args: &str) -> Value {
    let mut c = command(
        &uuid(n),
        SESSION,
        &format!("2026-03-01T10:0{n}:00Z"),
        n,
        true,
    );
    c["args"] = json!(args);
    c
}

/// The event as a server with older rules validated it: `args` exactly `stored_args`.
fn as_stored_by_older_rules(value: &Value, stored_args: &str) -> Event {
    let Event::Command(mut c) = event(value) else {
        panic!("not a command: {value}")
    };
    c.args = Some(stored_args.to_string());
    Event::Command(c)
}

async fn args_of(store: &dyn Store, n: u64) -> Option<String> {
    field_of(store, n, "args").await
}

async fn error_of(store: &dyn Store, n: u64) -> Option<String> {
    field_of(store, n, "error").await
}

async fn field_of(store: &dyn Store, n: u64, field: &str) -> Option<String> {
    let events = store
        .list_events(EventFilter {
            session_id: Some(SESSION.to_string()),
            event_type: Some(EventType::Command),
            limit: 100,
            components: None,
        })
        .await
        .unwrap();
    let e = events
        .iter()
        .find(|e| e.event_id == uuid(n))
        .unwrap_or_else(|| panic!("command {n} is not stored"));
    e.payload[field].as_str().map(str::to_string)
}

async fn store_as_older_rules_did(store: &dyn Store) {
    accept_all(
        store,
        &[start("alpha", &uuid(1), "2026-03-01T10:00:00Z")],
        0,
    )
    .await;
    let events = vec![
        as_stored_by_older_rules(&command_with_args(2, TYPED), STORED_BY_OLDER_RULES),
        event(&command_with_args(3, "status --verbose")),
        // A failed command whose error quoted a URL with its password, stored as it came.
        {
            let Event::Command(mut c) = event(&command(
                &uuid(4),
                SESSION,
                "2026-03-01T10:04:00Z",
                4,
                false,
            )) else {
                panic!("not a command")
            };
            c.error = Some(ERROR_STORED_BY_OLDER_RULES.to_string());
            Event::Command(c)
        },
        // Pending: its session never started.
        as_stored_by_older_rules(
            &{
                let mut c = command(
                    &uuid(5),
                    "ghost-20260301-100000-000005",
                    "2026-03-01T10:05:00Z",
                    1,
                    true,
                );
                c["args"] = json!("x");
                c
            },
            "-H 'Cookie: id=42'",
        ),
    ];
    let outcomes = store.ingest(events, received(1)).await.unwrap();
    assert!(
        outcomes.iter().all(|o| o.status == EventOutcome::Accepted),
        "{outcomes:?}"
    );
}

pub async fn redact_stored_rewrites_what_older_rules_let_through(store: &dyn Store) {
    store_as_older_rules_did(store).await;
    let before = session(store, SESSION).await;

    // A dry run counts and changes nothing.
    let dry = store.redact_stored(false).await.unwrap();
    assert_eq!(
        dry,
        Redaction {
            examined: 4,
            changed: 3,
            applied: false
        }
    );
    assert_eq!(
        args_of(store, 2).await.as_deref(),
        Some(STORED_BY_OLDER_RULES)
    );

    let applied = store.redact_stored(true).await.unwrap();
    assert_eq!(
        applied,
        Redaction {
            examined: 4,
            changed: 3,
            applied: true
        }
    );
    assert_eq!(args_of(store, 2).await.as_deref(), Some(REDACTED_NOW));
    assert_eq!(redact_args(TYPED), REDACTED_NOW);
    assert_eq!(args_of(store, 3).await.as_deref(), Some("status --verbose"));
    assert_eq!(args_of(store, 4).await, None);
    assert_eq!(
        error_of(store, 4).await.as_deref(),
        Some(ERROR_REDACTED_NOW)
    );
    let pending = store
        .list_events(EventFilter {
            session_id: Some("ghost-20260301-100000-000005".into()),
            event_type: None,
            limit: 10,
            components: None,
        })
        .await
        .unwrap();
    assert_eq!(pending[0].payload["args"], "-H 'Cookie: [REDACTED]'");
    // Everything else about the event and its session is as it was.
    assert_eq!(session(store, SESSION).await, before);
    let timeline = store.session_events(SESSION).await.unwrap();
    assert_eq!(timeline.len(), 4);
    assert_eq!(timeline[1].payload["command"], "status");
    assert_eq!(timeline[1].seq, Some(2));

    // Nothing left to change.
    let again = store.redact_stored(true).await.unwrap();
    assert_eq!((again.examined, again.changed), (4, 0));
}

pub async fn a_resent_original_stays_a_duplicate_across_redaction(store: &dyn Store) {
    store_as_older_rules_did(store).await;
    resend_original(store, "before redact --apply").await;
    store.redact_stored(true).await.unwrap();
    resend_original(store, "after redact --apply").await;
    assert_eq!(session(store, SESSION).await.command_count, 3);
}

async fn resend_original(store: &dyn Store, label: &str) {
    let original = command_with_args(2, TYPED);
    // The original as typed (redacted by the current rules on the way in), and the event as
    // the older rules had it (a client buffer filled before the change).
    let resent = vec![
        event(&original),
        as_stored_by_older_rules(&original, STORED_BY_OLDER_RULES),
    ];
    for out in store.ingest(resent, received(5)).await.unwrap() {
        assert_eq!(out.status, EventOutcome::Duplicate, "{label}: {out:?}");
    }
    // The same id with other content is still a conflict.
    let mut other = original.clone();
    other["args"] = json!("fetch http://bob:hunter2@example.com/y --password s3cret");
    assert_rejected_event_id(&ingest_one(store, &other, 6).await, SESSION);
    let mut other = original;
    other["success"] = json!(false);
    assert_rejected_event_id(&ingest_one(store, &other, 6).await, SESSION);
    // The failed command's error as it came: a duplicate too, redacted or not.
    let mut failed = command(&uuid(4), SESSION, "2026-03-01T10:04:00Z", 4, false);
    failed["error"] = json!(ERROR_STORED_BY_OLDER_RULES);
    let out = ingest_one(store, &failed, 7).await;
    assert_eq!(out.status, EventOutcome::Duplicate, "{label}: {out:?}");
}

pub async fn list_events_without_a_session_follow_event_time_not_arrival(store: &dyn Store) {
    let a = "alpha-20260301-100000-000001";
    // Arrival order differs from time order (a buffered event delivered late), and two
    // events share a timestamp.
    let deliveries = [
        start("alpha", &uuid(1), "2026-03-01T10:00:00Z"),
        command(&uuid(2), a, "2026-03-01T10:05:00Z", 2, true),
        command(&uuid(3), a, "2026-03-01T10:01:00Z", 1, true),
        heartbeat(&uuid(4), a, "2026-03-01T10:05:00Z"),
        heartbeat(&uuid(5), a, "2026-03-01T10:03:00Z"),
    ];
    for (n, v) in deliveries.iter().enumerate() {
        accept_all(store, std::slice::from_ref(v), n as i64).await;
    }
    let latest = |event_type: Option<EventType>, limit: usize| EventFilter {
        session_id: None,
        event_type,
        limit,
        components: None,
    };
    let got = store.list_events(latest(None, 100)).await.unwrap();
    // Newest time first; of the two at 10:05, the later arrival first.
    assert_eq!(
        event_ids(&got),
        [4, 2, 5, 3, 1].map(uuid).to_vec(),
        "{got:?}"
    );
    let got = store.list_events(latest(None, 2)).await.unwrap();
    assert_eq!(event_ids(&got), [4, 2].map(uuid).to_vec());
    let got = store
        .list_events(latest(Some(EventType::Command), 100))
        .await
        .unwrap();
    assert_eq!(event_ids(&got), [2, 3].map(uuid).to_vec());
    // A session's timeline: oldest time first, ties by arrival.
    let got = store
        .list_events(EventFilter {
            session_id: Some(a.to_string()),
            event_type: None,
            limit: 100,
            components: None,
        })
        .await
        .unwrap();
    assert_eq!(event_ids(&got), [1, 3, 5, 2, 4].map(uuid).to_vec());
}
