//! The console's pages: live view, sessions (and their CSV / JSON), a session's page,
//! analytics, status. Each reads the store through the calls the REST API uses (bounded and
//! indexed) and renders with [`Html`], every value escaped.

mod analytics_page;
mod list;
mod live;
mod session;
mod status;

pub(crate) use analytics_page::analytics_page;
pub(crate) use list::{sessions_csv, sessions_json, sessions_page};
pub(crate) use live::live_page;
pub(crate) use session::{recording_cast, session_page};
pub(crate) use status::status_page;

use axum::Extension;
use axum::http::StatusCode;
use axum::response::Response;
use session_buddy_events::Session;
use session_buddy_html::Html;
use session_buddy_text as text;

use super::error_page;
use super::login::ConsoleSession;
use crate::auth::{Principal, visible_components};

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

/// The session cell: a link to its page, and a mark when it has a terminal recording.
fn session_link(h: &mut Html, s: &Session) {
    let id = &s.session_id;
    let href = format!("/sessions/{id}");
    h.wrap(
        "td",
        &[("class", Some("session")), ("data-label", Some("Session"))],
        |h| {
            h.el("a", &[("href", Some(&href))], id);
            if s.has_recording {
                h.raw(" ");
                h.el(
                    "span",
                    &[
                        ("class", Some("recorded")),
                        ("title", Some("this session's terminal was recorded")),
                    ],
                    "● rec",
                );
            }
        },
    );
}

fn duration_text(s: &Session) -> String {
    s.duration_seconds
        .map(text::hms)
        .unwrap_or_else(|| "-".into())
}

/// One `dt`/`dd` pair of a record.
fn record_row(h: &mut Html, label: &str, value: &str) {
    h.el("dt", &[], label).el("dd", &[], value);
}
