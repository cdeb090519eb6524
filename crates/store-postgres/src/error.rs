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
            other => match fault(&other) {
                Some(Fault::Unavailable) => StoreError::Unavailable(format!("PostgreSQL: {other}")),
                Some(Fault::Full) => StoreError::Full(format!(
                    "PostgreSQL: {other}; free disk space on the PostgreSQL server, and writes resume by themselves"
                )),
                None => StoreError::Backend(Box::new(other)),
            },
        }
    }
}

impl PgError {
    /// The database is away or full ([`fault`]): not the request's fault, so a group commit
    /// answers every caller with it rather than retrying each alone.
    pub(crate) fn is_fault(&self) -> bool {
        fault(self).is_some()
    }
}

/// The failures that are not about the request: they pass by themselves or once disk space is
/// freed, and nothing of the call was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Unavailable,
    Full,
}

/// The one rule for which PostgreSQL failures are the database's absence or lack of space,
/// whichever call met them: no pooled connection (the pool's wait ran out, or opening one
/// failed), a connection that broke, the server shutting down, starting up, out of
/// connections or memory, or read-only (a standby); its disk full (53100).
fn fault(e: &PgError) -> Option<Fault> {
    match e {
        PgError::Pool(_) | PgError::Connect { .. } => Some(Fault::Unavailable),
        PgError::Query(q) => query_fault(q),
        _ => None,
    }
}

fn query_fault(e: &tokio_postgres::Error) -> Option<Fault> {
    if let Some(code) = e.code() {
        let code = code.code();
        return match code {
            "53100" => Some(Fault::Full),
            // 08: connection exception; 57P01–57P03: admin/crash shutdown, cannot connect
            // now; 53000/53200/53300: insufficient resources, out of memory, too many
            // connections; 25006: read-only transaction (a standby, e.g. during a failover).
            _ if code.starts_with("08") => Some(Fault::Unavailable),
            "57P01" | "57P02" | "57P03" | "53000" | "53200" | "53300" | "25006" => {
                Some(Fault::Unavailable)
            }
            _ => None,
        };
    }
    if e.is_closed() {
        return Some(Fault::Unavailable);
    }
    // The connection's socket failed (reset, refused, EOF); a malformed message is not that.
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput) | None => None,
        Some(_) => Some(Fault::Unavailable),
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
