//! Terminal recordings on the wire: the `output` event (1.1), one chunk of a session's
//! recording, and asciicast v2, the format every player reads (docs/recordings.md).
//!
//! A chunk holds timed frames, `[offset, kind, data]` as asciicast writes them: `offset` in
//! seconds since the recording began, `kind` `o` (output), `i` (typed input) or `r` (a resize,
//! data `COLSxROWS`), `data` UTF-8 (a multi-byte sequence a read split is carried to the next
//! frame, see [`Utf8Carry`]). A chunk holds at most [`CHUNK_MAX_BYTES`] of data.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::EventType;

/// Data bytes one chunk holds at most.
pub const CHUNK_MAX_BYTES: usize = 64 * 1024;
/// Frames one chunk holds at most.
pub const CHUNK_MAX_FRAMES: usize = 20_000;
/// The server's default cap of one session's recording (`--recording-max-bytes`).
pub const DEFAULT_RECORDING_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FrameKind {
    /// What the program wrote to the terminal.
    #[serde(rename = "o")]
    Output,
    /// What was typed (only with `--record-input`, never at a password prompt).
    #[serde(rename = "i")]
    Input,
    /// The window was resized; data `COLSxROWS`.
    #[serde(rename = "r")]
    Resize,
}

impl FrameKind {
    pub fn code(self) -> &'static str {
        match self {
            FrameKind::Output => "o",
            FrameKind::Input => "i",
            FrameKind::Resize => "r",
        }
    }
}

/// One timed frame: `[offset seconds, kind, data]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Frame(pub f64, pub FrameKind, pub String);

impl Frame {
    pub fn offset(&self) -> f64 {
        self.0
    }
    pub fn kind(&self) -> FrameKind {
        self.1
    }
    pub fn data(&self) -> &str {
        &self.2
    }
}

/// `output`: one chunk of a session's terminal recording (1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OutputEvent {
    /// Always `1.1`.
    pub event_version: String,
    pub event_id: Uuid,
    /// Always `output`.
    pub event_type: EventType,
    pub session_id: String,
    /// When the chunk was cut.
    pub timestamp: DateTime<Utc>,
    /// 1, 2, … per recording: the order of the chunks.
    #[schemars(range(min = 1))]
    pub seq: u64,
    /// When the recording began (frame offsets count from here).
    pub started_at: DateTime<Utc>,
    /// The terminal's size when the recording began.
    #[schemars(range(min = 1))]
    pub cols: u16,
    #[schemars(range(min = 1))]
    pub rows: u16,
    /// At most 64 KiB of data and 20 000 frames, offsets never decreasing.
    pub frames: Vec<Frame>,
    /// Set on a recording's last chunk when the recorder itself stopped recording early
    /// (its buffer quota), saying why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
}

impl OutputEvent {
    /// Data bytes in the chunk.
    pub fn data_bytes(&self) -> usize {
        self.frames.iter().map(|f| f.2.len()).sum()
    }
}

/// `COLSxROWS` of a resize frame.
pub fn parse_size(data: &str) -> Option<(u16, u16)> {
    let (c, r) = data.split_once('x')?;
    let (c, r) = (c.parse().ok()?, r.parse().ok()?);
    (c > 0 && r > 0).then_some((c, r))
}

/// Decodes a byte stream as UTF-8 across reads: a multi-byte sequence cut by a read is kept
/// for the next one; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Carry {
    held: Vec<u8>,
}

impl Utf8Carry {
    /// The text of `bytes` (after what was held), holding back an incomplete last sequence.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(bytes);
        let keep = incomplete_tail(&buf);
        self.held = buf.split_off(buf.len() - keep);
        match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// What is still held (an incomplete sequence at the end of the stream), as text.
    pub fn finish(&mut self) -> String {
        let held = std::mem::take(&mut self.held);
        String::from_utf8_lossy(&held).into_owned()
    }
}

/// Bytes at the end of `b` that begin a multi-byte sequence not yet complete (0..=3).
fn incomplete_tail(b: &[u8]) -> usize {
    for back in 1..=3.min(b.len()) {
        let c = b[b.len() - back];
        if c & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let need = match c {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// The header line of an asciicast v2 file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CastHeader {
    pub version: u32,
    pub width: u16,
    pub height: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// What a truncated recording shows where it stops.
pub fn truncation_marker(reason: &str) -> String {
    format!("\r\n\x1b[7m[session-buddy: recording truncated: {reason}]\x1b[0m\r\n")
}

/// Writes asciicast v2: the header line, then one line per frame.
pub fn write_asciicast<'a>(
    header: &CastHeader,
    frames: impl IntoIterator<Item = &'a Frame>,
    out: &mut String,
) {
    out.push_str(&serde_json::to_string(header).unwrap_or_default());
    out.push('\n');
    for f in frames {
        push_cast_line(f, out);
    }
}

/// One frame as an asciicast line (with its newline).
pub fn push_cast_line(f: &Frame, out: &mut String) {
    // Microsecond precision, as asciinema writes it.
    let t = (f.0 * 1e6).round() / 1e6;
    out.push_str(&format!("[{t}, \"{}\", ", f.1.code()));
    out.push_str(&serde_json::to_string(&f.2).unwrap_or_default());
    out.push_str("]\n");
}

/// Why a text is not asciicast v2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an asciicast v2 recording: line {line}: {problem}")]
pub struct CastError {
    pub line: usize,
    pub problem: String,
}

/// Reads asciicast v2 (frames of unknown kinds, such as markers, are skipped).
pub fn parse_asciicast(text: &str) -> Result<(CastHeader, Vec<Frame>), CastError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let err = |line: usize, problem: String| CastError {
        line: line + 1,
        problem,
    };
    let (n, first) = lines
        .next()
        .ok_or_else(|| err(0, "the file is empty".into()))?;
    let header: CastHeader =
        serde_json::from_str(first).map_err(|e| err(n, format!("bad header: {e}")))?;
    if header.version != 2 {
        return Err(err(
            n,
            format!("version {} (only 2 is read)", header.version),
        ));
    }
    let mut frames = Vec::new();
    for (n, line) in lines {
        let (t, code, data): (f64, String, String) =
            serde_json::from_str(line).map_err(|e| err(n, format!("bad frame: {e}")))?;
        let kind = match code.as_str() {
            "o" => FrameKind::Output,
            "i" => FrameKind::Input,
            "r" => FrameKind::Resize,
            _ => continue,
        };
        frames.push(Frame(t, kind, data));
    }
    Ok((header, frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_multibyte_sequences_are_carried_to_the_next_read() {
        let text = "é€😀x";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let mut c = Utf8Carry::default();
            let mut out = c.push(&bytes[..cut]);
            out.push_str(&c.push(&bytes[cut..]));
            out.push_str(&c.finish());
            assert_eq!(out, text, "cut at {cut}");
        }
        let mut c = Utf8Carry::default();
        assert_eq!(c.push(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn asciicast_round_trips() {
        let header = CastHeader {
            version: 2,
            width: 80,
            height: 24,
            timestamp: Some(1_700_000_000),
            duration: None,
            title: Some("t".into()),
        };
        let frames = vec![
            Frame(0.0, FrameKind::Output, "one\r\n\"q\"".into()),
            Frame(0.5, FrameKind::Resize, "100x30".into()),
            Frame(0.512345, FrameKind::Input, "x".into()),
        ];
        let mut out = String::new();
        write_asciicast(&header, &frames, &mut out);
        let (h, f) = parse_asciicast(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h, header);
        assert_eq!(f, frames);
        assert_eq!(parse_size("100x30"), Some((100, 30)));
        assert_eq!(parse_size("0x30"), None);
    }
}
