//! Schemas, configuration precedence, refusals, and the bench commands (bounded, loopback).

use crate::common::{Server, bin, run, stderr, stdout};

#[test]
fn schema_list_show_export() {
    let home = tempfile::tempdir().unwrap();
    let o = run(home.path(), &["schema", "list"]);
    assert!(stdout(&o).lines().any(|l| l.starts_with("session_start ")));
    let o = run(home.path(), &["schema", "show", "session_end"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["title"], "session_end");
    let o = run(home.path(), &["schema", "show", "nope"]);
    assert_eq!(o.status.code(), Some(4));
    let dir = home.path().join("schemas");
    let o = run(home.path(), &["schema", "export", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let n = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(n, session_buddy_events::schema_names().len());
}

#[test]
fn flag_beats_env_beats_config_file_beats_default() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "[server]\nport = 9100\nsync = \"full\"\n",
    )
    .unwrap();
    let show = |envs: &[(&str, &str)], args: &[&str]| {
        let mut c = bin();
        c.env("SESSION_BUDDY_HOME", home.path())
            .args(["config", "show"])
            .args(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        stdout(&c.output().unwrap())
    };
    let line = |out: &str, key: &str| {
        out.lines()
            .find(|l| l.starts_with(key))
            .unwrap()
            .to_string()
    };
    let out = show(&[], &[]);
    assert!(
        line(&out, "server.port ").contains("9100")
            && line(&out, "server.port ").contains("(user "),
        "{out}"
    );
    assert!(line(&out, "server.sync ").contains("full"), "{out}");
    assert!(
        line(&out, "server.host ").contains("127.0.0.1")
            && line(&out, "server.host ").contains("(default)"),
        "{out}"
    );
    assert!(
        line(&out, "server.db_path ").contains("sessions.db"),
        "{out}"
    );
    let out = show(&[("SESSION_BUDDY_PORT", "9200")], &[]);
    assert!(
        line(&out, "server.port ").contains("9200")
            && line(&out, "server.port ").contains("env SESSION_BUDDY_PORT=9200"),
        "{out}"
    );
    let out = show(&[("SESSION_BUDDY_PORT", "9200")], &["--port", "9300"]);
    assert!(
        line(&out, "server.port ").contains("9300")
            && line(&out, "server.port ").contains("(flag --port)"),
        "{out}"
    );
    std::fs::write(home.path().join("config.toml"), "[server]\nprot = 1\n").unwrap();
    let o = run(home.path(), &["config", "validate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("prot"), "{}", stderr(&o));
}

#[test]
fn serving_beyond_loopback_without_auth_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let o = run(home.path(), &["serve", "--host", "0.0.0.0", "--port", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("loopback"), "{}", stderr(&o));
    let o = run(home.path(), &["serve", "--database-url", "mysql://x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not a database URL"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bench_commands_drive_a_real_server() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let o = server.cli(&[
        "bench",
        "ingest",
        "--duration",
        "2s",
        "--connections",
        "2",
        "--batch",
        "10",
        "--max-requests",
        "20",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["events"], 200);
    assert_eq!(v["errors"], 0);
    let o = server.cli(&[
        "bench",
        "mcp",
        "--duration",
        "2s",
        "--clients",
        "2",
        "--max-requests",
        "20",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sessions"], 10);
    assert_eq!(v["errors"], 0);
    let o = server.cli(&[
        "bench",
        "ingest",
        "--url",
        "http://10.1.2.3:8678",
        "--duration",
        "1s",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("loopback"));
}

#[test]
fn bench_seed_loads_a_realistic_dataset() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("sessions.db");
    let o = run(
        home.path(),
        &[
            "bench",
            "seed",
            "--sessions",
            "300",
            "--db-path",
            db.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sessions"], 300);
    assert_eq!(v["rejected"], 0, "{v}");
    assert!(v["events_accepted"].as_u64().unwrap() >= 300, "{v}");
    let server = Server::start(home.path());
    let o = server.cli(&["list-sessions", "--format", "json", "--limit", "1000"]);
    let sessions: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sessions.len(), 300);
    let components: std::collections::HashSet<&str> = sessions
        .iter()
        .map(|s| s["component"].as_str().unwrap())
        .collect();
    assert!(
        components.len() >= 10,
        "a spread of components: {components:?}"
    );
    assert!(
        sessions.iter().any(|s| s["status"] == "ended")
            && sessions.iter().any(|s| s["status"] == "active")
    );
}

#[test]
fn pool_size_and_retention_come_from_the_config_file_too() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "[server]\ndb_pool_size = 12\nretention_days = 90\n",
    )
    .unwrap();
    let out = stdout(&run(home.path(), &["config", "show"]));
    assert!(
        out.lines()
            .any(|l| l.starts_with("server.db_pool_size ") && l.contains(" 12 ")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("server.retention_days ") && l.contains(" 90 ")),
        "{out}"
    );
    let out = stdout(&run(
        home.path(),
        &["config", "show", "--retention-days", "7"],
    ));
    assert!(
        out.lines().any(|l| l.starts_with("server.retention_days ")
            && l.contains(" 7 ")
            && l.contains("(flag --retention-days)")),
        "flag wins: {out}"
    );
    std::fs::write(
        home.path().join("config.toml"),
        "[server]\nretention_days = 0\n",
    )
    .unwrap();
    let o = run(home.path(), &["config", "validate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("retention_days"), "{}", stderr(&o));
}
