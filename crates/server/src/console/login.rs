//! Console login (contract 5): with a secret, `POST /login` exchanges a `read` token for a
//! server-side console session — a random 256-bit id in an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` under TLS), an idle timeout and an absolute lifetime no longer than the
//! token's. Revocation and `POST /logout` end it at once. The session authorises the console
//! pages and `/v1/stream` only (the auth layer decides, [`crate::routes::cookie_allowed`]).
//!
//! CSRF: the login form and the logout button carry a token that must match (a cookie for
//! login, the server-side session for logout), and a browser's `Origin` / `Sec-Fetch-Site`
//! must name this site.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use session_buddy_events::auth::{Claims, Scope};
use session_buddy_html::Html;
use session_buddy_token::TokenError;

use super::{Nav, OverTls, html_response, layout};
use crate::AppState;
use crate::auth::{Guard, Principal};

/// Console sessions held in memory at most; the least recently used goes first.
pub const MAX_CONSOLE_SESSIONS: usize = 10_000;
/// A console session unused this long ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A console session ends this long after login at the latest (sooner when its token expires).
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(12 * 3600);

const SESSION_COOKIE: &str = "sb_console";
const LOGIN_CSRF_COOKIE: &str = "sb_login_csrf";

struct Entry {
    claims: Arc<Claims>,
    csrf: String,
    last_used: Instant,
    ends: Instant,
}

/// The console sessions of this server (in memory: a restart logs everybody out).
pub struct ConsoleSessions {
    map: Mutex<HashMap<String, Entry>>,
}

impl Default for ConsoleSessions {
    fn default() -> Self {
        Self::new()
    }
}

/// 256 random bits as 64 hex digits.
fn random_id() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source: refuse to issue guessable ids.
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a console session the claims allow ends: the absolute lifetime or the token's `exp`.
fn ends_for(claims: &Claims, now: Instant) -> Instant {
    let left = claims.exp - chrono::Utc::now().timestamp();
    let token_left = Duration::from_secs(u64::try_from(left).unwrap_or(0));
    now + ABSOLUTE_LIFETIME.min(token_left)
}

impl ConsoleSessions {
    pub fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }

    /// How many console sessions are held.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new session for `claims`: `(id, csrf token, lifetime)`; `None` without entropy.
    fn create(&self, claims: Claims) -> Option<(String, String, Duration)> {
        let (id, csrf) = (random_id(), random_id());
        if id.is_empty() || csrf.is_empty() {
            return None;
        }
        let now = Instant::now();
        let ends = ends_for(&claims, now);
        let mut map = self.map.lock().ok()?;
        if map.len() >= MAX_CONSOLE_SESSIONS {
            map.retain(|_, e| e.ends > now && now.duration_since(e.last_used) < IDLE_TIMEOUT);
        }
        while map.len() >= MAX_CONSOLE_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(
            id.clone(),
            Entry {
                claims: Arc::new(claims),
                csrf: csrf.clone(),
                last_used: now,
                ends,
            },
        );
        Some((id, csrf, ends - now))
    }

    /// The live session `id`: its claims and CSRF token (and it counts as used). An idle,
    /// expired or revoked one is removed.
    fn lookup(&self, id: &str, guard: &Guard) -> Option<(Arc<Claims>, String)> {
        let now = Instant::now();
        let mut map = self.map.lock().ok()?;
        let entry = map.get_mut(id)?;
        let over = entry.ends <= now
            || now.duration_since(entry.last_used) >= IDLE_TIMEOUT
            || entry.claims.exp <= chrono::Utc::now().timestamp()
            || guard.is_revoked(&entry.claims.jti);
        if over {
            map.remove(id);
            return None;
        }
        entry.last_used = now;
        Some((entry.claims.clone(), entry.csrf.clone()))
    }

    fn remove(&self, id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(id);
        }
    }
}

/// The value of cookie `name` in `headers`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The console session of a request (cookie), for the auth layer.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleSession {
    pub id: String,
    pub csrf: String,
}

/// Authenticates a request by its console cookie: the principal (the token's claims) and the
/// session, or `None` when there is no live console session.
pub(crate) fn console_principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<(Principal, ConsoleSession)> {
    let id = cookie(headers, SESSION_COOKIE).filter(|v| v.len() == 64)?;
    let (claims, csrf) = state.console.lookup(id, &state.guard)?;
    Some((
        Principal(claims),
        ConsoleSession {
            id: id.to_string(),
            csrf,
        },
    ))
}

/// Whether a browser says this form post comes from this site: `Sec-Fetch-Site` (when sent)
/// is `same-origin`, and `Origin` (when sent) is this server's own (`Host` and scheme).
fn same_origin(headers: &HeaderMap, tls: bool) -> bool {
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return false;
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            let scheme = if tls { "https" } else { "http" };
            origin.to_str().ok() == Some(&format!("{scheme}://{host}"))
        }
    }
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The login page, with a fresh CSRF token (in a cookie and in the form) and `error` in `.error`.
fn login_page(status: StatusCode, error: Option<&str>, tls: bool) -> Response {
    let csrf = random_id();
    let mut main = Html::new();
    main.el("h1", &[], "Log in");
    main.el(
        "p",
        &[],
        "This server requires a token with the read scope (session-buddy token create --scope read). \
         It stays on the server: the console keeps only a session cookie.",
    );
    if let Some(e) = error {
        main.el("p", &[("class", Some("error")), ("role", Some("alert"))], e);
    }
    main.wrap(
        "form",
        &[
            ("id", Some("login")),
            ("method", Some("post")),
            ("action", Some("/login")),
        ],
        |h| {
            h.hidden("csrf", &csrf)
                .el("label", &[("for", Some("token"))], "Token")
                .open(
                    "input",
                    &[
                        ("id", Some("token")),
                        ("name", Some("token")),
                        ("type", Some("password")),
                        ("autocomplete", Some("off")),
                        ("required", Some("")),
                        ("autofocus", Some("")),
                    ],
                )
                .el("button", &[("type", Some("submit"))], "Log in");
        },
    );
    let mut response = html_response(status, layout("Log in", Nav::None, None, &main));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &csrf, "/login", 3600, tls),
    );
    response
}

/// `GET /login`: the form (without a secret there is nothing to log in to: the live view).
pub(crate) async fn login_form(State(state): State<AppState>, req: Request) -> Response {
    if !state.guard.enabled() {
        return Redirect::to("/").into_response();
    }
    let tls = req.extensions().get::<OverTls>().is_some();
    login_page(StatusCode::OK, None, tls)
}

/// What a person is told when a token does not log in.
fn refusal(e: &TokenError) -> String {
    match e {
        TokenError::Expired => "This token has expired; ask for a new one.".into(),
        TokenError::Revoked(_) => "This token has been revoked.".into(),
        TokenError::BadSignature => {
            "This token was not issued by this server (its signature does not match).".into()
        }
        TokenError::Missing => "Paste a token.".into(),
        other => format!("This is not a valid token: {other}."),
    }
}

/// `POST /login` (form: `csrf`, `token`): a console session, then the live view.
pub(crate) async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    tls: Option<axum::Extension<OverTls>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !state.guard.enabled() {
        return Redirect::to("/").into_response();
    }
    let tls = tls.is_some();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let csrf_ok =
        cookie(&headers, LOGIN_CSRF_COOKIE).is_some_and(|c| !c.is_empty() && c == field("csrf"));
    if !same_origin(&headers, tls) || !csrf_ok {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("The login form expired or came from another site; please try again."),
            tls,
        );
    }
    let claims = match state.guard.authenticate(Some(field("token").trim())) {
        Ok(Some(c)) => c,
        Ok(None) => return Redirect::to("/").into_response(),
        Err(e) => return login_page(StatusCode::UNAUTHORIZED, Some(&refusal(&e)), tls),
    };
    if !claims.allows(Scope::Read) {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("This token lacks the read scope the console needs."),
            tls,
        );
    }
    let Some((id, _, lifetime)) = state.console.create(claims) else {
        return login_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The server cannot create a console session (no entropy source)."),
            tls,
        );
    };
    let mut response = Redirect::to("/").into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, "/", lifetime.as_secs().max(1), tls),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, "", "/login", 0, tls),
    );
    response
}

/// `POST /logout` (form: `csrf`): ends the console session at once.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Option<axum::Extension<ConsoleSession>>,
    tls: Option<axum::Extension<OverTls>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let tls = tls.is_some();
    let Some(axum::Extension(session)) = session else {
        return Redirect::to(if state.guard.enabled() { "/login" } else { "/" }).into_response();
    };
    let csrf = form.get("csrf").map(String::as_str).unwrap_or("");
    if !same_origin(&headers, tls) || csrf != session.csrf {
        return super::error_page(
            StatusCode::FORBIDDEN,
            "Not logged out",
            "The logout request did not come from this console; use its Log out button.",
            Some(&session.csrf),
        );
    }
    state.console.remove(&session.id);
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/", 0, tls),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_256_random_bits_and_cookies_are_read_by_name() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; sb_console=abc ; y=2"),
        );
        assert_eq!(cookie(&h, "sb_console"), Some("abc"));
        assert_eq!(cookie(&h, "z"), None);
        let c = set_cookie("n", "v", "/", 5, true);
        assert_eq!(
            c.to_str().unwrap_or(""),
            "n=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=5; Secure"
        );
    }

    #[test]
    fn a_cross_site_post_is_not_same_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8678"));
        assert!(same_origin(&h, false));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8678"),
        );
        assert!(same_origin(&h, false));
        assert!(!same_origin(&h, true));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h, false));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h, false));
    }
}
