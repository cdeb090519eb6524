//! Prometheus metrics, kept by the `prometheus-client` crate and exposed in the Prometheus
//! text format (0.0.4).
//!
//! The original's eight metrics keep their names, labels and buckets; the rest follow
//! Prometheus conventions (`_total` counters, `_seconds` units) under `session_buddy_`.
//! Label values are bounded: real component names, event types, field names, route templates.
//!
//! Why the crate and not a registry of our own: `prometheus-client` produces every original
//! name. Its text encoder (`encoding::prometheus_text`) writes a counter registered as
//! `session_start` as `session_start_total` (HELP, TYPE and samples), histograms as
//! `_bucket`/`_sum`/`_count` with Go-formatted `le` bounds (`le="300"`), and escapes label
//! values; the scrape stays `text/plain; version=0.0.4`. What the crate does not offer is
//! reading a family's series back, which `get_metrics_summary` needs and the replaced gauges
//! need to zero stale series, so [`Labelled`] remembers the label sets it handed out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry};

/// A series' labels: the family's label names with this series' values.
type Labels = Vec<(&'static str, String)>;

type FloatGauge = Gauge<f64, AtomicU64>;

/// A family of series with fixed label names that remembers which label values it has seen
/// (the crate's [`Family`] cannot be iterated).
struct Labelled<M, C = fn() -> M> {
    family: Family<Labels, M, C>,
    names: &'static [&'static str],
    seen: Mutex<BTreeSet<Vec<String>>>,
}

impl<M: Clone, C: MetricConstructor<M>> Labelled<M, C>
where
    Family<Labels, M, C>: Metric + Clone,
{
    fn new(
        registry: &mut Registry,
        name: &'static str,
        help: &'static str,
        names: &'static [&'static str],
        family: Family<Labels, M, C>,
    ) -> Self {
        registry.register(name, help, family.clone());
        Self {
            family,
            names,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// The series with these label values (created at zero when new).
    fn get(&self, values: &[&str]) -> M {
        let labels: Labels = self
            .names
            .iter()
            .zip(values)
            .map(|(n, v)| (*n, v.to_string()))
            .collect();
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(values.iter().map(|v| v.to_string()).collect());
        self.family.get_or_create_owned(&labels)
    }

    /// Every series: its label values and its metric.
    fn series(&self) -> Vec<(Vec<String>, M)> {
        let seen: Vec<Vec<String>> = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        seen.into_iter()
            .map(|values| {
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                let m = self.get(&refs);
                (values, m)
            })
            .collect()
    }

    /// Drops every series.
    fn clear(&self) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        self.family.clear();
        seen.clear();
    }
}

fn counters(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    names: &'static [&'static str],
) -> Labelled<Counter> {
    Labelled::new(registry, name, help, names, Family::default())
}

fn gauges<N, A>(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    names: &'static [&'static str],
) -> Labelled<Gauge<N, A>>
where
    Gauge<N, A>: Metric + Clone + Default,
{
    Labelled::new(
        registry,
        name,
        help,
        names,
        Family::new_with_constructor(Gauge::default as fn() -> Gauge<N, A>),
    )
}

fn histograms(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    names: &'static [&'static str],
    constructor: fn() -> Histogram,
) -> Labelled<Histogram> {
    Labelled::new(
        registry,
        name,
        help,
        names,
        Family::new_with_constructor(constructor),
    )
}

fn histogram(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    buckets: &[f64],
) -> Histogram {
    let h = Histogram::new(buckets.iter().copied());
    registry.register(name, help, h.clone());
    h
}

const SESSION_DURATION_BUCKETS: &[f64] =
    &[60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0];
const EMIT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// The store-derived gauges (`active_sessions`, `session_quality_score`), exported only
    /// while [`store_gauges`](Self::store_gauges) says so.
    store_registry: Registry,
    session_start: Labelled<Counter>,
    session_end: Labelled<Counter>,
    session_duration: Labelled<Histogram>,
    emit_success: Labelled<Counter>,
    emit_failure: Labelled<Counter>,
    emit_duration: Labelled<Histogram>,
    active_sessions: Labelled<Gauge>,
    quality_score: Labelled<FloatGauge>,
    http_requests: Labelled<Counter>,
    http_duration: Labelled<Histogram>,
    ingest_events: Labelled<Counter>,
    ingest_batch: Histogram,
    store_commit: Histogram,
    reaper_runs: Labelled<Counter>,
    reaper_abandoned: Counter,
    reaper_last_run: FloatGauge,
    /// Whether the store-derived gauges are exported: with several servers on one database
    /// only the reaper-lease holder exports them, so summing over servers does not multiply
    /// them.
    store_gauges: AtomicBool,
    /// When this server started (the status page's uptime and average ingest rate).
    started: std::time::Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::default();
        let mut store_registry = Registry::default();
        let session_start = counters(
            &mut r,
            "session_start",
            "Total number of session start events tracked",
            &["component_name", "shell_type"],
        );
        let session_end = counters(
            &mut r,
            "session_end",
            "Total number of session end events tracked, by outcome (success, error, abandoned)",
            &["component_name", "status"],
        );
        let session_duration = histograms(
            &mut r,
            "session_duration_seconds",
            "Session duration in seconds (end timestamp minus start timestamp)",
            &["component_name"],
            || Histogram::new(SESSION_DURATION_BUCKETS.iter().copied()),
        );
        let emit_success = counters(
            &mut r,
            "mcp_event_emit_success",
            "Total number of successful MCP event emissions (events ingested, any face)",
            &["component_name", "event_type"],
        );
        let emit_failure = counters(
            &mut r,
            "mcp_event_emit_failure",
            "Total number of failed MCP event emissions (events rejected, any face)",
            &["component_name", "event_type", "error_type"],
        );
        let emit_duration = histograms(
            &mut r,
            "mcp_event_emit_duration_seconds",
            "MCP event emission duration in seconds (ingest latency)",
            &["component_name", "event_type"],
            || Histogram::new(EMIT_BUCKETS.iter().copied()),
        );
        let active_sessions = gauges(
            &mut store_registry,
            "active_sessions",
            "Number of currently active sessions",
            &["component_name"],
        );
        let quality_score = gauges(
            &mut store_registry,
            "session_quality_score",
            "Session quality score (0-100) over the last 7 days",
            &["component_name"],
        );
        let http_requests = counters(
            &mut r,
            "session_buddy_http_requests",
            "HTTP requests answered, by method, route and status",
            &["method", "path", "status"],
        );
        let http_duration = histograms(
            &mut r,
            "session_buddy_http_request_duration_seconds",
            "HTTP request latency in seconds, by method and route",
            &["method", "path"],
            || Histogram::new(LATENCY_BUCKETS.iter().copied()),
        );
        let ingest_events = counters(
            &mut r,
            "session_buddy_ingest_events",
            "Events received for ingest, by result (accepted, duplicate, rejected)",
            &["status"],
        );
        let ingest_batch = histogram(
            &mut r,
            "session_buddy_ingest_batch_size",
            "Events per ingest request",
            BATCH_BUCKETS,
        );
        let store_commit = histogram(
            &mut r,
            "session_buddy_store_write_duration_seconds",
            "Time from handing a batch to the store until it is durable",
            LATENCY_BUCKETS,
        );
        r.register(
            "session_buddy_build",
            "Always 1; the version label says which build runs",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let reaper_runs = counters(
            &mut r,
            "session_buddy_reaper_runs",
            "Reaper passes, by outcome (ok, error)",
            &["outcome"],
        );
        let reaper_abandoned = Counter::default();
        r.register(
            "session_buddy_reaper_abandoned",
            "Sessions the reaper marked abandoned (heartbeat timeout)",
            reaper_abandoned.clone(),
        );
        let reaper_last_run = FloatGauge::default();
        r.register(
            "session_buddy_reaper_last_run_timestamp_seconds",
            "When the reaper last ran (Unix time)",
            reaper_last_run.clone(),
        );
        for status in ["accepted", "duplicate", "rejected"] {
            ingest_events.get(&[status]);
        }
        Self {
            registry: r,
            store_registry,
            session_start,
            session_end,
            session_duration,
            emit_success,
            emit_failure,
            emit_duration,
            active_sessions,
            quality_score,
            http_requests,
            http_duration,
            ingest_events,
            ingest_batch,
            store_commit,
            reaper_runs,
            reaper_abandoned,
            reaper_last_run,
            store_gauges: AtomicBool::new(true),
            started: std::time::Instant::now(),
        }
    }

    pub fn session_started(&self, component: &str, shell_type: &str) {
        self.session_start.get(&[component, shell_type]).inc();
        self.active_sessions.get(&[component]).inc();
    }

    /// A session ended; `was_active` is false when it had already been counted as abandoned.
    pub fn session_ended(
        &self,
        component: &str,
        status: &str,
        duration_seconds: f64,
        was_active: bool,
    ) {
        self.session_end.get(&[component, status]).inc();
        self.session_duration
            .get(&[component])
            .observe(duration_seconds);
        if was_active {
            let _ = self.active_sessions.get(&[component]).inner().fetch_update(
                Ordering::Relaxed,
                Ordering::Relaxed,
                |v| Some((v - 1).max(0)),
            );
        }
    }

    /// An abandoned session spoke again: active once more.
    pub fn session_revived(&self, component: &str) {
        self.active_sessions.get(&[component]).inc();
    }

    /// One reaper pass: how many sessions it marked abandoned.
    pub fn reaped(&self, abandoned: usize, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.reaper_runs.get(&[outcome]).inc();
        self.reaper_abandoned.inc_by(abandoned as u64);
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        self.reaper_last_run.set(now);
    }

    /// Replaces the active-session gauges with counts from the store.
    pub fn set_active(&self, counts: &BTreeMap<String, u64>) {
        for (_, gauge) in self.active_sessions.series() {
            gauge.set(0);
        }
        for (c, n) in counts {
            self.active_sessions
                .get(&[c])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Exports the store-derived gauges, or not (a server that does not hold the reaper lease).
    pub fn export_store_gauges(&self, export: bool) {
        self.store_gauges.store(export, Ordering::Relaxed);
    }

    pub fn exports_store_gauges(&self) -> bool {
        self.store_gauges.load(Ordering::Relaxed)
    }

    pub fn set_quality(&self, component: &str, score: f64) {
        self.quality_score.get(&[component]).set(score);
    }

    /// Replaces every quality score: a component without sessions in the last 7 days has no
    /// score (its series disappears) rather than a stale one.
    pub fn set_qualities(&self, scores: &BTreeMap<String, f64>) {
        self.quality_score.clear();
        for (c, score) in scores {
            self.set_quality(c, *score);
        }
    }

    pub fn emitted(&self, component: &str, event_type: &str, n: u64, seconds: f64) {
        self.emit_success.get(&[component, event_type]).inc_by(n);
        let h = self.emit_duration.get(&[component, event_type]);
        for _ in 0..n {
            h.observe(seconds);
        }
    }

    pub fn emit_failed(
        &self,
        component: &str,
        event_type: &str,
        error_type: &str,
        n: u64,
        seconds: f64,
    ) {
        self.emit_failure
            .get(&[component, event_type, error_type])
            .inc_by(n);
        let h = self.emit_duration.get(&[component, event_type]);
        for _ in 0..n {
            h.observe(seconds);
        }
    }

    pub fn ingest_counted(&self, status: &str, n: u64) {
        self.ingest_events.get(&[status]).inc_by(n);
    }

    pub fn batch(&self, size: usize, store_seconds: f64) {
        self.ingest_batch.observe(size as f64);
        self.store_commit.observe(store_seconds);
    }

    pub fn http(&self, method: &str, path: &str, status: u16, seconds: f64) {
        self.http_requests
            .get(&[method, path, &status.to_string()])
            .inc();
        self.http_duration.get(&[method, path]).observe(seconds);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        if self.exports_store_gauges() {
            let _ = prometheus_text::encode(&mut out, &self.store_registry);
        }
        out
    }

    /// `get_metrics_summary`: the original's shape.
    pub fn summary(&self) -> serde_json::Value {
        let total =
            |f: &Labelled<Counter>| -> u64 { f.series().iter().map(|(_, c)| c.get()).sum() };
        let active: serde_json::Map<String, serde_json::Value> = self
            .active_sessions
            .series()
            .into_iter()
            .map(|(k, g)| (k.join(","), serde_json::json!(g.get())))
            .collect();
        let quality: serde_json::Map<String, serde_json::Value> = self
            .quality_score
            .series()
            .into_iter()
            .map(|(k, g)| (k.join(","), serde_json::json!(g.get())))
            .collect();
        serde_json::json!({
            "total_sessions_started": total(&self.session_start),
            "total_sessions_ended": total(&self.session_end),
            "active_sessions": active,
            "quality_scores": quality,
            "mcp_events_success": total(&self.emit_success),
            "mcp_events_failure": total(&self.emit_failure),
        })
    }

    /// What the console's status page shows, from the same series as `/metrics`: events
    /// ingested by outcome, sessions started and ended, and the reaper's runs.
    pub fn status(&self) -> serde_json::Value {
        let total =
            |f: &Labelled<Counter>| -> u64 { f.series().iter().map(|(_, c)| c.get()).sum() };
        let by_first_label = |f: &Labelled<Counter>| -> BTreeMap<String, u64> {
            let mut out = BTreeMap::new();
            for (k, c) in f.series() {
                *out.entry(k.first().cloned().unwrap_or_default())
                    .or_default() += c.get();
            }
            out
        };
        serde_json::json!({
            "ingest_events": by_first_label(&self.ingest_events),
            "sessions_started": total(&self.session_start),
            "sessions_ended": total(&self.session_end),
            "reaper_runs": by_first_label(&self.reaper_runs),
            "reaper_abandoned": self.reaper_abandoned.get(),
            "reaper_last_run": self.reaper_last_run.get(),
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
        })
    }

    /// `list_session_metrics`: what each metric is (the original's shape).
    pub fn describe() -> serde_json::Value {
        serde_json::json!({
            "session_lifecycle_metrics": {
                "session_start_total": {"type": "counter", "description": "Total number of session start events tracked", "labels": ["component_name", "shell_type"]},
                "session_end_total": {"type": "counter", "description": "Total number of session end events tracked", "labels": ["component_name", "status"]},
                "session_duration_seconds": {"type": "histogram", "description": "Session duration in seconds", "labels": ["component_name"], "buckets": SESSION_DURATION_BUCKETS},
                "active_sessions": {"type": "gauge", "description": "Number of currently active sessions", "labels": ["component_name"]},
            },
            "mcp_event_metrics": {
                "mcp_event_emit_success_total": {"type": "counter", "description": "Total number of successful MCP event emissions", "labels": ["component_name", "event_type"]},
                "mcp_event_emit_failure_total": {"type": "counter", "description": "Total number of failed MCP event emissions", "labels": ["component_name", "event_type", "error_type"]},
                "mcp_event_emit_duration_seconds": {"type": "histogram", "description": "MCP event emission duration in seconds", "labels": ["component_name", "event_type"], "buckets": EMIT_BUCKETS},
            },
            "system_health_metrics": {
                "session_quality_score": {"type": "gauge", "description": "Session quality score (0-100)", "labels": ["component_name"]},
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_original_names_in_the_text_format() {
        let m = Metrics::new();
        m.session_started("oneiric", "OneiricShell");
        m.session_ended("oneiric", "success", 300.0, true);
        let text = m.render();
        assert!(
            text.contains("# TYPE session_start_total counter"),
            "{text}"
        );
        assert!(text.contains(
            "session_start_total{component_name=\"oneiric\",shell_type=\"OneiricShell\"} 1\n"
        ));
        assert!(text.contains("# TYPE session_duration_seconds histogram"));
        assert!(text.contains(
            "session_duration_seconds_bucket{component_name=\"oneiric\",le=\"300\"} 1\n"
        ));
        assert!(
            text.contains(
                "session_duration_seconds_bucket{component_name=\"oneiric\",le=\"60\"} 0\n"
            )
        );
        assert!(text.contains("session_duration_seconds_sum{component_name=\"oneiric\"} 300"));
        assert!(text.contains("active_sessions{component_name=\"oneiric\"} 0\n"));
        assert!(text.contains("session_buddy_build_info{version=\""));
        assert!(text.contains("session_buddy_ingest_events_total{status=\"duplicate\"} 0\n"));
        assert!(!text.contains("_total_total"));
    }

    #[test]
    fn store_gauges_are_left_out_when_not_exported() {
        let m = Metrics::new();
        m.session_started("oneiric", "OneiricShell");
        m.export_store_gauges(false);
        let text = m.render();
        assert!(!text.contains("active_sessions"), "{text}");
        assert!(text.contains("session_start_total{"));
    }

    #[test]
    fn quality_scores_are_replaced_not_kept_stale() {
        let m = Metrics::new();
        m.set_qualities(&[("old".to_string(), 50.0), ("new".to_string(), 85.0)].into());
        m.set_qualities(&[("new".to_string(), 90.5)].into());
        let text = m.render();
        assert!(text.contains("session_quality_score{component_name=\"new\"} 90.5\n"));
        assert!(!text.contains("component_name=\"old\""));
        assert_eq!(
            m.summary()["quality_scores"],
            serde_json::json!({"new": 90.5})
        );
    }

    #[test]
    fn active_gauges_are_replaced_and_never_negative() {
        let m = Metrics::new();
        m.session_started("a", "AShell");
        m.session_ended("a", "success", 1.0, true);
        m.session_ended("a", "success", 1.0, true);
        m.set_active(&[("b".to_string(), 3)].into());
        let summary = m.summary();
        assert_eq!(
            summary["active_sessions"],
            serde_json::json!({"a": 0, "b": 3})
        );
        assert_eq!(summary["total_sessions_started"], 1);
        assert_eq!(summary["total_sessions_ended"], 2);
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.session_started("a\"b\\c\nd", "S");
        assert!(m.render().contains("component_name=\"a\\\"b\\\\c\\nd\""));
    }
}
