//! Every helper of every shell, end to end: a real server seeded through `POST /v1/events`
//! with a dataset whose numbers are worked out by hand below, then each helper run by
//! `session-buddy shell <component> -c …` (tracking off, so the helpers' own sessions do not
//! change the data they read), its output checked number by number.
//!
//! Coverage, helper → test:
//! - oneiric: `show_layers`, `validate_config`, `reload_settings`: not here (the engineer who
//!   reworks configuration tests them).
//! - session-buddy: `ps`, `active`, `insights` → [`session_buddy_helpers_show_the_dataset`];
//!   `quality`: not here (its rule is being made the server's, tested with that change).
//! - mahavishnu: `ps`, `top`, `errors` → [`mahavishnu_helpers_count_the_dataset`]; `sync` →
//!   `shell_machine::mahavishnu_sync_delivers_what_the_buffer_holds`; `ps` of its own tracked
//!   shell → `shell_machine::mahavishnu_ps_shows_its_own_tracked_shell_once_sync_delivered_it`.
//! - crackerjack: `crack`, `test`, `lint`, `scan`, `format_code`, `typecheck`, `show_adapters` →
//!   `shell_machine::crackerjack_*` (fake tools on PATH, temp projects); `show_hooks` →
//!   `shell_machine::crackerjack_show_hooks_reads_a_real_repository`.
//! - akosha: `aggregate` (component, user, host, day), `search`, `detect`, `graph`, `trends`
//!   (hour, day, week) → [`akosha_helpers_count_the_dataset`] (`graph` and `aggregate` also
//!   read from stdin there).
//! - fastblocks: `build`, `render` → [`fastblocks_build_and_render_write_the_dataset`];
//!   `routes`, `auth`: not here (being rebuilt on the server's route table and one token code).
//! - Beyond one page (1205 sessions, 1010 command events): `akosha aggregate`,
//!   `session-buddy ps`/`insights`, `mahavishnu errors`, `fastblocks build` →
//!   [`helpers_read_every_page_and_the_latest_events`].
//! - Local time (UTC+05:30): `insights`' busiest hours, `trends hour`, `ps`, `errors` →
//!   [`helpers_bucket_and_print_in_local_time`].
//! - Every reading helper on an empty server and with the server gone →
//!   [`with_no_data_the_helpers_say_so_and_with_no_server_they_say_where`].
//!
//! The dataset (times from B = yesterday 09:00 UTC; every shell runs with TZ=UTC; H is this
//! machine's hostname):
//!
//! | key   | component     | user  | host  | start  | end                  | commands (✗ failed)        |
//! |-------|---------------|-------|-------|--------|----------------------|----------------------------|
//! | a1–a8 | akosha        | alice | H     | B+5i m | +60 s, exit 0        | a1: search✗ search✗ detect; a2: search✗ graph✗ |
//! | a9    | akosha        | alice | box-b | 09:45  | +3600 s, exit 0      | trends, trends             |
//! | m1–m3 | mahavishnu    | bob   | box-b | 09:31/32/34 | abandoned at last event (120/180/300 s) | m2: aggregate |
//! | o1    | oneiric       | alice | box-b | 10:00  | +10 s, exit 0        |                            |
//! | c1    | crackerjack   | carol | H     | 11:00  | +90 s, exit 2        | lint, test✗                |
//! | c2    | crackerjack   | carol | H     | 11:05  | +45 s, sigterm 143   |                            |
//! | s1    | session-buddy | alice | H     | 11:10  | active, pid = this test | ps                      |
//! | s2    | fastblocks    | bob   | H     | 11:20  | active, pid never alive |                         |
//! | s3    | oneiric       | carol | box-b | 11:30  | active               |                            |
//!
//! a9 carries metadata `{"role": "Diviner", "tags": ["nightly", "gpu"]}`. Every command
//! event says `duration_ms: 1500`.
//!
//! 18 sessions (12 ended, 3 abandoned, 3 active), 11 command events of which 5 failed.
//! The m sessions announce heartbeats and the server's session TTL is 2 s, so the reaper
//! abandons them; the active ones announce none and fall under the legacy TTL (24 h).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::common::{Server, bin, session_id};

/// This machine's hostname, as mahavishnu's `ps` reads it.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .expect("a hostname")
}

/// Above the kernel's largest pid (pid_max is at most 4194304): never a live process.
const DEAD_PID: u32 = 4_194_304;

/// What one shell run printed and how it exited.
pub struct Ran {
    pub code: Option<i32>,
    pub out: String,
    pub err: String,
}

impl Ran {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code(),
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts exit code 0 and returns stdout.
    pub fn ok(self, what: &str) -> String {
        assert_eq!(
            self.code,
            Some(0),
            "{what}: stdout:\n{}\nstderr:\n{}",
            self.out,
            self.err
        );
        self.out
    }
}

/// `session-buddy shell COMPONENT -c COMMANDS` with tracking off, against `url`, in `cwd`.
pub fn shell_run(
    home: &Path,
    url: &str,
    component: &str,
    commands: &str,
    cwd: Option<&Path>,
    env: &[(&str, &str)],
) -> Ran {
    let mut c = bin();
    c.env("SESSION_BUDDY_HOME", home)
        .env("SESSION_BUDDY_URL", url)
        .env("SESSION_BUDDY_TRACKING", "off")
        .args(["shell", component, "--no-banner", "-c", commands]);
    if let Some(dir) = cwd {
        c.current_dir(dir);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    Ran::from(c.output().unwrap())
}

/// `session-buddy shell COMPONENT` reading `lines` from stdin, tracking off, against `url`.
pub fn stdin_run(home: &Path, url: &str, component: &str, lines: &str) -> Ran {
    use std::io::Write;
    let mut child = bin()
        .env("SESSION_BUDDY_HOME", home)
        .env("SESSION_BUDDY_URL", url)
        .env("SESSION_BUDDY_TRACKING", "off")
        .args(["shell", component, "--no-banner"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    Ran::from(child.wait_with_output().unwrap())
}

/// The cells of a table line: columns are separated by two spaces or more.
pub fn cells(line: &str) -> Vec<String> {
    line.trim()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// The cells of the first line of `text` whose first cell is `first`.
pub fn row(text: &str, first: &str) -> Vec<String> {
    text.lines()
        .map(cells)
        .find(|c| c.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no row starting with '{first}' in:\n{text}"))
}

/// The first cells of the table lines after the line `header_first…` up to an empty line.
fn first_column(text: &str, header_first: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| cells(l).first().map(String::as_str) != Some(header_first))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| cells(l).into_iter().next())
        .collect()
}

/// Builds the events of the dataset.
struct Builder {
    base: DateTime<Utc>,
    events: Vec<Value>,
    ids: BTreeMap<String, String>,
    seq: BTreeMap<String, u64>,
}

impl Builder {
    fn ts(&self, secs: i64) -> String {
        (self.base + TimeDelta::seconds(secs)).to_rfc3339()
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        key: &str,
        component: &str,
        user: &str,
        host: &str,
        pid: u32,
        at: i64,
        heartbeats: bool,
    ) {
        let mut e = json!({
            "event_version": "1.1",
            "event_id": uuid::Uuid::new_v4().to_string(),
            "event_type": "session_start",
            "component_name": component,
            "shell_type": "TestShell",
            "timestamp": self.ts(at),
            "pid": pid,
            "user": {"username": user, "home": format!("/home/{user}")},
            "hostname": host,
            "environment": {"platform": "Linux", "cwd": format!("/srv/{component}"), "runtime": "rust 1.95"},
            "metadata": {}
        });
        if heartbeats {
            e["heartbeat_interval_seconds"] = json!(30);
        }
        self.ids.insert(key.to_string(), session_id(&e));
        self.events.push(e);
    }

    /// Sets the metadata of the session started last.
    fn metadata(&mut self, metadata: Value) {
        let start = self
            .events
            .iter_mut()
            .rev()
            .find(|e| e["event_type"] == "session_start")
            .unwrap();
        start["metadata"] = metadata;
    }

    fn command(&mut self, key: &str, at: i64, name: &str, args: &str, error: Option<&str>) {
        let seq = {
            let seq = self.seq.entry(key.to_string()).or_default();
            *seq += 1;
            *seq
        };
        let mut e = json!({
            "event_version": "1.1",
            "event_id": uuid::Uuid::new_v4().to_string(),
            "event_type": "command",
            "session_id": self.ids[key],
            "timestamp": self.ts(at),
            "seq": seq,
            "command": name,
            "args": args,
            "success": error.is_none(),
            "duration_ms": 1500,
        });
        if let Some(error) = error {
            e["error"] = json!(error);
        }
        self.events.push(e);
    }

    fn heartbeat(&mut self, key: &str, at: i64) {
        let e = json!({
            "event_version": "1.1",
            "event_id": uuid::Uuid::new_v4().to_string(),
            "event_type": "heartbeat",
            "session_id": self.ids[key],
            "timestamp": self.ts(at),
        });
        self.events.push(e);
    }

    fn end(&mut self, key: &str, at: i64, reason: &str, exit: i32, signal: Option<&str>) {
        let mut e = json!({
            "event_version": "1.1",
            "event_id": uuid::Uuid::new_v4().to_string(),
            "event_type": "session_end",
            "session_id": self.ids[key],
            "timestamp": self.ts(at),
            "reason": reason,
            "exit_code": exit,
            "metadata": {}
        });
        if let Some(s) = signal {
            e["signal"] = json!(s);
        }
        self.events.push(e);
    }
}

/// A server holding the dataset of this module's opening comment.
pub struct Dataset {
    pub server: Server,
    _home: tempfile::TempDir,
    /// Yesterday 09:00 UTC.
    pub base: DateTime<Utc>,
    pub host: String,
    ids: BTreeMap<String, String>,
}

const A: [&str; 8] = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
const MIN: i64 = 60;

impl Dataset {
    pub fn seed() -> Self {
        let home = tempfile::tempdir().unwrap();
        let server = Server::start_with(home.path(), &["--session-ttl", "2s"]);
        let host = this_host();
        assert_ne!(host, "box-b");
        let yesterday = Utc::now().date_naive() - Days::new(1);
        let base = yesterday.and_hms_opt(9, 0, 0).unwrap().and_utc();
        let mut b = Builder {
            base,
            events: Vec::new(),
            ids: BTreeMap::new(),
            seq: BTreeMap::new(),
        };
        for (i, key) in A.iter().enumerate() {
            let at = i as i64 * 5 * MIN;
            b.start(key, "akosha", "alice", &host, 4242, at, false);
            match *key {
                "a1" => {
                    b.command(key, at + 10, "search", "x", Some("index missing"));
                    b.command(key, at + 20, "search", "y", Some("index missing"));
                    b.command(key, at + 30, "detect", "", None);
                }
                "a2" => {
                    b.command(key, at + 10, "search", "z", Some("timeout after 5s"));
                    b.command(key, at + 20, "graph", "", Some("no data"));
                }
                _ => {}
            }
            b.end(key, at + 60, "exit", 0, None);
        }
        b.start("a9", "akosha", "alice", "box-b", 4243, 45 * MIN, false);
        b.metadata(json!({"role": "Diviner", "tags": ["nightly", "gpu"]}));
        b.command("a9", 70 * MIN, "trends", "hour", None);
        b.command("a9", 100 * MIN, "trends", "day 7", None);
        b.end("a9", 45 * MIN + 3600, "exit", 0, None);

        b.start("m1", "mahavishnu", "bob", "box-b", 500, 31 * MIN, true);
        b.heartbeat("m1", 33 * MIN);
        b.start("m2", "mahavishnu", "bob", "box-b", 501, 32 * MIN, true);
        b.command("m2", 35 * MIN, "aggregate", "user", None);
        b.start("m3", "mahavishnu", "bob", "box-b", 502, 34 * MIN, true);
        b.heartbeat("m3", 39 * MIN);

        b.start("o1", "oneiric", "alice", "box-b", 600, 60 * MIN, false);
        b.end("o1", 60 * MIN + 10, "exit", 0, None);

        b.start("c1", "crackerjack", "carol", &host, 700, 120 * MIN, false);
        b.command("c1", 120 * MIN + 10, "lint", "", None);
        b.command(
            "c1",
            120 * MIN + 30,
            "test",
            "-k smoke",
            Some("1 test failed"),
        );
        b.end("c1", 120 * MIN + 90, "exit", 2, None);
        b.start("c2", "crackerjack", "carol", &host, 701, 125 * MIN, false);
        b.end("c2", 125 * MIN + 45, "sigterm", 143, Some("SIGTERM"));

        b.start(
            "s1",
            "session-buddy",
            "alice",
            &host,
            std::process::id(),
            130 * MIN,
            false,
        );
        b.command("s1", 131 * MIN, "ps", "5", None);
        b.start("s2", "fastblocks", "bob", &host, DEAD_PID, 140 * MIN, false);
        b.start("s3", "oneiric", "carol", "box-b", 777, 150 * MIN, false);

        let results = server.post(&b.events);
        assert_eq!(results.len(), b.events.len());
        for r in &results {
            assert_eq!(r["status"], "accepted", "{r}");
        }
        let data = Self {
            server,
            _home: home,
            base,
            host,
            ids: b.ids,
        };
        data.wait_for_reaper();
        data
    }

    /// Waits until the reaper has abandoned the three mahavishnu sessions.
    fn wait_for_reaper(&self) {
        let started = Instant::now();
        loop {
            let v: Value = ureq::get(format!("{}/v1/sessions", self.server.url))
                .query("status", "abandoned")
                .call()
                .unwrap()
                .body_mut()
                .read_json()
                .unwrap();
            let n = v["sessions"].as_array().unwrap().len();
            if n == 3 {
                return;
            }
            assert!(n < 3, "more abandoned sessions than the dataset has: {v}");
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "the reaper did not abandon the three silent sessions: {v}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn id(&self, key: &str) -> &str {
        &self.ids[key]
    }

    /// B + `secs` as the helpers print times (UTC here).
    pub fn at(&self, secs: i64) -> String {
        (self.base + TimeDelta::seconds(secs))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    pub fn day(&self) -> String {
        self.base.format("%Y-%m-%d").to_string()
    }

    pub fn run(&self, component: &str, commands: &str) -> Ran {
        shell_run(
            &self.server.home,
            &self.server.url,
            component,
            commands,
            None,
            &[],
        )
    }

    pub fn ok(&self, component: &str, commands: &str) -> String {
        self.run(component, commands)
            .ok(&format!("{component} -c '{commands}'"))
    }

    /// The session ids of `keys`, in that order.
    fn ids_of(&self, keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| self.id(k).to_string()).collect()
    }
}

/// Newest start first: the order of `GET /v1/sessions`.
const NEWEST_FIRST: [&str; 18] = [
    "s3", "s2", "s1", "c2", "c1", "o1", "a9", "a8", "m3", "m2", "m1", "a7", "a6", "a5", "a4", "a3",
    "a2", "a1",
];

#[test]
fn session_buddy_helpers_show_the_dataset() {
    let d = Dataset::seed();

    // ps: every session, newest first, with its numbers.
    let ps = d.ok("session-buddy", "ps 50");
    assert!(
        ps.starts_with("Recent sessions, newest first (18 shown):\n"),
        "{ps}"
    );
    assert_eq!(first_column(&ps, "Session ID"), d.ids_of(&NEWEST_FIRST));
    let check_row = |key: &str, cells: &[&str]| {
        let mut want = vec![d.id(key).to_string()];
        want.extend(cells.iter().map(|c| c.to_string()));
        assert_eq!(row(&ps, d.id(key)), want, "{ps}");
    };
    let h = d.host.as_str();
    check_row(
        "a1",
        &["akosha", "alice", h, "ended", &d.at(0), "1m 00s", "3", "2"],
    );
    check_row(
        "a9",
        &[
            "akosha",
            "alice",
            "box-b",
            "ended",
            &d.at(2700),
            "1h 00m 00s",
            "2",
            "0",
        ],
    );
    check_row(
        "m2",
        &[
            "mahavishnu",
            "bob",
            "box-b",
            "abandoned",
            &d.at(1920),
            "3m 00s",
            "1",
            "0",
        ],
    );
    check_row(
        "o1",
        &[
            "oneiric",
            "alice",
            "box-b",
            "ended",
            &d.at(3600),
            "10.0s",
            "0",
            "0",
        ],
    );
    check_row(
        "c1",
        &[
            "crackerjack",
            "carol",
            h,
            "ended",
            &d.at(7200),
            "1m 30s",
            "2",
            "1",
        ],
    );
    check_row(
        "c2",
        &[
            "crackerjack",
            "carol",
            h,
            "ended",
            &d.at(7500),
            "45.0s",
            "0",
            "0",
        ],
    );
    let s1 = row(&ps, d.id("s1"));
    assert_eq!(
        &s1[1..6],
        ["session-buddy", "alice", h, "active", &d.at(7800)]
    );
    assert!(s1[6].ends_with("(running)"), "{s1:?}");
    assert_eq!(&s1[7..], ["1", "0"]);
    // A limit shows the newest only.
    let ps5 = d.ok("session-buddy", "ps 5");
    assert!(
        ps5.starts_with("Recent sessions, newest first (5 shown):\n"),
        "{ps5}"
    );
    assert_eq!(
        first_column(&ps5, "Session ID"),
        d.ids_of(&NEWEST_FIRST[..5])
    );

    for (bad, says) in [
        (
            "ps 0",
            "limit must be a whole number from 1 to 1000, got '0'",
        ),
        ("ps 5 6", "too many arguments; usage: ps [limit]"),
        (
            "insights many",
            "limit must be a whole number from 1 to 1000, got 'many'",
        ),
    ] {
        let r = d.run("session-buddy", bad);
        assert_eq!(r.code, Some(1), "{bad}");
        assert!(r.err.contains(says), "{bad}: {}", r.err);
    }

    // active: the three active sessions, the longest running first.
    let active = d.ok("session-buddy", "active");
    assert!(
        active.starts_with(
            "3 active sessions (fastblocks 1, oneiric 1, session-buddy 1), longest running first:\n"
        ),
        "{active}"
    );
    assert_eq!(
        first_column(&active, "Session ID"),
        d.ids_of(&["s1", "s2", "s3"])
    );
    let pid = std::process::id().to_string();
    for (key, component, user, host, pid, started, commands) in [
        ("s1", "session-buddy", "alice", h, pid.as_str(), 7800, "1"),
        ("s2", "fastblocks", "bob", h, "4194304", 8400, "0"),
        ("s3", "oneiric", "carol", "box-b", "777", 9000, "0"),
    ] {
        let r = row(&active, d.id(key));
        assert_eq!(
            &r[1..6],
            [component, user, host, pid, &d.at(started)],
            "{r:?}"
        );
        assert!(r[7].ends_with(" ago"), "{r:?}");
        assert_eq!(r[8], commands, "{r:?}");
    }

    // insights: the longest, the failing commands, the abandoned, the busiest hour.
    let ins = d.ok("session-buddy", "insights 3");
    assert!(
        ins.starts_with("Insights over 18 sessions and the latest 11 command events.\n"),
        "{ins}"
    );
    let longest = section(&ins, "Longest sessions:");
    assert_eq!(
        first_cells(&longest),
        ["1h 00m 00s", "5m 00s", "3m 00s"],
        "{ins}"
    );
    assert_eq!(row(&longest, "1h 00m 00s")[1], d.id("a9"));
    assert_eq!(
        row(&longest, "5m 00s")[1..],
        [d.id("m3"), "bob@box-b", "abandoned", &d.at(2040)]
    );
    let failing = section(&ins, "Most failing commands:");
    assert_eq!(first_cells(&failing), ["search", "test", "graph"], "{ins}");
    assert_eq!(
        row(&failing, "search")[1..],
        ["3/3", &d.at(310), "timeout after 5s"]
    );
    assert_eq!(
        row(&failing, "test")[1..],
        ["1/1", &d.at(7230), "1 test failed"]
    );
    assert_eq!(row(&failing, "graph")[1..], ["1/1", &d.at(320), "no data"]);
    let abandoned = section(&ins, "Abandoned sessions (newest first):");
    assert_eq!(
        first_cells(&abandoned),
        d.ids_of(&["m3", "m2", "m1"]),
        "{ins}"
    );
    assert_eq!(
        row(&abandoned, d.id("m1"))[1..],
        ["bob@box-b", &d.at(1860), &d.at(1980), "heartbeat_timeout"]
    );
    assert!(!abandoned.contains("in all"), "all three are shown: {ins}");
    let two = d.ok("session-buddy", "insights 2");
    let abandoned = section(&two, "Abandoned sessions (newest first):");
    assert_eq!(first_cells(&abandoned), d.ids_of(&["m3", "m2"]), "{two}");
    assert!(abandoned.ends_with("  … 3 abandoned in all\n"), "{two}");
    assert_eq!(
        first_cells(&section(&two, "Longest sessions:")),
        ["1h 00m 00s", "5m 00s"]
    );
    let hours = section(
        &ins,
        "Busiest hours of the day (local time, sessions started):",
    );
    let count_at = |hour: &str| {
        hours
            .lines()
            .find(|l| l.trim_start().starts_with(hour))
            .and_then(|l| {
                l.split_whitespace()
                    .skip(1)
                    .find(|w| w.parse::<u64>().is_ok())
            })
            .unwrap_or_else(|| panic!("no hour {hour}: {hours}"))
            .to_string()
    };
    assert_eq!(
        (
            count_at("09:00"),
            count_at("10:00"),
            count_at("11:00"),
            count_at("12:00")
        ),
        ("12".into(), "1".into(), "5".into(), "0".into()),
        "{hours}"
    );
    assert!(hours.contains("12  ← busiest"), "{hours}");
    assert_eq!(hours.matches("← busiest").count(), 1, "{hours}");
}

/// The lines of `text` after the line `title` up to the next empty line.
fn section(text: &str, title: &str) -> String {
    let mut lines = text.lines().skip_while(|l| l.trim() != title);
    assert!(lines.next().is_some(), "no section '{title}' in:\n{text}");
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The first cells of a section's table rows (after its header line).
fn first_cells(section: &str) -> Vec<String> {
    section
        .lines()
        .skip(1)
        .filter_map(|l| cells(l).into_iter().next())
        .filter(|c| !c.starts_with('…'))
        .collect()
}

#[test]
fn mahavishnu_helpers_count_the_dataset() {
    let d = Dataset::seed();
    let h = d.host.as_str();

    // ps: this host's active sessions, whether their process lives.
    let ps = d.ok("mahavishnu", "ps");
    assert!(
        ps.starts_with(&format!(
            "2 tracked shells active on {h}: 1 alive, 1 stale.\n"
        )),
        "{ps}"
    );
    assert_eq!(first_column(&ps, "Session ID"), d.ids_of(&["s1", "s2"]));
    let s1 = row(&ps, d.id("s1"));
    assert_eq!(
        &s1[1..6],
        [
            "session-buddy",
            "alice",
            &std::process::id().to_string(),
            "yes",
            &d.at(7800)
        ]
    );
    assert_eq!(s1.len(), 8, "no note for a live shell: {s1:?}");
    let s2 = row(&ps, d.id("s2"));
    assert_eq!(
        &s2[1..6],
        ["fastblocks", "bob", "4194304", "no", &d.at(8400)]
    );
    assert_eq!(
        s2[8],
        "STALE: process gone; the reaper will mark it abandoned"
    );
    assert!(!ps.contains(d.id("s3")), "s3 is on another host: {ps}");

    // top: components and users by sessions, then commands.
    let top = d.ok("mahavishnu", "top");
    assert!(
        top.starts_with(
            "Activity over the last 7 days (18 sessions), ranked by sessions, then commands:\n"
        ),
        "{top}"
    );
    let components = section(&top, "Components (top 6 of 6):");
    assert_eq!(
        first_cells(&components),
        [
            "akosha",
            "mahavishnu",
            "crackerjack",
            "oneiric",
            "session-buddy",
            "fastblocks"
        ]
    );
    assert_eq!(
        row(&components, "akosha")[1..],
        ["9", "7", "4", "1h 08m 00s"]
    );
    assert_eq!(
        row(&components, "mahavishnu")[1..],
        ["3", "1", "0", "10m 00s"]
    );
    assert_eq!(
        row(&components, "crackerjack")[1..],
        ["2", "2", "1", "2m 15s"]
    );
    // Active sessions add their running time so far, which the clock decides.
    assert_eq!(row(&components, "oneiric")[1..4], ["2", "0", "0"]);
    assert_eq!(row(&components, "session-buddy")[1..4], ["1", "1", "0"]);
    assert_eq!(row(&components, "fastblocks")[1..4], ["1", "0", "0"]);
    let users = section(&top, "Users (top 3 of 3):");
    assert_eq!(first_cells(&users), ["alice", "bob", "carol"]);
    assert_eq!(row(&users, "alice")[1..4], ["11", "8", "4"]);
    assert_eq!(row(&users, "bob")[1..4], ["4", "1", "0"]);
    assert_eq!(row(&users, "carol")[1..4], ["3", "2", "1"]);
    let top2 = d.ok("mahavishnu", "top 2");
    let components = section(&top2, "Components (top 2 of 6):");
    assert_eq!(first_cells(&components), ["akosha", "mahavishnu"]);

    // errors: the latest failed commands, newest first, with their session's component.
    let errors = d.ok("mahavishnu", "errors 3");
    assert!(
        errors.starts_with(
            "The latest 3 failed commands, newest first (from all 11 command events):\n"
        ),
        "{errors}"
    );
    assert_eq!(
        first_column(&errors, "Time"),
        [d.at(7230), d.at(320), d.at(310)]
    );
    assert_eq!(
        row(&errors, &d.at(7230))[1..],
        [
            d.id("c1"),
            "crackerjack",
            "test",
            "-k smoke",
            "1 test failed"
        ]
    );
    assert_eq!(
        row(&errors, &d.at(320))[1..],
        [d.id("a2"), "akosha", "graph", "no data"]
    );
    assert_eq!(
        row(&errors, &d.at(310))[1..],
        [d.id("a2"), "akosha", "search", "z", "timeout after 5s"]
    );
    let all = d.ok("mahavishnu", "errors");
    assert!(
        all.starts_with("The latest 5 failed commands, newest first"),
        "{all}"
    );
}

#[test]
fn akosha_helpers_count_the_dataset() {
    let d = Dataset::seed();
    let h = d.host.as_str();

    // aggregate: by component (the default), user, host and day.
    let header = [
        "Sessions",
        "Active",
        "Abandoned",
        "Total time",
        "Mean time",
        "Commands",
        "Errors",
        "Sessions w/ errors",
    ];
    let by = d.ok("akosha", "aggregate");
    assert!(
        by.starts_with("18 sessions by component (durations of ended and abandoned sessions):\n"),
        "{by}"
    );
    assert_eq!(row(&by, "Component")[1..], header);
    assert_eq!(
        first_column(&by, "Component"),
        [
            "akosha",
            "mahavishnu",
            "crackerjack",
            "oneiric",
            "fastblocks",
            "session-buddy"
        ]
    );
    for (key, cells) in [
        (
            "akosha",
            ["9", "0", "0", "1h 08m 00s", "7m 33s", "7", "4", "2"],
        ),
        (
            "mahavishnu",
            ["3", "0", "3", "10m 00s", "3m 20s", "1", "0", "0"],
        ),
        (
            "crackerjack",
            ["2", "0", "0", "2m 15s", "1m 08s", "2", "1", "1"],
        ),
        ("oneiric", ["2", "1", "0", "10.0s", "10.0s", "0", "0", "0"]),
        ("session-buddy", ["1", "1", "0", "-", "-", "1", "0", "0"]),
        ("fastblocks", ["1", "1", "0", "-", "-", "0", "0", "0"]),
    ] {
        assert_eq!(row(&by, key)[1..], cells, "{key}: {by}");
    }
    let by = d.ok("akosha", "aggregate user");
    assert!(by.starts_with("18 sessions by user "), "{by}");
    assert_eq!(first_column(&by, "User"), ["alice", "bob", "carol"]);
    assert_eq!(
        row(&by, "alice")[1..],
        ["11", "1", "0", "1h 08m 10s", "6m 49s", "8", "4", "2"]
    );
    assert_eq!(
        row(&by, "bob")[1..],
        ["4", "1", "3", "10m 00s", "3m 20s", "1", "0", "0"]
    );
    assert_eq!(
        row(&by, "carol")[1..],
        ["3", "1", "0", "2m 15s", "1m 08s", "2", "1", "1"]
    );
    let by = d.ok("akosha", "aggregate host");
    assert_eq!(first_column(&by, "Host"), [h, "box-b"]);
    assert_eq!(
        row(&by, h)[1..],
        ["12", "2", "0", "10m 15s", "1m 02s", "8", "5", "3"]
    );
    assert_eq!(
        row(&by, "box-b")[1..],
        ["6", "1", "3", "1h 10m 10s", "14m 02s", "3", "0", "0"]
    );
    let by = d.ok("akosha", "aggregate day");
    assert_eq!(first_column(&by, "Day"), [d.day()]);
    assert_eq!(
        row(&by, &d.day())[1..],
        ["18", "3", "3", "1h 20m 25s", "5m 22s", "11", "5", "3"]
    );
    let bad = d.run("akosha", "aggregate week");
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.err
            .contains("cannot group by 'week': use component, user, host or day"),
        "{}",
        bad.err
    );

    // search: sessions and commands, ignoring case.
    let found = d.ok("akosha", "search CAROL");
    assert!(
        found.starts_with("Sessions matching 'CAROL': 3 of 18 searched\n"),
        "{found}"
    );
    for key in ["c1", "c2", "s3"] {
        assert!(found.contains(d.id(key)), "{key}: {found}");
    }
    assert_eq!(found.matches("      user: carol").count(), 3, "{found}");
    assert!(
        found.contains("Commands matching 'CAROL': 0 of 11 command events"),
        "{found}"
    );
    let found = d.ok("akosha", "search index missing");
    assert!(
        found.starts_with("Sessions matching 'index missing': 0 of 18 searched\n"),
        "{found}"
    );
    assert!(
        found.contains("Commands matching 'index missing': 2 of 11 command events"),
        "{found}"
    );
    // The newest first, with the session and the field.
    let lines: Vec<&str> = found.lines().filter(|l| l.contains(d.id("a1"))).collect();
    assert_eq!(
        lines,
        [
            format!("  {}  {}  search  failed", d.at(20), d.id("a1")),
            format!("  {}  {}  search  failed", d.at(10), d.id("a1")),
        ],
        "{found}"
    );
    assert_eq!(found.matches("      error: index missing").count(), 2);
    // Metadata is searched too, keys and values.
    let found = d.ok("akosha", "search NIGHTLY");
    assert!(
        found.starts_with(&format!(
            "Sessions matching 'NIGHTLY': 1 of 18 searched\n  {}  akosha  alice@box-b  ended  {}\n      metadata.tags[0]: nightly\n",
            d.id("a9"),
            d.at(2700)
        )),
        "{found}"
    );
    let usage = d.run("akosha", "search");
    assert_eq!(usage.code, Some(1));
    assert!(usage.err.contains("usage: search TEXT"), "{}", usage.err);

    // detect: one duration outlier, one error spike, one abandoned burst.
    let det = d.ok("akosha", "detect");
    assert!(det.contains("(18 sessions, 11 command events):\n"), "{det}");
    assert!(
        det.contains("  akosha: threshold 1m 00s over 9 durations, 1 outlier\n"),
        "{det}"
    );
    assert!(
        det.contains(&format!("    ! {} lasted 1h 00m 00s\n", d.id("a9"))),
        "{det}"
    );
    assert!(
        det.contains("  crackerjack: 2 durations, too few to judge\n"),
        "{det}"
    );
    assert!(
        det.contains("  mahavishnu: 3 durations, too few to judge\n"),
        "{det}"
    );
    assert!(
        det.contains("  oneiric: 1 duration, too few to judge\n"),
        "{det}"
    );
    assert!(
        det.contains("median 1 per active hour over 3 active hours):\n"),
        "{det}"
    );
    assert!(
        det.contains(&format!("  ! {} – 10:00: 4 failed commands\n", d.at(0))),
        "{det}"
    );
    assert!(
        det.contains(&format!(
            "  ! mahavishnu: 3 sessions abandoned between {} and {}: {}, {}, {}\n",
            d.at(1980),
            d.at(2340),
            d.id("m1"),
            d.id("m2"),
            d.id("m3")
        )),
        "{det}"
    );
    assert!(det.ends_with("\n3 anomalies found.\n"), "{det}");

    // graph: user → component → host with session counts.
    let graph = d.ok("akosha", "graph");
    let want = format!(
        "user → component → host (3 users, 6 components, 2 hosts; 7 user→component and 8 \
         component→host edges; counts are sessions):\n\
         alice (11)\n\
         ├─ akosha (9)\n\
         │  ├─ {h} (8)\n\
         │  └─ box-b (1)\n\
         ├─ oneiric (1)\n\
         │  └─ box-b (1)\n\
         └─ session-buddy (1)\n\
         \x20  └─ {h} (1)\n\
         bob (4)\n\
         ├─ mahavishnu (3)\n\
         │  └─ box-b (3)\n\
         └─ fastblocks (1)\n\
         \x20  └─ {h} (1)\n\
         carol (3)\n\
         ├─ crackerjack (2)\n\
         │  └─ {h} (2)\n\
         └─ oneiric (1)\n\
         \x20  └─ box-b (1)\n"
    );
    assert_eq!(graph, want);
    // Read from stdin, the same commands print the same.
    let both = d.ok("akosha", "graph; aggregate host");
    let piped = stdin_run(
        &d.server.home,
        &d.server.url,
        "akosha",
        "graph\naggregate host\nexit\n",
    )
    .ok("akosha from stdin");
    assert_eq!(piped, both);
    assert!(both.starts_with(&want), "{both}");

    // trends: per hour, day and week.
    let hour = |secs: i64| {
        (d.base + TimeDelta::seconds(secs))
            .format("%Y-%m-%d %H:00")
            .to_string()
    };
    let t = d.ok("akosha", "trends hour 2");
    assert!(
        t.starts_with("Sessions per hour over the last 2 days (local time): 18 in all\n"),
        "{t}"
    );
    assert!(
        t.contains(&format!("  peak: {} with 12 sessions\n", hour(0))),
        "{t}"
    );
    assert_eq!(row(&t, &hour(0))[1..], ["12", "8", "4", "3"]);
    assert_eq!(row(&t, &hour(3600))[1..], ["1", "0", "0", "0"]);
    assert_eq!(row(&t, &hour(7200))[1..], ["5", "3", "1", "0"]);
    assert_eq!(row(&t, &hour(-3600))[1..], ["0", "0", "0", "0"]);
    // The sparkline has one mark per hour listed, the peak hour full.
    let spark = t.lines().nth(1).unwrap().trim();
    let listed = first_column(&t, "Bucket").len();
    assert_eq!(spark.chars().count(), listed, "{t}");
    assert_eq!(spark.matches('█').count(), 1, "{t}");
    let day = d.base.format("%Y-%m-%d %a").to_string();
    for command in ["trends", "trends day 3", "trends 3"] {
        let t = d.ok("akosha", command);
        assert!(t.contains("(local time): 18 in all\n"), "{command}: {t}");
        assert!(
            t.contains(&format!("  peak: {day} with 18 sessions\n")),
            "{command}: {t}"
        );
        assert_eq!(row(&t, &day)[1..], ["18", "11", "5", "3"], "{command}");
    }
    let r = d.run("akosha", "trends hour 15");
    assert_eq!(r.code, Some(1));
    assert!(
        r.err
            .contains("days must be a whole number from 1 to 14, got '15'"),
        "{}",
        r.err
    );
    let t = d.ok("akosha", "trends week");
    let monday = d.base.date_naive()
        - Days::new(u64::from(
            chrono::Datelike::weekday(&d.base.date_naive()).num_days_from_monday(),
        ));
    let week = monday.format("week of %Y-%m-%d").to_string();
    assert!(
        t.starts_with("Sessions per week over the last 84 days (local time): 18 in all\n"),
        "{t}"
    );
    assert_eq!(row(&t, &week)[1..], ["18", "11", "5", "3"], "{t}");
}

#[test]
fn fastblocks_build_and_render_write_the_dataset() {
    let d = Dataset::seed();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("report");

    // build: the index with its numbers and charts, a page per session.
    let built = d.ok("fastblocks", &format!("build {}", dir.display()));
    assert_eq!(
        built,
        format!(
            "Wrote {}: 18 session(s), 3 charts, 18 session page(s) in {}\n",
            dir.join("index.html").display(),
            dir.join("sessions").display()
        )
    );
    let mut pages: Vec<String> = std::fs::read_dir(dir.join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    let mut want: Vec<String> = NEWEST_FIRST
        .iter()
        .map(|k| format!("{}.html", d.id(k)))
        .collect();
    want.sort();
    assert_eq!(pages, want);
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for (label, value) in [
        ("sessions", "18"),
        ("active", "3"),
        ("ended", "12"),
        ("abandoned", "3"),
        ("components", "6"),
        ("users", "3"),
        ("hosts", "2"),
        ("commands", "11"),
        ("failed commands", "5"),
        ("median duration", "1m 00s"),
        ("longest", "1h 00m 00s"),
    ] {
        let card = format!("<div class=\"card\"><b>{value}</b>{label}</div>");
        assert!(index.contains(&card), "{card} in {index}");
    }
    // Charts: one day, sessions per component, durations by bucket.
    assert!(
        index.contains(&format!("<title>{}: 18</title>", d.day())),
        "{index}"
    );
    for (component, n) in [
        ("akosha", 9),
        ("mahavishnu", 3),
        ("crackerjack", 2),
        ("oneiric", 2),
        ("fastblocks", 1),
        ("session-buddy", 1),
    ] {
        let bar = format!("<title>{component}: {n}</title>");
        assert!(index.contains(&bar), "{bar}");
    }
    for (bucket, n) in [
        ("&lt;1m", 2),
        ("1-5m", 11),
        ("5-15m", 1),
        ("15-30m", 0),
        ("30m-1h", 0),
        ("1-2h", 1),
        ("&gt;8h", 0),
    ] {
        let bar = format!("<title>{bucket}: {n}</title>");
        assert!(index.contains(&bar), "{bar}");
    }
    // The recent-sessions table: newest first, each row linking to its page.
    let linked: Vec<&str> = index
        .match_indices("<tr><td><a href=\"sessions/")
        .map(|(i, _)| {
            let rest = &index[i + "<tr><td><a href=\"sessions/".len()..];
            &rest[..rest.find(".html").unwrap()]
        })
        .collect();
    assert_eq!(linked, d.ids_of(&NEWEST_FIRST));
    let c1_row = format!(
        "<tr><td><a href=\"sessions/{id}.html\">{id}</a></td><td>crackerjack</td><td>carol</td>\
         <td>{}</td><td>ended</td><td>{}</td><td class=\"n\">1m 30s</td><td class=\"n\">2</td>\
         <td class=\"n\">1</td></tr>",
        d.host,
        d.at(7200),
        id = d.id("c1")
    );
    assert!(
        index.contains(&c1_row),
        "{c1_row}\n{}",
        index
            .lines()
            .filter(|l| l.contains(d.id("c1")))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A page has the record and the timeline.
    let page =
        std::fs::read_to_string(dir.join("sessions").join(format!("{}.html", d.id("c1")))).unwrap();
    assert!(page.contains("<a href=\"../index.html\">"), "{page}");
    assert_c1_page(&d, &page);

    // render: one session's page to a file, or to standard output.
    let file = out.path().join("c1.html");
    let said = d.ok(
        "fastblocks",
        &format!("render {} {}", d.id("c1"), file.display()),
    );
    let html = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        said,
        format!("Wrote {} ({} bytes)\n", file.display(), html.len())
    );
    assert_c1_page(&d, &html);
    assert!(!html.contains("../index.html"), "no back link on its own");
    let stdout = d.ok("fastblocks", &format!("render {} -", d.id("c2")));
    assert!(
        stdout.contains(&format!("<h1>Session {}</h1>", d.id("c2"))),
        "{stdout}"
    );
    assert!(
        stdout.contains("reason sigterm, exit code 143, signal SIGTERM"),
        "{stdout}"
    );
    assert!(
        stdout.contains("<tr><th>duration_seconds</th><td>45.0s (45.0s)</td></tr>"),
        "{stdout}"
    );
    let missing = d.run("fastblocks", "render oneiric-20000101-000000-abcdef -");
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .err
            .contains("no session 'oneiric-20000101-000000-abcdef' (HTTP 404)"),
        "{}",
        missing.err
    );
}

/// c1's page: its record and its four events.
fn assert_c1_page(d: &Dataset, page: &str) {
    for (field, value) in [
        ("session_id", d.id("c1").to_string()),
        ("component", "crackerjack".to_string()),
        ("status", "ended".to_string()),
        ("username", "carol".to_string()),
        ("pid", "700".to_string()),
        ("command_count", "2".to_string()),
        ("error_count", "1".to_string()),
        ("exit_code", "2".to_string()),
        ("end_reason", "exit".to_string()),
        ("duration_seconds", "1m 30s (90.0s)".to_string()),
    ] {
        let cell = format!("<tr><th>{field}</th><td>{value}</td></tr>");
        assert!(page.contains(&cell), "{cell} in {page}");
    }
    let timeline = &page[page.find("<h2>Timeline</h2>").unwrap()..];
    assert_eq!(
        timeline.matches("<tr").count(),
        5,
        "a header and 4 events: {timeline}"
    );
    assert!(
        timeline.contains(&format!(
            "<tr class=\"ok\"><td>{}</td><td>command</td><td class=\"n\">1</td><td>lint (1.5s)</td></tr>",
            d.at(7210)
        )),
        "{timeline}"
    );
    assert!(
        timeline.contains(&format!(
            "<tr class=\"fail\"><td>{}</td><td>command</td><td class=\"n\">2</td>\
             <td>test -k smoke (1.5s): 1 test failed</td></tr>",
            d.at(7230)
        )),
        "{timeline}"
    );
    assert!(
        timeline.contains(&format!("<td>{}</td><td>session_end</td>", d.at(7290))),
        "{timeline}"
    );
    assert!(
        timeline.contains("<td>reason exit, exit code 2</td></tr>"),
        "{timeline}"
    );
}

/// Sessions beyond one page of the API (1000) and command events beyond what
/// `GET /v1/events` answers (1000): the helpers page through every session and say which
/// events they saw; the latest ones.
#[test]
fn helpers_read_every_page_and_the_latest_events() {
    const SESSIONS: i64 = 1205;
    const COMMANDS: i64 = 1010;
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let yesterday = Utc::now().date_naive() - Days::new(1);
    let mut b = Builder {
        base: yesterday.and_hms_opt(0, 0, 0).unwrap().and_utc(),
        events: Vec::new(),
        ids: BTreeMap::new(),
        seq: BTreeMap::new(),
    };
    // Session i starts at minute i and lasts 30 s; the first 1010 run one command, every
    // 100th of which fails.
    for i in 0..SESSIONS {
        let key = i.to_string();
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        b.start(&key, "bulk", user, "box-b", 900, i * MIN, false);
        if i < COMMANDS {
            let error = (i % 100 == 0).then(|| format!("bulk {i} failed"));
            b.command(&key, i * MIN + 10, "run", &i.to_string(), error.as_deref());
        }
        b.end(&key, i * MIN + 30, "exit", 0, None);
    }
    for chunk in b.events.chunks(1000) {
        assert!(server.post(chunk).iter().all(|r| r["status"] == "accepted"));
    }
    let run = |component: &str, commands: &str| {
        shell_run(home.path(), &server.url, component, commands, None, &[])
            .ok(&format!("{component} {commands}"))
    };
    let id = |i: i64| b.ids[&i.to_string()].clone();

    let by = run("akosha", "aggregate");
    assert!(by.starts_with("1205 sessions by component"), "{by}");
    assert_eq!(
        row(&by, "bulk")[1..],
        ["1205", "0", "0", "10h 02m 30s", "30.0s", "1010", "11", "11"]
    );
    let by = run("akosha", "aggregate user");
    assert_eq!(row(&by, "alice")[1..2], ["603"]);
    assert_eq!(row(&by, "bob")[1..2], ["602"]);

    let ps = run("session-buddy", "ps 1000");
    assert!(ps.starts_with("Recent sessions, newest first (1000 shown):\n"));
    let listed = first_column(&ps, "Session ID");
    assert_eq!(listed.len(), 1000);
    assert_eq!(
        (listed[0].clone(), listed[999].clone()),
        (id(1204), id(205))
    );

    // The latest 1000 command events are those of sessions 1009 down to 10: session 0's
    // failure is not among them.
    let ins = run("session-buddy", "insights 1");
    assert!(
        ins.starts_with("Insights over 1205 sessions and the latest 1000 command events.\n"),
        "{ins}"
    );
    assert_eq!(
        row(&section(&ins, "Most failing commands:"), "run")[1],
        "10/1000"
    );
    let errors = run("mahavishnu", "errors 20");
    assert!(
        errors.starts_with(
            "The latest 10 failed commands, newest first (from the latest 1000 command events):\n"
        ),
        "{errors}"
    );
    let sessions: Vec<String> = errors
        .lines()
        .skip(2)
        .map(|l| cells(l)[1].clone())
        .collect();
    let want: Vec<String> = (1..=10).rev().map(|k| id(k * 100)).collect();
    assert_eq!(sessions, want, "{errors}");

    // build: every session counted, the newest 100 with a page.
    let out = tempfile::tempdir().unwrap();
    let built = run("fastblocks", &format!("build {}", out.path().display()));
    assert!(
        built.contains(": 1205 session(s), 3 charts, 100 session page(s) in "),
        "{built}"
    );
    let mut pages: Vec<String> = std::fs::read_dir(out.path().join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    let mut want: Vec<String> = (1105..SESSIONS)
        .map(|i| format!("{}.html", id(i)))
        .collect();
    want.sort();
    assert_eq!(pages, want);
    let index = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(index.contains("<div class=\"card\"><b>1205</b>sessions</div>"));
    assert!(index.contains("<div class=\"card\"><b>11</b>failed commands</div>"));
}

/// Every reading helper, with its arguments, for the empty and unreachable cases.
const READING: &[(&str, &str)] = &[
    ("session-buddy", "ps"),
    ("session-buddy", "active"),
    ("session-buddy", "insights"),
    ("mahavishnu", "ps"),
    ("mahavishnu", "top"),
    ("mahavishnu", "errors"),
    ("akosha", "aggregate"),
    ("akosha", "search x"),
    ("akosha", "detect"),
    ("akosha", "graph"),
    ("akosha", "trends"),
    ("fastblocks", "build"),
    ("fastblocks", "render oneiric-20260101-000000-abcdef -"),
];

#[test]
fn with_no_data_the_helpers_say_so_and_with_no_server_they_say_where() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Server::start(home.path());
    let url = server.url.clone();
    let out = tempfile::tempdir().unwrap();
    let run = |component: &str, commands: &str| {
        shell_run(
            home.path(),
            &url,
            component,
            commands,
            Some(out.path()),
            &[],
        )
    };
    let host = this_host();
    for (component, helper, says) in [
        ("session-buddy", "ps", "No sessions recorded yet.\n".to_string()),
        ("session-buddy", "active", "No active sessions.\n".into()),
        ("mahavishnu", "ps", format!("No tracked shells active on {host}.\n")),
        ("mahavishnu", "top", "No sessions started in the last 7 days.\n".into()),
        ("mahavishnu", "errors", "No failed commands among all 0 command events.\n".into()),
        ("akosha", "aggregate", "No sessions recorded yet.\n".into()),
        ("akosha", "graph", "No sessions recorded yet.\n".into()),
        (
            "akosha",
            "search x",
            "Sessions matching 'x': 0 of 0 searched\nCommands matching 'x': 0 of 0 command events\n"
                .into(),
        ),
    ] {
        assert_eq!(run(component, helper).ok(helper), says, "{component} {helper}");
    }
    let ins = run("session-buddy", "insights").ok("insights");
    assert!(
        ins.starts_with("Insights over 0 sessions and the latest 0 command events.\n"),
        "{ins}"
    );
    for nothing in [
        "Longest sessions:\n  none has ended yet\n",
        "Most failing commands:\n  no failed commands\n",
        "Abandoned sessions (newest first):\n  none\n",
        "Busiest hours of the day (local time, sessions started):\n  no sessions\n",
    ] {
        assert!(ins.contains(nothing), "{nothing}: {ins}");
    }
    let det = run("akosha", "detect").ok("detect");
    assert!(det.contains("(0 sessions, 0 command events):\n"), "{det}");
    assert!(det.ends_with("\nNo anomalies found.\n"), "{det}");
    let t = run("akosha", "trends").ok("trends");
    assert!(
        t.starts_with("Sessions per day over the last 14 days (local time): 0 in all\n"),
        "{t}"
    );
    assert_eq!(
        first_column(&t, "Bucket").len(),
        15,
        "14 days back to today: {t}"
    );
    assert!(!t.contains("peak:"), "{t}");
    // build with no directory writes ./session-report.
    let built = run("fastblocks", "build").ok("build");
    assert_eq!(
        built,
        "Wrote session-report/index.html: 0 session(s), 3 charts, 0 session page(s) in session-report/sessions\n"
    );
    let index = std::fs::read_to_string(out.path().join("session-report/index.html")).unwrap();
    assert!(index.contains("<div class=\"card\"><b>0</b>sessions</div>"));

    // The server gone: every reading helper fails, naming the server.
    server.kill9();
    for (component, helper) in READING {
        let r = run(component, helper);
        assert_eq!(r.code, Some(1), "{component} {helper}: {}", r.out);
        // One line naming the server (the wording is the HTTP client's).
        let error = r.err.trim_end();
        assert!(
            error.starts_with("error: ") && !error.contains('\n') && error.contains(url.as_str()),
            "{component} {helper}: {}",
            r.err
        );
    }
}

/// The helpers count and print in local time: the dataset under UTC+05:30 (no DST), where
/// B = 14:30 local and the 09:00 UTC hour splits in two.
#[test]
fn helpers_bucket_and_print_in_local_time() {
    let d = Dataset::seed();
    let run = |component: &str, commands: &str| {
        shell_run(
            &d.server.home,
            &d.server.url,
            component,
            commands,
            None,
            &[("TZ", "IST-05:30")],
        )
        .ok(commands)
    };
    let local = |secs: i64, format: &str| {
        (d.base + TimeDelta::seconds(secs) + TimeDelta::minutes(330))
            .format(format)
            .to_string()
    };
    // Local hours: 14 ← a1–a6; 15 ← a7, a8, m1–m3, a9, o1; 16 ← c1, c2, s1, s2; 17 ← s3.
    let ins = run("session-buddy", "insights");
    let hours = section(
        &ins,
        "Busiest hours of the day (local time, sessions started):",
    );
    let count_at = |hour: &str| {
        let l = hours
            .lines()
            .find(|l| l.trim_start().starts_with(hour))
            .unwrap();
        l.split_whitespace()
            .skip(1)
            .find_map(|w| w.parse::<u64>().ok())
            .unwrap()
    };
    assert_eq!(
        ["13:00", "14:00", "15:00", "16:00", "17:00", "09:00"].map(count_at),
        [0, 6, 7, 4, 1, 0],
        "{hours}"
    );
    assert!(hours.contains("7  ← busiest"), "{hours}");
    let t = run("akosha", "trends hour 2");
    assert_eq!(
        row(&t, &local(0, "%Y-%m-%d 14:00"))[1..],
        ["6", "5", "4", "0"]
    );
    assert_eq!(
        row(&t, &local(0, "%Y-%m-%d 15:00"))[1..],
        ["7", "3", "0", "3"]
    );
    assert_eq!(
        row(&t, &local(0, "%Y-%m-%d 16:00"))[1..],
        ["4", "3", "1", "0"]
    );
    let ps = run("session-buddy", "ps 50");
    assert_eq!(
        row(&ps, d.id("a1"))[5],
        local(0, "%Y-%m-%d %H:%M:%S"),
        "{ps}"
    );
    let errors = run("mahavishnu", "errors 1");
    assert_eq!(
        first_column(&errors, "Time"),
        [local(7230, "%Y-%m-%d %H:%M:%S")]
    );
}
