//! Opens the session database a `--db-path`/`--database-url` names: SQLite or PostgreSQL.

use std::sync::Arc;

use anyhow::Context;
use session_buddy_store::{SqliteStore, Store, SyncMode};
use session_buddy_store_postgres::PostgresStore;

use crate::serve::Database;

/// The store for `db` (migrations applied).
pub(crate) async fn open(
    db: &Database,
    sync: SyncMode,
    pool_size: usize,
) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match db {
        Database::Sqlite(path) => Arc::new(
            SqliteStore::open(path, sync)
                .with_context(|| format!("cannot open the session database {}", path.display()))?,
        ),
        Database::Postgres(url) => Arc::new(
            PostgresStore::connect(url, pool_size)
                .await
                .with_context(|| format!("cannot open the session database {}", redact(url)))?,
        ),
    })
}

/// A database URL without its password.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}
