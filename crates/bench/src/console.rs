//! `bench console`: how long each console page takes to answer over loopback (the server's
//! time, plus a loopback round trip), and how many bytes a first load transfers (the live
//! view's HTML, its stylesheet and its script).

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use crate::loopback_target;

#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// The server (loopback only), e.g. over `bench seed`'s 1 000 000 sessions.
    pub url: String,
    /// Requests per page.
    pub runs: usize,
    /// A `read` token when the server has a secret.
    pub token: Option<String>,
    pub json: bool,
}

fn agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build();
    ureq::Agent::new_with_config(config)
}

fn get(agent: &ureq::Agent, url: &str, token: Option<&str>) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    let mut r = req.call().with_context(|| format!("GET {url}"))?;
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .with_context(|| format!("reading {url}"))?;
    Ok((status, body))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    ms(sorted[i.min(sorted.len() - 1)])
}

/// The `src`/`href` of the page's hashed assets.
fn asset_links(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_string)
        .collect()
}

pub fn console(o: ConsoleOptions) -> anyhow::Result<()> {
    loopback_target(&o.url)?;
    if o.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let base = o.url.trim_end_matches('/');
    let agent = agent();
    let token = o.token.as_deref();
    // A session to open, and a component and user to filter by: the newest session's.
    let (status, body) = get(&agent, &format!("{base}/v1/sessions?limit=1"), token)?;
    if status != 200 {
        bail!("GET /v1/sessions answered {status}; with a secret pass --token (read)");
    }
    let v: Value = serde_json::from_slice(&body)?;
    let first = v["sessions"]
        .get(0)
        .ok_or_else(|| anyhow!("the server stores no session; run `bench seed` first"))?;
    let id = first["session_id"].as_str().unwrap_or_default();
    let component = first["component"].as_str().unwrap_or_default();
    let pages = [
        ("live view", "/".to_string()),
        ("sessions", "/sessions".to_string()),
        (
            "sessions, filtered",
            format!(
                "/sessions?component={component}&status=ended&after=this-month&min_duration=60"
            ),
        ),
        (
            "sessions, searched",
            format!("/sessions?q={}", &component[..component.len().min(4)]),
        ),
        ("a session", format!("/sessions/{id}")),
        ("analytics (7 days)", "/analytics?days=7".to_string()),
        ("status", "/status".to_string()),
    ];
    let mut results = Vec::new();
    for (name, path) in &pages {
        let url = format!("{base}{path}");
        let mut times = Vec::with_capacity(o.runs);
        let mut bytes = 0;
        for _ in 0..o.runs {
            let t = Instant::now();
            let (status, body) = get(&agent, &url, token)?;
            times.push(t.elapsed());
            if status != 200 {
                bail!("GET {path} answered {status}");
            }
            bytes = body.len();
        }
        times.sort();
        results.push(json!({
            "page": name, "path": path, "runs": o.runs, "bytes": bytes,
            "ms": {"p50": percentile(&times, 0.5), "p99": percentile(&times, 0.99), "max": percentile(&times, 1.0)},
        }));
    }
    let (_, live) = get(&agent, &format!("{base}/"), token)?;
    let html = String::from_utf8_lossy(&live);
    let mut first_load = live.len();
    for asset in asset_links(&html) {
        first_load += get(&agent, &format!("{base}{asset}"), token)?.1.len();
    }
    let out = json!({"pages": results, "first_load_bytes": first_load});
    if o.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("console pages over loopback ({} runs each):", o.runs);
    for r in &results {
        println!(
            "  {:<20} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms  {:>8} bytes",
            r["page"].as_str().unwrap_or(""),
            r["ms"]["p50"].as_f64().unwrap_or(0.0),
            r["ms"]["p99"].as_f64().unwrap_or(0.0),
            r["ms"]["max"].as_f64().unwrap_or(0.0),
            r["bytes"]
        );
    }
    println!("first load (live view + stylesheet + script): {first_load} bytes");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_found_in_a_page() {
        let html = r#"<link rel="stylesheet" href="/assets/console.1.css"><script src="/assets/console.2.js" defer>"#;
        assert_eq!(
            asset_links(html),
            ["/assets/console.1.css", "/assets/console.2.js"]
        );
    }
}
