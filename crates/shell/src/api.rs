//! A small blocking client for the server's read API, for helpers that show tracked data.

use std::time::Duration;

use serde_json::Value;
use session_buddy_client::http::ServerApi;

use crate::{Cancel, HelperError};

/// The server's REST API with the shell's URL and token (the client library's [`ServerApi`]),
/// interruptible by Ctrl-C.
pub struct Api {
    api: ServerApi,
    cancel: Cancel,
}

impl Api {
    /// The API at `url`, trusting for `https://` what the configuration says
    /// (`SESSION_BUDDY_CA_CERT`, else Mozilla's roots).
    pub fn new(url: &str, token: Option<String>, ca_cert: Option<&std::path::Path>) -> Self {
        Self {
            api: ServerApi::new(
                url,
                token,
                ca_cert,
                Duration::from_secs(10),
                Duration::from_secs(2),
            ),
            cancel: Cancel::never(),
        }
    }

    /// The ids of the latest sessions, for Tab completion: one quick call (a second at most),
    /// nothing when the server does not answer.
    pub fn recent_session_ids(config: &session_buddy_client::TrackerConfig) -> Vec<String> {
        let api = ServerApi::new(
            &config.url,
            config.token.clone(),
            config.ca_cert.as_deref(),
            Duration::from_secs(1),
            Duration::from_millis(500),
        );
        let Ok(page) = api.get("/v1/sessions", &[("limit".into(), "50".into())]) else {
            return Vec::new();
        };
        page["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["session_id"].as_str().map(str::to_string))
            .collect()
    }

    /// Calls stop at once (with the "interrupted" error) when `cancel` fires.
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    pub fn url(&self) -> &str {
        self.api.url()
    }

    /// The client underneath, for calls that are not a JSON GET (e.g. a status probe).
    pub fn server(&self) -> &ServerApi {
        &self.api
    }

    /// Runs `call` on the client on a thread of its own, so that Ctrl-C interrupts the helper
    /// at once (the abandoned call ends by its own timeout).
    pub fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&ServerApi) -> T + Send + 'static,
    ) -> Result<T, HelperError> {
        let api = self.api.clone();
        self.cancel.run(move || call(&api))
    }

    /// GETs `path` with `query`; a helper error names the server and what went wrong.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, HelperError> {
        let path = path.to_string();
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.run(move |api| api.get(&path, &query))?
            .map_err(|e| HelperError::new(e.to_string()))
    }

    /// Every session matching `query`, following cursors, at most `max`.
    pub fn sessions(
        &self,
        query: &[(&str, String)],
        max: usize,
    ) -> Result<Vec<Value>, HelperError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        while all.len() < max {
            let mut q = query.to_vec();
            q.push(("limit", (max - all.len()).min(1000).to_string()));
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page = self.get("/v1/sessions", &q)?;
            if let Some(s) = page["sessions"].as_array() {
                all.extend(s.iter().cloned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        Ok(all)
    }
}
