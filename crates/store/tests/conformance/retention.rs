//! Retention and export: `prune` deletes old sessions that are over with their events, in
//! bounded batches; `events_in_time_order` pages through every event once, oldest first, and
//! `export` writes them (or the sessions) out the same way on every backend.

use session_buddy_store::{Pruned, Store};

use super::*;

pub async fn prune_deletes_old_finished_sessions_in_batches(store: &dyn Store) {
    // Two old ended sessions (one with a command), one old active, one recent ended, and an old
    // pending command whose start never came.
    let old_a = start("alpha", &uuid(1), "2026-01-01T00:00:00Z");
    let old_b = start("alpha", &uuid(2), "2026-01-02T00:00:00Z");
    let old_active = start("beta", &uuid(3), "2026-01-03T00:00:00Z");
    let recent = start("gamma", &uuid(4), "2026-06-01T00:00:00Z");
    let ids: Vec<String> = accept_all(store, &[old_a, old_b, old_active, recent], 1)
        .await
        .into_iter()
        .map(|o| o.session_id)
        .collect();
    accept_all(
        store,
        &[
            command(&uuid(5), &ids[0], "2026-01-01T00:00:01Z", 1, true),
            end_1_0(&ids[0], "2026-01-01T00:01:00Z"),
            end_1_0(&ids[1], "2026-01-02T00:01:00Z"),
            end_1_0(&ids[3], "2026-06-01T00:01:00Z"),
            command(
                &uuid(6),
                "delta-20260101-000000-000006",
                "2026-01-01T00:00:00Z",
                1,
                true,
            ),
        ],
        2,
    )
    .await;
    let cutoff = at("2026-03-01T00:00:00Z");
    let first = store.prune(cutoff, 1).await.unwrap();
    assert_eq!(first.sessions, 1, "{first:?}");
    let mut total = first;
    loop {
        let p = store.prune(cutoff, 1).await.unwrap();
        if p == Pruned::default() {
            break;
        }
        total.sessions += p.sessions;
        total.events += p.events;
    }
    // Sessions: the two old ended. Events: start + command + end, start + end, the pending one.
    assert_eq!(
        total,
        Pruned {
            sessions: 2,
            events: 6
        }
    );
    let left = listed(store, all()).await;
    assert_eq!(left, [ids[3].clone(), ids[2].clone()]);
    assert!(store.session_events(&ids[0]).await.unwrap().is_empty());
    assert_eq!(store.session_events(&ids[3]).await.unwrap().len(), 2);
}

pub async fn events_in_time_order_pages_through_everything_once(store: &dyn Store) {
    let s = accept_all(
        store,
        &[start_1_1("alpha", &uuid(1), "2026-03-01T10:00:00Z")],
        1,
    )
    .await
    .remove(0)
    .session_id;
    let mut values = Vec::new();
    for i in 0..7u64 {
        // Two events share each second: ties are ordered by event id.
        values.push(command(
            &uuid(100 + i),
            &s,
            &format!("2026-03-01T10:00:{:02}Z", 10 + i / 2),
            i + 1,
            true,
        ));
    }
    ingest(store, &values, 2).await;
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .events_in_time_order(None, after.clone(), 3)
            .await
            .unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|e| (e.timestamp, e.event_id.clone())));
        match page.last() {
            Some(last) if page.len() == 3 => after = Some((last.timestamp, last.event_id.clone())),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 8);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "oldest first, ties by event id");
    let since = store
        .events_in_time_order(Some(at("2026-03-01T10:00:12Z")), None, 100)
        .await
        .unwrap();
    assert_eq!(since.len(), 3);
}

pub async fn export_events_writes_every_event_once_in_time_order(store: &dyn Store) {
    // More than one page (MAX_PAGE) of events, written in reverse time order.
    let session_id = accept_all(
        store,
        &[start("alpha", &uuid(1), "2026-01-01T00:00:00Z")],
        1,
    )
    .await[0]
        .session_id
        .clone();
    let n = MAX_PAGE as u64 + 1;
    let commands: Vec<Value> = (1..=n)
        .rev()
        .map(|i| {
            let ts = format!(
                "2026-01-01T{:02}:{:02}:{:02}Z",
                i / 3600,
                i / 60 % 60,
                i % 60
            );
            command(&uuid(100 + i), &session_id, &ts, i, true)
        })
        .collect();
    accept_all(store, &commands, 2).await;
    let mut out = Vec::new();
    let written = session_buddy_store::export::export_events(store, None, &mut out)
        .await
        .unwrap();
    assert_eq!(written, n + 1);
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, n + 1);
    let mut expected = vec![uuid(1)];
    expected.extend((1..=n).map(|i| uuid(100 + i)));
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, expected);
    // `since` leaves the older ones out.
    let mut out = Vec::new();
    let since = at("2026-01-01T00:16:00Z");
    let written = session_buddy_store::export::export_events(store, Some(since), &mut out)
        .await
        .unwrap();
    assert_eq!(written, n - 959);
}

pub async fn export_sessions_renders_each_page_and_counts_them(store: &dyn Store) {
    accept_all(
        store,
        &[
            start("alpha", &uuid(1), "2026-01-01T00:00:00Z"),
            start("beta", &uuid(2), "2026-01-02T00:00:00Z"),
            start("gamma", &uuid(3), "2026-01-03T00:00:00Z"),
        ],
        1,
    )
    .await;
    let mut out = Vec::new();
    let since = Some(at("2026-01-02T00:00:00Z"));
    let written =
        session_buddy_store::export::export_sessions(store, since, &mut out, |page, first| {
            let mut text = if first {
                "component\n".to_string()
            } else {
                String::new()
            };
            for s in page {
                text.push_str(&s.component);
                text.push('\n');
            }
            text
        })
        .await
        .unwrap();
    assert_eq!(written, 2);
    assert_eq!(String::from_utf8(out).unwrap(), "component\ngamma\nbeta\n");
}
