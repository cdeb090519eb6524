//! The `session-buddy` binary end to end: real processes, real sockets, real files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analytics;
mod auth;
mod common;
mod durability;
mod https;
mod imported;
mod misc;
mod postgres;
mod queries;
mod shells;
mod track;
