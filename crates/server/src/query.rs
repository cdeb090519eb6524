//! Read side of the REST API: sessions, events, schemas, health and metrics.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use session_buddy_events::{
    EventType, SchemaRegistry, SessionPage, SessionStatus, StoredEvent, is_valid_session_id,
    parse_timestamp,
};
use session_buddy_store::{DEFAULT_PAGE, EventFilter, FailureKind, MAX_PAGE, SessionFilter};

use crate::auth::Visibility;
use crate::{AppError, AppState, VERSION};

const FILTER_KEYS: &[&str] = &[
    "type",
    "session_type",
    "component",
    "user",
    "host",
    "status",
    "after",
    "before",
    "min_duration",
    "q",
    "limit",
    "cursor",
    "q",
];

/// Parses the session filters of `GET /v1/sessions` (and the MCP `list_sessions` tool) from
/// name → value pairs; values may be strings or numbers. Unknown names are refused.
pub fn parse_session_filter(params: &Map<String, Value>) -> Result<SessionFilter, String> {
    if let Some(unknown) = params.keys().find(|k| !FILTER_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown parameter '{unknown}'; known: {}",
            FILTER_KEYS.join(", ")
        ));
    }
    let text = |k: &str| -> Result<Option<String>, String> {
        match params.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) if s.len() > 255 || s.contains('\0') => {
                Err(format!("{k}: must be at most 255 characters without NUL"))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(format!("{k}: must be a string")),
        }
    };
    let time = |k: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
        text(k)?
            .map(|s| parse_timestamp(&s).map_err(|rule| format!("{k}: {rule}")))
            .transpose()
    };
    let limit = match text("limit")? {
        None => DEFAULT_PAGE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(format!(
                    "limit: must be an integer from 1 to {MAX_PAGE}, got '{s}'"
                ));
            }
        },
    };
    let status = text("status")?
        .map(|s| {
            SessionStatus::parse(&s)
                .ok_or_else(|| format!("status: must be active, ended or abandoned, got '{s}'"))
        })
        .transpose()?;
    let min_duration = text("min_duration")?
        .map(|s| match s.parse::<f64>() {
            Ok(d) if d.is_finite() && d >= 0.0 => Ok(d),
            _ => Err(format!(
                "min_duration: must be a non-negative number of seconds, got '{s}'"
            )),
        })
        .transpose()?;
    // Values are bound as SQL parameters anyway; refusing what no stored value can contain
    // answers a mistyped or hostile filter with a clear 400 instead of an empty page.
    let checked =
        |k: &str, allowed: fn(char) -> bool, what: &str| -> Result<Option<String>, String> {
            let v = text(k)?;
            match &v {
                Some(s) if !s.chars().all(allowed) => Err(format!(
                    "{k}: may contain only {what}, got '{}'",
                    s.chars()
                        .take(40)
                        .map(|c| if c.is_control() { '?' } else { c })
                        .collect::<String>()
                )),
                _ => Ok(v),
            }
        };
    let name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
    let type_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    let user_char = |c: char| {
        c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '$' | '\\' | ' ' | '+')
    };
    let session_type = match checked("type", type_char, "letters, digits, '-', '_' and '.'")? {
        Some(t) => Some(t),
        None => checked(
            "session_type",
            type_char,
            "letters, digits, '-', '_' and '.'",
        )?,
    };
    Ok(SessionFilter {
        session_type,
        component: checked("component", name, "letters, digits, '-' and '_'")?,
        user: checked(
            "user",
            user_char,
            "letters, digits, spaces and the characters - _ . @ $ \\ +",
        )?,
        host: checked("host", host_char, "letters, digits, '-', '_', '.' and ':'")?,
        status,
        after: time("after")?,
        before: time("before")?,
        min_duration,
        q: search_text(params.get("q"))?,
        search_plan: None,
        limit,
        cursor: text("cursor")?,
        components: None,
    })
}

/// `q`: a search text, checked by the store's one rule ([`session_buddy_store::search_term`]:
/// trimmed, empty means no search, at least 3 characters).
fn search_text(v: Option<&Value>) -> Result<Option<String>, String> {
    let q = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err("q: must be a string".into()),
    };
    match session_buddy_store::search_term(Some(&q)) {
        Ok(t) => Ok(t.map(str::to_string)),
        Err(session_buddy_store::StoreError::InvalidQuery(m)) => Err(m),
        Err(e) => Err(e.to_string()),
    }
}

fn to_map(q: HashMap<String, String>) -> Map<String, Value> {
    q.into_iter().map(|(k, v)| (k, Value::String(v))).collect()
}

pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    visible: Visibility,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<SessionPage>, AppError> {
    let mut filter = parse_session_filter(&to_map(q)).map_err(AppError::BadRequest)?;
    filter.components = visible.0;
    Ok(Json(state.store.list_sessions(filter).await?))
}

/// The session `id` when it is stored and the caller may see it; an invisible session is
/// `None`, exactly like a missing one.
pub(crate) async fn visible_session(
    state: &AppState,
    visible: &Visibility,
    id: &str,
) -> Result<Option<session_buddy_events::Session>, AppError> {
    Ok(state
        .store
        .get_session(id)
        .await?
        .filter(|s| visible.sees(&s.component)))
}

fn checked_id(id: &str) -> Result<(), AppError> {
    if is_valid_session_id(id) {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!(
            "'{}' is not a session id: ids contain only letters, digits, '-' and '_' (at most 128)",
            id.chars().take(64).collect::<String>()
        )))
    }
}

pub(crate) async fn get_session(
    State(state): State<AppState>,
    visible: Visibility,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    checked_id(&id)?;
    match visible_session(&state, &visible, &id).await? {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(AppError::NotFound(format!("no session '{id}'"))),
    }
}

pub(crate) async fn session_events(
    State(state): State<AppState>,
    visible: Visibility,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    checked_id(&id)?;
    // A restricted caller sees the timeline of a stored session of its components only (a
    // pending session's component is not known yet).
    if visible.components().is_some() && visible_session(&state, &visible, &id).await?.is_none() {
        return Err(AppError::NotFound(format!("no session '{id}'")));
    }
    let events = state.store.session_events(&id).await?;
    if events.is_empty() && state.store.get_session(&id).await?.is_none() {
        return Err(AppError::NotFound(format!("no session '{id}'")));
    }
    Ok(Json(json!({ "session_id": id, "events": events })))
}

/// Parses the filters of `GET /v1/events` (and the MCP `list_events` tool).
pub(crate) fn parse_event_filter(params: &Map<String, Value>) -> Result<EventFilter, String> {
    const KEYS: &[&str] = &["session_id", "type", "limit"];
    if let Some(unknown) = params.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown parameter '{unknown}'; known: {}",
            KEYS.join(", ")
        ));
    }
    let session_id = match params.get("session_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_valid_session_id(s) => Some(s.clone()),
        Some(_) => {
            return Err("session_id: not a session id (letters, digits, '-' and '_')".into());
        }
    };
    let event_type = match params.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(EventType::parse(s).ok_or_else(|| {
            format!("type: must be session_start, session_end, command or heartbeat, got '{s}'")
        })?),
        Some(_) => return Err("type: must be a string".into()),
    };
    let limit = match params.get("limit") {
        None | Some(Value::Null) => 100,
        Some(v) => {
            let n = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(0) as usize;
            if !(1..=MAX_PAGE).contains(&n) {
                return Err(format!("limit: must be an integer from 1 to {MAX_PAGE}"));
            }
            n
        }
    };
    Ok(EventFilter {
        session_id,
        event_type,
        limit,
        components: None,
    })
}

pub(crate) async fn list_events(
    State(state): State<AppState>,
    visible: Visibility,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let mut filter = parse_event_filter(&to_map(q)).map_err(AppError::BadRequest)?;
    filter.components = visible.0.clone();
    let session_id = filter.session_id.clone();
    let type_filtered = filter.event_type.is_some();
    let events: Vec<StoredEvent> = state.store.list_events(filter).await?;
    if let Some(id) = session_id
        && events.is_empty()
        && !session_is_known(&state, &visible, &id, type_filtered).await?
    {
        return Err(AppError::NotFound(format!("no session '{id}'")));
    }
    Ok(Json(json!({ "events": events })))
}

/// Whether the store knows the session and the caller may see it: its start, or (pending)
/// any of its events; a listing filtered by type can be empty for a known session.
pub(crate) async fn session_is_known(
    state: &AppState,
    visible: &Visibility,
    session_id: &str,
    type_filtered: bool,
) -> Result<bool, AppError> {
    if let Some(s) = state.store.get_session(session_id).await? {
        return Ok(visible.sees(&s.component));
    }
    if !type_filtered {
        return Ok(false);
    }
    let any = state
        .store
        .list_events(EventFilter {
            session_id: Some(session_id.to_string()),
            event_type: None,
            limit: 1,
            components: visible.0.clone(),
        })
        .await?;
    Ok(!any.is_empty())
}

pub(crate) async fn list_schemas() -> Json<Value> {
    let schemas: Vec<Value> = SchemaRegistry::list()
        .into_iter()
        .map(|(name, description)| json!({"name": name, "description": description, "href": format!("/v1/schemas/{name}")}))
        .collect();
    Json(json!({ "schema_version": session_buddy_events::EVENT_VERSION_1_1, "schemas": schemas }))
}

pub(crate) async fn get_schema(Path(name): Path<String>) -> Result<Json<Value>, AppError> {
    SchemaRegistry::get(&name)
        .map(Json)
        .map_err(|e| AppError::NotFound(e.to_string()))
}

pub(crate) async fn health_value(state: &AppState) -> (bool, Value) {
    match state.store.health().await {
        Ok(h) => (
            true,
            json!({"status": "ok", "service": "session-buddy", "version": VERSION, "storage": h,
                   "accept_recordings": state.options.recordings.accept,
                   "recording_max_bytes": state.options.recordings.max_bytes}),
        ),
        Err(e) => (
            false,
            json!({"status": "degraded", "service": "session-buddy", "version": VERSION,
                   "storage": {"reachable": e.kind() == FailureKind::Full,
                               "cause": e.kind().as_str(), "error": e.to_string()},
                   "accept_recordings": state.options.recordings.accept,
                   "recording_max_bytes": state.options.recordings.max_bytes}),
        ),
    }
}

pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let (ok, body) = health_value(&state).await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when the storage takes reads and writes; else 503 naming the `cause`
/// (`unavailable`, `full`, `error`, or `not_migrated`), with `Retry-After` as ingest gives it.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.health().await {
        Ok(h) if h.reachable && h.schema_version > 0 => {
            Json(json!({"status": "ready", "storage": h})).into_response()
        }
        Ok(h) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "cause": "not_migrated", "storage": h})),
        )
            .into_response(),
        Err(e) => {
            let body = json!({"status": "not ready", "cause": e.kind().as_str(),
                              "error": e.to_string()});
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
            if let Some(secs) = AppError::from(e).retry_after() {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, secs.into());
            }
            response
        }
    }
}

/// `GET /metrics`. The metrics add up every component, so a token bound to components is
/// refused (403) when `/metrics` needs a token; when it is public, it is public.
pub(crate) async fn metrics(State(state): State<AppState>, visible: Visibility) -> Response {
    if let Some(problem) = visible.aggregate_problem() {
        return AppError::Forbidden(problem).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

pub(crate) async fn not_found() -> AppError {
    AppError::NotFound(
        "no such endpoint; see /v1/sessions, /v1/events, /v1/schemas, /health, /metrics, /mcp"
            .into(),
    )
}
