//! `GET /analytics`: the analytics as charts and tables.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use session_buddy_html::{Html, column_chart, row_chart};
use session_buddy_text as text;

use super::{td, viewer};
use crate::auth::Principal;
use crate::console::login::ConsoleSession;
use crate::console::{Nav, html_response, layout, time};
use crate::{AppState, analytics};

/// The window selector's choices (days), as `session-buddy analytics --days`.
const DAY_CHOICES: &[u32] = &[1, 7, 14, 30, 90, 180, 365];

/// A share (0 … 1) as a percentage.
fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A rate the analytics already give in percent (`error_rate`).
fn percent(rate: f64) -> String {
    format!("{rate:.1}%")
}

/// `GET /analytics?days=N&component=X`: the analytics of `/v1/analytics/*`, computed by the
/// same code (`analytics::report`, `analytics::quality_inputs`), as charts and tables.
pub(crate) async fn analytics_page(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    session: Option<Extension<ConsoleSession>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = viewer(&principal, &session);
    let now = Utc::now();
    let map: Map<String, Value> = q
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "days" | "component"))
        .map(|(k, val)| (k.clone(), Value::String(val.clone())))
        .collect();
    // Restricted to what the viewer may see, as the REST analytics are (one rule).
    let params = match analytics::parse_analytics_params(&map, now) {
        Ok(p) => p.visible_to(&crate::auth::Visibility(v.components.clone())),
        Err(e) => return v.fail(StatusCode::BAD_REQUEST, "Bad analytics window", &e),
    };
    if let Some(c) = &params.window.component
        && !v.sees(c)
    {
        return v.fail(
            StatusCode::NOT_FOUND,
            "No such component",
            "This token does not see that component.",
        );
    }
    let report = match session_buddy_store::analytics::report(
        state.store.as_ref(),
        &params.window,
        &params.date_range,
        params.limit,
        now,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            return v.fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage unavailable",
                &e.to_string(),
            );
        }
    };
    let quality = match analytics::quality_inputs(&state, now, v.components.clone()).await {
        Ok((_, q)) => q,
        Err(e) => {
            return v.fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage unavailable",
                &e.to_string(),
            );
        }
    };
    let days = q
        .get("days")
        .and_then(|d| d.parse::<u32>().ok())
        .unwrap_or(analytics::DEFAULT_DAYS);
    let mut m = Html::new();
    m.el("h1", &[], "Analytics");
    m.open(
        "form",
        &[
            ("id", Some("window")),
            ("method", Some("get")),
            ("action", Some("/analytics")),
        ],
    );
    m.el("label", &[("for", Some("days"))], "Window");
    m.open("select", &[("id", Some("days")), ("name", Some("days"))]);
    let mut choices: Vec<u32> = DAY_CHOICES.to_vec();
    if !choices.contains(&days) {
        choices.push(days);
        choices.sort_unstable();
    }
    for d in choices {
        let value = d.to_string();
        let label = if d == 1 {
            "last day".to_string()
        } else {
            format!("last {d} days")
        };
        m.el(
            "option",
            &[
                ("value", Some(&value)),
                ("selected", (d == days).then_some("")),
            ],
            &label,
        );
    }
    m.close("select");
    if let Some(c) = &params.window.component {
        m.hidden("component", c);
    }
    m.raw("<button type=\"submit\">Show</button></form>");
    m.open("p", &[("class", Some("muted"))]);
    m.text(&format!("{}: ", report.date_range));
    time(&mut m, &report.since);
    m.text(" to ");
    time(&mut m, &report.until);
    m.text(&format!(". {} active now.", report.active_sessions));
    m.close("p");

    // Sessions per day (trend): the CLI's buckets, 24 hours each, the last ending now; each
    // is named by the day it ends on, so today's sessions stand under today's date.
    let buckets = params.window.buckets();
    let bars: Vec<(String, f64)> = report
        .trend
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let label = buckets
                .get(i)
                .and_then(|(_, end)| DateTime::<Utc>::from_timestamp_micros(*end))
                .map(|t| t.format("%m-%d").to_string())
                .unwrap_or_default();
            (label, *n as f64)
        })
        .collect();
    m.el("h2", &[], "Sessions per day");
    m.append(&column_chart(
        "Sessions started per 24 hours, the last ending now (UTC dates of each one's end)",
        &bars,
    ));

    // Per-component statistics (the JSON fields of /v1/analytics/sessions).
    m.el("h2", &[], "By component");
    m.open("div", &[("class", Some("scroll"))]);
    m.raw("<table id=\"summary\" class=\"records\"><thead><tr><th scope=\"col\">Component</th><th scope=\"col\">Sessions</th>\
           <th scope=\"col\">Average duration</th><th scope=\"col\">Active</th><th scope=\"col\">Error rate</th>\
           </tr></thead><tbody>");
    for s in &report.session_stats {
        m.open("tr", &[("data-component", Some(&s.component_name))]);
        m.el(
            "th",
            &[
                ("scope", Some("row")),
                ("data-field", Some("component_name")),
            ],
            &s.component_name,
        );
        let cell = |m: &mut Html,
                    field: &'static str,
                    label: &'static str,
                    value: String,
                    shown: String| {
            m.open(
                "td",
                &[
                    ("data-field", Some(field)),
                    ("data-value", Some(&value)),
                    ("data-label", Some(label)),
                    ("class", Some("num")),
                ],
            );
            m.text(&shown);
            m.close("td");
        };
        cell(
            &mut m,
            "total_sessions",
            "Sessions",
            s.total_sessions.to_string(),
            s.total_sessions.to_string(),
        );
        cell(
            &mut m,
            "avg_duration",
            "Average duration",
            s.avg_duration.to_string(),
            text::hms(s.avg_duration),
        );
        cell(
            &mut m,
            "active_sessions",
            "Active",
            s.active_sessions.to_string(),
            s.active_sessions.to_string(),
        );
        cell(
            &mut m,
            "error_rate",
            "Error rate",
            s.error_rate.to_string(),
            percent(s.error_rate),
        );
        m.close("tr");
    }
    m.raw("</tbody></table></div>");
    if report.session_stats.is_empty() {
        m.el(
            "p",
            &[("class", Some("empty"))],
            "No session started in this window.",
        );
    }

    // Duration distribution: average per component.
    m.el("h2", &[], "Average duration of finished sessions (s)");
    let durations: Vec<(String, f64)> = report
        .average_duration
        .iter()
        .map(|(c, d)| (c.clone(), (d * 10.0).round() / 10.0))
        .collect();
    m.append(&row_chart(
        "Average duration per component, seconds",
        &durations,
    ));

    // Component usage.
    m.el("h2", &[], "Most active components");
    m.open("div", &[("class", Some("scroll"))]);
    m.raw("<table id=\"components\" class=\"records\"><thead><tr><th scope=\"col\">Component</th><th scope=\"col\">Sessions</th>\
           <th scope=\"col\">Total duration</th><th scope=\"col\">Quality</th><th scope=\"col\">Last active</th></tr></thead><tbody>");
    for c in &report.components {
        m.open("tr", &[("data-component", Some(&c.component_name))]);
        m.el("th", &[("scope", Some("row"))], &c.component_name);
        td(&mut m, "num", "Sessions", &c.session_count.to_string());
        td(
            &mut m,
            "num",
            "Total duration",
            &text::hms(c.total_duration),
        );
        td(
            &mut m,
            "num",
            "Quality",
            &format!("{:.1}", c.avg_quality_score),
        );
        m.open("td", &[("data-label", Some("Last active"))]);
        match &c.last_active {
            Some(t) => time(&mut m, t),
            None => {
                m.text("-");
            }
        }
        m.close("td").close("tr");
    }
    m.raw("</tbody></table></div>");

    // Error rates and the most common errors.
    m.el("h2", &[], "Error rates");
    let rates: Vec<(String, f64)> = report
        .error_rates
        .iter()
        .map(|(c, e)| (c.clone(), (e.error_rate * 10.0).round() / 10.0))
        .collect();
    m.append(&row_chart("Failed sessions per component, percent", &rates));
    m.open("div", &[("class", Some("scroll"))]);
    m.raw("<table id=\"errors\" class=\"records\"><thead><tr><th scope=\"col\">Component</th><th scope=\"col\">Failed</th>\
           <th scope=\"col\">Sessions</th><th scope=\"col\">Rate</th><th scope=\"col\">Most common error</th></tr></thead><tbody>");
    for (c, e) in &report.error_rates {
        m.open("tr", &[("data-component", Some(c))]);
        m.el("th", &[("scope", Some("row"))], c);
        td(&mut m, "num", "Failed", &e.failed_sessions.to_string());
        td(&mut m, "num", "Sessions", &e.total_sessions.to_string());
        td(&mut m, "num", "Rate", &percent(e.error_rate));
        td(
            &mut m,
            "error-text",
            "Most common error",
            e.most_common_error.as_deref().unwrap_or("-"),
        );
        m.close("tr");
    }
    m.raw("</tbody></table></div>");

    // Quality.
    m.el(
        "h2",
        &[],
        &format!("Quality (last {} days)", analytics::QUALITY_DAYS),
    );
    m.open("div", &[("class", Some("scroll"))]);
    m.raw("<table id=\"quality\" class=\"records\"><thead><tr><th scope=\"col\">Component</th><th scope=\"col\">Score</th>\
           <th scope=\"col\">Clean ends</th><th scope=\"col\">Commands ok</th><th scope=\"col\">Not abandoned</th></tr></thead><tbody>");
    for (c, qi) in quality.iter().filter(|(c, _)| v.sees(c)) {
        m.open("tr", &[("data-component", Some(c))]);
        m.el("th", &[("scope", Some("row"))], c);
        td(&mut m, "num", "Score", &format!("{:.1}", qi.score()));
        td(&mut m, "num", "Clean ends", &pct(qi.clean()));
        td(&mut m, "num", "Commands ok", &pct(qi.commands_ok()));
        td(&mut m, "num", "Not abandoned", &pct(qi.not_abandoned()));
        m.close("tr");
    }
    m.raw("</tbody></table></div>");
    m.el(
        "p",
        &[("class", Some("muted"))],
        session_buddy_store::QUALITY_FORMULA,
    );
    html_response(
        StatusCode::OK,
        layout("Analytics", Nav::Analytics, v.csrf(), &m),
    )
}
