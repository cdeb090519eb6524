//! The change feed (`Store::feed`) and the session record's `last_command`.

use session_buddy_store::{FeedPage, FeedQuery};

use super::*;

fn after(position: i64, limit: usize) -> FeedQuery {
    FeedQuery {
        after: position,
        limit,
        ..FeedQuery::default()
    }
}

fn ids(page: &FeedPage) -> Vec<String> {
    page.events
        .iter()
        .map(|e| e.event.event_id.clone())
        .collect()
}

fn named(mut command: Value, name: &str) -> Value {
    command["command"] = json!(name);
    command
}

pub async fn feed_returns_the_events_after_a_position_in_order(store: &dyn Store) {
    let empty = store.feed(after(0, 10)).await.unwrap();
    assert_eq!(empty, FeedPage::default());

    let alpha = start_1_1("alpha", &uuid(1), "2026-03-01T10:00:00Z");
    let a = event(&alpha).session_id();
    let beta = start_1_1("beta", &uuid(2), "2026-03-01T10:00:01Z");
    let ghost = "ghost-20260301-100000-abcdef";
    let values = vec![
        alpha,
        command(&uuid(3), &a, "2026-03-01T10:00:02Z", 1, true),
        beta,
        command(&uuid(4), ghost, "2026-03-01T10:00:03Z", 1, false),
        end_1_1(&uuid(5), &a, "2026-03-01T10:00:04Z"),
    ];
    accept_all(store, &values, 1).await;
    let expected: Vec<String> = values.iter().map(stored_id).collect();

    let page = store.feed(after(0, 100)).await.unwrap();
    assert_eq!(ids(&page), expected);
    let positions: Vec<i64> = page.events.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(page.position, *positions.last().unwrap());
    assert_eq!(page.events[1].event, stored(&values[1], 1));

    // Bounded, and resumable from any position.
    let first = store.feed(after(0, 2)).await.unwrap();
    assert_eq!(ids(&first), expected[..2]);
    assert_eq!(first.position, page.position);
    let rest = store.feed(after(positions[1], 100)).await.unwrap();
    assert_eq!(ids(&rest), expected[2..]);
    let none = store.feed(after(page.position, 100)).await.unwrap();
    assert!(none.events.is_empty());
    assert_eq!(none.position, page.position);

    // Positions already passed can be read again (the holes a reader saw).
    let again = store
        .feed(FeedQuery {
            after: page.position,
            recheck: vec![(positions[1], positions[2])],
            limit: 100,
            components: None,
        })
        .await
        .unwrap();
    assert_eq!(ids(&again), expected[1..3]);

    // Only some components: the pending command (no start stored) belongs to none.
    let only = |list: &[&str]| FeedQuery {
        after: 0,
        recheck: Vec::new(),
        limit: 100,
        components: Some(list.iter().map(|s| s.to_string()).collect()),
    };
    let beta_only = store.feed(only(&["beta"])).await.unwrap();
    assert_eq!(ids(&beta_only), vec![expected[2].clone()]);
    assert_eq!(beta_only.position, page.position);
    let alpha_only = store.feed(only(&["alpha", "nobody"])).await.unwrap();
    assert_eq!(
        ids(&alpha_only),
        vec![
            expected[0].clone(),
            expected[1].clone(),
            expected[4].clone()
        ]
    );
    assert!(store.feed(only(&[])).await.unwrap().events.is_empty());
}

pub async fn last_command_is_the_latest_command_stored(store: &dyn Store) {
    let start = start_1_1("alpha", &uuid(1), "2026-03-01T10:00:00Z");
    let id = event(&start).session_id();
    let s = id.as_str();
    // A command that arrives before its start is merged with it.
    accept_all(
        store,
        &[named(
            command(&uuid(2), s, "2026-03-01T10:00:01Z", 1, true),
            "deploy",
        )],
        1,
    )
    .await;
    accept_all(store, &[start], 2).await;
    assert_eq!(
        session(store, s).await.last_command.as_deref(),
        Some("deploy")
    );
    // Several commands of a session in one batch: the last one stays, each one counts.
    let batch: Vec<Event> = [
        named(
            command(&uuid(6), s, "2026-03-01T10:00:02Z", 2, true),
            "build",
        ),
        named(
            command(&uuid(3), s, "2026-03-01T10:00:02Z", 3, false),
            "migrate",
        ),
        heartbeat(&uuid(4), s, "2026-03-01T10:00:03Z"),
    ]
    .iter()
    .map(event)
    .collect();
    let outcomes = store.ingest(batch, received(3)).await.unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| o.status == EventOutcome::Accepted && o.session_known),
        "{outcomes:?}"
    );
    let record = session(store, s).await;
    assert_eq!(record.last_command.as_deref(), Some("migrate"));
    assert_eq!((record.command_count, record.error_count), (3, 1));
    assert_eq!(record.last_seen_at, at("2026-03-01T10:00:03Z"));
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["last_command"], json!("migrate"));
    let fresh = start_1_1("alpha", &uuid(5), "2026-03-01T11:00:00Z");
    accept_all(store, std::slice::from_ref(&fresh), 4).await;
    let other = event(&fresh).session_id();
    assert_eq!(session(store, &other).await.last_command, None);
    assert_eq!(
        serde_json::to_value(session(store, &other).await).unwrap()["last_command"],
        Value::Null
    );
}
