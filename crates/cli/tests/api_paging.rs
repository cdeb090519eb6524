//! The shells' `Api::sessions` follows the server's cursors past one page (`MAX_PAGE`), against
//! a real `serve` holding more sessions than a page.

use std::collections::HashSet;

use serde_json::Value;
use session_buddy_shell::Api;
use session_buddy_store::MAX_PAGE;

use crate::common::{Server, session_id, start_event};

#[test]
fn api_sessions_follows_cursors_past_one_page() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let n = MAX_PAGE + 150;
    let starts: Vec<Value> = (0..n)
        .map(|i| {
            let ts = format!(
                "2026-04-0{}T{:02}:{:02}:00Z",
                1 + i / 1440,
                i / 60 % 24,
                i % 60
            );
            start_event("pager", &ts)
        })
        .collect();
    for batch in starts.chunks(300) {
        let results = server.post(batch);
        assert!(results.iter().all(|r| r["status"] == "accepted"));
    }
    // One session of another component, which the filter leaves out.
    server.post(&[start_event("other", "2026-04-01T00:00:30Z")]);
    let sent: HashSet<String> = starts.iter().map(session_id).collect();

    let api = Api::new(&server.url, None, None);
    let all = api
        .sessions(&[("component", "pager".to_string())], usize::MAX)
        .unwrap();
    let ids: Vec<String> = all
        .iter()
        .map(|s| s["session_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), n, "every session once");
    assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), sent);
    let started: Vec<&str> = all
        .iter()
        .map(|s| s["started_at"].as_str().unwrap())
        .collect();
    assert!(
        started.windows(2).all(|w| w[0] > w[1]),
        "newest first across the page boundary"
    );

    // `max` stops inside the second page, at the same sessions.
    let some = api
        .sessions(&[("component", "pager".to_string())], MAX_PAGE + 10)
        .unwrap();
    let some: Vec<&str> = some
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        some,
        ids[..MAX_PAGE + 10]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
}
