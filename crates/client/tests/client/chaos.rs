//! Teleport-style chaos: many concurrent sessions, a fault-injecting proxy in front of the real
//! server (503s, stalls past the client timeout, dropped connections, answers lost after the
//! server stored the batch, one restart), and one assertion: every event arrived exactly once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use session_buddy_client::{EndReason, Tracker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::common::{TestServer, bind_reuse, config, get_json, info, wait_until};

const SESSIONS: usize = 20;
const COMMANDS: u64 = 200;

#[derive(Default)]
struct Faults {
    forwarded: AtomicU64,
    unavailable: AtomicU64,
    stalled: AtomicU64,
    dropped: AtomicU64,
    answer_lost: AtomicU64,
}

struct ChaosProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    faults: Arc<Faults>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// A tiny xorshift, so the test needs no RNG crate.
fn roll(state: &AtomicU64) -> u64 {
    let mut x = state.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

impl ChaosProxy {
    fn start(addr: SocketAddr, upstream: SocketAddr, faults: Arc<Faults>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(async { bind_reuse(addr) });
        let addr = listener.local_addr().unwrap();
        let seed = Arc::new(AtomicU64::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1,
        ));
        runtime.spawn(accept_loop(listener, upstream, Arc::clone(&faults), seed));
        Self {
            addr,
            upstream,
            faults,
            runtime: Some(runtime),
        }
    }

    /// Kills every connection and the listener, stays down for `pause`, comes back on the same
    /// port.
    fn restart(&mut self, pause: Duration) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        std::thread::sleep(pause);
        *self = Self::start(self.addr, self.upstream, Arc::clone(&self.faults));
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    faults: Arc<Faults>,
    seed: Arc<AtomicU64>,
) {
    // The first connections meet the faults the test requires, one each, before any is
    // forwarded (a client on keep-alive connections may open only a handful per proxy), then
    // the others in turn; after that the fate is random.
    const SCHEDULE: [u64; 8] = [50, 65, 80, 0, 90, 10, 20, 30];
    let mut n = 0;
    while let Ok((client, _)) = listener.accept().await {
        let mut r = roll(&seed);
        if n < SCHEDULE.len() {
            r = r / 100 * 100 + SCHEDULE[n];
        }
        n += 1;
        let faults = Arc::clone(&faults);
        tokio::spawn(async move { handle(client, upstream, faults, r).await });
    }
}

async fn read_some(client: &mut TcpStream) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(Duration::from_secs(2), client.read(&mut buf))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0)
}

async fn handle(mut client: TcpStream, upstream: SocketAddr, faults: Arc<Faults>, r: u64) {
    match r % 100 {
        // Forward, but only for a while: keep-alive connections die at random moments.
        0..=44 => {
            faults.forwarded.fetch_add(1, Ordering::Relaxed);
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            let life = Duration::from_millis(20 + (r >> 8) % 200);
            let _ = tokio::time::timeout(
                life,
                tokio::io::copy_bidirectional(&mut client, &mut server),
            )
            .await;
        }
        45..=59 => {
            faults.unavailable.fetch_add(1, Ordering::Relaxed);
            read_some(&mut client).await;
            let body = r#"{"error":"chaos: unavailable"}"#;
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(answer.as_bytes()).await;
        }
        60..=71 => {
            faults.stalled.fetch_add(1, Ordering::Relaxed);
            read_some(&mut client).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        72..=85 => {
            faults.dropped.fetch_add(1, Ordering::Relaxed);
            read_some(&mut client).await;
        }
        // The server stores the batch; its answer never reaches the client, which sends again.
        _ => {
            faults.answer_lost.fetch_add(1, Ordering::Relaxed);
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let (mut from_server, mut to_server) = server.into_split();
            let (mut from_client, _to_client) = client.split();
            let forward = async {
                let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
            };
            let swallow = async {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = from_server.read(&mut buf).await;
            };
            tokio::select! {
                _ = forward => {},
                _ = swallow => {},
                _ = tokio::time::sleep(Duration::from_secs(3)) => {},
            }
        }
    }
}

#[test]
fn every_event_arrives_exactly_once_through_faults_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let faults = Arc::new(Faults::default());
    let mut proxy = ChaosProxy::start(
        "127.0.0.1:0".parse().unwrap(),
        server.addr,
        Arc::clone(&faults),
    );
    let home = dir.path().join("home");
    let cfg = config(&home, &format!("http://{}", proxy.addr));
    let started = Instant::now();

    let workers: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let tracker = Tracker::start(cfg, info("chaos"));
                for n in 0..COMMANDS {
                    tracker.command(
                        "step",
                        &format!("worker {i} n {n}"),
                        n % 10 != 0,
                        Duration::from_millis(1),
                        (n % 10 == 0).then_some("planned failure"),
                        None,
                    );
                    // A shell's pace: the run lasts a few seconds, long enough for many calls.
                    std::thread::sleep(Duration::from_millis(10 + (n + i as u64) % 20));
                }
                let id = tracker.session_id().unwrap().to_string();
                tracker.end(EndReason::Exit, Some(0), None);
                id
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1500));
    proxy.restart(Duration::from_millis(700));

    let ids: Vec<String> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(ids.len(), SESSIONS);

    // The next tracked process on the host delivers whatever the ended ones left.
    let late = Tracker::start(cfg.clone(), info("chaos-late"));
    let all_there = wait_until(Duration::from_secs(60), || {
        let sessions = server.sessions("chaos");
        sessions.len() == SESSIONS
            && sessions
                .iter()
                .all(|s| s["status"] == "ended" && s["command_count"] == COMMANDS)
    });
    let pending = late.status().pending;
    let sessions = server.sessions("chaos");
    eprintln!(
        "chaos: {:?} elapsed; forwarded {}, 503 {}, stalled {}, dropped {}, answer lost {}; {} pending",
        started.elapsed(),
        faults.forwarded.load(Ordering::Relaxed),
        faults.unavailable.load(Ordering::Relaxed),
        faults.stalled.load(Ordering::Relaxed),
        faults.dropped.load(Ordering::Relaxed),
        faults.answer_lost.load(Ordering::Relaxed),
        pending,
    );
    assert!(all_there, "not all delivered within 60 s: {sessions:#?}");
    assert!(
        faults.unavailable.load(Ordering::Relaxed) > 0
            && faults.stalled.load(Ordering::Relaxed) > 0
            && faults.dropped.load(Ordering::Relaxed) > 0,
        "the proxy injected no faults"
    );

    for id in &ids {
        let s = sessions.iter().find(|s| s["session_id"] == *id).unwrap();
        assert_eq!(s["status"], "ended", "{id}");
        assert_eq!(s["command_count"], COMMANDS, "{id}");
        assert_eq!(s["error_count"], COMMANDS / 10, "{id}");
        let events = server.events(id);
        assert_eq!(
            events.len() as u64,
            COMMANDS + 2,
            "{id}: start, commands, end"
        );
        let mut seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=COMMANDS).collect::<Vec<_>>(), "{id}");
    }
    let metrics = get_json(&format!("{}/metrics", server.url));
    eprintln!(
        "{}",
        metrics
            .as_str()
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("session_buddy_ingest_events_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(late);
}
