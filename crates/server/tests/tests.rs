//! The server through its public faces: real sockets, real SQLite, a real MCP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analytics;
mod auth;
mod common;
mod console;
mod fixtures;
mod fuzz_corpus;
mod hostile;
mod ingest;
mod mcp;
mod metrics;
mod queries;
mod recordings;
mod redaction;
mod security;
mod stream;
mod tls;
