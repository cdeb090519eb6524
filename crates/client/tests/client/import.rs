//! `import`'s batching and counting, through the library with a `post` that answers as the
//! server's ingest does.

use serde_json::{Value, json};
use session_buddy_client::import::{ImportError, ImportFailure, import_ndjson};

/// Answers every event of a batch: `duplicate` for ids starting with "dup", `rejected` for
/// "bad", `accepted` otherwise.
fn ingest(body: &Value) -> Value {
    let results: Vec<Value> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let id = e["event_id"].as_str().unwrap_or("?");
            let status = if id.starts_with("dup") {
                "duplicate"
            } else if id.starts_with("bad") {
                "rejected"
            } else {
                "accepted"
            };
            json!({"event_id": id, "status": status, "error": "event_id: refused"})
        })
        .collect();
    json!({ "results": results })
}

#[test]
fn events_go_in_batches_and_every_answer_is_counted() {
    let lines = [
        r#"{"event_id": "a1"}"#,
        "",
        r#"{"event_id": "dup1"}"#,
        "not json",
        r#"{"event_id": "bad1"}"#,
        r#"{"event_id": "a2"}"#,
        r#"{"event_id": "a3"}"#,
    ]
    .join("\n");
    let mut batches = Vec::new();
    let tally = import_ndjson(lines.as_bytes(), "export.ndjson", 2, |body| {
        batches.push(body.as_array().unwrap().len());
        Ok::<_, String>(ingest(body))
    })
    .unwrap();
    assert_eq!(batches, [2, 2, 1], "blank and non-JSON lines are not sent");
    assert_eq!((tally.accepted, tally.duplicate, tally.rejected), (3, 1, 2));
    assert_eq!(tally.errors.len(), 2);
    assert!(
        tally.errors[0].starts_with("line 4: not JSON"),
        "{:?}",
        tally.errors
    );
    assert_eq!(tally.errors[1], "bad1: event_id: refused");
}

#[test]
fn only_the_first_ten_rejections_are_kept() {
    let lines: Vec<String> = (0..25)
        .map(|i| format!(r#"{{"event_id": "bad{i}"}}"#))
        .collect();
    let tally = import_ndjson(lines.join("\n").as_bytes(), "x", 1000, |body| {
        Ok::<_, String>(ingest(body))
    })
    .unwrap();
    assert_eq!(tally.rejected, 25);
    assert_eq!(tally.errors.len(), 10);
}

#[test]
fn a_failed_post_and_an_answer_without_results_stop_the_import() {
    let line = r#"{"event_id": "a1"}"#;
    match import_ndjson(line.as_bytes(), "x", 10, |_| Err("server unreachable")) {
        Err(ImportError::Post(e)) => assert_eq!(e, "server unreachable"),
        other => panic!("{other:?}"),
    }
    match import_ndjson(line.as_bytes(), "x", 10, |_| {
        Ok::<_, String>(json!({"ok": true}))
    }) {
        Err(ImportError::Import(e @ ImportFailure::Answer(_))) => assert_eq!(
            e.to_string(),
            r#"the server's answer has no results: {"ok":true}"#
        ),
        other => panic!("{other:?}"),
    }
}
