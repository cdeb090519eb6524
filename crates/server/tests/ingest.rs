//! `POST /v1/events`: envelopes, duplicates, conflicts, order independence, NDJSON.

use serde_json::{Value, json};

use crate::common::{TestServer, command, end, session_id_of, start};

async fn raw_post(server: &TestServer, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = server
        .http
        .post(format!("{}/v1/events", server.url))
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_problems_are_a_4xx_with_a_json_error() {
    let server = TestServer::start().await;
    let one = serde_json::to_vec(&[start("oneiric", "2026-03-01T10:00:00Z")]).unwrap();
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (Some("text/plain"), one.clone(), 415, "Content-Type"),
        (None, one.clone(), 415, "Content-Type"),
        (
            Some("application/json"),
            b"{not json".to_vec(),
            400,
            "not valid JSON",
        ),
        (Some("application/json"), b"[]".to_vec(), 400, "no events"),
        (Some("application/json"), b"42".to_vec(), 400, "array"),
        (
            Some("application/json"),
            vec![0xff, 0xfe, b'['],
            400,
            "not valid UTF-8",
        ),
        (
            Some("application/json"),
            serde_json::to_vec(&vec![json!({}); 1001]).unwrap(),
            413,
            "at most 1000",
        ),
        (
            Some("application/json"),
            vec![b' '; session_buddy_server::MAX_BODY_BYTES + 1],
            413,
            "larger than",
        ),
        (
            Some("application/json"),
            format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            400,
            "deeper than 64",
        ),
    ];
    for (ct, body, want, needle) in cases {
        let (status, v) = raw_post(&server, ct, body).await;
        assert_eq!(status, want, "{ct:?} {v}");
        let error = v["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(needle),
            "{ct:?}: '{error}' should mention '{needle}'"
        );
    }
    // The server still serves, and nothing was stored by the refused requests.
    let (_, page) = server.get("/v1/sessions").await;
    assert_eq!(page["sessions"].as_array().unwrap().len(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_event_never_spoils_its_neighbours() {
    let server = TestServer::start().await;
    let good = start("crackerjack", "2026-03-01T10:00:00Z");
    let mut bad = start("crackerjack", "2026-03-01T10:00:01Z");
    bad["pid"] = json!(0);
    let unknown =
        json!({"event_type": "session_restart", "event_id": uuid::Uuid::new_v4().to_string()});
    let results = server.post_events(&[bad, good.clone(), unknown]).await;
    assert_eq!(results[0]["status"], "rejected");
    assert!(results[0]["error"].as_str().unwrap().starts_with("pid:"));
    assert_eq!(results[1]["status"], "accepted");
    assert_eq!(results[1]["session_id"], session_id_of(&good));
    assert_eq!(results[2]["status"], "rejected");
    assert!(
        results[2]["error"]
            .as_str()
            .unwrap()
            .starts_with("event_type:")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_conflicts() {
    let server = TestServer::start().await;
    let s = start("akosha", "2026-03-01T10:00:00Z");
    let id = session_id_of(&s);
    let c = command(&id, 1, "2026-03-01T10:00:05Z", true);
    let e = end(&id, "2026-03-01T10:01:00Z", 0);
    let batch = vec![s.clone(), c.clone(), e.clone()];
    let first = server.post_events(&batch).await;
    assert!(first.iter().all(|r| r["status"] == "accepted"), "{first:?}");
    let again = server.post_events(&batch).await;
    assert!(
        again.iter().all(|r| r["status"] == "duplicate"),
        "{again:?}"
    );
    // Same event id, different content: rejected, naming event_id; nothing changes.
    let mut changed = c.clone();
    changed["success"] = json!(false);
    let r = &server.post_events(&[changed]).await[0];
    assert_eq!(r["status"], "rejected");
    assert!(r["error"].as_str().unwrap().starts_with("event_id:"), "{r}");
    // A second end (new id) is a duplicate: a session has one end.
    let r = &server
        .post_events(&[end(&id, "2026-03-01T11:00:00Z", 3)])
        .await[0];
    assert_eq!(r["status"], "duplicate", "{r}");
    // A different start that maps to the same session id is rejected.
    let mut twin = s.clone();
    let orig = s["event_id"].as_str().unwrap().to_string();
    twin["event_id"] = json!(format!(
        "00000000-0000-4000-8000-{}",
        &orig[orig.len() - 12..]
    ));
    let r = &server.post_events(&[twin]).await[0];
    assert_eq!(r["status"], "rejected", "{r}");
    assert!(r["error"].as_str().unwrap().starts_with("event_id:"), "{r}");
    let (_, sess) = server.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(sess["command_count"], 1);
    assert_eq!(sess["error_count"], 0);
    assert_eq!(sess["exit_code"], 0);
    assert_eq!(sess["duration_seconds"].as_f64().unwrap(), 60.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_before_their_start_are_kept_and_merged() {
    let server = TestServer::start().await;
    let s = start("fastblocks", "2026-03-02T08:00:00.250Z");
    let id = session_id_of(&s);
    let early = vec![
        end(&id, "2026-03-02T08:10:00.750Z", 1),
        command(&id, 2, "2026-03-02T08:05:00Z", false),
        command(&id, 1, "2026-03-02T08:01:00Z", true),
    ];
    let results = server.post_events(&early).await;
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "{results:?}"
    );
    // Pending sessions are not listed until their start arrives.
    let (status, _) = server.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(status, 404);
    let (_, page) = server.get("/v1/sessions").await;
    assert_eq!(page["sessions"].as_array().unwrap().len(), 0);
    server.post_events(&[s]).await;
    let (status, sess) = server.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(sess["status"], "ended");
    assert_eq!(sess["duration_seconds"].as_f64().unwrap(), 600.5);
    assert_eq!(sess["command_count"], 2);
    assert_eq!(sess["error_count"], 1);
    assert_eq!(sess["exit_code"], 1);
    // Secrets in arguments are redacted before storage.
    let (_, timeline) = server.get(&format!("/v1/sessions/{id}/events")).await;
    let events = timeline["events"].as_array().unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["session_start", "command", "command", "session_end"]
    );
    assert_eq!(events[1]["payload"]["args"], "--token [REDACTED] --verbose");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_lines_are_events_and_a_bad_line_is_its_own_rejection() {
    let server = TestServer::start().await;
    let a = start("oneiric", "2026-03-03T09:00:00Z");
    let b = start("oneiric", "2026-03-03T09:00:01Z");
    let body = format!("{a}\n{{broken\n\n{b}\n");
    let (status, v) = raw_post(&server, Some("application/x-ndjson"), body.into_bytes()).await;
    assert_eq!(status, 200);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["status"], "accepted");
    assert_eq!(results[1]["status"], "rejected");
    assert!(results[1]["error"].as_str().unwrap().contains("line 2"));
    assert_eq!(results[2]["status"], "accepted");
    server.stop().await;
}
