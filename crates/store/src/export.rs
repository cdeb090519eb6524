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
/// as ndjson, in time order; returns how many.
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
            _ => return Ok(n),
        }
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
