//! Queries: session listing (filters, pagination), timelines, events, gauges and health.

use std::collections::BTreeSet;

use session_buddy_events::{EventType, SessionStatus};
use session_buddy_store::{ComponentQuality, StoreError};

use super::*;

/// Five sessions (oldest first): alpha/ann/h1 ended after 60.5 s; beta/bob/h2 `ops_shell`
/// active; alpha/bob/h1 ended after 3600 s; gamma/ann/h2 active; alpha/ann/h2 ended after 10 s.
async fn five_sessions(store: &dyn Store) -> [String; 5] {
    let specs = [
        (
            "alpha",
            "ann",
            "h1",
            "2026-03-01T10:00:00Z",
            Some("2026-03-01T10:01:00.5Z"),
            None,
        ),
        (
            "beta",
            "bob",
            "h2",
            "2026-03-01T11:00:00Z",
            None,
            Some("ops_shell"),
        ),
        (
            "alpha",
            "bob",
            "h1",
            "2026-03-01T12:00:00Z",
            Some("2026-03-01T13:00:00Z"),
            None,
        ),
        ("gamma", "ann", "h2", "2026-03-01T13:00:00Z", None, None),
        (
            "alpha",
            "ann",
            "h2",
            "2026-03-01T14:00:00Z",
            Some("2026-03-01T14:00:10Z"),
            None,
        ),
    ];
    let mut ids = Vec::new();
    for (i, (component, user, host, started_at, ended_at, session_type)) in
        specs.into_iter().enumerate()
    {
        let mut v = start(component, &uuid(i as u64 + 1), started_at);
        v["user"]["username"] = json!(user);
        v["hostname"] = json!(host);
        if let Some(t) = session_type {
            v["event_version"] = json!("1.1");
            v["session_type"] = json!(t);
        }
        let id = accept_all(store, &[v], i as i64).await.remove(0).session_id;
        if let Some(t) = ended_at {
            accept_all(store, &[end_1_0(&id, t)], i as i64).await;
        }
        ids.push(id);
    }
    ids.try_into().unwrap()
}

pub async fn list_sessions_newest_first_with_every_filter(store: &dyn Store) {
    let ids = five_sessions(store).await;
    let [s1, s2, s3, s4, s5] = [0, 1, 2, 3, 4].map(|i| ids[i].as_str());
    let f = all;
    let cases: Vec<(SessionFilter, Vec<&str>)> = vec![
        (f(), vec![s5, s4, s3, s2, s1]),
        (
            SessionFilter {
                session_type: Some("ops_shell".into()),
                ..f()
            },
            vec![s2],
        ),
        (
            SessionFilter {
                session_type: Some("admin_shell".into()),
                ..f()
            },
            vec![s5, s4, s3, s1],
        ),
        (
            SessionFilter {
                component: Some("alpha".into()),
                ..f()
            },
            vec![s5, s3, s1],
        ),
        (
            SessionFilter {
                user: Some("ann".into()),
                ..f()
            },
            vec![s5, s4, s1],
        ),
        (
            SessionFilter {
                host: Some("h1".into()),
                ..f()
            },
            vec![s3, s1],
        ),
        (
            SessionFilter {
                status: Some(SessionStatus::Active),
                ..f()
            },
            vec![s4, s2],
        ),
        (
            SessionFilter {
                status: Some(SessionStatus::Ended),
                ..f()
            },
            vec![s5, s3, s1],
        ),
        (
            SessionFilter {
                status: Some(SessionStatus::Abandoned),
                ..f()
            },
            vec![],
        ),
        (
            SessionFilter {
                after: Some(at("2026-03-01T12:00:00Z")),
                ..f()
            },
            vec![s5, s4, s3],
        ),
        (
            SessionFilter {
                before: Some(at("2026-03-01T12:00:00Z")),
                ..f()
            },
            vec![s2, s1],
        ),
        (
            SessionFilter {
                after: Some(at("2026-03-01T11:00:00Z")),
                before: Some(at("2026-03-01T13:00:00Z")),
                ..f()
            },
            vec![s3, s2],
        ),
        (
            SessionFilter {
                min_duration: Some(60.5),
                ..f()
            },
            vec![s3, s1],
        ),
        (
            SessionFilter {
                min_duration: Some(60.500001),
                ..f()
            },
            vec![s3],
        ),
        (
            SessionFilter {
                min_duration: Some(0.0),
                ..f()
            },
            vec![s5, s3, s1],
        ),
        (
            SessionFilter {
                component: Some("alpha".into()),
                user: Some("ann".into()),
                ..f()
            },
            vec![s5, s1],
        ),
        (
            SessionFilter {
                component: Some("alpha".into()),
                host: Some("h2".into()),
                status: Some(SessionStatus::Ended),
                ..f()
            },
            vec![s5],
        ),
        (
            SessionFilter {
                component: Some("nobody".into()),
                ..f()
            },
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(listed(store, filter.clone()).await, expected, "{filter:?}");
    }

    // The records listed are the stored ones.
    let page = store.list_sessions(all()).await.unwrap();
    assert_eq!(page.sessions[4], session(store, s1).await);
    assert_eq!(page.sessions[4].duration_seconds, Some(60.5));
    assert_eq!(page.sessions[3].session_type, "ops_shell");

    // A limit cuts the page and says there is more.
    let page = store
        .list_sessions(SessionFilter { limit: 2, ..all() })
        .await
        .unwrap();
    let got: Vec<&str> = page
        .sessions
        .iter()
        .map(|s| s.session_id.as_str())
        .collect();
    assert_eq!(got, [s5, s4]);
    assert!(page.next_cursor.is_some());
    let page = store
        .list_sessions(SessionFilter { limit: 5, ..all() })
        .await
        .unwrap();
    assert_eq!(page.sessions.len(), 5);
    assert_eq!(page.next_cursor, None, "nothing after the last session");
}

/// Follows `next_cursor` to the end; one `Vec` of ids per page.
async fn paginate(store: &dyn Store, filter: SessionFilter) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut filter = filter;
    loop {
        assert!(out.len() < 100, "pagination does not end");
        let page = store.list_sessions(filter.clone()).await.unwrap();
        out.push(page.sessions.into_iter().map(|s| s.session_id).collect());
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => return out,
        }
    }
}

pub async fn cursor_pagination_visits_every_session_once(store: &dyn Store) {
    // Ties: four sessions start in the same microsecond, three in another.
    let times = [
        "2026-03-02T08:00:00Z",
        "2026-03-02T08:00:00Z",
        "2026-03-02T09:00:00.5Z",
        "2026-03-02T08:00:00Z",
        "2026-03-02T07:00:00Z",
        "2026-03-02T09:00:00.5Z",
        "2026-03-02T08:00:00Z",
        "2026-03-02T10:00:00Z",
        "2026-03-02T09:00:00.5Z",
        "2026-03-02T08:00:00.000001Z",
        "2026-03-02T07:59:59.999999Z",
    ];
    let components = ["a", "b", "c"];
    let mut ids = Vec::new();
    for (i, t) in times.iter().enumerate() {
        let v = start(components[i % 3], &uuid(100 + i as u64), t);
        ids.push(accept_all(store, &[v], i as i64).await.remove(0).session_id);
    }
    let full = store.list_sessions(all()).await.unwrap();
    assert_eq!(full.next_cursor, None);
    assert!(
        full.sessions
            .windows(2)
            .all(|w| w[0].started_at >= w[1].started_at),
        "newest start first"
    );
    let order: Vec<String> = full.sessions.iter().map(|s| s.session_id.clone()).collect();
    assert_eq!(order[0], ids[7]);
    assert_eq!(
        order[1..4].iter().collect::<BTreeSet<_>>(),
        [&ids[2], &ids[5], &ids[8]].into()
    );
    assert_eq!(order[4], ids[9]);
    assert_eq!(order[9], ids[10]);
    assert_eq!(order[10], ids[4]);
    let mut sorted = order.clone();
    sorted.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(sorted, expected, "every session once");

    for limit in [1, 2, 3, 4, 10, 11, 12] {
        let pages = paginate(store, SessionFilter { limit, ..all() }).await;
        assert_eq!(
            pages.len(),
            11_usize.div_ceil(limit),
            "limit {limit}: {pages:?}"
        );
        assert!(
            pages.iter().all(|p| !p.is_empty() && p.len() <= limit),
            "limit {limit}: {pages:?}"
        );
        assert_eq!(pages.concat(), order, "limit {limit}");
    }

    // With a filter: component a is sessions 0, 3, 6 and 9.
    let filter = SessionFilter {
        component: Some("a".into()),
        limit: 3,
        ..all()
    };
    let pages = paginate(store, filter).await;
    let expected: Vec<String> = order
        .iter()
        .filter(|id| [&ids[0], &ids[3], &ids[6], &ids[9]].contains(id))
        .cloned()
        .collect();
    assert_eq!(expected.len(), 4);
    assert_eq!(pages.len(), 2);
    assert_eq!(pages.concat(), expected);

    // A session starting after the first page was read does not shift the pages after it.
    let first = store
        .list_sessions(SessionFilter { limit: 4, ..all() })
        .await
        .unwrap();
    accept_all(store, &[start("d", &uuid(999), "2026-03-02T11:00:00Z")], 20).await;
    let rest = paginate(
        store,
        SessionFilter {
            limit: 4,
            cursor: first.next_cursor,
            ..all()
        },
    )
    .await;
    assert_eq!(rest.concat(), order[4..]);
}

pub async fn invalid_cursor_is_an_invalid_query(store: &dyn Store) {
    accept_all(store, &[oneiric_start()], 1).await;
    for cursor in [
        "garbage",
        "",
        "12:",
        ":abc",
        "x:oneiric-20260206-123456-440000",
        "1:bad id!",
    ] {
        let err = store
            .list_sessions(SessionFilter {
                cursor: Some(cursor.into()),
                ..all()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidQuery(_)),
            "cursor {cursor:?}: {err:?}"
        );
    }
}

pub async fn get_session_of_unknown_id_is_none(store: &dyn Store) {
    assert_eq!(store.get_session(ONEIRIC).await.unwrap(), None);
    accept_all(store, &[oneiric_start(), mahavishnu_end()], 1).await;
    assert_eq!(
        store
            .get_session("oneiric-20260206-123456-440001")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_session("nothing").await.unwrap(), None);
    assert_eq!(
        store.get_session(MAHAVISHNU).await.unwrap(),
        None,
        "only pending events"
    );
    assert_eq!(session(store, ONEIRIC).await.session_id, ONEIRIC);
}

pub async fn get_sessions_reads_the_stored_ones_at_once(store: &dyn Store) {
    assert!(store.get_sessions(&[]).await.unwrap().is_empty());
    // A stored session, one with only pending events, an unknown id, and the first twice.
    accept_all(store, &[oneiric_start(), mahavishnu_end()], 1).await;
    let other = start_1_1("alpha", &uuid(7), "2026-03-01T10:00:00Z");
    accept_all(store, &[other], 1).await;
    let alpha = "alpha-20260301-100000-000007";
    let asked: Vec<String> = [ONEIRIC, MAHAVISHNU, "nothing", alpha, ONEIRIC]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut got = store.get_sessions(&asked).await.unwrap();
    got.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    let ids: Vec<&str> = got.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids, [alpha, ONEIRIC]);
    // The same records as one at a time.
    for s in &got {
        assert_eq!(
            Some(s),
            store.get_session(&s.session_id).await.unwrap().as_ref()
        );
    }
}

pub async fn session_events_are_the_timeline_in_time_order(store: &dyn Store) {
    let id = "alpha-20260301-100000-000001";
    let first = start_1_1("alpha", &uuid(1), "2026-03-01T10:00:00Z");
    let mut c1 = command(&uuid(2), id, "2026-03-01T10:00:10Z", 1, true);
    c1["args"] = json!("--password hunter2 --user bob");
    let hb = heartbeat(&uuid(4), id, "2026-03-01T10:00:15Z");
    let c2 = command(&uuid(3), id, "2026-03-01T10:00:20Z", 2, false);
    let end = end_1_0(id, "2026-03-01T10:00:30Z");

    // Delivered out of order: the end and the second command first (pending), then the rest.
    accept_all(store, &[c2.clone(), end.clone()], 1).await;
    assert_eq!(
        store.session_events(id).await.unwrap(),
        vec![stored(&c2, 1), stored(&end, 1)]
    );
    accept_all(store, &[hb.clone(), first.clone(), c1.clone()], 2).await;
    // Another session's events are not part of it.
    let other = "beta-20260301-100005-000009";
    accept_all(
        store,
        &[
            start("beta", &uuid(9), "2026-03-01T10:00:05Z"),
            command(&uuid(10), other, "2026-03-01T10:00:12Z", 1, true),
        ],
        3,
    )
    .await;

    let timeline = store.session_events(id).await.unwrap();
    assert_eq!(
        timeline,
        vec![
            stored(&first, 2),
            stored(&c1, 2),
            stored(&hb, 2),
            stored(&c2, 1),
            stored(&end, 1)
        ]
    );
    assert_eq!(
        timeline[1].payload["args"],
        "--password [REDACTED] --user bob"
    );
    assert_eq!(timeline[1].seq, Some(1));
    assert_eq!(timeline[3].seq, Some(2));
    assert_eq!(
        timeline[4].event_id,
        session_buddy_events::end_event_id(id)
            .hyphenated()
            .to_string()
    );
    assert_eq!(
        event_ids(&store.session_events(other).await.unwrap()),
        [uuid(9), uuid(10)]
    );
    assert_eq!(
        store
            .session_events("nothing-20260301-100000-000000")
            .await
            .unwrap(),
        vec![]
    );
}

pub async fn list_events_filters_and_limits(store: &dyn Store) {
    let a = "alpha-20260301-100000-000001";
    let b = "beta-20260301-100100-000002";
    let ghost = "ghost-20260301-100600-000099";
    let mut end_a = end_1_1(&uuid(6), a, "2026-03-01T10:05:00Z");
    end_a["exit_code"] = json!(0);
    // One delivery each, in time order.
    let deliveries = [
        start("alpha", &uuid(1), "2026-03-01T10:00:00Z"),
        start("beta", &uuid(2), "2026-03-01T10:01:00Z"),
        command(&uuid(3), a, "2026-03-01T10:02:00Z", 1, true),
        command(&uuid(4), b, "2026-03-01T10:03:00Z", 1, false),
        heartbeat(&uuid(5), a, "2026-03-01T10:04:00Z"),
        end_a,
        command(&uuid(7), ghost, "2026-03-01T10:06:00Z", 1, true),
    ];
    for (n, v) in deliveries.iter().enumerate() {
        accept_all(store, std::slice::from_ref(v), n as i64).await;
    }
    let ids = |picks: &[u64]| picks.iter().map(|n| uuid(*n)).collect::<Vec<_>>();
    let list =
        |session_id: Option<&str>, event_type: Option<EventType>, limit: usize| EventFilter {
            session_id: session_id.map(str::to_string),
            event_type,
            limit,
            components: None,
        };

    // Newest first, everything as stored.
    let everything = store.list_events(list(None, None, 100)).await.unwrap();
    let expected: Vec<StoredEvent> = deliveries
        .iter()
        .enumerate()
        .rev()
        .map(|(n, v)| stored(v, n as i64))
        .collect();
    assert_eq!(everything, expected);

    let cases = [
        (list(None, None, 3), ids(&[7, 6, 5])),
        (list(None, Some(EventType::Command), 100), ids(&[7, 4, 3])),
        (list(None, Some(EventType::Command), 2), ids(&[7, 4])),
        (list(None, Some(EventType::SessionStart), 100), ids(&[2, 1])),
        (list(None, Some(EventType::SessionEnd), 100), ids(&[6])),
        (list(None, Some(EventType::Heartbeat), 100), ids(&[5])),
        // With a session: its timeline, in time order.
        (list(Some(a), None, 100), ids(&[1, 3, 5, 6])),
        (list(Some(a), None, 2), ids(&[1, 3])),
        (list(Some(a), Some(EventType::Command), 100), ids(&[3])),
        (list(Some(b), Some(EventType::Heartbeat), 100), ids(&[])),
        (list(Some(ghost), None, 100), ids(&[7])),
        (
            list(Some("nothing-20260301-100000-000000"), None, 100),
            ids(&[]),
        ),
    ];
    for (filter, expected) in cases {
        let got = store.list_events(filter.clone()).await.unwrap();
        assert_eq!(event_ids(&got), expected, "{filter:?}");
    }
}

pub async fn active_by_component_counts_active_sessions(store: &dyn Store) {
    assert_eq!(active(store).await, counts(&[]));
    let specs = [
        ("alpha", 1),
        ("alpha", 2),
        ("alpha", 3),
        ("beta", 4),
        ("gamma", 5),
    ];
    let mut ids = Vec::new();
    for (component, n) in specs {
        let v = start(component, &uuid(n), &format!("2026-03-01T10:00:0{n}Z"));
        ids.push(accept_all(store, &[v], n as i64).await.remove(0).session_id);
    }
    accept_all(store, &[end_1_0(&ids[2], "2026-03-01T10:05:00Z")], 10).await;
    accept_all(store, &[end_1_0(&ids[4], "2026-03-01T10:05:00Z")], 11).await;
    // Events without a start are no session.
    accept_all(
        store,
        &[
            command(
                &uuid(50),
                "delta-20260301-100000-000050",
                "2026-03-01T10:00:01Z",
                1,
                true,
            ),
            heartbeat(
                &uuid(51),
                "delta-20260301-100000-000050",
                "2026-03-01T10:00:02Z",
            ),
        ],
        12,
    )
    .await;
    assert_eq!(active(store).await, counts(&[("alpha", 2), ("beta", 1)]));
    accept_all(store, &[end_1_0(&ids[0], "2026-03-01T10:06:00Z")], 13).await;
    assert_eq!(active(store).await, counts(&[("alpha", 1), ("beta", 1)]));
    accept_all(store, &[end_1_0(&ids[3], "2026-03-01T10:06:00Z")], 14).await;
    assert_eq!(active(store).await, counts(&[("alpha", 1)]));
}

async fn quality_by_component(
    store: &dyn Store,
    since: DateTime<Utc>,
    components: Option<Vec<String>>,
) -> BTreeMap<String, ComponentQuality> {
    let until = at("2026-03-08T00:00:00Z");
    let quality =
        session_buddy_store::quality_by_component(store, since, until, components.clone())
            .await
            .unwrap();
    // The same numbers once the rollups have the hours.
    while store
        .refresh_rollups(at("2027-01-01T00:00:00Z"))
        .await
        .unwrap()
        > 0
    {}
    let rolled = session_buddy_store::quality_by_component(store, since, until, components)
        .await
        .unwrap();
    assert_eq!(rolled, quality, "from the rollups as from the sessions");
    quality
}

pub async fn quality_by_component_counts_per_component(store: &dyn Store) {
    let since = at("2026-03-01T00:00:00Z");
    let mut n = 0;
    let mut next = || {
        n += 1;
        uuid(n)
    };
    // (component, start, commands (ok?), end fields or none)
    let specs: [(&str, &str, &[bool], Option<Value>); 9] = [
        ("gamma", "2026-03-01T00:00:00Z", &[], None),
        (
            "alpha",
            "2026-02-28T23:00:00Z",
            &[false, false],
            Some(json!({"exit_code": 1})),
        ),
        (
            "alpha",
            "2026-03-01T01:00:00Z",
            &[true, false, true],
            Some(json!({"exit_code": 0})),
        ),
        (
            "alpha",
            "2026-03-01T02:00:00Z",
            &[],
            Some(json!({"exit_code": 2})),
        ),
        ("alpha", "2026-03-01T03:00:00Z", &[true, true], None),
        (
            "alpha",
            "2026-03-01T04:00:00Z",
            &[],
            Some(json!({"metadata": {"exit_reason": "error"}})),
        ),
        (
            "alpha",
            "2026-03-01T05:00:00Z",
            &[],
            Some(json!({"exit_code": 0, "reason": "exit"})),
        ),
        (
            "beta",
            "2026-03-01T01:00:00Z",
            &[],
            Some(json!({"signal": "SIGTERM"})),
        ),
        ("beta", "2026-03-01T02:00:00Z", &[false], None),
    ];
    for (i, (component, started_at, commands, end)) in specs.into_iter().enumerate() {
        let id = accept_all(store, &[start(component, &next(), started_at)], i as i64)
            .await
            .remove(0)
            .session_id;
        let t = at(started_at);
        for (seq, ok) in commands.iter().enumerate() {
            let ts = (t + TimeDelta::seconds(seq as i64 + 1)).to_rfc3339();
            accept_all(
                store,
                &[command(&next(), &id, &ts, seq as u64 + 1, *ok)],
                i as i64,
            )
            .await;
        }
        if let Some(fields) = end {
            let mut e = end_1_0(&id, &(t + TimeDelta::minutes(10)).to_rfc3339());
            for (k, v) in object(fields) {
                e[k.as_str()] = v;
            }
            accept_all(store, &[e], i as i64).await;
        }
    }
    // Pending events are no session.
    let pending = command(
        &next(),
        "delta-20260301-010000-0000ff",
        "2026-03-01T01:00:01Z",
        1,
        false,
    );
    accept_all(store, &[pending], 20).await;

    let quality = |sessions, ended, failed_sessions, commands, failed_commands| ComponentQuality {
        sessions,
        ended,
        failed_sessions,
        abandoned: 0,
        commands,
        failed_commands,
    };
    let expected: BTreeMap<String, ComponentQuality> = [
        ("alpha".to_string(), quality(5, 4, 3, 5, 1)),
        ("beta".to_string(), quality(2, 1, 2, 1, 1)),
        ("gamma".to_string(), quality(1, 0, 0, 0, 0)),
    ]
    .into();
    assert_eq!(quality_by_component(store, since, None).await, expected);

    let later = at("2026-03-01T03:00:00Z");
    let expected: BTreeMap<String, ComponentQuality> =
        [("alpha".to_string(), quality(3, 2, 1, 2, 0))].into();
    assert_eq!(quality_by_component(store, later, None).await, expected);
    assert_eq!(
        quality_by_component(store, at("2026-03-02T00:00:00Z"), None).await,
        BTreeMap::new()
    );
}

pub async fn health_reports_a_migrated_schema(store: &dyn Store) {
    let health = store.health().await.unwrap();
    assert!(health.schema_version >= 1, "{health:?}");
    assert!(health.reachable, "{health:?}");
    assert!(!health.backend.is_empty(), "{health:?}");
    assert!(!health.location.is_empty(), "{health:?}");
    accept_all(store, &[oneiric_start()], 1).await;
    assert_eq!(store.health().await.unwrap(), health);
}

/// A session's timeline in pages (the console's session page) is the whole timeline in order.
pub async fn timeline_pages_are_the_timeline_in_order(store: &dyn Store) {
    let ids = five_sessions(store).await;
    let s2 = ids[1].as_str();
    let commands: Vec<_> = (1..=5)
        .map(|i| {
            command(
                &uuid(100 + i),
                s2,
                &format!("2026-03-01T11:00:0{i}Z"),
                i,
                true,
            )
        })
        .collect();
    accept_all(store, &commands, 9).await;
    let whole = store.session_events(s2).await.unwrap();
    assert_eq!(whole.len(), 6);
    let mut paged = Vec::new();
    for offset in [0, 4] {
        paged.extend(store.session_timeline(s2, offset, 4).await.unwrap());
    }
    assert_eq!(paged, whole, "pages of the timeline, in its order");
    assert!(store.session_timeline(s2, 6, 4).await.unwrap().is_empty());
}
