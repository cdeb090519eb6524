//! Export through the [`Store`] trait, so every backend exports the same way: the stored events
//! as event JSON, one per line, in time order (what `session-buddy import` sends back through
//! ingest), or the session records page by page, newest start first.

use std::io::Write;

use chrono::{DateTime, Utc};
use session_buddy_events::Session;

use crate::{MAX_PAGE, SessionFilter, Store, StoreError};

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Write(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Writes every stored event (pending ones too) with a timestamp at or after `since` to `out`
/// as ndjson, in time order, then every recording chunk cut at or after `since` as the
/// `output` event it came in as (session by session, in sequence order); returns how many
/// lines.
pub async fn export_events(
    store: &dyn Store,
    since: Option<DateTime<Utc>>,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let mut after = None;
    let mut n = 0u64;
    loop {
        let page = store.events_in_time_order(since, after, MAX_PAGE).await?;
        for e in &page {
            serde_json::to_writer(&mut *out, &e.payload)?;
            out.write_all(b"\n")?;
        }
        n += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == MAX_PAGE => {
                after = Some((last.timestamp, last.event_id.clone()));
            }
            _ => break,
        }
    }
    Ok(n + export_recordings(store, since, out).await?)
}

/// The recordings' chunks as `output` events. A recording the server truncated at its cap
/// says so in its last chunk, so that an import truncates it the same way.
async fn export_recordings(
    store: &dyn Store,
    since: Option<DateTime<Utc>>,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let since_us = since.map_or(i64::MIN, |t| t.timestamp_micros());
    let mut after = None;
    let mut n = 0u64;
    loop {
        let ids = store.recorded_sessions(after.clone(), MAX_PAGE).await?;
        for id in &ids {
            let Some(recording) = store.recording(id).await? else {
                continue;
            };
            let marked = recording.chunks.iter().any(|c| c.truncated.is_some());
            let last = recording.chunks.len().saturating_sub(1);
            for (i, chunk) in recording.chunks.iter().enumerate() {
                if chunk.at_us < since_us {
                    continue;
                }
                let mut event = chunk.to_event()?;
                if i == last && !marked {
                    event.truncated.clone_from(&recording.info.truncated);
                }
                serde_json::to_writer(&mut *out, &event)?;
                out.write_all(b"\n")?;
                n += 1;
            }
        }
        if ids.len() < MAX_PAGE {
            return Ok(n);
        }
        after = ids.last().cloned();
    }
}

/// Writes every session started at or after `since`, newest start first, one page at a time:
/// `render(page, first)` gives a page's text (`first`: the page that opens the output, which
/// carries any header). Returns how many sessions.
pub async fn export_sessions(
    store: &dyn Store,
    since: Option<DateTime<Utc>>,
    out: &mut dyn Write,
    render: impl Fn(&[Session], bool) -> String,
) -> Result<u64, ExportError> {
    let mut filter = SessionFilter {
        after: since,
        limit: MAX_PAGE,
        ..SessionFilter::default()
    };
    let mut n = 0u64;
    loop {
        let page = store.list_sessions(filter.clone()).await?;
        out.write_all(render(&page.sessions, n == 0).as_bytes())?;
        n += page.sessions.len() as u64;
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => return Ok(n),
        }
    }
}
