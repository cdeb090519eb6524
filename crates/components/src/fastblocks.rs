//! FastBlocks (Builder): a static HTML report of the tracked sessions with SVG charts, one
//! session's page, the server's routes and who may call them, and the auth state (decode the
//! current token, mint a new one).

mod jwt;
mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use session_buddy_shell::{
    Api, CompletionRequest, Context, Helper, HelperError, HelperResult, ShellSpec,
};

use crate::text;

/// Sessions fetched for `build`.
const BUILD_MAX_SESSIONS: usize = 5000;
/// Rows of the recent-sessions table; each gets its own page with its timeline.
const RECENT_PAGES: usize = 100;
const DEFAULT_REPORT_DIR: &str = "session-report";
const DEFAULT_TOKEN_TTL: &str = "30d";

pub(crate) fn spec() -> ShellSpec {
    ShellSpec {
        component: "fastblocks".into(),
        display_name: "FastBlocks".into(),
        version: crate::VERSION.into(),
        tagline: "Reports & routes: static HTML from tracked sessions, the API map, tokens".into(),
        role: "Builder".into(),
        shell_type: "FastBlocksShell".into(),
        help_notes: String::new(),
        helpers: vec![
            Helper::new(
                "build",
                "write a static HTML report of the latest 5000 sessions (summary, SVG charts per \
                 day / component / duration, recent sessions with a page each) to DIR \
                 (default ./session-report)",
                build,
            )
            .usage("[DIR]"),
            Helper::new(
                "render",
                "one session's page (record and timeline) as HTML, to FILE (default \
                 ./session-<id>.html; `-` for standard output)",
                render,
            )
            .usage("SESSION_ID [FILE]")
            .complete(|req| {
                if req.previous.is_empty() {
                    Api::recent_session_ids(req.config)
                } else {
                    Vec::new()
                }
            }),
            Helper::new(
                "routes",
                "the server's HTTP routes and MCP tools, what each does and who may call it",
                routes,
            ),
            Helper::new(
                "auth",
                "the auth state: this shell's token and its claims, whether the server requires \
                 auth; `auth mint` makes a token signed with SESSION_BUDDY_SECRET",
                auth,
            )
            .usage("[mint --subject NAME --scope emit|read|admin… [--component C] [--ttl 30d]]")
            .complete(auth_values),
        ],
    }
}

/// Session ids as the server accepts them: letters, digits, `-`, `_`, at most 128.
fn is_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn timeline(api: &session_buddy_shell::Api, id: &str) -> Result<Vec<Value>, String> {
    if !is_session_id(id) {
        return Err(format!("'{id}' is not a session id"));
    }
    let answer = api
        .get(&format!("/v1/sessions/{id}/events"), &[])
        .map_err(|e| e.message)?;
    Ok(answer["events"].as_array().cloned().unwrap_or_default())
}

fn write_file(path: &Path, contents: &str) -> Result<(), HelperError> {
    std::fs::write(path, contents)
        .map_err(|e| HelperError::new(format!("cannot write {}: {e}", path.display())))
}

fn build(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    let dir = PathBuf::from(match args {
        [] => DEFAULT_REPORT_DIR,
        [d] => d.as_str(),
        _ => return Err("usage: build [DIR]".into()),
    });
    let api = ctx.api();
    let sessions = api.sessions(&[], BUILD_MAX_SESSIONS)?;
    let recs: Vec<report::Rec> = sessions.iter().map(report::Rec::from_json).collect();
    let pages_dir = dir.join("sessions");
    std::fs::create_dir_all(&pages_dir)
        .map_err(|e| HelperError::new(format!("cannot create {}: {e}", pages_dir.display())))?;

    let recent = recs.len().min(RECENT_PAGES);
    let (mut failures, mut first_error) = (0usize, None::<String>);
    for (record, rec) in sessions.iter().zip(&recs).take(recent) {
        // After a few failures in a row the server is likely gone: stop asking, keep building.
        let events = if failures >= 3 && first_error.is_some() {
            Err("not fetched (the server stopped answering)".to_string())
        } else {
            timeline(&api, &rec.id)
        };
        match &events {
            Ok(_) => failures = 0,
            Err(e) => {
                failures += 1;
                first_error.get_or_insert_with(|| e.clone());
            }
        }
        let events = events.as_deref().map_err(String::as_str);
        let html = report::session_page(record, events, true);
        write_file(&pages_dir.join(report::page_file(&rec.id)), &html)?;
    }
    let info = report::IndexInfo {
        server: api.url(),
        generated: Utc::now(),
        truncated: sessions.len() >= BUILD_MAX_SESSIONS,
        recent,
    };
    let index = dir.join("index.html");
    write_file(&index, &report::index_page(&recs, &info))?;
    writeln!(
        ctx.out,
        "Wrote {}: {} session(s), 3 charts, {recent} session page(s) in {}",
        index.display(),
        recs.len(),
        pages_dir.display()
    )?;
    if let Some(e) = first_error {
        writeln!(
            ctx.out,
            "Some timelines are missing from their pages (first error: {e})"
        )?;
    }
    Ok(())
}

fn render(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    let (id, file) = match args {
        [id] => (id, None),
        [id, file] => (id, Some(PathBuf::from(file))),
        _ => return Err("usage: render SESSION_ID [FILE]".into()),
    };
    if !is_session_id(id) {
        return Err(HelperError::new(format!(
            "'{id}' is not a session id (letters, digits, '-' and '_'); `ps` in the \
             session-buddy shell lists them"
        )));
    }
    let api = ctx.api();
    let record = api.get(&format!("/v1/sessions/{id}"), &[])?;
    let events = timeline(&api, id);
    let html = report::session_page(&record, events.as_deref().map_err(String::as_str), false);
    // HTML is for a browser, not the terminal: a file unless `-` asks for standard output.
    let path = match file {
        Some(path) if path.as_os_str() == "-" => {
            ctx.out.write_all(html.as_bytes())?;
            return Ok(());
        }
        Some(path) => path,
        None => PathBuf::from(format!("session-{}", report::page_file(id))),
    };
    write_file(&path, &html)?;
    writeln!(ctx.out, "Wrote {} ({} bytes)", path.display(), html.len())?;
    Ok(())
}

/// Who may call a route once the server has a secret.
const PUBLIC: &str = "public";
const EMIT: &str = "emit";
const READ: &str = "read";
const ADMIN: &str = "admin";

/// The routes of `app()` in crates/server/src/lib.rs (a test keeps the two in step).
const ROUTES: &[(&str, &str, &str, &str)] = &[
    (
        "POST",
        "/v1/events",
        "ingest events (JSON array or NDJSON, ≤ 1000); one result per event",
        EMIT,
    ),
    (
        "GET",
        "/v1/events",
        "the latest events, or one session's (?session_id=&type=&limit=)",
        READ,
    ),
    (
        "GET",
        "/v1/sessions",
        "sessions, newest first (?type=&component=&user=&host=&status=&after=&before=&min_duration=&limit=&cursor=)",
        READ,
    ),
    ("GET", "/v1/sessions/{id}", "one session record", READ),
    (
        "GET",
        "/v1/sessions/{id}/events",
        "a session's timeline",
        READ,
    ),
    (
        "GET",
        "/v1/analytics/sessions",
        "per-component session statistics (?days=&component=&since=&until=)",
        READ,
    ),
    (
        "GET",
        "/v1/analytics/duration",
        "average duration of ended sessions per component",
        READ,
    ),
    (
        "GET",
        "/v1/analytics/components",
        "most active components (?days=&limit=)",
        READ,
    ),
    (
        "GET",
        "/v1/analytics/errors",
        "error rate and most common error per component",
        READ,
    ),
    ("GET", "/v1/analytics/active", "the active sessions", READ),
    (
        "GET",
        "/v1/analytics/report",
        "the full analytics summary",
        READ,
    ),
    ("GET", "/v1/schemas", "the JSON Schema registry", READ),
    ("GET", "/v1/schemas/{name}", "one JSON Schema", READ),
    (
        "POST",
        "/v1/tokens/revoke",
        "revoke a token by its jti ({\"jti\", \"expires_at\"})",
        ADMIN,
    ),
    (
        "POST",
        "/v1/admin/redact",
        "re-apply the redaction rules to stored events ({\"apply\": bool})",
        ADMIN,
    ),
    (
        "GET",
        "/health",
        "service and storage health (JSON)",
        PUBLIC,
    ),
    ("GET", "/healthz", "liveness", PUBLIC),
    (
        "GET",
        "/readyz",
        "readiness: database reachable, migrations applied",
        PUBLIC,
    ),
    ("GET", "/metrics", "Prometheus metrics", PUBLIC),
    (
        "POST",
        "/mcp",
        "MCP streamable HTTP (tools below; scope per tool)",
        "per tool",
    ),
];

/// The MCP tools of crates/server/src/mcp.rs and the scope each needs.
const MCP_TOOLS: &[(&str, &str)] = &[
    ("track_session_start", EMIT),
    ("track_session_end", EMIT),
    ("track_command", EMIT),
    ("health_check", READ),
    ("list_sessions", READ),
    ("get_session", READ),
    ("list_events", READ),
    ("analytics_sessions", READ),
    ("get_prometheus_metrics", READ),
    ("list_session_metrics", READ),
    ("get_metrics_summary", READ),
];

fn routes(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    if !args.is_empty() {
        return Err("usage: routes (takes no arguments)".into());
    }
    let out = &mut *ctx.out;
    writeln!(out, "HTTP routes of {}:", ctx.config.url)?;
    let rows: Vec<Vec<String>> = ROUTES
        .iter()
        .map(|(m, p, what, who)| {
            vec![
                m.to_string(),
                p.to_string(),
                who.to_string(),
                what.to_string(),
            ]
        })
        .collect();
    out.write_all(text::table(&["Method", "Path", "Who", "What"], &rows).as_bytes())?;
    writeln!(out, "\nMCP tools (POST /mcp):")?;
    let rows: Vec<Vec<String>> = MCP_TOOLS
        .iter()
        .map(|(tool, scope)| vec![tool.to_string(), scope.to_string()])
        .collect();
    out.write_all(text::table(&["Tool", "Scope"], &rows).as_bytes())?;
    writeln!(
        out,
        "\nScopes are enforced once SESSION_BUDDY_SECRET is set on the server: every /v1 call \
         and MCP tool call then needs a JWT (Authorization: Bearer, or the tools' `token` \
         argument) holding the scope shown; `admin` holds every scope, `write` is an alias of \
         `emit`, and an `emit` token bound to a component writes only that component's \
         sessions. Without a secret the server serves loopback only, and every route is open \
         to local callers. `public` routes never need a token."
    )?;
    Ok(())
}

/// `3 days`, `5 hours`, `1 minute`: the larger unit of a span.
pub(crate) fn human_span(secs: i64) -> String {
    text::Span::of(secs).words()
}

/// `in 3 days` / `3 days ago`, relative to `now`.
fn relative(t: i64, now: i64) -> String {
    if t == now {
        "just now".into()
    } else if t > now {
        format!("in {}", human_span(t - now))
    } else {
        format!("{} ago", human_span(now - t))
    }
}

fn unix_time(v: &Value, now: i64) -> Option<String> {
    let t = v.as_i64()?;
    let at = DateTime::<Utc>::from_timestamp(t, 0)?
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S");
    Some(format!("{at} ({})", relative(t, now)))
}

/// The HTTP status of `GET /v1/sessions?limit=1` with or without a token.
fn probe(url: &str, token: Option<&str>) -> Result<u16, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .timeout_connect(Some(Duration::from_secs(2)))
        .build()
        .into();
    let mut req = agent
        .get(format!("{}/v1/sessions", url.trim_end_matches('/')))
        .query("limit", "1");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    req.call()
        .map(|resp| resp.status().as_u16())
        .map_err(|e| format!("cannot reach {url} ({e})"))
}

/// Tab's values for `auth`: the subcommand, `mint`'s options, and their values.
fn auth_values(req: &CompletionRequest<'_>) -> Vec<String> {
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
    match req.previous {
        [] => words(&["status", "mint"]),
        [first, ..] if first != "mint" => Vec::new(),
        [.., last] if last == "--scope" => words(&["emit", "read", "admin"]),
        [.., last] if last == "--component" => words(crate::COMPONENTS),
        [.., last] if last == "--subject" || last == "--ttl" => Vec::new(),
        _ => words(&["--subject", "--scope", "--component", "--ttl"]),
    }
}

fn local_secret() -> Option<String> {
    std::env::var("SESSION_BUDDY_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
}

fn auth(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    match args.first().map(String::as_str) {
        None | Some("status") if args.len() <= 1 => auth_status(ctx),
        Some("mint") => {
            let grant = parse_mint(&args[1..])?;
            let secret = local_secret().ok_or_else(|| {
                HelperError::new(
                    "SESSION_BUDDY_SECRET is not set; export the server's secret (at least 32 \
                     characters) to mint a token",
                )
            })?;
            if let Some(problem) = jwt::secret_problem(&secret) {
                return Err(HelperError::new(problem));
            }
            let token = jwt::mint(
                &secret,
                &grant,
                Utc::now().timestamp(),
                &uuid::Uuid::new_v4().to_string(),
            );
            writeln!(ctx.out, "{token}")?;
            Ok(())
        }
        _ => Err(
            "usage: auth | auth mint --subject NAME --scope emit|read|admin [--scope …] \
             [--component C] [--ttl 30d]"
                .into(),
        ),
    }
}

fn parse_mint(args: &[String]) -> Result<jwt::Grant, HelperError> {
    let mut subject = None;
    let mut scopes: Vec<String> = Vec::new();
    let mut component = None;
    let mut ttl = DEFAULT_TOKEN_TTL.to_string();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !matches!(flag, "--subject" | "--scope" | "--component" | "--ttl") {
            return Err(HelperError::new(format!(
                "unknown option '{arg}'; use --subject, --scope, --component, --ttl"
            )));
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| HelperError::new(format!("{flag} needs a value")))?,
        };
        match flag {
            "--subject" => subject = Some(value),
            "--scope" => {
                for s in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let s = if s == "write" { "emit" } else { s };
                    if !jwt::SCOPES.contains(&s) {
                        return Err(HelperError::new(format!(
                            "scope '{s}' is not one of: emit (alias write), read, admin"
                        )));
                    }
                    if !scopes.iter().any(|x| x == s) {
                        scopes.push(s.to_string());
                    }
                }
            }
            "--component" => component = Some(value),
            _ => ttl = value,
        }
    }
    let subject = subject
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| HelperError::new("--subject NAME is required (who the token is for)"))?;
    if subject.chars().count() > 100 {
        return Err("--subject is longer than 100 characters".into());
    }
    if scopes.is_empty() {
        return Err("--scope emit|read|admin is required (repeat it for several)".into());
    }
    if let Some(c) = &component
        && (c.is_empty()
            || c.len() > 64
            || !c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'))
    {
        return Err(HelperError::new(format!(
            "--component '{c}' is not a component name (letters, digits, '-', '_'; at most 64)"
        )));
    }
    let ttl_secs = crate::oneiric::parse_duration(&ttl)
        .map_err(|e| HelperError::new(format!("--ttl: {e}")))?
        .as_secs();
    if ttl_secs == 0 || ttl_secs > 10 * 366 * 86400 {
        return Err(HelperError::new(format!(
            "--ttl {ttl} must be from 1s to 10 years"
        )));
    }
    Ok(jwt::Grant {
        subject,
        scopes,
        component,
        ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX),
    })
}

fn auth_status(ctx: &mut Context<'_>) -> HelperResult {
    let now = Utc::now().timestamp();
    let url = ctx.config.url.clone();
    let token = ctx.config.token.clone();
    let cancel = ctx.cancel.clone();
    let probe = |token: Option<String>| {
        let url = url.clone();
        cancel.run(move || probe(&url, token.as_deref()))
    };
    let out = &mut *ctx.out;
    let mut line = |k: &str, v: String| writeln!(out, "{k:<22}{v}");
    line("Server", url.clone())?;
    match &token {
        None => line(
            "Token",
            "none (set SESSION_BUDDY_TOKEN, or put it in $SESSION_BUDDY_HOME/token)".into(),
        )?,
        Some(t) => {
            line("Token", "configured".into())?;
            match jwt::decode(t) {
                Err(e) => line("  Claims", e)?,
                Ok(d) => {
                    let c = &d.claims;
                    let s = |k: &str| {
                        c.get(k).map_or("-".to_string(), |v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                    };
                    line(
                        "  Algorithm",
                        d.header
                            .get("alg")
                            .and_then(Value::as_str)
                            .unwrap_or("-")
                            .to_string(),
                    )?;
                    line("  Subject", s("sub"))?;
                    let scopes = jwt::scopes(c);
                    line(
                        "  Scopes",
                        if scopes.is_empty() {
                            "-".into()
                        } else {
                            scopes.join(", ")
                        },
                    )?;
                    line("  Component", s("component"))?;
                    line("  Audience", s("aud"))?;
                    line("  Issuer", s("iss"))?;
                    line("  Token id", s("jti"))?;
                    if let Some(iat) = c.get("iat").and_then(|v| unix_time(v, now)) {
                        line("  Issued", iat)?;
                    }
                    let expiry = match c.get("exp") {
                        None => "never (no exp claim: the server refuses such tokens)".into(),
                        Some(v) => match (v.as_i64(), unix_time(v, now)) {
                            (Some(exp), Some(shown)) if exp <= now => format!("EXPIRED {shown}"),
                            (_, Some(shown)) => shown,
                            _ => format!("unreadable ({v})"),
                        },
                    };
                    line("  Expires", expiry)?;
                    let signature = match local_secret() {
                        Some(secret) if jwt::verify(t, &secret) => {
                            "valid for the local SESSION_BUDDY_SECRET".to_string()
                        }
                        Some(_) => "does NOT match the local SESSION_BUDDY_SECRET".to_string(),
                        None => "not verified locally (no SESSION_BUDDY_SECRET here)".to_string(),
                    };
                    line("  Signature", signature)?;
                }
            }
        }
    }
    let required = match probe(None)? {
        Ok(401 | 403) => Some(true),
        Ok(code) => {
            line(
                "Server requires auth",
                format!("no (GET /v1/sessions without a token answered {code})"),
            )?;
            Some(false)
        }
        Err(e) => {
            line("Server requires auth", format!("unknown: {e}"))?;
            None
        }
    };
    if required == Some(true) {
        line(
            "Server requires auth",
            "yes (GET /v1/sessions without a token was refused)".into(),
        )?;
        if let Some(t) = &token {
            let verdict = match probe(Some(t.clone()))? {
                Ok(code) if (200..300).contains(&code) => format!("yes ({code})"),
                Ok(code @ (401 | 403)) => format!("NO ({code}): expired, wrong secret or scope"),
                Ok(code) => format!("unclear (answered {code})"),
                Err(e) => format!("unknown: {e}"),
            };
            line("Token accepted", verdict)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn mint_arguments_are_checked() {
        let g = parse_mint(&args(
            "--subject ci --scope write,read --scope read --component crackerjack --ttl 12h",
        ))
        .unwrap();
        assert_eq!(g.subject, "ci");
        assert_eq!(g.scopes, ["emit", "read"]);
        assert_eq!(g.component.as_deref(), Some("crackerjack"));
        assert_eq!(g.ttl_secs, 12 * 3600);
        let g = parse_mint(&args("--subject=ops --scope=admin")).unwrap();
        assert_eq!((g.scopes.len(), g.ttl_secs), (1, 30 * 86400));

        let err = |s: &str| parse_mint(&args(s)).unwrap_err().message;
        assert!(err("--scope read").contains("--subject"));
        assert!(err("--subject a").contains("--scope"));
        assert!(err("--subject a --scope root").contains("not one of"));
        assert!(err("--subject a --scope read --component a/b").contains("component name"));
        assert!(err("--subject a --scope read --ttl 0s").contains("from 1s"));
        assert!(err("--subject a --scope read --ttl soon").contains("--ttl"));
        assert!(err("--subject a --scope read --bogus 1").contains("unknown option"));
        assert!(err("--subject").contains("needs a value"));
    }

    #[test]
    fn spans_read_like_people_talk() {
        assert_eq!(human_span(1), "1 second");
        assert_eq!(human_span(-7200), "2 hours");
        assert_eq!(human_span(30 * 86400), "30 days");
        assert_eq!(relative(100, 40), "in 1 minute");
        assert_eq!(relative(0, 3 * 86400), "3 days ago");
        assert_eq!(relative(5, 5), "just now");
    }

    /// The routes table follows the server's router and MCP tool list.
    #[test]
    fn routes_match_the_server() {
        let server = include_str!("../../server/src/lib.rs");
        let router = &server[server.find("pub fn app(").unwrap()..];
        let router = &router[..router.find("\n}\n").unwrap()];
        let mut found = Vec::new();
        for chunk in router.split(".route(").skip(1) {
            let path = chunk.split('"').nth(1).unwrap();
            let handlers = chunk.split(".route(").next().unwrap();
            for (method, call) in [("GET", "get("), ("POST", "post(")] {
                if handlers.contains(call) {
                    found.push((method, path));
                }
            }
        }
        assert!(found.len() >= 10, "{found:?}");
        let ours: Vec<(&str, &str)> = ROUTES
            .iter()
            .filter(|r| r.1 != "/mcp")
            .map(|r| (r.0, r.1))
            .collect();
        for r in &found {
            assert!(ours.contains(r), "the server has {r:?}; add it to ROUTES");
        }
        for r in &ours {
            assert!(found.contains(r), "ROUTES has {r:?}; the server does not");
        }
        assert!(router.contains("nest_service(\"/mcp\""));

        let mcp = include_str!("../../server/src/mcp.rs");
        let tools: Vec<&str> = mcp
            .split("Tool::new(")
            .skip(1)
            .map(|c| c.split('"').nth(1).unwrap())
            .collect();
        let ours: Vec<&str> = MCP_TOOLS.iter().map(|t| t.0).collect();
        assert_eq!(tools, ours);
    }

    #[test]
    fn session_ids_are_checked_before_use_in_a_path() {
        assert!(is_session_id("oneiric-20260206-123456-440000"));
        assert!(!is_session_id("../etc"));
        assert!(!is_session_id("a b"));
        assert!(!is_session_id(""));
    }
}
