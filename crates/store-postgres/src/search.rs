//! Text search on PostgreSQL (`SessionFilter::q`, `migrations/0002_search.sql`): the command
//! pairs ingest keeps, and the conditions a page query adds; the same semantics and the same
//! two plans as the SQLite backend (`ILIKE` with the text's `%`, `_` and `\` escaped; GIN
//! trigram indexes on the four session columns instead of an FTS table).

use deadpool_postgres::{Object, Transaction};
use session_buddy_store::{SEARCH_COUNT_MAX, SEARCH_SAMPLE, SearchPlan, like_pattern};

use crate::PgError;

/// Commands of stored sessions (`(command, session id)`): each pair once, each name in the
/// vocabulary. Sorted first, so that concurrent batches take the index entries in one order.
pub(crate) async fn index_commands(
    tx: &Transaction<'_>,
    mut pairs: Vec<(&str, &str)>,
) -> Result<(), PgError> {
    if pairs.is_empty() {
        return Ok(());
    }
    pairs.sort_unstable();
    pairs.dedup();
    let (commands, sessions): (Vec<&str>, Vec<&str>) = pairs.into_iter().unzip();
    let stmt = tx
        .prepare_cached(
            "WITH new AS (
                 INSERT INTO session_commands (command, session_id)
                 SELECT * FROM unnest($1::text[], $2::text[])
                 ON CONFLICT DO NOTHING RETURNING command)
             INSERT INTO command_names (name)
             SELECT DISTINCT command FROM new ORDER BY 1
             ON CONFLICT DO NOTHING",
        )
        .await?;
    tx.execute(&stmt, &[&commands, &sessions]).await?;
    Ok(())
}

/// The sessions whose commands have a matching name (`{like}`: the pattern).
const COMMAND_MATCH: &str = "SELECT session_id FROM session_commands WHERE command IN
    (SELECT name FROM command_names WHERE name ILIKE {like} ESCAPE '\\')";

/// The four columns' test (each served by its trigram index).
const COLUMNS_MATCH: &str = "session_id ILIKE {like} ESCAPE '\\'
    OR username ILIKE {like} ESCAPE '\\' OR hostname ILIKE {like} ESCAPE '\\'
    OR component ILIKE {like} ESCAPE '\\'";

/// The row test of the walk (`{like}`: the pattern).
const ROW_MATCHES: &str = " AND (session_id ILIKE {like} ESCAPE '\\'
    OR username ILIKE {like} ESCAPE '\\' OR hostname ILIKE {like} ESCAPE '\\'
    OR component ILIKE {like} ESCAPE '\\'
    OR EXISTS (SELECT 1 FROM session_commands c
               WHERE c.session_id = sessions.session_id
                 AND c.command IN (SELECT name FROM command_names
                                   WHERE name ILIKE {like} ESCAPE '\\')))";

/// How to find the matches of `term` for a page of `limit`: they are counted, up to
/// [`SEARCH_COUNT_MAX`], through the indexes (a session counted twice only makes a walk
/// likelier), and among the [`SEARCH_SAMPLE`] newest sessions.
pub(crate) async fn plan(conn: &Object, term: &str, limit: usize) -> Result<SearchPlan, PgError> {
    let sql = format!(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM sessions WHERE {} LIMIT $2) a)
              + (SELECT count(*) FROM ({} LIMIT $2) b),
                (SELECT count(*) FROM (SELECT session_id, username, hostname, component
                    FROM sessions ORDER BY started_at DESC, session_id DESC LIMIT $3) AS sessions
                 WHERE true{})",
        COLUMNS_MATCH.replace("{like}", "$1"),
        COMMAND_MATCH.replace("{like}", "$1"),
        ROW_MATCHES.replace("{like}", "$1"),
    );
    let stmt = conn.prepare_cached(&sql).await?;
    let row = conn
        .query_one(
            &stmt,
            &[&like_pattern(term), &SEARCH_COUNT_MAX, &SEARCH_SAMPLE],
        )
        .await?;
    Ok(SearchPlan::choose(row.get(0), row.get(1), limit))
}

/// The search condition for [`session_buddy_store::session_page_query`] under `plan`.
pub(crate) fn clause(plan: SearchPlan) -> String {
    match plan {
        // Newest first, each row tested; the command test is one probe of the pairs' key per
        // matching name.
        SearchPlan::Walk => ROW_MATCHES.to_string(),
        // The matching ids through the trigram indexes and the pairs, then sorted.
        SearchPlan::Lookup => format!(
            " AND session_id IN (SELECT session_id FROM sessions WHERE {COLUMNS_MATCH}
                                 UNION {COMMAND_MATCH})"
        ),
    }
}
