//! The MCP face (`/mcp`, streamable HTTP): the original's tools with its argument names and
//! result shapes, plus ours. Arguments arrive as raw JSON and are validated by our own code
//! (the same validation as REST), so every bad argument answers
//! `{session_id, status: "error", error: "<field>: <rule>"}`.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use session_buddy_events::{
    Event, EventOutcome, SchemaRegistry, ValidationError, parse_event, parse_session_end,
    parse_session_start,
};

use session_buddy_events::auth::Claims;

use crate::auth::{Principal, TokenError, Visibility, bearer, scope_list, tool_scope};
use crate::ingest::{Candidate, MAX_JSON_DEPTH, bind_to_component, ingest_candidates};
use crate::metrics::Metrics;
use crate::query::{health_value, parse_event_filter};
use crate::{AppState, VERSION, parse_session_filter};

/// The `/mcp` service.
pub(crate) fn service(state: AppState) -> StreamableHttpService<McpHandler, NeverSessionManager> {
    // The same list as every route's `Host` check (which runs first), not a second copy.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    let config = match state.accepted_hosts.as_deref() {
        Some(hosts) => config.with_allowed_hosts(hosts.iter().cloned()),
        None => config.disable_allowed_hosts(),
    };
    let handler = McpHandler {
        state,
        tools: Arc::new(tools()),
    };
    StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

#[derive(Clone)]
pub(crate) struct McpHandler {
    state: AppState,
    tools: Arc<Vec<Tool>>,
}

fn object(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(Map::new()),
    }
}

/// An event schema from the registry, with the original's optional `token` argument.
fn event_schema(name: &str) -> Arc<JsonObject> {
    let mut schema = SchemaRegistry::get(name).unwrap_or_else(|_| json!({"type": "object"}));
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "token".into(),
            json!({"type": "string", "description": "JWT, for the original's clients (or send Authorization: Bearer)"}),
        );
    }
    object(schema)
}

/// The names of the MCP tools, in the order `tools/list` gives them.
pub(crate) fn tool_names() -> Vec<String> {
    tools().into_iter().map(|t| t.name.to_string()).collect()
}

fn tools() -> Vec<Tool> {
    let filter_schema = json!({
        "type": "object",
        "properties": {
            "type": {"type": "string", "description": "session type, e.g. admin_shell"},
            "session_type": {"type": "string", "description": "alias of type"},
            "component": {"type": "string"},
            "user": {"type": "string"},
            "host": {"type": "string"},
            "status": {"type": "string", "enum": ["active", "ended", "abandoned"]},
            "after": {"type": "string", "format": "date-time"},
            "before": {"type": "string", "format": "date-time"},
            "min_duration": {"type": "number", "minimum": 0},
            "q": {"type": "string", "description": "text search: sessions whose id, user, host, component or a command name contains this text, case ignored (at least 3 characters)"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            "cursor": {"type": "string"},
            "token": {"type": "string"}
        }
    });
    vec![
        Tool::new(
            "track_session_start",
            "Record that an admin shell started (the original's arguments). Answers {session_id, status: tracked|error, error}.",
            event_schema("session_start"),
        ),
        Tool::new(
            "track_session_end",
            "Record that an admin shell ended. Answers {session_id, status: ended|not_found|error, error}; not_found means the end is kept until its start arrives.",
            event_schema("session_end"),
        ),
        Tool::new(
            "track_command",
            "Record one command run in a shell session (event version 1.1). Answers {session_id, event_id, status: accepted|duplicate|error, error}.",
            event_schema("command"),
        ),
        Tool::new(
            "health_check",
            "Server and storage health.",
            object(json!({"type": "object", "properties": {"token": {"type": "string"}}})),
        ),
        Tool::new(
            "list_sessions",
            "Sessions, newest start first, with filters and a cursor for the next page.",
            object(filter_schema),
        ),
        Tool::new(
            "get_session",
            "One session record by id.",
            object(
                json!({"type": "object", "required": ["session_id"], "properties": {"session_id": {"type": "string"}, "token": {"type": "string"}}}),
            ),
        ),
        Tool::new(
            "list_events",
            "A session's timeline (with session_id), or the latest events.",
            object(json!({"type": "object", "properties": {
                "session_id": {"type": "string"},
                "type": {"type": "string", "enum": ["session_start", "session_end", "command", "heartbeat"]},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                "token": {"type": "string"}}})),
        ),
        Tool::new(
            "analytics_sessions",
            "Session statistics per component over the last range_days (alias days; 1..365, default 7) or since/until (RFC 3339): total_sessions, avg_duration, active_sessions, error_rate, date_range; plus sessions per day (trend).",
            object(json!({"type": "object", "properties": {
                "range_days": {"type": "integer", "minimum": 1, "maximum": 365, "description": "the original's name"},
                "days": {"type": "integer", "minimum": 1, "maximum": 365},
                "component": {"type": "string"},
                "since": {"type": "string", "format": "date-time"},
                "until": {"type": "string", "format": "date-time"},
                "token": {"type": "string"}}})),
        ),
        Tool::new(
            "get_prometheus_metrics",
            "The server's Prometheus metrics as text.",
            object(json!({"type": "object", "properties": {"token": {"type": "string"}}})),
        ),
        Tool::new(
            "list_session_metrics",
            "What each session metric is: type, description, labels, buckets.",
            object(json!({"type": "object", "properties": {"token": {"type": "string"}}})),
        ),
        Tool::new(
            "get_metrics_summary",
            "Totals of the session metrics: started, ended, active and quality per component, events ingested and rejected.",
            object(json!({"type": "object", "properties": {"token": {"type": "string"}}})),
        ),
    ]
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("session-buddy", VERSION))
            .with_instructions(
                "Session-Buddy records admin shell sessions. Track with track_session_start, \
                 track_command and track_session_end; query with list_sessions, get_session and list_events.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let mut args = request.arguments.unwrap_or_default();
        // The original's clients pass their JWT as an argument; it is not part of the event.
        let arg_token = match args.remove("token") {
            Some(Value::String(t)) => Some(t),
            _ => None,
        };
        let refused = |message: String| -> Result<CallToolResponse, ErrorData> {
            let sent_id = args.get("session_id").and_then(Value::as_str);
            Ok(CallToolResult::structured_error(tool_error(sent_id, message)).into())
        };
        let claims = match self.authorize(&request.name, &context, arg_token.as_deref()) {
            Ok(c) => c,
            Err(message) => return refused(message),
        };
        if value_depth(&args) > MAX_JSON_DEPTH {
            return refused(format!(
                "arguments: nest JSON deeper than {MAX_JSON_DEPTH} levels; flatten them"
            ));
        }
        let visible = Visibility::of(claims.clone().map(|c| Principal(Arc::new(c))).as_ref());
        let claims = claims.as_ref();
        let state = &self.state;
        let aggregate = matches!(
            request.name.as_ref(),
            "get_prometheus_metrics" | "get_metrics_summary"
        );
        if aggregate && let Some(problem) = visible.aggregate_problem() {
            return refused(format!("forbidden: {problem}"));
        }
        let result = match request.name.as_ref() {
            "track_session_start" => track_start(state, Value::Object(args), claims).await,
            "track_session_end" => track_end(state, Value::Object(args), claims).await,
            "track_command" => track_command(state, args, claims).await,
            "health_check" => Ok(health_value(state).await.1),
            "list_sessions" => list_sessions(state, &visible, args).await,
            "get_session" => get_session(state, &visible, &args).await,
            "list_events" => list_events(state, &visible, args).await,
            "get_prometheus_metrics" => {
                let text = state.metrics.render();
                let mut r = CallToolResult::structured(json!({ "metrics": text }));
                r.content = vec![ContentBlock::text(text)];
                return Ok(r.into());
            }
            "analytics_sessions" => analytics_sessions(state, &visible, &args).await,
            "list_session_metrics" => Ok(Metrics::describe()),
            "get_metrics_summary" => Ok(state.metrics.summary()),
            other => {
                return Err(ErrorData::invalid_params(
                    format!(
                        "unknown tool '{other}'; tools: {}",
                        self.tools
                            .iter()
                            .map(|t| t.name.as_ref())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None,
                ));
            }
        };
        Ok(match result {
            Ok(v) if v.get("status").and_then(Value::as_str) == Some("error") => {
                CallToolResult::structured_error(v)
            }
            Ok(v) => CallToolResult::structured(v),
            Err(message) => {
                CallToolResult::structured_error(json!({"status": "error", "error": message}))
            }
        }
        .into())
    }
}

impl McpHandler {
    /// With a secret: the caller's claims, from the Bearer header or else the `token`
    /// argument, when they allow `tool`; otherwise why not.
    fn authorize(
        &self,
        tool: &str,
        context: &RequestContext<RoleServer>,
        arg_token: Option<&str>,
    ) -> Result<Option<Claims>, String> {
        let guard = &self.state.guard;
        if !guard.enabled() {
            return Ok(None);
        }
        let failed = |e: TokenError| format!("authentication failed: {e}");
        let from_header = match context
            .extensions
            .get::<axum::http::request::Parts>()
            .map(|p| bearer(&p.headers))
        {
            Some(Err(e)) => return Err(failed(e)),
            Some(Ok(t)) => t,
            None => None,
        };
        let Some(claims) = guard
            .authenticate(from_header.or(arg_token))
            .map_err(failed)?
        else {
            return Err(failed(TokenError::Missing));
        };
        let scope = tool_scope(tool);
        if !claims.allows(scope) {
            return Err(format!(
                "forbidden: this token lacks the '{scope}' scope that {} needs; it holds: {}",
                tool.chars().take(64).collect::<String>(),
                scope_list(&claims)
            ));
        }
        guard
            .rate_check(&claims)
            .map_err(|s| format!("rate limit exceeded for this token; retry in {s} s"))?;
        Ok(Some(claims))
    }
}

/// How deeply `args` nest (the object itself is level 1).
fn value_depth(args: &JsonObject) -> usize {
    fn depth(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    1 + args.values().map(depth).max().unwrap_or(0)
}

fn tool_error(session_id: Option<&str>, error: impl std::fmt::Display) -> Value {
    json!({"session_id": session_id, "status": "error", "error": error.to_string()})
}

async fn ingest_one(
    state: &AppState,
    args: &Value,
    parse: impl Fn(&Value) -> Result<Event, ValidationError>,
    claims: Option<&Claims>,
) -> Result<
    (
        session_buddy_events::EventResult,
        Option<session_buddy_store::IngestOutcome>,
    ),
    String,
> {
    let mut candidates = vec![Candidate::new(args, parse)];
    if let Some(claims) = claims {
        bind_to_component(state, claims, &mut candidates)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut results = ingest_candidates(state, candidates)
        .await
        .map_err(|e| e.to_string())?;
    results
        .pop()
        .ok_or_else(|| "internal error: no result".to_string())
}

async fn track_start(
    state: &AppState,
    args: Value,
    claims: Option<&Claims>,
) -> Result<Value, String> {
    let (result, _) = ingest_one(
        state,
        &args,
        |v| parse_session_start(v).map(Event::SessionStart),
        claims,
    )
    .await?;
    Ok(match result.status {
        EventOutcome::Accepted | EventOutcome::Duplicate => {
            json!({"session_id": result.session_id, "status": "tracked", "error": null})
        }
        EventOutcome::Rejected => tool_error(None, result.error.unwrap_or_default()),
    })
}

async fn track_end(
    state: &AppState,
    args: Value,
    claims: Option<&Claims>,
) -> Result<Value, String> {
    let sent_id = args
        .get("session_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (result, outcome) = ingest_one(
        state,
        &args,
        |v| parse_session_end(v).map(Event::SessionEnd),
        claims,
    )
    .await?;
    Ok(match (result.status, outcome) {
        (EventOutcome::Rejected, _) | (_, None) => {
            tool_error(sent_id.as_deref(), result.error.unwrap_or_default())
        }
        (_, Some(o)) if o.session_known => {
            json!({"session_id": o.session_id, "status": "ended", "error": null})
        }
        (_, Some(o)) => json!({"session_id": o.session_id, "status": "not_found", "error": null}),
    })
}

async fn track_command(
    state: &AppState,
    mut args: JsonObject,
    claims: Option<&Claims>,
) -> Result<Value, String> {
    let sent_id = args
        .get("session_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    match args.get("event_type") {
        None | Some(Value::Null) => {
            args.insert("event_type".into(), json!("command"));
        }
        Some(Value::String(s)) if s == "command" => {}
        Some(_) => {
            return Ok(tool_error(
                sent_id.as_deref(),
                "event_type: must be 'command' here",
            ));
        }
    }
    let (result, outcome) = ingest_one(state, &Value::Object(args), parse_event, claims).await?;
    Ok(match result.status {
        EventOutcome::Rejected => tool_error(sent_id.as_deref(), result.error.unwrap_or_default()),
        status => json!({
            "session_id": result.session_id,
            "event_id": result.event_id,
            "status": status.as_str(),
            "session_known": outcome.map(|o| o.session_known).unwrap_or(false),
            "error": null
        }),
    })
}

async fn list_sessions(
    state: &AppState,
    visible: &Visibility,
    mut args: JsonObject,
) -> Result<Value, String> {
    // The original's documented `offset`: pages go by cursor here.
    match args.remove("offset") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_u64() == Some(0) => {}
        Some(_) => {
            return Err(
                "offset: not supported; pass the previous page's next_cursor as cursor".into(),
            );
        }
    }
    let mut filter = parse_session_filter(&args)?;
    filter.components = visible.0.clone();
    let page = state
        .store
        .list_sessions(filter)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_value(page).map_err(|e| e.to_string())
}

async fn get_session(
    state: &AppState,
    visible: &Visibility,
    args: &JsonObject,
) -> Result<Value, String> {
    let Some(id) = args.get("session_id").and_then(Value::as_str) else {
        return Ok(tool_error(None, "session_id: is required"));
    };
    if !session_buddy_events::is_valid_session_id(id) {
        return Ok(tool_error(
            Some(id),
            "session_id: may contain only letters, digits, '-' and '_'",
        ));
    }
    // An invisible session answers like a missing one.
    match crate::query::visible_session(state, visible, id)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(s) => serde_json::to_value(s).map_err(|e| e.to_string()),
        None => Ok(json!({"session_id": id, "status": "not_found", "error": null})),
    }
}

async fn list_events(
    state: &AppState,
    visible: &Visibility,
    args: JsonObject,
) -> Result<Value, String> {
    let mut filter = parse_event_filter(&args)?;
    filter.components = visible.0.clone();
    let events = state
        .store
        .list_events(filter)
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({ "events": events }))
}

async fn analytics_sessions(
    state: &AppState,
    visible: &Visibility,
    args: &JsonObject,
) -> Result<Value, String> {
    let params =
        crate::analytics::parse_analytics_params(args, chrono::Utc::now())?.visible_to(visible);
    crate::analytics::session_stats_value(state, &params)
        .await
        .map_err(|e| e.to_string())
}
