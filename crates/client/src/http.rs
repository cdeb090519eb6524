//! The one way this workspace's clients (the emitter, the shells' helpers, the CLI) make their
//! HTTP agent: plain HTTP for a loopback server with nothing to set up, HTTPS (rustls, built
//! on the first `https://` call only) for a remote one.

use std::path::Path;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::error::ClientError;

/// The TLS settings for `https://` servers: Mozilla's root certificates, or, with `ca_cert`
/// (`$SESSION_BUDDY_CA_CERT`), only the CA certificates in that PEM file.
pub fn tls_config(ca_cert: Option<&Path>) -> Result<TlsConfig, ClientError> {
    let Some(path) = ca_cert else {
        return Ok(TlsConfig::default());
    };
    let bad = |why: String| ClientError::CaCert {
        path: path.to_path_buf(),
        why,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&certs))
        .build())
}

/// An agent that reports HTTP statuses as answers (not errors), with a bound on every call and
/// on connecting.
pub fn agent(tls: TlsConfig, global: Duration, connect: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(global))
        .timeout_connect(Some(connect))
        .user_agent(concat!("session-buddy/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
        .into()
}
