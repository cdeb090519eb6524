//! The `session-buddy` binary end to end: real processes, real sockets, real files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analytics;
mod api_paging;
mod auth;
mod browser;
mod common;
mod config;
mod crackerjack;
mod delivery_state;
mod durability;
mod https;
mod imported;
mod interrupt;
mod misc;
mod old_databases;
mod once;
mod operator;
mod postgres;
mod queries;
mod redact;
mod shell_helpers;
mod shell_machine;
mod shell_text;
mod shells;
mod track;
mod watch;
