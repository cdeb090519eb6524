//! The original's payloads through REST: every fixture behaves as its README and MANIFEST say.

use serde_json::Value;

use crate::common::{TestServer, fixture, fixtures_dir, manifest};

fn valid_names() -> Vec<String> {
    manifest()["valid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Fields an invalid fixture's error may name (`a|b` lists either).
fn invalid_cases() -> Vec<(String, Vec<String>)> {
    manifest()["invalid"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().unwrap().split('|').map(str::to_string).collect(),
            )
        })
        .collect()
}

#[test]
fn the_committed_fixtures_match_the_shared_contract() {
    // The fixtures are copied into the repository so a clone is self-contained; when the
    // shared contract is beside the checkout, the copies must not drift from it. The README
    // is ours: it points at the repository's docs instead of the shared spec.
    let shared = fixtures_dir().join("../../../shared/fixtures/upstream");
    if !shared.exists() {
        return;
    }
    for entry in std::fs::read_dir(&shared).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "README.md" {
            continue;
        }
        let ours = fixtures_dir().join(entry.file_name());
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            std::fs::read(&ours).unwrap_or_default(),
            "{} differs from the shared contract",
            entry.file_name().to_string_lossy()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_is_accepted_or_rejected_as_the_manifest_says() {
    let server = TestServer::start().await;
    // Invalid first: they reuse the oneiric sample's event id, and validation comes before
    // deduplication, so they must be rejected for their own field whatever is stored.
    for (name, fields) in invalid_cases() {
        let results = server.post_events(&[fixture(&name)]).await;
        let r = &results[0];
        assert_eq!(r["status"], "rejected", "{name}: {r}");
        let error = r["error"].as_str().unwrap();
        assert!(
            fields.iter().any(|f| error.starts_with(&format!("{f}:"))),
            "{name}: error '{error}' should name one of {fields:?}"
        );
    }
    let expected = manifest()["expected_session_ids"].clone();
    // Starts before ends, so every end finds its start.
    let mut names = valid_names();
    names.sort_by_key(|n| !n.starts_with("start-"));
    for name in &names {
        let results = server.post_events(&[fixture(name)]).await;
        let r = &results[0];
        assert_eq!(r["status"], "accepted", "{name}: {r}");
        if let Some(id) = expected.get(name) {
            assert_eq!(&r["session_id"], id, "{name}");
        }
    }
    // And again: all duplicates now, and the invalid ones still rejected for their field.
    for name in &names {
        let r = &server.post_events(&[fixture(name)]).await[0];
        assert_eq!(r["status"], "duplicate", "{name}: {r}");
    }
    for (name, _) in invalid_cases() {
        let r = &server.post_events(&[fixture(&name)]).await[0];
        assert_eq!(r["status"], "rejected", "{name} after the valid ones: {r}");
    }
    // The README's durations.
    for (id, seconds) in [
        ("oneiric-20260206-123456-440000", 300.0),
        ("mahavishnu-20260206-220458-0f9e8d", 302.876545),
    ] {
        let (status, s) = server.get(&format!("/v1/sessions/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(s["status"], "ended", "{id}");
        assert_eq!(s["duration_seconds"].as_f64().unwrap(), seconds, "{id}");
    }
    // Every start is listed exactly once.
    let (_, page) = server.get("/v1/sessions?type=admin_shell&limit=100").await;
    let ids: Vec<&str> = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = expected
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut got = ids.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_fixtures_in_one_batch_answer_in_order() {
    let server = TestServer::start().await;
    let mut names: Vec<String> = valid_names();
    names.extend(invalid_cases().into_iter().map(|(n, _)| n));
    names.sort_by_key(|n| !n.starts_with("start-"));
    let events: Vec<Value> = names.iter().map(|n| fixture(n)).collect();
    let results = server.post_events(&events).await;
    assert_eq!(results.len(), events.len());
    for (name, r) in names.iter().zip(&results) {
        let want = if name.starts_with("bad-") {
            "rejected"
        } else {
            "accepted"
        };
        assert_eq!(r["status"], want, "{name}: {r}");
    }
    server.stop().await;
}
