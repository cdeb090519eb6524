//! `track --record`: the recording arrives through the durable path, exports as asciicast that
//! asciinema reads, every read is audited, and `erase` leaves only its audit entry.

use std::time::{Duration, Instant};

use serde_json::Value;
use session_buddy_events::recording::{FrameKind, parse_asciicast};

use crate::common::{Server, bin};

fn get(url: &str) -> (u16, String) {
    let mut r = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

#[test]
fn a_recorded_session_plays_back_exports_and_erases() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let run = |args: &[&str]| {
        bin()
            .env("SESSION_BUDDY_HOME", home.path())
            .env("SESSION_BUDDY_URL", &server.url)
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&[
        "track",
        "--record",
        "--component",
        "rec",
        "--",
        "bash",
        "-c",
        "echo one; sleep 0.5; echo two",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "one\ntwo\n");
    // Delivery is asynchronous: wait for the session and its whole recording.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (id, cast) = loop {
        let (_, page) = get(&format!("{}/v1/sessions?component=rec", server.url));
        let page: Value = serde_json::from_str(&page).unwrap();
        if let Some(s) = page["sessions"].as_array().and_then(|a| a.first())
            && s["has_recording"] == true
        {
            let id = s["session_id"].as_str().unwrap().to_string();
            let (status, cast) = get(&format!("{}/v1/sessions/{id}/recording", server.url));
            if status == 200 && cast.contains("two") {
                break (id, cast);
            }
        }
        assert!(Instant::now() < deadline, "no recording arrived");
        std::thread::sleep(Duration::from_millis(200));
    };
    let (_, frames) = parse_asciicast(&cast).unwrap();
    let at = |text: &str| {
        frames
            .iter()
            .find(|f| f.kind() == FrameKind::Output && f.data().contains(text))
            .map(|f| f.offset())
            .unwrap_or_else(|| panic!("no frame with {text}: {cast}"))
    };
    assert!(at("two") - at("one") >= 0.4, "{cast}");

    let file = home.path().join("r.cast");
    let o = run(&[
        "recording",
        "export",
        &id,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), cast);
    if let Ok(cat) = std::process::Command::new("asciinema")
        .arg("cat")
        .arg(&file)
        .output()
    {
        let text = String::from_utf8_lossy(&cat.stdout);
        assert!(
            cat.status.success() && text.contains("one") && text.contains("two"),
            "{cat:?}"
        );
    }

    let (_, audit) = get(&format!("{}/v1/audit?session_id={id}", server.url));
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["recording.export", "recording.export"], "{audit}");

    let o = run(&["erase", &id, "--yes"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(get(&format!("{}/v1/sessions/{id}", server.url)).0, 404);
    assert_eq!(
        get(&format!("{}/v1/sessions/{id}/recording", server.url)).0,
        404
    );
    assert_eq!(
        get(&format!("{}/v1/events?session_id={id}", server.url)).0,
        404,
        "the erased session's events are gone"
    );
    let (_, audit) = get(&format!("{}/v1/audit?session_id={id}", server.url));
    assert!(audit.contains("session.erase"), "{audit}");
}
