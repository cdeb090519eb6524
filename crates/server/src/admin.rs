//! Admin operations over stored data (`admin` scope: the auth layer requires it of every
//! method but GET and `POST /v1/events`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::Value;
use session_buddy_store::Redaction;

use crate::{AppError, AppState};

/// `POST /v1/admin/redact` `{"apply": bool}` (default false: a dry run): re-applies the
/// current redaction rules to every stored command's arguments; answers
/// `{"examined", "changed", "applied"}`.
pub(crate) async fn redact(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Redaction>, AppError> {
    let apply = if body.iter().all(u8::is_ascii_whitespace) {
        false
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(o)) => match o.get("apply") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(AppError::BadRequest("apply: must be true or false".into())),
            },
            _ => {
                return Err(AppError::BadRequest(
                    "the body must be a JSON object such as {\"apply\": true}".into(),
                ));
            }
        }
    };
    let report = state.store.redact_stored(apply).await?;
    if apply {
        tracing::info!(
            examined = report.examined,
            changed = report.changed,
            "re-applied the redaction rules to stored events"
        );
    }
    Ok(Json(report))
}
