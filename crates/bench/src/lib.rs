//! Session-Buddy's benchmarks, usable by any front end (the `session-buddy bench` command
//! parses their options and calls them):
//!
//! - [`ingest`] and [`mcp`]: load generators against a running server over loopback, bounded
//!   in time and in requests, printing throughput and p50/p99/max latency;
//! - [`buffer`]: the client's local buffer (enqueue latency, drain rate after an outage);
//! - [`shell`]: whole shell runs with the server up, down and hanging, tracked and untracked;
//! - [`console`]: the web console's pages over loopback and its first-load size;
//! - [`stream`]: ingest with and without open `GET /v1/stream` viewers, and the latency
//!   from ingest to a viewer's frame;
//! - [`seed`]: the query benchmarks' dataset, written through a [`Store`](session_buddy_store::Store);
//! - [`search`]: the text search (`q`) timed through a store, over that dataset.

mod buffer;
mod console;
mod load;
mod record;
mod search;
mod seed;
mod shell;
mod stream;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

pub use buffer::buffer;
pub use console::{ConsoleOptions, console};
pub use load::{ingest, mcp};
pub use record::{RecordOptions, record};
pub use search::{SearchOptions, search};
pub use seed::{SeedOptions, seed};
pub use shell::{ShellOptions, shell};
pub use stream::{StreamOptions, stream};

#[derive(Debug, Clone)]
pub struct Common {
    /// The server (loopback only).
    pub url: String,
    /// How long to run, e.g. 10s, 500ms, 1m.
    pub duration: Duration,
    /// Stop after this many requests in all, whichever comes first.
    pub max_requests: i64,
    /// Print the result as JSON.
    pub json: bool,
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub common: Common,
    /// Concurrent connections, one request in flight on each.
    pub connections: usize,
    /// Events per request (1..=1000).
    pub batch: usize,
    /// More servers (loopback only) to drive at once: the connections are spread over
    /// `common.url` and these in turn.
    pub also: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct McpOptions {
    pub common: Common,
    /// Concurrent MCP clients, each with its own connection and MCP session.
    pub clients: usize,
}

#[derive(Debug, Clone)]
pub struct BufferOptions {
    /// Events to enqueue (the "outage" backlog).
    pub events: u64,
    /// A running server (loopback only) to drain the backlog into; without it only enqueue is
    /// measured.
    pub url: Option<String>,
    /// Longest drain.
    pub duration: Duration,
    /// Print the result as JSON.
    pub json: bool,
}

/// The target, refused unless it is a loopback address.
pub fn loopback_target(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        anyhow!("--url must start with http:// (benchmarks run over plain loopback HTTP)")
    })?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let addr = authority
        .to_socket_addrs()
        .or_else(|_| format!("{authority}:80").to_socket_addrs())
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .ok_or_else(|| anyhow!("{authority} resolves to no address"))?;
    let loopback = match addr.ip() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    };
    if !loopback {
        bail!("benchmarks only target loopback (127.0.0.0/8 or ::1); {authority} is not");
    }
    Ok((addr, authority.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_a_target() {
        assert!(loopback_target("http://127.0.0.1:8678").is_ok());
        assert!(loopback_target("http://[::1]:8678").is_ok());
        assert!(loopback_target("http://10.0.0.1:8678").is_err());
        assert!(loopback_target("https://127.0.0.1").is_err());
    }
}
