//! Session-Buddy's one configuration: six layers, lowest first — built-in defaults <
//! system file ([`SYSTEM_FILE`]) < user file (`$SESSION_BUDDY_HOME/config.toml`) < project
//! file ([`PROJECT_FILE`], from the working directory up) < `SESSION_BUDDY_*` environment <
//! flags — for the server's keys (`[server]`) and the clients' (`[client]`), each value with
//! the layer and file that set it.
//!
//! `session-buddy serve`, `config show|validate`, the query commands, every tracked process
//! ([`ClientSettings`], behind the client's `TrackerConfig`) and oneiric's helpers read it
//! through [`load`]; nothing else reads configuration files or `SESSION_BUDDY_*` keys.

mod client;
mod files;
mod keys;
mod layers;
mod render;

pub use client::{ClientSettings, Setting};
pub use keys::{
    KEYS, Key, PINNABLE, RECORDED_START_ENV, RecordRule, find_key, known_keys, parse_switch,
};
pub use layers::{
    FileState, Flag, Inputs, Layer, LayerValues, PROJECT_FILE, Problem, Resolved, SYSTEM_FILE,
    Snapshot, Source, Value, derived_url, home_from, load, parse_flags, process_home,
};
pub use render::{effective_lines, problem_line};
pub use session_buddy_events::parse_duration;

/// Events the local buffer keeps at most (`client.buffer_max_size`).
pub const DEFAULT_BUFFER_MAX_SIZE: u64 = 100_000;
/// Days after which a buffered event is dropped (`client.buffer_max_age_days`).
pub const DEFAULT_BUFFER_MAX_AGE_DAYS: u64 = 7;
