//! The one error type at the HTTP edge: domain errors mapped to a status and `{"error": …}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use session_buddy_store::{FailureKind, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// The `Host` header names a host this server does not answer for (DNS rebinding).
    #[error("{0}")]
    MisdirectedHost(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503 with `Retry-After`: the storage cannot take the request now (the database is away,
    /// the pool has no connection, the server is stopping).
    #[error("{0}")]
    Unavailable(String),
    /// 507: the disk under the database is full.
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// `Retry-After` of a 503 for unavailable storage: a PostgreSQL restart or failover takes
/// seconds; the clients' own backoff (from 200 ms, doubling) keeps their events meanwhile.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// `Retry-After` of a 507: space comes back when someone frees it, not in seconds.
pub const FULL_RETRY_AFTER_SECS: u64 = 60;

/// The one mapping of a storage failure to an answer, for every face (REST, MCP, console,
/// `/readyz`): by [`StoreError::kind`].
impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidQuery(m) => AppError::BadRequest(m),
            other => match other.kind() {
                FailureKind::Unavailable => AppError::Unavailable(other.to_string()),
                FailureKind::Full => AppError::InsufficientStorage(other.to_string()),
                FailureKind::Error => AppError::Internal(other.to_string()),
            },
        }
    }
}

impl AppError {
    /// Seconds a client should wait before trying again, when the failure passes by itself.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            AppError::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            AppError::InsufficientStorage(_) => Some(FULL_RETRY_AFTER_SECS),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if matches!(
            self,
            AppError::Internal(_) | AppError::Unavailable(_) | AppError::InsufficientStorage(_)
        ) {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (
            self.status(),
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        let headers = response.headers_mut();
        if let AppError::Unauthorized(_) = &self {
            headers.insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"session-buddy\""),
            );
        }
        if let Some(secs) = self.retry_after() {
            headers.insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
