//! The server's REST routes, once: each route's method, path, who may call it and what it
//! does. [`crate::app`] builds the router from [`ROUTES`], the auth layer reads the scope a
//! call needs from it, and `GET /v1/routes` serves it (with the running flags applied), which
//! is what fastblocks' `routes` helper shows.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::{Value, json};
use session_buddy_events::auth::Scope;

use crate::{AppState, admin, analytics, auth, console, ingest, query, recording, stream};

/// Who may call a route once the server has a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Never needs a token.
    Public,
    /// Needs a token holding this scope (`admin` holds every scope).
    Scope(Scope),
    /// `/metrics`: public, or `read` with `--metrics-require-auth`.
    Metrics,
    /// A console page: a console session (cookie, see [`crate::console`]) or a `read`
    /// token; without either a browser is sent to `/login`.
    Console,
}

impl Access {
    /// The scope a call needs under the running flags; `None`: public.
    pub fn scope(self, metrics_require_auth: bool) -> Option<Scope> {
        match self {
            Self::Public => None,
            Self::Scope(s) => Some(s),
            Self::Metrics => metrics_require_auth.then_some(Scope::Read),
            Self::Console => Some(Scope::Read),
        }
    }
}

/// One REST route.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub what: &'static str,
    /// The handler, on the route's method.
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

impl Route {
    /// Whether a request with `method` is served by this route (`HEAD` by `GET` routes).
    fn serves(&self, method: &Method) -> bool {
        self.method == method || (self.method == Method::GET && method == Method::HEAD)
    }

    pub(crate) fn method_router(&self) -> MethodRouter<AppState> {
        let filter = MethodFilter::try_from(self.method.clone()).unwrap_or(MethodFilter::GET);
        (self.handler)(filter)
    }
}

const EMIT: Access = Access::Scope(Scope::Emit);
const READ: Access = Access::Scope(Scope::Read);
const ADMIN: Access = Access::Scope(Scope::Admin);
const RECORDINGS: Access = Access::Scope(Scope::Recordings);

/// The live feed (`GET /v1/stream`): besides a `read` token, a console session may read it.
pub const STREAM_PATH: &str = "/v1/stream";

/// Whether a console session (cookie) may stand in for a token on this call: the console's
/// own routes and the stream only — never ingest, admin or the other `/v1` routes.
pub(crate) fn cookie_allowed(method: &Method, matched: Option<&str>) -> bool {
    let Some(matched) = matched else {
        return false;
    };
    (matched == STREAM_PATH && (method == Method::GET || method == Method::HEAD))
        || ROUTES
            .iter()
            .any(|r| r.path == matched && r.serves(method) && r.access == Access::Console)
}

/// Whether the route is a console page (a browser without a session goes to `/login`).
pub(crate) fn is_console_page(method: &Method, matched: Option<&str>) -> bool {
    matched.is_some_and(|m| {
        ROUTES
            .iter()
            .any(|r| r.path == m && r.serves(method) && r.access == Access::Console)
    })
}

const CONSOLE: Access = Access::Console;

/// The path of the MCP endpoint (streamable HTTP; each tool call checks its own scope).
pub const MCP_PATH: &str = "/mcp";

/// Every REST route of the server ([`MCP_PATH`] is nested beside them).
pub static ROUTES: &[Route] = &[
    Route {
        method: Method::POST,
        path: "/v1/events",
        access: EMIT,
        what: "ingest events (JSON array or NDJSON, ≤ 1000); one result per event",
        handler: |m| on(m, ingest::post_events),
    },
    Route {
        method: Method::GET,
        path: "/v1/events",
        access: READ,
        what: "the latest events, or one session's (?session_id=&type=&limit=)",
        handler: |m| on(m, query::list_events),
    },
    Route {
        method: Method::GET,
        path: "/v1/sessions",
        access: READ,
        what: "sessions, newest first (?type=&component=&user=&host=&status=&after=&before=&min_duration=&q=&limit=&cursor=; q: text search)",
        handler: |m| on(m, query::list_sessions),
    },
    Route {
        method: Method::GET,
        path: "/v1/sessions/{id}",
        access: READ,
        what: "one session record",
        handler: |m| on(m, query::get_session),
    },
    Route {
        method: Method::GET,
        path: "/v1/sessions/{id}/events",
        access: READ,
        what: "a session's timeline",
        handler: |m| on(m, query::session_events),
    },
    Route {
        method: Method::GET,
        path: "/v1/sessions/{id}/recording",
        access: RECORDINGS,
        what: "a session's terminal recording as asciicast v2 (?purpose=play|export); every read is audited",
        handler: |m| on(m, recording::get_recording),
    },
    Route {
        method: Method::DELETE,
        path: "/v1/sessions/{id}",
        access: ADMIN,
        what: "erase a session for good: its record, events and recording (an audit entry remains)",
        handler: |m| on(m, recording::erase),
    },
    Route {
        method: Method::GET,
        path: "/v1/audit",
        access: ADMIN,
        what: "the audit log: recordings played and exported, sessions erased (?session_id=&limit=)",
        handler: |m| on(m, recording::audit),
    },
    Route {
        method: Method::GET,
        path: "/v1/stream",
        access: READ,
        what: "live changes as server-sent events, one frame per session per second (?component=&user=&host=&after=; Last-Event-ID resumes)",
        handler: |m| on(m, stream::stream),
    },
    Route {
        method: Method::GET,
        path: "/v1/analytics/sessions",
        access: READ,
        what: "per-component session statistics (?days=&component=&since=&until=)",
        handler: |m| on(m, analytics::sessions),
    },
    Route {
        method: Method::GET,
        path: "/v1/analytics/duration",
        access: READ,
        what: "average duration of the sessions that are over (ended or abandoned) per component",
        handler: |m| on(m, analytics::duration),
    },
    Route {
        method: Method::GET,
        path: "/v1/analytics/components",
        access: READ,
        what: "most active components (?days=&limit=)",
        handler: |m| on(m, analytics::components),
    },
    Route {
        method: Method::GET,
        path: "/v1/analytics/errors",
        access: READ,
        what: "error rate and most common error per component",
        handler: |m| on(m, analytics::errors),
    },
    Route {
        method: Method::GET,
        path: "/v1/analytics/active",
        access: READ,
        what: "the active sessions",
        handler: |m| on(m, analytics::active),
    },
    Route {
        method: Method::GET,
        path: "/v1/analytics/quality",
        access: READ,
        what: "the quality score per component over the last 7 days, its formula and inputs (session_quality_score)",
        handler: |m| on(m, analytics::quality),
    },
    Route {
        method: Method::GET,
        path: "/v1/analytics/report",
        access: READ,
        what: "the full analytics summary",
        handler: |m| on(m, analytics::report),
    },
    Route {
        method: Method::GET,
        path: "/v1/schemas",
        access: READ,
        what: "the JSON Schema registry",
        handler: |m| on(m, query::list_schemas),
    },
    Route {
        method: Method::GET,
        path: "/v1/schemas/{name}",
        access: READ,
        what: "one JSON Schema",
        handler: |m| on(m, query::get_schema),
    },
    Route {
        method: Method::GET,
        path: "/v1/routes",
        access: Access::Public,
        what: "this table: every route, who may call it under the running flags, the MCP tools",
        handler: |m| on(m, routes),
    },
    Route {
        method: Method::POST,
        path: "/v1/tokens/revoke",
        access: ADMIN,
        what: "revoke a token by its jti ({\"jti\", \"expires_at\"})",
        handler: |m| on(m, auth::revoke),
    },
    Route {
        method: Method::POST,
        path: "/v1/admin/redact",
        access: ADMIN,
        what: "re-apply the redaction rules to stored events ({\"apply\": bool})",
        handler: |m| on(m, admin::redact),
    },
    Route {
        method: Method::GET,
        path: "/health",
        access: Access::Public,
        what: "service and storage health (JSON)",
        handler: |m| on(m, query::health),
    },
    Route {
        method: Method::GET,
        path: "/healthz",
        access: Access::Public,
        what: "liveness",
        handler: |m| on(m, query::healthz),
    },
    Route {
        method: Method::GET,
        path: "/readyz",
        access: Access::Public,
        what: "readiness: database reachable, migrations applied",
        handler: |m| on(m, query::readyz),
    },
    Route {
        method: Method::GET,
        path: "/metrics",
        access: Access::Metrics,
        what: "Prometheus metrics",
        handler: |m| on(m, query::metrics),
    },
    Route {
        method: Method::GET,
        path: "/",
        access: CONSOLE,
        what: "console: the live view of the active sessions (follows /v1/stream)",
        handler: |m| on(m, console::live_page),
    },
    Route {
        method: Method::GET,
        path: "/sessions",
        access: CONSOLE,
        what: "console: the sessions, searchable (the filters of /v1/sessions and q)",
        handler: |m| on(m, console::sessions_page),
    },
    Route {
        method: Method::GET,
        path: "/sessions.csv",
        access: CONSOLE,
        what: "console: the sessions the list shows, as CSV",
        handler: |m| on(m, console::sessions_csv),
    },
    Route {
        method: Method::GET,
        path: "/sessions.json",
        access: CONSOLE,
        what: "console: the sessions the list shows, as JSON",
        handler: |m| on(m, console::sessions_json),
    },
    Route {
        method: Method::GET,
        path: "/sessions/{id}",
        access: CONSOLE,
        what: "console: a session's record and timeline (?page=)",
        handler: |m| on(m, console::session_page),
    },
    Route {
        method: Method::GET,
        path: "/sessions/{id}/recording.cast",
        access: CONSOLE,
        what: "console: a session's recording for the player (needs the recordings scope; audited as a playback)",
        handler: |m| on(m, console::recording_cast),
    },
    Route {
        method: Method::GET,
        path: "/analytics",
        access: CONSOLE,
        what: "console: the analytics as charts and tables (?days=&component=)",
        handler: |m| on(m, console::analytics_page),
    },
    Route {
        method: Method::GET,
        path: "/status",
        access: CONSOLE,
        what: "console: server, storage, ingest and reaper status",
        handler: |m| on(m, console::status_page),
    },
    Route {
        method: Method::GET,
        path: "/login",
        access: Access::Public,
        what: "console: the login form (with a secret)",
        handler: |m| on(m, console::login_form),
    },
    Route {
        method: Method::POST,
        path: "/login",
        access: Access::Public,
        what: "console: exchange a read token for a console session (form: csrf, token)",
        handler: |m| on(m, console::login_submit),
    },
    Route {
        method: Method::POST,
        path: "/logout",
        access: CONSOLE,
        what: "console: end the console session (form: csrf)",
        handler: |m| on(m, console::logout),
    },
    Route {
        method: Method::GET,
        path: "/assets/{file}",
        access: Access::Public,
        what: "console: the embedded stylesheet and script, by content hash",
        handler: |m| on(m, console::serve_asset),
    },
];

/// What a REST call needs: `None` for a public one (and for [`MCP_PATH`], whose tools check
/// their own scope), else the scope. `matched` is the route's path pattern; a call no route
/// serves (an unknown path or method) needs `read` for `GET`/`HEAD` and `admin` otherwise, so
/// nothing is open by accident.
pub(crate) fn required(
    method: &Method,
    matched: Option<&str>,
    path: &str,
    metrics_require_auth: bool,
) -> Option<Scope> {
    if path == MCP_PATH || path.starts_with("/mcp/") {
        return None;
    }
    let route = matched.and_then(|m| ROUTES.iter().find(|r| r.path == m && r.serves(method)));
    match route {
        Some(r) => r.access.scope(metrics_require_auth),
        None if method == Method::GET || method == Method::HEAD => Some(Scope::Read),
        None => Some(Scope::Admin),
    }
}

/// The route table as served: `who` is `public`, or the scope a token needs.
pub fn table(metrics_require_auth: bool, auth_required: bool) -> Value {
    let who = |s: Option<Scope>| s.map_or("public", Scope::as_str);
    let routes: Vec<Value> = ROUTES
        .iter()
        .map(|r| {
            json!({
                "method": r.method.as_str(),
                "path": r.path,
                "who": who(r.access.scope(metrics_require_auth)),
                "what": r.what,
            })
        })
        .chain(std::iter::once(json!({
            "method": "POST",
            "path": MCP_PATH,
            "who": "per tool",
            "what": "MCP streamable HTTP (tools below; scope per tool)",
        })))
        .collect();
    let tools: Vec<Value> = crate::mcp::tool_names()
        .into_iter()
        .map(|name| json!({"name": name, "scope": auth::tool_scope(&name).as_str()}))
        .collect();
    json!({
        "auth_required": auth_required,
        "metrics_require_auth": metrics_require_auth,
        "routes": routes,
        "mcp_tools": tools,
    })
}

/// `GET /v1/routes` (public): [`table`] under this server's flags.
pub(crate) async fn routes(State(state): State<AppState>) -> Json<Value> {
    Json(table(
        state.options.auth.metrics_require_auth,
        state.guard.enabled(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_decides_and_unknown_calls_are_denied_by_default() {
        let need = |m: Method, matched: Option<&str>, path: &str, flag: bool| {
            required(&m, matched, path, flag)
        };
        let post_events = need(Method::POST, Some("/v1/events"), "/v1/events", false);
        assert_eq!(post_events, Some(Scope::Emit));
        let get_events = need(Method::GET, Some("/v1/events"), "/v1/events", false);
        assert_eq!(get_events, Some(Scope::Read));
        assert_eq!(need(Method::HEAD, Some("/health"), "/health", false), None);
        assert_eq!(need(Method::GET, Some("/metrics"), "/metrics", false), None);
        let metrics = need(Method::GET, Some("/metrics"), "/metrics", true);
        assert_eq!(metrics, Some(Scope::Read));
        assert_eq!(need(Method::POST, None, "/mcp", true), None);
        assert_eq!(
            need(Method::GET, None, "/v1/nope", false),
            Some(Scope::Read)
        );
        assert_eq!(
            need(Method::DELETE, None, "/health", false),
            Some(Scope::Admin)
        );
        // A method the route does not serve is not public because its path is.
        let post_health = need(Method::POST, Some("/health"), "/health", false);
        assert_eq!(post_health, Some(Scope::Admin));
    }

    #[test]
    fn every_route_is_listed_once() {
        let mut seen: Vec<(&str, &str)> =
            ROUTES.iter().map(|r| (r.method.as_str(), r.path)).collect();
        let n = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), n);
        let served = table(true, true);
        assert_eq!(served["routes"].as_array().map(Vec::len), Some(n + 1));
        assert!(
            !served["mcp_tools"]
                .as_array()
                .unwrap_or(&Vec::new())
                .is_empty()
        );
    }
}
