//! Faults of the database, with real processes: `serve` against a PostgreSQL cluster of the
//! test's own that is stopped (as by a crash) and started again during ingest, a PostgreSQL
//! pool held exhausted, and SQLite on a small tmpfs that fills up. While storage is away,
//! ingest answers 503 with `Retry-After` (507 for a full disk) and never 200 for what it did
//! not store; `/readyz` is not ready and names the cause; MCP tools answer an error that says
//! so; a tracked client keeps its events. When storage returns everything works again by
//! itself, and every acknowledged event is stored.
//!
//! The PostgreSQL tests need PostgreSQL's server binaries (`initdb`, `pg_ctl`; Debian's
//! `postgresql` package) and skip with a notice without them, except under `CI`, where they
//! fail. The disk-full test mounts a tmpfs and skips with a notice when not run as root.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Server, bin, session_id, start_event, stderr, stdout};

/// The `Retry-After` of a 503 for unavailable storage, and of a 507 (the server's constants).
const UNAVAILABLE_RETRY_AFTER: u64 = 5;
const FULL_RETRY_AFTER: u64 = 60;

// ---------------------------------------------------------------------------------------
// HTTP

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn answer(sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Answer, String> {
    let mut r = sent.map_err(|e| e.to_string())?;
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Answer {
        status: r.status().as_u16(),
        retry_after,
        body,
    })
}

fn get(url: &str) -> Answer {
    answer(agent().get(url).call()).unwrap()
}

fn post_events(url: &str, events: &[Value]) -> Result<Answer, String> {
    answer(agent().post(format!("{url}/v1/events")).send_json(events))
}

/// A tool's result over `/mcp` (stateless JSON-RPC): `isError` and `structuredContent`.
fn mcp_tool(url: &str, tool: &str, args: Value) -> Value {
    let a = answer(
        agent()
            .post(format!("{url}/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                              "params": {"name": tool, "arguments": args}})),
    )
    .unwrap();
    assert_eq!(a.status, 200, "{tool}: {}", a.body);
    a.body["result"].clone()
}

/// `n` new sessions of `component`, one a second from `first` seconds after a fixed start.
fn starts(component: &str, first: u32, n: u32) -> Vec<Value> {
    let base = chrono::DateTime::parse_from_rfc3339("2026-08-01T00:00:00Z").unwrap();
    (first..first + n)
        .map(|i| {
            let ts = base + chrono::Duration::seconds(i64::from(i));
            start_event(
                component,
                &ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
        })
        .collect()
}

/// What an ingest answer means: `Ok(Some(ids))` every event stored (200, each `accepted`),
/// `Ok(None)` refused as storage failures must be (`status` with `Retry-After` and an error
/// containing `words`), `Err` anything else.
fn sort_answer(
    batch: &[Value],
    sent: Result<Answer, String>,
    (status, words): (u16, &str),
) -> Result<Option<Vec<String>>, String> {
    let a = sent.map_err(|e| format!("no answer: {e}"))?;
    match a.status {
        200 => {
            let results = a.body["results"].as_array().cloned().unwrap_or_default();
            if results.len() != batch.len() || results.iter().any(|r| r["status"] != "accepted") {
                return Err(format!("a 200 that did not accept every event: {}", a.body));
            }
            Ok(Some(batch.iter().map(session_id).collect()))
        }
        s if s == status => {
            let error = a.body["error"].as_str().unwrap_or_default();
            if a.retry_after.is_none() || !error.contains(words) {
                return Err(format!(
                    "HTTP {s} with Retry-After {:?} and error {error:?} (expected '{words}')",
                    a.retry_after
                ));
            }
            Ok(None)
        }
        s => Err(format!("HTTP {s}: {}", a.body)),
    }
}

/// Polls `probe` every 50 ms until it gives a value; panics naming `what` after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn readyz_is(url: &str, status: u16) -> Option<Answer> {
    let a = get(&format!("{url}/readyz"));
    (a.status == status).then_some(a)
}

/// Every acknowledged session is stored (read back through the API).
fn assert_all_stored(url: &str, acked: &[String]) {
    let stored: HashSet<String> = crate::common::stored_session_ids(url).into_iter().collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged sessions are not stored, e.g. {:?}",
        missing.len(),
        acked.len(),
        missing.first()
    );
}

// ---------------------------------------------------------------------------------------
// Load from a few threads

#[derive(Default)]
struct Tally {
    acked: Mutex<Vec<String>>,
    stored_batches: AtomicU64,
    refused_batches: AtomicU64,
    unexpected: Mutex<Vec<String>>,
}

/// Threads posting batches of new sessions until stopped, sorting every answer.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tally: Arc<Tally>,
}

impl Load {
    fn start(url: &str, threads: usize, refusal: (u16, &'static str)) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let threads = (0..threads)
            .map(|w| {
                let (url, stop, tally) = (url.to_string(), stop.clone(), tally.clone());
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let batch = starts(&format!("fault{w}"), n, 10);
                        n += 10;
                        match sort_answer(&batch, post_events(&url, &batch), refusal) {
                            Ok(Some(ids)) => {
                                tally.acked.lock().unwrap().extend(ids);
                                tally.stored_batches.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(None) => {
                                tally.refused_batches.fetch_add(1, Ordering::Relaxed);
                                // Pacing, as a client backs off: not a wait for anything.
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            Err(e) => {
                                tally.unexpected.lock().unwrap().push(e);
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            threads,
            tally,
        }
    }

    fn stored(&self) -> u64 {
        self.tally.stored_batches.load(Ordering::Relaxed)
    }

    fn refused(&self) -> u64 {
        self.tally.refused_batches.load(Ordering::Relaxed)
    }

    /// Stops the threads; every session acknowledged, after checking no answer was unexpected.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        let unexpected = self.tally.unexpected.lock().unwrap();
        assert!(
            unexpected.is_empty(),
            "{} unexpected answers, e.g. {:?}",
            unexpected.len(),
            unexpected.first()
        );
        self.tally.acked.lock().unwrap().clone()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------
// A tracked client

/// A tracked program's side: its own home (journals, buffer) and the server's URL.
struct Tracked {
    home: tempfile::TempDir,
    url: String,
}

impl Tracked {
    fn new(url: &str) -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            url: url.to_string(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        bin()
            .env("SESSION_BUDDY_HOME", self.home.path())
            .env("SESSION_BUDDY_URL", &self.url)
            .args(args)
            .output()
            .unwrap()
    }

    fn pending(&self) -> u64 {
        let o = self.run(&["event-buffer", "status", "--format", "json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        v["pending"].as_u64().unwrap()
    }

    /// `track -- true` while storage is away: the program runs; delivery is refused with
    /// `words` (`HTTP 503`…) and the events stay buffered.
    fn track_during_outage(&self, words: &str) {
        let o = self.run(&["track", "--", "true"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = self.run(&["event-buffer", "replay", "--timeout", "10s"]);
        assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains(words), "{}", stderr(&o));
        assert!(self.pending() >= 2, "the start and the end stay buffered");
    }

    /// After recovery the buffered session arrives: stored, ended, nothing left buffered.
    fn delivered_after_recovery(&self) {
        let o = self.run(&["event-buffer", "replay", "--timeout", "30s"]);
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
        let url = format!("{}/v1/sessions?component=true&status=ended", self.url);
        wait_for(
            "the tracked session stored and ended",
            Duration::from_secs(30),
            || {
                let a = get(&url);
                (a.status == 200 && a.body["sessions"].as_array().is_some_and(|s| s.len() == 1))
                    .then_some(())
            },
        );
        assert_eq!(self.pending(), 0);
    }
}

// ---------------------------------------------------------------------------------------
// A PostgreSQL cluster of the test's own

/// The newest PostgreSQL server binaries' directory (`initdb`, `pg_ctl`).
fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| stdout(&o).trim() == "0")
}

/// A loopback port below the ephemeral range (where no outgoing connection takes it between
/// a stop and a start), free now.
fn quiet_port() -> u16 {
    loop {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 10_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A throwaway cluster in a temporary directory on a loopback port (as `scripts/pg-throwaway`
/// makes one, but with `synchronous_commit` on: a commit is in the WAL when acknowledged, so
/// an immediate stop loses nothing acknowledged). Stopped and removed when dropped.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run as `postgres` (initdb and postgres refuse root).
    as_postgres: bool,
}

impl Cluster {
    /// A new running cluster; `None` (the test skips) without PostgreSQL's binaries.
    fn start_new() -> Option<Self> {
        let Some(bin) = pg_bin() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL's server binaries (initdb, pg_ctl) are not under /usr/lib/postgresql, but CI is set"
            );
            eprintln!(
                "skipping a database fault test: no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)"
            );
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::tempdir().unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success(), "chown postgres {}", dir.path().display());
        }
        let mut cluster = Self {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        let data = cluster.data();
        let o = cluster.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(o.status.success(), "initdb: {}{}", stdout(&o), stderr(&o));
        for _ in 0..5 {
            cluster.port = quiet_port();
            if cluster.try_start().status.success() {
                return Some(cluster);
            }
        }
        panic!("PostgreSQL did not start: {}", cluster.log());
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn tool(&self, name: &str, args: &[&str]) -> Output {
        let program = self.bin.join(name);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.args(args).output().unwrap()
    }

    fn try_start(&self) -> Output {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c max_connections=50 -c shared_buffers=16MB",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        self.tool(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start",
            ],
        )
    }

    /// Starts it again on the same port.
    fn start(&self) {
        let o = self.try_start();
        assert!(
            o.status.success(),
            "pg_ctl start: {}{}",
            stderr(&o),
            self.log()
        );
    }

    /// Stops it as a crash would (`-m immediate`: no shutdown checkpoint; recovery at start).
    fn stop(&self) {
        let data = self.data();
        let o = self.tool(
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "-t", "60", "stop"],
        );
        assert!(o.status.success(), "pg_ctl stop: {}", stderr(&o));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.tool("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

#[test]
fn postgres_restarted_during_ingest_answers_503_and_loses_no_acknowledged_event() {
    let Some(pg) = Cluster::start_new() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        home.path(),
        &["--database-url", &pg.url(), "--db-pool-size", "4"],
    );
    let url = server.url.clone();
    let load = Load::start(&url, 3, (503, "storage is unavailable"));
    wait_for("ingest before the outage", Duration::from_secs(60), || {
        (load.stored() >= 20).then_some(())
    });

    pg.stop();
    let refused = load.refused();
    wait_for(
        "503s while PostgreSQL is down",
        Duration::from_secs(30),
        || (load.refused() >= refused + 5).then_some(()),
    );
    let not_ready = wait_for("/readyz not ready", Duration::from_secs(30), || {
        readyz_is(&url, 503)
    });
    assert_eq!(not_ready.body["status"], "not ready", "{}", not_ready.body);
    assert_eq!(not_ready.body["cause"], "unavailable", "{}", not_ready.body);
    assert_eq!(not_ready.retry_after, Some(UNAVAILABLE_RETRY_AFTER));
    let health = get(&format!("{url}/health"));
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(health.body["storage"]["cause"], "unavailable");
    let start = starts("mcp", 0, 1).remove(0);
    let tool = mcp_tool(&url, "track_session_start", start.clone());
    assert_eq!(tool["isError"], true, "{tool}");
    let error = tool["structuredContent"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("storage is unavailable"), "{tool}");
    let tool = mcp_tool(&url, "list_sessions", json!({}));
    assert_eq!(tool["isError"], true, "{tool}");
    let tracked = Tracked::new(&url);
    tracked.track_during_outage("HTTP 503");

    pg.start();
    wait_for(
        "/readyz ready after PostgreSQL is back",
        Duration::from_secs(60),
        || readyz_is(&url, 200),
    );
    let stored = load.stored();
    wait_for("ingest accepted again", Duration::from_secs(60), || {
        (load.stored() >= stored + 5).then_some(())
    });
    let mut acked = load.finish();
    let tool = mcp_tool(&url, "track_session_start", start.clone());
    assert_eq!(tool["structuredContent"]["status"], "tracked", "{tool}");
    acked.push(session_id(&start));
    tracked.delivered_after_recovery();
    assert_all_stored(&url, &acked);
}

#[test]
fn an_exhausted_postgres_pool_answers_503_within_its_wait_not_a_hang() {
    let Some(pg) = Cluster::start_new() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        home.path(),
        &["--database-url", &pg.url(), "--db-pool-size", "1"],
    );
    let url = server.url.clone();
    let refusal = (503, "storage is unavailable");
    let first = starts("pool", 0, 5);
    assert!(matches!(
        sort_answer(&first, post_events(&url, &first), refusal),
        Ok(Some(_))
    ));

    // Another client of the database keeps writes to `events` waiting (SHARE: reads, such
    // as the gauges' and the reaper's, go on), so the one pooled connection's ingest waits
    // for it: the pool is exhausted.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (locker, connection) = runtime
        .block_on(tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls))
        .unwrap();
    runtime.spawn(connection);
    runtime
        .block_on(locker.batch_execute("BEGIN; LOCK TABLE events IN SHARE MODE"))
        .unwrap();
    let held = starts("pool", 100, 5);
    let holder = {
        let (url, held) = (url.clone(), held.clone());
        std::thread::spawn(move || sort_answer(&held, post_events(&url, &held), refusal))
    };
    let waiting =
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'events'::regclass";
    wait_for(
        "an ingest waiting for the lock",
        Duration::from_secs(30),
        || {
            let row = runtime.block_on(locker.query_one(waiting, &[])).unwrap();
            (row.get::<_, i64>(0) > 0).then_some(())
        },
    );

    let second = starts("pool", 200, 5);
    let asked = Instant::now();
    let refused = sort_answer(&second, post_events(&url, &second), refusal);
    let took = asked.elapsed();
    assert!(matches!(refused, Ok(None)), "{refused:?}");
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    let not_ready = readyz_is(&url, 503).expect("/readyz not ready while the pool is exhausted");
    assert_eq!(not_ready.body["cause"], "unavailable", "{}", not_ready.body);

    runtime.block_on(locker.batch_execute("ROLLBACK")).unwrap();
    let held_answer = holder.join().unwrap();
    assert!(matches!(held_answer, Ok(Some(_))), "{held_answer:?}");
    let again = sort_answer(&second, post_events(&url, &second), refusal);
    assert!(matches!(again, Ok(Some(_))), "{again:?}");
    let acked: Vec<String> = [first, held, second]
        .concat()
        .iter()
        .map(session_id)
        .collect();
    assert_all_stored(&url, &acked);
}

// ---------------------------------------------------------------------------------------
// SQLite on a disk that fills up

/// A small tmpfs mounted for the test; unmounted when dropped (after the server using it).
struct SmallDisk {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SmallDisk {
    /// `None` (the test skips) when not root, or when this system refuses the mount.
    fn mount(size: &str) -> Option<Self> {
        if !is_root() {
            eprintln!("skipping the disk-full test: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .output()
            .unwrap();
        if !o.status.success() {
            eprintln!(
                "skipping the disk-full test: cannot mount a tmpfs: {}",
                stderr(&o).trim()
            );
            return None;
        }
        Some(Self { _dir: dir, path })
    }

    /// Fills what is left with a file; its path.
    fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        for chunk in [64 * 1024, 4096, 512] {
            let zeros = vec![0u8; chunk];
            let error = loop {
                if let Err(e) = f.write_all(&zeros) {
                    break e;
                }
            };
            assert_eq!(error.raw_os_error(), Some(28), "ENOSPC expected: {error}");
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

#[test]
fn sqlite_on_a_full_disk_answers_507_and_recovers_when_space_returns() {
    let Some(disk) = SmallDisk::mount("16m") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let db = disk.path.join("sessions.db").display().to_string();
    let mut server = Server::start_with(home.path(), &["--db-path", &db]);
    let url = server.url.clone();
    let refusal = (507, "storage is full");
    let mut acked = Vec::new();
    let mut n = 0;
    let mut send = |acked: &mut Vec<String>| {
        let batch = starts("disk", n, 50);
        n += 50;
        let sorted = sort_answer(&batch, post_events(&url, &batch), refusal);
        let sorted = sorted.unwrap_or_else(|e| panic!("{e}"));
        let stored = sorted.is_some();
        acked.extend(sorted.unwrap_or_default());
        stored
    };
    for _ in 0..5 {
        assert!(send(&mut acked), "ingest before the disk is full");
    }

    let filler = disk.fill();
    // What still fits in the space SQLite already holds is stored (and must be 200); once a
    // write found the disk full, every write is refused until there is room again.
    let refused = (0..400).position(|_| !send(&mut acked));
    assert!(refused.is_some(), "no 507 in 400 batches on a full disk");
    for _ in 0..2 {
        assert!(!send(&mut acked), "a write stored while the disk is full");
    }
    let not_ready = wait_for("/readyz not ready", Duration::from_secs(30), || {
        readyz_is(&url, 503)
    });
    assert_eq!(not_ready.body["cause"], "full", "{}", not_ready.body);
    assert_eq!(not_ready.retry_after, Some(FULL_RETRY_AFTER));
    let error = not_ready.body["error"].as_str().unwrap_or_default();
    assert!(error.contains("free space"), "{error}");
    let start = starts("mcp", 0, 1).remove(0);
    let tool = mcp_tool(&url, "track_session_start", start.clone());
    assert_eq!(tool["isError"], true, "{tool}");
    let error = tool["structuredContent"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("storage is full"), "{tool}");
    let tracked = Tracked::new(&url);
    tracked.track_during_outage("HTTP 507");
    // Reads still work.
    assert_eq!(get(&format!("{url}/v1/sessions?limit=1")).status, 200);

    std::fs::remove_file(&filler).unwrap();
    wait_for(
        "/readyz ready once space is back",
        Duration::from_secs(30),
        || readyz_is(&url, 200),
    );
    assert!(send(&mut acked), "ingest accepted again");
    let tool = mcp_tool(&url, "track_session_start", start.clone());
    assert_eq!(tool["structuredContent"]["status"], "tracked", "{tool}");
    acked.push(session_id(&start));
    tracked.delivered_after_recovery();
    assert_all_stored(&url, &acked);

    // And durably: after a kill -9 and a restart on the same file.
    server.kill9();
    let server = Server::start_with(home.path(), &["--db-path", &db]);
    assert_all_stored(&server.url, &acked);
}
