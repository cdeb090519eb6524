//! The queue: insertion under the bounds (count, bytes, age; the oldest go first), reading
//! batches, settling the server's answers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::state::record_drops;
use super::{BufferedEvent, Enqueued, MAX_REJECTIONS, OutgoingEvent, SettleCounts, Settlement};
use super::{from_micros, micros, to_i64, to_u64};
use crate::config::BufferLimits;
use crate::error::ClientError;

/// Inserts one event and enforces the bounds by dropping the oldest.
pub(super) fn insert(
    tx: &Transaction<'_>,
    event: &OutgoingEvent,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
    limits: BufferLimits,
) -> Result<Enqueued, ClientError> {
    let bytes = event.payload.len() as u64;
    tx.prepare_cached(
        "INSERT INTO queue (event_id, session_id, event_type, payload, bytes, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        event.event_id,
        event.session_id,
        event.event_type,
        event.payload,
        to_i64(bytes),
        micros(created)
    ])?;
    let id = tx.last_insert_rowid();
    if event.event_type == OUTPUT {
        return insert_chunk_bounds(tx, id, limits);
    }
    let (events, total_bytes): (i64, i64) = tx
        .prepare_cached("SELECT events, bytes FROM totals WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut dropped = 0u64;
    let mut reasons: Vec<String> = Vec::new();

    let excess = to_u64(events).saturating_sub(limits.max_events);
    if excess > 0 {
        let n = tx.execute(
            "DELETE FROM queue WHERE id IN \
             (SELECT id FROM queue WHERE event_type <> 'output' ORDER BY id LIMIT ?1)",
            [to_i64(excess)],
        )?;
        dropped += n as u64;
        reasons.push(format!("buffer over {} events", limits.max_events));
    }
    let total_bytes: i64 = if excess > 0 {
        tx.prepare_cached("SELECT bytes FROM totals WHERE id = 1")?
            .query_row([], |r| r.get(0))?
    } else {
        total_bytes
    };
    if to_u64(total_bytes) > limits.max_bytes {
        let n = drop_oldest_bytes(tx, "<>", to_u64(total_bytes) - limits.max_bytes)?;
        if n > 0 {
            dropped += n;
            reasons.push(format!("buffer over {} bytes", limits.max_bytes));
        }
    }
    let max_age = chrono::Duration::from_std(limits.max_age).unwrap_or(chrono::Duration::MAX);
    let cutoff = micros(now.checked_sub_signed(max_age).unwrap_or_default());
    let oldest: Option<i64> = tx
        .prepare_cached("SELECT created_at FROM queue ORDER BY id LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    if oldest.is_some_and(|t| t < cutoff) {
        // Ids follow time, so the expired events are at the head; delete in slices to keep
        // each statement short.
        loop {
            let n = tx.execute(
                "DELETE FROM queue WHERE id IN \
                 (SELECT id FROM queue ORDER BY id LIMIT 1000) AND created_at < ?1",
                [cutoff],
            )?;
            dropped += n as u64;
            if n < 1000 {
                break;
            }
        }
        reasons.push(format!("older than {}", describe_age(limits.max_age)));
    }
    if dropped > 0 {
        tracing::warn!(dropped, reasons = %reasons.join(", "), "event buffer full: dropped the oldest events");
        record_drops(tx, dropped, &reasons)?;
    }
    Ok(Enqueued { id, dropped })
}

/// The `event_type` of a recording chunk.
pub(crate) const OUTPUT: &str = "output";

/// The recording quota after a chunk was queued: the oldest chunks go first (never another
/// event); what goes is counted as dropped.
fn insert_chunk_bounds(
    tx: &Transaction<'_>,
    id: i64,
    limits: BufferLimits,
) -> Result<Enqueued, ClientError> {
    let total: i64 = tx
        .prepare_cached("SELECT bytes FROM recording_totals WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    if to_u64(total) <= limits.max_recording_bytes {
        return Ok(Enqueued { id, dropped: 0 });
    }
    let dropped = drop_oldest_bytes(tx, "=", to_u64(total) - limits.max_recording_bytes)?;
    if dropped > 0 {
        let reasons = [format!(
            "recordings over {} bytes",
            limits.max_recording_bytes
        )];
        tracing::warn!(
            dropped,
            "recording quota full: dropped the oldest recording chunks"
        );
        record_drops(tx, dropped, &reasons)?;
    }
    Ok(Enqueued { id, dropped })
}

/// Drops the oldest queued events whose type is (`op` `=`) or is not (`<>`) a recording
/// chunk until at least `to_free` payload bytes are gone; returns how many went.
fn drop_oldest_bytes(tx: &Transaction<'_>, op: &str, mut to_free: u64) -> Result<u64, ClientError> {
    let mut last_id = None;
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT id, bytes FROM queue WHERE event_type {op} '{OUTPUT}' ORDER BY id"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (rid, b): (i64, i64) = (row.get(0)?, row.get(1)?);
            last_id = Some(rid);
            to_free = to_free.saturating_sub(to_u64(b));
            if to_free == 0 {
                break;
            }
        }
    }
    let Some(last) = last_id else { return Ok(0) };
    let n = tx.execute(
        &format!("DELETE FROM queue WHERE id <= ?1 AND event_type {op} '{OUTPUT}'"),
        [last],
    )?;
    Ok(n as u64)
}

pub(super) fn describe_age(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 86_400 && secs.is_multiple_of(86_400) {
        format!("{} days", secs / 86_400)
    } else {
        format!("{secs} s")
    }
}

pub(super) fn select_events(
    conn: &Connection,
    table: &str,
    limit: usize,
) -> Result<Vec<BufferedEvent>, ClientError> {
    select_where(conn, table, "1", limit)
}

/// The oldest `limit` events of `table` that `filter` (SQL) lets through.
pub(super) fn select_where(
    conn: &Connection,
    table: &str,
    filter: &str,
    limit: usize,
) -> Result<Vec<BufferedEvent>, ClientError> {
    let sql = format!(
        "SELECT id, event_id, session_id, event_type, payload, bytes, created_at, attempts, last_error \
         FROM {table} WHERE {filter} ORDER BY id LIMIT ?1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        Ok(BufferedEvent {
            id: r.get(0)?,
            event_id: r.get(1)?,
            session_id: r.get(2)?,
            event_type: r.get(3)?,
            payload: r.get(4)?,
            bytes: to_u64(r.get(5)?),
            created_at: from_micros(r.get(6)?),
            attempts: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(u32::MAX),
            last_error: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Applies the server's answers about sent events. Ids no longer queued (delivered meanwhile by
/// another sender, purged) are skipped.
pub(super) fn settle(
    tx: &Transaction<'_>,
    items: &[(i64, Settlement)],
) -> Result<SettleCounts, ClientError> {
    let mut counts = SettleCounts::default();
    let now = micros(Utc::now());
    {
        let mut delete = tx.prepare_cached("DELETE FROM queue WHERE id = ?1")?;
        let mut reject = tx.prepare_cached(
            "UPDATE queue SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1 \
                 RETURNING attempts",
        )?;
        let mut bury = tx.prepare_cached(
                "INSERT OR REPLACE INTO dead_letters \
                 (id, event_id, session_id, event_type, payload, bytes, created_at, attempts, last_error, dead_at) \
                 SELECT id, event_id, session_id, event_type, payload, bytes, created_at, attempts, ?2, ?3 \
                 FROM queue WHERE id = ?1",
            )?;
        for (id, settlement) in items {
            match settlement {
                Settlement::Delivered => {
                    counts.delivered += to_u64(i64::try_from(delete.execute([id])?).unwrap_or(0));
                }
                Settlement::Rejected(error) => {
                    let attempts: Option<i64> = reject
                        .query_row(params![id, error], |r| r.get(0))
                        .optional()?;
                    let Some(attempts) = attempts else { continue };
                    counts.rejected += 1;
                    if attempts >= i64::from(MAX_REJECTIONS) {
                        bury.execute(params![id, error, now])?;
                        delete.execute([id])?;
                        counts.dead_lettered += 1;
                    }
                }
                Settlement::DeadLetter(error) => {
                    if bury.execute(params![id, error, now])? > 0 {
                        delete.execute([id])?;
                        counts.dead_lettered += 1;
                    }
                }
            }
        }
    }
    Ok(counts)
}
