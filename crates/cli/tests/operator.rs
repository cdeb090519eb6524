//! A new operator's first day: mistyped database paths, `--help`, completions and man pages,
//! `render` without a file, and stopping `serve` with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Server, bin, run, session_id, start_event, stderr, stdout};

const SECRET: &str = "7f3c9a1e5b2d8f4a6c0e9b3d7a1f5c8e2b6d0a4f";

#[test]
fn commands_that_read_a_database_refuse_one_that_is_not_there() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let typo = tmp.path().join("typo.db");
    let typo_s = typo.to_str().unwrap();
    let out = tmp.path().join("backup.ndjson");

    let o = run(
        &home,
        &[
            "export",
            "--db-path",
            typo_s,
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("no session database at {typo_s}")),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("check the path"), "{}", stderr(&o));
    assert!(
        !typo.exists(),
        "export created the database it was asked to read"
    );
    assert!(!out.exists(), "export wrote a backup of nothing");

    // The same through the environment and through a mistyped home.
    let o = bin()
        .env("SESSION_BUDDY_HOME", &home)
        .env("SESSION_BUDDY_DB_PATH", &typo)
        .args(["export"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!typo.exists());
    let typo_home = tmp.path().join("hoem");
    let o = run(&typo_home, &["export", "--format", "csv"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "no session database at {}",
            typo_home.join("sessions.db").display()
        )),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(
        !typo_home.exists(),
        "a mistyped SESSION_BUDDY_HOME was created"
    );

    // token verify/revoke --db-path.
    let token = bin()
        .env("SESSION_BUDDY_HOME", &home)
        .env("SESSION_BUDDY_SECRET", SECRET)
        .args(["token", "create", "--subject", "ops", "--scope", "read"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{}", stderr(&token));
    let token = stdout(&token).trim().to_string();
    for args in [
        vec!["token", "verify", token.as_str(), "--db-path", typo_s],
        vec!["token", "revoke", token.as_str(), "--db-path", typo_s],
    ] {
        let o = bin()
            .env("SESSION_BUDDY_HOME", &home)
            .env("SESSION_BUDDY_SECRET", SECRET)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("no session database at {typo_s}")),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!typo.exists(), "{args:?} created the database");
    }
}

#[test]
fn serve_makes_its_default_home_but_not_a_directory_someone_named() {
    let tmp = tempfile::tempdir().unwrap();
    let named = tmp.path().join("nonexistent/dir/x.db");
    let o = run(
        tmp.path(),
        &["serve", "--port", "0", "--db-path", named.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let dir = tmp.path().join("nonexistent/dir");
    assert!(
        stderr(&o).contains(&format!("the directory {} ", dir.display()))
            && stderr(&o).contains("does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.path().join("nonexistent").exists());

    // The default, $SESSION_BUDDY_HOME/sessions.db, is made with its directory.
    let home = tmp.path().join("fresh/home");
    let mut server = Server::start(&home);
    assert!(home.join("sessions.db").exists());
    assert!(server.terminate().success());
    // And now that it exists, export reads it.
    let o = run(&home, &["export"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn help_names_each_environment_variable_once() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["serve", "--help"][..],
        &["config", "show", "--help"],
        &["export", "--help"],
        &["bench", "seed", "--help"],
        &["list-sessions", "--help"],
        &["analytics", "sessions", "--help"],
        &["token", "revoke", "--help"],
    ] {
        let o = run(home.path(), args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let text = stdout(&o);
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("SESSION_BUDDY_") && word != "SESSION_BUDDY_HOME" {
                *seen.entry(word.to_string()).or_default() += 1;
            }
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{args:?} repeats {twice:?}:\n{text}");
    }
    let o = run(home.path(), &["serve", "--help"]);
    assert!(
        stdout(&o).contains("SESSION_BUDDY_DB_POOL_SIZE"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn completions_for_every_shell_and_man_pages_for_every_command() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = run(home.path(), &["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let text = stdout(&o);
        for word in ["list-sessions", "analytics", "event-buffer", "--db-path"] {
            assert!(
                text.contains(word),
                "{shell} completions lack {word}:\n{text}"
            );
        }
    }
    let o = run(home.path(), &["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    let o = run(home.path(), &["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with(".ie") || stdout(&o).contains(".TH"));
    assert!(stdout(&o).contains("list\\-sessions"), "{}", stdout(&o));

    let dir = home.path().join("man/man1");
    let o = run(home.path(), &["man", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for page in [
        "session-buddy.1",
        "session-buddy-serve.1",
        "session-buddy-list-sessions.1",
        "session-buddy-analytics.1",
        "session-buddy-analytics-sessions.1",
        "session-buddy-token-create.1",
        "session-buddy-completions.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}; wrote {:?}", std::fs::read_dir(&dir)));
        assert!(text.contains(".TH"), "{page}:\n{text}");
    }
    let sessions = std::fs::read_to_string(dir.join("session-buddy-list-sessions.1")).unwrap();
    assert!(sessions.contains("duration\\-greater"), "{sessions}");
    let n = std::fs::read_dir(&dir).unwrap().count();
    assert!(
        stderr(&o).contains(&format!("wrote {n} man pages")) && stderr(&o).contains("`man -M "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn render_without_a_file_writes_one_and_says_where() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let start = start_event("oneiric", "2026-07-03T09:00:00Z");
    let id = session_id(&start);
    assert_eq!(server.post(&[start])[0]["status"], "accepted");
    let cwd = tempfile::tempdir().unwrap();
    let render = |cmd: &str| {
        bin()
            .env("SESSION_BUDDY_HOME", home.path())
            .env("SESSION_BUDDY_URL", &server.url)
            .current_dir(cwd.path())
            .args(["shell", "fastblocks", "-c", cmd])
            .output()
            .unwrap()
    };
    let o = render(&format!("render {id}"));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let file = format!("session-{id}.html");
    assert!(
        stdout(&o).contains(&format!("Wrote {file} (")),
        "{}",
        stdout(&o)
    );
    assert!(
        !stdout(&o).contains("<html"),
        "HTML on the terminal:\n{}",
        stdout(&o)
    );
    let html = std::fs::read_to_string(cwd.path().join(&file)).unwrap();
    assert!(html.contains("<html") && html.contains(&id), "{html}");
    // `-` asks for standard output.
    let o = render(&format!("render {id} -"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("<html"), "{}", stdout(&o));
}

/// `serve` stops on SIGTERM with an idle keep-alive connection open and requests in flight:
/// exit 0, and every acknowledged event is stored. (How fast it stops is measured by hand; the
/// deadline here only keeps a hang from blocking the suite.)
#[test]
fn sigterm_with_idle_and_busy_connections_stops_and_loses_nothing() {
    let home = tempfile::tempdir().unwrap();
    let mut child = bin()
        .env("SESSION_BUDDY_HOME", home.path())
        .args(["serve", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let (stderr, lines) = (child.stderr.take().unwrap(), lines.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                lines.lock().unwrap().push(line);
            }
        })
    };
    let url = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let addr = url.trim_start_matches("http://").to_string();

    // An idle keep-alive connection: one answered request, then nothing.
    let mut idle = TcpStream::connect(&addr).unwrap();
    write!(idle, "GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    // Senders that keep posting until the server goes away.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..3)
        .map(|w| {
            let (url, acked, stop) = (url.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                for n in 0..2000u32 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let batch: Vec<Value> = (0..20)
                        .map(|i| {
                            start_event(
                                &format!("term{w}"),
                                &format!(
                                    "2026-07-04T{:02}:{:02}:{:02}.{i:03}Z",
                                    n / 3600 % 24,
                                    n / 60 % 60,
                                    n % 60
                                ),
                            )
                        })
                        .collect();
                    let Ok(mut r) = ureq::post(format!("{url}/v1/events")).send_json(&batch) else {
                        break;
                    };
                    let Ok(v) = r.body_mut().read_json::<Value>() else {
                        break;
                    };
                    if v["results"]
                        .as_array()
                        .is_some_and(|r| r.iter().all(|r| r["status"] == "accepted"))
                    {
                        acked.lock().unwrap().extend(batch.iter().map(session_id));
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 500 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let guard = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > guard {
            let _ = child.kill();
            panic!("serve did not exit within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    reader.join().unwrap();
    assert!(status.success(), "{status:?}: {:?}", lines.lock().unwrap());
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("session-buddy stopped")),
        "{:?}",
        lines.lock().unwrap()
    );
    drop(idle);
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    let server = Server::start(home.path());
    let stored: std::collections::HashSet<String> = crate::common::stored_session_ids(&server.url)
        .into_iter()
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "{} of {} lost", lost.len(), acked.len());
}

/// A request that never finishes (its body stalls) holds the server only for the drain bound:
/// SIGTERM still stops it, with exit 0.
#[test]
fn sigterm_with_a_stalled_request_stops_after_the_drain_bound() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Server::start(home.path());
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut stalled = TcpStream::connect(&addr).unwrap();
    // `Expect: 100-continue`: the server answers 100 once the handler reads the body, so
    // the request is surely in flight; then half a body, and nothing more.
    write!(
        stalled,
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 256];
    let n = stalled.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    stalled.write_all(b"[{\"event_type\"").unwrap();
    stalled.flush().unwrap();
    assert!(
        Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let guard = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < guard, "serve hung on a stalled request");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    drop(stalled);
}
