//! `track` names the component after what runs (`python3 -m mahavishnu.shell` is
//! `mahavishnu`) and claims no runtime it does not know; the Rust shells say theirs.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Server, bin, stderr};

/// Polls the server until `n` sessions have ended (delivery is asynchronous).
fn ended_sessions(url: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: Value = ureq::get(format!("{url}/v1/sessions"))
            .query("status", "ended")
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        let sessions = v["sessions"].as_array().unwrap().clone();
        if sessions.len() >= n {
            return sessions;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} ended sessions: {sessions:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn track_names_python_modules_and_claims_no_runtime() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    // A Python package `mahavishnu` with a `shell` module, as the README's example runs it.
    let pkg = home.path().join("py").join("mahavishnu");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("__init__.py"), "").unwrap();
    std::fs::write(
        pkg.join("shell.py"),
        "import sys\nprint('mahavishnu shell', sys.argv[1:])\nsys.exit(3)\n",
    )
    .unwrap();
    let track = |args: &[&str]| {
        bin()
            .env("SESSION_BUDDY_HOME", home.path())
            .env("SESSION_BUDDY_URL", &server.url)
            .env("PYTHONPATH", home.path().join("py"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = track(&[
        "track",
        "--",
        "python3",
        "-u",
        "-m",
        "mahavishnu.shell",
        "-c",
        "ps",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "mahavishnu shell ['-c', 'ps']\n"
    );
    let o = track(&["track", "--", "python3", "-c", "print('plain')"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = track(&["shell", "oneiric", "-c", "show_layers"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let all = ended_sessions(&server.url, 3);
    let by = |component: &str| {
        all.iter()
            .find(|s| s["component"] == component)
            .unwrap_or_else(|| panic!("no {component} session in {all:#?}"))
    };
    let module = by("mahavishnu");
    assert_eq!(module["shell_type"], "python3", "{module}");
    assert_eq!(module["exit_code"], 3, "{module}");
    assert_eq!(
        module["runtime_version"],
        Value::Null,
        "the tracker does not know the program's runtime: {module}"
    );
    let plain = by("python3");
    assert_eq!(plain["runtime_version"], Value::Null, "{plain}");
    // A Rust shell still says what it runs on.
    let rust = by("oneiric");
    assert!(
        rust["runtime_version"]
            .as_str()
            .is_some_and(|r| r.starts_with("rust 1.")),
        "{rust}"
    );
}
