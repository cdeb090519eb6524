//! A real server on loopback over a fresh SQLite file, run on its own tokio runtime so the
//! tests themselves stay synchronous like a host program.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use session_buddy_client::{RetryPolicy, TrackerConfig};
use session_buddy_server::{AppState, ServerOptions};
use session_buddy_store_sqlite::{SqliteStore, SyncMode};
use tokio::sync::oneshot;

pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server on a free loopback port with its database in `dir`.
    pub fn start(dir: &Path) -> Self {
        Self::start_at(dir, "127.0.0.1:0".parse().unwrap())
    }

    /// A server on `addr` (reused after a stop: SO_REUSEADDR).
    pub fn start_at(dir: &Path, addr: SocketAddr) -> Self {
        Self::start_with(dir, addr, ServerOptions::default())
    }

    /// A server on a free loopback port that needs tokens signed with `secret`.
    pub fn start_secured(dir: &Path, secret: &str) -> Self {
        let mut options = ServerOptions::default();
        options.auth.secret = Some(secret.to_string());
        Self::start_with(dir, "127.0.0.1:0".parse().unwrap(), options)
    }

    fn start_with(dir: &Path, addr: SocketAddr, options: ServerOptions) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let db = dir.join("sessions.db");
        let (tx, rx) = oneshot::channel::<()>();
        let (addr, handle) = runtime.block_on(async {
            let store = SqliteStore::open(&db, SyncMode::Normal).unwrap();
            let state = AppState::new(Arc::new(store), options);
            let listener = bind_reuse(addr);
            let addr = listener.local_addr().unwrap();
            let handle = tokio::spawn(session_buddy_server::serve(listener, state, async {
                let _ = rx.await;
            }));
            (addr, handle)
        });
        Self {
            addr,
            url: format!("http://{addr}"),
            runtime: Some(runtime),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let (Some(rt), Some(h)) = (self.runtime.take(), self.handle.take()) {
            let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), h).await });
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }

    pub fn get(&self, path: &str) -> Value {
        get_json(&format!("{}{path}", self.url))
    }

    /// Sessions of `component` (at most 1000).
    pub fn sessions(&self, component: &str) -> Vec<Value> {
        self.get(&format!("/v1/sessions?component={component}&limit=1000"))["sessions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every stored event of a session (pending ones too).
    pub fn events(&self, session_id: &str) -> Vec<Value> {
        self.get(&format!("/v1/events?session_id={session_id}&limit=1000"))["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

pub fn bind_reuse(addr: SocketAddr) -> tokio::net::TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(1024).unwrap()
}

pub fn get_json(url: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut r = agent.get(url).call().unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Test settings: short timeouts and breaker, no heartbeats, no detached sender.
pub fn config(home: &Path, url: &str) -> TrackerConfig {
    TrackerConfig {
        home: home.to_path_buf(),
        url: url.to_string(),
        heartbeat_interval: Duration::from_secs(3600),
        request_timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_secs(1),
            breaker_threshold: 3,
            breaker_open: Duration::from_secs(1),
        },
        sender_program: None,
        ..TrackerConfig::default()
    }
}

pub fn info(component: &str) -> session_buddy_client::SessionInfo {
    session_buddy_client::SessionInfo {
        component: component.to_string(),
        shell_type: format!("{component}Shell"),
        runtime: Some(session_buddy_client::rust_runtime()),
        ..Default::default()
    }
}

/// Polls `f` until it returns true or `limit` passes; returns whether it did.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
