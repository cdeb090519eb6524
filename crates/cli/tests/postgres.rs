//! `serve --database-url postgres://…` as real processes: two servers on one database, one
//! killed with SIGKILL during ingest; every acknowledged event is stored, and what the killed
//! server left unanswered is taken by the other one exactly once.
//!
//! Needs `TEST_DATABASE_URL` (`./scripts/test` starts a throwaway PostgreSQL); skipped with a
//! notice without it, except under `CI`, where it fails.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::common::{Server, session_id, start_event};

pub(crate) fn test_database_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("TEST_DATABASE_URL is not set but CI is: the PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!(
                "skipping a PostgreSQL test: TEST_DATABASE_URL is not set (./scripts/test sets it)"
            );
            None
        }
    }
}

/// A new empty database on the test server; its URL.
pub(crate) fn fresh_database(admin: &str) -> String {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        drop(client);
        let _ = task.await;
    });
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

fn start_pg(home: &std::path::Path, db: &str) -> Server {
    Server::start_with(home, &["--database-url", db, "--db-pool-size", "4"])
}

fn stored(url: &str) -> HashSet<String> {
    crate::common::stored_session_ids(url).into_iter().collect()
}

#[test]
fn kill_9_of_one_of_two_postgres_servers_loses_no_acknowledged_event() {
    let Some(admin) = test_database_url() else {
        return;
    };
    let db = fresh_database(&admin);
    let home = tempfile::tempdir().unwrap();
    let mut a = start_pg(home.path(), &db);
    let b = start_pg(home.path(), &db);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    // Batches a server took but never answered: sent again to the survivor afterwards.
    let unanswered: Arc<Mutex<Vec<Vec<Value>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for w in 0..4 {
        let url = if w % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        let (acked, unanswered, stop) = (acked.clone(), unanswered.clone(), stop.clone());
        senders.push(std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) && n < 200 {
                let batch: Vec<Value> = (0..50)
                    .map(|i| {
                        start_event(
                            &format!("pg{w}"),
                            &format!("2026-07-01T{:02}:{:02}:{:02}Z", n / 60 % 24, n % 60, i),
                        )
                    })
                    .collect();
                n += 1;
                let answer = ureq::post(format!("{url}/v1/events"))
                    .send_json(&batch)
                    .ok()
                    .and_then(|mut r| r.body_mut().read_json::<Value>().ok());
                let Some(v) = answer else {
                    unanswered.lock().unwrap().push(batch);
                    break;
                };
                let results = v["results"].as_array().unwrap();
                assert!(results.iter().all(|r| r["status"] == "accepted"), "{v}");
                acked.lock().unwrap().extend(batch.iter().map(session_id));
            }
        }));
    }
    while acked.lock().unwrap().len() < 1500 {
        std::thread::sleep(Duration::from_millis(5));
    }
    a.kill9();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }

    let acked = acked.lock().unwrap().clone();
    let stored_ids = stored(&b.url);
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !stored_ids.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged sessions lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(3)]
    );

    // The client retries what the killed server left unanswered on the survivor: each event is
    // stored once (accepted if the killed server had not committed it, else duplicate).
    let retried = unanswered.lock().unwrap().clone();
    let mut expected = stored_ids.len();
    for batch in &retried {
        let mut r = ureq::post(format!("{}/v1/events", b.url))
            .send_json(batch)
            .unwrap();
        let v: Value = r.body_mut().read_json().unwrap();
        for r in v["results"].as_array().unwrap() {
            match r["status"].as_str() {
                Some("accepted") => expected += 1,
                Some("duplicate") => {}
                other => panic!("retried event {other:?}: {r}"),
            }
        }
    }
    assert_eq!(stored(&b.url).len(), expected);
}

#[test]
fn export_from_postgres_imports_into_sqlite_once() {
    let Some(admin) = test_database_url() else {
        return;
    };
    let db = fresh_database(&admin);
    let home = tempfile::tempdir().unwrap();
    let pg = start_pg(home.path(), &db);
    let starts: Vec<Value> = (0..5)
        .map(|i| start_event("moving", &format!("2026-07-02T10:00:0{i}Z")))
        .collect();
    let mut events = starts.clone();
    events.push(serde_json::json!({
        "event_type": "session_end",
        "session_id": session_id(&starts[0]),
        "timestamp": "2026-07-02T10:05:00Z",
        "metadata": {}
    }));
    assert!(pg.post(&events).iter().all(|r| r["status"] == "accepted"));

    let file = home.path().join("export.ndjson");
    let out = pg.cli(&[
        "export",
        "--database-url",
        &db,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), 6, "{lines}");

    let other = tempfile::tempdir().unwrap();
    let sqlite = Server::start(other.path());
    let out = sqlite.cli(&["import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    assert_eq!(
        crate::common::stdout(&out).trim(),
        "accepted 6, duplicate 0, rejected 0"
    );
    let out = sqlite.cli(&["import", file.to_str().unwrap()]);
    assert_eq!(
        crate::common::stdout(&out).trim(),
        "accepted 0, duplicate 6, rejected 0"
    );
    let s: Value = ureq::get(format!(
        "{}/v1/sessions/{}",
        sqlite.url,
        session_id(&starts[0])
    ))
    .call()
    .unwrap()
    .body_mut()
    .read_json()
    .unwrap();
    assert_eq!(s["status"], "ended", "{s}");
    assert_eq!(s["duration_seconds"], 300.0, "{s}");
    let csv = pg.cli(&["export", "--database-url", &db, "--format", "csv"]);
    assert_eq!(crate::common::stdout(&csv).lines().count(), 6);
}
