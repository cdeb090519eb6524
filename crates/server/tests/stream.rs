//! `GET /v1/stream` over a real socket: frames for a shell's life, a slow reader against
//! ingest, resuming after a restart, the caps, the filters.

use std::time::Duration;

use serde_json::{Value, json};
use session_buddy_server::ServerOptions;
use session_buddy_server::stream::StreamOptions;

use crate::auth::{secured, token};
use crate::common::{TestServer, command, end, session_id_of, start};

/// Waits this long at most for anything a test expects.
const BOUND: Duration = Duration::from_secs(20);

/// One server-sent message.
#[derive(Debug, Clone)]
pub struct Message {
    pub event: String,
    pub data: Value,
}

/// A `GET /v1/stream` response read message by message.
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
    /// The latest `id:` seen (what a client resumes from).
    pub last_id: Option<i64>,
}

impl Sse {
    pub async fn open(url: &str, query: &str, headers: &[(&str, String)]) -> reqwest::Response {
        let mut r = reqwest::Client::new().get(format!("{url}/v1/stream{query}"));
        for (k, v) in headers {
            r = r.header(*k, v);
        }
        r.send().await.unwrap()
    }

    pub async fn connect(url: &str, query: &str, headers: &[(&str, String)]) -> Self {
        let response = Self::open(url, query, headers).await;
        assert_eq!(response.status(), 200, "GET /v1/stream{query}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            response,
            buffer: String::new(),
            last_id: None,
        }
    }

    /// The next dispatched message (comments and bare `id:` lines only move `last_id`);
    /// `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut data) = (String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        self.last_id = Some(v.parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if !data.is_empty() {
                    return Some(Message {
                        event,
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
            }
            let chunk = tokio::time::timeout(BOUND, self.response.chunk())
                .await
                .expect("the stream said nothing within the bound")
                .ok()??;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Reads until a message satisfies `want`; returns every message read.
    pub async fn until(&mut self, want: impl Fn(&Message) -> bool) -> Vec<Message> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no wanted message within the bound; saw {seen:#?}"
            );
            let m = self.next().await.expect("the stream ended");
            let done = want(&m);
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
}

/// The event types a `session` frame lists for `session_id`.
fn types_for(m: &Message, session_id: &str) -> Vec<String> {
    if m.event != "session" || m.data["session"]["session_id"] != session_id {
        return Vec::new();
    }
    m.data["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_string())
        .collect()
}

fn event_ids(messages: &[Message]) -> Vec<(i64, String)> {
    messages
        .iter()
        .filter(|m| m.event == "session")
        .flat_map(|m| m.data["events"].as_array().unwrap().clone())
        .map(|e| {
            (
                e["position"].as_i64().unwrap(),
                e["event_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_frame_arrives_for_a_start_a_command_and_an_end() {
    let s = TestServer::start().await;
    let mut sse = Sse::connect(&s.url, "", &[]).await;
    let st = start("oneiric", "2026-03-01T10:00:00Z");
    let id = session_id_of(&st);
    s.post_events(&[st]).await;
    let seen = sse
        .until(|m| types_for(m, &id).contains(&"session_start".into()))
        .await;
    let frame = &seen.last().unwrap().data;
    assert_eq!(frame["session"]["status"], "active");
    assert_eq!(frame["session"]["last_command"], Value::Null);
    assert_eq!(frame["events_omitted"], 0);
    // The record is the one GET /v1/sessions/{id} answers.
    let (_, record) = s.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(frame["session"], record);

    s.post_events(&[command(&id, 1, "2026-03-01T10:00:01Z", false)])
        .await;
    let seen = sse
        .until(|m| types_for(m, &id).contains(&"command".into()))
        .await;
    let frame = &seen.last().unwrap().data;
    let cmd = frame["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "command")
        .unwrap();
    assert_eq!(cmd["command"], "show_layers");
    assert_eq!(cmd["success"], false);
    assert_eq!(cmd["error"], "boom");
    assert_eq!(cmd["duration_ms"], 12.5);
    assert!(cmd["event_id"].is_string() && cmd["position"].is_i64());
    assert_eq!(frame["session"]["last_command"], "show_layers");
    assert_eq!(frame["session"]["command_count"], 1);

    s.post_events(&[end(&id, "2026-03-01T10:00:02Z", 0)]).await;
    let seen = sse
        .until(|m| types_for(m, &id).contains(&"session_end".into()))
        .await;
    assert_eq!(seen.last().unwrap().data["session"]["status"], "ended");
    s.stop().await;
}

#[tokio::test]
async fn an_abandonment_reaches_the_stream() {
    let s = TestServer::start_with(ServerOptions {
        session_ttl: Duration::from_secs(1),
        ..ServerOptions::default()
    })
    .await;
    let mut sse = Sse::connect(&s.url, "", &[]).await;
    let st = start("oneiric", "2026-03-01T10:00:00Z");
    let id = session_id_of(&st);
    s.post_events(&[st]).await;
    let seen = sse
        .until(|m| m.event == "session" && m.data["session"]["status"] == "abandoned")
        .await;
    let frame = &seen.last().unwrap().data;
    assert_eq!(frame["session"]["session_id"], id);
    assert_eq!(frame["session"]["end_reason"], "heartbeat_timeout");
    s.stop().await;
}

#[tokio::test]
async fn a_slow_reader_never_delays_ingest() {
    let s = TestServer::start_with(ServerOptions {
        stream: StreamOptions {
            buffer: 8,
            ..StreamOptions::default()
        },
        ..ServerOptions::default()
    })
    .await;
    // Open, then read nothing while thousands of sessions start.
    let mut sse = Sse::connect(&s.url, "", &[]).await;
    let mut ids = std::collections::HashSet::new();
    for batch in 0..4 {
        let starts: Vec<Value> = (0..1000)
            .map(|i| {
                // A second each: session ids of one second share 24 bits of randomness.
                let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap()
                    + chrono::TimeDelta::seconds(batch * 1000 + i);
                let mut st = start("oneiric", &at.to_rfc3339());
                st["metadata"] = json!({"padding": "x".repeat(512), "n": batch * 1000 + i});
                st
            })
            .collect();
        ids.extend(starts.iter().map(session_id_of));
        let results = s.post_events(&starts).await;
        assert!(results.iter().all(|r| r["status"] == "accepted"));
    }
    // Now read: the viewer either got every session's frame or was told to resync.
    let mut frames = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + BOUND;
    let resync = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "neither all frames nor a resync"
        );
        let m = sse.next().await.expect("the stream ended");
        match m.event.as_str() {
            "resync" => break Some(m),
            "session" => {
                frames.insert(
                    m.data["session"]["session_id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
                if frames == ids {
                    break None;
                }
            }
            other => panic!("unexpected {other}"),
        }
    };
    if let Some(m) = resync {
        // Fell too many rounds behind, or was sent its byte budget's worth.
        let reason = m.data["reason"].as_str().unwrap();
        assert!(reason == "lagged" || reason == "busy", "{m:?}");
        assert!(m.data["position"].as_i64().unwrap() > 0);
    }
    // Ingest still answers at once with the stream open.
    let st = start("oneiric", "2026-03-01T11:00:00Z");
    assert_eq!(s.post_events(&[st]).await[0]["status"], "accepted");
    s.stop().await;
}

#[tokio::test]
async fn a_viewer_past_its_byte_budget_gets_one_busy_resync_then_frames_again() {
    let s = TestServer::start_with(ServerOptions {
        stream: StreamOptions {
            // A frame is several hundred bytes: two or three fit in a second.
            viewer_bytes_per_second: 2000,
            ..StreamOptions::default()
        },
        ..ServerOptions::default()
    })
    .await;
    let mut sse = Sse::connect(&s.url, "", &[]).await;
    let flood: Vec<Value> = (0..40)
        .map(|i| {
            let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap()
                + chrono::TimeDelta::seconds(i);
            start("oneiric", &at.to_rfc3339())
        })
        .collect();
    s.post_events(&flood).await;
    let seen = sse.until(|m| m.event == "resync").await;
    let busy = seen.last().unwrap();
    assert_eq!(busy.data["reason"], "busy", "{busy:?}");
    assert!(
        seen.iter().filter(|m| m.event == "session").count() < flood.len(),
        "the flood did not fit the budget, yet all of it was sent"
    );
    // Once the budget is full again (a second), a new session's frame arrives.
    let mut later = Vec::new();
    let deadline = tokio::time::Instant::now() + BOUND;
    for n in 0.. {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no frame after resting"
        );
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T11:00:00Z").unwrap()
            + chrono::TimeDelta::seconds(n);
        let st = start("mahavishnu", &at.to_rfc3339());
        later.push(session_id_of(&st));
        s.post_events(&[st]).await;
        let got = tokio::time::timeout(Duration::from_millis(500), sse.next()).await;
        if let Ok(Some(m)) = got
            && m.event == "session"
            && later
                .iter()
                .any(|id| m.data["session"]["session_id"] == *id)
        {
            break;
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn resume_with_last_event_id_after_a_restart_loses_nothing() {
    let s = TestServer::start().await;
    let mut sse = Sse::connect(&s.url, "", &[]).await;
    let st = start("oneiric", "2026-03-01T10:00:00Z");
    let id = session_id_of(&st);
    s.post_events(&[st, command(&id, 1, "2026-03-01T10:00:01Z", true)])
        .await;
    let before = sse
        .until(|m| types_for(m, &id).contains(&"command".into()))
        .await;
    let resume_from = sse.last_id.unwrap();
    // The server stops: the stream ends (it does not hold the shutdown).
    let s = s.restart().await;
    assert!(sse.next().await.is_none(), "the stream ends at shutdown");

    // While nobody watches: two more commands and the end.
    let later = [
        command(&id, 2, "2026-03-01T10:00:02Z", true),
        command(&id, 3, "2026-03-01T10:00:03Z", false),
        end(&id, "2026-03-01T10:00:04Z", 1),
    ];
    s.post_events(&later).await;
    let mut again = Sse::connect(
        &s.url,
        "?after=0",
        &[("last-event-id", resume_from.to_string())],
    )
    .await;
    let after = again
        .until(|m| types_for(m, &id).contains(&"session_end".into()))
        .await;
    let got = event_ids(&after);
    let (_, events) = s.get(&format!("/v1/sessions/{id}/events")).await;
    let wanted: Vec<String> = events["events"].as_array().unwrap()[2..]
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    for w in &wanted {
        assert!(
            got.iter().any(|(_, g)| g == w),
            "{w} was not resent: {got:?}"
        );
    }
    // What was seen before comes again only from inside the overlap window.
    let overlap = StreamOptions::default().resume_overlap;
    for (position, event_id) in event_ids(&before) {
        if got.iter().any(|(_, g)| *g == event_id) {
            assert!(position > resume_from - overlap, "{event_id} at {position}");
        }
    }
    assert_eq!(after.last().unwrap().data["session"]["status"], "ended");
    s.stop().await;
}

#[tokio::test]
async fn a_position_too_far_behind_gets_resync() {
    let s = TestServer::start_with(ServerOptions {
        stream: StreamOptions {
            replay_max: 5,
            resume_overlap: 0,
            ..StreamOptions::default()
        },
        ..ServerOptions::default()
    })
    .await;
    let st = start("oneiric", "2026-03-01T10:00:00Z");
    let id = session_id_of(&st);
    let mut events = vec![st];
    events.extend((1..=10).map(|n| command(&id, n, "2026-03-01T10:00:01Z", true)));
    s.post_events(&events).await;
    let mut sse = Sse::connect(&s.url, "?after=0", &[]).await;
    let m = sse.next().await.unwrap();
    assert_eq!(m.event, "resync", "{m:?}");
    assert_eq!(m.data["reason"], "too_far_behind");
    // A position from a newer database is not one this server can resume from.
    let mut sse = Sse::connect(&s.url, "?after=99999", &[]).await;
    let m = sse.next().await.unwrap();
    assert_eq!(m.data["reason"], "unknown_position");
    let r = Sse::open(&s.url, "?after=-3", &[]).await;
    assert_eq!(r.status(), 400);
    let r = Sse::open(&s.url, "?nope=1", &[]).await;
    assert_eq!(r.status(), 400);
    s.stop().await;
}

#[tokio::test]
async fn streams_beyond_the_caps_get_503_with_retry_after() {
    let mut options = secured(|_| {});
    options.stream = StreamOptions {
        max_streams: 3,
        max_streams_per_token: 2,
        ..StreamOptions::default()
    };
    let s = TestServer::start_with(options).await;
    let a = format!("Bearer {}", token(&["read"], None));
    let b = format!("Bearer {}", token(&["read"], None));
    let c = format!("Bearer {}", token(&["read"], None));
    let auth = |t: &String| vec![("authorization", t.clone())];
    // No token, or one without `read`: refused before any cap.
    assert_eq!(Sse::open(&s.url, "", &[]).await.status(), 401);
    let emit = format!("Bearer {}", token(&["emit"], None));
    assert_eq!(Sse::open(&s.url, "", &auth(&emit)).await.status(), 403);

    let a1 = Sse::connect(&s.url, "", &auth(&a)).await;
    let _a2 = Sse::connect(&s.url, "", &auth(&a)).await;
    let refused = Sse::open(&s.url, "", &auth(&a)).await;
    assert_eq!(refused.status(), 503, "a third stream for one token");
    assert!(refused.headers().contains_key("retry-after"));
    let _b1 = Sse::connect(&s.url, "", &auth(&b)).await;
    let refused = Sse::open(&s.url, "", &auth(&c)).await;
    assert_eq!(refused.status(), 503, "a fourth stream in all");
    assert!(refused.headers().contains_key("retry-after"));
    // A closed stream frees its place.
    drop(a1);
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let r = Sse::open(&s.url, "", &auth(&c)).await;
        if r.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn filters_and_bound_tokens_show_only_their_sessions() {
    let s = TestServer::start_with(secured(|_| {})).await;
    let emit = format!("Bearer {}", token(&["emit"], None));
    let reader = format!("Bearer {}", token(&["read"], None));
    let akosha_reader = {
        let mut c = crate::auth::claims("tests", &["read"], None);
        c.read_components = vec!["akosha".into()];
        format!(
            "Bearer {}",
            session_buddy_server::auth::mint_token(crate::auth::SECRET, &c).unwrap()
        )
    };
    let mut by_component = Sse::connect(
        &s.url,
        "?component=beta",
        &[("authorization", reader.clone())],
    )
    .await;
    let mut by_host =
        Sse::connect(&s.url, "?host=host-b", &[("authorization", reader.clone())]).await;
    let mut bound = Sse::connect(&s.url, "", &[("authorization", akosha_reader.clone())]).await;
    // A bound token asking for another component sees nothing of it.
    let mut bound_other = Sse::connect(
        &s.url,
        "?component=alpha",
        &[("authorization", akosha_reader)],
    )
    .await;

    let alpha = start("alpha", "2026-03-01T10:00:00Z");
    let mut beta = start("beta", "2026-03-01T10:00:01Z");
    beta["hostname"] = json!("host-b");
    let akosha = start("akosha", "2026-03-01T10:00:02Z");
    let post = |events: Vec<Value>| {
        let (s, emit) = (&s, emit.clone());
        async move {
            let r = s
                .http
                .post(format!("{}/v1/events", s.url))
                .header("authorization", emit)
                .json(&events)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    post(vec![alpha.clone(), beta.clone(), akosha.clone()]).await;
    let first = |m: &Message| m.event == "session";
    let m = by_component.until(first).await.pop().unwrap();
    assert_eq!(m.data["session"]["component"], "beta");
    let m = by_host.until(first).await.pop().unwrap();
    assert_eq!(m.data["session"]["component"], "beta");
    let m = bound.until(first).await.pop().unwrap();
    assert_eq!(m.data["session"]["component"], "akosha");

    // Then an alpha command and a beta end: each viewer's next frame is still its own.
    post(vec![
        command(&session_id_of(&alpha), 1, "2026-03-01T10:00:03Z", true),
        end(&session_id_of(&beta), "2026-03-01T10:00:04Z", 0),
        command(&session_id_of(&akosha), 1, "2026-03-01T10:00:05Z", true),
    ])
    .await;
    let m = by_component.until(first).await.pop().unwrap();
    assert_eq!(m.data["session"]["status"], "ended");
    let m = bound.until(first).await.pop().unwrap();
    assert_eq!(m.data["session"]["component"], "akosha");
    assert_eq!(m.data["session"]["command_count"], 1);
    // The bound viewer that asked for alpha got no frame at all: its next message is the end
    // of the stream at shutdown.
    s.stop().await;
    while let Some(m) = bound_other.next().await {
        assert_ne!(m.event, "session", "{m:?}");
    }
}
