//! A real server on 127.0.0.1:0 over a fresh SQLite file, and helpers to talk to it.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use session_buddy_server::{AppState, ServerOptions};
use session_buddy_store_sqlite::{SqliteStore, SyncMode};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub url: String,
    /// The server's SQLite file.
    pub db_path: PathBuf,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    options: ServerOptions,
    dir: TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(ServerOptions::default()).await
    }

    /// A server with these options (e.g. a secret).
    pub async fn start_with(options: ServerOptions) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), options).await
    }

    /// Stops the server and starts it again on the same database (on another port).
    pub async fn restart(mut self) -> Self {
        self.shutdown_and_wait().await;
        let Self { dir, options, .. } = self;
        Self::start_in(dir, options).await
    }

    async fn start_in(dir: TempDir, options: ServerOptions) -> Self {
        let db_path = dir.path().join("sessions.db");
        let store = SqliteStore::open(&db_path, SyncMode::Normal).unwrap();
        let state = AppState::new(Arc::new(store), options.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(session_buddy_server::serve(listener, state, async {
            let _ = rx.await;
        }));
        Self {
            url: format!("http://{addr}"),
            db_path,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
            handle: Some(handle),
            options,
            dir,
        }
    }

    pub async fn stop(mut self) {
        self.shutdown_and_wait().await;
    }

    async fn shutdown_and_wait(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// POSTs events as a JSON array; returns the results.
    pub async fn post_events(&self, events: &[Value]) -> Vec<Value> {
        let r = self
            .http
            .post(format!("{}/v1/events", self.url))
            .json(&events)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "POST /v1/events");
        let body: Value = r.json().await.unwrap();
        body["results"].as_array().unwrap().clone()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/upstream")
}

pub fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn manifest() -> Value {
    fixture("MANIFEST.json")
}

/// A 1.1 start with a fresh id at `ts`.
pub fn start(component: &str, ts: &str) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "session_start",
        "component_name": component,
        "shell_type": format!("{component}Shell"),
        "timestamp": ts,
        "pid": 4242,
        "user": {"username": "ops", "home": "/home/ops"},
        "hostname": "host-a",
        "environment": {"platform": "Linux", "cwd": "/srv", "runtime": "rust 1.95"},
        "heartbeat_interval_seconds": 30
    })
}

pub fn session_id_of(start: &Value) -> String {
    let Ok(session_buddy_events::Event::SessionStart(s)) = session_buddy_events::parse_event(start)
    else {
        panic!("not a start: {start}");
    };
    s.session_id()
}

pub fn end(session_id: &str, ts: &str, exit_code: i32) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "session_end",
        "session_id": session_id,
        "timestamp": ts,
        "exit_code": exit_code,
        "reason": "exit"
    })
}

pub fn command(session_id: &str, seq: u64, ts: &str, success: bool) -> Value {
    json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "command",
        "session_id": session_id,
        "timestamp": ts,
        "seq": seq,
        "command": "show_layers",
        "args": "--token abc123 --verbose",
        "success": success,
        "duration_ms": 12.5,
        "error": if success { Value::Null } else { json!("boom") }
    })
}
