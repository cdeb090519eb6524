//! The `state` table: one key per fact every process of the host shows (the last delivery,
//! the breaker, the drop counters and their reasons).

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::BreakerState;
use crate::error::ClientError;

pub(super) const K_LAST_DELIVERY: &str = "last_delivery";
pub(super) const K_BREAKER: &str = "breaker";
pub(super) const K_DROPPED_TOTAL: &str = "dropped_total";
pub(super) const K_DROPPED_UNREPORTED: &str = "dropped_unreported";
pub(super) const K_DROPPED_REASONS: &str = "dropped_reasons";

/// Counts dropped events (in total and not yet reported) and remembers why.
pub(super) fn record_drops(
    conn: &Connection,
    dropped: u64,
    reasons: &[String],
) -> Result<(), ClientError> {
    let total = get_u64(conn, K_DROPPED_TOTAL)? + dropped;
    set_text(conn, K_DROPPED_TOTAL, &total.to_string())?;
    let unreported = get_u64(conn, K_DROPPED_UNREPORTED)? + dropped;
    set_text(conn, K_DROPPED_UNREPORTED, &unreported.to_string())?;
    let mut all: Vec<String> = get_text(conn, K_DROPPED_REASONS)?
        .unwrap_or_default()
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for r in reasons {
        if !all.contains(r) {
            all.push(r.clone());
        }
    }
    set_text(conn, K_DROPPED_REASONS, &all.join(", "))
}

pub(super) fn get_text(conn: &Connection, key: &str) -> Result<Option<String>, ClientError> {
    Ok(conn
        .prepare_cached("SELECT value FROM state WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(super) fn set_text(conn: &Connection, key: &str, value: &str) -> Result<(), ClientError> {
    conn.prepare_cached(
        "INSERT INTO state (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

pub(super) fn get_u64(conn: &Connection, key: &str) -> Result<u64, ClientError> {
    Ok(get_text(conn, key)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

pub(super) fn get_json<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    key: &str,
) -> Result<Option<T>, ClientError> {
    // A value another version wrote that we cannot read is treated as absent.
    Ok(get_text(conn, key)?.and_then(|v| serde_json::from_str(&v).ok()))
}

pub(super) fn set_json<T: Serialize>(
    conn: &Connection,
    key: &str,
    value: &T,
) -> Result<(), ClientError> {
    set_text(conn, key, &serde_json::to_string(value)?)
}

/// The breaker as last recorded; an open breaker whose time is up reads as half-open.
pub(super) fn breaker(conn: &Connection) -> Result<BreakerState, ClientError> {
    let state: Option<BreakerState> = get_json(conn, K_BREAKER)?;
    Ok(match state {
        Some(BreakerState::Open { until }) if until <= Utc::now() => BreakerState::HalfOpen,
        Some(s) => s,
        None => BreakerState::Closed,
    })
}
