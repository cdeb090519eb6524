//! The Session-Buddy emitter.
//!
//! A [`Tracker`] records one session of the host program: `session_start`, `command`s,
//! heartbeats and `session_end`, each a durable local write: one line appended to the
//! session's journal (`$SESSION_BUDDY_HOME/journal/`), which the host's sender moves into the
//! [`Buffer`] (`$SESSION_BUDDY_HOME/buffer.db`). A background thread delivers the buffer in order to the
//! server (`POST /v1/events`) in batches, with a timeout on every call, exponential backoff
//! with jitter and a circuit breaker; one process per host sends, under `sender.lock`. At exit
//! nothing waits on the network: what is left goes to a detached `session-buddy event-buffer
//! replay --daemon`, or to the next tracked process.
//!
//! The library never blocks the host on the network, never panics, never prints (it logs with
//! `tracing`), and needs no async runtime.

mod buffer;
mod config;
mod error;
mod host;
pub mod http;
pub mod import;
mod journal;
#[cfg(test)]
mod journal_model;
mod outcome;
pub mod record;
mod sender;
pub mod track;
mod tracker;

pub use buffer::{
    BUFFER_FILE, BreakerState, Buffer, BufferStats, BufferedEvent, DeliveryRecord, Enqueued,
    MAX_REJECTIONS, OutgoingEvent, PurgeWhat, SettleCounts, Settlement,
};
pub use config::{BufferLimits, DEFAULT_URL, RetryPolicy, TrackerConfig};
pub use error::ClientError;
pub use host::rust_runtime;
pub use http::check_server_url;
pub use journal::{JOURNAL_DIR, RECLAIM_BYTES, journal_dir};
pub use outcome::{DeliveryOutcome, ServerCheck, TOKEN_ADVICE, ago, banner_state, check_server};
pub use sender::{
    DAEMON_LINGER, DeliveryReport, LOCK_FILE, MAX_BATCH, MAX_BATCH_BYTES, SERVER_MAX_BODY_BYTES,
    deliver_now, lock_path, run_sender_daemon, sender_running, try_sender_lock,
};
pub use tracker::{EndReason, SessionInfo, Tracker, TrackingStatus};
