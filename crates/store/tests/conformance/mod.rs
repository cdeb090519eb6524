//! The `Store` conformance suite: the cases every backend must pass, written against the trait
//! only.
//!
//! A backend runs them with `conformance_suite!(fresh, restart)`: `fresh().await` gives a new,
//! empty backend (any value with `fn store(&self) -> &dyn Store`), `restart(backend).await`
//! closes its store and opens it again on the same data. Events are built from JSON and go
//! through `parse_event`, as the server validates them.

pub mod analytics;
pub mod feed;
pub mod imported;
pub mod ingest;
pub mod queries;
pub mod reaper;
pub mod recordings;
pub mod redaction;
pub mod restart;
pub mod retention;
pub mod search;
pub mod tokens;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use session_buddy_events::{
    Event, EventOutcome, Session, StoredEvent, parse_event, parse_timestamp,
};
use session_buddy_store::{
    EndOutcome, EventFilter, IngestOutcome, MAX_PAGE, SessionEffect, SessionFilter, Store,
};

/// One `#[tokio::test]` per case, each on a fresh backend, plus the restart case. With
/// `available = f`, a case first asks `f()` whether the backend can run here and returns early
/// when it cannot (a backend that needs a server decides there whether to skip or fail).
macro_rules! conformance_suite {
    ($fresh:path, $restart:path) => {
        $crate::conformance::conformance_suite!($fresh, $restart, available = $crate::conformance::always);
    };
    ($fresh:path, $restart:path, available = $available:path) => {
        $crate::conformance::conformance_suite!(@cases $fresh, $available;
            ingest::start_records_every_field_of_a_1_0_start,
            ingest::start_session_id_follows_the_rule,
            ingest::start_records_1_1_fields_and_defaults,
            ingest::end_closes_the_session_with_the_exact_duration,
            ingest::end_records_1_1_exit_code_and_reason,
            ingest::end_outcome_reflects_exit_signal_reason_and_failed_commands,
            ingest::negative_duration_is_clamped_to_zero,
            ingest::same_start_twice_is_a_duplicate,
            ingest::same_event_id_with_other_content_is_rejected,
            ingest::start_colliding_with_a_stored_session_id_is_rejected,
            ingest::rule_2_ids_keep_apart_what_rule_1_ids_collide,
            ingest::second_end_is_a_duplicate,
            ingest::end_before_start_is_merged_when_the_start_arrives,
            ingest::commands_and_heartbeats_before_start_are_merged,
            ingest::commands_count_and_touch_the_session,
            ingest::heartbeats_touch_the_session,
            ingest::batch_outcomes_follow_the_input_order,
            queries::list_sessions_newest_first_with_every_filter,
            queries::cursor_pagination_visits_every_session_once,
            queries::invalid_cursor_is_an_invalid_query,
            queries::get_session_of_unknown_id_is_none,
            queries::get_sessions_reads_the_stored_ones_at_once,
            queries::session_events_are_the_timeline_in_time_order,
            queries::list_events_filters_and_limits,
            queries::active_by_component_counts_active_sessions,
            queries::quality_by_component_counts_per_component,
            queries::health_reports_a_migrated_schema,
            queries::timeline_pages_are_the_timeline_in_order,
            analytics::analytics_summary_aggregates_the_window_per_component,
            analytics::analytics_common_errors_take_the_most_frequent_failure,
            analytics::analytics_active_lists_the_newest_with_their_age_and_project,
            analytics::analytics_shapes_and_report_follow_the_original,
            analytics::visibility_restricts_every_read,
            reaper::silent_sessions_are_abandoned_by_their_ttl,
            reaper::a_late_real_end_wins,
            reaper::an_event_after_reaping_revives_the_session,
            imported::an_old_imported_session_without_an_end_is_abandoned_at_its_last_event,
            imported::a_recent_imported_session_is_reaped_by_its_event_time,
            imported::a_live_session_with_a_skewed_clock_is_judged_by_receipt,
            imported::imported_history_over_several_batches_is_abandoned_once,
            imported::an_imported_session_with_recent_events_comes_back,
            retention::prune_deletes_old_finished_sessions_in_batches,
            retention::events_in_time_order_pages_through_everything_once,
            retention::export_events_writes_every_event_once_in_time_order,
            retention::export_sessions_renders_each_page_and_counts_them,
            tokens::revoked_tokens_are_recorded_and_listed_until_they_expire,
            redaction::redact_stored_rewrites_what_older_rules_let_through,
            redaction::a_resent_original_stays_a_duplicate_across_redaction,
            redaction::list_events_without_a_session_follow_event_time_not_arrival,
            search::search_finds_a_substring_of_each_field_ignoring_case,
            search::search_treats_special_characters_literally,
            search::search_combines_with_the_filters_and_the_cursor,
            search::search_of_fewer_than_three_characters_is_refused,
            search::search_finds_commands_sent_before_the_start_and_forgets_pruned_sessions,
            feed::feed_returns_the_events_after_a_position_in_order,
            feed::last_command_is_the_latest_command_stored,
            recordings::chunks_are_stored_once_per_seq_and_read_back_in_order,
            recordings::an_output_chunk_given_to_ingest_is_rejected,
            recordings::the_chunk_past_the_cap_truncates_the_recording,
            recordings::a_recorder_truncation_is_kept_and_shown,
            recordings::erase_session_removes_the_session_its_events_and_its_recording,
            recordings::audit_log_is_newest_first_per_session_and_limited,
            recordings::prune_recordings_deletes_only_those_whose_newest_chunk_is_older,
            recordings::recorded_sessions_page_in_session_id_order,
            recordings::pruning_a_session_removes_its_recording,
            recordings::concurrent_chunks_neither_deadlock_nor_pass_the_cap,
        );

        #[tokio::test]
        async fn rollups_match_the_full_computation() {
            if !$available() {
                return;
            }
            for seed in 1..=6 {
                let (rolled, full) = ($fresh().await, $fresh().await);
                $crate::conformance::analytics::rollups_match_the_full_computation(
                    rolled.store(),
                    full.store(),
                    seed,
                )
                .await;
            }
        }

        #[tokio::test]
        async fn restart_keeps_everything() {
            if !$available() {
                return;
            }
            let backend = $fresh().await;
            let before = $crate::conformance::restart::before_restart(backend.store()).await;
            let backend = $restart(backend).await;
            $crate::conformance::restart::after_restart(backend.store(), before).await;
        }
    };
    (@cases $fresh:path, $available:path; $($module:ident::$case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                if !$available() {
                    return;
                }
                let backend = $fresh().await;
                $crate::conformance::$module::$case(backend.store()).await;
            }
        )+
    };
}
pub(crate) use conformance_suite;

/// The default `available`: the backend always runs.
#[allow(dead_code)] // unused by backends that pass their own
pub fn always() -> bool {
    true
}

// ---- the original's sample events (fixtures/upstream) ----

/// `start-mahavishnu-python-emitter.json`.
pub const MAHAVISHNU: &str = "mahavishnu-20260206-220458-0f9e8d";
/// `start-oneiric-docs-sample.json`.
pub const ONEIRIC: &str = "oneiric-20260206-123456-440000";

pub fn mahavishnu_start() -> Value {
    json!({
        "event_version": "1.0",
        "event_id": "0b7e4c1a-9a51-4f0e-8d7a-3c2b1a0f9e8d",
        "event_type": "session_start",
        "component_name": "mahavishnu",
        "shell_type": "MahavishnuShell",
        "timestamp": "2026-02-06T22:04:58.123456+00:00",
        "pid": 48213,
        "user": {"username": "les", "home": "/Users/les"},
        "hostname": "les-mbp.local",
        "environment": {
            "python_version": "3.13.1",
            "platform": "macOS-15.2-arm64-arm-64bit",
            "cwd": "/Users/les/Projects/mahavishnu"
        },
        "metadata": {"component_version": "0.1.0", "adapters": ["llamaindex", "prefect", "agno"]}
    })
}

/// `end-duration-none.json`: 302.876545 s after [`mahavishnu_start`].
pub fn mahavishnu_end() -> Value {
    json!({
        "event_type": "session_end",
        "session_id": MAHAVISHNU,
        "timestamp": "2026-02-06T22:10:01.000001+00:00",
        "metadata": {"duration_seconds": null}
    })
}

pub fn oneiric_start() -> Value {
    json!({
        "event_version": "1.0",
        "event_id": "550e8400-e29b-41d4-a716-446655440000",
        "event_type": "session_start",
        "component_name": "oneiric",
        "shell_type": "OneiricShell",
        "timestamp": "2026-02-06T12:34:56.789Z",
        "pid": 12345,
        "user": {"username": "john", "home": "/home/john"},
        "hostname": "server01",
        "environment": {
            "python_version": "3.13.0",
            "platform": "Linux-6.5.0-x86_64",
            "cwd": "/home/john/projects/oneiric"
        },
        "metadata": {"version": "0.5.1", "adapters": [], "component_type": "foundation"}
    })
}

/// `end-docs-sample.json`: 300 s after [`oneiric_start`].
pub fn oneiric_end() -> Value {
    json!({
        "event_type": "session_end",
        "session_id": ONEIRIC,
        "timestamp": "2026-02-06T12:39:56.789Z",
        "metadata": {"exit_reason": "user_exit"}
    })
}

// ---- event builders ----

/// A distinct event id whose last 6 hex digits are those of `n`.
pub fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// A 1.0 start (the original's shape).
pub fn start(component: &str, event_id: &str, timestamp: &str) -> Value {
    json!({
        "event_version": "1.0",
        "event_id": event_id,
        "event_type": "session_start",
        "component_name": component,
        "shell_type": "TestShell",
        "timestamp": timestamp,
        "pid": 4242,
        "user": {"username": "ann", "home": "/home/ann"},
        "hostname": "host1",
        "environment": {"python_version": "3.13.0", "platform": "Linux-6.5.0-x86_64", "cwd": "/srv"},
        "metadata": {}
    })
}

/// A 1.1 start (ours): a runtime instead of a Python version, heartbeats announced.
pub fn start_1_1(component: &str, event_id: &str, timestamp: &str) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": event_id,
        "event_type": "session_start",
        "component_name": component,
        "shell_type": "RustShell",
        "timestamp": timestamp,
        "pid": 777,
        "user": {"username": "bob", "home": "/home/bob"},
        "hostname": "host2",
        "environment": {"platform": "Linux-6.8.0-aarch64", "cwd": "/opt", "runtime": "rust 1.95"},
        "metadata": {},
        "heartbeat_interval_seconds": 30
    })
}

/// A 1.0 end: no event id.
pub fn end_1_0(session_id: &str, timestamp: &str) -> Value {
    json!({
        "event_type": "session_end",
        "session_id": session_id,
        "timestamp": timestamp,
        "metadata": {}
    })
}

/// A 1.1 end; add `exit_code`, `signal`, `reason` as needed.
pub fn end_1_1(event_id: &str, session_id: &str, timestamp: &str) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": event_id,
        "event_type": "session_end",
        "session_id": session_id,
        "timestamp": timestamp,
        "metadata": {}
    })
}

pub fn command(
    event_id: &str,
    session_id: &str,
    timestamp: &str,
    seq: u64,
    success: bool,
) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": event_id,
        "event_type": "command",
        "session_id": session_id,
        "timestamp": timestamp,
        "seq": seq,
        "command": "status",
        "success": success
    })
}

pub fn heartbeat(event_id: &str, session_id: &str, timestamp: &str) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": event_id,
        "event_type": "heartbeat",
        "session_id": session_id,
        "timestamp": timestamp
    })
}

/// Validates a test event as the server does.
pub fn event(value: &Value) -> Event {
    parse_event(value).unwrap_or_else(|e| panic!("test event does not validate ({e}): {value}"))
}

pub fn at(timestamp: &str) -> DateTime<Utc> {
    parse_timestamp(timestamp).unwrap()
}

/// The server's receive time of the `n`th delivery.
pub fn received(n: i64) -> DateTime<Utc> {
    at("2026-06-01T00:00:00Z") + TimeDelta::seconds(n)
}

pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        other => panic!("not a JSON object: {other}"),
    }
}

// ---- store calls ----

/// Ingests one batch received at `received(n)`.
pub async fn ingest(store: &dyn Store, values: &[Value], n: i64) -> Vec<IngestOutcome> {
    let events = values.iter().map(event).collect::<Vec<_>>();
    let outcomes = store.ingest(events, received(n)).await.unwrap();
    assert_eq!(outcomes.len(), values.len(), "one outcome per event");
    outcomes
}

pub async fn ingest_one(store: &dyn Store, value: &Value, n: i64) -> IngestOutcome {
    ingest(store, std::slice::from_ref(value), n)
        .await
        .remove(0)
}

/// Ingests each event in its own batch and checks each was accepted.
pub async fn accept_all(store: &dyn Store, values: &[Value], n: i64) -> Vec<IngestOutcome> {
    let mut outcomes = Vec::new();
    for value in values {
        let out = ingest_one(store, value, n).await;
        assert_eq!(out.status, EventOutcome::Accepted, "{value}: {out:?}");
        outcomes.push(out);
    }
    outcomes
}

pub async fn session(store: &dyn Store, session_id: &str) -> Session {
    store
        .get_session(session_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("session {session_id} is not stored"))
}

/// Every session, one page.
pub fn all() -> SessionFilter {
    SessionFilter {
        limit: MAX_PAGE,
        ..SessionFilter::default()
    }
}

/// The ids of the sessions `filter` lists, checking they fit one page.
pub async fn listed(store: &dyn Store, filter: SessionFilter) -> Vec<String> {
    let page = store.list_sessions(filter.clone()).await.unwrap();
    assert_eq!(page.next_cursor, None, "{filter:?} is one page");
    page.sessions.into_iter().map(|s| s.session_id).collect()
}

/// Every event, newest first.
pub fn all_events() -> EventFilter {
    EventFilter {
        limit: MAX_PAGE,
        ..EventFilter::default()
    }
}

pub async fn active(store: &dyn Store) -> BTreeMap<String, u64> {
    store.active_by_component().await.unwrap()
}

pub fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(c, n)| ((*c).to_string(), *n)).collect()
}

pub fn event_ids(events: &[StoredEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_id.clone()).collect()
}

/// The event id a test event is stored under.
pub fn stored_id(value: &Value) -> String {
    event(value).storage_id().hyphenated().to_string()
}

/// The stored form of a test event received at `received(n)`.
pub fn stored(value: &Value, n: i64) -> StoredEvent {
    let e = event(value);
    StoredEvent {
        event_id: e.storage_id().hyphenated().to_string(),
        event_type: e.event_type().as_str().to_string(),
        session_id: e.session_id(),
        timestamp: e.timestamp(),
        received_at: received(n),
        seq: match &e {
            Event::Command(c) => Some(c.seq),
            _ => None,
        },
        payload: serde_json::to_value(&e).unwrap(),
    }
}

// ---- expected outcomes ----

/// Accepted; `component` is `Some` exactly when the session's start is stored.
pub fn accepted(
    session_id: &str,
    component: Option<&str>,
    effects: Vec<SessionEffect>,
) -> IngestOutcome {
    IngestOutcome {
        status: EventOutcome::Accepted,
        session_id: session_id.to_string(),
        error: None,
        component: component.map(str::to_string),
        session_known: component.is_some(),
        effects,
    }
}

pub fn duplicate(session_id: &str, component: Option<&str>) -> IngestOutcome {
    IngestOutcome {
        status: EventOutcome::Duplicate,
        ..accepted(session_id, component, Vec::new())
    }
}

/// Rejected, naming `event_id`, with no effect.
#[track_caller]
pub fn assert_rejected_event_id(out: &IngestOutcome, session_id: &str) {
    assert_eq!(out.status, EventOutcome::Rejected, "{out:?}");
    assert_eq!(out.session_id, session_id, "{out:?}");
    let error = out.error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("event_id:"),
        "the error names event_id: {out:?}"
    );
    assert!(out.effects.is_empty(), "{out:?}");
}

pub fn started(component: &str, shell_type: &str) -> SessionEffect {
    SessionEffect::Started {
        component: component.to_string(),
        shell_type: shell_type.to_string(),
    }
}

pub fn ended(component: &str, outcome: EndOutcome, duration_seconds: f64) -> SessionEffect {
    SessionEffect::Ended {
        component: component.to_string(),
        outcome,
        duration_seconds,
        was_abandoned: false,
    }
}
