//! One rule on every face: a token minted by fastblocks' `auth mint` and by `token create`
//! from the same inputs, and the same refusals; session-buddy's `quality` against the
//! server's `session_quality_score`; fastblocks' `routes` against the running server's table
//! under each flag; fastblocks' probe over HTTPS with `SESSION_BUDDY_CA_CERT`.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::common::{Server, bin, session_id, start_event, stderr, stdout};

const SECRET: &str = "Vq3nZ8rT1wY6uI0oP4aS7dF2gH5jK9lX-once";

/// `token create ARGS` and `shell fastblocks -c "auth mint ARGS"`: (status ok, all output).
fn mint_both(home: &Path, args: &[&str]) -> [(bool, String); 2] {
    let run = |command: &mut std::process::Command| {
        let o = command
            .env("SESSION_BUDDY_HOME", home)
            .env("SESSION_BUDDY_SECRET", SECRET)
            .env("SESSION_BUDDY_TRACKING", "off")
            .output()
            .unwrap();
        (o.status.success(), format!("{}{}", stdout(&o), stderr(&o)))
    };
    let cli = run(bin().args(["token", "create"]).args(args));
    let helper = run(bin().args(["shell", "fastblocks", "-c"]).arg(format!(
        "auth mint {}",
        args.iter()
            .map(|a| if a.is_empty() || a.contains(' ') {
                format!("'{a}'")
            } else {
                a.to_string()
            })
            .collect::<Vec<_>>()
            .join(" ")
    )));
    [cli, helper]
}

fn token_in(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("eyJ") && w.split('.').count() == 3)
        .unwrap_or_else(|| panic!("no token in: {text}"))
        .to_string()
}

#[test]
fn fastblocks_and_token_create_mint_and_refuse_alike() {
    let home = tempfile::tempdir().unwrap();
    let inputs = [
        "--subject",
        "ci-bot",
        "--scope",
        "write",
        "--scope",
        "read",
        "--component",
        "crackerjack",
        "--ttl",
        "12h",
    ];
    let [(ok_cli, cli), (ok_helper, helper)] = mint_both(home.path(), &inputs);
    assert!(ok_cli && ok_helper, "{cli}\n{helper}");
    let verifier = session_buddy_token::TokenVerifier::new(SECRET, None);
    let mut claims: Vec<Value> = [token_in(&cli), token_in(&helper)]
        .iter()
        .map(|t| serde_json::to_value(verifier.verify(t).unwrap()).unwrap())
        .collect();
    for c in &mut claims {
        let lifetime = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
        assert_eq!(lifetime, 12 * 3600, "{c}");
        let m = c.as_object_mut().unwrap();
        for varies in ["iat", "exp", "jti"] {
            m.remove(varies);
        }
    }
    assert_eq!(claims[0], claims[1]);
    assert_eq!(
        claims[0],
        json!({"sub": "ci-bot", "aud": "session-buddy", "iss": "session-buddy",
               "scopes": ["emit", "read"], "component": "crackerjack",
               "read_components": ["crackerjack"]})
    );

    // The same bad input, the same refusal (the one grant validation's words).
    let day = Duration::from_secs(86_400);
    let read = [session_buddy_token::Scope::Read];
    let long = "x".repeat(201);
    let refusals: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--subject", &long, "--scope", "read"],
            session_buddy_token::Grant::new(&long, &read, &[], day).unwrap_err(),
        ),
        (
            vec!["--subject", "a", "--scope", "read", "--ttl", "4000d"],
            session_buddy_token::parse_ttl("4000d").unwrap_err(),
        ),
        (
            vec!["--subject", "a", "--scope", "read", "--ttl", "0s"],
            session_buddy_token::parse_ttl("0s").unwrap_err(),
        ),
        (
            vec!["--subject", "a", "--scope", "root"],
            session_buddy_token::parse_scope("root").unwrap_err(),
        ),
        (
            vec!["--subject", "a", "--scope", "read", "--component", "a/b"],
            session_buddy_token::Grant::new("a", &read, &["a/b".to_string()], day).unwrap_err(),
        ),
    ];
    for (args, message) in refusals {
        for (ok, out) in mint_both(home.path(), &args) {
            assert!(!ok, "{args:?} was accepted: {out}");
            assert!(
                out.contains(&message),
                "{args:?}: {out}\nexpected: {message}"
            );
        }
    }
    // Both refuse a weak secret in the same words.
    let weak = |c: &mut std::process::Command| {
        let o = c
            .env("SESSION_BUDDY_HOME", home.path())
            .env("SESSION_BUDDY_SECRET", "changeme")
            .env("SESSION_BUDDY_TRACKING", "off")
            .output()
            .unwrap();
        format!("{}{}", stdout(&o), stderr(&o))
    };
    let expected = session_buddy_token::signing_secret(Some("changeme")).unwrap_err();
    let cli = weak(bin().args(["token", "create", "--subject", "a", "--scope", "read"]));
    let helper = weak(bin().args([
        "shell",
        "fastblocks",
        "-c",
        "auth mint --subject a --scope read",
    ]));
    assert!(
        cli.contains(&expected) && helper.contains(&expected),
        "{cli}\n{helper}"
    );
}

fn event(kind: &str, session_id: &str, ts: &str, extra: Value) -> Value {
    let mut v = json!({
        "event_version": "1.1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": kind,
        "session_id": session_id,
        "timestamp": ts,
    });
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}

/// `session_quality_score` per component, from `/metrics`.
fn metric_scores(url: &str) -> std::collections::BTreeMap<String, f64> {
    let text = ureq::get(format!("{url}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("session_quality_score{component_name=\""))
        .filter_map(|rest| {
            let (name, value) = rest.split_once("\"} ")?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn quality_shows_the_servers_session_quality_score() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let ts = |minutes_ago: i64| {
        session_buddy_events::format_timestamp(&(Utc::now() - TimeDelta::minutes(minutes_ago)))
    };
    let mut batch = Vec::new();
    let mut start = |component: &str, minutes_ago: i64| {
        let s = start_event(component, &ts(minutes_ago));
        let id = session_id(&s);
        batch.push(s);
        id
    };
    // sig: one clean end, one 1.0 end with only a signal (a failure for the server).
    let (sig1, sig2) = (start("sig", 50), start("sig", 40));
    // mixed: a non-zero exit, a failed command, a clean one with a good command.
    let (m1, m2, m3) = (start("mixed", 30), start("mixed", 20), start("mixed", 10));
    let c1 = start("clean", 5);
    let end = |id: &str, extra: Value| event("session_end", id, &ts(1), extra);
    let command = |id: &str, ok: bool| {
        event(
            "command",
            id,
            &ts(2),
            json!({"seq": 1, "command": "crack", "success": ok, "error": if ok { Value::Null } else { json!("boom") }}),
        )
    };
    batch.extend([
        end(&sig1, json!({"exit_code": 0, "reason": "exit"})),
        json!({
            "event_version": "1.0",
            "event_type": "session_end",
            "session_id": sig2,
            "timestamp": ts(1),
            "signal": "SIGTERM"
        }),
        end(&m1, json!({"exit_code": 1})),
        command(&m2, false),
        end(&m2, json!({"exit_code": 0, "reason": "exit"})),
        command(&m3, true),
        end(&m3, json!({"exit_code": 0, "reason": "exit"})),
        end(&c1, json!({"exit_code": 0, "reason": "exit"})),
    ]);
    let results = server.post(&batch);
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "{results:?}"
    );

    // The gauges refresh in the background: wait until they hold the three components.
    let started = Instant::now();
    let metrics = loop {
        let m = metric_scores(&server.url);
        if m.len() == 3 {
            break m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the gauges never showed 3 components: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    // sig: 100 × (0.5 × 1/2 + 0.3 + 0.2); mixed: 100 × (0.5 × 1/3 + 0.3 × 1/2 + 0.2).
    assert_eq!(metrics["sig"], 75.0, "{metrics:?}");
    assert!((metrics["mixed"] - 51.666_666).abs() < 1e-3, "{metrics:?}");
    assert_eq!(metrics["clean"], 100.0, "{metrics:?}");

    let o = server.cli(&["shell", "session-buddy", "-c", "quality"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for (component, score) in &metrics {
        let why = format!("  {component}: {score:.1} = 100 × (");
        assert!(text.contains(&why), "no '{why}' in:\n{text}");
    }
    assert!(
        text.contains("1 of 2 sessions without a failure (1 failed, 0 of them abandoned)"),
        "{text}"
    );
    assert!(
        text.contains("a signal"),
        "the failure rule is shown: {text}"
    );
}

/// `routes` rows as (method, path, who).
fn helper_rows(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (m, p, who) = (w.next()?, w.next()?, w.next()?);
            (matches!(m, "GET" | "POST" | "DELETE") && p.starts_with('/')).then(|| {
                let who = if who == "per" { "per tool" } else { who };
                (m.to_string(), p.to_string(), who.to_string())
            })
        })
        .collect()
}

#[test]
fn routes_is_the_running_servers_table_under_each_flag() {
    for (flags, metrics_who) in [
        (&[][..], "public"),
        (&["--metrics-require-auth"][..], "read"),
    ] {
        let home = tempfile::tempdir().unwrap();
        let server = Server::start_env(home.path(), &[("SESSION_BUDDY_SECRET", SECRET)], flags);
        let table: Value = ureq::get(format!("{}/v1/routes", server.url))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        let served: Vec<(String, String, String)> = table["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap().to_string();
                (s("method"), s("path"), s("who"))
            })
            .collect();
        assert!(
            served.contains(&("GET".into(), "/metrics".into(), metrics_who.into())),
            "{flags:?}: {served:?}"
        );
        // The table is what the server enforces: /metrics without a token.
        let status = match ureq::get(format!("{}/metrics", server.url)).call() {
            Ok(r) => r.status().as_u16(),
            Err(ureq::Error::StatusCode(code)) => code,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            status == 200,
            metrics_who == "public",
            "{flags:?}: {status}"
        );

        let o = server.cli(&["shell", "fastblocks", "-c", "routes"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        assert_eq!(helper_rows(&text), served, "{flags:?}:\n{text}");
        for tool in table["mcp_tools"].as_array().unwrap() {
            let line = format!(
                "{}  {}",
                tool["name"].as_str().unwrap(),
                tool["scope"].as_str().unwrap()
            );
            let found = text
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join("  ") == line);
            assert!(found, "no '{line}' in:\n{text}");
        }
        assert!(text.contains("This server has a secret"), "{text}");
    }
}
