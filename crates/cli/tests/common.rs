//! Runs the built binary; starts `serve` as a child process on a free port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A loopback port with nothing listening on it (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_session-buddy"));
    c.env_remove("SESSION_BUDDY_URL")
        .env_remove("SESSION_BUDDY_PORT")
        .env_remove("SESSION_BUDDY_HOST")
        .env_remove("SESSION_BUDDY_DB_PATH")
        .env_remove("SESSION_BUDDY_DATABASE_URL")
        .env_remove("SESSION_BUDDY_CONFIG")
        .env_remove("SESSION_BUDDY_SECRET")
        .env_remove("SESSION_BUDDY_PREVIOUS_SECRET")
        .env_remove("SESSION_BUDDY_TOKEN")
        .env("NO_COLOR", "1")
        .env("TZ", "UTC");
    c
}

/// Runs the binary with `args` against `home`; returns its output.
pub fn run(home: &Path, args: &[&str]) -> Output {
    bin()
        .env("SESSION_BUDDY_HOME", home)
        .args(args)
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub home: PathBuf,
}

impl Server {
    /// `serve --port 0` with `SESSION_BUDDY_HOME=home`; waits until it listens.
    pub fn start(home: &Path) -> Self {
        Self::start_with(home, &[])
    }

    /// `serve --port 0 EXTRA…` with `SESSION_BUDDY_HOME=home`; waits until it listens.
    pub fn start_with(home: &Path, extra: &[&str]) -> Self {
        Self::start_env(home, &[], extra)
    }

    /// [`start_with`](Self::start_with) with more environment, e.g. `SESSION_BUDDY_SECRET`.
    pub fn start_env(home: &Path, env: &[(&str, &str)], extra: &[&str]) -> Self {
        let port: &[&str] = if extra.contains(&"--port") {
            &[]
        } else {
            &["--port", "0"]
        };
        let mut command = bin();
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .env("SESSION_BUDDY_HOME", home)
            .arg("serve")
            .args(port)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server did not start listening");
        Self {
            child,
            url,
            home: home.to_path_buf(),
        }
    }

    /// Runs a client command against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        bin()
            .env("SESSION_BUDDY_HOME", &self.home)
            .env("SESSION_BUDDY_URL", &self.url)
            .args(args)
            .output()
            .unwrap()
    }

    pub fn post(&self, events: &[Value]) -> Vec<Value> {
        let mut r = ureq::post(format!("{}/v1/events", self.url))
            .send_json(events)
            .unwrap();
        let v: Value = r.body_mut().read_json().unwrap();
        v["results"].as_array().unwrap().clone()
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_event(component: &str, ts: &str) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "session_start",
        "component_name": component,
        "shell_type": "TestShell",
        "timestamp": ts,
        "pid": 777,
        "user": {"username": "alice", "home": "/home/alice"},
        "hostname": "box1",
        "environment": {"platform": "Linux", "cwd": "/work", "runtime": "rust 1.95"},
        "session_id_version": 2
    })
}

/// The session id a start defines, by the rule it names.
pub fn session_id(start: &Value) -> String {
    session_buddy_events::parse_session_start(start)
        .unwrap()
        .session_id()
}

/// Every session id the server at `url` stores, following cursors.
pub fn stored_session_ids(url: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = ureq::get(format!("{url}/v1/sessions")).query("limit", "1000");
        if let Some(c) = &cursor {
            req = req.query("cursor", c);
        }
        let v: Value = req.call().unwrap().body_mut().read_json().unwrap();
        for s in v["sessions"].as_array().unwrap() {
            ids.push(s["session_id"].as_str().unwrap().to_string());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

static TMUX_SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A tmux server of its own, killed on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    pub fn start(cwd: &Path, env: &[(&str, &str)], argv: &[&str]) -> Self {
        let tmux = Tmux {
            socket: format!(
                "sb-test-{}-{}",
                std::process::id(),
                TMUX_SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
        };
        let mut c = tmux.cmd();
        c.args([
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "50",
        ])
        .arg("-c")
        .arg(cwd);
        for (k, v) in env {
            c.args(["-e", &format!("{k}={v}")]);
        }
        c.arg("--").args(argv);
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        tmux
    }

    pub fn screen(&self) -> String {
        let o = self
            .cmd()
            .args(["capture-pane", "-p", "-S", "-200"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        assert!(
            self.cmd()
                .arg("send-keys")
                .args(keys)
                .status()
                .unwrap()
                .success()
        );
    }

    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}
