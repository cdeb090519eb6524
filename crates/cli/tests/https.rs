//! HTTPS end to end: a server with its own certificate, and every client of the workspace (a
//! shell's emitter and detached sender, the shells' helpers, the CLI) talking to it through
//! `SESSION_BUDDY_CA_CERT` (fastblocks' auth probe too); a missing or broken CA file is a clear error, not a silent
//! fallback.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::{Server, bin, stderr, stdout};

/// A self-signed certificate for 127.0.0.1 and localhost, made with openssl.
fn make_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is needed to make a test certificate (apt-get install openssl)");
    assert!(status.success(), "openssl could not make a certificate");
    (cert, key)
}

#[test]
fn shells_and_the_cli_speak_https_with_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(dir.path());
    let server = Server::start_with(
        &dir.path().join("server"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let home = dir.path().join("home");
    let client = |ca: Option<&Path>, args: &[&str]| {
        let mut c = bin();
        c.env("SESSION_BUDDY_HOME", &home)
            .env("SESSION_BUDDY_URL", &server.url)
            .env_remove("SESSION_BUDDY_CA_CERT")
            .args(args);
        if let Some(ca) = ca {
            c.env("SESSION_BUDDY_CA_CERT", ca);
        }
        c.output().unwrap()
    };

    // A shell: its events reach the server over HTTPS (its own sender or the detached one).
    let o = client(Some(&cert), &["shell", "oneiric", "-c", "show_layers port"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let started = Instant::now();
    let ended = loop {
        let o = client(Some(&cert), &["list-sessions", "--format", "json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let sessions: Value = serde_json::from_str(&stdout(&o)).unwrap();
        let done = sessions.as_array().unwrap().iter().any(|s| {
            s["component"] == "oneiric" && s["status"] == "ended" && s["command_count"] == 1
        });
        if done || started.elapsed() > Duration::from_secs(60) {
            break done;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(ended, "the shell's session did not arrive over HTTPS");

    // A helper that reads through the API, over HTTPS.
    let o = client(Some(&cert), &["shell", "session-buddy", "-c", "active"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("active session"), "{}", stdout(&o));

    // fastblocks' auth probe goes through the same client: it trusts the configured CA.
    let o = client(Some(&cert), &["shell", "fastblocks", "-c", "auth"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("no (GET /v1/sessions without a token answered 200)"),
        "{}",
        stdout(&o)
    );

    // Without the CA, Mozilla's roots do not know this certificate: refused, saying so.
    let o = client(None, &["list-sessions"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).to_lowercase().contains("certificate"),
        "{}",
        stderr(&o)
    );

    // A CA file that is not one is named, for the CLI and for a helper.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let o = client(Some(&junk), &["list-sessions"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("SESSION_BUDDY_CA_CERT") && stderr(&o).contains("junk.pem"),
        "{}",
        stderr(&o)
    );
    let o = client(Some(&junk), &["shell", "session-buddy", "-c", "active"]);
    assert!(
        stderr(&o).contains("SESSION_BUDDY_CA_CERT"),
        "{}",
        stderr(&o)
    );
    let o = client(Some(&junk), &["shell", "fastblocks", "-c", "auth"]);
    assert!(
        stdout(&o).contains("unknown: cannot use SESSION_BUDDY_CA_CERT="),
        "{}",
        stdout(&o)
    );
}
