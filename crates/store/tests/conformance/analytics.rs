//! Analytics: per-component aggregates over a window, the most common error, the active
//! sessions, and the original's shapes computed from them, over a dataset with known answers.

use session_buddy_store::analytics::{self, AnalyticsWindow, ComponentSummary, ErrorRate};

use super::*;

/// 2026-03-01T00:00Z … 2026-03-04T00:00Z: three one-day trend buckets.
fn window(component: Option<&str>) -> AnalyticsWindow {
    AnalyticsWindow {
        since: at("2026-03-01T00:00:00Z"),
        until: at("2026-03-04T00:00:00Z"),
        component: component.map(str::to_string),
        components: None,
    }
}

fn failed_command(n: u64, session_id: &str, ts: &str, seq: u64, error: &str) -> Value {
    let mut c = command(&uuid(n), session_id, ts, seq, false);
    c["error"] = json!(error);
    c
}

fn end_with(n: u64, session_id: &str, ts: &str, fields: Value) -> Value {
    let mut e = end_1_1(&uuid(n), session_id, ts);
    for (k, v) in object(fields) {
        e[k] = v;
    }
    e
}

/// The dataset:
/// - alpha (in the window): a1 ended 600 s exit 0 with a failed command "boom"; a2 ended
///   3600 s clean; a3 ended 300 s exit 2; a4 active with a failed command "boom"; a5 active
///   (metadata.project "apollo") with a failed command "disk full".
/// - beta: b1 abandoned by the reaper 120 s after its start; b2 ended 30 s by SIGTERM; b3 ended
///   10 s clean.
/// - gamma, outside the window: g1 started just before it (ended), g2 at its end (active).
async fn dataset(store: &dyn Store) {
    let id = |v: &Value| event(v).session_id();
    let a1 = start("alpha", &uuid(1), "2026-03-01T01:00:00Z");
    let a2 = start("alpha", &uuid(2), "2026-03-01T02:00:00Z");
    let a3 = start("alpha", &uuid(3), "2026-03-02T05:00:00Z");
    let mut a4 = start("alpha", &uuid(4), "2026-03-03T10:00:00Z");
    a4["environment"]["cwd"] = json!("/home/ann/src/hermes/");
    let mut a5 = start("alpha", &uuid(5), "2026-03-03T11:00:00Z");
    a5["metadata"] = json!({"project": "apollo"});
    let b1 = start_1_1("beta", &uuid(6), "2026-03-01T12:00:00Z");
    let b2 = start("beta", &uuid(7), "2026-03-02T12:00:00Z");
    let b3 = start("beta", &uuid(8), "2026-03-02T13:00:00Z");
    let g1 = start("gamma", &uuid(9), "2026-02-28T23:59:59Z");
    let g2 = start("gamma", &uuid(10), "2026-03-04T00:00:00Z");
    let (i1, i2, i3, i4, i5) = (id(&a1), id(&a2), id(&a3), id(&a4), id(&a5));
    let (j1, j2, j3, k1) = (id(&b1), id(&b2), id(&b3), id(&g1));
    accept_all(store, &[a1, a2, a3, a4, a5, b1, b2, b3, g1, g2], 0).await;
    accept_all(
        store,
        &[
            command(&uuid(20), &i1, "2026-03-01T01:01:00Z", 1, true),
            failed_command(21, &i1, "2026-03-01T01:02:00Z", 2, "boom"),
            end_with(22, &i1, "2026-03-01T01:10:00Z", json!({"exit_code": 0})),
            end_with(
                23,
                &i2,
                "2026-03-01T03:00:00Z",
                json!({"exit_code": 0, "reason": "exit"}),
            ),
            end_with(24, &i3, "2026-03-02T05:05:00Z", json!({"exit_code": 2})),
            failed_command(25, &i4, "2026-03-03T10:01:00Z", 1, "boom"),
            failed_command(26, &i5, "2026-03-03T11:01:00Z", 1, "disk full"),
            heartbeat(&uuid(27), &j1, "2026-03-01T12:02:00Z"),
            end_with(
                28,
                &j2,
                "2026-03-02T12:00:30Z",
                json!({"signal": "SIGTERM", "reason": "sigterm"}),
            ),
            end_1_0(&j3, "2026-03-02T13:00:10Z"),
            end_1_0(&k1, "2026-03-01T00:10:00Z"),
        ],
        1,
    )
    .await;
    // Only b1 announced heartbeats: the active cutoff reaches it, the legacy one nobody.
    let reaped = store.reap(received(100), received(-100)).await.unwrap();
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!(reaped[0].session_id, j1);
}

fn expected_alpha() -> ComponentSummary {
    ComponentSummary {
        component: "alpha".into(),
        sessions: 5,
        active: 2,
        finished: 3,
        duration_seconds_total: 4500.0,
        failed: 4,
        abandoned: 0,
        commands: 4,
        failed_commands: 3,
        last_started: Some(at("2026-03-03T11:00:00Z")),
        trend: vec![2, 1, 2],
    }
}

fn expected_beta() -> ComponentSummary {
    ComponentSummary {
        component: "beta".into(),
        sessions: 3,
        active: 0,
        finished: 3,
        duration_seconds_total: 160.0,
        failed: 2,
        abandoned: 1,
        commands: 0,
        failed_commands: 0,
        last_started: Some(at("2026-03-02T13:00:00Z")),
        trend: vec![1, 2, 0],
    }
}

pub async fn analytics_summary_aggregates_the_window_per_component(store: &dyn Store) {
    assert!(
        store
            .analytics_summary(window(None))
            .await
            .unwrap()
            .is_empty()
    );
    dataset(store).await;
    let all = store.analytics_summary(window(None)).await.unwrap();
    assert_eq!(all, vec![expected_alpha(), expected_beta()]);
    assert_eq!(
        store.analytics_summary(window(Some("beta"))).await.unwrap(),
        vec![expected_beta()]
    );
    assert!(
        store
            .analytics_summary(window(Some("nobody")))
            .await
            .unwrap()
            .is_empty()
    );
    // A wider window takes gamma in: g1 (ended, 601 s) and g2 (active); 5 day buckets.
    let wide = AnalyticsWindow {
        since: at("2026-02-28T00:00:00Z"),
        until: at("2026-03-05T00:00:00Z"),
        component: Some("gamma".into()),
        components: None,
    };
    let gamma = store.analytics_summary(wide).await.unwrap();
    assert_eq!(gamma.len(), 1);
    assert_eq!(gamma[0].sessions, 2);
    assert_eq!(gamma[0].active, 1);
    assert_eq!(gamma[0].finished, 1);
    assert_eq!(gamma[0].duration_seconds_total, 601.0);
    assert_eq!(gamma[0].failed, 0);
    assert_eq!(gamma[0].trend, vec![1, 0, 0, 0, 1]);
}

pub async fn analytics_common_errors_take_the_most_frequent_failure(store: &dyn Store) {
    dataset(store).await;
    let expected: BTreeMap<String, String> = [
        ("alpha".to_string(), "boom".to_string()),
        // One abandoned and one SIGTERM: the tie goes to the first alphabetically.
        (
            "beta".to_string(),
            "abandoned (heartbeat_timeout)".to_string(),
        ),
    ]
    .into();
    assert_eq!(
        store.analytics_common_errors(window(None)).await.unwrap(),
        expected
    );
    let later = AnalyticsWindow {
        since: at("2026-03-02T00:00:00Z"),
        ..window(None)
    };
    let expected: BTreeMap<String, String> = [
        ("alpha".to_string(), "boom".to_string()),
        ("beta".to_string(), "signal SIGTERM".to_string()),
    ]
    .into();
    assert_eq!(
        store.analytics_common_errors(later).await.unwrap(),
        expected
    );
    let only_a3 = AnalyticsWindow {
        since: at("2026-03-02T00:00:00Z"),
        until: at("2026-03-03T00:00:00Z"),
        component: Some("alpha".into()),
        components: None,
    };
    assert_eq!(
        store.analytics_common_errors(only_a3).await.unwrap(),
        [("alpha".to_string(), "exit code 2".to_string())].into()
    );
}

pub async fn analytics_active_lists_the_newest_with_their_age_and_project(store: &dyn Store) {
    dataset(store).await;
    let now = at("2026-03-04T01:00:00Z");
    let all = store.analytics_active(None, None, 10, now).await.unwrap();
    assert_eq!(all.total, 3);
    let rows: Vec<(&str, &str, i64, &str)> = all
        .active_sessions
        .iter()
        .map(|s| {
            (
                s.component_name.as_str(),
                s.project.as_str(),
                s.duration_seconds,
                s.session_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows.iter().map(|r| (r.0, r.1, r.2)).collect::<Vec<_>>(),
        vec![
            ("gamma", "srv", 3600),
            ("alpha", "apollo", 14 * 3600),
            ("alpha", "hermes", 15 * 3600),
        ]
    );
    assert_eq!(
        all.active_sessions[1].start_time,
        at("2026-03-03T11:00:00Z")
    );
    let alpha = store
        .analytics_active(Some("alpha".into()), None, 1, now)
        .await
        .unwrap();
    assert_eq!(alpha.total, 2);
    assert_eq!(alpha.active_sessions.len(), 1);
    assert_eq!(alpha.active_sessions[0].session_id, rows[1].3);
    let none = store
        .analytics_active(Some("beta".into()), None, 10, now)
        .await
        .unwrap();
    assert_eq!((none.total, none.active_sessions.len()), (0, 0));
}

pub async fn analytics_shapes_and_report_follow_the_original(store: &dyn Store) {
    dataset(store).await;
    let summaries = store.analytics_summary(window(None)).await.unwrap();
    let stats = analytics::session_stats(&summaries, "Last 3 days");
    let rows: Vec<(&str, u64, f64, u64, f64, &str)> = stats
        .iter()
        .map(|s| {
            (
                s.component_name.as_str(),
                s.total_sessions,
                s.avg_duration,
                s.active_sessions,
                s.error_rate,
                s.date_range.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("alpha", 5, 1500.0, 2, 80.0, "Last 3 days"),
            ("beta", 3, 160.0 / 3.0, 0, 200.0 / 3.0, "Last 3 days"),
        ]
    );
    assert_eq!(
        analytics::average_duration(&summaries),
        [
            ("alpha".to_string(), 1500.0),
            ("beta".to_string(), 160.0 / 3.0)
        ]
        .into()
    );
    let usage = analytics::component_usage(&summaries, 10);
    assert_eq!(usage.len(), 2);
    assert_eq!(usage[0].component_name, "alpha");
    assert_eq!(usage[0].session_count, 5);
    assert_eq!(usage[0].total_duration, 4500.0);
    // 100 × (0.5 × 1/5 + 0.3 × 1/4 + 0.2 × 1) = 37.5
    assert!((usage[0].avg_quality_score - 37.5).abs() < 1e-9);
    // 100 × (0.5 × 1/3 + 0.3 × 1 + 0.2 × 2/3) = 60
    assert!((usage[1].avg_quality_score - 60.0).abs() < 1e-9);
    assert_eq!(usage[1].last_active, Some(at("2026-03-02T13:00:00Z")));
    assert_eq!(analytics::component_usage(&summaries, 1).len(), 1);
    let common = store.analytics_common_errors(window(None)).await.unwrap();
    let rates = analytics::error_rates(&summaries, &common);
    assert_eq!(
        rates["alpha"],
        ErrorRate {
            error_rate: 80.0,
            total_sessions: 5,
            failed_sessions: 4,
            most_common_error: Some("boom".into()),
        }
    );
    assert_eq!(rates["beta"].failed_sessions, 2);
    assert_eq!(analytics::trend(&summaries), vec![3, 3, 2]);

    let now = at("2026-03-04T01:00:00Z");
    let report = analytics::report(store, &window(None), "Last 3 days", 10, now)
        .await
        .unwrap();
    assert_eq!(report.session_stats, stats);
    assert_eq!(report.components, usage);
    assert_eq!(report.error_rates, rates);
    assert_eq!(report.active_sessions, 3);
    assert_eq!(report.trend, vec![3, 3, 2]);
    assert_eq!(report.generated_at, now);
}

/// A visibility restriction (`components`, a component-bound `read` token) holds in every
/// read: session pages, latest events, quality, and each analytics query.
pub async fn visibility_restricts_every_read(store: &dyn Store) {
    dataset(store).await;
    let beta = || Some(vec!["beta".to_string()]);
    let seen: Vec<String> = store
        .list_sessions(SessionFilter {
            components: beta(),
            ..all()
        })
        .await
        .unwrap()
        .sessions
        .into_iter()
        .map(|s| s.component)
        .collect();
    assert_eq!(seen, ["beta", "beta", "beta"]);
    let two = store
        .list_sessions(SessionFilter {
            components: Some(vec!["beta".into(), "gamma".into()]),
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(two.sessions.len(), 5);
    // Restricted and filtered to a component it may not see: nothing.
    let none = store
        .list_sessions(SessionFilter {
            component: Some("alpha".into()),
            components: beta(),
            ..all()
        })
        .await
        .unwrap();
    assert!(none.sessions.is_empty());
    let empty = store
        .list_sessions(SessionFilter {
            components: Some(Vec::new()),
            ..all()
        })
        .await
        .unwrap();
    assert!(empty.sessions.is_empty());

    let events = store
        .list_events(EventFilter {
            components: beta(),
            ..all_events()
        })
        .await
        .unwrap();
    assert!(!events.is_empty());
    let beta_ids: Vec<String> = listed(
        store,
        SessionFilter {
            component: Some("beta".into()),
            ..all()
        },
    )
    .await;
    assert!(
        events.iter().all(|e| beta_ids.contains(&e.session_id)),
        "{events:?}"
    );
    let alpha_session = listed(
        store,
        SessionFilter {
            component: Some("alpha".into()),
            ..all()
        },
    )
    .await
    .remove(0);
    let hidden = store
        .list_events(EventFilter {
            session_id: Some(alpha_session),
            components: beta(),
            ..all_events()
        })
        .await
        .unwrap();
    assert!(hidden.is_empty(), "{hidden:?}");

    let quality = store
        .quality_by_component(at("2000-01-01T00:00:00Z"), beta())
        .await
        .unwrap();
    assert_eq!(quality.keys().collect::<Vec<_>>(), ["beta"]);

    let restricted = |component: Option<&str>| AnalyticsWindow {
        components: beta(),
        ..window(component)
    };
    assert_eq!(
        store.analytics_summary(restricted(None)).await.unwrap(),
        vec![expected_beta()]
    );
    assert!(
        store
            .analytics_summary(restricted(Some("alpha")))
            .await
            .unwrap()
            .is_empty()
    );
    let errors = store
        .analytics_common_errors(restricted(None))
        .await
        .unwrap();
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["beta"]);
    let now = at("2026-03-04T01:00:00Z");
    let gamma_only = store
        .analytics_active(None, Some(vec!["gamma".into()]), 10, now)
        .await
        .unwrap();
    assert_eq!(gamma_only.total, 1);
    assert!(
        gamma_only
            .active_sessions
            .iter()
            .all(|s| s.component_name == "gamma")
    );
    let alpha_hidden = store
        .analytics_active(Some("alpha".into()), beta(), 10, now)
        .await
        .unwrap();
    assert_eq!(
        (alpha_hidden.total, alpha_hidden.active_sessions.len()),
        (0, 0)
    );
}
