//! Maintenance on SQLite, each step a job of the writer thread (or a read before it):
//! revocations, retention and the re-redaction of stored commands.

use chrono::Utc;
use rusqlite::{Connection, TransactionBehavior, params};
use session_buddy_store::{Pruned, REDACT_BATCH};

use crate::Result;

/// Records the revocation of `jti` and drops those of tokens that expired a day ago.
pub(crate) fn revoke_token(
    conn: &mut Connection,
    jti: &str,
    expires_us: Option<i64>,
) -> Result<()> {
    let now = Utc::now().timestamp_micros();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO revoked_tokens (jti, revoked_at, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (jti) DO UPDATE SET expires_at =
           CASE WHEN excluded.expires_at IS NULL OR expires_at IS NULL THEN NULL
                ELSE max(expires_at, excluded.expires_at) END",
        params![jti, now, expires_us],
    )?;
    // Revocations of tokens that expired a day ago protect nothing any more.
    tx.execute(
        "DELETE FROM revoked_tokens WHERE expires_at IS NOT NULL AND expires_at < ?1",
        params![now - 86_400_000_000],
    )?;
    tx.commit()?;
    Ok(())
}

/// One retention batch: at most `batch` sessions over and started before `cutoff` (µs), with
/// their events, and at most `batch` pending events older than it.
pub(crate) fn prune(conn: &mut Connection, cutoff: i64, batch: i64) -> Result<Pruned> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ids: Vec<String> = tx
        .prepare_cached(
            "SELECT session_id FROM sessions
             WHERE status != 'active' AND started_at < ?1 LIMIT ?2",
        )?
        .query_map(params![cutoff, batch], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut pruned = Pruned::default();
    for id in &ids {
        pruned.events += tx
            .prepare_cached("DELETE FROM events WHERE session_id = ?1")?
            .execute([id])? as u64;
        pruned.sessions += tx
            .prepare_cached("DELETE FROM sessions WHERE session_id = ?1")?
            .execute([id])? as u64;
        crate::search::unindex_session(&tx, id)?;
        crate::recording::forget_recording(&tx, id)?;
    }
    // Pending events whose start never came.
    pruned.events += tx
        .prepare_cached(
            "DELETE FROM events WHERE rowid IN (
               SELECT e.rowid FROM events e
               WHERE e.ts < ?1 AND NOT EXISTS
                 (SELECT 1 FROM sessions s WHERE s.session_id = e.session_id)
               LIMIT ?2)",
        )?
        .execute(params![cutoff, batch])? as u64;
    tx.commit()?;
    Ok(pruned)
}

/// A batch of command events after `rowid` for redaction, read on a reader with their new
/// payloads computed there (so the writer only runs the updates).
pub(crate) struct RedactBatch {
    /// The last rowid read; `None` when there was nothing left.
    pub(crate) last: Option<i64>,
    pub(crate) examined: usize,
    /// `(event_id, old payload, new payload)` of each event the rules change.
    pub(crate) changes: Vec<(String, String, String)>,
}

pub(crate) fn redact_batch(c: &Connection, after: i64) -> Result<RedactBatch> {
    let rows: Vec<(i64, String, String)> = c
        .prepare_cached(
            "SELECT rowid, event_id, payload FROM events
             WHERE rowid > ?1 AND event_type = 'command' ORDER BY rowid LIMIT ?2",
        )?
        .query_map(params![after, REDACT_BATCH as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let last = rows.last().map(|r| r.0);
    let examined = rows.len();
    let changes = rows
        .into_iter()
        .filter_map(|(_, id, old)| {
            session_buddy_store::reredacted_payload(&old).map(|new| (id, old, new))
        })
        .collect();
    Ok(RedactBatch {
        last,
        examined,
        changes,
    })
}

/// Writes the new payloads of a [`RedactBatch`], each only if it is still what was read;
/// returns how many changed.
pub(crate) fn rewrite(conn: &mut Connection, changes: &[(String, String, String)]) -> Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut changed = 0;
    for (id, old, new) in changes {
        changed += tx
            .prepare_cached(
                "UPDATE events SET payload = ?1
                 WHERE event_id = ?2 AND payload = ?3",
            )?
            .execute(params![new, id, old])? as u64;
    }
    tx.commit()?;
    Ok(changed)
}
