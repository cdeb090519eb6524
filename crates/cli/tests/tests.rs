//! The `session-buddy` binary end to end: real processes, real sockets, real files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod durability;
mod misc;
mod queries;
mod shells;
