//! Text search (`SessionFilter::q`): a case-insensitive substring of a session's id, user,
//! host, component or command names, combined with the other filters and the cursor; each case
//! runs under both search plans and the backend's own choice, which must answer alike.

use session_buddy_store::{SearchPlan, StoreError};

use super::*;

/// The plans a search runs under: the backend's choice, then each forced.
const PLANS: [Option<SearchPlan>; 3] = [None, Some(SearchPlan::Lookup), Some(SearchPlan::Walk)];

/// Four sessions (oldest first), each with a command:
/// - `alpha`, user `Ann.Lee`, host `db-West-1`, command `deploy_release`;
/// - `beta`, user `100%_bob`, host `cache"1`, command `show_layers`;
/// - `gamma`, user `o'brien`, host `db-east-2`, command `Deploy-Check` (and `status` twice);
/// - `alpha`, user `carol`, host `web-1`, no command.
async fn four_sessions(store: &dyn Store) -> [String; 4] {
    let specs = [
        (
            "alpha",
            "Ann.Lee",
            "db-West-1",
            "2026-04-01T10:00:00Z",
            &["deploy_release"][..],
        ),
        (
            "beta",
            "100%_bob",
            "cache\"1",
            "2026-04-01T11:00:00Z",
            &["show_layers"][..],
        ),
        (
            "gamma",
            "o'brien",
            "db-east-2",
            "2026-04-01T12:00:00Z",
            &["Deploy-Check", "status", "status"][..],
        ),
        ("alpha", "carol", "web-1", "2026-04-01T13:00:00Z", &[][..]),
    ];
    let mut ids = Vec::new();
    for (i, (component, user, host, started_at, commands)) in specs.into_iter().enumerate() {
        let mut v = start(component, &uuid(0xab_c000 + i as u64), started_at);
        v["user"]["username"] = json!(user);
        v["hostname"] = json!(host);
        let id = accept_all(store, &[v], i as i64).await.remove(0).session_id;
        for (n, name) in commands.iter().enumerate() {
            let mut c = command(
                &uuid(0xc0_0000 + (i * 10 + n) as u64),
                &id,
                "2026-04-01T13:30:00Z",
                n as u64 + 1,
                true,
            );
            c["command"] = json!(name);
            accept_all(store, &[c], i as i64).await;
        }
        ids.push(id);
    }
    ids.try_into().unwrap()
}

fn search(q: &str, plan: Option<SearchPlan>) -> SessionFilter {
    SessionFilter {
        q: Some(q.into()),
        search_plan: plan,
        ..all()
    }
}

/// Checks that `q` lists `expected` (newest first) under every plan.
async fn assert_search(store: &dyn Store, q: &str, expected: &[&str]) {
    for plan in PLANS {
        assert_eq!(
            listed(store, search(q, plan)).await,
            expected,
            "q={q:?} under {plan:?}"
        );
    }
}

pub async fn search_finds_a_substring_of_each_field_ignoring_case(store: &dyn Store) {
    let ids = four_sessions(store).await;
    let [s1, s2, s3, s4] = [0, 1, 2, 3].map(|i| ids[i].as_str());
    // A user, a host, a component, a command name; any case.
    assert_search(store, "ann.l", &[s1]).await;
    assert_search(store, "ANN.LEE", &[s1]).await;
    assert_search(store, "west", &[s1]).await;
    assert_search(store, "DB-", &[s3, s1]).await;
    assert_search(store, "lph", &[s4, s1]).await;
    assert_search(store, "amm", &[s3]).await;
    assert_search(store, "layer", &[s2]).await;
    assert_search(store, "deploy", &[s3, s1]).await;
    assert_search(store, "tatu", &[s3]).await;
    // A session id: its tail, its date, the whole id.
    let tail = &s2[s2.len() - 6..];
    assert_search(store, tail, &[s2]).await;
    assert_search(store, &s4[s4.len() - 6..].to_uppercase(), &[s4]).await;
    assert_search(store, "20260401-1", &[s4, s3, s2, s1]).await;
    assert_search(store, s3, &[s3]).await;
    // Nothing, and the text around it trimmed.
    assert_search(store, "no-such-thing", &[]).await;
    assert_search(store, "  carol  ", &[s4]).await;
}

pub async fn search_treats_special_characters_literally(store: &dyn Store) {
    let ids = four_sessions(store).await;
    let [_, s2, s3, _] = [0, 1, 2, 3].map(|i| ids[i].as_str());
    // `%` and `_` are no wildcards; quotes are text.
    assert_search(store, "0%_", &[s2]).await;
    assert_search(store, "%_b", &[s2]).await;
    assert_search(store, "100%", &[s2]).await;
    assert_search(store, "r_l", &[]).await; // `_` is not "any character" (carol)
    assert_search(store, "c%l", &[]).await; // nor is `%`
    assert_search(store, "w_layers", &[s2]).await;
    assert_search(store, "%%%", &[]).await;
    assert_search(store, "___", &[]).await;
    assert_search(store, "e\"1", &[s2]).await;
    assert_search(store, "\"\"\"", &[]).await;
    assert_search(store, "o'b", &[s3]).await;
    assert_search(store, "'; DROP TABLE sessions; --", &[]).await;
    assert_search(store, "\\%\\", &[]).await;
    assert_eq!(listed(store, all()).await.len(), 4);
}

pub async fn search_combines_with_the_filters_and_the_cursor(store: &dyn Store) {
    let ids = four_sessions(store).await;
    let [s1, s2, s3, s4] = [0, 1, 2, 3].map(|i| ids[i].as_str());
    for plan in PLANS {
        let q = |q: &str| search(q, plan);
        let alpha = SessionFilter {
            component: Some("alpha".into()),
            ..q("deploy")
        };
        assert_eq!(listed(store, alpha).await, [s1], "{plan:?}");
        let before = SessionFilter {
            before: Some(at("2026-04-01T11:30:00Z")),
            ..q("2026")
        };
        assert_eq!(listed(store, before).await, [s2, s1], "{plan:?}");
        let host = SessionFilter {
            host: Some("web-1".into()),
            ..q("deploy")
        };
        assert_eq!(listed(store, host).await, Vec::<String>::new(), "{plan:?}");
        // Pages of one: every match once, newest first, then no cursor.
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .list_sessions(SessionFilter {
                    limit: 1,
                    cursor: cursor.clone(),
                    ..q("2026")
                })
                .await
                .unwrap();
            seen.extend(page.sessions.into_iter().map(|s| s.session_id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, [s4, s3, s2, s1], "{plan:?}");
    }
}

pub async fn search_of_fewer_than_three_characters_is_refused(store: &dyn Store) {
    four_sessions(store).await;
    for q in ["a", "db", " x ", "%_", "é1"] {
        match store.list_sessions(search(q, None)).await {
            Err(StoreError::InvalidQuery(m)) => assert!(m.contains("at least 3"), "{q:?}: {m}"),
            other => panic!("q={q:?}: {other:?}"),
        }
    }
    // An empty or blank text is no search (an empty search box).
    for q in ["", "   "] {
        assert_eq!(listed(store, search(q, None)).await.len(), 4, "q={q:?}");
    }
    let long = "x".repeat(201);
    assert!(matches!(
        store.list_sessions(search(&long, None)).await,
        Err(StoreError::InvalidQuery(_))
    ));
}

pub async fn search_finds_commands_sent_before_the_start_and_forgets_pruned_sessions(
    store: &dyn Store,
) {
    // A command that arrives before its start is found once the start is stored.
    let s = start("delta", &uuid(0xde_1000), "2026-04-02T10:00:00Z");
    let id = event(&s).session_id();
    let mut c = command(&uuid(0xde_1001), &id, "2026-04-02T10:00:05Z", 1, true);
    c["command"] = json!("early_bird");
    accept_all(store, &[c], 0).await;
    assert_search(store, "early_b", &[]).await;
    accept_all(store, &[s, end_1_0(&id, "2026-04-02T10:01:00Z")], 1).await;
    assert_search(store, "early_b", &[&id]).await;
    assert_search(store, "delta", &[&id]).await;
    // Retention removes the session from the search too.
    let pruned = store.prune(at("2026-05-01T00:00:00Z"), 100).await.unwrap();
    assert_eq!(pruned.sessions, 1);
    assert_search(store, "early_b", &[]).await;
    assert_search(store, "delta", &[]).await;
}
