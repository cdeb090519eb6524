//! Import: an ndjson export (`session-buddy export`) sent back through the server's idempotent
//! ingest in batches, marked as imported history ([`IMPORT_PATH`]: the server abandons at once,
//! at its last event, a session without an end that has been silent for longer than its TTL).
//! Re-running an import is harmless: what is stored already comes back as duplicates.

use std::io::BufRead;

use serde_json::Value;

/// Where a batch of history goes.
pub const IMPORT_PATH: &str = "/v1/events?import=true";

/// Rejections kept for the report; the rest are only counted.
const ERRORS_KEPT: usize = 10;

/// What the server answered, summed over every batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportTally {
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    /// The first few rejections (a line that is not JSON, an event the server refused).
    pub errors: Vec<String>,
}

impl ImportTally {
    fn reject(&mut self, what: String) {
        self.rejected += 1;
        if self.errors.len() < ERRORS_KEPT {
            self.errors.push(what);
        }
    }
}

/// Why an import stopped: its own reason, or the error of the `post` it was given.
#[derive(Debug)]
pub enum ImportError<E> {
    Import(ImportFailure),
    Post(E),
}

/// An import's own reasons to stop.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    #[error("reading {what}: {error}")]
    Read { what: String, error: std::io::Error },
    #[error("the server's answer has no results: {0}")]
    Answer(Value),
}

/// Reads `reader` (named `what` in errors) line by line and sends its events in batches of
/// `batch` (and at most [`crate::MAX_BATCH_BYTES`] of JSON: recording chunks are large) with
/// `post` (which POSTs a JSON array to [`IMPORT_PATH`] and returns the answer).
/// Blank lines are skipped; a line that is not JSON counts as rejected.
pub fn import_ndjson<E>(
    reader: impl BufRead,
    what: &str,
    batch: usize,
    mut post: impl FnMut(&Value) -> Result<Value, E>,
) -> Result<ImportTally, ImportError<E>> {
    let batch = batch.max(1);
    let mut tally = ImportTally::default();
    let mut pending: Vec<Value> = Vec::with_capacity(batch);
    let mut pending_bytes = 0u64;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|error| {
            ImportError::Import(ImportFailure::Read {
                what: what.to_string(),
                error,
            })
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let bytes = line.len() as u64;
        if !pending.is_empty() && pending_bytes + bytes > crate::MAX_BATCH_BYTES {
            send(&mut post, &mut pending, &mut tally)?;
            pending_bytes = 0;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(v) => {
                pending.push(v);
                pending_bytes += bytes;
            }
            Err(e) => tally.reject(format!("line {}: not JSON ({e})", i + 1)),
        }
        if pending.len() == batch {
            send(&mut post, &mut pending, &mut tally)?;
            pending_bytes = 0;
        }
    }
    if !pending.is_empty() {
        send(&mut post, &mut pending, &mut tally)?;
    }
    Ok(tally)
}

/// POSTs one batch and counts the results.
fn send<E>(
    post: &mut impl FnMut(&Value) -> Result<Value, E>,
    batch: &mut Vec<Value>,
    tally: &mut ImportTally,
) -> Result<(), ImportError<E>> {
    let body = Value::Array(std::mem::take(batch));
    let answer = post(&body).map_err(ImportError::Post)?;
    let results = answer
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| ImportError::Import(ImportFailure::Answer(answer.clone())))?;
    for r in results {
        match r.get("status").and_then(Value::as_str) {
            Some("accepted") => tally.accepted += 1,
            Some("duplicate") => tally.duplicate += 1,
            _ => tally.reject(format!(
                "{}: {}",
                r.get("event_id").and_then(Value::as_str).unwrap_or("?"),
                r.get("error").and_then(Value::as_str).unwrap_or("rejected")
            )),
        }
    }
    Ok(())
}
