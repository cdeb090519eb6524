//! `GET /sessions`: the searchable list, and its CSV and JSON downloads.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use session_buddy_events::format_timestamp;
use session_buddy_html::Html;
use session_buddy_store::SessionFilter;
use session_buddy_text as text;

use super::{LIST_PAGE, Viewer, duration_text, session_link, td, viewer};
use crate::auth::Principal;
use crate::console::login::ConsoleSession;
use crate::console::{Nav, html_response, layout, query_string, time};
use crate::{AppState, query};

/// The list's filters as the form and the URL hold them, in the form's order.
const FORM_FIELDS: &[(&str, &str, &str)] = &[
    ("q", "Search", "id, user, host, component"),
    ("type", "Type", "admin_shell"),
    ("component", "Component", ""),
    ("user", "User", ""),
    ("host", "Host", ""),
    ("status", "Status", ""),
    ("after", "Started after", "today, this-week, 2026-02-06"),
    ("before", "Started before", "yesterday, 2026-02-06 12:00"),
    ("min_duration", "Min. duration (s)", ""),
];

/// Reads the list's query into a filter: the REST API's parsing ([`query::parse_session_filter`]),
/// with `after` / `before` also in the forms a person types (the CLI's keywords, UTC).
fn list_filter(q: &HashMap<String, String>, v: &Viewer) -> Result<SessionFilter, String> {
    let mut map = Map::new();
    for (k, value) in q {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let value = if k == "after" || k == "before" {
            session_buddy_events::parse_user_time(value, true)
                .map(|t| format_timestamp(&t))
                .map_err(|e| format!("{k}: {e}"))?
        } else {
            value.to_string()
        };
        map.insert(k.clone(), Value::String(value));
    }
    if !map.contains_key("limit") {
        map.insert("limit".into(), Value::String(LIST_PAGE.to_string()));
    }
    let mut filter = query::parse_session_filter(&map)?;
    filter.components = v.components.clone();
    Ok(filter)
}

/// The query of the list without `cursor` (filters and limit), in a stable order.
fn filters_only(q: &HashMap<String, String>) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = q
        .iter()
        .filter(|(k, v)| k.as_str() != "cursor" && !v.trim().is_empty())
        .map(|(k, v)| (k.as_str(), v.trim()))
        .collect();
    pairs.sort();
    pairs
}

fn filter_form(m: &mut Html, q: &HashMap<String, String>) {
    m.open(
        "form",
        &[
            ("id", Some("filters")),
            ("method", Some("get")),
            ("action", Some("/sessions")),
        ],
    );
    for (name, label, placeholder) in FORM_FIELDS {
        let value = q.get(*name).map(String::as_str).unwrap_or("");
        let id = format!("f-{name}");
        m.open("div", &[("class", Some("field"))]);
        m.el("label", &[("for", Some(&id))], label);
        if *name == "status" {
            m.open("select", &[("id", Some(&id)), ("name", Some("status"))]);
            for option in ["", "active", "ended", "abandoned"] {
                let selected = (option == value).then_some("");
                let shown = if option.is_empty() { "any" } else { option };
                m.el(
                    "option",
                    &[("value", Some(option)), ("selected", selected)],
                    shown,
                );
            }
            m.close("select");
        } else {
            let kind = match *name {
                "q" => "search",
                "min_duration" => "number",
                _ => "text",
            };
            m.open(
                "input",
                &[
                    ("id", Some(&id)),
                    ("name", Some(name)),
                    ("type", Some(kind)),
                    ("value", Some(value)),
                    (
                        "placeholder",
                        (!placeholder.is_empty()).then_some(*placeholder),
                    ),
                    ("min", (*name == "min_duration").then_some("0")),
                    ("step", (*name == "min_duration").then_some("any")),
                ],
            );
        }
        m.close("div");
    }
    if let Some(limit) = q.get("limit").filter(|l| !l.is_empty()) {
        m.hidden("limit", limit);
    }
    m.raw("<div class=\"actions\"><button type=\"submit\">Filter</button> <a href=\"/sessions\">Clear</a></div></form>");
}

/// `GET /sessions`: the searchable list, filters in the URL, cursor paging, downloads.
pub(crate) async fn sessions_page(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    session: Option<Extension<ConsoleSession>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = viewer(&principal, &session);
    let mut m = Html::new();
    m.el("h1", &[], "Sessions");
    filter_form(&mut m, &q);
    let filter = match list_filter(&q, &v) {
        Ok(f) => f,
        Err(e) => {
            m.el(
                "p",
                &[("class", Some("error")), ("role", Some("alert"))],
                &e,
            );
            return html_response(
                StatusCode::BAD_REQUEST,
                layout("Sessions", Nav::Sessions, v.csrf(), &m),
            );
        }
    };
    let page = match state.store.list_sessions(filter).await {
        Ok(p) => p,
        Err(e) => {
            m.el(
                "p",
                &[("class", Some("error")), ("role", Some("alert"))],
                &e.to_string(),
            );
            return html_response(
                StatusCode::BAD_REQUEST,
                layout("Sessions", Nav::Sessions, v.csrf(), &m),
            );
        }
    };
    let all: Vec<(&str, &str)> = {
        let mut p = filters_only(&q);
        if let Some(c) = q.get("cursor").filter(|c| !c.is_empty()) {
            p.push(("cursor", c.as_str()));
        }
        p
    };
    let shown = query_string(all.iter().copied());
    m.open("p", &[("class", Some("downloads"))]);
    m.text(&format!(
        "{} session{} shown. Download: ",
        page.sessions.len(),
        if page.sessions.len() == 1 { "" } else { "s" }
    ));
    m.el(
        "a",
        &[
            ("id", Some("download-csv")),
            ("href", Some(&format!("/sessions.csv{shown}"))),
            ("download", Some("sessions.csv")),
        ],
        "CSV",
    );
    m.raw(" · ");
    m.el(
        "a",
        &[
            ("id", Some("download-json")),
            ("href", Some(&format!("/sessions.json{shown}"))),
            ("download", Some("sessions.json")),
        ],
        "JSON",
    );
    m.close("p");
    m.open("div", &[("class", Some("scroll"))]);
    m.raw("<table id=\"sessions\" class=\"records\"><thead><tr><th scope=\"col\">Session</th><th scope=\"col\">Component</th>\
           <th scope=\"col\">Type</th><th scope=\"col\">Status</th><th scope=\"col\">User</th><th scope=\"col\">Host</th>\
           <th scope=\"col\">Started</th><th scope=\"col\">Duration</th><th scope=\"col\">Commands</th><th scope=\"col\">Errors</th>\
           </tr></thead><tbody>");
    for s in &page.sessions {
        let status = s.status.to_string();
        let class = format!("status-{status}");
        m.open(
            "tr",
            &[
                ("data-session", Some(&s.session_id)),
                ("class", Some(&class)),
            ],
        );
        session_link(&mut m, s);
        td(&mut m, "component", "Component", &s.component);
        td(&mut m, "type", "Type", &s.session_type);
        td(&mut m, "status", "Status", &status);
        td(&mut m, "user", "User", &s.username);
        td(&mut m, "host", "Host", &s.hostname);
        m.wrap(
            "td",
            &[("class", Some("started")), ("data-label", Some("Started"))],
            |h| time(h, &s.started_at),
        );
        td(&mut m, "duration num", "Duration", &duration_text(s));
        td(
            &mut m,
            "commands num",
            "Commands",
            &s.command_count.to_string(),
        );
        let errors = s.error_count.to_string();
        let class = if s.error_count > 0 {
            "errors num failed"
        } else {
            "errors num"
        };
        m.el(
            "td",
            &[("class", Some(class)), ("data-label", Some("Errors"))],
            &errors,
        );
        m.close("tr");
    }
    m.raw("</tbody></table></div>");
    if page.sessions.is_empty() {
        m.el(
            "p",
            &[("class", Some("empty"))],
            "No session matches these filters.",
        );
    }
    if let Some(next) = &page.next_cursor {
        let mut p = filters_only(&q);
        p.push(("cursor", next.as_str()));
        let href = format!("/sessions{}", query_string(p));
        m.open(
            "nav",
            &[("class", Some("pager")), ("aria-label", Some("Pages"))],
        );
        m.el(
            "a",
            &[("rel", Some("next")), ("href", Some(&href))],
            "Older sessions →",
        );
        m.close("nav");
    }
    html_response(
        StatusCode::OK,
        layout("Sessions", Nav::Sessions, v.csrf(), &m),
    )
}

async fn shown_sessions(
    state: &AppState,
    v: &Viewer,
    q: &HashMap<String, String>,
) -> Result<session_buddy_events::SessionPage, Response> {
    let bad = |e: String| {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            e,
        )
            .into_response()
    };
    let filter = list_filter(q, v).map_err(bad)?;
    state
        .store
        .list_sessions(filter)
        .await
        .map_err(|e| bad(e.to_string()))
}

fn attachment(content_type: &'static str, name: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The downloads of what the list shows.
#[derive(Clone, Copy)]
enum Download {
    Csv,
    Json,
}

/// The page the list shows as a file: CSV (crates/text's writer) or JSON (as
/// `GET /v1/sessions` returns it).
async fn download(
    state: &AppState,
    v: &Viewer,
    q: &HashMap<String, String>,
    kind: Download,
) -> Response {
    let page = match shown_sessions(state, v, q).await {
        Ok(page) => page,
        Err(r) => return r,
    };
    match kind {
        Download::Csv => attachment(
            "text/csv; charset=utf-8",
            "attachment; filename=\"sessions.csv\"",
            text::sessions::sessions_csv(&page.sessions),
        ),
        Download::Json => attachment(
            "application/json",
            "attachment; filename=\"sessions.json\"",
            serde_json::to_string_pretty(&page).unwrap_or_default(),
        ),
    }
}

/// `GET /sessions.csv`.
pub(crate) async fn sessions_csv(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    session: Option<Extension<ConsoleSession>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    download(&state, &viewer(&principal, &session), &q, Download::Csv).await
}

/// `GET /sessions.json`.
pub(crate) async fn sessions_json(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    session: Option<Extension<ConsoleSession>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    download(&state, &viewer(&principal, &session), &q, Download::Json).await
}
