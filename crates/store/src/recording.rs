//! Recordings in the store, the rules every backend shares: how a chunk is packed (its frames
//! as JSON, deflated), the per-session cap, what a stored recording reads back as, and the
//! audit log of who read or erased what.

use chrono::{DateTime, Utc};
use serde::Serialize;
use session_buddy_events::OutputEvent;
use session_buddy_events::recording::{CastHeader, Frame, FrameKind, truncation_marker};

use crate::{Result, StoreError};

/// What became of one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    Stored,
    /// This session already has a chunk with this sequence number.
    Duplicate,
    /// Over the session's cap: not stored; the recording is marked truncated.
    OverCap,
}

/// A chunk ready to be written: its columns, frames packed.
#[derive(Debug, Clone)]
pub struct PackedChunk {
    pub session_id: String,
    pub seq: i64,
    pub event_id: String,
    pub at_us: i64,
    pub started_us: i64,
    pub cols: i64,
    pub rows: i64,
    pub data_bytes: i64,
    pub frames: Vec<u8>,
    pub truncated: Option<String>,
}

/// Frames as stored: compact JSON, deflated (terminal output shrinks several times).
pub fn pack_frames(frames: &[Frame]) -> Vec<u8> {
    let json = serde_json::to_vec(frames).unwrap_or_default();
    miniz_oxide::deflate::compress_to_vec(&json, 6)
}

/// Frames from [`pack_frames`].
pub fn unpack_frames(bytes: &[u8]) -> Result<Vec<Frame>> {
    let json = miniz_oxide::inflate::decompress_to_vec_with_limit(bytes, 64 * 1024 * 1024)
        .map_err(|e| StoreError::Corrupt(format!("a recording chunk does not inflate: {e:?}")))?;
    serde_json::from_slice(&json)
        .map_err(|e| StoreError::Corrupt(format!("a recording chunk does not decode: {e}")))
}

impl PackedChunk {
    pub fn of(e: &OutputEvent) -> Self {
        Self {
            session_id: e.session_id.clone(),
            seq: i64::try_from(e.seq).unwrap_or(i64::MAX),
            event_id: e.event_id.hyphenated().to_string(),
            at_us: e.timestamp.timestamp_micros(),
            started_us: e.started_at.timestamp_micros(),
            cols: i64::from(e.cols),
            rows: i64::from(e.rows),
            data_bytes: e.data_bytes() as i64,
            frames: pack_frames(&e.frames),
            truncated: e.truncated.clone(),
        }
    }

    /// The chunk as the event it came in as (export carries it so).
    pub fn to_event(&self) -> Result<OutputEvent> {
        Ok(OutputEvent {
            event_version: session_buddy_events::EVENT_VERSION_1_1.to_string(),
            event_id: uuid_of(&self.event_id)?,
            event_type: session_buddy_events::EventType::Output,
            session_id: self.session_id.clone(),
            timestamp: micros(self.at_us),
            seq: u64::try_from(self.seq).unwrap_or(0),
            started_at: micros(self.started_us),
            cols: u16::try_from(self.cols).unwrap_or(80),
            rows: u16::try_from(self.rows).unwrap_or(24),
            frames: unpack_frames(&self.frames)?,
            truncated: self.truncated.clone(),
        })
    }
}

fn uuid_of(s: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(s)
        .map_err(|e| StoreError::Corrupt(format!("a recording chunk's event id '{s}': {e}")))
}

fn micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

const OVER_CAP: &str = "over the server's cap of ";

/// Why a recording stops early when `cap` bytes are reached.
pub fn over_cap_reason(cap: u64) -> String {
    format!("{OVER_CAP}{cap} bytes (--recording-max-bytes)")
}

/// Whether a chunk of `data_bytes` is refused by the cap: it would take the recording (of
/// `bytes` so far, truncated for `truncated`) past `cap`, or the cap has ended the recording
/// already, so that a small chunk after a refused one leaves no gap. (A truncation the
/// recorder reported does not refuse its earlier chunks arriving late.)
pub fn refused_by_cap(bytes: i64, truncated: Option<&str>, data_bytes: i64, cap: u64) -> bool {
    truncated.is_some_and(|t| t.starts_with(OVER_CAP))
        || u64::try_from(bytes.saturating_add(data_bytes)).unwrap_or(u64::MAX) > cap
}

/// A session's recording as the store keeps its summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordingInfo {
    pub session_id: String,
    pub chunks: u64,
    /// Data bytes (as recorded).
    pub bytes: u64,
    /// Bytes stored (packed).
    pub stored_bytes: u64,
    pub truncated: Option<String>,
    pub started_at: DateTime<Utc>,
    pub cols: u16,
    pub rows: u16,
    /// When the newest chunk was cut.
    pub last_at: DateTime<Utc>,
}

/// A whole recording: its summary and its chunks in order.
#[derive(Debug, Clone)]
pub struct Recording {
    pub info: RecordingInfo,
    pub chunks: Vec<PackedChunk>,
}

impl Recording {
    /// asciicast v2: the header from the summary, every frame in order, and where a
    /// recording was truncated, a visible marker at its end.
    pub fn to_asciicast(&self) -> Result<String> {
        let mut frames: Vec<Frame> = Vec::new();
        for c in &self.chunks {
            frames.extend(unpack_frames(&c.frames)?);
        }
        let end = frames.last().map_or(0.0, Frame::offset);
        if let Some(reason) = &self.info.truncated {
            frames.push(Frame(end, FrameKind::Output, truncation_marker(reason)));
        }
        let header = CastHeader {
            version: 2,
            width: self.info.cols,
            height: self.info.rows,
            timestamp: Some(self.info.started_at.timestamp()),
            duration: Some((end * 1e6).round() / 1e6),
            title: Some(match &self.info.truncated {
                Some(_) => format!("{} (truncated)", self.info.session_id),
                None => self.info.session_id.clone(),
            }),
        };
        let mut out = String::new();
        session_buddy_events::recording::write_asciicast(&header, &frames, &mut out);
        Ok(out)
    }
}

/// One entry of the audit log: who did what to which session, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The token's subject (or `local` without authentication).
    pub actor: String,
    /// `recording.play`, `recording.export`, `session.erase`.
    pub action: String,
    pub session_id: Option<String>,
    pub detail: Option<String>,
}

/// What [`crate::Store::erase_session`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    pub session: bool,
    pub events: u64,
    pub chunks: u64,
}
