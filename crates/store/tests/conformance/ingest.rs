//! Ingest: starts and ends, deduplication, order independence and the effects for the metrics.

use session_buddy_events::SessionStatus;

use super::*;

pub async fn start_records_every_field_of_a_1_0_start(store: &dyn Store) {
    let out = ingest_one(store, &mahavishnu_start(), 1).await;
    assert_eq!(
        out,
        accepted(
            MAHAVISHNU,
            Some("mahavishnu"),
            vec![started("mahavishnu", "MahavishnuShell")]
        )
    );
    let expected = Session {
        session_id: MAHAVISHNU.into(),
        session_type: "admin_shell".into(),
        component: "mahavishnu".into(),
        shell_type: "MahavishnuShell".into(),
        component_version: Some("0.1.0".into()),
        status: SessionStatus::Active,
        username: "les".into(),
        home: "/Users/les".into(),
        hostname: "les-mbp.local".into(),
        pid: 48213,
        platform: "macOS-15.2-arm64-arm-64bit".into(),
        runtime_version: Some("python 3.13.1".into()),
        cwd: "/Users/les/Projects/mahavishnu".into(),
        started_at: at("2026-02-06T22:04:58.123456Z"),
        ended_at: None,
        last_seen_at: at("2026-02-06T22:04:58.123456Z"),
        duration_seconds: None,
        command_count: 0,
        error_count: 0,
        exit_code: None,
        end_reason: None,
        metadata: object(json!({
            "component_version": "0.1.0",
            "adapters": ["llamaindex", "prefect", "agno"]
        })),
        last_command: None,
        has_recording: false,
    };
    assert_eq!(
        store.get_session(MAHAVISHNU).await.unwrap(),
        Some(expected.clone())
    );
    let page = store.list_sessions(all()).await.unwrap();
    assert_eq!(page.sessions, vec![expected]);
    assert_eq!(page.next_cursor, None);
    assert_eq!(active(store).await, counts(&[("mahavishnu", 1)]));
}

pub async fn start_session_id_follows_the_rule(store: &dyn Store) {
    // `start-non-utc-offset.json`: the id uses the UTC date and second.
    let mut offset = oneiric_start();
    offset["event_id"] = json!("3f2504e0-4f89-41d3-9a0c-0305e82c3301");
    offset["component_name"] = json!("Mahavishnu_Ops");
    offset["shell_type"] = json!("MahavishnuShell");
    offset["timestamp"] = json!("2026-02-07T01:04:58.250+03:00");
    let id = "Mahavishnu_Ops-20260206-220458-2c3301";
    let out = ingest_one(store, &offset, 1).await;
    assert_eq!(
        out,
        accepted(
            id,
            Some("Mahavishnu_Ops"),
            vec![started("Mahavishnu_Ops", "MahavishnuShell")]
        )
    );
    let s = session(store, id).await;
    assert_eq!(s.session_id, id);
    assert_eq!(s.started_at, at("2026-02-06T22:04:58.250Z"));
    assert_eq!(
        s.component_version.as_deref(),
        Some("0.5.1"),
        "from metadata.version"
    );

    // A braced, upper-case event id (stored canonical) and a hyphenated component name; the
    // offset moves the start to the next UTC day.
    let braced = start(
        "session-buddy",
        "{0B7E4C1A-9A51-4F0E-8D7A-3C2B1A0F9E8D}",
        "2026-02-06T23:59:59.999999-01:00",
    );
    let id = "session-buddy-20260207-005959-0f9e8d";
    let out = ingest_one(store, &braced, 2).await;
    assert_eq!(
        out,
        accepted(
            id,
            Some("session-buddy"),
            vec![started("session-buddy", "TestShell")]
        )
    );
    let s = session(store, id).await;
    assert_eq!(s.component, "session-buddy");
    assert_eq!(s.started_at, at("2026-02-07T00:59:59.999999Z"));
    let timeline = store.session_events(id).await.unwrap();
    assert_eq!(
        event_ids(&timeline),
        ["0b7e4c1a-9a51-4f0e-8d7a-3c2b1a0f9e8d"]
    );
    assert_eq!(timeline[0].event_type, "session_start");
}

pub async fn start_records_1_1_fields_and_defaults(store: &dyn Store) {
    // 1.1: session_type, component_version (over metadata.version), runtime.
    let mut ours = start_1_1("crackerjack", &uuid(1), "2026-03-01T10:00:00Z");
    ours["session_type"] = json!("ops_shell");
    ours["component_version"] = json!("2.0.0");
    ours["metadata"] = json!({"version": "0.9"});
    let id = "crackerjack-20260301-100000-000001";
    let out = ingest_one(store, &ours, 1).await;
    assert_eq!(
        out,
        accepted(
            id,
            Some("crackerjack"),
            vec![started("crackerjack", "RustShell")]
        )
    );
    let s = session(store, id).await;
    assert_eq!(
        s,
        Session {
            session_id: id.into(),
            session_type: "ops_shell".into(),
            component: "crackerjack".into(),
            shell_type: "RustShell".into(),
            component_version: Some("2.0.0".into()),
            status: SessionStatus::Active,
            username: "bob".into(),
            home: "/home/bob".into(),
            hostname: "host2".into(),
            pid: 777,
            platform: "Linux-6.8.0-aarch64".into(),
            runtime_version: Some("rust 1.95".into()),
            cwd: "/opt".into(),
            started_at: at("2026-03-01T10:00:00Z"),
            ended_at: None,
            last_seen_at: at("2026-03-01T10:00:00Z"),
            duration_seconds: None,
            command_count: 0,
            error_count: 0,
            exit_code: None,
            end_reason: None,
            metadata: object(json!({"version": "0.9"})),
            last_command: None,
            has_recording: false,
        }
    );

    // 1.1 with a Python version and no runtime; with both (the runtime wins); with neither.
    let mut python = start_1_1("akosha", &uuid(2), "2026-03-01T10:00:01Z");
    python["environment"] = json!({"python_version": "3.12.1", "platform": "Linux", "cwd": "/"});
    let mut both = start_1_1("akosha", &uuid(3), "2026-03-01T10:00:02Z");
    both["environment"]["python_version"] = json!("3.12.1");
    let mut neither = start_1_1("akosha", &uuid(4), "2026-03-01T10:00:03Z");
    neither["environment"] = json!({"platform": "Linux", "cwd": "/"});
    let outs = accept_all(store, &[python, both, neither], 2).await;
    let runtimes = [Some("python 3.12.1"), Some("rust 1.95"), None];
    for (out, runtime) in outs.iter().zip(runtimes) {
        let s = session(store, &out.session_id).await;
        assert_eq!(s.runtime_version.as_deref(), runtime, "{}", out.session_id);
        assert_eq!(s.component_version, None, "{}", out.session_id);
    }

    // 1.0 without metadata: an empty object, no version; metadata.component_version is used.
    let mut bare = start("oneiric", &uuid(5), "2026-03-01T10:00:05Z");
    bare.as_object_mut().unwrap().remove("metadata");
    let mut versioned = start("oneiric", &uuid(6), "2026-03-01T10:00:06Z");
    versioned["metadata"] = json!({"component_version": "1.2.3", "k": 1});
    let outs = accept_all(store, &[bare, versioned], 3).await;
    let s = session(store, &outs[0].session_id).await;
    assert_eq!(s.metadata, Map::new());
    assert_eq!(s.component_version, None);
    assert_eq!(s.session_type, "admin_shell");
    assert_eq!(s.runtime_version.as_deref(), Some("python 3.13.0"));
    let s = session(store, &outs[1].session_id).await;
    assert_eq!(s.component_version.as_deref(), Some("1.2.3"));
    assert_eq!(
        s.metadata,
        object(json!({"component_version": "1.2.3", "k": 1}))
    );
    assert_eq!(
        active(store).await,
        counts(&[("akosha", 3), ("crackerjack", 1), ("oneiric", 2)])
    );
}

pub async fn end_closes_the_session_with_the_exact_duration(store: &dyn Store) {
    ingest_one(store, &mahavishnu_start(), 1).await;
    let before = session(store, MAHAVISHNU).await;
    let out = ingest_one(store, &mahavishnu_end(), 2).await;
    assert_eq!(
        out,
        accepted(
            MAHAVISHNU,
            Some("mahavishnu"),
            vec![ended("mahavishnu", EndOutcome::Success, 302.876545)]
        )
    );
    let end = at("2026-02-06T22:10:01.000001Z");
    assert_eq!(
        session(store, MAHAVISHNU).await,
        Session {
            status: SessionStatus::Ended,
            ended_at: Some(end),
            last_seen_at: end,
            duration_seconds: Some(302.876545),
            ..before
        }
    );

    // The docs sample: the reason comes from metadata.exit_reason.
    accept_all(store, &[oneiric_start()], 3).await;
    let out = ingest_one(store, &oneiric_end(), 4).await;
    assert_eq!(
        out,
        accepted(
            ONEIRIC,
            Some("oneiric"),
            vec![ended("oneiric", EndOutcome::Success, 300.0)]
        )
    );
    let s = session(store, ONEIRIC).await;
    assert_eq!(s.status, SessionStatus::Ended);
    assert_eq!(s.duration_seconds, Some(300.0));
    assert_eq!(s.ended_at, Some(at("2026-02-06T12:39:56.789Z")));
    assert_eq!(s.end_reason.as_deref(), Some("user_exit"));
    assert_eq!(s.exit_code, None);
    assert_eq!(s.component_version.as_deref(), Some("0.5.1"));
    assert_eq!(active(store).await, counts(&[]));
}

pub async fn end_records_1_1_exit_code_and_reason(store: &dyn Store) {
    let id = ingest_one(
        store,
        &start_1_1("alpha", &uuid(1), "2026-03-01T10:00:00.000001Z"),
        1,
    )
    .await
    .session_id;
    let mut end = end_1_1(&uuid(2), &id, "2026-03-01T10:00:01Z");
    end["exit_code"] = json!(0);
    end["reason"] = json!("eof");
    end["metadata"] = json!({"exit_reason": "user_exit"});
    let out = ingest_one(store, &end, 2).await;
    assert_eq!(
        out,
        accepted(
            &id,
            Some("alpha"),
            vec![ended("alpha", EndOutcome::Success, 0.999999)]
        )
    );
    let s = session(store, &id).await;
    assert_eq!(s.status, SessionStatus::Ended);
    assert_eq!(s.ended_at, Some(at("2026-03-01T10:00:01Z")));
    assert_eq!(s.duration_seconds, Some(0.999999));
    assert_eq!(s.exit_code, Some(0));
    assert_eq!(
        s.end_reason.as_deref(),
        Some("eof"),
        "reason wins over metadata.exit_reason"
    );
}

pub async fn end_outcome_reflects_exit_signal_reason_and_failed_commands(store: &dyn Store) {
    struct Case {
        name: &'static str,
        end: Value,
        command_ok: Option<bool>,
        outcome: EndOutcome,
        exit_code: Option<i32>,
        end_reason: Option<&'static str>,
    }
    let cases = [
        Case {
            name: "clean",
            end: json!({"exit_code": 0, "reason": "exit"}),
            command_ok: None,
            outcome: EndOutcome::Success,
            exit_code: Some(0),
            end_reason: Some("exit"),
        },
        Case {
            name: "okcommand",
            end: json!({"exit_code": 0}),
            command_ok: Some(true),
            outcome: EndOutcome::Success,
            exit_code: Some(0),
            end_reason: None,
        },
        Case {
            name: "nonzero",
            end: json!({"exit_code": 3}),
            command_ok: None,
            outcome: EndOutcome::Error,
            exit_code: Some(3),
            end_reason: None,
        },
        Case {
            name: "signal",
            end: json!({"signal": "SIGTERM", "reason": "sigterm"}),
            command_ok: None,
            outcome: EndOutcome::Error,
            exit_code: None,
            end_reason: Some("sigterm"),
        },
        Case {
            name: "signum",
            end: json!({"signal": 1}),
            command_ok: None,
            outcome: EndOutcome::Error,
            exit_code: None,
            end_reason: None,
        },
        Case {
            name: "reason",
            end: json!({"reason": "error"}),
            command_ok: None,
            outcome: EndOutcome::Error,
            exit_code: None,
            end_reason: Some("error"),
        },
        Case {
            name: "legacyreason",
            end: json!({"event_version": null, "event_id": null, "metadata": {"exit_reason": "error"}}),
            command_ok: None,
            outcome: EndOutcome::Error,
            exit_code: None,
            end_reason: Some("error"),
        },
        Case {
            name: "failedcommand",
            end: json!({"exit_code": 0}),
            command_ok: Some(false),
            outcome: EndOutcome::Error,
            exit_code: Some(0),
            end_reason: None,
        },
    ];
    let mut expected_failed = BTreeMap::new();
    for (i, case) in cases.into_iter().enumerate() {
        expected_failed.insert(
            case.name.to_string(),
            u64::from(case.outcome == EndOutcome::Error),
        );
        let n = i as u64 * 10;
        let id = ingest_one(
            store,
            &start_1_1(case.name, &uuid(n + 1), "2026-03-01T10:00:00Z"),
            1,
        )
        .await
        .session_id;
        if let Some(ok) = case.command_ok {
            accept_all(
                store,
                &[command(&uuid(n + 2), &id, "2026-03-01T10:00:10Z", 1, ok)],
                2,
            )
            .await;
        }
        let mut end = end_1_1(&uuid(n + 3), &id, "2026-03-01T10:00:30Z");
        for (k, v) in object(case.end) {
            end[k.as_str()] = v;
        }
        let out = ingest_one(store, &end, 3).await;
        assert_eq!(
            out,
            accepted(
                &id,
                Some(case.name),
                vec![ended(case.name, case.outcome, 30.0)]
            ),
            "{}",
            case.name
        );
        let s = session(store, &id).await;
        assert_eq!(s.status, SessionStatus::Ended, "{}", case.name);
        assert_eq!(s.exit_code, case.exit_code, "{}", case.name);
        assert_eq!(s.end_reason.as_deref(), case.end_reason, "{}", case.name);
        assert_eq!(s.duration_seconds, Some(30.0), "{}", case.name);
    }
    // The stored sessions' failure, as every query counts it (`failed_session_sql!`), is the
    // outcome the end reported to the metrics (`end_effect`): one rule.
    let failed: BTreeMap<String, u64> = session_buddy_store::quality_by_component(
        store,
        at("2000-01-01T00:00:00Z"),
        at("2100-01-01T00:00:00Z"),
        None,
    )
    .await
    .unwrap()
    .into_iter()
    .map(|(component, q)| (component, q.failed_sessions))
    .collect();
    assert_eq!(failed, expected_failed);
}

pub async fn negative_duration_is_clamped_to_zero(store: &dyn Store) {
    let id = ingest_one(store, &start("alpha", &uuid(1), "2026-03-01T10:00:10Z"), 1)
        .await
        .session_id;
    let out = ingest_one(store, &end_1_0(&id, "2026-03-01T10:00:05.5Z"), 2).await;
    assert_eq!(
        out,
        accepted(
            &id,
            Some("alpha"),
            vec![ended("alpha", EndOutcome::Success, 0.0)]
        )
    );
    let s = session(store, &id).await;
    assert_eq!(s.status, SessionStatus::Ended);
    assert_eq!(s.duration_seconds, Some(0.0));
    assert_eq!(s.ended_at, Some(at("2026-03-01T10:00:05.5Z")));
    assert_eq!(s.started_at, at("2026-03-01T10:00:10Z"));
    assert_eq!(
        s.last_seen_at,
        at("2026-03-01T10:00:10Z"),
        "the latest event time"
    );
    let page = store
        .list_sessions(SessionFilter {
            min_duration: Some(0.0),
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(page.sessions, vec![s]);
}

pub async fn same_start_twice_is_a_duplicate(store: &dyn Store) {
    accept_all(store, &[oneiric_start()], 1).await;
    let before = session(store, ONEIRIC).await;

    // Sent again, and again with another spelling of the same event id.
    let mut respelled = oneiric_start();
    respelled["event_id"] = json!("550E8400E29B41D4A716446655440000");
    for (n, again) in [(2, oneiric_start()), (3, respelled)] {
        let out = ingest_one(store, &again, n).await;
        assert_eq!(out, duplicate(ONEIRIC, Some("oneiric")));
    }
    assert_eq!(session(store, ONEIRIC).await, before);
    assert_eq!(
        store.session_events(ONEIRIC).await.unwrap(),
        vec![stored(&oneiric_start(), 1)]
    );
    assert_eq!(listed(store, all()).await, [ONEIRIC]);
    assert_eq!(active(store).await, counts(&[("oneiric", 1)]));

    // Once ended, a repeated start does not reopen it; a repeated 1.1 end changes nothing.
    let mut end = end_1_1(&uuid(1), ONEIRIC, "2026-02-06T12:39:56.789Z");
    end["exit_code"] = json!(0);
    accept_all(store, std::slice::from_ref(&end), 4).await;
    let ended_session = session(store, ONEIRIC).await;
    assert_eq!(ended_session.status, SessionStatus::Ended);
    assert_eq!(
        ingest_one(store, &oneiric_start(), 5).await,
        duplicate(ONEIRIC, Some("oneiric"))
    );
    assert_eq!(
        ingest_one(store, &end, 6).await,
        duplicate(ONEIRIC, Some("oneiric"))
    );
    assert_eq!(session(store, ONEIRIC).await, ended_session);
    assert_eq!(store.session_events(ONEIRIC).await.unwrap().len(), 2);
    assert_eq!(active(store).await, counts(&[]));
}

pub async fn same_event_id_with_other_content_is_rejected(store: &dyn Store) {
    accept_all(store, &[oneiric_start()], 1).await;
    let before = session(store, ONEIRIC).await;

    // The same start event id with another pid.
    let mut changed = oneiric_start();
    changed["pid"] = json!(12346);
    assert_rejected_event_id(&ingest_one(store, &changed, 2).await, ONEIRIC);
    assert_eq!(session(store, ONEIRIC).await, before);

    // A command, then other events reusing its id.
    let cmd = command(&uuid(7), ONEIRIC, "2026-02-06T12:35:00Z", 1, true);
    accept_all(store, std::slice::from_ref(&cmd), 3).await;
    assert_eq!(
        ingest_one(store, &cmd, 4).await,
        duplicate(ONEIRIC, Some("oneiric"))
    );
    let mut other_command = cmd.clone();
    other_command["command"] = json!("deploy");
    other_command["success"] = json!(false);
    let reuses = [
        other_command,
        heartbeat(&uuid(7), ONEIRIC, "2026-02-06T12:36:00Z"),
        end_1_1(&uuid(7), ONEIRIC, "2026-02-06T12:37:00Z"),
    ];
    for reuse in &reuses {
        assert_rejected_event_id(&ingest_one(store, reuse, 5).await, ONEIRIC);
    }
    let s = session(store, ONEIRIC).await;
    assert_eq!(
        s.status,
        SessionStatus::Active,
        "the rejected end did not end it"
    );
    assert_eq!((s.command_count, s.error_count), (1, 0));
    assert_eq!(s.last_seen_at, at("2026-02-06T12:35:00Z"));
    assert_eq!(
        event_ids(&store.session_events(ONEIRIC).await.unwrap()),
        [stored_id(&oneiric_start()), uuid(7)]
    );

    // The start's id reused by a heartbeat of another session.
    let hb = heartbeat(
        "550e8400-e29b-41d4-a716-446655440000",
        MAHAVISHNU,
        "2026-02-06T22:05:00Z",
    );
    assert_rejected_event_id(&ingest_one(store, &hb, 6).await, MAHAVISHNU);
    assert_eq!(store.session_events(MAHAVISHNU).await.unwrap(), vec![]);
}

/// Two starts of one component in one second whose event ids end alike for 6 hex digits:
/// under rule 2 (`session_id_version: 2`, 16 digits) both are sessions of their own; a rule 1
/// start (no field, as every old journal and buffer holds) keeps its 6-digit id, and the
/// events that name it still reach it.
pub async fn rule_2_ids_keep_apart_what_rule_1_ids_collide(store: &dyn Store) {
    let at = "2026-03-01T08:00:00.100Z";
    let mut a = start_1_1("fastblocks", "11111111-2222-4333-8444-aaaaaa440000", at);
    let mut b = start_1_1("fastblocks", "11111111-2222-4333-8444-bbbbbb440000", at);
    a["session_id_version"] = json!(2);
    b["session_id_version"] = json!(2);
    let outs = accept_all(store, &[a, b], 1).await;
    let ids: Vec<&str> = outs.iter().map(|o| o.session_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "fastblocks-20260301-080000-8444aaaaaa440000",
            "fastblocks-20260301-080000-8444bbbbbb440000"
        ]
    );
    // The same two ids under rule 1 meet: the second is refused, naming event_id.
    let old_at = "2026-03-01T08:00:01.100Z";
    let old_a = start_1_1("fastblocks", "11111111-2222-4333-8444-cccccc440000", old_at);
    let old_b = start_1_1("fastblocks", "11111111-2222-4333-8444-dddddd440000", old_at);
    let old_id = "fastblocks-20260301-080001-440000";
    assert_eq!(ingest_one(store, &old_a, 2).await.session_id, old_id);
    assert_rejected_event_id(&ingest_one(store, &old_b, 3).await, old_id);
    // `1` says what the field's absence says: the same start, a duplicate.
    let mut explicit = old_a.clone();
    explicit["session_id_version"] = json!(1);
    assert_eq!(
        ingest_one(store, &explicit, 4).await,
        duplicate(old_id, Some("fastblocks"))
    );
    // An end of a rule 1 session (an old buffer's) ends it; a rule 2 session ends by its id.
    let end = end_1_1(&uuid(900), old_id, "2026-03-01T08:01:01.100Z");
    assert_eq!(
        ingest_one(store, &end, 5).await.status,
        EventOutcome::Accepted
    );
    assert_eq!(session(store, old_id).await.status, SessionStatus::Ended);
    let end = end_1_1(&uuid(901), ids[1], "2026-03-01T08:00:10.100Z");
    assert_eq!(
        ingest_one(store, &end, 6).await.status,
        EventOutcome::Accepted
    );
    let s = session(store, ids[1]).await;
    assert_eq!(
        (s.status, s.duration_seconds),
        (SessionStatus::Ended, Some(10.0))
    );
    assert_eq!(session(store, ids[0]).await.status, SessionStatus::Active);
}

pub async fn start_colliding_with_a_stored_session_id_is_rejected(store: &dyn Store) {
    accept_all(store, &[oneiric_start()], 1).await;
    let before = session(store, ONEIRIC).await;

    // Same component, same second, same last 6 hex, another event id.
    let mut other = oneiric_start();
    other["event_id"] = json!("11111111-2222-4333-8444-555555440000");
    other["timestamp"] = json!("2026-02-06T12:34:56.001Z");
    other["pid"] = json!(999);
    other["user"]["username"] = json!("mallory");
    for n in [2, 3] {
        let out = ingest_one(store, &other, n).await;
        assert_rejected_event_id(&out, ONEIRIC);
    }
    assert_eq!(session(store, ONEIRIC).await, before);
    assert_eq!(
        store.session_events(ONEIRIC).await.unwrap(),
        vec![stored(&oneiric_start(), 1)]
    );
    let everything = store.list_events(all_events()).await.unwrap();
    assert_eq!(event_ids(&everything), [stored_id(&oneiric_start())]);
    assert_eq!(listed(store, all()).await, [ONEIRIC]);

    // The session still belongs to the first start.
    let out = ingest_one(store, &oneiric_end(), 4).await;
    assert_eq!(
        out,
        accepted(
            ONEIRIC,
            Some("oneiric"),
            vec![ended("oneiric", EndOutcome::Success, 300.0)]
        )
    );
    let s = session(store, ONEIRIC).await;
    assert_eq!((s.pid, s.username.as_str()), (12345, "john"));

    // In one batch: the first wins, the second is rejected.
    let first = start("alpha", &uuid(0xabcdef), "2026-03-01T10:00:00.100Z");
    let second = start(
        "alpha",
        "99999999-0000-4000-8000-000000abcdef",
        "2026-03-01T10:00:00.900Z",
    );
    let outs = ingest(store, &[first, second], 5).await;
    let id = "alpha-20260301-100000-abcdef";
    assert_eq!(
        outs[0],
        accepted(id, Some("alpha"), vec![started("alpha", "TestShell")])
    );
    assert_rejected_event_id(&outs[1], id);
    assert_eq!(
        session(store, id).await.started_at,
        at("2026-03-01T10:00:00.100Z")
    );
}

pub async fn second_end_is_a_duplicate(store: &dyn Store) {
    // 1.0 ends (no event id): a session has one end.
    accept_all(store, &[oneiric_start(), oneiric_end()], 1).await;
    let closed = session(store, ONEIRIC).await;
    assert_eq!(closed.duration_seconds, Some(300.0));
    let mut later = end_1_0(ONEIRIC, "2026-02-06T12:45:00Z");
    later["metadata"] = json!({"exit_reason": "eof"});
    let mut ours = end_1_1(&uuid(1), ONEIRIC, "2026-02-06T12:50:00Z");
    ours["exit_code"] = json!(1);
    for (n, again) in [(2, oneiric_end()), (3, later), (4, ours)] {
        let out = ingest_one(store, &again, n).await;
        assert_eq!(out, duplicate(ONEIRIC, Some("oneiric")), "{again}");
    }
    assert_eq!(session(store, ONEIRIC).await, closed);
    assert_eq!(
        store.session_events(ONEIRIC).await.unwrap(),
        vec![stored(&oneiric_start(), 1), stored(&oneiric_end(), 1)]
    );

    // 1.1 ends: the same one again, one with another id, then a 1.0 end.
    let id = ingest_one(
        store,
        &start_1_1("alpha", &uuid(2), "2026-03-01T10:00:00Z"),
        5,
    )
    .await
    .session_id;
    let mut first = end_1_1(&uuid(3), &id, "2026-03-01T10:01:00Z");
    first["exit_code"] = json!(0);
    accept_all(store, std::slice::from_ref(&first), 6).await;
    let closed = session(store, &id).await;
    let mut second = end_1_1(&uuid(4), &id, "2026-03-01T10:02:00Z");
    second["exit_code"] = json!(1);
    second["signal"] = json!("SIGKILL");
    for (n, again) in [
        (7, first.clone()),
        (8, second),
        (9, end_1_0(&id, "2026-03-01T10:03:00Z")),
    ] {
        assert_eq!(
            ingest_one(store, &again, n).await,
            duplicate(&id, Some("alpha")),
            "{again}"
        );
    }
    let s = session(store, &id).await;
    assert_eq!(s, closed);
    assert_eq!((s.exit_code, s.duration_seconds), (Some(0), Some(60.0)));
    assert_eq!(store.session_events(&id).await.unwrap().len(), 2);

    // Before the start: the second end is a duplicate too; the first one is merged.
    let ghost = "ghost-20260301-110000-000005";
    let out = ingest_one(store, &end_1_0(ghost, "2026-03-01T11:00:10Z"), 10).await;
    assert_eq!(out, accepted(ghost, None, vec![]));
    let mut other = end_1_1(&uuid(6), ghost, "2026-03-01T11:00:20Z");
    other["exit_code"] = json!(2);
    for (n, again) in [(11, end_1_0(ghost, "2026-03-01T11:00:10Z")), (12, other)] {
        assert_eq!(
            ingest_one(store, &again, n).await,
            duplicate(ghost, None),
            "{again}"
        );
    }
    let out = ingest_one(store, &start("ghost", &uuid(5), "2026-03-01T11:00:00Z"), 13).await;
    assert_eq!(
        out,
        accepted(
            ghost,
            Some("ghost"),
            vec![
                started("ghost", "TestShell"),
                ended("ghost", EndOutcome::Success, 10.0)
            ]
        )
    );
    let s = session(store, ghost).await;
    assert_eq!((s.exit_code, s.duration_seconds), (None, Some(10.0)));
}

pub async fn end_before_start_is_merged_when_the_start_arrives(store: &dyn Store) {
    let out = ingest_one(store, &mahavishnu_end(), 1).await;
    assert_eq!(out, accepted(MAHAVISHNU, None, vec![]));
    assert_eq!(store.get_session(MAHAVISHNU).await.unwrap(), None);
    let page = store.list_sessions(all()).await.unwrap();
    assert_eq!((page.sessions, page.next_cursor), (vec![], None));
    assert_eq!(active(store).await, counts(&[]));
    assert_eq!(
        session_buddy_store::quality_by_component(
            store,
            at("2000-01-01T00:00:00Z"),
            at("2100-01-01T00:00:00Z"),
            None
        )
        .await
        .unwrap(),
        BTreeMap::new()
    );
    assert_eq!(
        store.session_events(MAHAVISHNU).await.unwrap(),
        vec![stored(&mahavishnu_end(), 1)]
    );

    let out = ingest_one(store, &mahavishnu_start(), 2).await;
    assert_eq!(
        out,
        accepted(
            MAHAVISHNU,
            Some("mahavishnu"),
            vec![
                started("mahavishnu", "MahavishnuShell"),
                ended("mahavishnu", EndOutcome::Success, 302.876545)
            ]
        )
    );
    let s = session(store, MAHAVISHNU).await;
    assert_eq!(s.status, SessionStatus::Ended);
    assert_eq!(s.started_at, at("2026-02-06T22:04:58.123456Z"));
    assert_eq!(s.ended_at, Some(at("2026-02-06T22:10:01.000001Z")));
    assert_eq!(s.last_seen_at, at("2026-02-06T22:10:01.000001Z"));
    assert_eq!(s.duration_seconds, Some(302.876545));
    assert_eq!((s.command_count, s.error_count), (0, 0));
    assert_eq!(listed(store, all()).await, [MAHAVISHNU]);
    assert_eq!(active(store).await, counts(&[]));
    assert_eq!(
        store.session_events(MAHAVISHNU).await.unwrap(),
        vec![stored(&mahavishnu_start(), 2), stored(&mahavishnu_end(), 1)]
    );
}

pub async fn commands_and_heartbeats_before_start_are_merged(store: &dyn Store) {
    // Ended: commands (one failed), a heartbeat and an end, all before the start.
    let id = "alpha-20260301-100000-000001";
    let mut end = end_1_1(&uuid(5), id, "2026-03-01T10:00:20.5Z");
    end["exit_code"] = json!(0);
    end["reason"] = json!("exit");
    let early = [
        command(&uuid(2), id, "2026-03-01T10:00:05Z", 1, true),
        end,
        heartbeat(&uuid(3), id, "2026-03-01T10:00:08Z"),
        command(&uuid(4), id, "2026-03-01T10:00:10Z", 2, false),
    ];
    for (n, value) in early.iter().enumerate() {
        let out = ingest_one(store, value, n as i64).await;
        assert_eq!(out, accepted(id, None, vec![]), "{value}");
    }
    assert_eq!(store.get_session(id).await.unwrap(), None);
    assert_eq!(store.session_events(id).await.unwrap().len(), 4);
    let out = ingest_one(
        store,
        &start_1_1("alpha", &uuid(1), "2026-03-01T10:00:00Z"),
        10,
    )
    .await;
    assert_eq!(
        out,
        accepted(
            id,
            Some("alpha"),
            vec![
                started("alpha", "RustShell"),
                ended("alpha", EndOutcome::Error, 20.5)
            ]
        )
    );
    let s = session(store, id).await;
    assert_eq!(s.status, SessionStatus::Ended);
    assert_eq!((s.command_count, s.error_count), (2, 1));
    assert_eq!(s.duration_seconds, Some(20.5));
    assert_eq!(s.ended_at, Some(at("2026-03-01T10:00:20.5Z")));
    assert_eq!(s.last_seen_at, at("2026-03-01T10:00:20.5Z"));
    assert_eq!(
        (s.exit_code, s.end_reason.as_deref()),
        (Some(0), Some("exit"))
    );

    // Still active: commands and a heartbeat before the start, then more after it.
    let id = "beta-20260301-110000-000011";
    let early = [
        heartbeat(&uuid(0x13), id, "2026-03-01T11:00:40Z"),
        command(&uuid(0x12), id, "2026-03-01T11:00:30Z", 1, false),
    ];
    accept_all(store, &early, 11).await;
    let out = ingest_one(
        store,
        &start_1_1("beta", &uuid(0x11), "2026-03-01T11:00:00Z"),
        12,
    )
    .await;
    assert_eq!(
        out,
        accepted(id, Some("beta"), vec![started("beta", "RustShell")])
    );
    let s = session(store, id).await;
    assert_eq!(s.status, SessionStatus::Active);
    assert_eq!((s.command_count, s.error_count), (1, 1));
    assert_eq!(s.last_seen_at, at("2026-03-01T11:00:40Z"));
    assert_eq!(s.ended_at, None);
    let later = command(&uuid(0x14), id, "2026-03-01T11:00:50Z", 2, true);
    assert_eq!(
        ingest_one(store, &later, 13).await,
        accepted(id, Some("beta"), vec![])
    );
    let s = session(store, id).await;
    assert_eq!((s.command_count, s.error_count), (2, 1));
    assert_eq!(s.last_seen_at, at("2026-03-01T11:00:50Z"));
    assert_eq!(active(store).await, counts(&[("beta", 1)]));
}

pub async fn commands_count_and_touch_the_session(store: &dyn Store) {
    let id = ingest_one(
        store,
        &start_1_1("alpha", &uuid(1), "2026-03-01T10:00:00Z"),
        1,
    )
    .await
    .session_id;
    let steps = [
        (
            command(&uuid(2), &id, "2026-03-01T10:00:10Z", 1, true),
            (1, 0),
            "2026-03-01T10:00:10Z",
        ),
        (
            command(&uuid(3), &id, "2026-03-01T10:00:20.25Z", 2, false),
            (2, 1),
            "2026-03-01T10:00:20.25Z",
        ),
        (
            command(&uuid(4), &id, "2026-03-01T10:00:30Z", 3, false),
            (3, 2),
            "2026-03-01T10:00:30Z",
        ),
        // Delivered late: counted, but the session was seen later than that.
        (
            command(&uuid(5), &id, "2026-03-01T10:00:15Z", 4, true),
            (4, 2),
            "2026-03-01T10:00:30Z",
        ),
    ];
    for (n, (cmd, (commands, errors), seen)) in steps.into_iter().enumerate() {
        let out = ingest_one(store, &cmd, n as i64 + 2).await;
        assert_eq!(out, accepted(&id, Some("alpha"), vec![]), "{cmd}");
        let s = session(store, &id).await;
        assert_eq!(
            (s.command_count, s.error_count),
            (commands, errors),
            "{cmd}"
        );
        assert_eq!(s.last_seen_at, at(seen), "{cmd}");
        assert_eq!(s.status, SessionStatus::Active);
        assert_eq!(s.started_at, at("2026-03-01T10:00:00Z"));
    }
}

pub async fn heartbeats_touch_the_session(store: &dyn Store) {
    let id = ingest_one(
        store,
        &start_1_1("alpha", &uuid(1), "2026-03-01T10:00:00Z"),
        1,
    )
    .await
    .session_id;
    let before = session(store, &id).await;
    let steps = [
        (
            heartbeat(&uuid(2), &id, "2026-03-01T10:00:30.000001Z"),
            "2026-03-01T10:00:30.000001Z",
        ),
        (
            heartbeat(&uuid(3), &id, "2026-03-01T10:01:00Z"),
            "2026-03-01T10:01:00Z",
        ),
        (
            heartbeat(&uuid(4), &id, "2026-03-01T10:00:45Z"),
            "2026-03-01T10:01:00Z",
        ),
    ];
    for (n, (hb, seen)) in steps.into_iter().enumerate() {
        let out = ingest_one(store, &hb, n as i64 + 2).await;
        assert_eq!(out, accepted(&id, Some("alpha"), vec![]), "{hb}");
        assert_eq!(
            session(store, &id).await,
            Session {
                last_seen_at: at(seen),
                ..before.clone()
            },
            "{hb}"
        );
    }
}

pub async fn batch_outcomes_follow_the_input_order(store: &dyn Store) {
    assert_eq!(store.ingest(Vec::new(), received(0)).await.unwrap(), vec![]);

    let a = "alpha-20260301-100000-000001";
    let b = "beta-20260301-100001-000003";
    let ghost = "ghost-20260301-100000-abcdef";
    let cmd = command(&uuid(2), a, "2026-03-01T10:00:10Z", 1, true);
    let mut end = end_1_1(&uuid(4), a, "2026-03-01T10:01:00Z");
    end["exit_code"] = json!(0);
    let batch = [
        start("alpha", &uuid(1), "2026-03-01T10:00:00Z"),
        cmd.clone(),
        start("alpha", &uuid(1), "2026-03-01T10:00:00Z"),
        end_1_0(ghost, "2026-03-01T10:05:00Z"),
        start(
            "alpha",
            "99999999-0000-4000-8000-000000000001",
            "2026-03-01T10:00:00.5Z",
        ),
        start("beta", &uuid(3), "2026-03-01T10:00:01Z"),
        end,
        cmd,
    ];
    let outs = ingest(store, &batch, 1).await;
    assert_eq!(
        outs[0],
        accepted(a, Some("alpha"), vec![started("alpha", "TestShell")])
    );
    assert_eq!(outs[1], accepted(a, Some("alpha"), vec![]));
    assert_eq!(outs[2], duplicate(a, Some("alpha")));
    assert_eq!(outs[3], accepted(ghost, None, vec![]));
    assert_rejected_event_id(&outs[4], a);
    assert_eq!(
        outs[5],
        accepted(b, Some("beta"), vec![started("beta", "TestShell")])
    );
    assert_eq!(
        outs[6],
        accepted(
            a,
            Some("alpha"),
            vec![ended("alpha", EndOutcome::Success, 60.0)]
        )
    );
    assert_eq!(outs[7], duplicate(a, Some("alpha")));

    let s = session(store, a).await;
    assert_eq!(
        (s.status, s.command_count, s.pid),
        (SessionStatus::Ended, 1, 4242)
    );
    assert_eq!(listed(store, all()).await, [b, a]);
    assert_eq!(active(store).await, counts(&[("beta", 1)]));
}
