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

    let quality = session_buddy_store::quality_by_component(
        store,
        at("2000-01-01T00:00:00Z"),
        at("2100-01-01T00:00:00Z"),
        beta(),
    )
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

/// A small deterministic generator (xorshift), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One step of a random history, applied alike to two stores.
enum Step {
    Events(Vec<Value>),
    /// Abandons what was last received before delivery `n`.
    Reap(i64),
    /// Retention: the finished sessions started before.
    Prune(DateTime<Utc>),
    Erase(String),
    /// Brings the rollups up to date (one of the two stores only).
    Refresh,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A random history over three components and three days: starts (some on an hour's first
/// microsecond), commands that succeed or fail with one of a few errors, ends of every kind,
/// events delivered before their start, reaping, events after reaping, retention and erasure,
/// with refreshes of the rollups in between.
fn history(seed: u64) -> Vec<Step> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let t0 = at("2026-03-01T00:00:00Z");
    let components = ["alpha", "beta", "gamma"];
    let errors = [Some("boom"), Some("disk full"), None];
    let mut n = 1000u64;
    let mut next_id = || {
        n += 1;
        uuid(n)
    };
    let mut per_session: Vec<Vec<Value>> = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..(20 + rng.below(25)) {
        let component = components[rng.below(3) as usize];
        let hour = TimeDelta::hours(rng.below(72) as i64);
        let offset = if rng.chance(20) {
            TimeDelta::zero()
        } else {
            TimeDelta::microseconds(rng.below(3_600_000_000) as i64)
        };
        let started = t0 + hour + offset;
        let start_event = if rng.chance(50) {
            start(component, &next_id(), &rfc3339(started))
        } else {
            start_1_1(component, &next_id(), &rfc3339(started))
        };
        let id = event(&start_event).session_id();
        let mut events = vec![start_event];
        let mut t = started;
        for seq in 1..=rng.below(4) {
            t += TimeDelta::seconds(1 + rng.below(1800) as i64);
            let ok = rng.chance(60);
            let mut c = command(&next_id(), &id, &rfc3339(t), seq, ok);
            if !ok && let Some(error) = errors[rng.below(3) as usize] {
                c["error"] = json!(error);
            }
            events.push(c);
        }
        if rng.chance(75) {
            t += TimeDelta::seconds(1 + rng.below(7200) as i64);
            let fields = match rng.below(5) {
                0 => json!({"exit_code": 0}),
                1 => json!({"exit_code": 2}),
                2 => json!({"signal": "SIGTERM"}),
                3 => json!({"reason": "error"}),
                _ => json!({}),
            };
            let end_id = next_id();
            events.push(end_with(0, &id, &rfc3339(t), fields));
            if let Some(last) = events.last_mut() {
                last["event_id"] = json!(end_id);
            }
        }
        // Some sessions arrive out of order: events before their start.
        if rng.chance(25) {
            events.rotate_left(1);
        }
        per_session.push(events);
        ids.push(id);
    }
    let mut steps = Vec::new();
    let mut delivery = 0i64;
    loop {
        let live: Vec<usize> = (0..per_session.len())
            .filter(|&i| !per_session[i].is_empty())
            .collect();
        if live.is_empty() {
            break;
        }
        let mut batch = Vec::new();
        for _ in 0..=rng.below(6) {
            let i = live[rng.below(live.len() as u64) as usize];
            if !per_session[i].is_empty() {
                batch.push(per_session[i].remove(0));
            }
        }
        steps.push(Step::Events(batch));
        delivery += 1;
        match rng.below(12) {
            0..=2 => steps.push(Step::Refresh),
            3 => steps.push(Step::Reap(delivery - rng.below(3) as i64)),
            4 => steps.push(Step::Prune(t0 + TimeDelta::hours(rng.below(48) as i64))),
            5 if rng.chance(50) => steps.push(Step::Erase(
                ids[rng.below(ids.len() as u64) as usize].clone(),
            )),
            _ => {}
        }
    }
    steps
}

async fn apply(store: &dyn Store, step: &Step, delivery: i64, refresh: bool) {
    match step {
        Step::Events(values) => {
            let events = values.iter().map(event).collect::<Vec<_>>();
            store.ingest(events, received(delivery)).await.unwrap();
        }
        Step::Reap(n) => {
            store.reap(received(*n), received(*n)).await.unwrap();
        }
        Step::Prune(before) => while store.prune(*before, 7).await.unwrap().sessions == 7 {},
        Step::Erase(id) => {
            let entry = session_buddy_store::AuditEntry {
                id: 0,
                at: received(delivery),
                actor: "test".into(),
                action: "session.erase".into(),
                session_id: Some(id.clone()),
                detail: None,
            };
            store.erase_session(id, entry).await.unwrap();
        }
        Step::Refresh if refresh => refresh_all(store).await,
        Step::Refresh => {}
    }
}

async fn refresh_all(store: &dyn Store) {
    let later = at("2027-01-01T00:00:00Z");
    while store.refresh_rollups(later).await.unwrap() > 0 {}
}

/// Windows over the history: aligned to hours and not, one component and all, narrower than
/// an hour, and the whole span.
fn windows(rng: &mut Rng) -> Vec<AnalyticsWindow> {
    let t0 = at("2026-03-01T00:00:00Z");
    let mut out = vec![AnalyticsWindow {
        since: t0 - TimeDelta::days(1),
        until: t0 + TimeDelta::days(5),
        component: None,
        components: None,
    }];
    for i in 0..8 {
        let since = t0 + TimeDelta::microseconds(rng.below(72 * 3_600_000_000) as i64);
        let since = if i % 3 == 0 {
            t0 + TimeDelta::hours((since - t0).num_hours())
        } else {
            since
        };
        let span = if i % 4 == 1 {
            TimeDelta::minutes(1 + rng.below(50) as i64)
        } else {
            TimeDelta::hours(1 + rng.below(60) as i64)
        };
        out.push(AnalyticsWindow {
            since,
            until: since + span,
            component: (i % 2 == 0).then(|| ["alpha", "beta", "gamma"][i % 3].to_string()),
            components: (i == 5).then(|| vec!["alpha".to_string(), "gamma".to_string()]),
        });
    }
    out
}

async fn answers(
    store: &dyn Store,
    windows: &[AnalyticsWindow],
) -> Vec<(Vec<ComponentSummary>, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for w in windows {
        out.push((
            store.analytics_summary(w.clone()).await.unwrap(),
            store.analytics_common_errors(w.clone()).await.unwrap(),
        ));
    }
    out
}

/// The rollups give the numbers of the full computation: `rolled` lives the history with its
/// rollups refreshed now and then, `full` the same history never refreshed (every hour read
/// from the sessions); every window's answers are identical, before and after a last refresh.
pub async fn rollups_match_the_full_computation(rolled: &dyn Store, full: &dyn Store, seed: u64) {
    let steps = history(seed);
    for (i, step) in steps.iter().enumerate() {
        apply(rolled, step, i as i64, true).await;
        apply(full, step, i as i64, false).await;
    }
    let mut rng = Rng(seed ^ 0x5151);
    let windows = windows(&mut rng);
    let expected = answers(full, &windows).await;
    assert!(
        expected[0].0.iter().map(|s| s.sessions).sum::<u64>() > 0,
        "seed {seed}: the history stores sessions"
    );
    assert_eq!(
        answers(rolled, &windows).await,
        expected,
        "seed {seed}, as lived"
    );
    refresh_all(rolled).await;
    assert_eq!(
        answers(rolled, &windows).await,
        expected,
        "seed {seed}, refreshed"
    );
}
