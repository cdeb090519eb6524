//! Integration tests of the emitter: one test binary (ripgrep's layout).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
