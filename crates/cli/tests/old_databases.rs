//! Databases made by an earlier release keep working: `fixtures/db/` holds a SQLite file and a
//! PostgreSQL dump that `scripts/make-db-fixtures` made with that release, and the answers its
//! API gave. Today's `serve` opens them (running its migrations) and must give every recorded
//! answer again, and still refuse the token that was revoked.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::Server;
use crate::postgres::{fresh_database, test_database_url};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/db")
}

fn secret() -> String {
    std::fs::read_to_string(fixtures().join("secret"))
        .unwrap()
        .trim()
        .to_string()
}

fn get(url: &str, query: &str, token: &str) -> Result<Value, ureq::Error> {
    ureq::get(format!("{url}{query}"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .map(|mut r| r.body_mut().read_json().unwrap())
}

/// The migration indexed the old rows for the text search (`q`): each session is found by its
/// host and by its id's tail in upper case, and by each of its commands' names.
fn searchable(server: &Server, recorded: &Path) {
    let tokens: Value =
        serde_json::from_str(&std::fs::read_to_string(recorded.join("tokens.json")).unwrap())
            .unwrap();
    let read = tokens["read"].as_str().unwrap();
    let ids_for = |q: &str| -> Vec<String> {
        let page = get(&server.url, &format!("/v1/sessions?limit=1000&q={q}"), read)
            .unwrap_or_else(|e| panic!("q={q}: {e}"));
        page["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["session_id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = get(&server.url, "/v1/sessions?limit=1000", read).unwrap();
    let sessions = all["sessions"].as_array().unwrap();
    assert!(!sessions.is_empty());
    let mut commands = 0;
    for s in sessions {
        let id = s["session_id"].as_str().unwrap();
        let host = s["hostname"].as_str().unwrap();
        assert!(ids_for(host).iter().any(|i| i == id), "{id} by host {host}");
        let tail = id[id.len() - 6..].to_uppercase();
        assert!(ids_for(&tail).contains(&id.to_string()), "{id} by {tail}");
        let events = get(&server.url, &format!("/v1/sessions/{id}/events"), read).unwrap();
        for e in events["events"].as_array().into_iter().flatten() {
            if let Some(name) = e["payload"]["command"].as_str() {
                assert!(
                    ids_for(name).iter().any(|i| i == id),
                    "{id} by command {name}"
                );
                commands += 1;
            }
        }
    }
    assert!(
        commands > 0,
        "no session of {} has a command",
        recorded.display()
    );
}

/// Fields of the session record added since the fixtures were made: their recorded answers
/// lack them, and [`backfilled`] checks what the migrations put there.
const ADDED_SINCE: &[&str] = &["last_command"];

/// `answer` without the [`ADDED_SINCE`] fields of the session records it holds.
fn as_recorded_then(mut answer: Value) -> Value {
    fn strip(v: &mut Value) {
        if let Some(o) = v.as_object_mut()
            && o.contains_key("session_id")
        {
            for f in ADDED_SINCE {
                o.remove(*f);
            }
        }
    }
    strip(&mut answer);
    if let Some(list) = answer.get_mut("sessions").and_then(Value::as_array_mut) {
        list.iter_mut().for_each(strip);
    }
    answer
}

/// The migration filled `last_command` from the stored events: each old session's is the name
/// of its latest command (null without one).
fn backfilled(server: &Server, recorded: &Path) {
    let tokens: Value =
        serde_json::from_str(&std::fs::read_to_string(recorded.join("tokens.json")).unwrap())
            .unwrap();
    let read = tokens["read"].as_str().unwrap();
    let page = get(&server.url, "/v1/sessions?limit=1000", read).unwrap();
    let sessions = page["sessions"].as_array().unwrap();
    let mut with_command = 0;
    for s in sessions {
        let id = s["session_id"].as_str().unwrap();
        let events = get(&server.url, &format!("/v1/sessions/{id}/events"), read).unwrap();
        let latest = events["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["event_type"] == "command")
            .filter_map(|e| e["payload"]["command"].as_str())
            .next_back()
            .map(str::to_string);
        with_command += usize::from(latest.is_some());
        assert_eq!(
            s["last_command"].as_str().map(str::to_string),
            latest,
            "{id}'s last_command"
        );
    }
    assert!(with_command > 0, "no old session has a command");
}

/// Every recorded query answers as recorded; the revoked token is refused.
fn answers_as_recorded(server: &Server, recorded: &Path) {
    let tokens: Value =
        serde_json::from_str(&std::fs::read_to_string(recorded.join("tokens.json")).unwrap())
            .unwrap();
    let read = tokens["read"].as_str().unwrap();
    let text = std::fs::read_to_string(recorded.join("answers.ndjson")).unwrap();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).unwrap();
        let query = entry["query"].as_str().unwrap();
        let answer = get(&server.url, query, read).unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(
            as_recorded_then(answer),
            entry["answer"],
            "{query} answers differently"
        );
        n += 1;
    }
    assert!(
        n >= 10,
        "only {n} recorded answers in {}",
        recorded.display()
    );
    let revoked = tokens["revoked"].as_str().unwrap();
    match get(&server.url, "/v1/sessions", revoked) {
        Err(ureq::Error::StatusCode(401)) => {}
        other => panic!("the revoked token was not refused: {other:?}"),
    }
}

#[test]
fn a_sqlite_database_of_an_earlier_release_opens_migrates_and_answers_the_same() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("sessions.db");
    std::fs::copy(fixtures().join("sqlite/sessions.db"), &db).unwrap();
    let server = Server::start_env(
        home.path(),
        &[("SESSION_BUDDY_SECRET", &secret())],
        &["--db-path", db.to_str().unwrap()],
    );
    answers_as_recorded(&server, &fixtures().join("sqlite"));
    backfilled(&server, &fixtures().join("sqlite"));
    searchable(&server, &fixtures().join("sqlite"));
}

#[test]
fn a_postgres_database_of_an_earlier_release_opens_migrates_and_answers_the_same() {
    let Some(admin) = test_database_url() else {
        return;
    };
    let url = fresh_database(&admin);
    let dump = std::fs::read_to_string(fixtures().join("postgres/dump.sql")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(connection);
        client.batch_execute(&dump).await.unwrap();
        drop(client);
        let _ = task.await;
    });
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_env(
        home.path(),
        &[("SESSION_BUDDY_SECRET", &secret())],
        &["--database-url", &url],
    );
    answers_as_recorded(&server, &fixtures().join("postgres"));
    backfilled(&server, &fixtures().join("postgres"));
    searchable(&server, &fixtures().join("postgres"));
}
