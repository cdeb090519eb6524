//! FastBlocks (Builder): a static HTML report of the tracked sessions with SVG charts, one
//! session's page, the server's routes and who may call them, and the auth state (decode the
//! current token, mint a new one).

mod report;

use chrono::{DateTime, Utc};
use serde_json::Value;
use session_buddy_shell::{
    Api, CompletionRequest, Context, Helper, HelperError, HelperResult, ShellSpec,
};
use std::path::{Path, PathBuf};

use session_buddy_token::Grant;

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

fn routes(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    if !args.is_empty() {
        return Err("usage: routes (takes no arguments)".into());
    }
    let table = ctx.api().get("/v1/routes", &[])?;
    let out = &mut *ctx.out;
    out.write_all(render_routes(&ctx.config.url, &table).as_bytes())?;
    Ok(())
}

/// The server's own route table (`GET /v1/routes`), as tables.
fn render_routes(url: &str, table: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let list = |k: &str| table[k].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = list("routes")
        .iter()
        .map(|r| vec![s(&r["method"]), s(&r["path"]), s(&r["who"]), s(&r["what"])])
        .collect();
    let mut out = format!("HTTP routes of {url}:\n");
    out.push_str(&text::table(&["Method", "Path", "Who", "What"], &rows));
    out.push_str("\nMCP tools (POST /mcp):\n");
    let rows: Vec<Vec<String>> = list("mcp_tools")
        .iter()
        .map(|t| vec![s(&t["name"]), s(&t["scope"])])
        .collect();
    out.push_str(&text::table(&["Tool", "Scope"], &rows));
    let enforced = if table["auth_required"] == Value::Bool(true) {
        "This server has a secret: every call but the public ones needs a JWT"
    } else {
        "This server has no secret (it serves loopback only, every route open to local \
         callers); with SESSION_BUDDY_SECRET set, every call but the public ones needs a JWT"
    };
    out.push_str(&format!(
        "\n{enforced} (Authorization: Bearer, or the tools' `token` argument) holding the scope \
         shown; `admin` holds every scope, `write` is an alias of `emit`, and an `emit` token \
         bound to a component writes only that component's sessions. `public` routes never \
         need a token.\n"
    ));
    out
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
            let secret = session_buddy_token::signing_secret(local_secret().as_deref())
                .map_err(HelperError::new)?;
            let jti = uuid::Uuid::new_v4().to_string();
            let token =
                session_buddy_token::mint_grant(&secret, &grant, Utc::now().timestamp(), &jti)
                    .map_err(|e| HelperError::new(e.to_string()))?;
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

/// `auth mint`'s options, checked by the same rules (and in the same words) as
/// `session-buddy token create`: [`session_buddy_token::Grant::new`]. `--scope` also takes a
/// comma-separated list.
fn parse_mint(args: &[String]) -> Result<Grant, HelperError> {
    let mut subject = String::new();
    let mut scopes = Vec::new();
    let mut components = Vec::new();
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
            "--subject" => subject = value,
            "--scope" => {
                for s in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    scopes.push(session_buddy_token::parse_scope(s).map_err(HelperError::new)?);
                }
            }
            "--component" => components.push(value),
            _ => ttl = value,
        }
    }
    let ttl = session_buddy_token::parse_ttl(&ttl).map_err(HelperError::new)?;
    Grant::new(&subject, &scopes, &components, ttl).map_err(HelperError::new)
}

fn auth_status(ctx: &mut Context<'_>) -> HelperResult {
    let now = Utc::now().timestamp();
    let url = ctx.config.url.clone();
    let token = ctx.config.token.clone();
    let api = ctx.api();
    // The status of `GET /v1/sessions?limit=1` with or without the token.
    let probe = |with_token: bool| {
        api.run(move |server| {
            server.status("/v1/sessions", &[("limit".into(), "1".into())], with_token)
        })
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
            match session_buddy_token::inspect(t) {
                Err(e) => line("  Claims", e.to_string())?,
                Ok(d) => {
                    let c = &d.claims;
                    let s = |k: &str| {
                        c.get(k).map_or("-".to_string(), |v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                    };
                    line("  Algorithm", d.alg.clone())?;
                    line("  Subject", s("sub"))?;
                    let scopes: Vec<&str> = c
                        .get("scopes")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
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
                    // The server's own verification, with the local secret.
                    let signature = match local_secret() {
                        Some(secret) => {
                            match session_buddy_token::TokenVerifier::new(&secret, None).verify(t) {
                                Ok(_) => "valid for the local SESSION_BUDDY_SECRET".to_string(),
                                Err(e) => {
                                    format!("refused with the local SESSION_BUDDY_SECRET: {e}")
                                }
                            }
                        }
                        None => "not verified locally (no SESSION_BUDDY_SECRET here)".to_string(),
                    };
                    line("  Signature", signature)?;
                }
            }
        }
    }
    let required = match probe(false)? {
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
        if token.is_some() {
            let verdict = match probe(true)? {
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
    use std::time::Duration;

    use session_buddy_token::Scope;

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
        assert_eq!(g.scopes, [Scope::Emit, Scope::Read]);
        assert_eq!(g.components, ["crackerjack"]);
        assert_eq!(g.ttl, Duration::from_secs(12 * 3600));
        let g = parse_mint(&args("--subject=ops --scope=admin")).unwrap();
        assert_eq!((g.scopes.len(), g.ttl.as_secs()), (1, 30 * 86400));

        let err = |s: &str| parse_mint(&args(s)).unwrap_err().message;
        assert!(err("--scope read").contains("--subject"));
        assert!(err("--subject a").contains("--scope"));
        assert!(err("--subject a --scope root").contains("is not a scope"));
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

    #[test]
    fn session_ids_are_checked_before_use_in_a_path() {
        assert!(is_session_id("oneiric-20260206-123456-440000"));
        assert!(!is_session_id("../etc"));
        assert!(!is_session_id("a b"));
        assert!(!is_session_id(""));
    }
}
