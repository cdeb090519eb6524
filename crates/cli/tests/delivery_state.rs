//! What the shells and `event-buffer` say about delivery: a refused token is not an outage, the
//! recorded state has an age, `status` asks the server now, and a URL without a scheme says
//! that `http://` is missing.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Server, bin, stderr, stdout};

const SECRET: &str = "Vq3nZ8rT1wY6uI0oP4aS7dF2gH5jK9lX-delivery";

/// The client side: its own home, the server's URL, and a token if any.
fn client(home: &Path, url: &str, token: Option<&str>) -> Command {
    let mut c = bin();
    c.env("SESSION_BUDDY_HOME", home)
        .env("SESSION_BUDDY_URL", url);
    if let Some(t) = token {
        c.env("SESSION_BUDDY_TOKEN", t);
    }
    c
}

fn run(mut c: Command, args: &[&str]) -> Output {
    c.args(args).output().unwrap()
}

/// Polls `event-buffer status --format json` until the recorded outcome is `kind`.
fn wait_for_delivery(home: &Path, url: &str, kind: &str) -> Value {
    let started = Instant::now();
    loop {
        let o = run(
            client(home, url, None),
            &["event-buffer", "status", "--format", "json"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        if v["delivery"] == kind {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the recorded delivery never became {kind}: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of `field` in the shell's `status` output.
fn status_line(out: &str, field: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no '{field}' in: {out}"))[field.len()..]
        .trim()
        .to_string()
}

#[test]
fn a_wrong_token_is_reported_as_refused_with_the_servers_reason_not_as_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(
        &dir.path().join("server"),
        &[("SESSION_BUDDY_SECRET", SECRET)],
        &[],
    );
    let home = dir.path().join("client");
    let bad = Some("bad.to.ken");

    let o = run(
        client(&home, &server.url, bad),
        &["shell", "oneiric", "-c", "show_layers"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v = wait_for_delivery(&home, &server.url, "refused");
    assert_eq!(v["last_delivery"]["outcome"]["status"], 401, "{v:#}");
    let tracking = v["tracking"].as_str().unwrap();
    assert!(
        tracking.contains("the server refused the token since")
            && tracking.contains("malformed token")
            && tracking.contains("session-buddy token create"),
        "{tracking}"
    );

    // The shell's status: the recorded state, and the live answer of the server.
    let o = run(
        client(&home, &server.url, bad),
        &["shell", "oneiric", "-c", "status"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("unreachable"), "{out}");
    let now = status_line(&out, "Server now");
    assert!(
        now.starts_with("the server refused the token (HTTP 401: malformed token"),
        "{now}"
    );
    assert!(now.contains("SESSION_BUDDY_TOKEN"), "{now}");
    assert!(
        status_line(&out, "Tracking").contains("refused the token"),
        "{out}"
    );

    // event-buffer status says the same.
    let o = run(client(&home, &server.url, bad), &["event-buffer", "status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("refused the token"), "{out}");
    assert!(out.contains("malformed token"), "{out}");
    assert!(!out.contains("unreachable"), "{out}");

    // replay: exit 5, the server's reason and what to do; nothing is dead-lettered.
    let o = run(client(&home, &server.url, bad), &["event-buffer", "replay"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("refused the token (HTTP 401: malformed token"),
        "{err}"
    );
    assert!(err.contains("session-buddy token create"), "{err}");
    assert!(!err.contains("when the server is back"), "{err}");
    let v = wait_for_delivery(&home, &server.url, "refused");
    assert_eq!(v["dead_letters"], 0);

    // With a good token, replay delivers it all and status says the server takes it.
    let o = bin()
        .env("SESSION_BUDDY_HOME", dir.path())
        .env("SESSION_BUDDY_SECRET", SECRET)
        .args(["token", "create", "--subject", "op", "--scope", "emit"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let good = stdout(&o).trim().to_string();
    let o = run(
        client(&home, &server.url, Some(&good)),
        &["event-buffer", "replay"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("remaining 0"), "{}", stdout(&o));
    let o = run(
        client(&home, &server.url, Some(&good)),
        &["shell", "oneiric", "-c", "status"],
    );
    let out = stdout(&o);
    assert!(
        status_line(&out, "Server now").starts_with("answers and takes the token"),
        "{out}"
    );
}

#[test]
fn with_the_server_down_status_and_replay_say_unreachable_and_the_state_has_an_age() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let home = dir.path().join("client");

    let o = run(
        client(&home, &url, None),
        &["shell", "oneiric", "-c", "show_layers; status"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let now = status_line(&stdout(&o), "Server now");
    assert!(now.starts_with("server unreachable ("), "{now}");

    let v = wait_for_delivery(&home, &url, "unreachable");
    let tracking = v["tracking"].as_str().unwrap();
    assert!(
        tracking.starts_with("✓ Enabled (buffering: server unreachable since ")
            && tracking.contains(", last tried "),
        "{tracking}"
    );
    let o = run(client(&home, &url, None), &["event-buffer", "replay"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("when the server is back"),
        "{}",
        stderr(&o)
    );

    // The server comes up: status knows at once; the recorded state follows, with its age.
    let server = Server::start_with(&dir.path().join("server"), &["--port", &port.to_string()]);
    let o = run(
        client(&home, &server.url, None),
        &["shell", "oneiric", "-c", "status"],
    );
    let out = stdout(&o);
    assert!(
        status_line(&out, "Server now").starts_with("answers ("),
        "{out}"
    );
    let o = run(client(&home, &url, None), &["event-buffer", "replay"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = wait_for_delivery(&home, &url, "delivered");
    let tracking = v["tracking"].as_str().unwrap();
    assert!(
        tracking.starts_with("✓ Enabled (connected, ") && tracking.ends_with(" ago)")
            || tracking == "✓ Enabled (connected, just now)",
        "{tracking}"
    );
}

#[test]
fn a_url_without_a_scheme_says_that_http_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let url = "localhost:18678";
    let says = "SESSION_BUDDY_URL=localhost:18678 has no scheme; write http://localhost:18678";

    let o = run(client(home, url, None), &["list-sessions"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(says), "{}", stderr(&o));
    assert!(!stderr(&o).contains("invalid format"), "{}", stderr(&o));

    // A flag names itself.
    let mut c = bin();
    c.env("SESSION_BUDDY_HOME", home);
    let o = run(c, &["health", "--url", "127.0.0.1:18678"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("the server URL 127.0.0.1:18678 has no scheme; write http://127.0.0.1:18678"),
        "{}",
        stderr(&o)
    );

    // A shell helper that reads the server, and the shell's status.
    let o = run(
        client(home, url, None),
        &["shell", "session-buddy", "-c", "ps 5; status"],
    );
    assert!(stderr(&o).contains(says), "{}", stderr(&o));
    let now = status_line(&stdout(&o), "Server now");
    assert!(now.starts_with(&format!("cannot send: {says}")), "{now}");

    // What the shell buffered cannot be sent: replay says why, exit 1.
    let o = run(client(home, url, None), &["event-buffer", "replay"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(says), "{}", stderr(&o));
}
