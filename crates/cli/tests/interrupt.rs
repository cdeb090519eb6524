//! Ctrl-C belongs to the running helper: in a real terminal (tmux) the shell survives and goes
//! back to its prompt; with `-c` it records the interrupted command, ends the session and exits
//! 130. Either way nothing the helper started is left running, not even a process that left
//! its process group.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Server, Tmux, bin};

/// A crackerjack project whose `test` starts a child in its group and one that leaves it
/// (`setsid`), says so, and would run for an hour.
fn hanging_project(tag: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("setup.py"), "").unwrap();
    std::fs::write(
        dir.path().join(".crackerjack.toml"),
        format!(
            "[commands]\ntest = \"sh -c 'sleep {tag}1 & setsid sleep {tag}2 & echo started; \
             sleep {tag}3'\"\n"
        ),
    )
    .unwrap();
    dir
}

/// Live processes whose command line is `sleep ARG` (zombies have none).
fn sleeping(arg: &str) -> Vec<String> {
    let want = format!("sleep\0{arg}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn assert_nothing_left(tag: &str) {
    // The shell ends them before it records the command; allow the kernel a moment to
    // finish the kill.
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in 1..=3 {
        let arg = format!("{tag}{n}");
        while !sleeping(&arg).is_empty() {
            assert!(
                Instant::now() < deadline,
                "`sleep {arg}` outlived its helper: {:?}",
                sleeping(&arg)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get(url: &str) -> Option<Value> {
    let mut r = ureq::get(url).call().ok()?;
    r.body_mut().read_json().ok()
}

/// The only session on the server once it has ended, and its events.
fn ended_session(url: &str) -> (Value, Vec<Value>) {
    let session = wait_until("the session's end", Duration::from_secs(60), || {
        let v = get(&format!("{url}/v1/sessions?limit=10"))?;
        v["sessions"]
            .as_array()?
            .iter()
            .find(|s| s["status"] == "ended")
            .cloned()
    });
    let id = session["session_id"].as_str().unwrap().to_string();
    let events = get(&format!("{url}/v1/sessions/{id}/events")).unwrap()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"].clone())
        .collect();
    (session, events)
}

fn the_command<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event_type"] == "command" && e["command"] == name)
        .unwrap_or_else(|| panic!("no `{name}` command in {events:#?}"))
}

#[test]
fn ctrl_c_in_a_script_records_the_interrupted_command_and_exits_130() {
    signal_during_a_script_helper("INT", "4242", 130, "sigint", "interrupted");
}

#[test]
fn sigterm_and_sighup_during_a_helper_end_its_processes_and_the_session() {
    signal_during_a_script_helper("TERM", "4244", 143, "sigterm", "interrupted by SIGTERM");
    signal_during_a_script_helper("HUP", "4245", 129, "sighup", "interrupted by SIGHUP");
}

/// Runs `test` (which hangs) in `shell crackerjack -c`, sends SIGNAL once its output shows,
/// and checks the exit code, the session's end and the recorded command.
fn signal_during_a_script_helper(signal: &str, tag: &str, code: i32, reason: &str, error: &str) {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let project = hanging_project(tag);
    let mut child = bin()
        .env("SESSION_BUDDY_HOME", home.path())
        .env("SESSION_BUDDY_URL", &server.url)
        .current_dir(project.path())
        .args(["shell", "crackerjack", "-c", "test; show_adapters"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The output is streamed as the tool writes it: wait for its first line.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    wait_until("the tool's first line", Duration::from_secs(60), || {
        seen.extend(rx.try_iter());
        seen.iter().any(|l| l == "  | started").then_some(())
    });
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([format!("-{signal}").as_str(), &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(code), "SIG{signal} in -c exits {code}");
    assert_nothing_left(tag);
    seen.extend(rx.iter());
    assert!(
        !seen.iter().any(|l| l.starts_with("Project:")),
        "the commands after the interrupted one do not run: {seen:?}"
    );

    let (session, events) = ended_session(&server.url);
    assert_eq!(session["end_reason"], reason);
    assert_eq!(session["exit_code"], code);
    let test = the_command(&events, "test");
    assert_eq!(test["success"], false);
    assert_eq!(test["error"], error);
    assert_eq!(test["exit_code"], code);
}

#[test]
fn ctrl_c_in_a_terminal_interrupts_the_helper_and_the_shell_goes_on() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let tag = "4343";
    let project = hanging_project(tag);
    let exe = env!("CARGO_BIN_EXE_session-buddy");
    let home_s = home.path().to_str().unwrap();
    let term = Tmux::start(
        project.path(),
        &[
            ("SESSION_BUDDY_HOME", home_s),
            ("SESSION_BUDDY_URL", &server.url),
            ("NO_COLOR", "1"),
        ],
        &[exe, "shell", "crackerjack"],
    );
    term.wait_for("the prompt", |s| s.contains("crackerjack>"));
    term.keys(&["test", "Enter"]);
    term.wait_for("the tool's output", |s| s.contains("  | started"));
    term.keys(&["C-c"]);
    let screen = term.wait_for("the interruption", |s| s.contains("error: interrupted"));
    assert_nothing_left(tag);
    // Back at a prompt, and it still works.
    term.keys(&["show_adapters", "Enter"]);
    term.wait_for("the next helper", |s| s.contains("Project: Python"));
    // Tab at an empty prompt lists the helpers.
    term.keys(&["Tab"]);
    let listed = term.wait_for("the helpers listed", |s| s.contains("show_hooks"));
    assert!(!listed.contains("NO RECORDS FOUND"), "{listed}");
    // Two Escapes close the menu however the terminal's reads split them: an Escape and the
    // next key read together are one Alt-key (crossterm), and ESC ESC is one Escape. What
    // follows the second (Ctrl-U or Alt-Ctrl-U) leaves the empty line empty.
    term.keys(&["Escape", "Escape", "C-u"]);
    term.keys(&["exit", "Enter"]);
    let (session, events) = ended_session(&server.url);
    assert_eq!(session["end_reason"], "exit", "{screen}");
    let test = the_command(&events, "test");
    assert_eq!(test["success"], false);
    assert_eq!(test["error"], "interrupted");
    assert_eq!(test["exit_code"], 130);
    assert_eq!(the_command(&events, "show_adapters")["success"], true);
}

#[test]
fn ctrl_c_cancels_a_helper_waiting_on_the_network() {
    use std::io::{BufRead, BufReader};
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    // A server that takes requests and never answers; it reports each request line.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_url = format!("http://{}", hang.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for conn in hang.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let mut reader = BufReader::new(&conn);
                if reader.read_line(&mut line).is_ok() {
                    let _ = tx.send(line);
                }
                // Hold the connection open until the peer gives up.
                std::thread::sleep(Duration::from_secs(30));
            });
        }
    });
    let child = bin()
        .env("SESSION_BUDDY_HOME", home.path())
        .env("SESSION_BUDDY_URL", &hang_url)
        .args(["shell", "session-buddy", "-c", "ps"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the helper's request", Duration::from_secs(60), || {
        rx.try_iter()
            .any(|l| l.starts_with("GET /v1/sessions"))
            .then_some(())
    });
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error: interrupted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The events wait in the buffer; deliver them to the real server.
    let o = bin()
        .env("SESSION_BUDDY_HOME", home.path())
        .env("SESSION_BUDDY_URL", &server.url)
        .args(["event-buffer", "replay"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (session, events) = ended_session(&server.url);
    assert_eq!(session["end_reason"], "sigint");
    let ps = the_command(&events, "ps");
    assert_eq!(ps["error"], "interrupted");
    assert_eq!(ps["exit_code"], 130);
}
