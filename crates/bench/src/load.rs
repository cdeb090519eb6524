//! The HTTP and MCP load generators: connections of their own (hyper, one request in flight on
//! each), a shared request budget and deadline, latencies per worker merged at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::{IngestOptions, McpOptions, loopback_target};

/// POSTs session_start events to `/v1/events` from `connections` connections.
pub fn ingest(options: IngestOptions) -> anyhow::Result<()> {
    runtime()?.block_on(ingest_async(options))
}

/// `track_session_start` + `track_session_end` through the MCP tools from `clients` clients.
pub fn mcp(options: McpOptions) -> anyhow::Result<()> {
    runtime()?.block_on(mcp_async(options))
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // A random starting point, so two bench runs in the same second do not reuse ids.
    NEXT_EVENT.store(
        (uuid::Uuid::new_v4().as_u128() as u64) & 0xff_ffff,
        Ordering::Relaxed,
    );
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    units: u64,
    errors: u64,
    first_error: Option<String>,
}

pub(crate) struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
    /// `Authorization` for a server with a secret: `SESSION_BUDDY_TOKEN`.
    auth: Option<String>,
}

impl Connection {
    pub(crate) async fn open(addr: SocketAddr, host: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}; is the server running?"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self {
            sender,
            host: host.to_string(),
            auth: std::env::var("SESSION_BUDDY_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .map(|t| format!("Bearer {t}")),
        })
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: String,
    ) -> anyhow::Result<(StatusCode, String, Bytes)> {
        let mut request = Request::post(path)
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, content_type)
            .header(ACCEPT, "application/json, text/event-stream");
        if let Some(auth) = &self.auth {
            request = request.header(hyper::header::AUTHORIZATION, auth);
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let ct = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, ct, bytes))
    }
}

pub(crate) static NEXT_EVENT: AtomicU64 = AtomicU64::new(0);

/// A fresh start event of the current session id rule (16 hex digits). The last 24 bits of
/// its id count up as well, so two bench sessions of one component in one second never map
/// to the same session id, whatever the rule.
pub(crate) fn start_event(i: u64) -> String {
    let id = uuid::Uuid::from_u128(
        (uuid::Uuid::new_v4().as_u128() & !0xff_ffff) | u128::from((i as u32) & 0xff_ffff),
    );
    let ts = session_buddy_events::format_timestamp(&chrono::Utc::now());
    let components = session_buddy_components::COMPONENTS;
    let component = components[(i as usize) % components.len()];
    format!(
        r#"{{"event_version":"1.1","event_id":"{id}","event_type":"session_start","component_name":"{component}","shell_type":"BenchShell","timestamp":"{ts}","pid":{pid},"user":{{"username":"bench","home":"/home/bench"}},"hostname":"bench-host","environment":{{"platform":"Linux","cwd":"/tmp","runtime":"rust 1.95"}},"metadata":{{"bench":true}},"session_id_version":2}}"#,
        pid = 1000 + (i % 30000)
    )
}

pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

fn report(
    kind: &str,
    unit: &str,
    setup: Value,
    elapsed: Duration,
    results: Vec<WorkerResult>,
    json_out: bool,
) -> anyhow::Result<()> {
    let mut lat: Vec<u32> = Vec::new();
    let (mut units, mut errors, mut first_error) = (0u64, 0u64, None);
    for r in results {
        lat.extend(r.latencies_us);
        units += r.units;
        errors += r.errors;
        first_error = first_error.or(r.first_error);
    }
    lat.sort_unstable();
    let secs = elapsed.as_secs_f64();
    let rate = units as f64 / secs;
    let summary = json!({
        "bench": kind,
        "setup": setup,
        "seconds": secs,
        "requests": lat.len(),
        unit: units,
        format!("{unit}_per_second"): rate,
        "latency_ms": {"p50": percentile(&lat, 0.50), "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0)},
        "errors": errors,
        "first_error": first_error,
    });
    if json_out {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("bench {kind}  {setup}");
        println!(
            "  {units} {unit} in {secs:.2} s = {rate:.0} {unit}/s ({} requests)",
            lat.len()
        );
        println!(
            "  latency per request: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0)
        );
        println!(
            "  errors: {errors}{}",
            first_error
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
    if units == 0 {
        bail!("nothing was delivered; is the server at the URL running?");
    }
    Ok(())
}

async fn ingest_async(a: IngestOptions) -> anyhow::Result<()> {
    if !(1..=1000).contains(&a.batch) {
        bail!("--batch must be from 1 to 1000");
    }
    if a.connections == 0 || a.connections > 1024 {
        bail!("--connections must be from 1 to 1024");
    }
    let (elapsed, results) = ingest_load(&a).await?;
    report(
        "ingest",
        "events",
        json!({"connections": a.connections, "batch": a.batch, "url": a.common.url, "also": a.also}),
        elapsed,
        results,
        a.common.json,
    )
}

/// Events accepted per second by an ingest load (`bench stream` compares two).
pub(crate) struct IngestRun {
    pub events: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
}

impl IngestRun {
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }
}

/// Runs the ingest load of `a` and sums it up.
pub(crate) async fn ingest_run(a: &IngestOptions) -> anyhow::Result<IngestRun> {
    let (elapsed, results) = ingest_load(a).await?;
    let mut run = IngestRun {
        events: 0,
        errors: 0,
        first_error: None,
        seconds: elapsed.as_secs_f64(),
    };
    for r in results {
        run.events += r.units;
        run.errors += r.errors;
        run.first_error = run.first_error.or(r.first_error);
    }
    Ok(run)
}

/// The ingest load: `connections` workers posting batches of starts until the deadline or
/// the request budget.
async fn ingest_load(a: &IngestOptions) -> anyhow::Result<(Duration, Vec<WorkerResult>)> {
    let mut targets = vec![loopback_target(&a.common.url)?];
    for url in &a.also {
        targets.push(loopback_target(url)?);
    }
    let budget = Arc::new(AtomicI64::new(a.common.max_requests));
    let mut conns = Vec::with_capacity(a.connections);
    for i in 0..a.connections {
        let (addr, host) = &targets[i % targets.len()];
        conns.push(Connection::open(*addr, host).await?);
    }
    let started = Instant::now();
    let deadline = started + a.common.duration;
    let mut tasks = Vec::new();
    for mut conn in conns {
        let budget = budget.clone();
        let batch = a.batch;
        tasks.push(tokio::spawn(async move {
            let mut r = WorkerResult::default();
            while Instant::now() < deadline && budget.fetch_sub(1, Ordering::Relaxed) > 0 {
                let mut body = String::with_capacity(batch * 480 + 2);
                body.push('[');
                for k in 0..batch {
                    if k > 0 {
                        body.push(',');
                    }
                    body.push_str(&start_event(NEXT_EVENT.fetch_add(1, Ordering::Relaxed)));
                }
                body.push(']');
                let t = Instant::now();
                match conn.post("/v1/events", "application/json", body).await {
                    Ok((StatusCode::OK, _, bytes)) => {
                        r.latencies_us
                            .push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        let text = String::from_utf8_lossy(&bytes);
                        let accepted = text.matches("\"accepted\"").count() as u64;
                        r.units += accepted;
                        if accepted < batch as u64 {
                            r.errors += batch as u64 - accepted;
                            r.first_error
                                .get_or_insert_with(|| text.chars().take(300).collect());
                        }
                    }
                    Ok((status, _, bytes)) => {
                        r.errors += 1;
                        r.first_error.get_or_insert_with(|| {
                            format!(
                                "HTTP {status}: {}",
                                String::from_utf8_lossy(&bytes)
                                    .chars()
                                    .take(300)
                                    .collect::<String>()
                            )
                        });
                    }
                    Err(e) => {
                        r.errors += 1;
                        r.first_error.get_or_insert_with(|| e.to_string());
                        break;
                    }
                }
            }
            r
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await?);
    }
    Ok((started.elapsed(), results))
}

/// A JSON-RPC answer from a body that is JSON or SSE (`data:` lines).
fn jsonrpc_answer(content_type: &str, bytes: &[u8]) -> anyhow::Result<Value> {
    let text = std::str::from_utf8(bytes)?;
    if content_type.starts_with("text/event-stream") {
        for line in text.lines() {
            if let Some(data) = line.strip_prefix("data:") {
                let data = data.trim();
                if !data.is_empty() {
                    return Ok(serde_json::from_str(data)?);
                }
            }
        }
        bail!("no data in the event stream");
    }
    Ok(serde_json::from_str(text)?)
}

struct McpClient {
    conn: Connection,
    session: Option<String>,
    next_id: u64,
}

impl McpClient {
    async fn connect(addr: SocketAddr, host: &str) -> anyhow::Result<Self> {
        let mut c = Self {
            conn: Connection::open(addr, host).await?,
            session: None,
            next_id: 1,
        };
        let init = c
            .rpc(
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "session-buddy-bench", "version": env!("CARGO_PKG_VERSION")}}),
            )
            .await?;
        if init.get("result").is_none() {
            bail!("initialize failed: {init}");
        }
        c.notify("notifications/initialized").await?;
        Ok(c)
    }

    async fn send(&mut self, body: String) -> anyhow::Result<(StatusCode, String, Bytes)> {
        let mut request = Request::post("/mcp")
            .header(HOST, &self.conn.host)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-06-18");
        if let Some(s) = &self.session {
            request = request.header("Mcp-Session-Id", s);
        }
        if let Some(auth) = &self.conn.auth {
            request = request.header(hyper::header::AUTHORIZATION, auth);
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        self.conn.sender.ready().await?;
        let response = self.conn.sender.send_request(request).await?;
        let status = response.status();
        if let Some(s) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            self.session = Some(s.to_string());
        }
        let ct = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, ct, bytes))
    }

    async fn rpc(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let body =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        let (status, ct, bytes) = self.send(body).await?;
        if status != StatusCode::OK {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&bytes));
        }
        jsonrpc_answer(&ct, &bytes)
    }

    async fn notify(&mut self, method: &str) -> anyhow::Result<()> {
        let body = json!({"jsonrpc": "2.0", "method": method}).to_string();
        let (status, _, bytes) = self.send(body).await?;
        if !status.is_success() {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(())
    }

    async fn call(&mut self, tool: &str, args: Value) -> anyhow::Result<Value> {
        let answer = self
            .rpc("tools/call", json!({"name": tool, "arguments": args}))
            .await?;
        answer
            .pointer("/result/structuredContent")
            .cloned()
            .ok_or_else(|| anyhow!("{tool}: unexpected answer {answer}"))
    }
}

async fn mcp_async(a: McpOptions) -> anyhow::Result<()> {
    if a.clients == 0 || a.clients > 256 {
        bail!("--clients must be from 1 to 256");
    }
    let (addr, host) = loopback_target(&a.common.url)?;
    let budget = Arc::new(AtomicI64::new(a.common.max_requests));
    let mut clients = Vec::new();
    for _ in 0..a.clients {
        clients.push(McpClient::connect(addr, &host).await?);
    }
    let started = Instant::now();
    let deadline = started + a.common.duration;
    let mut tasks = Vec::new();
    for mut client in clients {
        let budget = budget.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = WorkerResult::default();
            while Instant::now() < deadline && budget.fetch_sub(2, Ordering::Relaxed) > 0 {
                let start: Value =
                    serde_json::from_str(&start_event(NEXT_EVENT.fetch_add(1, Ordering::Relaxed)))
                        .unwrap_or(Value::Null);
                let t = Instant::now();
                let outcome = async {
                    let started = client.call("track_session_start", start).await?;
                    let Some(id) = started["session_id"].as_str().filter(|_| started["status"] == "tracked") else {
                        bail!("track_session_start: {started}");
                    };
                    let end = json!({"event_type": "session_end", "session_id": id,
                                     "timestamp": session_buddy_events::format_timestamp(&chrono::Utc::now()),
                                     "metadata": {"exit_reason": "bench"}});
                    let ended = client.call("track_session_end", end).await?;
                    if ended["status"] != "ended" {
                        bail!("track_session_end: {ended}");
                    }
                    Ok(())
                }
                .await;
                match outcome {
                    Ok(()) => {
                        r.latencies_us.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        r.units += 1;
                    }
                    Err(e) => {
                        r.errors += 1;
                        r.first_error.get_or_insert_with(|| e.to_string());
                        if r.errors > 100 {
                            break;
                        }
                    }
                }
            }
            r
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await?);
    }
    report(
        "mcp",
        "sessions",
        json!({"clients": a.clients, "url": a.common.url}),
        started.elapsed(),
        results,
        a.common.json,
    )
}
