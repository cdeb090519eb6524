//! A small blocking client for the server's read API, for helpers that show tracked data.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use session_buddy_client::http::ServerAgent;

use crate::{Cancel, HelperError};

/// The server's REST API with the shell's URL and token.
pub struct Api {
    base: String,
    token: Option<String>,
    agent: Arc<ServerAgent>,
    cancel: Cancel,
}

impl Api {
    /// The API at `url`, trusting for `https://` what the configuration says
    /// (`SESSION_BUDDY_CA_CERT`, else Mozilla's roots).
    pub fn new(url: &str, token: Option<String>, ca_cert: Option<&std::path::Path>) -> Self {
        Self {
            base: url.trim_end_matches('/').to_string(),
            token,
            agent: Arc::new(ServerAgent::new(
                ca_cert,
                Duration::from_secs(10),
                Duration::from_secs(2),
            )),
            cancel: Cancel::never(),
        }
    }

    /// The ids of the latest sessions, for Tab completion: one quick call (a second at most),
    /// nothing when the server does not answer.
    pub fn recent_session_ids(config: &session_buddy_client::TrackerConfig) -> Vec<String> {
        let agent = ServerAgent::new(
            config.ca_cert.as_deref(),
            Duration::from_secs(1),
            Duration::from_millis(500),
        );
        let base = config.url.trim_end_matches('/');
        let query = [("limit".to_string(), "50".to_string())];
        let Ok(page) = call(
            &agent,
            base,
            config.token.as_deref(),
            "/v1/sessions",
            &query,
        ) else {
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
        &self.base
    }

    /// GETs `path` with `query`; a helper error names the server and what went wrong. The
    /// call runs on a thread of its own so that Ctrl-C interrupts the helper at once (the
    /// abandoned call ends by its own timeout).
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, HelperError> {
        let (agent, base, token) = (self.agent.clone(), self.base.clone(), self.token.clone());
        let path = path.to_string();
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.cancel
            .run(move || call(&agent, &base, token.as_deref(), &path, &query))?
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

/// One GET on the calling thread.
fn call(
    agent: &ServerAgent,
    base: &str,
    token: Option<&str>,
    path: &str,
    query: &[(String, String)],
) -> Result<Value, HelperError> {
    agent.usable_for(base).map_err(HelperError::new)?;
    let mut req = agent.agent.get(format!("{base}{path}"));
    for (k, v) in query {
        req = req.query(k, v);
    }
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().map_err(|e| {
        HelperError::new(format!(
            "cannot reach the session-buddy server at {base} ({e}); is `session-buddy serve` running?"
        ))
    })?;
    let status = resp.status().as_u16();
    let body: Value = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_json()
        .map_err(|e| HelperError::new(format!("unreadable answer from {base}: {e}")))?;
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(HelperError::new(format!(
            "the server answered {status}: {}",
            body["error"].as_str().unwrap_or("no reason given")
        )))
    }
}
