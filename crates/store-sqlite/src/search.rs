//! Text search on SQLite (`SessionFilter::q`, `migrations/0005_search.sql`): what ingest and
//! retention keep in the search tables, and the conditions a page query adds.
//!
//! A search matches a session whose id, user, host or component contains the text (ASCII case
//! ignored, `LIKE` with the text's `%`, `_` and `\` escaped), or one of whose commands has a
//! name that does (a component's matches are among its sessions' ids, which begin with it). How the matches are found depends on how many there are
//! ([`SearchPlan::choose`]): few are looked up in `session_text` (FTS5, trigrams) and
//! `session_commands`, then sorted; many, common among the newest sessions, are found by
//! walking the sessions newest first and testing each, which stops after a page. The FTS
//! table is filled behind ingest by the writer ([`Indexer`]), and a lookup also tests the few
//! sessions it has not reached yet.

use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use session_buddy_store::{SEARCH_COUNT_MAX, SEARCH_SAMPLE, SearchPlan, fts_phrase, like_pattern};

use crate::Result;

/// Index sessions once this many events wait behind the index…
const INDEX_AFTER_EVENTS: i64 = 1024;
/// … or once the oldest of them has waited this long.
const INDEX_AFTER: Duration = Duration::from_secs(1);
/// Events one indexing step covers at most (a few tens of milliseconds of the writer).
const INDEX_STEP_EVENTS: i64 = 1024;

/// Fills `session_text` behind ingest, on the writer thread: FTS5 writes a segment per
/// transaction, so a row indexed inside each small ingest transaction costs several times
/// what it costs among thousands (`migrations/0007_search_behind_ingest.sql`). Between
/// steps, the sessions whose starts lie above `search_state.indexed_through` are the ones a
/// search tests directly ([`clause`]).
#[derive(Debug)]
pub(crate) struct Indexer {
    /// `search_state.indexed_through`.
    through: i64,
    /// The last `events` rowid seen.
    end: i64,
    /// Since when events have waited behind the index.
    since: Option<Instant>,
    /// After a failed step, no other before this.
    retry_at: Option<Instant>,
}

/// A failed step is tried again after this long (a full disk must not spin the writer).
const INDEX_RETRY: Duration = Duration::from_secs(5);

impl Indexer {
    pub(crate) fn load(conn: &Connection) -> Result<Self> {
        let through = conn.query_row(
            "SELECT indexed_through FROM search_state WHERE id = 1",
            [],
            |r| r.get(0),
        )?;
        let mut indexer = Self {
            through,
            end: through,
            since: None,
            retry_at: None,
        };
        indexer.observe(conn, Instant::now())?;
        Ok(indexer)
    }

    /// Looks at where `events` ends now (after a commit or a job).
    pub(crate) fn observe(&mut self, conn: &Connection, now: Instant) -> Result<()> {
        self.end = conn.query_row("SELECT coalesce(max(rowid), 0) FROM events", [], |r| {
            r.get(0)
        })?;
        if self.end < self.through {
            // The newest events were deleted (retention of a session whose last event was
            // the newest): their rowids may be reused, so the index follows from there.
            self.through = self.end;
        }
        if self.end > self.through {
            self.since.get_or_insert(now);
        } else {
            self.since = None;
        }
        Ok(())
    }

    /// How long the writer may wait for work before [`step`](Self::step) is due; `None`
    /// with nothing behind the index.
    pub(crate) fn due_in(&self, now: Instant) -> Option<Duration> {
        let since = self.since?;
        let retry = self
            .retry_at
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
        let wait = if self.end - self.through >= INDEX_AFTER_EVENTS {
            Duration::ZERO
        } else {
            INDEX_AFTER.saturating_sub(now.duration_since(since))
        };
        Some(wait.max(retry))
    }

    /// One step if one is due (a backlog is worked off a step at a time, with ingest served
    /// between steps); a failure is logged and retried later (searches test the unindexed
    /// sessions meanwhile).
    pub(crate) fn run_due(&mut self, conn: &mut Connection, now: Instant) {
        if self.due_in(now).is_some_and(|d| d.is_zero())
            && let Err(e) = self.step(conn, now)
        {
            tracing::warn!(error = %e, "cannot update the search index; trying again later");
            self.retry_at = Some(now + INDEX_RETRY);
        }
    }

    /// Indexes everything stored so far (step by step).
    pub(crate) fn catch_up(&mut self, conn: &mut Connection) -> Result<()> {
        let now = Instant::now();
        self.observe(conn, now)?;
        while self.end > self.through {
            self.step(conn, now)?;
        }
        Ok(())
    }

    /// Indexes the sessions whose starts are in the next [`INDEX_STEP_EVENTS`] events.
    pub(crate) fn step(&mut self, conn: &mut Connection, now: Instant) -> Result<()> {
        let upto = self.end.min(self.through + INDEX_STEP_EVENTS);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO session_text (session_id, username, hostname)
             SELECT s.session_id, s.username, s.hostname
             FROM events e JOIN sessions s ON s.session_id = e.session_id
             WHERE e.rowid > ?1 AND e.rowid <= ?2 AND e.event_type = 'session_start'",
        )?
        .execute(params![self.through, upto])?;
        tx.prepare_cached("UPDATE search_state SET indexed_through = ?1 WHERE id = 1")?
            .execute([upto])?;
        tx.commit()?;
        self.through = upto;
        self.since = (self.end > self.through).then_some(now);
        self.retry_at = None;
        Ok(())
    }
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

/// The sessions whose starts the [`Indexer`] has not reached yet (at most a second's or a few
/// thousand events' worth).
const NOT_INDEXED_YET: &str = "SELECT session_id FROM events
    WHERE rowid > (SELECT indexed_through FROM search_state WHERE id = 1)
      AND event_type = 'session_start'";

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
                                 UNION {COMMAND_MATCH}
                                 UNION {NOT_INDEXED_YET}){ROW_MATCHES}"
        ),
    }
}
