//! Opens the session database a `--db-path`/`--database-url` names: SQLite or PostgreSQL.
//! Every command opens it here, so what a mistyped path does is decided once: a command that
//! reads refuses a file that is not there, `serve` makes its default home but not a directory
//! someone named.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use session_buddy_store::Store;
use session_buddy_store_postgres::PostgresStore;
use session_buddy_store_sqlite::{SqliteOptions, SqliteStore};

use crate::serve::Database;

/// What opening a SQLite database may create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// Nothing: the database must exist (commands that read one: export, token …).
    Nothing,
    /// The file, in a directory that exists (a path someone gave).
    File,
    /// The file and the directories above it (the default in `$SESSION_BUDDY_HOME`).
    FileAndDirectories,
}

/// What a store is opened with: SQLite's sync mode and page caches, PostgreSQL's pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    pub sqlite: SqliteOptions,
    pub pool_size: usize,
}

impl Tuning {
    /// A command's own store: SQLite's defaults, at most `pool_size` PostgreSQL connections.
    pub(crate) fn pool(pool_size: usize) -> Self {
        Self {
            sqlite: SqliteOptions::default(),
            pool_size,
        }
    }
}

/// The store for `db` (migrations applied).
pub(crate) async fn open(
    db: &Database,
    create: Create,
    tuning: Tuning,
) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match db {
        Database::Sqlite(path) => Arc::new(open_sqlite(path, create, tuning.sqlite)?),
        Database::Postgres(url) => Arc::new(
            PostgresStore::connect(url, tuning.pool_size)
                .await
                .with_context(|| format!("cannot open the session database {}", redact(url)))?,
        ),
    })
}

fn open_sqlite(path: &Path, create: Create, options: SqliteOptions) -> anyhow::Result<SqliteStore> {
    let missing = |p: &Path| matches!(p.try_exists(), Ok(false));
    match create {
        Create::Nothing if missing(path) => bail!(
            "no session database at {}: check the path (--db-path, SESSION_BUDDY_DB_PATH, \
             --database-url or SESSION_BUDDY_HOME); `session-buddy serve` creates one on its \
             first start",
            path.display()
        ),
        Create::File => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                && missing(dir)
            {
                bail!(
                    "the directory {} of the session database {} does not exist: create it \
                     (mkdir -p {}) or give another path",
                    dir.display(),
                    path.display(),
                    dir.display()
                );
            }
        }
        _ => {}
    }
    SqliteStore::open_with(path, options)
        .with_context(|| format!("cannot open the session database {}", path.display()))
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
