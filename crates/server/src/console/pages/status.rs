//! `GET /status`: health, storage, ingest and the reaper, for people.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::Value;
use session_buddy_html::Html;
use session_buddy_text as text;
use session_buddy_text::sessions::plain;

use super::{record_row, td, viewer};
use crate::auth::Principal;
use crate::console::login::ConsoleSession;
use crate::console::{Nav, html_response, layout, time};
use crate::{AppState, query};

fn stat(h: &mut Html, label: &str, value: &str) {
    h.wrap("div", &[("class", Some("card"))], |h| {
        h.el("b", &[], value).el("span", &[], label);
    });
}

/// `GET /status`: what `/health` and `/metrics` say, for people.
pub(crate) async fn status_page(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    session: Option<Extension<ConsoleSession>>,
) -> Response {
    let v = viewer(&principal, &session);
    let (ok, health) = query::health_value(&state).await;
    let lease = crate::holds_reaper_lease(&state).await;
    let m_status = state.metrics.status();
    let mut m = Html::new();
    m.el("h1", &[], "Status");
    m.open("div", &[("class", Some("cards")), ("id", Some("status"))]);
    stat(&mut m, "server", if ok { "ok" } else { "degraded" });
    stat(&mut m, "version", crate::VERSION);
    let storage = &health["storage"];
    stat(
        &mut m,
        "storage",
        &format!(
            "{} {}",
            plain(&storage["backend"]),
            if storage["reachable"].as_bool() == Some(true) {
                "reachable"
            } else {
                "unreachable"
            }
        ),
    );
    stat(&mut m, "schema version", &plain(&storage["schema_version"]));
    let uptime = m_status["uptime_seconds"].as_f64().unwrap_or(0.0);
    stat(&mut m, "uptime", &text::hms(uptime));
    let ingest = m_status["ingest_events"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let counted: u64 = ingest.values().filter_map(Value::as_u64).sum();
    let rate = if uptime > 0.0 {
        counted as f64 / uptime
    } else {
        0.0
    };
    stat(&mut m, "events ingested", &counted.to_string());
    stat(
        &mut m,
        "ingest rate (events/s, since start)",
        &format!("{rate:.2}"),
    );
    let rejected: u64 = ingest
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "accepted" | "duplicate"))
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    stat(&mut m, "events refused", &rejected.to_string());
    stat(
        &mut m,
        "sessions started / ended",
        &format!(
            "{} / {}",
            plain(&m_status["sessions_started"]),
            plain(&m_status["sessions_ended"])
        ),
    );
    stat(
        &mut m,
        "reaper",
        if lease {
            "runs here (holds the lease)"
        } else {
            "another server holds the lease"
        },
    );
    stat(
        &mut m,
        "abandoned by the reaper",
        &plain(&m_status["reaper_abandoned"]),
    );
    stat(&mut m, "console sessions", &state.console.len().to_string());
    m.close("div");
    m.el("h2", &[], "Ingest by outcome");
    m.raw("<table class=\"records\" id=\"ingest\"><thead><tr><th scope=\"col\">Outcome</th><th scope=\"col\">Events</th></tr></thead><tbody>");
    for (k, n) in &ingest {
        m.open("tr", &[]).el("th", &[("scope", Some("row"))], k);
        td(&mut m, "num", "Events", &plain(n));
        m.close("tr");
    }
    m.raw("</tbody></table>");
    m.el("h2", &[], "Reaper");
    m.open("dl", &[("id", Some("reaper"))]);
    record_row(
        &mut m,
        "Session TTL",
        &text::hms(state.options.session_ttl.as_secs_f64()),
    );
    record_row(
        &mut m,
        "Legacy session TTL",
        &text::hms(state.options.legacy_session_ttl.as_secs_f64()),
    );
    record_row(
        &mut m,
        "Runs every",
        &text::hms(state.options.reap_interval().as_secs_f64()),
    );
    let runs = m_status["reaper_runs"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    record_row(
        &mut m,
        "Passes (ok / failed)",
        &format!(
            "{} / {}",
            runs.get("ok").map(plain).unwrap_or_else(|| "0".into()),
            runs.get("error").map(plain).unwrap_or_else(|| "0".into())
        ),
    );
    m.el("dt", &[], "Last pass").open("dd", &[]);
    match m_status["reaper_last_run"]
        .as_f64()
        .filter(|t| *t > 0.0)
        .and_then(|t| DateTime::<Utc>::from_timestamp_millis((t * 1000.0) as i64))
    {
        Some(t) => time(&mut m, &t),
        None => {
            m.text("not yet");
        }
    }
    m.close("dd").close("dl");
    m.open("p", &[("class", Some("muted"))]);
    m.text("The same numbers as ")
        .el("a", &[("href", Some("/health"))], "/health")
        .text(" and ")
        .el("a", &[("href", Some("/metrics"))], "/metrics")
        .text(".");
    m.close("p");
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    html_response(status, layout("Status", Nav::Status, v.csrf(), &m))
}
