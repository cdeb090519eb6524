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

/// How many times a transaction that failed retryably is tried in all.
const ATTEMPTS: usize = 4;

/// One try of a transaction on `conn`.
pub(crate) type Attempt<'c, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, PgError>> + Send + 'c>>;

/// Runs the transaction `once` on `conn` (with `input`) until it succeeds, fails for a reason
/// a retry cannot help, or has been tried [`ATTEMPTS`] times; `what` names it in the log.
pub(crate) async fn retried<I: Sync + ?Sized, T>(
    what: &str,
    conn: &mut deadpool_postgres::Object,
    input: &I,
    mut once: impl for<'c> FnMut(&'c mut deadpool_postgres::Object, &'c I) -> Attempt<'c, T> + Send,
) -> Result<T, PgError> {
    let mut attempt = 1;
    loop {
        match once(conn, input).await {
            Err(e) if attempt < ATTEMPTS && is_retryable(&e) => {
                tracing::debug!(error = %e, attempt, "{what} transaction retried");
                attempt += 1;
            }
            other => return other,
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
