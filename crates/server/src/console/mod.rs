//! The web console: server-rendered pages under `/` (live view, sessions, a session's page,
//! analytics, status, login), their embedded assets and the console's login sessions.
//!
//! Pages are built with [`session_buddy_html::Html`] (every value escaped), styled by one CSS
//! file and driven by one vanilla script, both embedded in the binary and served under a name
//! holding their content hash (cached for a year). Every response of the server carries a
//! strict Content-Security-Policy ([`secure`]): no inline script or style.
//!
//! DOM contract (the browser tests rely on it): docs/console.md.

mod login;
mod pages;

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use session_buddy_html::Html;

pub use login::{ConsoleSessions, MAX_CONSOLE_SESSIONS};
pub(crate) use login::{console_principal, login_form, login_submit, logout};
pub(crate) use pages::{
    analytics_page, live_page, recording_cast, session_page, sessions_csv, sessions_json,
    sessions_page, status_page,
};

/// The Content-Security-Policy of every response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
base-uri 'none'";

/// Marks a request that came over TLS (the console's cookies are then `Secure`).
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

struct Asset {
    name: String,
    content_type: &'static str,
    body: &'static [u8],
}

/// FNV-1a, 64 bits: a content hash for asset names (not a security boundary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn asset(stem: &str, ext: &str, content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        name: format!("{stem}.{:016x}.{ext}", fnv1a(body)),
        content_type,
        body,
    }
}

static ASSETS: LazyLock<[Asset; 3]> = LazyLock::new(|| {
    [
        asset(
            "console",
            "css",
            "text/css; charset=utf-8",
            include_bytes!("assets/console.css"),
        ),
        asset(
            "console",
            "js",
            "text/javascript; charset=utf-8",
            include_bytes!("assets/console.js"),
        ),
        asset(
            "player",
            "js",
            "text/javascript; charset=utf-8",
            include_bytes!("assets/player.js"),
        ),
    ]
});

/// The served path of the recording player's script, loaded only by a page with a player.
pub fn player_path() -> String {
    format!("/assets/{}", ASSETS[2].name)
}

/// The served paths of the stylesheet and the script (`/assets/console.<hash>.css|js`).
pub fn asset_paths() -> (String, String) {
    (
        format!("/assets/{}", ASSETS[0].name),
        format!("/assets/{}", ASSETS[1].name),
    )
}

/// Bytes a first load transfers besides the page itself: the stylesheet and the script (the
/// player's script loads only with a recording).
pub fn asset_bytes() -> usize {
    ASSETS[..2].iter().map(|a| a.body.len()).sum()
}

/// `GET /assets/{file}`: an embedded asset under its hashed name, cached for a year.
pub(crate) async fn serve_asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// Whether a response is one of the API's JSON answers.
fn is_json(h: &axum::http::HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Adds `nosniff` to every response, and the CSP and its companions to every one but the
/// API's JSON answers, unless a handler set them (the server's middleware calls it last).
pub(crate) fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    let json = is_json(h);
    let mut set = |name: header::HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // A JSON answer of the API is never rendered (nosniff): the rest of the set, some 280
    // bytes, would be paid by every ingest request for nothing.
    if !json {
        set(header::CONTENT_SECURITY_POLICY, CSP);
        set(header::REFERRER_POLICY, "same-origin");
        set(header::X_FRAME_OPTIONS, "DENY");
    }
    response
}

/// Which page the navigation marks as current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Live,
    Sessions,
    Analytics,
    Status,
    None,
}

/// A whole page: head (the hashed assets), navigation (with a logout button for a console
/// session, whose CSRF token it carries), `main`.
pub(crate) fn layout(title: &str, nav: Nav, csrf: Option<&str>, main: &Html) -> Html {
    let (css, js) = asset_paths();
    let mut h = Html::new();
    h.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .el("title", &[], &format!("{title} · Session-Buddy"))
        .open("link", &[("rel", Some("stylesheet")), ("href", Some(&css))])
        .open("script", &[("src", Some(&js)), ("defer", Some(""))])
        .close("script")
        .raw("</head><body><a class=\"skip\" href=\"#main\">Skip to content</a>")
        .raw("<header><nav aria-label=\"Console\"><span class=\"brand\">Session-Buddy</span><ul>");
    for (which, href, label) in [
        (Nav::Live, "/", "Live"),
        (Nav::Sessions, "/sessions", "Sessions"),
        (Nav::Analytics, "/analytics", "Analytics"),
        (Nav::Status, "/status", "Status"),
    ] {
        let current = (which == nav).then_some("page");
        h.wrap("li", &[], |h| {
            h.el(
                "a",
                &[("href", Some(href)), ("aria-current", current)],
                label,
            );
        });
    }
    h.raw("</ul>");
    if let Some(csrf) = csrf {
        h.wrap(
            "form",
            &[
                ("method", Some("post")),
                ("action", Some("/logout")),
                ("class", Some("logout")),
            ],
            |h| {
                h.hidden("csrf", csrf)
                    .el("button", &[("type", Some("submit"))], "Log out");
            },
        );
    }
    h.raw("</nav></header><main id=\"main\">")
        .append(main)
        .raw("</main></body></html>\n");
    h
}

/// An HTML response (no caching: pages show live data).
pub(crate) fn html_response(status: StatusCode, page: Html) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page.into_string(),
    )
        .into_response()
}

/// A page that says what went wrong, in `.error`.
pub(crate) fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    csrf: Option<&str>,
) -> Response {
    let mut main = Html::new();
    main.el("h1", &[], title).el(
        "p",
        &[("class", Some("error")), ("role", Some("alert"))],
        message,
    );
    html_response(status, layout(title, Nav::None, csrf, &main))
}

/// `<time datetime="…Z">` in UTC; the script shows it in the viewer's zone (UTC in `title`).
pub(crate) fn time(h: &mut Html, t: &chrono::DateTime<chrono::Utc>) {
    let iso = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    h.el(
        "time",
        &[("datetime", Some(&iso))],
        &t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    );
}

/// `application/x-www-form-urlencoded` / query-string encoding of one value.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from pairs (empty values left out), with a leading `?` unless empty.
pub(crate) fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let q: Vec<String> = pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_named_by_their_content_and_the_query_is_encoded() {
        let (css, js) = asset_paths();
        assert!(
            css.starts_with("/assets/console.") && css.ends_with(".css"),
            "{css}"
        );
        assert!(js.ends_with(".js"));
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(
            query_string([("q", "a b&c"), ("user", ""), ("host", "h")]),
            "?q=a%20b%26c&host=h"
        );
        assert!(asset_bytes() < 300 * 1024);
    }
}
