//! The CLI's HTTP client for the server's API: the client library's [`ServerApi`] (blocking;
//! plain HTTP with no TLS set-up for a loopback server, so a query run is not dominated by
//! start-up; HTTPS for an `https://` URL), with its errors mapped to the CLI's exit codes.

use std::time::Duration;

use serde_json::Value;
use session_buddy_client::http::{ApiError, ServerApi};

use crate::Failure;

pub struct Api {
    api: ServerApi,
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
    /// The API at `--url` (`url_flag`), else at the configured server URL, with the token and
    /// the CA file every client uses.
    pub fn new(url_flag: Option<&str>) -> Self {
        let config = session_buddy_client::TrackerConfig::from_env();
        let Endpoint { url, token } = endpoint(&config, url_flag);
        Self {
            api: ServerApi::new(
                &url,
                token,
                config.ca_cert.as_deref(),
                Duration::from_secs(60),
                Duration::from_secs(5),
            ),
        }
    }

    /// The server's URL, as called.
    pub fn url(&self) -> &str {
        self.api.url()
    }

    /// POSTs `body` as JSON to `path`; maps failures like [`get_json`](Self::get_json).
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.api.post(path, body).map_err(failure)
    }

    /// GETs `path` with `query`; maps transport failures and error statuses to one-line errors.
    pub fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.api.get(path, &query).map_err(failure)
    }
}

impl Api {
    /// GETs `path` as text (a recording: up to 2 GiB).
    pub fn get_text(&self, path: &str, query: &[(&str, String)]) -> Result<String, Failure> {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.api
            .get_text(path, &query, 2 * 1024 * 1024 * 1024)
            .map_err(failure)
    }

    /// DELETEs `path`.
    pub fn delete(&self, path: &str) -> Result<Value, Failure> {
        self.api.delete(path).map_err(failure)
    }
}

/// A failed call as the CLI reports it: unreachable (exit 3), not found, or an error that says
/// what to do about a refused token.
fn failure(e: ApiError) -> Failure {
    match e {
        ApiError::Unreachable { .. } => Failure::Unreachable(e.to_string()),
        ApiError::Refused {
            status: 404,
            message,
        } => Failure::NotFound(message),
        ApiError::Refused {
            status: status @ (401 | 403),
            message,
        } => Failure::Error(anyhow::anyhow!(
            "the server refused: {message} (HTTP {status}); set SESSION_BUDDY_TOKEN to a token \
             from `session-buddy token create`"
        )),
        other => Failure::Error(anyhow::anyhow!("{other}")),
    }
}
