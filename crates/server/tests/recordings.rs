//! Recordings through the REST face with authentication on: an `emit` token bound to a
//! component writes only that component's chunks; reading a recording needs the `recordings`
//! scope (not `read`), stays within the token's components, and every read is audited.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use session_buddy_events::recording::{Frame, FrameKind, parse_asciicast};
use session_buddy_server::auth::mint_token;

use crate::auth::{SECRET, claims, secured, token};
use crate::common::{TestServer, session_id_of, start};

const TS: &str = "2026-03-01T10:00:00Z";
const OWN: &str = "crackerjack";
const OTHER: &str = "akosha";

/// An `output` chunk (the `OutputEvent` wire shape) of `session_id`: output frames
/// `(offset, text)`.
fn output(session_id: &str, seq: u64, frames: &[(f64, &str)]) -> Value {
    let frames: Vec<Value> = frames.iter().map(|(t, s)| json!([t, "o", s])).collect();
    json!({
        "event_version": "1.1",
        "event_type": "output",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "session_id": session_id,
        "timestamp": "2026-03-01T10:00:05Z",
        "seq": seq,
        "started_at": TS,
        "cols": 100,
        "rows": 30,
        "frames": frames,
    })
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

async fn post_events(s: &TestServer, auth: &str, events: &[Value]) -> (StatusCode, Value) {
    let r = s
        .http
        .post(format!("{}/v1/events", s.url))
        .header("authorization", auth)
        .json(&events)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// GET with a token: status, content type, body text.
async fn get(s: &TestServer, path: &str, auth: &str) -> (StatusCode, String, String) {
    let r = s
        .http
        .get(format!("{}{path}", s.url))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let content_type = r
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, r.text().await.unwrap())
}

async fn get_json(s: &TestServer, path: &str, auth: &str) -> (StatusCode, Value) {
    let (status, _, text) = get(s, path, auth).await;
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, body)
}

fn recording_path(session_id: &str) -> String {
    format!("/v1/sessions/{session_id}/recording")
}

/// The text of a cast's output frames, in order.
fn output_text(cast: &str) -> Vec<String> {
    let (_, frames) = parse_asciicast(cast).unwrap_or_else(|e| panic!("{e}: {cast}"));
    frames
        .into_iter()
        .filter(|f| f.kind() == FrameKind::Output)
        .map(|f| f.data().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_token_bound_to_a_component_records_only_that_component() {
    let s = TestServer::start_with(secured(|_| {})).await;
    let admin = bearer(&token(&["admin"], None));
    let own_emit = bearer(&token(&["emit"], Some(OWN)));
    let own_start = start(OWN, TS);
    let own = session_id_of(&own_start);
    let other_start = start(OTHER, TS);
    let other = session_id_of(&other_start);
    let (status, body) = post_events(&s, &own_emit, &[own_start]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_events(&s, &admin, &[other_start]).await;
    assert_eq!(status, 200, "{body}");

    // A batch with a chunk of each: its own is stored, the other's rejected naming the rule.
    let (status, body) = post_events(
        &s,
        &own_emit,
        &[
            output(&own, 1, &[(0.0, "own output\r\n")]),
            output(&other, 1, &[(0.0, "forged output\r\n")]),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "accepted", "{body}");
    assert_eq!(results[1]["status"], "rejected", "{body}");
    let error = results[1]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("component: "), "{body}");
    assert!(error.contains(OTHER), "{body}");
    // Only chunks of the other component, stored or not yet started: nothing allowed, 403.
    let pending = "akosha-20260301-100000-abcdef";
    let (status, body) = post_events(
        &s,
        &own_emit,
        &[
            output(&other, 2, &[(1.0, "forged")]),
            output(pending, 1, &[(0.0, "forged")]),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap_or_default().contains(OWN),
        "{body}"
    );

    // Its own session has its recording; the other has none, and no pending one came to be.
    let (_, own_row) = get_json(&s, &format!("/v1/sessions/{own}"), &admin).await;
    assert_eq!(own_row["has_recording"], true, "{own_row}");
    let (_, other_row) = get_json(&s, &format!("/v1/sessions/{other}"), &admin).await;
    assert_eq!(other_row["session_id"], json!(other), "{other_row}");
    // (Left out when false.)
    assert_eq!(other_row.get("has_recording"), None, "{other_row}");
    let (status, _, cast) = get(&s, &recording_path(&own), &admin).await;
    assert_eq!(status, 200, "{cast}");
    assert_eq!(output_text(&cast), ["own output\r\n"]);
    for id in [&other, &pending.to_string()] {
        let (status, _, body) = get(&s, &recording_path(id), &admin).await;
        assert_eq!(status, 404, "{id}: {body}");
    }
    // An emit token for that component may write it.
    let other_emit = bearer(&token(&["emit"], Some(OTHER)));
    let (status, body) = post_events(&s, &other_emit, &[output(&other, 1, &[(0.0, "real")])]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    let (status, _, cast) = get(&s, &recording_path(&other), &admin).await;
    assert_eq!(status, 200, "{cast}");
    assert_eq!(output_text(&cast), ["real"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_recording_needs_the_recordings_scope_and_is_audited() {
    let s = TestServer::start_with(secured(|_| {})).await;
    let admin = bearer(&token(&["admin"], None));
    let own_start = start(OWN, TS);
    let own = session_id_of(&own_start);
    let other_start = start(OTHER, TS);
    let other = session_id_of(&other_start);
    let frames = [(0.0, "$ make\r\n"), (0.5, "built ✓\r\n")];
    let (status, body) = post_events(
        &s,
        &admin,
        &[
            own_start,
            other_start,
            output(&own, 1, &frames),
            output(&other, 1, &[(0.0, "other")]),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<&Value> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, [&json!("accepted"); 4], "{body}");

    // `read` is not enough: 403 naming the scope.
    let read = bearer(&token(&["read"], None));
    let (status, body) = get_json(&s, &recording_path(&own), &read).await;
    assert_eq!(status, 403, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("'recordings' scope"), "{body}");
    // (The same token reads the session itself.)
    assert_eq!(get(&s, &format!("/v1/sessions/{own}"), &read).await.0, 200);

    // `recordings`: the asciicast v2 of what was recorded.
    let auditor = claims("auditor", &["recordings"], None);
    let auditor_token = bearer(&mint_token(SECRET, &auditor).unwrap());
    let (status, content_type, cast) = get(&s, &recording_path(&own), &auditor_token).await;
    assert_eq!(status, 200, "{cast}");
    assert_eq!(content_type, "application/x-asciicast");
    let header: Value = serde_json::from_str(cast.lines().next().unwrap_or_default()).unwrap();
    assert_eq!(header["version"], 2, "{header}");
    assert_eq!(
        (header["width"].clone(), header["height"].clone()),
        (json!(100), json!(30))
    );
    let (_, parsed) = parse_asciicast(&cast).unwrap();
    let sent: Vec<Frame> = frames
        .iter()
        .map(|(t, text)| Frame(*t, FrameKind::Output, (*text).to_string()))
        .collect();
    assert_eq!(parsed, sent);

    // A token that sees only the other component does not see this recording at all.
    let mut bound = claims("other-team", &["read", "recordings"], None);
    bound.read_components = vec![OTHER.into()];
    let bound_token = bearer(&mint_token(SECRET, &bound).unwrap());
    let (status, _, body) = get(&s, &recording_path(&own), &bound_token).await;
    assert_eq!(status, 404, "{body}");
    let (status, _, cast) = get(
        &s,
        &format!("{}?purpose=play", recording_path(&other)),
        &bound_token,
    )
    .await;
    assert_eq!(status, 200, "{cast}");
    assert_eq!(output_text(&cast), ["other"]);

    // The audit log (admin): the two reads, newest first, with who read; the refused ones are
    // not reads.
    let (status, log) = get_json(&s, "/v1/audit", &read).await;
    assert_eq!(status, 403, "{log}");
    let (status, log) = get_json(&s, "/v1/audit", &admin).await;
    assert_eq!(status, 200, "{log}");
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{log}");
    assert_eq!(entries[0]["action"], "recording.play", "{log}");
    assert_eq!(entries[0]["session_id"], json!(other), "{log}");
    assert_eq!(
        entries[0]["actor"],
        json!(format!("other-team (token {})", bound.jti)),
        "{log}"
    );
    assert_eq!(entries[1]["action"], "recording.export", "{log}");
    assert_eq!(entries[1]["session_id"], json!(own), "{log}");
    assert_eq!(
        entries[1]["actor"],
        json!(format!("auditor (token {})", auditor.jti)),
        "{log}"
    );
    let (_, of_own) = get_json(&s, &format!("/v1/audit?session_id={own}"), &admin).await;
    assert_eq!(of_own["entries"], json!([entries[1]]), "{of_own}");
    s.stop().await;
}
