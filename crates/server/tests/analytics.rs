//! Analytics over HTTP (`/v1/analytics/…`) and MCP (`analytics_sessions`): every number of a
//! dataset with known answers, relative to now so `days` windows apply.

use chrono::{DateTime, TimeDelta, Utc};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, JsonObject};
use serde_json::{Value, json};
use session_buddy_events::format_timestamp;

use crate::common::{TestServer, command, end, session_id_of, start};

fn ago(now: DateTime<Utc>, secs: i64) -> String {
    format_timestamp(&(now - TimeDelta::seconds(secs)))
}

/// alpha: a1 2 h ago, ended after 600 s, a failed command ("boom"); a2 3 h ago, ended after
/// 3600 s; a3 30 min ago, active. beta: b1 1 h ago, ended after 30 s with exit code 1;
/// b2 10 days ago, ended after 100 s (only in 30-day windows).
async fn dataset(server: &TestServer) -> (DateTime<Utc>, String) {
    let now = Utc::now();
    let a1 = start("alpha", &ago(now, 7200));
    let a2 = start("alpha", &ago(now, 10800));
    let a3 = start("alpha", &ago(now, 1800));
    let b1 = start("beta", &ago(now, 3600));
    let b2 = start("beta", &ago(now, 10 * 86400));
    let ids: Vec<String> = [&a1, &a2, &a3, &b1, &b2]
        .iter()
        .map(|s| session_id_of(s))
        .collect();
    let results = server
        .post_events(&[
            a1,
            a2,
            a3,
            b1,
            b2,
            command(&ids[0], 1, &ago(now, 7100), false),
            end(&ids[0], &ago(now, 7200 - 600), 0),
            end(&ids[1], &ago(now, 10800 - 3600), 0),
            end(&ids[3], &ago(now, 3600 - 30), 1),
            end(&ids[4], &ago(now, 10 * 86400 - 100), 0),
        ])
        .await;
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "{results:?}"
    );
    (now, ids[2].clone())
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_analytics_number_over_http() {
    let server = TestServer::start().await;
    let (_, active_id) = dataset(&server).await;

    let (status, v) = server.get("/v1/analytics/sessions").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["date_range"], "Last 7 days");
    let stats = v["session_stats"].as_array().unwrap();
    assert_eq!(stats.len(), 2, "{v}");
    assert_eq!(stats[0]["component_name"], "alpha");
    assert_eq!(stats[0]["total_sessions"], 3);
    assert!(close(&stats[0]["avg_duration"], 2100.0), "{v}");
    assert_eq!(stats[0]["active_sessions"], 1);
    assert!(close(&stats[0]["error_rate"], 100.0 / 3.0), "{v}");
    assert_eq!(stats[0]["date_range"], "Last 7 days");
    assert_eq!(stats[1]["component_name"], "beta");
    assert_eq!(stats[1]["total_sessions"], 1);
    assert!(close(&stats[1]["avg_duration"], 30.0));
    assert!(close(&stats[1]["error_rate"], 100.0));
    let trend: Vec<u64> = serde_json::from_value(v["trend"].clone()).unwrap();
    assert_eq!(trend.len(), 7);
    assert_eq!(trend.iter().sum::<u64>(), 4);
    assert_eq!(trend[6], 4, "every session of the week started today");

    let (_, v) = server
        .get("/v1/analytics/sessions?days=30&component=beta")
        .await;
    assert_eq!(v["date_range"], "Last 30 days");
    let stats = v["session_stats"].as_array().unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0]["total_sessions"], 2);
    assert!(close(&stats[0]["avg_duration"], 65.0));
    assert!(close(&stats[0]["error_rate"], 50.0));

    let (_, v) = server.get("/v1/analytics/duration").await;
    assert!(close(&v["average_duration"]["alpha"], 2100.0), "{v}");
    assert!(close(&v["average_duration"]["beta"], 30.0), "{v}");

    let (_, v) = server.get("/v1/analytics/components?limit=1").await;
    let c = v["components"].as_array().unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["component_name"], "alpha");
    assert_eq!(c[0]["session_count"], 3);
    assert!(close(&c[0]["total_duration"], 4200.0));
    // 100 × (0.5 × 2/3 + 0.3 × 0/1 + 0.2 × 1)
    assert!(close(
        &c[0]["avg_quality_score"],
        100.0 * (0.5 * 2.0 / 3.0 + 0.2)
    ));
    assert!(c[0]["last_active"].is_string());

    let (_, v) = server.get("/v1/analytics/errors").await;
    let e = &v["error_rates"];
    assert_eq!(e["alpha"]["total_sessions"], 3);
    assert_eq!(e["alpha"]["failed_sessions"], 1);
    assert_eq!(e["alpha"]["most_common_error"], "boom");
    assert!(close(&e["beta"]["error_rate"], 100.0));
    assert_eq!(e["beta"]["most_common_error"], "exit code 1");

    let (_, v) = server.get("/v1/analytics/active").await;
    assert_eq!(v["total"], 1);
    let a = &v["active_sessions"][0];
    assert_eq!(a["session_id"], active_id.as_str());
    assert_eq!(a["component_name"], "alpha");
    assert_eq!(a["project"], "srv");
    let age = a["duration_seconds"].as_i64().unwrap();
    assert!((1800..1900).contains(&age), "{a}");

    let (_, v) = server.get("/v1/analytics/report?days=30").await;
    assert_eq!(v["date_range"], "Last 30 days");
    assert_eq!(v["active_sessions"], 1);
    assert_eq!(v["session_stats"].as_array().unwrap().len(), 2);
    assert!(close(&v["average_duration"]["beta"], 65.0));
    assert_eq!(v["error_rates"]["beta"]["failed_sessions"], 1);
    assert_eq!(v["trend"].as_array().unwrap().len(), 30);

    // An explicit range: only b2.
    let now = Utc::now();
    let (status, v) = server
        .get(&format!(
            "/v1/analytics/sessions?since={}&until={}",
            ago(now, 11 * 86400).replace('+', "%2B"),
            ago(now, 9 * 86400)
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["date_range"].as_str().unwrap().contains(" to "));
    assert_eq!(v["session_stats"][0]["component_name"], "beta");
    assert_eq!(v["session_stats"][0]["total_sessions"], 1);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_analytics_parameters_are_400_with_the_original_messages() {
    let server = TestServer::start().await;
    for (query, message) in [
        ("days=0", "days must be at least 1"),
        ("days=366", "days cannot exceed 365"),
        ("limit=0", "limit must be at least 1"),
        ("limit=101", "limit cannot exceed 100"),
        ("days=x", "days must be an integer, got \"x\""),
        ("since=yesterday", "since: "),
        ("bogus=1", "unknown parameter 'bogus'"),
    ] {
        let (status, v) = server.get(&format!("/v1/analytics/sessions?{query}")).await;
        assert_eq!(status, 400, "{query}: {v}");
        assert!(
            v["error"].as_str().unwrap().starts_with(message),
            "{query}: {v}"
        );
    }
    let (status, v) = server.get("/v1/analytics/sessions").await;
    assert_eq!(status, 200);
    assert_eq!(v["session_stats"], json!([]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_sessions_over_mcp() {
    let server = TestServer::start().await;
    dataset(&server).await;
    let transport =
        rmcp::transport::StreamableHttpClientTransport::from_uri(format!("{}/mcp", server.url));
    let client = ClientConfig::default().serve(transport).await.unwrap();
    let call = async |tool: &str, args: Value| -> (bool, Value) {
        let args: JsonObject = serde_json::from_value(args).unwrap();
        let r = client
            .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
            .await
            .unwrap();
        (
            r.is_error.unwrap_or(false),
            r.structured_content.clone().unwrap_or(Value::Null),
        )
    };
    let (err, v) = call("analytics_sessions", json!({"range_days": 7})).await;
    assert!(!err, "{v}");
    assert_eq!(v["date_range"], "Last 7 days");
    assert_eq!(v["session_stats"][0]["component_name"], "alpha");
    assert_eq!(v["session_stats"][0]["total_sessions"], 3);
    assert!(close(&v["session_stats"][0]["avg_duration"], 2100.0));
    assert!(close(&v["session_stats"][1]["error_rate"], 100.0));
    let (_, http) = server.get("/v1/analytics/sessions?days=7").await;
    assert_eq!(v["session_stats"], http["session_stats"]);

    let (_, v) = call(
        "analytics_sessions",
        json!({"days": 30, "component": "beta"}),
    )
    .await;
    assert_eq!(v["session_stats"][0]["total_sessions"], 2);
    assert!(close(&v["session_stats"][0]["avg_duration"], 65.0));

    let (err, v) = call("analytics_sessions", json!({"range_days": 0})).await;
    assert!(err);
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"], "range_days must be at least 1");

    // The metrics tools answer alongside.
    let (_, summary) = call("get_metrics_summary", json!({})).await;
    assert_eq!(summary["total_sessions_started"], 5);
    assert_eq!(summary["active_sessions"]["alpha"], 1);
    let (_, described) = call("list_session_metrics", json!({})).await;
    assert!(described["session_lifecycle_metrics"]["active_sessions"].is_object());
    let (_, metrics) = call("get_prometheus_metrics", json!({})).await;
    assert!(
        metrics["metrics"]
            .as_str()
            .unwrap()
            .contains("active_sessions{component_name=\"alpha\"} 1")
    );
    client.cancel().await.unwrap();
    server.stop().await;
}
