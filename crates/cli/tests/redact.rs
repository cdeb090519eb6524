//! `redact [--apply]` over data older rules stored; `list-events` order and unknown ids.

use std::path::Path;

use serde_json::{Value, json};
use session_buddy_events::{Event, parse_event};
use session_buddy_store::Store as _;
use session_buddy_store_sqlite::{SqliteStore, SyncMode};

use crate::common::{Server, session_id, start_event, stderr, stdout};

const TYPED: &str = "deploy --db postgres://app:hunter2@db/app GITHUB_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345";
const REDACTED: &str = "deploy --db postgres://app:[REDACTED]@db/app GITHUB_TOKEN=[REDACTED]";

fn command(session: &str, seq: u64, ts: &str, args: &str) -> Value {
    json!({
        "event_version": "1.1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "command",
        "session_id": session,
        "timestamp": ts,
        "seq": seq,
        "command": "deploy",
        "args": args,
        "success": true
    })
}

/// Writes `events` into `$home/sessions.db` as they are, bypassing validation (and so
/// redaction): what a server with older rules left in its database.
fn store_as_typed(home: &Path, events: Vec<Event>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&home.join("sessions.db"), SyncMode::Normal).unwrap();
        store.ingest(events, chrono::Utc::now()).await.unwrap();
        store.close().await;
    });
}

fn stored_args(server: &Server, session: &str) -> Vec<String> {
    let o = server.cli(&[
        "list-events",
        "--session-id",
        session,
        "--type",
        "command",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let events: Value = serde_json::from_str(&stdout(&o)).unwrap();
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["args"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn redact_counts_then_rewrites_what_older_rules_stored() {
    let home = tempfile::tempdir().unwrap();
    let start = start_event("crackerjack", "2026-03-03T10:00:00Z");
    let id = session_id(&start);
    let typed = command(&id, 1, "2026-03-03T10:00:01Z", TYPED);
    let clean = command(&id, 2, "2026-03-03T10:00:02Z", "--all");
    let mut events: Vec<Event> = [&start, &clean]
        .iter()
        .map(|v| parse_event(v).unwrap())
        .collect();
    let Ok(Event::Command(mut raw)) = parse_event(&typed) else {
        panic!("not a command")
    };
    raw.args = Some(TYPED.to_string());
    events.push(Event::Command(raw));
    store_as_typed(home.path(), events);

    let server = Server::start(home.path());
    let o = server.cli(&["redact"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "1 event would change (of 2 command events stored); run `session-buddy redact --apply` to rewrite them\n"
    );
    assert_eq!(stored_args(&server, &id), [TYPED, "--all"]);

    let o = server.cli(&["redact", "--apply"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "redacted 1 event (of 2 command events stored)\n"
    );
    assert_eq!(stored_args(&server, &id), [REDACTED, "--all"]);

    let o = server.cli(&["redact", "--apply", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        report,
        json!({"examined": 2, "changed": 0, "applied": true})
    );

    // The original re-sent (a buffer replayed, an import): a duplicate, nothing added.
    let results = server.post(&[typed]);
    assert_eq!(results[0]["status"], "duplicate", "{results:?}");
    assert_eq!(stored_args(&server, &id), [REDACTED, "--all"]);
}

#[test]
fn list_events_follow_their_time_and_an_unknown_session_exits_4() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let start = start_event("crackerjack", "2026-03-03T10:00:00Z");
    let id = session_id(&start);
    // Delivered late: the first command arrives after the second.
    let second = command(&id, 2, "2026-03-03T10:05:00Z", "--b");
    let first = command(&id, 1, "2026-03-03T10:01:00Z", "--a");
    for e in [&start, &second, &first] {
        assert_eq!(
            server.post(std::slice::from_ref(e))[0]["status"],
            "accepted"
        );
    }
    let o = server.cli(&["list-events", "--utc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let position = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in {out}"))
    };
    assert!(
        position("10:05:00") < position("10:01:00") && position("10:01:00") < position("10:00:00"),
        "newest time first:\n{out}"
    );

    let unknown = "crackerjack-20260303-100000-abcdef";
    let o = server.cli(&["list-events", "--session-id", unknown]);
    assert_eq!(o.status.code(), Some(4), "{}", stdout(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "error: no session '{unknown}' (its start may not have arrived yet); see `session-buddy list-sessions`\n"
        )
    );
    let o = server.cli(&["show-session", unknown]);
    assert_eq!(o.status.code(), Some(4));
    // A known session with nothing of that type: an empty list, exit 0.
    let o = server.cli(&["list-events", "--session-id", &id, "--type", "heartbeat"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "No events found.\n");
}
