//! The configuration is `session-buddy-config`'s (six layers, with provenance); the binary
//! only turns its flags into the flag layer ([`crate::serve`]) and reads the result.

pub use session_buddy_config::parse_duration;

/// `$SESSION_BUDDY_HOME`, else `~/.session-buddy` (the configuration crate's one resolver).
pub fn home_dir() -> std::path::PathBuf {
    session_buddy_config::process_home()
}
