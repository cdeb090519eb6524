//! `bench search`: the text search (`SessionFilter::q`) timed through a store, over the
//! dataset `bench seed` writes (20 components, 50 users, 30 hosts, 8 command names): each
//! text's first page, several runs, under the plan the backend chooses and, with
//! `--plans all`, under each plan forced. What the server's `GET /v1/sessions?q=` spends in
//! storage; the HTTP request around it costs as much as any other list.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use session_buddy_store::{SearchPlan, SessionFilter, Store};

/// What `search` times.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// The texts; empty: a set chosen for the seeded dataset (see [`default_texts`]).
    pub texts: Vec<String>,
    /// Runs per text and plan (at least 1).
    pub runs: usize,
    /// Page size (1..=1000).
    pub limit: usize,
    /// Also time each plan forced, not only the backend's choice.
    pub every_plan: bool,
    /// Print the result as JSON.
    pub json: bool,
}

/// Texts over the seeded data, from rare to common, each with what it finds there; the newest
/// session's id gives a tail (one session) and an hour of its start date (hundreds).
fn default_texts(newest_id: Option<&str>) -> Vec<(String, &'static str)> {
    let mut texts = vec![
        ("no-such-text".to_string(), "nothing"),
        ("user07".to_string(), "a user (2 %)"),
        ("oneiric".to_string(), "a component (5 %)"),
        ("host-1".to_string(), "hosts host-10 … host-19 (33 %)"),
        ("reload_sett".to_string(), "a command name"),
        ("USER".to_string(), "every session, upper case"),
    ];
    if let Some(id) = newest_id {
        if id.len() > 6 {
            texts.insert(
                1,
                (id[id.len() - 6..].to_string(), "a session id's tail (1)"),
            );
        }
        // `component-YYYYMMDD-HHMMSS-xxxxxx`: the date and hour.
        let parts: Vec<&str> = id.rsplitn(3, '-').collect();
        if let [_, time, rest] = parts[..]
            && let Some(date) = rest.rsplit('-').next()
        {
            texts.insert(
                2,
                (
                    format!("{date}-{}", &time[..2.min(time.len())]),
                    "an hour of ids",
                ),
            );
            // A whole day a month back: common, but none among the newest sessions.
            if let Ok(day) = chrono::NaiveDate::parse_from_str(date, "%Y%m%d") {
                let old = day - chrono::TimeDelta::days(30);
                texts.insert(
                    3,
                    (
                        old.format("%Y%m%d-").to_string(),
                        "a day of ids, a month back",
                    ),
                );
            }
        }
    }
    texts
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

fn quantile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or_default()
}

/// Times the searches on `store` (described as `path`) and closes it.
pub async fn search(
    store: Arc<dyn Store>,
    path: String,
    opts: SearchOptions,
) -> anyhow::Result<()> {
    let runs = opts.runs.max(1);
    let newest = store
        .list_sessions(SessionFilter {
            limit: 1,
            ..SessionFilter::default()
        })
        .await?;
    let texts: Vec<(String, &str)> = if opts.texts.is_empty() {
        default_texts(newest.sessions.first().map(|s| s.session_id.as_str()))
    } else {
        opts.texts.iter().map(|t| (t.clone(), "")).collect()
    };
    let plans: Vec<Option<SearchPlan>> = if opts.every_plan {
        vec![None, Some(SearchPlan::Lookup), Some(SearchPlan::Walk)]
    } else {
        vec![None]
    };
    let mut rows: Vec<Value> = Vec::new();
    for (text, what) in &texts {
        for plan in &plans {
            let filter = SessionFilter {
                q: Some(text.clone()),
                search_plan: *plan,
                limit: opts.limit.clamp(1, session_buddy_store::MAX_PAGE),
                ..SessionFilter::default()
            };
            let mut times = Vec::with_capacity(runs);
            let mut found = 0;
            for _ in 0..runs {
                let t = Instant::now();
                let page = store.list_sessions(filter.clone()).await?;
                times.push(t.elapsed());
                found = page.sessions.len();
            }
            times.sort();
            let plan_name = match plan {
                None => "auto",
                Some(SearchPlan::Lookup) => "lookup",
                Some(SearchPlan::Walk) => "walk",
            };
            rows.push(json!({
                "q": text,
                "what": what,
                "plan": plan_name,
                "runs": runs,
                "listed": found,
                "ms": {
                    "p50": millis(quantile(&times, 0.5)),
                    "p99": millis(quantile(&times, 0.99)),
                    "max": millis(quantile(&times, 1.0)),
                },
            }));
        }
    }
    store.close().await;
    if opts.json {
        println!(
            "{}",
            json!({"database": path, "limit": opts.limit, "searches": rows})
        );
        return Ok(());
    }
    println!(
        "search over {path}, first page of {} (store time, {runs} runs each)",
        opts.limit
    );
    println!(
        "{:<24} {:<6} {:>6} {:>9} {:>9} {:>9}  what",
        "q", "plan", "listed", "p50 ms", "p99 ms", "max ms"
    );
    for r in &rows {
        println!(
            "{:<24} {:<6} {:>6} {:>9.2} {:>9.2} {:>9.2}  {}",
            r["q"].as_str().unwrap_or(""),
            r["plan"].as_str().unwrap_or(""),
            r["listed"],
            r["ms"]["p50"].as_f64().unwrap_or(0.0),
            r["ms"]["p99"].as_f64().unwrap_or(0.0),
            r["ms"]["max"].as_f64().unwrap_or(0.0),
            r["what"].as_str().unwrap_or(""),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_texts_take_the_tail_and_the_hour_of_the_newest_id() {
        let texts = default_texts(Some("oneiric-20260401-134500-abc123"));
        let qs: Vec<&str> = texts.iter().map(|(q, _)| q.as_str()).collect();
        assert_eq!(qs[1], "abc123");
        assert_eq!(qs[2], "20260401-13");
        assert_eq!(qs[3], "20260302-");
        assert_eq!(qs[3], "20260302-");
        assert_eq!(default_texts(None).len(), 6);
    }
}
