//! `GET /`: the live view.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use session_buddy_events::SessionStatus;
use session_buddy_html::Html;
use session_buddy_store::SessionFilter;
use session_buddy_text as text;

use super::{LIVE_LIMIT, last_command, session_link, td, viewer};
use crate::AppState;
use crate::auth::Principal;
use crate::console::login::ConsoleSession;
use crate::console::{Nav, html_response, layout, time};

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
        session_link(&mut m, s);
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
