//! Embedded migrations, tracked in `schema_migrations`, applied under an advisory lock so two
//! servers starting together do not race. A migration is never edited once released.

use tokio_postgres::NoTls;

use crate::{MIGRATION_LOCK, PgError};

/// `(version, SQL)`, in order.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_search.sql")),
    (3, include_str!("../migrations/0003_last_command.sql")),
    (4, include_str!("../migrations/0004_recordings.sql")),
    (5, include_str!("../migrations/0005_rollups.sql")),
    (6, include_str!("../migrations/0006_rollup_claims.sql")),
];

/// Applies every migration the database lacks, on a connection of its own: the session-level
/// lock goes with the connection whatever happens.
pub(crate) async fn run(config: &tokio_postgres::Config, location: &str) -> Result<(), PgError> {
    let (mut client, connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|source| PgError::Connect {
                location: location.to_string(),
                source,
            })?;
    let task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "migration connection closed");
        }
    });
    let result = async {
        client
            .batch_execute(&format!(
                "SET client_min_messages = warning;
                 SELECT pg_advisory_lock({MIGRATION_LOCK});
                 CREATE TABLE IF NOT EXISTS schema_migrations (
                     version    BIGINT PRIMARY KEY,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                 );"
            ))
            .await?;
        let found = current_version_of(&client).await?;
        let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if found > known {
            return Err(PgError::NewerSchema {
                location: location.to_string(),
                found,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
            let tx = client.transaction().await?;
            tx.batch_execute(sql)
                .await
                .map_err(|source| PgError::Migration {
                    version: *version,
                    source,
                })?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await?;
            tx.commit().await?;
            tracing::info!(version, "applied PostgreSQL migration");
        }
        client
            .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            .await?;
        Ok(())
    }
    .await;
    drop(client);
    let _ = task.await;
    result
}

async fn current_version_of(client: &tokio_postgres::Client) -> Result<i64, PgError> {
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// The applied schema version, for `/health` and `/readyz`.
pub(crate) async fn current_version(client: &deadpool_postgres::Object) -> Result<i64, PgError> {
    let stmt = client
        .prepare_cached("SELECT coalesce(max(version), 0)::BIGINT FROM schema_migrations")
        .await?;
    Ok(client.query_one(&stmt, &[]).await?.get(0))
}
