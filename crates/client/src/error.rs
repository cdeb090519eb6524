//! What can go wrong in the client, in the user's words.

use std::path::PathBuf;

/// An error of the emitter library. The [`Tracker`](crate::Tracker) never returns one (it
/// records problems in its status instead); the [`Buffer`](crate::Buffer) and
/// [`deliver_now`](crate::deliver_now) do, for the CLI.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot create the session-buddy home {path}: {source}")]
    Home {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the event buffer {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot write the session journal {path}: {source}")]
    Journal {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the session journals in {path}: {source}")]
    JournalRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot use SESSION_BUDDY_CA_CERT={path}: {why}")]
    CaCert { path: PathBuf, why: String },
    #[error("event buffer error: {0}")]
    Buffer(#[from] rusqlite::Error),
    #[error("cannot encode an event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("sender lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another sender holds {0}; it delivers this host's buffer")]
    SenderBusy(PathBuf),
}
