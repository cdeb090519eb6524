//! The one way this workspace's clients (the emitter, the shells' helpers, the CLI) make their
//! HTTP agent and check the server's URL: plain HTTP for a loopback server with nothing to set
//! up, HTTPS (rustls, built on the first `https://` call only) for a remote one.

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

/// The HTTP agent for one server, and why HTTPS cannot be used when the CA file is unusable
/// (then every `https://` call fails with that reason instead of falling back to other roots).
pub struct ServerAgent {
    pub agent: ureq::Agent,
    tls_error: Option<String>,
}

impl ServerAgent {
    /// An agent that reports HTTP statuses as answers (not errors), with a bound on every call
    /// (`global`) and on connecting, trusting for HTTPS what `ca_cert` says ([`tls_config`]).
    pub fn new(ca_cert: Option<&Path>, global: Duration, connect: Duration) -> Self {
        let (tls, tls_error) = match tls_config(ca_cert) {
            Ok(tls) => (tls, None),
            Err(e) => (TlsConfig::default(), Some(e.to_string())),
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(global))
            .timeout_connect(Some(connect))
            .user_agent(concat!("session-buddy/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Self { agent, tls_error }
    }

    /// Whether the server at `url` can be called: refused, with the reason, for a URL that is
    /// not an `http://` or `https://` one ([`check_server_url`]), or for an `https://` URL when
    /// the CA file is unusable.
    pub fn usable_for(&self, url: &str) -> Result<(), String> {
        check_server_url(url)?;
        match &self.tls_error {
            Some(e) if url.starts_with("https:") => Err(e.clone()),
            _ => Ok(()),
        }
    }
}

/// Whether `url` can be a session-buddy server's URL: `http://` or `https://`, a host, and
/// nothing an HTTP client cannot parse. The error names the URL as the user wrote it (as
/// `SESSION_BUDDY_URL=…` when that is where it came from) and how to write it instead.
pub fn check_server_url(url: &str) -> Result<(), String> {
    let named = || crate::config::name_url(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{} has no scheme; write http://{url}", named()));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "{} has the scheme '{scheme}'; session-buddy servers speak http:// or https://",
            named()
        ));
    }
    if rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(format!(
            "{} has no host; write e.g. {scheme}://127.0.0.1:8678",
            named()
        ));
    }
    match ureq::http::Uri::try_from(url) {
        Ok(uri) if uri.host().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => Err(format!("{} has no host", named())),
        Err(e) => Err(format!("{} is not a valid URL ({e})", named())),
    }
}
