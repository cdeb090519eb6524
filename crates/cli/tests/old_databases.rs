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

/// Fields the session record gained after the recording: removed from `answer` (each
/// checked: a session with commands has its `last_command` from the migration's backfill).
/// Returns how many backfilled values were seen.
fn without_added_fields(answer: &mut Value) -> usize {
    let mut n = 0;
    match answer {
        Value::Object(map) => {
            if map.contains_key("session_id") && map.contains_key("command_count") {
                let last = map
                    .remove("last_command")
                    .expect("a record has last_command");
                if map["command_count"].as_u64().unwrap_or(0) > 0 {
                    assert!(last.is_string(), "no last_command backfilled: {map:?}");
                    n += 1;
                } else {
                    assert!(last.is_null(), "{map:?}");
                }
            }
            for v in map.values_mut() {
                n += without_added_fields(v);
            }
        }
        Value::Array(items) => {
            for v in items {
                n += without_added_fields(v);
            }
        }
        _ => {}
    }
    n
}

/// Every recorded query answers as recorded; the revoked token is refused.
fn answers_as_recorded(server: &Server, recorded: &Path) {
    let tokens: Value =
        serde_json::from_str(&std::fs::read_to_string(recorded.join("tokens.json")).unwrap())
            .unwrap();
    let read = tokens["read"].as_str().unwrap();
    let text = std::fs::read_to_string(recorded.join("answers.ndjson")).unwrap();
    let (mut n, mut backfilled) = (0, 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).unwrap();
        let query = entry["query"].as_str().unwrap();
        let mut answer = get(&server.url, query, read).unwrap_or_else(|e| panic!("{query}: {e}"));
        backfilled += without_added_fields(&mut answer);
        assert_eq!(answer, entry["answer"], "{query} answers differently");
        n += 1;
    }
    assert!(
        n >= 10,
        "only {n} recorded answers in {}",
        recorded.display()
    );
    assert!(
        backfilled > 0,
        "no session record of the old database got its last_command from its events"
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
}
