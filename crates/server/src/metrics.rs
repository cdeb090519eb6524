//! Prometheus metrics in the text exposition format (0.0.4).
//!
//! The original's eight metrics keep their names, labels and buckets; the rest follow
//! Prometheus conventions (`_total` counters, `_seconds` units) under `session_buddy_`.
//! Label values are bounded: real component names, event types, field names, route templates.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

type LabelValues = Vec<String>;

struct Family<T> {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<LabelValues, T>>,
}

impl<T: Default> Family<T> {
    const fn new(
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            help,
            kind,
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn with<R>(&self, labels: &[&str], f: impl FnOnce(&mut T) -> R) -> R {
        let key: LabelValues = labels.iter().map(|s| s.to_string()).collect();
        let mut map = self.values.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(key).or_default())
    }

    fn header(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
    }
}

fn label_str(names: &[&str], values: &[String], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some((n, v)) = extra {
        parts.push(format!("{n}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn num(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

type Counter = Family<f64>;
type Gauge = Family<f64>;

#[derive(Default, Clone)]
struct HistogramState {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

struct Histogram {
    family: Family<HistogramState>,
    buckets: &'static [f64],
}

impl Histogram {
    fn observe(&self, labels: &[&str], v: f64) {
        self.observe_n(labels, v, 1);
    }

    fn observe_n(&self, labels: &[&str], v: f64, n: u64) {
        let buckets = self.buckets;
        self.family.with(labels, |h| {
            if h.counts.len() != buckets.len() {
                h.counts = vec![0; buckets.len()];
            }
            for (i, b) in buckets.iter().enumerate() {
                if v <= *b {
                    h.counts[i] += n;
                }
            }
            h.sum += v * n as f64;
            h.count += n;
        });
    }

    fn render(&self, out: &mut String) {
        let f = &self.family;
        f.header(out);
        let map = f.values.lock().unwrap_or_else(|e| e.into_inner());
        for (labels, h) in map.iter() {
            for (i, b) in self.buckets.iter().enumerate() {
                let c = h.counts.get(i).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "{}_bucket{} {c}",
                    f.name,
                    label_str(f.labels, labels, Some(("le", &num(*b))))
                );
            }
            let _ = writeln!(
                out,
                "{}_bucket{} {}",
                f.name,
                label_str(f.labels, labels, Some(("le", "+Inf"))),
                h.count
            );
            let _ = writeln!(
                out,
                "{}_sum{} {}",
                f.name,
                label_str(f.labels, labels, None),
                num(h.sum)
            );
            let _ = writeln!(
                out,
                "{}_count{} {}",
                f.name,
                label_str(f.labels, labels, None),
                h.count
            );
        }
    }
}

fn render_scalar(f: &Family<f64>, out: &mut String) {
    f.header(out);
    let map = f.values.lock().unwrap_or_else(|e| e.into_inner());
    for (labels, v) in map.iter() {
        let _ = writeln!(
            out,
            "{}{} {}",
            f.name,
            label_str(f.labels, labels, None),
            num(*v)
        );
    }
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
    session_start: Counter,
    session_end: Counter,
    session_duration: Histogram,
    emit_success: Counter,
    emit_failure: Counter,
    emit_duration: Histogram,
    active_sessions: Gauge,
    quality_score: Gauge,
    http_requests: Counter,
    http_duration: Histogram,
    ingest_events: Counter,
    ingest_batch: Histogram,
    store_commit: Histogram,
    build_info: Gauge,
    reaper_runs: Counter,
    reaper_abandoned: Counter,
    reaper_last_run: Gauge,
    /// Whether the store-derived gauges (`active_sessions`, `session_quality_score`) are
    /// exported: with several servers on one database only the reaper-lease holder exports
    /// them, so summing over servers does not multiply them.
    store_gauges: std::sync::atomic::AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self {
            session_start: Family::new(
                "session_start_total",
                "Total number of session start events tracked",
                "counter",
                &["component_name", "shell_type"],
            ),
            session_end: Family::new(
                "session_end_total",
                "Total number of session end events tracked, by outcome (success, error, abandoned)",
                "counter",
                &["component_name", "status"],
            ),
            session_duration: Histogram {
                family: Family::new(
                    "session_duration_seconds",
                    "Session duration in seconds (end timestamp minus start timestamp)",
                    "histogram",
                    &["component_name"],
                ),
                buckets: SESSION_DURATION_BUCKETS,
            },
            emit_success: Family::new(
                "mcp_event_emit_success_total",
                "Total number of successful MCP event emissions (events ingested, any face)",
                "counter",
                &["component_name", "event_type"],
            ),
            emit_failure: Family::new(
                "mcp_event_emit_failure_total",
                "Total number of failed MCP event emissions (events rejected, any face)",
                "counter",
                &["component_name", "event_type", "error_type"],
            ),
            emit_duration: Histogram {
                family: Family::new(
                    "mcp_event_emit_duration_seconds",
                    "MCP event emission duration in seconds (ingest latency)",
                    "histogram",
                    &["component_name", "event_type"],
                ),
                buckets: EMIT_BUCKETS,
            },
            active_sessions: Family::new(
                "active_sessions",
                "Number of currently active sessions",
                "gauge",
                &["component_name"],
            ),
            quality_score: Family::new(
                "session_quality_score",
                "Session quality score (0-100) over the last 7 days",
                "gauge",
                &["component_name"],
            ),
            http_requests: Family::new(
                "session_buddy_http_requests_total",
                "HTTP requests answered, by method, route and status",
                "counter",
                &["method", "path", "status"],
            ),
            http_duration: Histogram {
                family: Family::new(
                    "session_buddy_http_request_duration_seconds",
                    "HTTP request latency in seconds, by method and route",
                    "histogram",
                    &["method", "path"],
                ),
                buckets: LATENCY_BUCKETS,
            },
            ingest_events: Family::new(
                "session_buddy_ingest_events_total",
                "Events received for ingest, by result (accepted, duplicate, rejected)",
                "counter",
                &["status"],
            ),
            ingest_batch: Histogram {
                family: Family::new(
                    "session_buddy_ingest_batch_size",
                    "Events per ingest request",
                    "histogram",
                    &[],
                ),
                buckets: BATCH_BUCKETS,
            },
            store_commit: Histogram {
                family: Family::new(
                    "session_buddy_store_write_duration_seconds",
                    "Time from handing a batch to the store until it is durable",
                    "histogram",
                    &[],
                ),
                buckets: LATENCY_BUCKETS,
            },
            build_info: Family::new(
                "session_buddy_build_info",
                "Always 1; the version label says which build runs",
                "gauge",
                &["version"],
            ),
            reaper_runs: Family::new(
                "session_buddy_reaper_runs_total",
                "Reaper passes, by outcome (ok, error)",
                "counter",
                &["outcome"],
            ),
            reaper_abandoned: Family::new(
                "session_buddy_reaper_abandoned_total",
                "Sessions the reaper marked abandoned (heartbeat timeout)",
                "counter",
                &[],
            ),
            reaper_last_run: Family::new(
                "session_buddy_reaper_last_run_timestamp_seconds",
                "When the reaper last ran (Unix time)",
                "gauge",
                &[],
            ),
            store_gauges: std::sync::atomic::AtomicBool::new(true),
        };
        m.build_info
            .with(&[env!("CARGO_PKG_VERSION")], |v| *v = 1.0);
        for status in ["accepted", "duplicate", "rejected"] {
            m.ingest_events.with(&[status], |_| ());
        }
        m
    }

    pub fn session_started(&self, component: &str, shell_type: &str) {
        self.session_start
            .with(&[component, shell_type], |v| *v += 1.0);
        self.active_sessions.with(&[component], |v| *v += 1.0);
    }

    /// A session ended; `was_active` is false when it had already been counted as abandoned.
    pub fn session_ended(
        &self,
        component: &str,
        status: &str,
        duration_seconds: f64,
        was_active: bool,
    ) {
        self.session_end.with(&[component, status], |v| *v += 1.0);
        self.session_duration
            .observe(&[component], duration_seconds);
        if was_active {
            self.active_sessions
                .with(&[component], |v| *v = (*v - 1.0).max(0.0));
        }
    }

    /// An abandoned session spoke again: active once more.
    pub fn session_revived(&self, component: &str) {
        self.active_sessions.with(&[component], |v| *v += 1.0);
    }

    /// One reaper pass: how many sessions it marked abandoned.
    pub fn reaped(&self, abandoned: usize, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.reaper_runs.with(&[outcome], |v| *v += 1.0);
        self.reaper_abandoned.with(&[], |v| *v += abandoned as f64);
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        self.reaper_last_run.with(&[], |v| *v = now);
    }

    /// Replaces the active-session gauges with counts from the store.
    pub fn set_active(&self, counts: &BTreeMap<String, u64>) {
        let mut map = self
            .active_sessions
            .values
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for v in map.values_mut() {
            *v = 0.0;
        }
        for (c, n) in counts {
            map.insert(vec![c.clone()], *n as f64);
        }
    }

    /// Exports the store-derived gauges, or not (a server that does not hold the reaper lease).
    pub fn export_store_gauges(&self, export: bool) {
        self.store_gauges
            .store(export, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn exports_store_gauges(&self) -> bool {
        self.store_gauges.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_quality(&self, component: &str, score: f64) {
        self.quality_score.with(&[component], |v| *v = score);
    }

    /// Replaces every quality score: a component without sessions in the last 7 days has no
    /// score (its series disappears) rather than a stale one.
    pub fn set_qualities(&self, scores: &BTreeMap<String, f64>) {
        let mut map = self
            .quality_score
            .values
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.clear();
        for (c, score) in scores {
            map.insert(vec![c.clone()], *score);
        }
    }

    pub fn emitted(&self, component: &str, event_type: &str, n: u64, seconds: f64) {
        self.emit_success
            .with(&[component, event_type], |v| *v += n as f64);
        self.emit_duration
            .observe_n(&[component, event_type], seconds, n);
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
            .with(&[component, event_type, error_type], |v| *v += n as f64);
        self.emit_duration
            .observe_n(&[component, event_type], seconds, n);
    }

    pub fn ingest_counted(&self, status: &str, n: u64) {
        self.ingest_events.with(&[status], |v| *v += n as f64);
    }

    pub fn batch(&self, size: usize, store_seconds: f64) {
        self.ingest_batch.observe(&[], size as f64);
        self.store_commit.observe(&[], store_seconds);
    }

    pub fn http(&self, method: &str, path: &str, status: u16, seconds: f64) {
        self.http_requests
            .with(&[method, path, &status.to_string()], |v| *v += 1.0);
        self.http_duration.observe(&[method, path], seconds);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        render_scalar(&self.session_start, &mut out);
        render_scalar(&self.session_end, &mut out);
        self.session_duration.render(&mut out);
        render_scalar(&self.emit_success, &mut out);
        render_scalar(&self.emit_failure, &mut out);
        self.emit_duration.render(&mut out);
        if self.exports_store_gauges() {
            render_scalar(&self.active_sessions, &mut out);
            render_scalar(&self.quality_score, &mut out);
        }
        render_scalar(&self.http_requests, &mut out);
        self.http_duration.render(&mut out);
        render_scalar(&self.ingest_events, &mut out);
        self.ingest_batch.render(&mut out);
        self.store_commit.render(&mut out);
        render_scalar(&self.build_info, &mut out);
        render_scalar(&self.reaper_runs, &mut out);
        render_scalar(&self.reaper_abandoned, &mut out);
        render_scalar(&self.reaper_last_run, &mut out);
        out
    }

    /// `get_metrics_summary`: the original's shape.
    pub fn summary(&self) -> serde_json::Value {
        let sum =
            |f: &Family<f64>| -> f64 { f.values.lock().map(|m| m.values().sum()).unwrap_or(0.0) };
        let by_component = |f: &Family<f64>| -> serde_json::Map<String, serde_json::Value> {
            f.values
                .lock()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.join(","), serde_json::json!(v)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let active: serde_json::Map<String, serde_json::Value> = self
            .active_sessions
            .values
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.join(","), serde_json::json!(*v as i64)))
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({
            "total_sessions_started": sum(&self.session_start) as u64,
            "total_sessions_ended": sum(&self.session_end) as u64,
            "active_sessions": active,
            "quality_scores": by_component(&self.quality_score),
            "mcp_events_success": sum(&self.emit_success) as u64,
            "mcp_events_failure": sum(&self.emit_failure) as u64,
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
    fn renders_counters_and_histograms_in_text_format() {
        let m = Metrics::new();
        m.session_started("oneiric", "OneiricShell");
        m.session_ended("oneiric", "success", 300.0, true);
        let text = m.render();
        assert!(text.contains("# TYPE session_start_total counter"));
        assert!(text.contains(
            "session_start_total{component_name=\"oneiric\",shell_type=\"OneiricShell\"} 1"
        ));
        assert!(
            text.contains(
                "session_duration_seconds_bucket{component_name=\"oneiric\",le=\"300\"} 1"
            )
        );
        assert!(
            text.contains(
                "session_duration_seconds_bucket{component_name=\"oneiric\",le=\"60\"} 0"
            )
        );
        assert!(text.contains("session_duration_seconds_sum{component_name=\"oneiric\"} 300"));
        assert!(text.contains("active_sessions{component_name=\"oneiric\"} 0"));
    }

    #[test]
    fn quality_scores_are_replaced_not_kept_stale() {
        let m = Metrics::new();
        m.set_qualities(&[("old".to_string(), 50.0), ("new".to_string(), 85.0)].into());
        m.set_qualities(&[("new".to_string(), 90.0)].into());
        let text = m.render();
        assert!(text.contains("session_quality_score{component_name=\"new\"} 90"));
        assert!(!text.contains("component_name=\"old\""));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
