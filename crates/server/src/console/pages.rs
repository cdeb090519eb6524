//! The console's pages: live view, sessions (and their CSV / JSON), a session's page,
//! analytics, status. Each reads the store through the calls the REST API uses (bounded and
//! indexed) and renders with [`Html`], every value escaped.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use session_buddy_events::{Session, SessionStatus, StoredEvent, format_timestamp};
use session_buddy_html::{Html, column_chart, row_chart};
use session_buddy_store::SessionFilter;
use session_buddy_text as text;
use session_buddy_text::sessions::plain;

use super::login::ConsoleSession;
use super::{Nav, error_page, html_response, layout, query_string, time};
use crate::auth::{Principal, visible_components};
use crate::{AppState, analytics, query};

/// Active sessions the live view shows at most (the newest): keeps the first load under
/// 300 KB however many are active (the list has them all).
pub const LIVE_LIMIT: usize = 200;
/// Sessions per page of the list unless `limit` says otherwise.
pub const LIST_PAGE: usize = 50;
/// Timeline events per page of a session's page.
pub const TIMELINE_PAGE: usize = 200;

/// Who is looking: the components they may see and their console session's CSRF token.
struct Viewer {
    components: Option<Vec<String>>,
    csrf: Option<String>,
}

fn viewer(
    principal: &Option<Extension<Principal>>,
    session: &Option<Extension<ConsoleSession>>,
) -> Viewer {
    Viewer {
        components: visible_components(principal.as_ref().map(|p| &p.0)),
        csrf: session.as_ref().map(|s| s.0.csrf.clone()),
    }
}

impl Viewer {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }

    fn sees(&self, component: &str) -> bool {
        crate::auth::may_see(self.components.as_deref(), component)
    }

    fn fail(&self, status: StatusCode, title: &str, message: &str) -> Response {
        error_page(status, title, message, self.csrf())
    }
}

/// The name of a session's latest command, when the record carries it (`last_command`).
fn last_command(s: &Session) -> Option<String> {
    let v = serde_json::to_value(s).ok()?;
    v.get("last_command")?.as_str().map(str::to_string)
}

fn td(h: &mut Html, class: &'static str, label: &'static str, text: &str) {
    h.el(
        "td",
        &[("class", Some(class)), ("data-label", Some(label))],
        text,
    );
}

fn session_link(h: &mut Html, id: &str) {
    let href = format!("/sessions/{id}");
    h.wrap(
        "td",
        &[("class", Some("session")), ("data-label", Some("Session"))],
        |h| {
            h.el("a", &[("href", Some(&href))], id);
        },
    );
}

fn duration_text(s: &Session) -> String {
    s.duration_seconds
        .map(text::hms)
        .unwrap_or_else(|| "-".into())
}

// ---------------------------------------------------------------------------------- live

/// `GET /`: the active sessions, by host, component and user; the script follows
/// `/v1/stream?after=<data-position>`.
pub(crate) async fn live_page(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    session: Option<Extension<ConsoleSession>>,
) -> Response {
    let v = viewer(&principal, &session);
    // Read before the sessions: the stream then re-sends what changed meanwhile (a row
    // updated twice), never misses it.
    let position = state.stream.mark();
    let filter = SessionFilter {
        status: Some(SessionStatus::Active),
        limit: LIVE_LIMIT,
        components: v.components.clone(),
        ..SessionFilter::default()
    };
    let page = match state.store.list_sessions(filter).await {
        Ok(p) => p,
        Err(e) => {
            return v.fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage unavailable",
                &e.to_string(),
            );
        }
    };
    let mut sessions = page.sessions;
    sessions.sort_by(|a, b| {
        (&a.hostname, &a.component, &a.username, b.started_at).cmp(&(
            &b.hostname,
            &b.component,
            &b.username,
            a.started_at,
        ))
    });
    let mut m = Html::new();
    m.el("h1", &[], "Active sessions");
    let hosts: std::collections::BTreeSet<&str> =
        sessions.iter().map(|s| s.hostname.as_str()).collect();
    let users: std::collections::BTreeSet<&str> =
        sessions.iter().map(|s| s.username.as_str()).collect();
    let summary = format!(
        "{}{} active on {} host{}, {} user{}; updates as it happens.",
        sessions.len(),
        if page.next_cursor.is_some() {
            format!(" (the newest {LIVE_LIMIT})")
        } else {
            String::new()
        },
        hosts.len(),
        if hosts.len() == 1 { "" } else { "s" },
        users.len(),
        if users.len() == 1 { "" } else { "s" },
    );
    m.el(
        "p",
        &[("id", Some("live-summary")), ("aria-live", Some("polite"))],
        &summary,
    );
    let position = position.to_string();
    let limit = LIVE_LIMIT.to_string();
    m.open("div", &[("class", Some("scroll"))]);
    m.open(
        "table",
        &[
            ("id", Some("live")),
            ("class", Some("records")),
            ("data-position", Some(&position)),
            ("data-limit", Some(&limit)),
        ],
    );
    m.raw("<thead><tr><th scope=\"col\">Session</th><th scope=\"col\">Host</th><th scope=\"col\">Component</th>\
           <th scope=\"col\">User</th><th scope=\"col\">Started</th><th scope=\"col\">Running</th>\
           <th scope=\"col\">Commands</th><th scope=\"col\">Last command</th></tr></thead><tbody>");
    for s in &sessions {
        let class = (s.status == SessionStatus::Abandoned).then_some("abandoned");
        m.open(
            "tr",
            &[("data-session", Some(&s.session_id)), ("class", class)],
        );
        session_link(&mut m, &s.session_id);
        td(&mut m, "host", "Host", &s.hostname);
        td(&mut m, "component", "Component", &s.component);
        td(&mut m, "user", "User", &s.username);
        m.wrap(
            "td",
            &[("class", Some("started")), ("data-label", Some("Started"))],
            |h| time(h, &s.started_at),
        );
        let running =
            text::hms((Utc::now() - s.started_at).num_milliseconds().max(0) as f64 / 1000.0);
        td(&mut m, "running", "Running", &running);
        td(&mut m, "commands", "Commands", &s.command_count.to_string());
        td(
            &mut m,
            "last-command",
            "Last command",
            &last_command(s).unwrap_or_default(),
        );
        m.close("tr");
    }
    m.raw("</tbody></table></div>");
    m.el(
        "p",
        &[
            ("id", Some("live-empty")),
            ("class", Some("empty")),
            ("hidden", (!sessions.is_empty()).then_some("")),
        ],
        "No session is active.",
    );
    m.el(
        "p",
        &[("id", Some("live-state")), ("class", Some("muted"))],
        "",
    );
    html_response(StatusCode::OK, layout("Live", Nav::Live, v.csrf(), &m))
}

// ------------------------------------------------------------------------------ sessions

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
        m.open(
            "input",
            &[
                ("type", Some("hidden")),
                ("name", Some("limit")),
                ("value", Some(limit)),
            ],
        );
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
        session_link(&mut m, &s.session_id);
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

/// `GET /sessions.csv`: the page the list shows, as CSV (crates/text's writer).
pub(crate) async fn sessions_csv(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    session: Option<Extension<ConsoleSession>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = viewer(&principal, &session);
    match shown_sessions(&state, &v, &q).await {
        Ok(page) => attachment(
            "text/csv; charset=utf-8",
            "attachment; filename=\"sessions.csv\"",
            text::sessions::sessions_csv(&page.sessions),
        ),
        Err(r) => r,
    }
}

/// `GET /sessions.json`: the page the list shows, as `GET /v1/sessions` returns it.
pub(crate) async fn sessions_json(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    session: Option<Extension<ConsoleSession>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = viewer(&principal, &session);
    match shown_sessions(&state, &v, &q).await {
        Ok(page) => attachment(
            "application/json",
            "attachment; filename=\"sessions.json\"",
            serde_json::to_string_pretty(&page).unwrap_or_default(),
        ),
        Err(r) => r,
    }
}

// ------------------------------------------------------------------------------- session

fn record_row(h: &mut Html, label: &str, value: &str) {
    h.el("dt", &[], label).el("dd", &[], value);
}

fn record(h: &mut Html, s: &Session) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    h.open("dl", &[("id", Some("record"))]);
    record_row(h, "Session", &s.session_id);
    let component = match &s.component_version {
        Some(ver) => format!("{} {ver}", s.component),
        None => s.component.clone(),
    };
    record_row(h, "Component", &component);
    record_row(h, "Type", &s.session_type);
    record_row(h, "Status", &s.status.to_string());
    record_row(h, "User", &s.username);
    record_row(h, "Host", &s.hostname);
    record_row(h, "PID", &s.pid.to_string());
    record_row(h, "Shell", &s.shell_type);
    record_row(h, "Platform", &s.platform);
    record_row(h, "Runtime", &opt(&s.runtime_version));
    record_row(h, "Directory", &s.cwd);
    h.el("dt", &[], "Started").open("dd", &[]);
    time(h, &s.started_at);
    h.close("dd");
    h.el("dt", &[], "Ended").open("dd", &[]);
    match &s.ended_at {
        Some(t) => time(h, t),
        None => {
            h.text("-");
        }
    }
    h.close("dd");
    h.el("dt", &[], "Last seen").open("dd", &[]);
    time(h, &s.last_seen_at);
    h.close("dd");
    record_row(h, "Duration", &duration_text(s));
    record_row(h, "Commands", &s.command_count.to_string());
    record_row(h, "Errors", &s.error_count.to_string());
    record_row(
        h,
        "Exit code",
        &s.exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into()),
    );
    record_row(h, "End reason", &opt(&s.end_reason));
    h.close("dl");
}

/// One timeline item: time, kind and what it says.
fn timeline_item(h: &mut Html, e: &StoredEvent) {
    let p = &e.payload;
    let summary = text::sessions::event_summary(&e.event_type, p);
    let (class, kind) = match e.event_type.as_str() {
        "session_start" => ("event start", "start"),
        "command" if summary.success == Some(false) => ("event command failed", "command"),
        "command" => ("event command", "command"),
        "session_end" => ("event end", "end"),
        other => ("event", other),
    };
    let detail = (e.event_type == "command").then(|| {
        let mut detail = match summary.success {
            Some(true) => "ok".to_string(),
            Some(false) => "failed".to_string(),
            None => String::new(),
        };
        if let Some(secs) = summary.duration_secs {
            detail.push_str(&format!(" in {}", text::hms(secs)));
        }
        if let Some(err) = &summary.error {
            detail.push_str(": ");
            detail.push_str(err);
        }
        detail.trim().to_string()
    });
    let what = summary.what;
    h.open(
        "li",
        &[("class", Some(class)), ("data-event", Some(&e.event_id))],
    );
    time(h, &e.timestamp);
    h.el("span", &[("class", Some("kind"))], kind);
    h.el("code", &[("class", Some("what"))], &what);
    if let Some(d) = detail.filter(|d| !d.is_empty()) {
        h.el("span", &[("class", Some("detail"))], &d);
    }
    h.close("li");
}

fn heartbeats(h: &mut Html, run: &[&StoredEvent]) {
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return;
    };
    h.open("li", &[("class", Some("heartbeats"))]);
    time(h, &first.timestamp);
    h.el("span", &[("class", Some("kind"))], "heartbeats");
    let what = if run.len() == 1 {
        "1 heartbeat".to_string()
    } else {
        format!(
            "{} heartbeats over {}",
            run.len(),
            text::hms((last.timestamp - first.timestamp).num_milliseconds() as f64 / 1000.0)
        )
    };
    h.el("span", &[("class", Some("what"))], &what);
    h.close("li");
}

/// `GET /sessions/{id}`: the record and a page of the timeline (`?page=`).
pub(crate) async fn session_page(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    session: Option<Extension<ConsoleSession>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = viewer(&principal, &session);
    if !session_buddy_events::is_valid_session_id(&id) {
        return v.fail(
            StatusCode::BAD_REQUEST,
            "Not a session id",
            "Session ids contain only letters, digits, '-' and '_'.",
        );
    }
    let page: usize = match q.get("page").map(|p| p.parse::<usize>()) {
        None => 1,
        Some(Ok(n)) if (1..=100_000).contains(&n) => n,
        Some(_) => {
            return v.fail(
                StatusCode::BAD_REQUEST,
                "Bad page",
                "page must be a number from 1 to 100000.",
            );
        }
    };
    let s = match state.store.get_session(&id).await {
        Ok(Some(s)) if v.sees(&s.component) => s,
        Ok(_) => {
            return v.fail(
                StatusCode::NOT_FOUND,
                "No such session",
                &format!("No session '{id}' (its start may not have arrived yet)."),
            );
        }
        Err(e) => {
            return v.fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage unavailable",
                &e.to_string(),
            );
        }
    };
    let mut events = match state
        .store
        .session_timeline(&id, (page - 1) * TIMELINE_PAGE, TIMELINE_PAGE + 1)
        .await
    {
        Ok(e) => e,
        Err(e) => {
            return v.fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage unavailable",
                &e.to_string(),
            );
        }
    };
    let more = events.len() > TIMELINE_PAGE;
    events.truncate(TIMELINE_PAGE);
    let mut m = Html::new();
    m.open("p", &[("class", Some("crumbs"))])
        .el("a", &[("href", Some("/sessions"))], "← Sessions")
        .close("p");
    m.open("h1", &[])
        .text("Session ")
        .el("code", &[], &s.session_id)
        .close("h1");
    let status = s.status.to_string();
    let badge = format!("badge status-{status}");
    m.el("p", &[("class", Some(&badge))], &status);
    record(&mut m, &s);
    if !s.metadata.is_empty() {
        m.el("h2", &[], "Metadata");
        m.el(
            "pre",
            &[("id", Some("metadata"))],
            &serde_json::to_string_pretty(&s.metadata).unwrap_or_default(),
        );
    }
    m.el(
        "h2",
        &[],
        if page > 1 {
            "Timeline (continued)"
        } else {
            "Timeline"
        },
    );
    m.open("ol", &[("id", Some("timeline"))]);
    let mut run: Vec<&StoredEvent> = Vec::new();
    for e in &events {
        if e.event_type == "heartbeat" {
            run.push(e);
            continue;
        }
        heartbeats(&mut m, &run);
        run.clear();
        timeline_item(&mut m, e);
    }
    heartbeats(&mut m, &run);
    m.close("ol");
    if events.is_empty() {
        m.el("p", &[("class", Some("empty"))], "No events on this page.");
    }
    m.open(
        "nav",
        &[
            ("class", Some("pager")),
            ("aria-label", Some("Timeline pages")),
        ],
    );
    if page > 1 {
        let href = format!("/sessions/{id}?page={}", page - 1);
        m.el(
            "a",
            &[("rel", Some("prev")), ("href", Some(&href))],
            "← Earlier",
        );
    }
    if more {
        let href = format!("/sessions/{id}?page={}", page + 1);
        m.el(
            "a",
            &[("rel", Some("next")), ("href", Some(&href))],
            "Later →",
        );
    }
    m.close("nav");
    html_response(
        StatusCode::OK,
        layout(&format!("Session {id}"), Nav::Sessions, v.csrf(), &m),
    )
}

// ----------------------------------------------------------------------------- analytics

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
        m.open(
            "input",
            &[
                ("type", Some("hidden")),
                ("name", Some("component")),
                ("value", Some(c)),
            ],
        );
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

// -------------------------------------------------------------------------------- status

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
