//! `bench stream`: what open `GET /v1/stream` viewers cost ingest. One run measures the ingest
//! load three times, side by side — with no viewer, with `viewers` viewers reading all they
//! are sent, with no viewer again (ingest slows as the database grows, so the viewers' phase is
//! compared with the mean of the two around it) — and, during the second, the latency from
//! posting a start to its frame reaching a viewer that follows only the probes' host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::load::{
    Connection, IngestRun, NEXT_EVENT, ingest_run, percentile, runtime, start_event,
};
use crate::{IngestOptions, loopback_target};

#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// The ingest load (its duration is each phase's).
    pub ingest: IngestOptions,
    /// Viewers open during the second phase.
    pub viewers: usize,
    /// A probe start is posted this often during the second phase, to time ingest → frame.
    pub probe_every: Duration,
}

/// Runs both phases and prints them side by side.
pub fn stream(options: StreamOptions) -> anyhow::Result<()> {
    runtime()?.block_on(stream_async(options))
}

/// The host of the probes' sessions, which the timing viewer follows (`?host=`): it is sent
/// the probes' frames only, so the flood never puts it over its byte budget.
const PROBE_HOST: &str = "bench-probe";

/// What the viewers saw.
#[derive(Default)]
struct Seen {
    frames: AtomicU64,
    resyncs: AtomicU64,
    bytes: AtomicU64,
    /// Probe event id → when it was posted.
    probes: Mutex<HashMap<String, Instant>>,
    /// Probe latencies, µs.
    latencies_us: Mutex<Vec<u32>>,
}

async fn stream_async(o: StreamOptions) -> anyhow::Result<()> {
    if o.viewers == 0 || o.viewers > 4096 {
        bail!("--viewers must be from 1 to 4096");
    }
    let (addr, host) = loopback_target(&o.ingest.common.url)?;
    let alone = ingest_run(&o.ingest).await?;

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut viewers = Vec::with_capacity(o.viewers);
    for i in 0..o.viewers {
        let query = if i == 0 {
            format!("?host={PROBE_HOST}")
        } else {
            String::new()
        };
        let body = open_viewer(addr, &host, &query)
            .await
            .with_context(|| format!("cannot open stream viewer {}", i + 1))?;
        let (seen, stop) = (seen.clone(), stop.clone());
        // One viewer, following the probes' host, decodes frames to time them; the others
        // follow everything and read bytes as a browser would, without work of their own that
        // would slow the box.
        viewers.push(tokio::spawn(read_viewer(body, i == 0, seen, stop)));
    }
    let prober = {
        let (seen, stop, host) = (seen.clone(), stop.clone(), host.clone());
        let every = o.probe_every;
        tokio::spawn(async move { probe(addr, &host, every, &seen, &stop).await })
    };
    let watched = ingest_run(&o.ingest).await?;
    stop.store(true, Ordering::Relaxed);
    // A last probe's frame may still be on its way.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let probe_errors = prober.await.unwrap_or(Ok(0))?;
    for v in viewers {
        v.abort();
    }
    let after = ingest_run(&o.ingest).await?;
    report(&o, [&alone, &watched, &after], &seen, probe_errors)
}

type Body = hyper::body::Incoming;

async fn open_viewer(addr: SocketAddr, host: &str, query: &str) -> anyhow::Result<Body> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut request = Request::get(format!("/v1/stream{query}"))
        .header(HOST, host)
        .header(ACCEPT, "text/event-stream");
    if let Some(t) = std::env::var("SESSION_BUDDY_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new())?)
        .await?;
    if response.status() != StatusCode::OK {
        let status = response.status();
        let text = response.into_body().collect().await?.to_bytes();
        bail!(
            "GET /v1/stream answered {status}: {}",
            String::from_utf8_lossy(&text)
        );
    }
    Ok(response.into_body())
}

async fn read_viewer(mut body: Body, decode: bool, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    let mut buffer = String::new();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        if !decode {
            let text = String::from_utf8_lossy(&data);
            seen.frames.fetch_add(
                text.matches("event: session").count() as u64,
                Ordering::Relaxed,
            );
            seen.resyncs.fetch_add(
                text.matches("event: resync").count() as u64,
                Ordering::Relaxed,
            );
            continue;
        }
        buffer.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.starts_with("event: resync") {
                seen.resyncs.fetch_add(1, Ordering::Relaxed);
            }
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            seen.frames.fetch_add(1, Ordering::Relaxed);
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            let now = Instant::now();
            for e in v["events"].as_array().into_iter().flatten() {
                let Some(id) = e["event_id"].as_str() else {
                    continue;
                };
                let sent = seen.probes.lock().ok().and_then(|mut p| p.remove(id));
                if let (Some(sent), Ok(mut lat)) = (sent, seen.latencies_us.lock()) {
                    lat.push(now.duration_since(sent).as_micros().min(u32::MAX as u128) as u32);
                }
            }
        }
        if stop.load(Ordering::Relaxed) && seen.probes.lock().is_ok_and(|p| p.is_empty()) {
            return;
        }
    }
}

/// Posts one start every `every` until `stop`; returns how many posts failed.
async fn probe(
    addr: SocketAddr,
    host: &str,
    every: Duration,
    seen: &Seen,
    stop: &AtomicBool,
) -> anyhow::Result<u64> {
    let mut conn = Connection::open(addr, host).await?;
    let mut errors = 0;
    let mut tick = tokio::time::interval(every);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let event = start_event(NEXT_EVENT.fetch_add(1, Ordering::Relaxed)).replace(
            "\"hostname\":\"bench-host\"",
            &format!("\"hostname\":\"{PROBE_HOST}\""),
        );
        let id = serde_json::from_str::<Value>(&event)?["event_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let sent = Instant::now();
        if let Ok(mut p) = seen.probes.lock() {
            p.insert(id, sent);
        }
        match conn
            .post("/v1/events", "application/json", format!("[{event}]"))
            .await
        {
            Ok((StatusCode::OK, _, _)) => {}
            _ => errors += 1,
        }
    }
    Ok(errors)
}

fn report(
    o: &StreamOptions,
    [alone, watched, after]: [&IngestRun; 3],
    seen: &Seen,
    probe_errors: u64,
) -> anyhow::Result<()> {
    let mut lat = seen
        .latencies_us
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    lat.sort_unstable();
    let lost = seen.probes.lock().map(|p| p.len()).unwrap_or(0);
    let baseline = (alone.rate() + after.rate()) / 2.0;
    let cost = if baseline > 0.0 {
        100.0 * (1.0 - watched.rate() / baseline)
    } else {
        0.0
    };
    let summary = json!({
        "bench": "stream",
        "setup": {
            "connections": o.ingest.connections,
            "batch": o.ingest.batch,
            "viewers": o.viewers,
            "seconds_per_phase": o.ingest.common.duration.as_secs_f64(),
            "url": o.ingest.common.url,
        },
        "no_viewer": {"events": alone.events, "events_per_second": alone.rate(), "errors": alone.errors},
        "with_viewers": {"events": watched.events, "events_per_second": watched.rate(), "errors": watched.errors},
        "no_viewer_after": {"events": after.events, "events_per_second": after.rate(), "errors": after.errors},
        "throughput_cost_percent": cost,
        "frame_latency_ms": {
            "probes": lat.len(),
            "p50": percentile(&lat, 0.50),
            "p99": percentile(&lat, 0.99),
            "max": percentile(&lat, 1.0),
            "never_seen": lost,
            "probe_errors": probe_errors,
        },
        "viewers_received": {
            "frames": seen.frames.load(Ordering::Relaxed),
            "resyncs": seen.resyncs.load(Ordering::Relaxed),
            "bytes": seen.bytes.load(Ordering::Relaxed),
        },
        "first_error": alone
            .first_error
            .clone()
            .or(watched.first_error.clone())
            .or(after.first_error.clone()),
    });
    if o.ingest.common.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "bench stream  connections {}, batch {}, {} s per phase",
            o.ingest.connections,
            o.ingest.batch,
            o.ingest.common.duration.as_secs_f64()
        );
        println!(
            "  ingest, no viewer:     {:>10.0} events/s ({} events, {} errors)",
            alone.rate(),
            alone.events,
            alone.errors
        );
        println!(
            "  ingest, {:>4} viewers: {:>10.0} events/s ({} events, {} errors)",
            o.viewers,
            watched.rate(),
            watched.events,
            watched.errors
        );
        println!(
            "  ingest, no viewer:     {:>10.0} events/s ({} events, {} errors), again",
            after.rate(),
            after.events,
            after.errors
        );
        println!("  cost of the viewers:   {cost:.1} % (against the mean of the phases around)");
        println!(
            "  ingest → frame (a viewer of the probes' host): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} probes, {lost} never seen)",
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0),
            lat.len()
        );
        println!(
            "  viewers received {} frames, {} resyncs, {} bytes",
            seen.frames.load(Ordering::Relaxed),
            seen.resyncs.load(Ordering::Relaxed),
            seen.bytes.load(Ordering::Relaxed)
        );
    }
    if alone.events == 0 || watched.events == 0 || after.events == 0 {
        bail!("nothing was delivered; is the server at the URL running?");
    }
    Ok(())
}
