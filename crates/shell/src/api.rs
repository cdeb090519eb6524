//! A small blocking client for the server's read API, for helpers that show tracked data.

use std::time::Duration;

use serde_json::Value;

use crate::HelperError;

/// The server's REST API with the shell's URL and token.
pub struct Api {
    base: String,
    token: Option<String>,
    agent: session_buddy_client::http::ServerAgent,
}

impl Api {
    /// The API at `url`, trusting for `https://` what the configuration says
    /// (`SESSION_BUDDY_CA_CERT`, else Mozilla's roots).
    pub fn new(url: &str, token: Option<String>, ca_cert: Option<&std::path::Path>) -> Self {
        Self {
            base: url.trim_end_matches('/').to_string(),
            token,
            agent: session_buddy_client::http::ServerAgent::new(
                ca_cert,
                Duration::from_secs(10),
                Duration::from_secs(2),
            ),
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// GETs `path` with `query`; a helper error names the server and what went wrong.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, HelperError> {
        self.agent
            .usable_for(&self.base)
            .map_err(HelperError::new)?;
        let mut req = self.agent.agent.get(format!("{}{path}", self.base));
        for (k, v) in query {
            req = req.query(*k, v);
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().map_err(|e| {
            HelperError::new(format!(
                "cannot reach the session-buddy server at {} ({e}); is `session-buddy serve` running?",
                self.base
            ))
        })?;
        let status = resp.status().as_u16();
        let body: Value = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_json()
            .map_err(|e| HelperError::new(format!("unreadable answer from {}: {e}", self.base)))?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(HelperError::new(format!(
                "the server answered {status}: {}",
                body["error"].as_str().unwrap_or("no reason given")
            )))
        }
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
