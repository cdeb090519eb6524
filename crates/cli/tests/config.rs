//! One configuration: what `config show` and oneiric's helpers print is what `serve`, the
//! shells and the query commands use, across all six layers.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Server, bin, free_port, stderr, stdout, stored_session_ids};

/// A system file (pins tracking on), a user file (port, database), a project file (sets sync,
/// and tries url and tracking off) and environment variables (tracking off, a TTL).
struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    project: PathBuf,
    port: u16,
    env: Vec<(&'static str, String)>,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let home = root.join("home");
    let project = root.join("proj");
    let port = free_port();
    let system = root.join("etc/config.toml");
    write(
        &system,
        "pin = [\"client.tracking\"]\n[server]\nsession_ttl = \"5m\"\n[client]\ntracking = true\n",
    );
    std::fs::create_dir_all(root.join("db")).unwrap();
    write(
        &home.join("config.toml"),
        &format!(
            "[server]\nport = {port}\ndb_path = \"{}\"\n",
            root.join("db/sessions.db").display()
        ),
    );
    write(
        &project.join(".session-buddy.toml"),
        "[server]\nsync = \"full\"\n[client]\nurl = \"http://evil.invalid:1\"\ntracking = false\n",
    );
    std::fs::create_dir_all(project.join("src")).unwrap();
    let env = vec![
        ("SESSION_BUDDY_SYSTEM_CONFIG", system.display().to_string()),
        ("SESSION_BUDDY_HOME", home.display().to_string()),
        ("SESSION_BUDDY_TRACKING", "off".to_string()),
        ("SESSION_BUDDY_LEGACY_SESSION_TTL", "2h".to_string()),
    ];
    Setup {
        _dir: dir,
        root,
        home,
        project,
        port,
        env,
    }
}

impl Setup {
    /// The binary, run from inside the project (below its root), with the setup's environment.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = bin();
        c.env_remove("SESSION_BUDDY_TRACKING")
            .current_dir(self.project.join("src"))
            .args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).output().unwrap()
    }
}

/// `key → its line(s)` from the effective block both faces print: a line starting with a key,
/// and the indented source line under it when the source did not fit.
fn effective(out: &str) -> BTreeMap<String, String> {
    let names: Vec<&str> = [
        "server.host",
        "server.port",
        "server.db_path",
        "server.database_url",
        "server.sync",
        "server.allowed_hosts",
        "server.session_ttl",
        "server.legacy_session_ttl",
        "server.db_pool_size",
        "server.retention_days",
        "server.rate_limit",
        "server.tls_cert",
        "server.tls_key",
        "client.url",
        "client.token_file",
        "client.ca_cert",
        "client.tracking",
        "client.buffer_max_size",
        "client.buffer_max_age_days",
    ]
    .to_vec();
    let mut map = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in out.lines() {
        let key = line.split_whitespace().next().unwrap_or("");
        if names.contains(&key) && line.starts_with(key) && !line.contains(": ") {
            map.insert(key.to_string(), line.trim().to_string());
            last = Some(key.to_string());
        } else if let Some(k) = last.take()
            && line.starts_with("   ")
        {
            let v = map.get_mut(&k).unwrap();
            *v = format!("{v} {}", line.trim());
        }
    }
    assert_eq!(map.len(), names.len(), "{out}");
    map
}

fn line<'a>(map: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    &map[key]
}

/// `serve` with no flags: waits until it says where it listens; returns it (killed when
/// dropped) and that line.
fn serve(s: &Setup) -> (Server, String) {
    let child = s
        .cmd(&["serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        url: String::new(),
        home: s.home.clone(),
    };
    let err = server.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("serve said nothing");
        if l.contains("listening on") {
            return (server, l);
        }
    }
}

#[test]
fn the_page_cache_budget_comes_from_the_layers_and_a_bad_one_is_refused() {
    let mut s = setup();
    s.env.push(("SESSION_BUDDY_DB_CACHE_MIB", "48".to_string()));
    let (server, listening) = serve(&s);
    assert!(listening.contains("page caches 48 MiB)"), "{listening}");
    drop(server);
    let bad = s.run(&["serve", "--db-cache-mib", "2"]);
    assert!(!bad.status.success());
    let err = stderr(&bad);
    assert!(
        err.contains("server.db_cache_mib") && err.contains("from 4 to 65536, got '2'"),
        "{err}"
    );
}

#[test]
fn show_layers_config_show_serve_and_a_shell_agree_across_all_layers() {
    let s = setup();
    let show = s.run(&["config", "show"]);
    assert!(show.status.success(), "{}", stderr(&show));
    let show = stdout(&show);
    let layers = s.run(&["shell", "oneiric", "-c", "show_layers"]);
    assert!(layers.status.success(), "{}", stderr(&layers));
    let layers = stdout(&layers);
    let (a, b) = (effective(&show), effective(&layers));
    assert_eq!(a, b, "config show:\n{show}\nshow_layers:\n{layers}");
    for l in layers.lines() {
        assert!(l.chars().count() <= 80, "wider than 80 columns: {l:?}");
    }

    let port = s.port.to_string();
    let user = s.home.join("config.toml").display().to_string();
    let project = s.project.join(".session-buddy.toml").display().to_string();
    let system = s.root.join("etc/config.toml").display().to_string();
    let db = s.root.join("db/sessions.db").display().to_string();
    let has = |key: &str, parts: &[&str]| {
        let l = line(&a, key);
        for p in parts {
            assert!(l.contains(p), "{key}: {p:?} not in {l:?}\n{show}");
        }
    };
    has("server.port", &[&port, &format!("(user {user})")]);
    has("server.db_path", &[&db, "user"]);
    has("server.sync", &["full", &format!("(project {project})")]);
    has("server.session_ttl", &["5m", "system"]);
    has(
        "server.legacy_session_ttl",
        &["2h", "env SESSION_BUDDY_LEGACY_SESSION_TTL=2h"],
    );
    // The project file's url is ignored: the URL is derived from the port the user file sets.
    has(
        "client.url",
        &[
            &format!("http://127.0.0.1:{port}"),
            &format!("from server.port (user {user})"),
        ],
    );
    // Pinned on by the system file: neither the project file nor the environment turns it off.
    has(
        "client.tracking",
        &["on", &format!("system {system}, pinned")],
    );

    // What is ignored, and why, in both validators.
    let validate = s.run(&["config", "validate"]);
    assert!(validate.status.success(), "{}", stderr(&validate));
    let oneiric = s.run(&["shell", "oneiric", "-c", "validate_config"]);
    assert!(oneiric.status.success(), "{}", stderr(&oneiric));
    for out in [stdout(&validate), stdout(&oneiric)] {
        let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in [
            format!(
                "project {project}: client.url is ignored: a project file may not set where \
                 events and tokens go"
            ),
            format!(
                "project {project}: client.tracking is ignored: a project file may not set \
                 tracking off"
            ),
            format!(
                "env SESSION_BUDDY_TRACKING=off: ignored: client.tracking is pinned to on by the \
                 system file {system}"
            ),
        ] {
            assert!(flat.contains(&needle), "{needle:?} not in:\n{out}");
        }
    }

    // serve listens where the layers say, on the database they name.
    let (_server, listening) = serve(&s);
    assert!(
        listening.contains(&format!("listening on http://127.0.0.1:{port} "))
            && listening.contains(&format!(
                "(database sqlite:{db}, sync Full, page caches 32 MiB)"
            )),
        "{listening}"
    );
    let url = format!("http://127.0.0.1:{port}");

    // A shell's events go to the URL show_layers printed, with tracking on (pinned).
    let status = s.run(&["shell", "oneiric", "-c", "status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let status = stdout(&status);
    assert!(
        status.contains(&format!("Server           {url}"))
            && status.contains("✓ Enabled (pinned by the system file"),
        "{status}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_session_ids(&url).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the shells' sessions never arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // And list-sessions, without SESSION_BUDDY_URL, asks the same server.
    let list = s.run(&["list-sessions", "--format", "json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let sessions: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(
        sessions
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["component"] == "oneiric"),
        "{sessions}"
    );
}

#[test]
fn a_pin_outlasts_reload_settings_flags_and_the_environment() {
    let s = setup();
    let o = s.run(&[
        "shell",
        "oneiric",
        "-c",
        "reload_settings tracking=off; show_layers tracking",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let tracking = out
        .lines()
        .find(|l| l.starts_with("client.tracking "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        tracking.contains(" on ") && tracking.contains("pinned"),
        "{out}"
    );
    assert!(
        out.contains("What it cannot change: this shell keeps sending to"),
        "{out}"
    );
    // ONEIRIC_EVENT_BUFFER_ENABLED=false is overruled the same way; without the pin it wins.
    let mut c = s.cmd(&["shell", "oneiric", "-c", "status"]);
    c.env("ONEIRIC_EVENT_BUFFER_ENABLED", "false");
    let out = stdout(&c.output().unwrap());
    assert!(
        out.contains("✓ Enabled (pinned by the system file"),
        "{out}"
    );
    write(
        &s.root.join("etc/config.toml"),
        "[client]\ntracking = true\n",
    );
    let out = stdout(&s.run(&["shell", "oneiric", "-c", "status"]));
    assert!(
        out.contains("✗ Disabled (SESSION_BUDDY_TRACKING=off)"),
        "{out}"
    );
}

#[test]
fn list_sessions_follows_the_port_setting_and_client_url() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let port = server.url.rsplit(':').next().unwrap().to_string();
    let list = |env: &[(&str, &str)]| {
        let mut c = bin();
        c.env("SESSION_BUDDY_HOME", home.path())
            .current_dir(home.path())
            .args(["list-sessions"]);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let ok = |o: std::process::Output| assert!(o.status.success(), "{}", stderr(&o));
    // SESSION_BUDDY_PORT, as `serve` reads it.
    ok(list(&[("SESSION_BUDDY_PORT", &port)]));
    let config = home.path().join("config.toml");
    write(&config, &format!("[server]\nport = {port}\n"));
    ok(list(&[]));
    // [client] url beats the port setting; SESSION_BUDDY_URL beats both.
    write(&config, &format!("[client]\nurl = \"{}\"\n", server.url));
    ok(list(&[("SESSION_BUDDY_PORT", "1")]));
    write(&config, "[client]\nurl = \"http://127.0.0.1:1\"\n");
    ok(list(&[("SESSION_BUDDY_URL", &server.url)]));
    // Nothing listens there: the error names the URL the port setting made.
    std::fs::remove_file(&config).unwrap();
    let nobody = free_port().to_string();
    let o = list(&[("SESSION_BUDDY_PORT", &nobody)]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("http://127.0.0.1:{nobody}")),
        "{}",
        stderr(&o)
    );
}
