//! The `Host` check (DNS-rebinding protection), made by the server's one middleware in front
//! of every route (`edge` in `lib.rs`), the MCP endpoint included, with one list of accepted
//! names ([`accepted_hosts`]).
//!
//! A browser page on another site can reach a loopback server by making its own name resolve
//! to 127.0.0.1 (DNS rebinding); its requests then carry that name in `Host`. So:
//! - **without a secret** (the server then listens on loopback, or was told
//!   `--allow-unauthenticated`) only loopback names (`localhost`, `127.0.0.1`, `[::1]`, any
//!   port), the server's own bound address and the `--allowed-host` names are accepted;
//! - **with a secret** the same check applies when `--allowed-host` names are given; without
//!   them any `Host` is accepted, because tokens protect every non-public route and a browser
//!   never attaches one to a rebound page's request.
//!
//! A refused request gets 421 Misdirected Request with a JSON error naming the host and the
//! flag to pass. A request without any name (HTTP/1.0 without `Host`) passes: a browser always
//! sends the name it resolved, so a rebinding page cannot send none.

use axum::extract::Request;
use axum::http::header::HOST;
use axum::response::{IntoResponse, Response};

use crate::{AppError, AppState, ServerOptions};

/// The loopback names every server accepts (with any port; `::1` bracketed in a `Host`).
pub const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// The `Host` names the server accepts, or `None` when it accepts any (a secret and no
/// `--allowed-host`). An entry without a port accepts any port; with one, only that port.
pub fn accepted_hosts(options: &ServerOptions) -> Option<Vec<String>> {
    if options.auth.secret.is_some() && options.allowed_hosts.is_empty() {
        return None;
    }
    let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|s| s.to_string()).collect();
    hosts.extend(
        options
            .allowed_hosts
            .iter()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty()),
    );
    if let Some(addr) = options.local_addr {
        hosts.push(addr.to_string());
    }
    Some(hosts)
}

/// A host name as compared: lower case, without brackets or a final dot.
fn normalize(host: &str) -> String {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// `(host, port)` of an authority (`name`, `name:port`, `[v6]:port`), or `None` when it is
/// not one.
fn authority(text: &str) -> Option<(String, Option<u16>)> {
    let a: axum::http::uri::Authority = text.trim().parse().ok()?;
    if a.as_str().contains('@') {
        return None;
    }
    Some((normalize(a.host()), a.port_u16()))
}

/// Whether the `Host` value `host` is one of `accepted` ([`accepted_hosts`]).
pub fn host_is_accepted(host: &str, accepted: &[String]) -> bool {
    let Some((name, port)) = authority(host) else {
        return false;
    };
    accepted.iter().any(|entry| {
        let (entry_name, entry_port) = authority(entry).unwrap_or_else(|| (normalize(entry), None));
        entry_name == name && entry_port.is_none_or(|p| Some(p) == port)
    })
}

/// The refusal of a request whose `Host` (or HTTP/2 `:authority`) is not accepted; `None`:
/// it may pass.
pub(crate) fn refusal(state: &AppState, req: &Request) -> Option<Response> {
    let accepted = state.accepted_hosts.as_deref()?;
    let host = req
        .headers()
        .get(HOST)
        .map(|h| h.to_str().map(str::to_string).unwrap_or_default())
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        Some(h) if host_is_accepted(&h, accepted) => None,
        Some(h) => {
            let shown: String = h
                .chars()
                .take(100)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            tracing::warn!(host = %shown, "refused a request for a host this server does not serve (possible DNS rebinding)");
            Some(
                AppError::MisdirectedHost(format!(
                    "this server does not answer for host '{shown}' (DNS-rebinding protection); \
                     it accepts loopback names and the --allowed-host names; to reach it by this \
                     name, start it with --allowed-host {}",
                    authority(&h).map_or(shown.clone(), |(n, _)| n)
                ))
                .into_response(),
            )
        }
        // No name at all (HTTP/1.0, an in-process call): nothing a rebinding page could have
        // chosen, since browsers always send the name they resolved.
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(extra: &[&str]) -> Vec<String> {
        LOOPBACK_HOSTS
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn loopback_any_port_and_allowed_names() {
        let a = accepted(&["tracker.internal", "10.0.0.5:8678"]);
        for ok in [
            "localhost",
            "localhost:8678",
            "LOCALHOST:1",
            "localhost.:80",
            "127.0.0.1:9",
            "[::1]:8678",
            "[::1]",
            "tracker.internal:443",
            "10.0.0.5:8678",
        ] {
            assert!(host_is_accepted(ok, &a), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8678",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.5:9999",
            "user@localhost",
            "",
            "local host",
        ] {
            assert!(!host_is_accepted(bad, &a), "{bad}");
        }
    }

    #[test]
    fn a_secret_without_allowed_hosts_accepts_any() {
        let mut o = ServerOptions::default();
        assert!(accepted_hosts(&o).is_some());
        o.auth.secret = Some("s".into());
        assert_eq!(accepted_hosts(&o), None);
        o.allowed_hosts = vec!["tracker.internal".into()];
        let list = accepted_hosts(&o).unwrap_or_default();
        assert!(
            list.contains(&"tracker.internal".to_string()) && list.contains(&"localhost".into())
        );
    }
}
