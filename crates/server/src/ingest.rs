//! Ingest: `POST /v1/events` and the path every face (REST, MCP) shares.
//!
//! Validation comes first, per event; the valid events of a request go to the store in one
//! call (one group commit); the answer has one result per event, in order. A rejected event
//! never spoils its neighbours.

use std::collections::HashMap;
use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use chrono::Utc;
use serde_json::Value;
use session_buddy_events::auth::Claims;
use session_buddy_events::{
    Event, EventOutcome, EventResult, EventType, IngestResponse, ValidationError,
    canonical_event_id, is_valid_session_id, limits,
};
use session_buddy_store::{IngestOutcome, Origin, SessionEffect, component_from_session_id};

use crate::auth::Principal;
use crate::{AppError, AppState};

/// Largest body `POST /v1/events` reads.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

pub(crate) async fn post_events(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, AppError> {
    let source = Source::from_query(query.as_deref())?;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if let Some(charset) = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(';')
                .skip(1)
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
                .map(|(_, v)| v.trim().trim_matches('"').to_ascii_lowercase())
        })
        && charset != "utf-8"
        && charset != "utf8"
    {
        return Err(AppError::UnsupportedMediaType(format!(
            "charset '{}' is not supported: send UTF-8",
            charset.chars().take(40).collect::<String>()
        )));
    }
    let ndjson = match content_type.as_str() {
        "application/json" => false,
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => true,
        "" => {
            return Err(AppError::UnsupportedMediaType(
                "missing Content-Type: send application/json (an array of events) or application/x-ndjson".into(),
            ));
        }
        other => {
            return Err(AppError::UnsupportedMediaType(format!(
                "Content-Type '{other}' is not supported: send application/json (an array of events) or application/x-ndjson"
            )));
        }
    };
    let bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        AppError::PayloadTooLarge(format!(
            "request body is larger than {MAX_BODY_BYTES} bytes; send at most {} events per request",
            limits::MAX_EVENTS_PER_REQUEST
        ))
    })?;
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(AppError::BadRequest(format!(
            "body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )));
    }
    let items = if ndjson {
        split_ndjson(&bytes)?
    } else {
        check_depth(&bytes)?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Array(items)) => items.into_iter().map(Ok).collect(),
            Ok(obj @ Value::Object(_)) => vec![Ok(obj)],
            Ok(_) => {
                return Err(AppError::BadRequest(
                    "body must be a JSON array of event objects".into(),
                ));
            }
            Err(e) => {
                return Err(AppError::BadRequest(format!("body is not valid JSON: {e}")));
            }
        }
    };
    if items.is_empty() {
        return Err(AppError::BadRequest(format!(
            "no events in the body: send 1 to {} events",
            limits::MAX_EVENTS_PER_REQUEST
        )));
    }
    if items.len() > limits::MAX_EVENTS_PER_REQUEST {
        return Err(AppError::PayloadTooLarge(format!(
            "{} events in one request; at most {} are allowed",
            items.len(),
            limits::MAX_EVENTS_PER_REQUEST
        )));
    }
    let mut candidates: Vec<Candidate> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Ok(v) => Candidate::new(&v, session_buddy_events::parse_event),
            Err(e) => Candidate::invalid(ValidationError::new(
                "event",
                format!("line {} is not valid JSON: {e}", i + 1),
            )),
        })
        .collect();
    if let Some(Extension(Principal(claims))) = &principal {
        let denied = bind_to_component(&state, claims, &mut candidates).await?;
        if denied > 0 && denied == candidates.len() {
            return Err(AppError::Forbidden(format!(
                "{}; no event in this request is allowed",
                candidates
                    .iter()
                    .find_map(|c| c.parsed.as_ref().err().filter(|e| e.field == "component"))
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            )));
        }
    }
    let results = ingest_candidates_from(&state, candidates, source)
        .await?
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    Ok(Json(IngestResponse { results }))
}

/// Who sends a request's events: a live client, or `session-buddy import` replaying history
/// (`POST /v1/events?import=true`; the same scope, `emit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Source {
    #[default]
    Live,
    Import,
}

impl Source {
    /// From the query string: `import=true|false|1|0`; other parameters are ignored.
    fn from_query(query: Option<&str>) -> Result<Self, AppError> {
        let mut source = Source::Live;
        for (key, value) in query
            .unwrap_or_default()
            .split('&')
            .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        {
            if key != "import" {
                continue;
            }
            source = match value {
                "true" | "1" => Source::Import,
                "false" | "0" => Source::Live,
                other => {
                    return Err(AppError::BadRequest(format!(
                        "import: '{}' is not true or false",
                        other.chars().take(40).collect::<String>()
                    )));
                }
            };
        }
        Ok(source)
    }

    /// The store's origin for a batch received `now`: an import is judged by the reaper's
    /// cutoffs at that moment.
    fn origin(self, state: &AppState, now: chrono::DateTime<Utc>) -> Origin {
        match self {
            Source::Live => Origin::Live,
            Source::Import => {
                let (active_cutoff, legacy_cutoff) = crate::reap_cutoffs(&state.options, now);
                Origin::Import {
                    active_cutoff,
                    legacy_cutoff,
                }
            }
        }
    }
}

fn split_ndjson(bytes: &[u8]) -> Result<Vec<Result<Value, String>>, AppError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| AppError::BadRequest(format!("body is not valid UTF-8: {e}")))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            json_depth_problem(l.as_bytes()).map_or_else(
                || serde_json::from_str::<Value>(l).map_err(|e| e.to_string()),
                Err,
            )
        })
        .collect())
}

/// Deepest JSON nesting a request may have (an event needs 3 or 4; metadata a few more).
pub const MAX_JSON_DEPTH: usize = 64;

fn check_depth(bytes: &[u8]) -> Result<(), AppError> {
    json_depth_problem(bytes).map_or(Ok(()), |p| Err(AppError::BadRequest(format!("body {p}"))))
}

/// Says so when `bytes` nest arrays/objects deeper than [`MAX_JSON_DEPTH`]; a scan over the
/// raw text, before any parser recurses into it.
pub(crate) fn json_depth_problem(bytes: &[u8]) -> Option<String> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Some(format!(
                        "nests JSON deeper than {MAX_JSON_DEPTH} levels; flatten it"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Rejects (in place) each valid event that `claims` may not write because its token is bound
/// to another component: a start by its `component_name`, anything else by its session's
/// component (from the store when the session exists, else from the session-id rule).
/// Returns how many were rejected so.
pub(crate) async fn bind_to_component(
    state: &AppState,
    claims: &Claims,
    candidates: &mut [Candidate],
) -> Result<usize, AppError> {
    if claims.bound_component().is_none() {
        return Ok(0);
    }
    let mut known: HashMap<String, Option<String>> = HashMap::new();
    let mut denied = 0;
    for c in candidates.iter_mut() {
        let component = match &c.parsed {
            Err(_) => continue,
            Ok(Event::SessionStart(s)) => Some(s.component_name.clone()),
            Ok(event) => {
                let sid = event.session_id();
                match known.get(&sid) {
                    Some(found) => found.clone(),
                    None => {
                        let found = match state.store.get_session(&sid).await? {
                            Some(session) => Some(session.component),
                            None => component_from_session_id(&sid).map(str::to_string),
                        };
                        known.insert(sid, found.clone());
                        found
                    }
                }
            }
        };
        let problem = match component {
            Some(component) => claims.component_problem(&component),
            None => Some(format!(
                "this token may write only '{}' events, and this session id names no component",
                claims.bound_component().unwrap_or_default()
            )),
        };
        if let Some(rule) = problem {
            c.parsed = Err(ValidationError::new("component", rule));
            denied += 1;
        }
    }
    Ok(denied)
}

/// What is known of an event even when it fails validation, for results and metric labels.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hint {
    event_id: Option<String>,
    session_id: Option<String>,
    component: Option<String>,
    event_type: Option<EventType>,
}

impl Hint {
    fn of(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        let event_id = s("event_id")
            .map(|id| canonical_event_id(id).unwrap_or_else(|| id.chars().take(100).collect()));
        let session_id = s("session_id")
            .filter(|id| is_valid_session_id(id))
            .map(str::to_string);
        let component = s("component_name")
            .filter(|c| session_buddy_events::is_valid_name(c))
            .map(str::to_string)
            .or_else(|| {
                session_id
                    .as_deref()
                    .and_then(component_from_session_id)
                    .map(str::to_string)
            });
        let event_type = s("event_type").and_then(EventType::parse);
        Self {
            event_id,
            session_id,
            component,
            event_type,
        }
    }
}

/// One event on its way in: validated, or the reason it is not.
pub(crate) struct Candidate {
    hint: Hint,
    parsed: Result<Event, ValidationError>,
}

impl Candidate {
    pub(crate) fn new(v: &Value, parse: impl Fn(&Value) -> Result<Event, ValidationError>) -> Self {
        Self {
            hint: Hint::of(v),
            parsed: parse(v),
        }
    }

    pub(crate) fn invalid(error: ValidationError) -> Self {
        Self {
            hint: Hint::default(),
            parsed: Err(error),
        }
    }
}

/// REST's path for a list of JSON events: validate, store, answer one result per event.
pub async fn ingest_values(
    state: &AppState,
    values: Vec<Value>,
) -> Result<Vec<EventResult>, AppError> {
    let candidates = values
        .iter()
        .map(|v| Candidate::new(v, session_buddy_events::parse_event))
        .collect();
    Ok(ingest_candidates(state, candidates)
        .await?
        .into_iter()
        .map(|(r, _)| r)
        .collect())
}

/// The shared ingest path for live events: [`ingest_candidates_from`] a live client.
pub(crate) async fn ingest_candidates(
    state: &AppState,
    candidates: Vec<Candidate>,
) -> Result<Vec<(EventResult, Option<IngestOutcome>)>, AppError> {
    ingest_candidates_from(state, candidates, Source::Live).await
}

/// The shared ingest path: one store call for all valid candidates, metrics, results in order.
/// It runs as its own task, so a client that disconnects after sending cannot cut it short
/// between the commit and the metrics.
pub(crate) async fn ingest_candidates_from(
    state: &AppState,
    candidates: Vec<Candidate>,
    source: Source,
) -> Result<Vec<(EventResult, Option<IngestOutcome>)>, AppError> {
    let state = state.clone();
    tokio::spawn(async move { ingest_task(&state, candidates, source).await })
        .await
        .map_err(|e| AppError::Internal(format!("ingest task failed: {e}")))?
}

async fn ingest_task(
    state: &AppState,
    candidates: Vec<Candidate>,
    source: Source,
) -> Result<Vec<(EventResult, Option<IngestOutcome>)>, AppError> {
    let started = Instant::now();
    let mut valid = Vec::new();
    let mut slots = Vec::with_capacity(candidates.len());
    for c in candidates {
        match c.parsed {
            Ok(event) => {
                slots.push(Slot::Valid(valid.len(), c.hint));
                valid.push(event);
            }
            Err(e) => slots.push(Slot::Invalid(e, c.hint)),
        }
    }
    let types: Vec<EventType> = valid.iter().map(Event::event_type).collect();
    let ids: Vec<Option<String>> = valid
        .iter()
        .map(|e| Some(e.storage_id().hyphenated().to_string()))
        .collect();
    let store_started = Instant::now();
    let n_valid = valid.len();
    let outcomes = if valid.is_empty() {
        Vec::new()
    } else {
        let now = Utc::now();
        let outcomes = store_all(state, valid, now, source).await?;
        if outcomes.iter().any(|o| o.status == EventOutcome::Accepted) {
            state.stream.ingested();
        }
        outcomes
    };
    let store_seconds = store_started.elapsed().as_secs_f64();
    if n_valid > 0 {
        state.metrics.batch(n_valid, store_seconds);
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut success: HashMap<(String, &'static str), u64> = HashMap::new();
    let mut failure: HashMap<(String, &'static str, String), u64> = HashMap::new();
    let mut counts: HashMap<&'static str, u64> = HashMap::new();
    let mut out = Vec::with_capacity(slots.len());
    let mut outcomes = outcomes.into_iter();
    for slot in slots {
        match slot {
            Slot::Valid(i, hint) => {
                let Some(outcome) = outcomes.next() else {
                    return Err(AppError::Internal(
                        "the store answered fewer results than events".into(),
                    ));
                };
                let event_type = types[i].as_str();
                let component = outcome
                    .component
                    .clone()
                    .or(hint.component)
                    .unwrap_or_else(|| "unknown".into());
                *counts.entry(outcome.status.as_str()).or_default() += 1;
                match outcome.status {
                    EventOutcome::Rejected => {
                        *failure
                            .entry((component, event_type, "event_id".into()))
                            .or_default() += 1;
                    }
                    _ => *success.entry((component, event_type)).or_default() += 1,
                }
                record_effects(state, &outcome.effects);
                let result = EventResult {
                    event_id: ids[i].clone(),
                    status: outcome.status,
                    session_id: Some(outcome.session_id.clone()),
                    error: outcome.error.clone(),
                };
                out.push((result, Some(outcome)));
            }
            Slot::Invalid(error, hint) => {
                *counts.entry("rejected").or_default() += 1;
                let event_type = hint.event_type.map(EventType::as_str).unwrap_or("unknown");
                *failure
                    .entry((
                        hint.component.clone().unwrap_or_else(|| "unknown".into()),
                        event_type,
                        error_type(&error.field),
                    ))
                    .or_default() += 1;
                out.push((
                    EventResult::rejected(hint.event_id, hint.session_id, error.to_string()),
                    None,
                ));
            }
        }
    }
    for ((component, event_type), n) in success {
        state.metrics.emitted(&component, event_type, n, elapsed);
    }
    for ((component, event_type, error_type), n) in failure {
        state
            .metrics
            .emit_failed(&component, event_type, &error_type, n, elapsed);
    }
    for (status, n) in counts {
        state.metrics.ingest_counted(status, n);
    }
    Ok(out)
}

/// Stores a request's valid events: the recording chunks as recordings, the rest through the
/// store's ingest (one group commit); the outcomes in the order of `valid`.
async fn store_all(
    state: &AppState,
    valid: Vec<Event>,
    now: chrono::DateTime<Utc>,
    source: Source,
) -> Result<Vec<IngestOutcome>, AppError> {
    if !valid.iter().any(|e| matches!(e, Event::Output(_))) {
        return Ok(state
            .store
            .ingest_from(valid, now, source.origin(state, now))
            .await?);
    }
    let n = valid.len();
    let (mut chunks, mut chunk_at, mut events, mut event_at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, e) in valid.into_iter().enumerate() {
        match e {
            Event::Output(c) => {
                chunks.push(c);
                chunk_at.push(i);
            }
            other => {
                events.push(other);
                event_at.push(i);
            }
        }
    }
    let mut answers: Vec<Option<IngestOutcome>> = vec![None; n];
    if !events.is_empty() {
        let stored = state
            .store
            .ingest_from(events, now, source.origin(state, now))
            .await?;
        for (i, o) in event_at.into_iter().zip(stored) {
            answers[i] = Some(o);
        }
    }
    for (i, o) in chunk_at
        .into_iter()
        .zip(crate::recording::store_outputs(state, chunks).await?)
    {
        answers[i] = Some(o);
    }
    answers
        .into_iter()
        .map(|a| a.ok_or_else(|| AppError::Internal("an event got no outcome".into())))
        .collect()
}

enum Slot {
    Valid(usize, Hint),
    Invalid(ValidationError, Hint),
}

/// A bounded label value for a failed rule: the field, without paths into free-form data.
fn error_type(field: &str) -> String {
    let head = field.split(['[', '.']).next().unwrap_or(field);
    match head {
        "metadata" => "metadata".into(),
        "user" | "environment" => field.chars().take(40).collect(),
        other => other.chars().take(40).collect(),
    }
}

fn record_effects(state: &AppState, effects: &[SessionEffect]) {
    for effect in effects {
        match effect {
            SessionEffect::Started {
                component,
                shell_type,
            } => state.metrics.session_started(component, shell_type),
            SessionEffect::Ended {
                component,
                outcome,
                duration_seconds,
                was_abandoned,
            } => state.metrics.session_ended(
                component,
                outcome.as_str(),
                *duration_seconds,
                !*was_abandoned,
            ),
            SessionEffect::Revived { component } => state.metrics.session_revived(component),
            SessionEffect::Abandoned {
                component,
                duration_seconds,
            } => state
                .metrics
                .session_ended(component, "abandoned", *duration_seconds, true),
        }
    }
}
