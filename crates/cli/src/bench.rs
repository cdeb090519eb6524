//! `session-buddy bench`: load generators against a running server over loopback, bounded in
//! time and in requests, printing throughput and p50/p99/max latency.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::CmdResult;
use crate::config::parse_duration;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// POST session_start events to /v1/events.
    Ingest(IngestArgs),
    /// track_session_start + track_session_end through the MCP tools.
    Mcp(McpArgs),
    /// The client's local buffer: enqueue latency (buffer.db, and a tracker's journal line);
    /// with --url, the drain rate after an outage.
    Buffer(BufferArgs),
    /// Whole shell runs: server up, down and hanging; tracked and untracked.
    Shell(crate::bench_shell::ShellBenchArgs),
    /// Load the query benchmarks' dataset straight into a SQLite file (no server needed).
    Seed(crate::bench_seed::SeedArgs),
}

#[derive(Args)]
pub struct Common {
    /// The server (loopback only).
    #[arg(
        long,
        env = "SESSION_BUDDY_URL",
        default_value = "http://127.0.0.1:8678"
    )]
    url: String,
    /// How long to run, e.g. 10s, 500ms, 1m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many requests in all, whichever comes first.
    #[arg(long, default_value_t = 10_000_000)]
    max_requests: i64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct IngestArgs {
    #[command(flatten)]
    common: Common,
    /// Concurrent connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Events per request (1..=1000).
    #[arg(long, default_value_t = 1)]
    batch: usize,
}

#[derive(Args)]
pub struct McpArgs {
    #[command(flatten)]
    common: Common,
    /// Concurrent MCP clients, each with its own connection and MCP session.
    #[arg(long, default_value_t = 8)]
    clients: usize,
}

#[derive(Args)]
pub struct BufferArgs {
    /// Events to enqueue (the "outage" backlog).
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// A running server (loopback only) to drain the backlog into; without it only enqueue is
    /// measured.
    #[arg(long)]
    url: Option<String>,
    /// Longest drain.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    duration: Duration,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// The target, refused unless it is a loopback address.
fn loopback_target(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        anyhow!("--url must start with http:// (benchmarks run over plain loopback HTTP)")
    })?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let addr = authority
        .to_socket_addrs()
        .or_else(|_| format!("{authority}:80").to_socket_addrs())
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .ok_or_else(|| anyhow!("{authority} resolves to no address"))?;
    let loopback = match addr.ip() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    };
    if !loopback {
        bail!("benchmarks only target loopback (127.0.0.0/8 or ::1); {authority} is not");
    }
    Ok((addr, authority.to_string()))
}

pub fn run(command: BenchCommand) -> CmdResult {
    let command = match command {
        BenchCommand::Buffer(a) => return buffer_bench(a),
        BenchCommand::Shell(a) => return crate::bench_shell::run(a).map_err(Into::into),
        BenchCommand::Seed(a) => return crate::bench_seed::run(a),
        other => other,
    };
    // A random starting point, so two bench runs in the same second do not reuse ids.
    NEXT_EVENT.store(
        (uuid::Uuid::new_v4().as_u128() as u64) & 0xff_ffff,
        Ordering::Relaxed,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            BenchCommand::Ingest(a) => ingest(a).await,
            BenchCommand::Mcp(a) => mcp(a).await,
            BenchCommand::Buffer(_) | BenchCommand::Shell(_) | BenchCommand::Seed(_) => Ok(()),
        }
    })?;
    Ok(())
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    units: u64,
    errors: u64,
    first_error: Option<String>,
}

struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
    /// `Authorization` for a server with a secret: `SESSION_BUDDY_TOKEN`.
    auth: Option<String>,
}

impl Connection {
    async fn open(addr: SocketAddr, host: &str) -> anyhow::Result<Self> {
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

    async fn post(
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

static NEXT_EVENT: AtomicU64 = AtomicU64::new(0);

/// A fresh start event. The last 24 bits of its id count up, so two bench sessions of one
/// component in one second never map to the same session id (which the server would
/// rightly reject as a different start claiming an existing id).
fn start_event(i: u64) -> String {
    let id = uuid::Uuid::from_u128(
        (uuid::Uuid::new_v4().as_u128() & !0xff_ffff) | u128::from((i as u32) & 0xff_ffff),
    );
    let ts = session_buddy_events::format_timestamp(&chrono::Utc::now());
    let components = session_buddy_components::COMPONENTS;
    let component = components[(i as usize) % components.len()];
    format!(
        r#"{{"event_version":"1.1","event_id":"{id}","event_type":"session_start","component_name":"{component}","shell_type":"BenchShell","timestamp":"{ts}","pid":{pid},"user":{{"username":"bench","home":"/home/bench"}},"hostname":"bench-host","environment":{{"platform":"Linux","cwd":"/tmp","runtime":"rust 1.95"}},"metadata":{{"bench":true}}}}"#,
        pid = 1000 + (i % 30000)
    )
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
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

async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    if !(1..=1000).contains(&a.batch) {
        bail!("--batch must be from 1 to 1000");
    }
    if a.connections == 0 || a.connections > 1024 {
        bail!("--connections must be from 1 to 1024");
    }
    let (addr, host) = loopback_target(&a.common.url)?;
    let budget = Arc::new(AtomicI64::new(a.common.max_requests));
    let mut conns = Vec::with_capacity(a.connections);
    for _ in 0..a.connections {
        conns.push(Connection::open(addr, &host).await?);
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
    let elapsed = started.elapsed();
    report(
        "ingest",
        "events",
        json!({"connections": a.connections, "batch": a.batch, "url": a.common.url}),
        elapsed,
        results,
        a.common.json,
    )
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
                       "clientInfo": {"name": "session-buddy-bench", "version": session_buddy_server::VERSION}}),
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

async fn mcp(a: McpArgs) -> anyhow::Result<()> {
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

/// The `p` quantile of sorted durations, in microseconds (0 when empty).
fn percentile_us(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Times `events` calls of [`Tracker::command`](session_buddy_client::Tracker::command) of one
/// session in `home`, with no server (its sender backs off, and keeps moving the journal into
/// the buffer meanwhile).
fn tracker_record_latencies(home: &std::path::Path, events: u64) -> Vec<Duration> {
    use session_buddy_client::{EndReason, SessionInfo, Tracker, TrackerConfig};
    // Nothing listens on the discard port of loopback.
    let config = TrackerConfig {
        home: home.to_path_buf(),
        url: "http://127.0.0.1:9".into(),
        heartbeat_interval: Duration::from_secs(3600),
        ..TrackerConfig::default()
    };
    let tracker = Tracker::start(
        config,
        SessionInfo {
            component: "bench-buffer".into(),
            shell_type: "BenchShell".into(),
            ..SessionInfo::default()
        },
    );
    let mut latencies = Vec::with_capacity(events as usize);
    for _ in 0..events {
        let t = Instant::now();
        tracker.command(
            "show_layers",
            "--verbose --layer user",
            true,
            Duration::from_micros(12_500),
            None,
            Some(0),
        );
        latencies.push(t.elapsed());
    }
    tracker.end(EndReason::Exit, Some(0), None);
    latencies
}

/// Enqueues `events` command events into a fresh buffer, timing each; then, with a server,
/// delivers the backlog and reports the drain rate.
fn buffer_bench(args: BufferArgs) -> CmdResult {
    use session_buddy_client::{Buffer, BufferLimits, OutgoingEvent, TrackerConfig, deliver_now};
    use session_buddy_events::{CommandEvent, Event, EventType, SessionStartEvent};

    if let Some(url) = &args.url {
        loopback_target(url)?;
    }
    let home = std::env::temp_dir().join(format!(
        "session-buddy-bench-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let limits = BufferLimits {
        max_events: args.events.max(1),
        ..BufferLimits::default()
    };
    let result = (|| -> anyhow::Result<Value> {
        let buffer = Buffer::open(&home, limits)?;
        let start_time = chrono::Utc::now();
        let start = SessionStartEvent {
            event_version: "1.1".into(),
            event_id: uuid::Uuid::new_v4(),
            event_type: EventType::SessionStart,
            component_name: "bench-buffer".into(),
            shell_type: "BenchShell".into(),
            timestamp: start_time,
            pid: std::process::id(),
            user: session_buddy_events::UserInfo {
                username: "bench".into(),
                home: "/home/bench".into(),
            },
            hostname: "bench-host".into(),
            environment: session_buddy_events::EnvironmentInfo {
                python_version: None,
                platform: "Linux".into(),
                cwd: "/srv".into(),
                runtime: Some("rust".into()),
            },
            metadata: Default::default(),
            session_type: None,
            component_version: None,
            heartbeat_interval_seconds: Some(30),
        };
        let session_id = start.session_id();
        buffer.enqueue(&OutgoingEvent::from_event(&Event::SessionStart(start))?)?;
        let mut latencies = Vec::with_capacity(args.events as usize);
        let t0 = Instant::now();
        for seq in 1..args.events {
            let event = Event::Command(CommandEvent {
                event_version: "1.1".into(),
                event_id: uuid::Uuid::new_v4(),
                event_type: EventType::Command,
                session_id: session_id.clone(),
                timestamp: chrono::Utc::now(),
                seq,
                command: "show_layers".into(),
                args: Some("--verbose --layer user".into()),
                success: true,
                exit_code: Some(0),
                duration_ms: Some(12.5),
                error: None,
            });
            let outgoing = OutgoingEvent::from_event(&event)?;
            let t = Instant::now();
            buffer.enqueue(&outgoing)?;
            latencies.push(t.elapsed());
        }
        let enqueue_secs = t0.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let mut out = json!({
            "events": args.events,
            "enqueue_p50_us": percentile_us(&latencies, 0.50),
            "enqueue_p99_us": percentile_us(&latencies, 0.99),
            "enqueue_max_us": percentile_us(&latencies, 1.0),
            "enqueue_events_per_s": (args.events as f64 - 1.0) / enqueue_secs.max(1e-9),
        });
        // What a shell pays per event: `Tracker::command` (redaction, encoding, one journal
        // line), while its background thread moves the journal into its buffer.
        let mut record = tracker_record_latencies(&home.join("tracker"), args.events);
        record.sort_unstable();
        out["record_p50_us"] = json!(percentile_us(&record, 0.50));
        out["record_p99_us"] = json!(percentile_us(&record, 0.99));
        out["record_max_us"] = json!(percentile_us(&record, 1.0));
        if let Some(url) = &args.url {
            let config = TrackerConfig {
                home: home.clone(),
                url: url.trim_end_matches('/').to_string(),
                request_timeout: Duration::from_secs(30),
                limits,
                ..TrackerConfig::default()
            };
            let t = Instant::now();
            let report = deliver_now(&config, args.duration)?;
            let secs = t.elapsed().as_secs_f64();
            let sent = report.delivered + report.duplicates;
            out["drain_events"] = json!(sent);
            out["drain_seconds"] = json!(secs);
            out["drain_events_per_s"] = json!(sent as f64 / secs.max(1e-9));
            out["drain_remaining"] = json!(report.remaining);
            if let Some(e) = report.error {
                out["drain_error"] = json!(e);
            }
        }
        Ok(out)
    })();
    let _ = std::fs::remove_dir_all(&home);
    let out = result?;
    if args.json {
        println!("{out}");
    } else {
        println!(
            "buffer enqueue: {} events, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({:.0} events/s)",
            out["events"],
            out["enqueue_p50_us"].as_f64().unwrap_or(0.0),
            out["enqueue_p99_us"].as_f64().unwrap_or(0.0),
            out["enqueue_max_us"].as_f64().unwrap_or(0.0),
            out["enqueue_events_per_s"].as_f64().unwrap_or(0.0),
        );
        println!(
            "tracker record (journal line): {} events, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            out["events"],
            out["record_p50_us"].as_f64().unwrap_or(0.0),
            out["record_p99_us"].as_f64().unwrap_or(0.0),
            out["record_max_us"].as_f64().unwrap_or(0.0),
        );
        if out.get("drain_events").is_some() {
            println!(
                "buffer drain: {} events in {:.2} s = {:.0} events/s{}{}",
                out["drain_events"],
                out["drain_seconds"].as_f64().unwrap_or(0.0),
                out["drain_events_per_s"].as_f64().unwrap_or(0.0),
                match out["drain_remaining"].as_u64() {
                    Some(0) | None => String::new(),
                    Some(n) => format!(", {n} remaining"),
                },
                out["drain_error"]
                    .as_str()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn only_loopback_is_a_target() {
        assert!(loopback_target("http://127.0.0.1:8678").is_ok());
        assert!(loopback_target("http://[::1]:8678").is_ok());
        assert!(loopback_target("http://10.0.0.1:8678").is_err());
        assert!(loopback_target("https://127.0.0.1").is_err());
    }
}
