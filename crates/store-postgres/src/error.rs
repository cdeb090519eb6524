//! What can go wrong talking to PostgreSQL, in the user's words.

use session_buddy_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("database URL '{url}' is not a PostgreSQL URL: {source}")]
    Url {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("cannot connect to {location}: {source}")]
    Connect {
        location: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(
        "the database {location} has schema version {found}, newer than this program's {known}; upgrade session-buddy"
    )]
    NewerSchema {
        location: String,
        found: i64,
        known: i64,
    },
    #[error("migration {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("no database connection available: {0}")]
    Pool(String),
    #[error("{0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Corrupt(m) => StoreError::Corrupt(m),
            other => StoreError::Backend(Box::new(other)),
        }
    }
}

/// Whether retrying the whole transaction may succeed (deadlock, serialization failure).
pub(crate) fn is_retryable(e: &PgError) -> bool {
    use tokio_postgres::error::SqlState;
    match e {
        PgError::Query(q) => matches!(
            q.code(),
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
        ),
        _ => false,
    }
}
