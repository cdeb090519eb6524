//! Redaction over HTTP: what ingest stores, `POST /v1/admin/redact` over data older rules
//! stored, re-sent originals; empty optional strings; `GET /v1/events` order and unknown ids.

use serde_json::{Value, json};
use session_buddy_events::{Event, parse_event};
use session_buddy_store::Store as _;
use session_buddy_store_sqlite::{SqliteStore, SyncMode};

use crate::common::{TestServer, command, session_id_of, start};

const TYPED: &str = "fetch http://bob:hunter2@example.com/x -H 'Authorization: Basic Ym9iOmh1bnRlcjI=' AKIAIOSFODNN7EXAMPLE";
const REDACTED: &str =
    "fetch http://bob:[REDACTED]@example.com/x -H 'Authorization: Basic [REDACTED]' [REDACTED]";

async fn post_json(s: &TestServer, path: &str, body: &str) -> (u16, Value) {
    let r = s
        .http
        .post(format!("{}{path}", s.url))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn args_of(s: &TestServer, session_id: &str, event_id: &str) -> Value {
    let (_, timeline) = s.get(&format!("/v1/sessions/{session_id}/events")).await;
    timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == event_id)
        .unwrap_or_else(|| panic!("{event_id} not in {timeline}"))["payload"]["args"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_redacted_on_the_way_in() {
    let s = TestServer::start().await;
    let st = start("oneiric", "2026-03-01T10:00:00Z");
    let id = session_id_of(&st);
    let mut c = command(&id, 1, "2026-03-01T10:00:01Z", true);
    c["args"] = json!(TYPED);
    let results = s.post_events(&[st, c.clone()]).await;
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "{results:?}"
    );
    assert_eq!(
        args_of(&s, &id, c["event_id"].as_str().unwrap()).await,
        REDACTED
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_redact_rewrites_what_older_rules_stored_and_resent_originals_stay_duplicates() {
    let s = TestServer::start().await;
    let st = start("oneiric", "2026-03-01T10:00:00Z");
    let id = session_id_of(&st);
    assert_eq!(s.post_events(&[st]).await[0]["status"], "accepted");
    let mut original = command(&id, 1, "2026-03-01T10:00:01Z", true);
    original["args"] = json!(TYPED);
    let event_id = original["event_id"].as_str().unwrap().to_string();
    // Stored as a server with older rules stored it: the arguments as typed. Straight into
    // the server's database, as no current face stores unredacted arguments.
    {
        let Ok(Event::Command(mut c)) = parse_event(&original) else {
            panic!("not a command")
        };
        c.args = Some(TYPED.to_string());
        let store = SqliteStore::open(&s.db_path, SyncMode::Normal).unwrap();
        let out = store
            .ingest(vec![Event::Command(c)], chrono::Utc::now())
            .await
            .unwrap();
        assert_eq!(out[0].status, session_buddy_events::EventOutcome::Accepted);
        store.close().await;
    }
    assert_eq!(args_of(&s, &id, &event_id).await, TYPED);
    // Re-sent before the rules are applied: a duplicate.
    assert_eq!(
        s.post_events(&[original.clone()]).await[0]["status"],
        "duplicate"
    );

    let (status, dry) = post_json(&s, "/v1/admin/redact", "").await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry, json!({"examined": 1, "changed": 1, "applied": false}));
    assert_eq!(args_of(&s, &id, &event_id).await, TYPED);

    let (status, applied) = post_json(&s, "/v1/admin/redact", r#"{"apply": true}"#).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(
        applied,
        json!({"examined": 1, "changed": 1, "applied": true})
    );
    assert_eq!(args_of(&s, &id, &event_id).await, REDACTED);
    let (_, again) = post_json(&s, "/v1/admin/redact", r#"{"apply": true}"#).await;
    assert_eq!(again["changed"], 0);

    // The unredacted original re-sent after: still a duplicate, and different content under
    // its id still a conflict.
    assert_eq!(
        s.post_events(&[original.clone()]).await[0]["status"],
        "duplicate"
    );
    let mut other = original;
    other["args"] = json!("fetch http://bob:hunter2@example.com/y");
    let r = s.post_events(&[other]).await;
    assert_eq!(r[0]["status"], "rejected", "{r:?}");
    assert!(
        r[0]["error"].as_str().unwrap().starts_with("event_id:"),
        "{r:?}"
    );
    let (_, session) = s.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(session["command_count"], 1);

    for bad in ["[1]", r#"{"apply": "yes"}"#, "{"] {
        let (status, body) = post_json(&s, "/v1/admin/redact", bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("apply"), "{body}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_optional_strings_are_absent_and_empty_required_ones_are_rejected() {
    let s = TestServer::start().await;
    let mut st = start("oneiric", "2026-03-01T10:00:00Z");
    st["component_version"] = json!("");
    let id = session_id_of(&st);
    let mut c = command(&id, 1, "2026-03-01T10:00:01Z", false);
    c["args"] = json!("");
    c["error"] = json!("");
    let mut end = crate::common::end(&id, "2026-03-01T10:01:00Z", 0);
    end["reason"] = json!("");
    let mut empty_command = command(&id, 2, "2026-03-01T10:00:02Z", true);
    empty_command["command"] = json!("");
    let results = s.post_events(&[st, c.clone(), empty_command, end]).await;
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["accepted", "accepted", "rejected", "accepted"],
        "{results:?}"
    );
    assert_eq!(results[2]["error"], "command: must not be empty");
    let (_, timeline) = s.get(&format!("/v1/sessions/{id}/events")).await;
    let stored = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == c["event_id"])
        .unwrap()["payload"]
        .clone();
    assert!(stored.get("args").is_none_or(Value::is_null), "{stored}");
    assert!(stored.get("error").is_none_or(Value::is_null), "{stored}");
    let (_, session) = s.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(session["status"], "ended");
    assert_eq!(session["component_version"], Value::Null);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_list_by_their_time_and_an_unknown_session_is_a_404() {
    let s = TestServer::start().await;
    let st = start("oneiric", "2026-03-01T10:00:00Z");
    let id = session_id_of(&st);
    let late = command(&id, 2, "2026-03-01T10:05:00Z", true);
    let early = command(&id, 1, "2026-03-01T10:01:00Z", true);
    // Arrival order: start, the later command, then the earlier one.
    for e in [&st, &late, &early] {
        assert_eq!(
            s.post_events(std::slice::from_ref(e)).await[0]["status"],
            "accepted"
        );
    }
    let (status, page) = s.get("/v1/events").await;
    assert_eq!(status, 200);
    let ids: Vec<&Value> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event_id"])
        .collect();
    assert_eq!(
        ids,
        [&late["event_id"], &early["event_id"], &st["event_id"]]
    );

    let unknown = "nothing-20260301-100000-000000";
    for path in [
        format!("/v1/events?session_id={unknown}"),
        format!("/v1/events?session_id={unknown}&type=command"),
    ] {
        let (status, body) = s.get(&path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"], format!("no session '{unknown}'"));
    }
    // A known session without events of that type is an empty list.
    let (status, page) = s
        .get(&format!("/v1/events?session_id={id}&type=heartbeat"))
        .await;
    assert_eq!((status, page["events"].as_array().unwrap().len()), (200, 0));
    // A pending session (its start not arrived) is known by its events.
    let ghost = "ghost-20260301-100000-000001";
    assert_eq!(
        s.post_events(&[command(ghost, 1, "2026-03-01T10:00:00Z", true)])
            .await[0]["status"],
        "accepted"
    );
    let (status, page) = s
        .get(&format!("/v1/events?session_id={ghost}&type=heartbeat"))
        .await;
    assert_eq!((status, page["events"].as_array().unwrap().len()), (200, 0));
    s.stop().await;
}
