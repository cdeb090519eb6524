//! The CLI's HTTP client for the server's API: the client library's [`ServerApi`] (blocking;
//! plain HTTP with no TLS set-up for a loopback server, so a query run is not dominated by
//! start-up; HTTPS for an `https://` URL), with its errors mapped to the CLI's exit codes.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use session_buddy_client::http::{ApiError, ServerApi};

use crate::Failure;

pub struct Api {
    api: ServerApi,
}

/// What the CLI's calls use: the server's URL, the token (`SESSION_BUDDY_TOKEN` or
/// `$SESSION_BUDDY_HOME/token`, as the client sends) and the CA file for `https://`. The one
/// place the CLI chooses them.
fn connection(url: &str) -> (String, Option<String>, Option<PathBuf>) {
    let config = session_buddy_client::TrackerConfig::from_env();
    (url.to_string(), config.token, config.ca_cert)
}

impl Api {
    pub fn new(url: &str) -> Self {
        let (url, token, ca_cert) = connection(url);
        Self {
            api: ServerApi::new(
                &url,
                token,
                ca_cert.as_deref(),
                Duration::from_secs(60),
                Duration::from_secs(5),
            ),
        }
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
