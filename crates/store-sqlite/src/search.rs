//! Text search on SQLite (`SessionFilter::q`, `migrations/0005_search.sql`): what ingest and
//! retention keep in the search tables, and the conditions a page query adds.
//!
//! A search matches a session whose id, user, host or component contains the text (ASCII case
//! ignored, `LIKE` with the text's `%`, `_` and `\` escaped), or one of whose commands has a
//! name that does (a component's matches are among its sessions' ids, which begin with it). How the matches are found depends on how many there are
//! ([`SearchPlan::choose`]): few are looked up in `session_text` (FTS5, trigrams) and
//! `session_commands`, then sorted; many, common among the newest sessions, are found by
//! walking the sessions newest first and testing each, which stops after a page.

use rusqlite::{Connection, Transaction, params};
use session_buddy_events::SessionStartEvent;
use session_buddy_store::{SEARCH_COUNT_MAX, SEARCH_SAMPLE, SearchPlan, fts_phrase, like_pattern};

use crate::Result;

/// A new session's searchable fields (its component is the start of its id).
pub(crate) fn index_session(tx: &Transaction<'_>, s: &SessionStartEvent) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO session_text (session_id, username, hostname) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![s.session_id(), s.user.username, s.hostname])?;
    Ok(())
}

/// A command of a stored session: its name in the vocabulary, the pair once.
pub(crate) fn index_command(tx: &Transaction<'_>, session_id: &str, command: &str) -> Result<()> {
    let pair = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO session_commands (command, session_id) VALUES (?1, ?2)",
        )?
        .execute([command, session_id])?;
    if pair == 1 {
        tx.prepare_cached("INSERT OR IGNORE INTO command_names (name) VALUES (?1)")?
            .execute([command])?;
    }
    Ok(())
}

/// A session leaves (retention): its row of `session_text` (found through the index by its
/// id) and its command pairs. Names stay in the vocabulary.
pub(crate) fn unindex_session(tx: &Transaction<'_>, session_id: &str) -> Result<()> {
    tx.prepare_cached(
        "DELETE FROM session_text WHERE rowid IN (
             SELECT rowid FROM session_text WHERE session_text MATCH ?1 AND session_id = ?2)",
    )?
    .execute(params![fts_phrase(session_id), session_id])?;
    tx.prepare_cached(
        "DELETE FROM session_commands
         WHERE command IN (SELECT name FROM command_names) AND session_id = ?1",
    )?
    .execute([session_id])?;
    Ok(())
}

/// The sessions whose commands have a matching name (`{like}`: the pattern).
const COMMAND_MATCH: &str = "SELECT session_id FROM session_commands WHERE command IN
    (SELECT name FROM command_names WHERE name LIKE {like} ESCAPE '\\')";

/// The test of one row of `sessions` against the search.
const ROW_MATCHES: &str = " AND (session_id LIKE {like} ESCAPE '\\'
    OR username LIKE {like} ESCAPE '\\' OR hostname LIKE {like} ESCAPE '\\'
    OR component LIKE {like} ESCAPE '\\'
    OR EXISTS (SELECT 1 FROM session_commands c WHERE c.session_id = sessions.session_id
        AND c.command IN (SELECT name FROM command_names WHERE name LIKE {like} ESCAPE '\\')))";

/// How to find the matches of `term` for a page of `limit`: they are counted, up to
/// [`SEARCH_COUNT_MAX`], in the indexes (the FTS rows and the command pairs; a session
/// counted twice only makes a walk likelier), and among the [`SEARCH_SAMPLE`] newest sessions.
pub(crate) fn plan(conn: &Connection, term: &str, limit: usize) -> Result<SearchPlan> {
    let (matches, sample_hits): (i64, i64) = conn
        .prepare_cached(&format!(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM session_text
                        WHERE session_text MATCH ?1 LIMIT ?3))
                  + (SELECT count(*) FROM ({} LIMIT ?3)),
                    (SELECT count(*) FROM (SELECT session_id, username, hostname, component
                        FROM sessions ORDER BY started_at DESC, session_id DESC LIMIT ?4) AS sessions
                     WHERE 1=1{})",
            COMMAND_MATCH.replace("{like}", "?2"),
            ROW_MATCHES.replace("{like}", "?2"),
        ))?
        .query_row(
            params![fts_phrase(term), like_pattern(term), SEARCH_COUNT_MAX, SEARCH_SAMPLE],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    Ok(SearchPlan::choose(matches, sample_hits, limit))
}

/// The search condition for [`session_buddy_store::session_page_query`] under `plan`. The
/// lookup re-tests each candidate with the walk's condition, so both plans answer alike (the
/// trigram index also folds the case of non-ASCII letters, which `LIKE` does not).
pub(crate) fn clause(plan: SearchPlan) -> String {
    match plan {
        SearchPlan::Walk => ROW_MATCHES.to_string(),
        SearchPlan::Lookup => format!(
            " AND session_id IN (SELECT session_id FROM session_text WHERE session_text MATCH {{phrase}}
                                 UNION {COMMAND_MATCH}){ROW_MATCHES}"
        ),
    }
}
