//! The `Host` check on every route (DNS rebinding) and read tokens bound to components, through
//! the real faces: REST, analytics, `/metrics` and MCP.

use reqwest::StatusCode;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, JsonObject};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use session_buddy_events::format_timestamp;
use session_buddy_server::ServerOptions;
use session_buddy_server::auth::mint_token;
use session_buddy_server::routes::{MCP_PATH, ROUTES};

use crate::auth::{SECRET, claims, secured};
use crate::common::{TestServer, command, end, session_id_of, start};

/// Every path the server serves, with its parameters filled in: each row of [`ROUTES`] and
/// [`MCP_PATH`].
fn every_route() -> Vec<(reqwest::Method, String)> {
    ROUTES
        .iter()
        .map(|r| {
            let path = r
                .path
                .replace("{id}", "akosha-20260301-100000-abcdef")
                .replace("{name}", "session_start")
                .replace("{file}", "console.css");
            assert!(!path.contains('{'), "fill in the parameter of {}", r.path);
            (
                reqwest::Method::from_bytes(r.method.as_str().as_bytes()).unwrap(),
                path,
            )
        })
        .chain(std::iter::once((
            reqwest::Method::POST,
            MCP_PATH.to_string(),
        )))
        .collect()
}

async fn send_as(s: &TestServer, method: reqwest::Method, path: &str, host: &str) -> (u16, String) {
    let mut r = s
        .http
        .request(method.clone(), format!("{}{path}", s.url))
        .header("host", host);
    if method == reqwest::Method::POST {
        r = r
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(MCP_INITIALIZE);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    // A stream (`/v1/stream`, an MCP event stream) that was let through never ends: its
    // headers are the answer.
    let streaming = r
        .headers()
        .get("content-type")
        .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        return (status, String::new());
    }
    (status, r.text().await.unwrap())
}

const MCP_INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"tests","version":"1"}}}"#;

fn port_of(s: &TestServer) -> String {
    s.url.rsplit(':').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_every_route_refuses_a_foreign_host() {
    let s = TestServer::start().await;
    let routes = every_route();
    assert!(routes.len() > 20, "{routes:?}");
    for (method, path) in &routes {
        for host in [
            "evil.example",
            "evil.example:8678",
            "localhost.evil.example",
        ] {
            let (status, body) = send_as(&s, method.clone(), path, host).await;
            assert_eq!(status, 421, "{method} {path} with Host {host}: {body}");
            let error: Value = serde_json::from_str(&body).unwrap();
            let error = error["error"].as_str().unwrap();
            assert!(
                error.contains(host) && error.contains("--allowed-host"),
                "{error}"
            );
        }
        let port = port_of(&s);
        for host in [
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
            "localhost".to_string(),
        ] {
            let (status, body) = send_as(&s, method.clone(), path, &host).await;
            assert_ne!(status, 421, "{method} {path} with Host {host}: {body}");
        }
    }
    // Unknown paths are behind the check too.
    let (status, _) = send_as(&s, reqwest::Method::GET, "/nowhere", "evil.example").await;
    assert_eq!(status, 421);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_pass_and_a_secret_alone_leaves_hosts_to_tokens() {
    let allowed = TestServer::start_with(ServerOptions {
        allowed_hosts: vec!["tracker.internal".into(), "10.1.2.3:8678".into()],
        ..ServerOptions::default()
    })
    .await;
    for (method, path) in every_route() {
        let (status, body) = send_as(&allowed, method.clone(), &path, "tracker.internal:9").await;
        assert_ne!(status, 421, "{method} {path}: {body}");
        let (status, _) = send_as(&allowed, method.clone(), &path, "10.1.2.3:8678").await;
        assert_ne!(status, 421, "{method} {path}");
        let (status, _) = send_as(&allowed, method.clone(), &path, "10.1.2.3:1").await;
        assert_eq!(
            status, 421,
            "{method} {path}: the port is part of that entry"
        );
    }
    // MCP answers an allowed host itself (the same list), not only the middleware.
    let (status, body) = send_as(
        &allowed,
        reqwest::Method::POST,
        MCP_PATH,
        "tracker.internal",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("protocolVersion"), "{body}");
    allowed.stop().await;

    // A secret and no --allowed-host: any Host, tokens decide.
    let tokens = TestServer::start_with(secured(|_| {})).await;
    let (status, _) = send_as(&tokens, reqwest::Method::GET, "/health", "evil.example").await;
    assert_eq!(status, 200);
    let (status, _) = send_as(
        &tokens,
        reqwest::Method::GET,
        "/v1/sessions",
        "evil.example",
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = send_as(&tokens, reqwest::Method::POST, MCP_PATH, "evil.example").await;
    assert_eq!(status, 200, "{body}");
    tokens.stop().await;

    // A secret and --allowed-host: the check is back.
    let both = TestServer::start_with(ServerOptions {
        allowed_hosts: vec!["tracker.internal".into()],
        ..secured(|_| {})
    })
    .await;
    for (method, path) in every_route() {
        let (status, _) = send_as(&both, method.clone(), &path, "evil.example").await;
        assert_eq!(status, 421, "{method} {path}");
    }
    let (status, _) = send_as(&both, reqwest::Method::GET, "/health", "tracker.internal").await;
    assert_eq!(status, 200);
    both.stop().await;
}

fn read_token(components: &[&str], scopes: &[&str]) -> String {
    let mut c = claims("reader", scopes, None);
    c.read_components = components.iter().map(|s| s.to_string()).collect();
    format!("Bearer {}", mint_token(SECRET, &c).unwrap())
}

fn plain_token(scopes: &[&str], component: Option<&str>) -> String {
    format!(
        "Bearer {}",
        mint_token(SECRET, &claims("tests", scopes, component)).unwrap()
    )
}

async fn get(s: &TestServer, path: &str, auth: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .get(format!("{}{path}", s.url))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

type Client = RunningService<rmcp::RoleClient, ClientConfig>;

async fn mcp(s: &TestServer, auth: &str) -> Client {
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", s.url))
        .auth_header(auth.trim_start_matches("Bearer ").to_string());
    ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

async fn tool(client: &Client, name: &str, args: Value) -> (bool, Value) {
    let args: JsonObject = serde_json::from_value(args).unwrap();
    let r = client
        .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args))
        .await
        .unwrap();
    (
        r.is_error == Some(true),
        r.structured_content.unwrap_or(Value::Null),
    )
}

/// Two components, each with an ended session holding a failed command and an active one,
/// started within the last hour (inside every analytics window). Returns the session ids,
/// `(akosha, crackerjack)`.
async fn two_components(s: &TestServer, admin: &str) -> (Vec<String>, Vec<String>) {
    let now = chrono::Utc::now();
    let ts = |mins: i64| format_timestamp(&(now - chrono::TimeDelta::minutes(mins)));
    let mut ids = (Vec::new(), Vec::new());
    for component in ["akosha", "crackerjack"] {
        let ended = start(component, &ts(50));
        let active = start(component, &ts(40));
        let (e, a) = (session_id_of(&ended), session_id_of(&active));
        let mut failed = command(&e, 1, &ts(45), false);
        failed["error"] = json!(format!("{component} broke"));
        let batch = json!([
            ended,
            active,
            failed,
            command(&a, 1, &ts(39), true),
            end(&e, &ts(44), 1)
        ]);
        let r = s
            .http
            .post(format!("{}/v1/events", s.url))
            .header("authorization", admin)
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert!(
            body["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["status"] == "accepted"),
            "{body}"
        );
        let list = if component == "akosha" {
            &mut ids.0
        } else {
            &mut ids.1
        };
        list.extend([e, a]);
    }
    ids
}

fn components_of(page: &Value) -> Vec<String> {
    page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["component"].as_str().unwrap().to_string())
        .collect()
}

/// The analytics routes of the route table, each with a window covering the test's sessions.
fn analytics_paths() -> Vec<String> {
    let paths: Vec<String> = ROUTES
        .iter()
        .filter(|r| r.path.starts_with("/v1/analytics/"))
        .map(|r| {
            if r.path.ends_with("/quality") {
                r.path.to_string()
            } else {
                format!("{}?days=2", r.path)
            }
        })
        .collect();
    assert!(paths.len() >= 7, "{paths:?}");
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_bound_to_akosha_sees_no_other_component_anywhere() {
    let s = TestServer::start_with(secured(|a| a.metrics_require_auth = true)).await;
    let admin = plain_token(&["admin"], None);
    let (akosha, crackerjack) = two_components(&s, &admin).await;
    let bound = read_token(&["akosha"], &["read"]);
    let unbound = plain_token(&["read"], None);
    // A token minted before read binding: its component claim binds its writes only.
    let old = plain_token(&["emit", "read"], Some("akosha"));
    // An admin token is never bound.
    let admin_bound = read_token(&["akosha"], &["admin"]);

    // GET /v1/sessions, with and without a component filter.
    let (status, page) = get(&s, "/v1/sessions", &bound).await;
    assert_eq!(status, 200);
    assert_eq!(components_of(&page), ["akosha", "akosha"]);
    let (_, page) = get(&s, "/v1/sessions?component=crackerjack", &bound).await;
    assert!(components_of(&page).is_empty(), "{page}");
    for all in [&unbound, &old, &admin_bound, &admin] {
        let (_, page) = get(&s, "/v1/sessions", all).await;
        let mut seen = components_of(&page);
        seen.sort();
        assert_eq!(seen, ["akosha", "akosha", "crackerjack", "crackerjack"]);
    }

    // One session and its timeline: an invisible one is exactly a missing one.
    let missing = "crackerjack-20200101-000000-abcdef";
    for id in &crackerjack {
        for path in [
            format!("/v1/sessions/{id}"),
            format!("/v1/sessions/{id}/events"),
            format!("/v1/events?session_id={id}"),
        ] {
            let (status, body) = get(&s, &path, &bound).await;
            assert_eq!(status, 404, "{path}: {body}");
            let (missing_status, missing_body) =
                get(&s, &path.replace(id.as_str(), missing), &bound).await;
            assert_eq!(missing_status, 404);
            assert_eq!(
                body["error"].as_str().unwrap().replace(id.as_str(), "ID"),
                missing_body["error"]
                    .as_str()
                    .unwrap()
                    .replace(missing, "ID")
            );
            assert_eq!(get(&s, &path, &unbound).await.0, 200, "{path}");
        }
    }
    for id in &akosha {
        assert_eq!(get(&s, &format!("/v1/sessions/{id}"), &bound).await.0, 200);
        let (status, events) = get(&s, &format!("/v1/sessions/{id}/events"), &bound).await;
        assert_eq!(status, 200);
        assert!(!events["events"].as_array().unwrap().is_empty());
    }

    // The latest events.
    let (_, events) = get(&s, "/v1/events", &bound).await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| akosha.contains(&e["session_id"].as_str().unwrap().to_string()))
    );
    let (_, all_events) = get(&s, "/v1/events", &unbound).await;
    assert_eq!(all_events["events"].as_array().unwrap().len(), 10);

    // Every analytics route of the table.
    for path in analytics_paths() {
        let (status, body) = get(&s, &path, &bound).await;
        assert_eq!(status, 200, "{path}: {body}");
        let text = body.to_string();
        assert!(text.contains("akosha"), "{path}: {text}");
        assert!(!text.contains("crackerjack"), "{path}: {text}");
        let (_, body) = get(&s, &path, &unbound).await;
        assert!(body.to_string().contains("crackerjack"), "{path}: {body}");
    }

    // The metrics add up every component: not for a bound token.
    let (status, body) = get(&s, "/metrics", &bound).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("akosha"), "{body}");
    assert_eq!(get(&s, "/metrics", &unbound).await.0, 200);

    // MCP, the same.
    let client = mcp(&s, &bound).await;
    let (failed, page) = tool(&client, "list_sessions", json!({})).await;
    assert!(!failed, "{page}");
    assert_eq!(components_of(&page), ["akosha", "akosha"]);
    let (_, page) = tool(
        &client,
        "list_sessions",
        json!({"component": "crackerjack"}),
    )
    .await;
    assert!(components_of(&page).is_empty());
    let (_, got) = tool(
        &client,
        "get_session",
        json!({"session_id": crackerjack[0]}),
    )
    .await;
    assert_eq!(got["status"], "not_found", "{got}");
    let (_, got) = tool(&client, "get_session", json!({"session_id": akosha[0]})).await;
    assert_eq!(got["component"], "akosha", "{got}");
    let (_, listed) = tool(&client, "list_events", json!({})).await;
    assert_eq!(listed["events"].as_array().unwrap().len(), 5);
    let (_, listed) = tool(
        &client,
        "list_events",
        json!({"session_id": crackerjack[0]}),
    )
    .await;
    assert!(listed["events"].as_array().unwrap().is_empty(), "{listed}");
    let (_, stats) = tool(&client, "analytics_sessions", json!({"days": 2})).await;
    assert!(stats.to_string().contains("akosha"), "{stats}");
    assert!(!stats.to_string().contains("crackerjack"), "{stats}");
    for aggregate in ["get_metrics_summary", "get_prometheus_metrics"] {
        let (failed, answer) = tool(&client, aggregate, json!({})).await;
        assert!(failed, "{aggregate}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("forbidden"),
            "{answer}"
        );
    }
    let (failed, _) = tool(&client, "list_session_metrics", json!({})).await;
    assert!(!failed);
    let _ = client.cancel().await;

    let client = mcp(&s, &unbound).await;
    let (_, page) = tool(&client, "list_sessions", json!({})).await;
    assert_eq!(components_of(&page).len(), 4);
    let (_, stats) = tool(&client, "analytics_sessions", json!({"days": 2})).await;
    assert!(stats.to_string().contains("crackerjack"), "{stats}");
    let (failed, _) = tool(&client, "get_metrics_summary", json!({})).await;
    assert!(!failed);
    let _ = client.cancel().await;

    // The old emit+read token still writes only akosha.
    let r = s
        .http
        .post(format!("{}/v1/events", s.url))
        .header("authorization", &old)
        .json(&json!([start(
            "crackerjack",
            &format_timestamp(&chrono::Utc::now())
        )]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    s.stop().await;
}
