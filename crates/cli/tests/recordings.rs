//! Recordings end to end: `track --record` and `shell --record` in a real terminal (tmux: a
//! resize, a `read -s` prompt, the terminal sane after), through the durable path (a server
//! that is down, a recorder killed with SIGKILL), the server's cap, asciicast that asciinema
//! reads, every read audited, export/import, and `erase` leaving only its audit entry; on
//! SQLite and PostgreSQL.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use session_buddy_events::recording::{Frame, FrameKind, parse_asciicast};

use crate::common::{Server, Tmux, bin, free_port, stderr, stdout};

fn get(url: &str) -> (u16, String) {
    let mut r = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn client(home: &Path, url: &str, args: &[&str]) -> Command {
    let mut c = bin();
    c.env("SESSION_BUDDY_HOME", home)
        .env("SESSION_BUDDY_URL", url)
        .args(args);
    c
}

/// Waits (up to `timeout`) for the one session of `component`, no longer active, that has a
/// recording whose asciicast contains `last` (what the program printed last); its id, record
/// and cast.
fn recording_of(
    url: &str,
    component: &str,
    last: &str,
    timeout: Duration,
) -> (String, Value, String) {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, page) = get(&format!("{url}/v1/sessions?component={component}"));
        let page: Value = serde_json::from_str(&page).unwrap();
        if let Some(s) = page["sessions"].as_array().and_then(|a| a.first())
            && s["has_recording"] == true
            && s["status"] != "active"
        {
            let id = s["session_id"].as_str().unwrap().to_string();
            let (status, cast) = get(&format!("{url}/v1/sessions/{id}/recording"));
            if status == 200 && cast.contains(last) {
                return (id, s.clone(), cast);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no recording of {component} with {last:?} arrived: {page}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn frames(cast: &str) -> Vec<Frame> {
    parse_asciicast(cast).unwrap().1
}

/// The data of every frame of `kind`, joined.
fn text_of(frames: &[Frame], kind: FrameKind) -> String {
    frames
        .iter()
        .filter(|f| f.kind() == kind)
        .map(|f| f.data())
        .collect()
}

fn audit_actions(url: &str, id: &str) -> Vec<String> {
    let (_, audit) = get(&format!("{url}/v1/audit?session_id={id}"));
    let audit: Value = serde_json::from_str(&audit).unwrap();
    audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

/// `track --record` (pipes), the gap between two lines kept, export as a file and as ndjson,
/// asciinema's `cat`, the audit log, an import elsewhere, and `erase`.
fn records_exports_imports_and_erases(server_args: &[&str], export_args: &[&str]) {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_with(home.path(), server_args);
    let run = |args: &[&str]| client(home.path(), &server.url, args).output().unwrap();
    let o = run(&[
        "track",
        "--record",
        "--component",
        "rec",
        "--",
        "bash",
        "-c",
        "echo one; sleep 0.5; echo two",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "one\ntwo\n");
    let (id, session, cast) = recording_of(&server.url, "rec", "two", Duration::from_secs(60));
    assert_eq!(session["status"], "ended", "{session}");
    let frames = frames(&cast);
    let at = |text: &str| {
        frames
            .iter()
            .find(|f| f.kind() == FrameKind::Output && f.data().contains(text))
            .map(|f| f.offset())
            .unwrap_or_else(|| panic!("no frame with {text}: {cast}"))
    };
    assert!(at("two") - at("one") >= 0.4, "{cast}");

    let file = home.path().join("r.cast");
    let o = run(&[
        "recording",
        "export",
        &id,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), cast);
    // The real asciinema (./scripts/test installs it) reads it.
    match Command::new("asciinema").arg("cat").arg(&file).output() {
        Ok(cat) => {
            let text = String::from_utf8_lossy(&cat.stdout);
            assert!(
                cat.status.success() && text.contains("one") && text.contains("two"),
                "{cat:?}"
            );
        }
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("asciinema is not on PATH (./scripts/test installs it)")
        }
        Err(_) => eprintln!("asciinema is not on PATH: its check is skipped"),
    }
    assert_eq!(
        audit_actions(&server.url, &id),
        ["recording.export", "recording.export"]
    );

    // Export carries the recording; an import into another server brings it back whole.
    let ndjson = home.path().join("all.ndjson");
    let mut args = vec!["export", "--output", ndjson.to_str().unwrap()];
    args.extend_from_slice(export_args);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = std::fs::read_to_string(&ndjson).unwrap();
    assert!(
        lines
            .lines()
            .any(|l| l.contains("\"event_type\":\"output\"")),
        "{lines}"
    );
    let other = tempfile::tempdir().unwrap();
    let second = Server::start(other.path());
    for expect in ["duplicate 0, rejected 0", "accepted 0,"] {
        let o = second.cli(&["import", ndjson.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains(expect), "{}", stdout(&o));
    }
    let (status, imported) = get(&format!("{}/v1/sessions/{id}/recording", second.url));
    assert_eq!(status, 200);
    assert_eq!(imported, cast, "the imported recording is the same cast");

    let o = run(&["erase", &id, "--yes"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(get(&format!("{}/v1/sessions/{id}", server.url)).0, 404);
    assert_eq!(
        get(&format!("{}/v1/sessions/{id}/recording", server.url)).0,
        404
    );
    assert_eq!(
        get(&format!("{}/v1/events?session_id={id}", server.url)).0,
        404,
        "the erased session's events are gone"
    );
    assert_eq!(
        audit_actions(&server.url, &id),
        ["session.erase", "recording.export", "recording.export"]
    );
}

#[test]
fn a_recorded_session_plays_back_exports_imports_and_erases() {
    records_exports_imports_and_erases(&[], &[]);
}

#[test]
fn a_recorded_session_on_postgres_exports_imports_and_erases() {
    let Some(admin) = crate::postgres::test_database_url() else {
        return;
    };
    let db = crate::postgres::fresh_database(&admin);
    records_exports_imports_and_erases(
        &["--database-url", &db, "--db-pool-size", "4"],
        &["--database-url", &db],
    );
}

/// Live processes whose command line is exactly `argv`.
fn processes(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want))
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Whether the terminal on stdin of `pid` is at a password prompt (canonical, no echo).
fn at_password_prompt(pid: u32) -> bool {
    let Ok(tty) = std::fs::read_link(format!("/proc/{pid}/fd/0")) else {
        return false;
    };
    let o = Command::new("stty")
        .arg("-F")
        .arg(&tty)
        .arg("-a")
        .output()
        .unwrap();
    let modes = String::from_utf8_lossy(&o.stdout);
    let words: Vec<&str> = modes.split_whitespace().collect();
    words.contains(&"icanon") && words.contains(&"-echo")
}

#[test]
fn in_a_terminal_resizes_are_recorded_a_secret_prompt_is_not_and_the_terminal_is_sane_after() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let exe = env!("CARGO_BIN_EXE_session-buddy");
    let home_s = home.path().to_str().unwrap();
    let term = Tmux::start(
        home.path(),
        &[
            ("SESSION_BUDDY_HOME", home_s),
            ("SESSION_BUDDY_URL", &server.url),
            ("PS1", "$ "),
            ("NO_COLOR", "1"),
        ],
        &["bash", "--norc", "--noprofile"],
    );
    term.wait_for("the outer prompt", |s| s.trim_end().ends_with('$'));
    // The program runs in a pseudo-terminal of the recorder; input is recorded too.
    let inner = ["bash", "--norc", "--noprofile", "-i"];
    term.keys(&[
        &format!(
            "{exe} track --record --record-input --component rectty -- {}",
            inner.join(" ")
        ),
        "Enter",
    ]);
    let pid = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(pid) = processes(&inner).first() {
                break *pid;
            }
            assert!(Instant::now() < deadline, "the recorded bash did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    term.keys(&["echo visible-$((40+2))", "Enter"]);
    term.wait_for("the echo", |s| s.contains("visible-42"));
    // A resize reaches the program and the recording.
    assert!(
        term.cmd()
            .args(["resize-window", "-x", "100", "-y", "40"])
            .status()
            .unwrap()
            .success()
    );
    term.keys(&["stty size", "Enter"]);
    term.wait_for("the new size", |s| s.contains("40 100"));
    // A password prompt: what is typed there is not recorded, not even with --record-input.
    term.keys(&["read -s S; echo got-${#S}", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !at_password_prompt(pid) {
        assert!(Instant::now() < deadline, "read -s did not turn echo off");
        std::thread::sleep(Duration::from_millis(20));
    }
    term.keys(&["hunter2x", "Enter"]);
    term.wait_for("the secret's length", |s| s.contains("got-8"));
    term.keys(&["exit", "Enter"]);
    // The terminal is as it was: canonical mode and echo back on.
    term.keys(&[
        "echo modes:$(stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ,)",
        "Enter",
    ]);
    let screen = term.wait_for("the terminal's modes", |s| s.contains("modes:icanon,echo,"));

    let (id, session, cast) = recording_of(&server.url, "rectty", "got-8", Duration::from_secs(60));
    assert_eq!(session["status"], "ended", "{session}");
    let frames = frames(&cast);
    assert!(
        frames
            .iter()
            .any(|f| f.kind() == FrameKind::Resize && f.data() == "100x40"),
        "no resize in {cast}"
    );
    let output = text_of(&frames, FrameKind::Output);
    assert!(
        output.contains("visible-42") && output.contains("40 100"),
        "{cast}"
    );
    let input = text_of(&frames, FrameKind::Input);
    assert!(
        input.contains("echo visible"),
        "typed input is recorded: {cast}"
    );
    assert!(
        !cast.contains("hunter2x"),
        "the secret was recorded: {cast}\n{screen}"
    );

    // The admin shells take --record too: one session, its recording under its id.
    term.keys(&[&format!("{exe} shell oneiric --record"), "Enter"]);
    term.wait_for("the recorded shell", |s| s.contains("Recording: on"));
    term.keys(&["status", "Enter"]);
    term.wait_for("its status", |s| s.contains("Circuit breaker"));
    term.keys(&["show_layers port", "Enter"]);
    let answer = term.wait_for("the helper's answer", |s| s.contains("8678"));
    assert!(
        !answer.contains("unknown environment variable"),
        "the recording parent's variable is a known one: {answer}"
    );
    term.keys(&["exit", "Enter"]);
    // Keys typed before the shell has ended are the shell's: wait for the outer prompt.
    term.wait_for("the outer prompt again", |s| {
        s.trim_end().ends_with("oneiric> exit\n$")
    });
    term.keys(&["echo shell-done", "Enter"]);
    term.wait_for("the shell's end", |s| s.contains("\nshell-done"));
    let (shell_id, session, cast) = recording_of(
        &server.url,
        "oneiric",
        "Circuit breaker",
        Duration::from_secs(60),
    );
    assert_eq!(session["status"], "ended", "{session}");
    assert_eq!(session["command_count"], 1, "{session}");
    assert!(
        cast.contains(&format!("Session ID: {shell_id}")),
        "the recording is of the session it names: {cast}"
    );
    let (_, page) = get(&format!("{}/v1/sessions?component=oneiric", server.url));
    let page: Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["sessions"].as_array().unwrap().len(), 1, "{page}");
    assert_ne!(id, shell_id);
}

#[test]
fn a_killed_recorder_and_a_server_outage_lose_no_chunk() {
    let home = tempfile::tempdir().unwrap();
    // Nothing listens on the port yet.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    // A whole recording made while the server is down.
    let o = client(
        home.path(),
        &url,
        &[
            "track",
            "--record",
            "--component",
            "recdown",
            "--",
            "bash",
            "-c",
            "for i in 1 2 3 4 5; do echo down-$i; sleep 0.3; done",
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // A recorder killed with SIGKILL once its first chunk is written.
    let mut killed = client(
        home.path(),
        &url,
        &[
            "track",
            "--record",
            "--component",
            "reckill",
            "--",
            "bash",
            "-c",
            "echo before-kill; exec sleep 61.25",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(killed.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(first, "before-kill\n");
    // The chunk is cut within CHUNK_EVERY; wait until its frame is in the journal or buffer
    // (the start's metadata holds the command line, so look for the frame itself).
    let frame = br#""o","before-kill"#;
    let written = |dir: &Path| -> bool {
        walk(dir)
            .iter()
            .any(|f| std::fs::read(f).is_ok_and(|b| b.windows(frame.len()).any(|w| w == frame)))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !written(home.path()) {
        assert!(Instant::now() < deadline, "the chunk was never written");
        std::thread::sleep(Duration::from_millis(50));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    for pid in processes(&["sleep", "61.25"]) {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    // The server comes up; what was recorded arrives without anyone asking.
    let server_home = home.path().join("server");
    let server = Server::start_with(
        &server_home,
        &["--port", &port.to_string(), "--session-ttl", "2s"],
    );
    let (_, _, cast) = recording_of(&server.url, "recdown", "down-5", Duration::from_secs(120));
    let output = text_of(&frames(&cast), FrameKind::Output);
    for i in 1..=5 {
        assert!(output.contains(&format!("down-{i}")), "{cast}");
    }
    // The killed one: what it wrote arrives too (the detached sender that stood by while it
    // held the sender lock takes over), and its session is abandoned by the reaper.
    let (_, session, _) = recording_of(
        &server.url,
        "reckill",
        "before-kill",
        Duration::from_secs(60),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut session = session;
    while session["status"] != "abandoned" {
        assert!(Instant::now() < deadline, "not abandoned: {session}");
        std::thread::sleep(Duration::from_millis(200));
        let id = session["session_id"].as_str().unwrap().to_string();
        session =
            serde_json::from_str(&get(&format!("{}/v1/sessions/{id}", server.url)).1).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                files.extend(walk(&p));
            } else {
                files.push(p);
            }
        }
    }
    files
}

#[test]
fn the_servers_cap_truncates_a_recording_with_a_visible_marker() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_with(home.path(), &["--recording-max-bytes", "4096"]);
    // Six bursts of 1500 bytes, each in a chunk of its own (chunks are cut every 0.5 s).
    let o = client(
        home.path(),
        &server.url,
        &[
            "track",
            "--record",
            "--component",
            "reccap",
            "--",
            "bash",
            "-c",
            "for i in 1 2 3 4 5 6; do head -c 1500 /dev/zero | tr '\\0' a; echo; sleep 0.7; done; echo the-end",
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches('a').count(),
        9000,
        "the program's own output is whole"
    );
    let (_, _, cast) = recording_of(
        &server.url,
        "reccap",
        "recording truncated",
        Duration::from_secs(60),
    );
    let frames = frames(&cast);
    let last = frames.last().unwrap();
    assert!(
        last.data().contains("recording truncated") && last.data().contains("4096"),
        "the marker ends the recording: {cast}"
    );
    let kept: usize = text_of(&frames, FrameKind::Output)
        .split(|c| c != 'a')
        .filter(|run| run.len() >= 100)
        .map(str::len)
        .sum();
    assert!((1500..=4096).contains(&kept), "{kept} bytes kept of 9000");
    assert!(!cast.contains("the-end"), "nothing after the cap is stored");
}
