//! The web console in a real browser: Debian's headless Chromium driven through chromedriver
//! (W3C WebDriver: plain HTTP and JSON with ureq) against a real `serve`.
//!
//! Needs `chromium` and `chromedriver` (`./scripts/test` installs them); skipped with a notice
//! without them, except under `CI`, where it fails. Screenshots of every page at 1280×800 and
//! 390×844 go to `$CARGO_TARGET_TMPDIR/console-*.png`.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Server, bin, free_port, session_id, start_event};

const WAIT: Duration = Duration::from_secs(30);

/// A chromedriver child and one browser session in it.
struct Browser {
    driver: Child,
    base: String,
    session: String,
}

fn found(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wd(method: &str, url: &str, body: Option<Value>) -> Value {
    let result = match body {
        Some(b) => ureq::post(url).send_json(b),
        None if method == "DELETE" => ureq::delete(url).call(),
        None => ureq::get(url).call(),
    };
    match result {
        Ok(mut r) => r.body_mut().read_json::<Value>().unwrap_or(Value::Null)["value"].take(),
        Err(e) => panic!("WebDriver {method} {url}: {e}"),
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium; `None` (after a
    /// notice) when they are not installed and `CI` is not set.
    fn start() -> Option<Self> {
        if !found("chromium") || !found("chromedriver") {
            assert!(
                std::env::var_os("CI").is_none(),
                "chromium/chromedriver are missing but CI is set: the browser tests must run"
            );
            eprintln!(
                "skipping a browser test: chromium or chromedriver is not installed (./scripts/test installs them)"
            );
            return None;
        }
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let ready = Instant::now();
        loop {
            let up = ureq::get(format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if up {
                break;
            }
            assert!(ready.elapsed() < WAIT, "chromedriver did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800", "--hide-scrollbars"]
            }
        }}});
        let v = wd("POST", &format!("{base}/session"), Some(caps));
        let session = v["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_string();
        Some(Self {
            driver,
            base,
            session,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    fn go(&self, url: &str) {
        wd("POST", &self.url("/url"), Some(json!({"url": url})));
    }

    /// Runs `script` in the page (`return …`), with `args`.
    fn js(&self, script: &str, args: Value) -> Value {
        wd(
            "POST",
            &self.url("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Waits until `script` returns true.
    fn wait_for(&self, what: &str, script: &str, args: Value) {
        let t = Instant::now();
        while self.js(script, args.clone()) != Value::Bool(true) {
            assert!(t.elapsed() < WAIT, "timed out waiting for: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn element(&self, css: &str) -> String {
        let v = wd(
            "POST",
            &self.url("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        wd(
            "POST",
            &self.url(&format!("/element/{e}/clear")),
            Some(json!({})),
        );
        wd(
            "POST",
            &self.url(&format!("/element/{e}/value")),
            Some(json!({"text": text})),
        );
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        wd(
            "POST",
            &self.url(&format!("/element/{e}/click")),
            Some(json!({})),
        );
    }

    fn text(&self, css: &str) -> String {
        let e = self.element(css);
        wd("GET", &self.url(&format!("/element/{e}/text")), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn path(&self) -> String {
        self.js("return location.pathname + location.search;", json!([]))
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// A PNG of the viewport at `width`×`height`, written to `$CARGO_TARGET_TMPDIR/name.png`.
    fn screenshot(&self, name: &str, width: u32, height: u32) -> std::path::PathBuf {
        wd(
            "POST",
            &self.url("/window/rect"),
            Some(json!({"width": width, "height": height})),
        );
        // The rect is the window's; make the viewport the size asked for.
        let inner = self.js("return [window.innerWidth, window.innerHeight];", json!([]));
        let (iw, ih) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        if iw > 0 && ih > 0 && (iw != width || ih != height) {
            let (w, h) = (2 * width - iw, 2 * height - ih);
            wd(
                "POST",
                &self.url("/window/rect"),
                Some(json!({"width": w, "height": h})),
            );
        }
        let png = decode_base64(
            wd("GET", &self.url("/screenshot"), None)
                .as_str()
                .unwrap_or(""),
        );
        let path =
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (what WebDriver screenshots are), without a crate.
fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::with_capacity(s.len() * 3 / 4), 0u32, 0);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn ago(secs: i64) -> String {
    (chrono::Utc::now() - chrono::TimeDelta::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn command_event(session: &str, seq: u64, ts: &str, name: &str, error: Option<&str>) -> Value {
    json!({
        "event_id": uuid::Uuid::new_v4().to_string(), "event_type": "command",
        "session_id": session, "timestamp": ts, "seq": seq, "command": name,
        "args": "--verbose", "success": error.is_none(), "duration_ms": 25.0, "error": error,
    })
}

fn end_event(session: &str, ts: &str) -> Value {
    json!({"event_version": "1.1", "event_id": uuid::Uuid::new_v4().to_string(),
           "event_type": "session_end", "session_id": session, "timestamp": ts,
           "exit_code": 0, "reason": "exit"})
}

#[test]
fn the_live_view_shows_a_tracked_shell_and_drops_it_when_it_ends() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    browser.go(&format!("{}/", server.url));
    browser.wait_for(
        "the live table",
        "return !!document.querySelector('table#live');",
        json!([]),
    );
    // A real tracked session: `track` runs a shell that waits for a line.
    let mut tracked = bin()
        .env("SESSION_BUDDY_HOME", home.path())
        .env("SESSION_BUDDY_URL", &server.url)
        .args([
            "track",
            "--component",
            "livetest",
            "--",
            "sh",
            "-c",
            "read line",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    browser.wait_for(
        "the tracked session's row",
        "return [...document.querySelectorAll('#live tr[data-session]')].some(r => r.querySelector('td.component').textContent === 'livetest');",
        json!([]),
    );
    let running = browser.text("#live tr[data-session] td.running");
    assert!(!running.is_empty());
    tracked.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(tracked.wait().unwrap().success());
    browser.wait_for(
        "the ended session to leave",
        "return ![...document.querySelectorAll('#live tr[data-session]')].some(r => r.querySelector('td.component').textContent === 'livetest');",
        json!([]),
    );
    assert_eq!(
        browser.js(
            "return performance.getEntriesByType('navigation').length;",
            json!([])
        ),
        json!(1),
        "no reload"
    );
}

#[test]
fn the_sessions_list_filters_and_pages() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let mut alpha = Vec::new();
    for i in 0..5 {
        let s = start_event("alpha", &ago(600 - i));
        alpha.push(session_id(&s));
        server.post(&[s]);
    }
    server.post(&[
        start_event("beta", &ago(300)),
        start_event("beta", &ago(200)),
    ]);
    browser.go(&format!("{}/sessions?limit=2", server.url));
    browser.type_into("#filters input[name=component]", "alpha");
    browser.click("#filters button[type=submit]");
    browser.wait_for(
        "the filtered list",
        "return location.search.includes('component=alpha');",
        json!([]),
    );
    let components = "return [...document.querySelectorAll('#sessions tr[data-session] td.component')].map(t => t.textContent);";
    let mut seen = Vec::new();
    for expected in [2, 2, 1] {
        let shown = browser.js(components, json!([]));
        assert_eq!(shown.as_array().map(Vec::len), Some(expected), "{shown}");
        assert!(shown.as_array().unwrap().iter().all(|c| c == "alpha"));
        let ids = browser.js("return [...document.querySelectorAll('#sessions tr[data-session]')].map(r => r.dataset.session);", json!([]));
        seen.extend(
            ids.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
        if expected == 2 {
            let before = browser.path();
            browser.click("a[rel=next]");
            browser.wait_for(
                "the next page",
                "return location.pathname + location.search !== arguments[0];",
                json!([before]),
            );
        } else {
            assert_eq!(
                browser.js(
                    "return document.querySelector('a[rel=next]') === null;",
                    json!([])
                ),
                json!(true)
            );
        }
    }
    alpha.reverse();
    assert_eq!(seen, alpha, "newest first, each once");
    // The CLI's keywords in the time filter; the filters stay in the URL.
    browser.go(&format!(
        "{}/sessions?component=beta&after=yesterday",
        server.url
    ));
    assert_eq!(
        browser.js(components, json!([])).as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        browser.js(
            "return document.querySelector('#filters input[name=after]').value;",
            json!([])
        ),
        json!("yesterday")
    );
}

#[test]
fn a_sessions_timeline_shows_its_failed_command_and_script_as_text() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let mut s = start_event("oneiric", &ago(60));
    s["metadata"] = json!({"note": "<script>window.pwned = 1</script>", "img": "<img src=x onerror=window.pwned=2>"});
    let id = session_id(&s);
    server.post(&[
        s,
        command_event(&id, 1, &ago(50), "status", None),
        command_event(&id, 2, &ago(40), "deploy", Some("exit status 3")),
        end_event(&id, &ago(30)),
    ]);
    browser.go(&format!("{}/sessions/{id}", server.url));
    browser.wait_for(
        "the timeline",
        "return !!document.querySelector('ol#timeline li.end');",
        json!([]),
    );
    let failed = browser.text("ol#timeline li.event.failed");
    assert!(
        failed.contains("deploy") && failed.contains("exit status 3"),
        "{failed}"
    );
    assert_eq!(
        browser.js(
            "return document.querySelectorAll('ol#timeline li.event.failed').length;",
            json!([])
        ),
        json!(1)
    );
    let meta = browser.text("#metadata");
    assert!(meta.contains("<script>window.pwned = 1</script>"), "{meta}");
    assert_eq!(
        browser.js(
            "return window.pwned === undefined && !document.querySelector('main img');",
            json!([])
        ),
        json!(true)
    );
    let time_title = browser.js(
        "return document.querySelector('#record time').title;",
        json!([]),
    );
    assert!(
        time_title.as_str().unwrap_or("").ends_with("(UTC)"),
        "{time_title}"
    );
}

/// A recorded session's page plays its recording: loaded at 0, played to its end at 8×, seeked
/// back, stepped, and a timeline command clicked shows the screen at its moment; the sessions
/// list marks the session as recorded.
#[test]
fn a_recording_plays_seeks_steps_and_follows_the_timeline() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let started = chrono::Utc::now() - chrono::TimeDelta::seconds(60);
    let at = |secs: f64| {
        (started + chrono::TimeDelta::milliseconds((secs * 1000.0) as i64))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let s = start_event("oneiric", &at(0.0));
    let id = session_id(&s);
    let chunk = |seq: u64, frames: Value| {
        json!({"event_version": "1.1", "event_id": uuid::Uuid::new_v4().to_string(),
               "event_type": "output", "session_id": id, "timestamp": at(3.0), "seq": seq,
               "started_at": at(0.0), "cols": 80, "rows": 24, "frames": frames})
    };
    let results = server.post(&[
        s,
        chunk(
            1,
            json!([
                [0.2, "o", "\u{1b}[2J\u{1b}[Hfirst screen"],
                [1.0, "o", "\r\nsecond line"]
            ]),
        ),
        chunk(
            2,
            json!([
                [1.5, "r", "100x30"],
                [2.5, "o", "\u{1b}[2J\u{1b}[Hthe last screen"]
            ]),
        ),
        command_event(&id, 1, &at(1.2), "status", None),
        end_event(&id, &at(3.0)),
    ]);
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "{results:?}"
    );
    browser.go(&format!("{}/sessions", server.url));
    let row = browser.text(&format!("tr[data-session='{id}'] td.session"));
    assert!(
        row.contains("rec"),
        "the list marks a recorded session: {row}"
    );

    browser.go(&format!("{}/sessions/{id}", server.url));
    browser.wait_for(
        "the player to load",
        "return document.getElementById('player').getAttribute('data-state') === 'ready';",
        json!([]),
    );
    let screen = || {
        browser
            .js("return window.sbPlayer.text();", json!([]))
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        !screen().contains("first screen"),
        "at 0 nothing is shown yet: {}",
        screen()
    );
    // Play to the end, fast.
    browser.js(
        "var s = document.getElementById('speed'); s.value = '8'; \
         s.dispatchEvent(new Event('change')); return true;",
        json!([]),
    );
    browser.click("#play-pause");
    browser.wait_for(
        "the last screen",
        "return window.sbPlayer.text().indexOf('the last screen') >= 0;",
        json!([]),
    );
    assert!(
        !screen().contains("first screen"),
        "the screen was cleared: {}",
        screen()
    );
    // Seek back to 1.1 s: the first screen with its second line.
    browser.js(
        "var s = document.getElementById('seek'); s.value = '1.1'; \
         s.dispatchEvent(new Event('input')); return true;",
        json!([]),
    );
    browser.wait_for(
        "the screen at 1.1 s",
        "return window.sbPlayer.text().indexOf('second line') >= 0;",
        json!([]),
    );
    assert!(screen().contains("first screen"), "{}", screen());
    assert!(!screen().contains("the last screen"), "{}", screen());
    // Back to the start, then one step shows the first frame.
    browser.js(
        "var s = document.getElementById('seek'); s.value = '0'; \
         s.dispatchEvent(new Event('input')); return true;",
        json!([]),
    );
    browser.wait_for(
        "the start",
        "return window.sbPlayer.text().indexOf('first screen') < 0;",
        json!([]),
    );
    browser.click("#step");
    browser.wait_for(
        "the first frame",
        "return window.sbPlayer.text().indexOf('first screen') >= 0 \
         && window.sbPlayer.text().indexOf('second line') < 0;",
        json!([]),
    );
    // The command at 1.2 s in the timeline: clicking it shows that moment.
    let offset = browser.js(
        "return document.querySelector('ol#timeline li.command').getAttribute('data-offset');",
        json!([]),
    );
    assert_eq!(
        offset,
        json!("1.200"),
        "the command's moment in the recording"
    );
    browser.click("ol#timeline li.command");
    browser.wait_for(
        "the command's moment",
        "return window.sbPlayer.text().indexOf('second line') >= 0 \
         && document.getElementById('player').getAttribute('data-time') === '1.20';",
        json!([]),
    );
    browser.screenshot("console-recording", 1280, 800);
}

#[test]
fn analytics_show_the_clis_numbers() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    for (component, n, failed) in [("alpha", 3, 1), ("beta", 2, 0)] {
        for i in 0..n {
            let s = start_event(component, &ago(3600 + i));
            let id = session_id(&s);
            let mut end = end_event(&id, &ago(1800 + i));
            if i < failed {
                end["exit_code"] = json!(2);
            }
            server.post(&[s, end]);
        }
    }
    server.post(&[start_event("beta", &ago(100))]);
    let out = server.cli(&["analytics", "sessions", "--days", "7", "--json"]);
    assert!(out.status.success());
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    browser.go(&format!("{}/analytics?days=30", server.url));
    // The window selector.
    browser.js("const s = document.getElementById('days'); s.value = '7'; s.dispatchEvent(new Event('change'));", json!([]));
    browser.wait_for(
        "the 7-day window",
        "return location.search.includes('days=7') && !!document.querySelector('#summary');",
        json!([]),
    );
    let rows = cli.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let component = row["component_name"].as_str().unwrap();
        for field in [
            "total_sessions",
            "active_sessions",
            "avg_duration",
            "error_rate",
        ] {
            let shown = browser.js(
                "const c = document.querySelector(`#summary tr[data-component='${arguments[0]}'] td[data-field='${arguments[1]}']`); return c ? c.dataset.value : null;",
                json!([component, field]),
            );
            let shown: f64 = shown
                .as_str()
                .unwrap_or_else(|| panic!("{component} {field}"))
                .parse()
                .unwrap();
            let cli_value = row[field].as_f64().unwrap();
            assert!(
                (shown - cli_value).abs() < 1e-9,
                "{component} {field}: page {shown}, CLI {cli_value}"
            );
        }
    }
}

#[test]
fn login_with_good_wrong_expired_and_revoked_tokens() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let secret = "browser-tests-secret-0123456789-abcdefghijkl";
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_env(home.path(), &[("SESSION_BUDDY_SECRET", secret)], &[]);
    let now = chrono::Utc::now().timestamp();
    let claims = |scopes: &[&str], exp: i64| session_buddy_events::auth::Claims {
        sub: "browser".into(),
        aud: "session-buddy".into(),
        iss: Some("session-buddy".into()),
        iat: Some(now),
        exp,
        jti: uuid::Uuid::new_v4().to_string(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        component: None,
        read_components: Vec::new(),
    };
    let mint =
        |c: &session_buddy_events::auth::Claims| session_buddy_token::mint(secret, c).unwrap();
    let log_in = |token: &str| {
        browser.go(&format!("{}/", server.url));
        browser.wait_for(
            "the login form",
            "return location.pathname === '/login' && !!document.querySelector('form#login');",
            json!([]),
        );
        browser.type_into("form#login input[name=token]", token);
        browser.click("form#login button[type=submit]");
        browser.wait_for(
            "an answer",
            "return !!document.querySelector('.error') || !!document.querySelector('table#live');",
            json!([]),
        );
    };
    log_in("garbage");
    assert!(browser.text(".error").contains("not a valid token"));
    log_in(&mint(&claims(&["read"], now - 60)));
    assert!(
        browser.text(".error").contains("expired"),
        "{}",
        browser.text(".error")
    );
    let revoked = claims(&["read"], now + 3600);
    let admin = mint(&claims(&["admin"], now + 3600));
    let r = ureq::post(format!("{}/v1/tokens/revoke", server.url))
        .header("authorization", &format!("Bearer {admin}"))
        .send_json(json!({"jti": revoked.jti}))
        .unwrap();
    assert_eq!(r.status(), 200);
    log_in(&mint(&revoked));
    assert!(browser.text(".error").contains("revoked"));
    log_in(&mint(&claims(&["read"], now + 3600)));
    assert!(browser.path() == "/", "{}", browser.path());
    assert_eq!(
        browser.js("return document.cookie;", json!([])),
        json!(""),
        "the session cookie is HttpOnly"
    );
    // Logging out ends it.
    browser.click("form.logout button");
    browser.wait_for(
        "the login page",
        "return location.pathname === '/login';",
        json!([]),
    );
    browser.go(&format!("{}/sessions", server.url));
    browser.wait_for(
        "the login page again",
        "return location.pathname === '/login';",
        json!([]),
    );
}

#[test]
fn screenshots_of_every_page_at_laptop_and_phone_sizes() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let mut first = None;
    for (i, (component, user, host)) in [
        ("oneiric", "alice", "web-01"),
        ("akosha", "bob", "db-02"),
        ("mahavishnu", "carol", "ops-03"),
    ]
    .iter()
    .enumerate()
    {
        let mut s = start_event(component, &ago(900 - 200 * i as i64));
        s["user"]["username"] = json!(user);
        s["hostname"] = json!(host);
        let id = session_id(&s);
        first.get_or_insert(id.clone());
        server.post(&[
            s,
            command_event(&id, 1, &ago(100), "status", None),
            command_event(
                &id,
                2,
                &ago(90),
                "deploy",
                (i == 0).then_some("exit status 3"),
            ),
        ]);
    }
    let ended = start_event("crackerjack", &ago(4000));
    let ended_id = session_id(&ended);
    server.post(&[ended, end_event(&ended_id, &ago(3000))]);
    let first = first.unwrap();
    for (name, path) in [
        ("live", "/".to_string()),
        ("sessions", "/sessions".into()),
        ("session", format!("/sessions/{first}")),
        ("analytics", "/analytics".into()),
        ("status", "/status".into()),
    ] {
        browser.go(&format!("{}{path}", server.url));
        browser.wait_for(
            "the page",
            "return document.readyState === 'complete';",
            json!([]),
        );
        for (w, h) in [(1280, 800), (390, 844)] {
            let png = browser.screenshot(&format!("console-{name}-{w}x{h}"), w, h);
            let bytes = std::fs::read(&png).unwrap();
            assert!(bytes.starts_with(b"\x89PNG"), "{}", png.display());
        }
        let overflow = browser.js(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            json!([]),
        );
        assert_eq!(overflow, json!(true), "{name} scrolls sideways on a phone");
    }
}
