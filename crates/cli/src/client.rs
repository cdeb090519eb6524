//! The CLI's HTTP client for the server's API: blocking; plain HTTP with no TLS set-up for a
//! loopback server, so a query run is not dominated by start-up; HTTPS for an `https://` URL.

use std::time::Duration;

use serde_json::Value;

use crate::Failure;

pub struct Api {
    base: String,
    agent: session_buddy_client::http::ServerAgent,
    /// `Bearer …` from `SESSION_BUDDY_TOKEN` or the token file, as the client sends.
    authorization: Option<String>,
}

/// Where a query command sends its calls and with which token.
pub struct Endpoint {
    pub url: String,
    pub token: Option<String>,
}

/// `--url` when given; else what every client uses, from the layers (`SESSION_BUDDY_URL`,
/// `[client] url`, else derived from `server.port`); the token as the client sends it.
pub fn endpoint(config: &session_buddy_client::TrackerConfig, url_flag: Option<&str>) -> Endpoint {
    Endpoint {
        url: url_flag
            .unwrap_or(&config.url)
            .trim_end_matches('/')
            .to_string(),
        token: config.token.clone(),
    }
}

impl Api {
    /// The API at `--url` (`url_flag`), else at the configured server URL.
    pub fn new(url_flag: Option<&str>) -> Self {
        let config = session_buddy_client::TrackerConfig::from_env();
        let Endpoint { url, token } = endpoint(&config, url_flag);
        Self {
            base: url,
            agent: session_buddy_client::http::ServerAgent::new(
                config.ca_cert.as_deref(),
                Duration::from_secs(60),
                Duration::from_secs(5),
            ),
            authorization: token.map(|t| format!("Bearer {t}")),
        }
    }

    /// The server's URL, as called.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The client library's check: a URL that is not `http://` or `https://` (e.g. no
    /// scheme), or for an `https://` one a bad `SESSION_BUDDY_CA_CERT`, fails every call,
    /// saying why.
    fn check_usable(&self) -> Result<(), Failure> {
        self.agent
            .usable_for(&self.base)
            .map_err(|e| Failure::Error(anyhow::anyhow!("{e}")))
    }

    /// POSTs `body` as JSON to `path`; maps failures like [`get_json`](Self::get_json).
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.check_usable()?;
        let url = format!("{}{}", self.base, path);
        let mut request = self.agent.agent.post(&url);
        if let Some(a) = &self.authorization {
            request = request.header("authorization", a);
        }
        let response = request.send_json(body).map_err(|e| self.unreachable(e))?;
        self.answer(&url, response)
    }

    /// GETs `path` with `query`; maps transport failures and error statuses to one-line errors.
    pub fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        self.check_usable()?;
        let url = format!("{}{}", self.base, path);
        let mut request = self.agent.agent.get(&url);
        for (k, v) in query {
            request = request.query(*k, v);
        }
        if let Some(a) = &self.authorization {
            request = request.header("authorization", a);
        }
        let response = request.call().map_err(|e| self.unreachable(e))?;
        self.answer(&url, response)
    }

    fn answer(
        &self,
        url: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<Value, Failure> {
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| Failure::Error(anyhow::anyhow!("reading the answer from {url}: {e}")))?;
        let body: Value = serde_json::from_str(&text).map_err(|e| {
            Failure::Error(anyhow::anyhow!(
                "the server at {} answered something that is not JSON ({e}); is SESSION_BUDDY_URL pointing at session-buddy?",
                self.base
            ))
        })?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let message = body
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(match status {
            404 => Failure::NotFound(message),
            401 | 403 => Failure::Error(anyhow::anyhow!(
                "the server refused: {message} (HTTP {status}); set SESSION_BUDDY_TOKEN to a token \
                 from `session-buddy token create`"
            )),
            _ => Failure::Error(anyhow::anyhow!(
                "the server refused: {message} (HTTP {status})"
            )),
        })
    }

    fn unreachable(&self, e: ureq::Error) -> Failure {
        Failure::Unreachable(format!(
            "cannot reach the session-buddy server at {} ({e}); start it with `session-buddy serve` or set SESSION_BUDDY_URL",
            self.base
        ))
    }
}
