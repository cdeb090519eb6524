//! Recordings at the server: storing the `output` chunks of an ingest request under the
//! per-session cap, `GET /v1/sessions/{id}/recording` (asciicast v2, `recordings` scope,
//! audited), erasing a session, the audit log, and recording retention.

use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use session_buddy_events::auth::Scope;
use session_buddy_events::{EventOutcome, OutputEvent};
use session_buddy_store::{AuditEntry, ChunkOutcome, IngestOutcome, PackedChunk};

use crate::auth::{Principal, Visibility};
use crate::{AppError, AppState};

/// What the server does with recordings (`--accept-recordings`, `--recording-max-bytes`,
/// `--recording-retention-days`).
#[derive(Debug, Clone)]
pub struct RecordingOptions {
    /// Whether `output` chunks are stored (advertised in `/health`); when not, they are
    /// refused with [`NOT_ACCEPTED`] and senders keep them.
    pub accept: bool,
    /// Data bytes one session's recording holds at most; the chunk past it truncates it.
    pub max_bytes: u64,
    /// Recordings whose newest chunk is older than this are deleted; `None` keeps them (the
    /// sessions' own retention still removes a session's recording with it).
    pub retention: Option<Duration>,
}

impl Default for RecordingOptions {
    fn default() -> Self {
        Self {
            accept: true,
            max_bytes: session_buddy_events::recording::DEFAULT_RECORDING_MAX_BYTES,
            retention: None,
        }
    }
}

/// The refusal of a chunk by a server that does not accept recordings (a sender keeps the
/// chunk and asks `/health` again later).
pub const NOT_ACCEPTED: &str =
    "event_type: this server does not accept recordings (--accept-recordings=false)";

/// Stores the chunks of one request; one outcome per chunk, in order.
pub(crate) async fn store_outputs(
    state: &AppState,
    chunks: Vec<OutputEvent>,
) -> Result<Vec<IngestOutcome>, AppError> {
    let options = &state.options.recordings;
    let ids: Vec<String> = chunks.iter().map(|c| c.session_id.clone()).collect();
    if !options.accept {
        return Ok(ids
            .into_iter()
            .map(|id| {
                let mut o = IngestOutcome::new(EventOutcome::Rejected, id);
                o.error = Some(NOT_ACCEPTED.into());
                o
            })
            .collect());
    }
    let packed: Vec<PackedChunk> = chunks.iter().map(PackedChunk::of).collect();
    let stored = state.store.store_chunks(packed, options.max_bytes).await?;
    Ok(ids
        .into_iter()
        .zip(stored)
        .map(|(id, outcome)| {
            let status = match outcome {
                ChunkOutcome::Stored | ChunkOutcome::OverCap => EventOutcome::Accepted,
                ChunkOutcome::Duplicate => EventOutcome::Duplicate,
            };
            let mut o = IngestOutcome::new(status, id.clone());
            if outcome == ChunkOutcome::OverCap {
                o.error = Some(format!(
                    "not stored: the recording of {id} is {}",
                    session_buddy_store::recording::over_cap_reason(options.max_bytes)
                ));
            }
            o.component = session_buddy_store::component_from_session_id(&id).map(str::to_string);
            o
        })
        .collect())
}

/// Who did it, for the audit log.
pub(crate) fn actor(principal: Option<&Principal>) -> String {
    match principal {
        Some(Principal(claims)) => format!("{} (token {})", claims.sub, claims.jti),
        None => "local (no authentication)".into(),
    }
}

/// Whether the caller may read recordings: with authentication on, its token (or console
/// session) holds `recordings` (or `admin`).
pub(crate) fn recordings_problem(
    state: &AppState,
    principal: Option<&Principal>,
) -> Option<String> {
    if !state.guard.enabled() {
        return None;
    }
    match principal {
        Some(Principal(c)) if c.allows(Scope::Recordings) => None,
        Some(Principal(c)) => Some(format!(
            "this token (sub '{}') lacks the 'recordings' scope that reading a recording needs; \
             it holds: {}",
            c.sub.chars().take(64).collect::<String>(),
            crate::auth::scope_list(c)
        )),
        None => Some("reading a recording needs a token with the 'recordings' scope".into()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RecordingQuery {
    /// `play` (a player shows it) or `export` (the default: saved as a file).
    #[serde(default)]
    purpose: Option<String>,
}

/// The asciicast of a session's recording, audited; the one way any face reads one.
pub(crate) async fn read_cast(
    state: &AppState,
    principal: Option<&Principal>,
    visible: &Visibility,
    id: &str,
    purpose: &str,
) -> Result<String, AppError> {
    if let Some(problem) = recordings_problem(state, principal) {
        return Err(AppError::Forbidden(problem));
    }
    if !session_buddy_events::is_valid_session_id(id) {
        return Err(AppError::BadRequest(format!(
            "'{}' is not a session id",
            id.chars().take(64).collect::<String>()
        )));
    }
    let component = match state.store.get_session(id).await? {
        Some(s) => Some(s.component),
        None => session_buddy_store::component_from_session_id(id).map(str::to_string),
    };
    if visible.components().is_some() && !component.is_some_and(|c| visible.sees(&c)) {
        return Err(AppError::NotFound(format!(
            "no recording of session '{id}'"
        )));
    }
    let Some(recording) = state.store.recording(id).await? else {
        return Err(AppError::NotFound(format!(
            "no recording of session '{id}' (record with `session-buddy track --record` or `shell --record`)"
        )));
    };
    let cast = recording.to_asciicast()?;
    state
        .store
        .record_audit(AuditEntry {
            id: 0,
            at: Utc::now(),
            actor: actor(principal),
            action: format!("recording.{purpose}"),
            session_id: Some(id.to_string()),
            detail: Some(format!(
                "{} chunks, {} bytes",
                recording.info.chunks, recording.info.bytes
            )),
        })
        .await?;
    Ok(cast)
}

/// `GET /v1/sessions/{id}/recording[?purpose=play|export]`.
pub(crate) async fn get_recording(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    visible: Visibility,
    Path(id): Path<String>,
    Query(q): Query<RecordingQuery>,
) -> Result<Response, AppError> {
    let purpose = match q.purpose.as_deref() {
        None | Some("export") => "export",
        Some("play") => "play",
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "purpose '{}' is not one of play, export",
                other.chars().take(40).collect::<String>()
            )));
        }
    };
    let principal = principal.map(|Extension(p)| p);
    let cast = read_cast(&state, principal.as_ref(), &visible, &id, purpose).await?;
    Ok((
        [
            (CONTENT_TYPE, "application/x-asciicast".to_string()),
            (CACHE_CONTROL, "no-store".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("inline; filename=\"{id}.cast\""),
            ),
        ],
        cast,
    )
        .into_response())
}

/// `DELETE /v1/sessions/{id}` (admin): the session, its events and recording, gone for good;
/// an audit entry says it was.
pub(crate) async fn erase(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    if !session_buddy_events::is_valid_session_id(&id) {
        return Err(AppError::BadRequest(format!(
            "'{}' is not a session id",
            id.chars().take(64).collect::<String>()
        )));
    }
    let principal = principal.map(|Extension(p)| p);
    let audit = AuditEntry {
        id: 0,
        at: Utc::now(),
        actor: actor(principal.as_ref()),
        action: "session.erase".into(),
        session_id: Some(id.clone()),
        detail: None,
    };
    let erased = state.store.erase_session(&id, audit).await?;
    if !erased.session && erased.events == 0 && erased.chunks == 0 {
        return Err(AppError::NotFound(format!(
            "no session '{id}' (nothing erased; the attempt is in the audit log)"
        )));
    }
    tracing::info!(session_id = %id, events = erased.events, chunks = erased.chunks, "erased a session");
    Ok(Json(json!({"session_id": id, "erased": erased})))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    session_id: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/audit[?session_id=&limit=]` (admin): who played, exported or erased what.
pub(crate) async fn audit(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, AppError> {
    let limit = q
        .limit
        .unwrap_or(100)
        .clamp(1, session_buddy_store::MAX_PAGE);
    let entries = state.store.audit_log(q.session_id, limit).await?;
    Ok(Json(json!({ "entries": entries })))
}

/// One pass of recording retention (`--recording-retention-days`, on the reaper-lease
/// holder); returns how many recordings went.
pub async fn prune_recordings_once(state: &AppState) -> u64 {
    let Some(retention) = state.options.recordings.retention else {
        return 0;
    };
    if !crate::holds_reaper_lease(state).await {
        return 0;
    }
    let before =
        Utc::now() - chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
    let mut total = 0;
    loop {
        match state
            .store
            .prune_recordings(before, crate::PRUNE_BATCH)
            .await
        {
            Ok(n) => {
                total += n;
                if n < crate::PRUNE_BATCH as u64 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "recording retention pass failed");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(recordings = total, "retention deleted old recordings");
    }
    total
}
