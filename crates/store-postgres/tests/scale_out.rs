//! Two servers on one database behave as one service: the same events sent to both are stored
//! once, an end sent to the other server closes the session, one reaper at a time abandons each
//! silent session once, a late end still wins, and the store gauges come from one server only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use session_buddy_server::{AppState, ServerOptions};
use session_buddy_store_postgres::PostgresStore;

use crate::pg;

struct Server {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(db: &str) -> Self {
        let store = PostgresStore::connect(db, 4).await.unwrap();
        let options = ServerOptions {
            session_ttl: Duration::from_secs(2),
            gauge_refresh: Duration::from_millis(200),
            ..ServerOptions::default()
        };
        let state = AppState::new(Arc::new(store), options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            session_buddy_server::serve(listener, state, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

async fn post(http: &reqwest::Client, server: &Server, events: &[Value]) -> Vec<Value> {
    let v: Value = http
        .post(format!("{}/v1/events", server.url))
        .json(&events)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["results"].as_array().unwrap().clone()
}

async fn get(http: &reqwest::Client, server: &Server, path: &str) -> Value {
    http.get(format!("{}{path}", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn metrics(http: &reqwest::Client, server: &Server) -> String {
    http.get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of an unlabelled sample, 0 when absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn start(n: usize) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": format!("00000000-0000-4000-8000-{n:012x}"),
        "event_type": "session_start",
        "component_name": "scaleout",
        "shell_type": "RustShell",
        "timestamp": format!("2026-07-01T10:00:{:02}Z", n % 60),
        "pid": 100 + n,
        "user": {"username": "ann", "home": "/home/ann"},
        "hostname": "h1",
        "environment": {"platform": "Linux", "cwd": "/srv", "runtime": "rust 1.95"},
        "heartbeat_interval_seconds": 30
    })
}

fn session_id(start: &Value) -> String {
    session_buddy_events::parse_session_start(start)
        .unwrap()
        .session_id()
}

fn end(n: usize, session_id: &str, minute: u32) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": format!("00000000-0000-4000-9000-{n:012x}"),
        "event_type": "session_end",
        "session_id": session_id,
        "timestamp": format!("2026-07-01T10:{minute:02}:00Z"),
        "exit_code": 0,
        "reason": "exit"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_behave_as_one() {
    if !pg::available() {
        return;
    }
    let db = pg::fresh_database().await;
    let (a, b) = (Server::start(&db).await, Server::start(&db).await);
    let http = reqwest::Client::new();
    const N: usize = 20;
    let starts: Vec<Value> = (0..N).map(start).collect();
    let ids: Vec<String> = starts.iter().map(session_id).collect();

    // The same batch to both servers at once: each event accepted exactly once in all.
    let (ra, rb) = tokio::join!(post(&http, &a, &starts), post(&http, &b, &starts));
    for (x, y) in ra.iter().zip(&rb) {
        let mut statuses = [x["status"].as_str().unwrap(), y["status"].as_str().unwrap()];
        statuses.sort_unstable();
        assert_eq!(statuses, ["accepted", "duplicate"], "{x} {y}");
    }
    let listed = get(&http, &a, "/v1/sessions?limit=1000").await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), N);

    // Ends of the first half go to the other server, twice (the second is a duplicate).
    let ends: Vec<Value> = (0..N / 2).map(|i| end(i, &ids[i], 5)).collect();
    let r = post(&http, &b, &ends).await;
    assert!(r.iter().all(|r| r["status"] == "accepted"), "{r:?}");
    let r = post(&http, &a, &ends).await;
    assert!(r.iter().all(|r| r["status"] == "duplicate"), "{r:?}");
    for id in &ids[..N / 2] {
        let s = get(&http, &a, &format!("/v1/sessions/{id}")).await;
        assert_eq!(s["status"], "ended", "{s}");
        assert!(s["duration_seconds"].as_f64().unwrap() > 0.0, "{s}");
    }

    // The silent half is abandoned by one reaper, once.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = get(&http, &b, "/v1/sessions?status=abandoned&limit=1000").await;
        if v["sessions"].as_array().unwrap().len() == N / 2 {
            break;
        }
        assert!(Instant::now() < deadline, "sessions were not reaped: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more reaper passes on both servers change nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (ma, mb) = (metrics(&http, &a).await, metrics(&http, &b).await);
    let abandoned = sample(&ma, "session_buddy_reaper_abandoned_total")
        + sample(&mb, "session_buddy_reaper_abandoned_total");
    assert_eq!(abandoned, (N / 2) as f64, "reaper counts:\n{ma}\n{mb}");

    // Store-derived gauges come from one server only, so their sum is the truth (0 active).
    let exporting = [&ma, &mb]
        .iter()
        .filter(|m| m.lines().any(|l| l.starts_with("active_sessions{")))
        .count();
    assert_eq!(exporting, 1, "exactly one server exports active_sessions");

    // A late real end wins, whichever server gets it.
    let late = end(N - 1, &ids[N - 1], 30);
    let r = post(&http, &a, std::slice::from_ref(&late)).await;
    assert_eq!(r[0]["status"], "accepted", "{r:?}");
    let s = get(&http, &b, &format!("/v1/sessions/{}", ids[N - 1])).await;
    assert_eq!(s["status"], "ended", "{s}");
    assert_eq!(s["end_reason"], "exit", "{s}");

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_lease_moves_when_its_holder_stops() {
    if !pg::available() {
        return;
    }
    use session_buddy_store::Store;
    let db = pg::fresh_database().await;
    let first = PostgresStore::connect(&db, 1).await.unwrap();
    let second = PostgresStore::connect(&db, 1).await.unwrap();
    assert!(first.reaper_lease().await.unwrap());
    assert!(first.reaper_lease().await.unwrap(), "the holder keeps it");
    assert!(!second.reaper_lease().await.unwrap());
    first.close().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !second.reaper_lease().await.unwrap() {
        assert!(Instant::now() < deadline, "the lease was not released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /v1/stream` on `server`, read until a `session` frame satisfies `want`.
struct Viewer {
    response: reqwest::Response,
    buffer: String,
}

impl Viewer {
    async fn open(http: &reqwest::Client, server: &Server) -> Self {
        let response = http
            .get(format!("{}/v1/stream", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        Self {
            response,
            buffer: String::new(),
        }
    }

    async fn until(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if !block.starts_with("event: session") {
                    continue;
                }
                let data = block
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap();
                let frame: Value = serde_json::from_str(data).unwrap();
                if want(&frame) {
                    return frame;
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("no wanted frame within the bound")
                .unwrap()
                .expect("the stream ended");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_on_one_server_sees_what_the_other_ingests_and_reaps() {
    if !pg::available() {
        return;
    }
    let db = pg::fresh_database().await;
    let (a, b) = (Server::start(&db).await, Server::start(&db).await);
    let http = reqwest::Client::new();
    let mut on_a = Viewer::open(&http, &a).await;
    let mut on_b = Viewer::open(&http, &b).await;

    let st = start(7);
    let id = session_id(&st);
    assert_eq!(post(&http, &b, &[st]).await[0]["status"], "accepted");
    let is = |status: &'static str| {
        let id = id.clone();
        move |f: &Value| {
            f["session"]["session_id"] == id.as_str() && f["session"]["status"] == status
        }
    };
    let frame = on_a.until(is("active")).await;
    assert_eq!(frame["events"][0]["event_type"], "session_start");

    // Silent past the 2 s TTL: one of the two servers (the lease holder) abandons it, and
    // the viewers of both see it, so the other server learned it from the database.
    on_a.until(is("abandoned")).await;
    on_b.until(is("abandoned")).await;
    a.stop().await;
    b.stop().await;
}
