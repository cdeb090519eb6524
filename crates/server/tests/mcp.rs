//! The MCP face through rmcp's own client over a real socket.

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, JsonObject};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};

use crate::common::{TestServer, fixture, manifest};

type Client = RunningService<rmcp::RoleClient, ClientConfig>;

async fn connect(server: &TestServer) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(format!("{}/mcp", server.url));
    ClientConfig::default().serve(transport).await.unwrap()
}

/// Calls a tool; checks that the structured content and the JSON text agree; returns it.
async fn call(client: &Client, tool: &str, args: Value) -> Value {
    let args: JsonObject = serde_json::from_value(args).unwrap();
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap();
    let structured = result
        .structured_content
        .clone()
        .expect("structured content");
    let text = result
        .content
        .iter()
        .find_map(|c| c.as_text().map(|t| t.text.clone()))
        .expect("a text content block");
    if tool != "get_prometheus_metrics" {
        let from_text: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            from_text, structured,
            "{tool}: text and structured content differ"
        );
    }
    structured
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_is_listed() {
    let server = TestServer::start().await;
    let client = connect(&server).await;
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "analytics_sessions",
            "get_metrics_summary",
            "get_prometheus_metrics",
            "get_session",
            "health_check",
            "list_events",
            "list_session_metrics",
            "list_sessions",
            "track_command",
            "track_session_end",
            "track_session_start",
        ]
    );
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_payloads_as_tool_arguments() {
    let server = TestServer::start().await;
    let client = connect(&server).await;
    let m = manifest();
    // Invalid payloads: the original's error shape, naming the field. A payload with a
    // session_id and no component_name is an end.
    for (name, fields) in m["invalid"].as_object().unwrap() {
        let payload = fixture(name);
        let is_end = payload.get("session_id").is_some() && payload.get("component_name").is_none();
        let tool = if is_end {
            "track_session_end"
        } else {
            "track_session_start"
        };
        let mut args = payload.clone();
        args["token"] = json!("ignored-without-a-secret");
        let r = call(&client, tool, args).await;
        assert_eq!(r["status"], "error", "{name}: {r}");
        let error = r["error"].as_str().unwrap();
        let fields: Vec<&str> = fields.as_str().unwrap().split('|').collect();
        assert!(
            fields.iter().any(|f| error.starts_with(&format!("{f}:"))),
            "{name}: '{error}' should name one of {fields:?}"
        );
        if !is_end {
            assert_eq!(r["session_id"], Value::Null, "{name}");
        }
    }
    // Valid starts: tracked with the expected id; again: tracked with the same id.
    for (name, id) in m["expected_session_ids"].as_object().unwrap() {
        for _ in 0..2 {
            let r = call(&client, "track_session_start", fixture(name)).await;
            assert_eq!(
                r,
                json!({"session_id": id, "status": "tracked", "error": null}),
                "{name}"
            );
        }
    }
    // The ends: ended.
    for name in ["end-docs-sample.json", "end-duration-none.json"] {
        let payload = fixture(name);
        let r = call(&client, "track_session_end", payload.clone()).await;
        assert_eq!(r["status"], "ended", "{name}: {r}");
        assert_eq!(r["session_id"], payload["session_id"]);
    }
    // An end whose start is unknown is kept, and answers not_found.
    let r = call(
        &client,
        "track_session_end",
        json!({"session_id": "ghost-20260206-123456-abcdef", "timestamp": "2026-02-06T12:40:00Z"}),
    )
    .await;
    assert_eq!(
        r,
        json!({"session_id": "ghost-20260206-123456-abcdef", "status": "not_found", "error": null})
    );
    // The reads see what was written.
    let s = call(
        &client,
        "get_session",
        json!({"session_id": "oneiric-20260206-123456-440000"}),
    )
    .await;
    assert_eq!(s["status"], "ended");
    assert_eq!(s["duration_seconds"].as_f64().unwrap(), 300.0);
    let page = call(
        &client,
        "list_sessions",
        json!({"type": "admin_shell", "component": "oneiric"}),
    )
    .await;
    assert_eq!(page["sessions"].as_array().unwrap().len(), 1);
    // `q`: the text search, as GET /v1/sessions has it.
    let found = call(&client, "list_sessions", json!({"q": "NEIRIC-2026"})).await;
    let found = found["sessions"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["session_id"], "oneiric-20260206-123456-440000");
    let short = call(&client, "list_sessions", json!({"q": "on"})).await;
    assert_eq!(short["status"], "error");
    assert!(
        short["error"].as_str().unwrap().starts_with("q:"),
        "{short}"
    );
    let bad = call(&client, "list_sessions", json!({"limit": 5000})).await;
    assert_eq!(bad["status"], "error");
    assert!(bad["error"].as_str().unwrap().starts_with("limit:"));
    let h = call(&client, "health_check", json!({})).await;
    assert_eq!(h["status"], "ok");
    assert_eq!(h["service"], "session-buddy");
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_timeline_and_metrics_tools() {
    let server = TestServer::start().await;
    let client = connect(&server).await;
    let start = crate::common::start("mahavishnu", "2026-04-01T12:00:00Z");
    let id = call(&client, "track_session_start", start).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cmd = crate::common::command(&id, 1, "2026-04-01T12:00:03Z", false);
    cmd.as_object_mut().unwrap().remove("event_type");
    let r = call(&client, "track_command", cmd.clone()).await;
    assert_eq!(r["status"], "accepted", "{r}");
    assert_eq!(
        call(&client, "track_command", cmd).await["status"],
        "duplicate"
    );
    let r = call(
        &client,
        "track_command",
        json!({"session_id": id, "command": "x"}),
    )
    .await;
    assert_eq!(r["status"], "error");
    let end = json!({"session_id": id, "timestamp": "2026-04-01T12:30:00Z", "metadata": {"exit_reason": "user_exit"}});
    assert_eq!(
        call(&client, "track_session_end", end).await["status"],
        "ended"
    );
    let events = call(&client, "list_events", json!({"session_id": id})).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["session_start", "command", "session_end"]);
    let summary = call(&client, "get_metrics_summary", json!({})).await;
    assert_eq!(summary["total_sessions_started"], 1);
    assert_eq!(summary["total_sessions_ended"], 1);
    assert_eq!(summary["active_sessions"]["mahavishnu"], 0);
    let text = call(&client, "get_prometheus_metrics", json!({})).await;
    assert!(
        text["metrics"]
            .as_str()
            .unwrap()
            .contains("session_end_total{component_name=\"mahavishnu\",status=\"error\"} 1")
    );
    let described = call(&client, "list_session_metrics", json!({})).await;
    assert_eq!(
        described["session_lifecycle_metrics"]["session_duration_seconds"]["buckets"][0],
        60.0
    );
    client.cancel().await.unwrap();
    server.stop().await;
}
