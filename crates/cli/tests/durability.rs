//! Acknowledged = durable: kill -9 of the server loses no acknowledged event; SIGTERM drains.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::common::{Server, session_id, start_event};

fn all_session_ids(server: &Server) -> Vec<String> {
    crate::common::stored_session_ids(&server.url)
}

#[test]
fn kill_9_right_after_acknowledged_batches_loses_none() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Server::start(home.path());
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for w in 0..4 {
        let (url, acked, stop) = (server.url.clone(), acked.clone(), stop.clone());
        senders.push(std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 400 {
                let batch: Vec<Value> = (0..50)
                    .map(|i| {
                        start_event(
                            &format!("w{w}"),
                            &format!("2026-07-01T{:02}:{:02}:{:02}Z", n / 60 % 24, n % 60, i),
                        )
                    })
                    .collect();
                n += 1;
                // A request cut by the kill is not acknowledged; only 200s with every event
                // accepted count.
                let Ok(mut r) = ureq::post(format!("{url}/v1/events")).send_json(&batch) else {
                    break;
                };
                let Ok(v) = r.body_mut().read_json::<Value>() else {
                    break;
                };
                let results = v["results"].as_array().unwrap();
                assert!(results.iter().all(|r| r["status"] == "accepted"), "{v}");
                acked.lock().unwrap().extend(batch.iter().map(session_id));
            }
        }));
    }
    // Kill while batches are in flight, once a good number are acknowledged.
    while acked.lock().unwrap().len() < 2000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let server = Server::start(home.path());
    let stored: std::collections::HashSet<String> = all_session_ids(&server).into_iter().collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged sessions lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        missing.first()
    );
}

#[test]
fn sigterm_stops_cleanly_and_keeps_everything() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Server::start(home.path());
    let batch: Vec<Value> = (0..100)
        .map(|i| {
            start_event(
                "oneiric",
                &format!("2026-07-02T10:00:{:02}.{i:03}Z", i % 60),
            )
        })
        .collect();
    server.post(&batch);
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let server = Server::start(home.path());
    assert_eq!(all_session_ids(&server).len(), 100);
}
