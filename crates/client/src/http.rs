//! The one way this workspace's clients (the emitter, the shells' helpers, the CLI) make their
//! HTTP agent and check the server's URL: plain HTTP for a loopback server with nothing to set
//! up, HTTPS (rustls, built on the first `https://` call only) for a remote one. [`ServerApi`]
//! is the one client of the server's REST API (CLI queries, shell helpers, fastblocks' probe).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
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

/// Largest answer body read from the server's API.
const MAX_ANSWER_BYTES: u64 = 256 * 1024 * 1024;

/// Why a call to the server's API failed, in the words a user needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The URL cannot be a server's, or `https://` cannot be used (a bad CA file).
    #[error("{0}")]
    Unusable(String),
    #[error(
        "cannot reach the session-buddy server at {base} ({why}); start it with \
         `session-buddy serve` or set SESSION_BUDDY_URL"
    )]
    Unreachable { base: String, why: String },
    #[error(
        "the server at {base} answered something that is not JSON ({why}); is \
         SESSION_BUDDY_URL pointing at session-buddy?"
    )]
    NotJson { base: String, why: String },
    /// An answer with an error status; `message` is the server's `error`, or `HTTP <status>`.
    #[error("the server refused: {message} (HTTP {status})")]
    Refused { status: u16, message: String },
}

/// The server's REST API at one URL with one token: the one client of the CLI's query
/// commands, the shells' helpers and fastblocks' auth probe. The caller chooses the URL and
/// the token (the configuration's business); this makes the calls.
#[derive(Clone)]
pub struct ServerApi {
    base: String,
    token: Option<String>,
    agent: std::sync::Arc<ServerAgent>,
}

impl std::fmt::Debug for ServerApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerApi")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl ServerApi {
    /// The API at `url` (a trailing `/` is dropped), sending `token` as a bearer token,
    /// trusting for `https://` what `ca_cert` says ([`tls_config`]); `global` bounds each
    /// call, `connect` its connection.
    pub fn new(
        url: &str,
        token: Option<String>,
        ca_cert: Option<&Path>,
        global: Duration,
        connect: Duration,
    ) -> Self {
        Self {
            base: url.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.trim().is_empty()),
            agent: std::sync::Arc::new(ServerAgent::new(ca_cert, global, connect)),
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// GETs `path` with `query`: the JSON answer of a 2xx status, else why not.
    pub fn get(&self, path: &str, query: &[(String, String)]) -> Result<Value, ApiError> {
        let response = self.get_response(path, query, true)?;
        self.answer(response)
    }

    /// GETs `path` as a stream of server-sent events (`GET /v1/stream`), sending `Last-Event-ID`
    /// when `last_event_id` is given: the body of a 2xx answer, read as it arrives. Only
    /// connecting and the answer's head are bounded (the body lasts as long as the stream);
    /// the caller decides when a silent stream is dead.
    pub fn event_stream(
        &self,
        path: &str,
        query: &[(String, String)],
        last_event_id: Option<&str>,
    ) -> Result<ureq::Body, ApiError> {
        self.check()?;
        let mut request = self
            .agent
            .agent
            .get(format!("{}{path}", self.base))
            .header("Accept", "text/event-stream");
        for (k, v) in query {
            request = request.query(k, v);
        }
        if let Some(t) = &self.token {
            request = request.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request
            .config()
            .timeout_global(None)
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .timeout_recv_body(None)
            .build()
            .call()
            .map_err(|e| self.unreachable(&e))?;
        if (200..300).contains(&response.status().as_u16()) {
            return Ok(response.into_body());
        }
        let status = response.status().as_u16();
        Err(match self.answer(response) {
            Err(e) => e,
            Ok(_) => ApiError::Refused {
                status,
                message: format!("HTTP {status}"),
            },
        })
    }

    /// GETs `path` with `query`: the text of a 2xx answer (at most `limit` bytes; a
    /// recording), else why not.
    pub fn get_text(
        &self,
        path: &str,
        query: &[(String, String)],
        limit: u64,
    ) -> Result<String, ApiError> {
        let mut response = self.get_response(path, query, true)?;
        if !(200..300).contains(&response.status().as_u16()) {
            return self.answer(response).map(|v| v.to_string());
        }
        response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_string()
            .map_err(|e| ApiError::NotJson {
                base: self.base.clone(),
                why: e.to_string(),
            })
    }

    /// DELETEs `path`: the JSON answer of a 2xx status, else why not.
    pub fn delete(&self, path: &str) -> Result<Value, ApiError> {
        self.check()?;
        let mut request = self.agent.agent.delete(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            request = request.header("Authorization", format!("Bearer {t}"));
        }
        let response = request.call().map_err(|e| self.unreachable(&e))?;
        self.answer(response)
    }

    /// POSTs `body` as JSON to `path`: the JSON answer of a 2xx status, else why not.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.check()?;
        let mut request = self.agent.agent.post(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            request = request.header("Authorization", format!("Bearer {t}"));
        }
        let response = request.send_json(body).map_err(|e| self.unreachable(&e))?;
        self.answer(response)
    }

    /// The HTTP status of a GET of `path`, with this API's token or without one (to learn
    /// whether the server requires one).
    pub fn status(
        &self,
        path: &str,
        query: &[(String, String)],
        with_token: bool,
    ) -> Result<u16, ApiError> {
        self.get_response(path, query, with_token)
            .map(|r| r.status().as_u16())
    }

    fn check(&self) -> Result<(), ApiError> {
        self.agent
            .usable_for(&self.base)
            .map_err(ApiError::Unusable)
    }

    fn get_response(
        &self,
        path: &str,
        query: &[(String, String)],
        with_token: bool,
    ) -> Result<ureq::http::Response<ureq::Body>, ApiError> {
        self.check()?;
        let mut request = self.agent.agent.get(format!("{}{path}", self.base));
        for (k, v) in query {
            request = request.query(k, v);
        }
        if let Some(t) = self.token.as_ref().filter(|_| with_token) {
            request = request.header("Authorization", format!("Bearer {t}"));
        }
        request.call().map_err(|e| self.unreachable(&e))
    }

    fn unreachable(&self, e: &ureq::Error) -> ApiError {
        ApiError::Unreachable {
            base: self.base.clone(),
            why: e.to_string(),
        }
    }

    fn answer(&self, mut response: ureq::http::Response<ureq::Body>) -> Result<Value, ApiError> {
        let status = response.status().as_u16();
        let not_json = |why: String| ApiError::NotJson {
            base: self.base.clone(),
            why,
        };
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| not_json(e.to_string()))?;
        let body: Value = serde_json::from_str(&text).map_err(|e| not_json(e.to_string()))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let message = body
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(ApiError::Refused { status, message })
    }
}
