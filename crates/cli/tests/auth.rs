//! `token create|verify|revoke`, the serve refusals, and a secured server end to end.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::common::{bin, start_event, stderr, stdout};

const SECRET: &str = "Vq3nZ8rT1wY6uI0oP4aS7dF2gH5jK9lX-cli";

fn token_cmd(home: &Path, secret: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut c = bin();
    c.env("SESSION_BUDDY_HOME", home).arg("token").args(args);
    if let Some(s) = secret {
        c.env("SESSION_BUDDY_SECRET", s);
    }
    c.output().unwrap()
}

fn create(home: &Path, args: &[&str]) -> String {
    let mut all = vec!["create"];
    all.extend_from_slice(args);
    let o = token_cmd(home, Some(SECRET), &all);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "only the token on stdout: {out}");
    out.trim().to_string()
}

#[test]
fn token_create_prints_a_token_that_verify_explains() {
    let home = tempfile::tempdir().unwrap();
    let t = create(
        home.path(),
        &[
            "--subject",
            "ci",
            "--scope",
            "emit",
            "--scope",
            "write",
            "--scope",
            "read",
            "--component",
            "crackerjack",
            "--ttl",
            "2h",
        ],
    );
    assert_eq!(t.split('.').count(), 3, "{t}");
    let o = token_cmd(home.path(), Some(SECRET), &["verify", &t]);
    assert!(o.status.success(), "{}", stderr(&o));
    let claims: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(claims["sub"], "ci");
    assert_eq!(claims["aud"], "session-buddy");
    assert_eq!(claims["scopes"], serde_json::json!(["emit", "read"]));
    assert_eq!(claims["component"], "crackerjack");
    let ttl = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(ttl, 7200);
    assert!(claims["jti"].as_str().unwrap().len() >= 32);

    // Wrong secret, garbage, tampering: exit 1 with the reason.
    let other = "another-secret-which-is-long-enough-1234";
    let o = token_cmd(home.path(), Some(other), &["verify", &t]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("signature"), "{}", stderr(&o));
    // ... unless it is the previous secret during a rotation.
    let o = bin()
        .env("SESSION_BUDDY_HOME", home.path())
        .env("SESSION_BUDDY_SECRET", other)
        .env("SESSION_BUDDY_PREVIOUS_SECRET", SECRET)
        .args(["token", "verify", &t])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = token_cmd(home.path(), Some(SECRET), &["verify", "not-a-token"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("malformed"), "{}", stderr(&o));

    // Secrets that are missing, short or placeholders are refused.
    let o = token_cmd(
        home.path(),
        None,
        &["create", "--subject", "x", "--scope", "read"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("SESSION_BUDDY_SECRET is not set"),
        "{}",
        stderr(&o)
    );
    for (weak, says) in [
        ("short", "too short"),
        ("changemechangemechangemechangeme", "placeholder"),
        ("Secret-Secret-Secret-Secret-Secret", "placeholder"),
    ] {
        let o = token_cmd(
            home.path(),
            Some(weak),
            &["create", "--subject", "x", "--scope", "read"],
        );
        assert_eq!(o.status.code(), Some(1), "{weak}");
        assert!(stderr(&o).contains(says), "{weak}: {}", stderr(&o));
    }
    let o = token_cmd(
        home.path(),
        Some(SECRET),
        &["create", "--subject", "x", "--scope", "root"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a scope"), "{}", stderr(&o));

    // --save writes the token file readable by its owner only.
    let saved = create(
        home.path(),
        &["--subject", "me", "--scope", "read", "--save"],
    );
    let path = home.path().join("token");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), saved);
}

#[test]
fn fastblocks_minted_tokens_verify() {
    let home = tempfile::tempdir().unwrap();
    let o = bin()
        .env("SESSION_BUDDY_HOME", home.path())
        .env("SESSION_BUDDY_SECRET", SECRET)
        .env("SESSION_BUDDY_TRACKING", "off")
        .args([
            "shell",
            "fastblocks",
            "-c",
            "auth mint --subject fb --scope write --component fastblocks",
        ])
        .output()
        .unwrap();
    let out = stdout(&o);
    let t = out
        .split_whitespace()
        .find(|w| w.starts_with("eyJ") && w.split('.').count() == 3)
        .unwrap_or_else(|| panic!("no token in: {out}"));
    let o = token_cmd(home.path(), Some(SECRET), &["verify", t]);
    assert!(o.status.success(), "{}", stderr(&o));
    let claims: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(claims["component"], "fastblocks");
    assert_eq!(claims["scopes"], serde_json::json!(["emit"]));
}

/// `serve` with `env` and `args`; returns the child, its URL and the stderr lines so far.
fn serve(home: &Path, env: &[(&str, &str)], args: &[&str]) -> (Child, String, Vec<String>) {
    let mut c = bin();
    c.env("SESSION_BUDDY_HOME", home).arg("serve").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let url = line
            .split("listening on ")
            .nth(1)
            .map(|r| r.split_whitespace().next().unwrap_or("").to_string());
        lines.push(line);
        if let Some(url) = url {
            // The line after "listening" says how calls are authenticated.
            if let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
                lines.push(l);
            }
            return (child, url, lines);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not start: {lines:?}");
}

#[test]
fn serve_refuses_weak_secrets_and_open_binds_without_one() {
    let home = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = bin();
        c.env("SESSION_BUDDY_HOME", home.path())
            .arg("serve")
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    for (secret, says) in [
        ("short-secret", "too short"),
        ("test-secret-test-secret-test-secret", "placeholder"),
        ("NULLNULLNULLNULLNULLNULLNULLNULLNULL", "placeholder"),
        ("EXAMPLE example EXAMPLE example EXAMPLE", "placeholder"),
    ] {
        let o = run(&[("SESSION_BUDDY_SECRET", secret)], &["--port", "0"]);
        assert_eq!(o.status.code(), Some(1), "{secret}");
        assert!(stderr(&o).contains(says), "{secret}: {}", stderr(&o));
        assert!(stderr(&o).contains("openssl rand"), "{}", stderr(&o));
    }
    let o = run(&[], &["--host", "0.0.0.0", "--port", "0"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("SESSION_BUDDY_SECRET") && e.contains("--allow-unauthenticated"),
        "{e}"
    );
    let o = run(
        &[("SESSION_BUDDY_PREVIOUS_SECRET", SECRET)],
        &["--port", "0"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("SESSION_BUDDY_SECRET is not"),
        "{}",
        stderr(&o)
    );

    // --allow-unauthenticated starts, loudly.
    let (mut child, _, lines) = serve(
        home.path(),
        &[],
        &[
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--allow-unauthenticated",
        ],
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("WARNING") && l.contains("WITHOUT AUTHENTICATION")),
        "{lines:?}"
    );
    // With a secret, any address is fine.
    let (mut child, _, lines) = serve(
        home.path(),
        &[("SESSION_BUDDY_SECRET", SECRET)],
        &["--host", "0.0.0.0", "--port", "0"],
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains("authentication: on")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("WARNING")), "{lines:?}");
}

#[test]
fn a_secured_server_serves_tokens_and_honours_revocations() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("sessions.db");
    let (mut child, url, _) = serve(
        home.path(),
        &[("SESSION_BUDDY_SECRET", SECRET)],
        &["--port", "0"],
    );
    let admin = create(home.path(), &["--subject", "root", "--scope", "admin"]);
    let reader = create(home.path(), &["--subject", "dash", "--scope", "read"]);
    let other = create(home.path(), &["--subject", "dash2", "--scope", "read"]);
    let emitter = create(
        home.path(),
        &[
            "--subject",
            "cj",
            "--scope",
            "emit",
            "--component",
            "crackerjack",
        ],
    );
    let cli = |token: Option<&str>, args: &[&str]| {
        let mut c = bin();
        c.env("SESSION_BUDDY_HOME", home.path())
            .env("SESSION_BUDDY_URL", &url)
            .args(args);
        if let Some(t) = token {
            c.env("SESSION_BUDDY_TOKEN", t);
        }
        c.output().unwrap()
    };
    // The emitter's start goes in; its akosha start does not.
    let post = |token: &str, events: &[Value]| {
        let r = ureq::post(format!("{url}/v1/events"))
            .config()
            .http_status_as_error(false)
            .build()
            .header("authorization", &format!("Bearer {token}"))
            .send_json(events)
            .unwrap();
        r.status().as_u16()
    };
    assert_eq!(
        post(
            &emitter,
            &[start_event("crackerjack", "2026-03-03T10:00:00Z")]
        ),
        200
    );
    assert_eq!(
        post(&emitter, &[start_event("akosha", "2026-03-03T10:00:00Z")]),
        403
    );

    let o = cli(None, &["list-sessions"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("token is required"), "{}", stderr(&o));
    let o = cli(Some(&reader), &["list-sessions", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // Re-redacting stored data needs admin too.
    let o = cli(Some(&reader), &["redact", "--apply"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("'admin' scope"), "{}", stderr(&o));
    let o = cli(Some(&admin), &["redact", "--apply"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("redacted 0 events"),
        "{}",
        stdout(&o)
    );

    // Revoke through the server: needs admin.
    let o = cli(Some(&reader), &["token", "revoke", &reader]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("admin"), "{}", stderr(&o));
    let o = cli(Some(&admin), &["token", "revoke", &reader]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(Some(&reader), &["list-sessions"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("revoked"), "{}", stderr(&o));

    // Revoke straight in the database (by jti): the server picks it up within seconds.
    assert!(cli(Some(&other), &["list-sessions"]).status.success());
    let o = token_cmd(home.path(), Some(SECRET), &["verify", &other]);
    let jti = serde_json::from_str::<Value>(&stdout(&o)).unwrap()["jti"]
        .as_str()
        .unwrap()
        .to_string();
    let o = cli(
        None,
        &["token", "revoke", &jti, "--db-path", db.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut refused = false;
    for _ in 0..40 {
        if cli(Some(&other), &["list-sessions"]).status.code() == Some(1) {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(refused, "the database revocation was not picked up");

    // `token verify --db-path` knows both revocations; without it, only the signature counts.
    let db_arg = db.to_str().unwrap();
    for revoked in [&reader, &other] {
        let o = token_cmd(
            home.path(),
            Some(SECRET),
            &["verify", revoked, "--db-path", db_arg],
        );
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("was revoked"), "{}", stderr(&o));
        assert!(
            token_cmd(home.path(), Some(SECRET), &["verify", revoked])
                .status
                .success()
        );
    }
    let o = token_cmd(
        home.path(),
        Some(SECRET),
        &["verify", &admin, "--db-path", db_arg],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_read_token_created_for_akosha_sees_only_akosha_and_csv_cells_are_not_formulas() {
    let home = tempfile::tempdir().unwrap();
    // Several components for a read token; one only for an emit token; none for admin.
    let o = token_cmd(
        home.path(),
        Some(SECRET),
        &[
            "create",
            "--subject",
            "x",
            "--scope",
            "emit",
            "--component",
            "a",
            "--component",
            "b",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("one component"), "{}", stderr(&o));
    let o = token_cmd(
        home.path(),
        Some(SECRET),
        &[
            "create",
            "--subject",
            "x",
            "--scope",
            "admin",
            "--component",
            "a",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("admin"), "{}", stderr(&o));
    let two = create(
        home.path(),
        &[
            "--subject",
            "dash",
            "--scope",
            "read",
            "--component",
            "oneiric",
            "--component",
            "akosha",
        ],
    );
    let o = token_cmd(home.path(), Some(SECRET), &["verify", &two]);
    assert!(o.status.success(), "{}", stderr(&o));
    let claims: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        claims["read_components"],
        serde_json::json!(["akosha", "oneiric"])
    );
    assert!(claims.get("component").is_none(), "{claims}");
    assert!(
        stderr(&o).contains("reads bound to components akosha, oneiric"),
        "{}",
        stderr(&o)
    );

    let (mut child, url, _) = serve(
        home.path(),
        &[("SESSION_BUDDY_SECRET", SECRET)],
        &["--port", "0"],
    );
    let admin = create(home.path(), &["--subject", "root", "--scope", "admin"]);
    let akosha = create(
        home.path(),
        &[
            "--subject",
            "ak",
            "--scope",
            "read",
            "--component",
            "akosha",
        ],
    );
    let everyone = create(home.path(), &["--subject", "all", "--scope", "read"]);
    let mut hostile = start_event("akosha", "2026-03-03T10:00:00Z");
    hostile["environment"]["cwd"] = serde_json::json!("=cmd()");
    let events = [
        hostile,
        start_event("crackerjack", "2026-03-03T10:00:01Z"),
        start_event("oneiric", "2026-03-03T10:00:02Z"),
    ];
    let r = ureq::post(format!("{url}/v1/events"))
        .header("authorization", &format!("Bearer {admin}"))
        .send_json(events)
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let list = |token: &str, format: &str| {
        let o = bin()
            .env("SESSION_BUDDY_HOME", home.path())
            .env("SESSION_BUDDY_URL", &url)
            .env("SESSION_BUDDY_TOKEN", token)
            .args(["list-sessions", "--format", format])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let components = |token: &str| -> Vec<String> {
        let listed: Value = serde_json::from_str(&list(token, "json")).unwrap();
        let mut c: Vec<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["component"].as_str().unwrap().to_string())
            .collect();
        c.sort();
        c
    };
    assert_eq!(components(&akosha), ["akosha"]);
    assert_eq!(components(&two), ["akosha", "oneiric"]);
    assert_eq!(components(&everyone), ["akosha", "crackerjack", "oneiric"]);
    // The CSV shows the hostile cwd as text, never as a formula.
    let csv = list(&akosha, "csv");
    assert!(csv.contains(",'=cmd(),"), "{csv}");
    assert!(!csv.contains(",=cmd()"), "{csv}");
    let _ = child.kill();
    let _ = child.wait();
}
