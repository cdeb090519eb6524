//! `GET /v1/analytics/{sessions,duration,components,errors,active,quality,report}` and the MCP
//! `analytics_sessions` tool: the original's analytics (docs/api.md, "GET /v1/analytics/…"), computed by the store.
//!
//! Parameters: `days` (1..=365, default 7; `range_days` is the original MCP name), `component`,
//! `limit` (1..=100, default 10), `since` / `until` (RFC 3339; `since` replaces `days`).

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use session_buddy_events::{format_timestamp, parse_timestamp};
use session_buddy_store::analytics::{self, AnalyticsWindow};
use session_buddy_store::{ComponentQuality, FAILURE_RULE, QUALITY_FORMULA};

use crate::auth::Visibility;
use crate::{AppError, AppState};

pub const DEFAULT_DAYS: u32 = 7;
pub const MAX_DAYS: u32 = 365;
pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 100;

const KEYS: &[&str] = &["days", "range_days", "component", "limit", "since", "until"];

/// Parsed analytics parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsParams {
    pub window: AnalyticsWindow,
    /// `Last N days`, or `<since> to <until>`.
    pub date_range: String,
    pub limit: usize,
}

fn integer(key: &str, v: &Value) -> Result<i64, String> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| format!("{key} must be an integer, got {v}"))
}

/// Parses analytics parameters (query string or tool arguments); unknown names are refused.
pub fn parse_analytics_params(
    params: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<AnalyticsParams, String> {
    if let Some(unknown) = params.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown parameter '{unknown}'; known: {}",
            KEYS.join(", ")
        ));
    }
    let present = |k: &str| {
        params
            .get(k)
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
    };
    let days = match present("days").or_else(|| present("range_days")) {
        None => DEFAULT_DAYS,
        Some(v) => {
            let key = if present("days").is_some() {
                "days"
            } else {
                "range_days"
            };
            match integer(key, v)? {
                n if n < 1 => return Err(format!("{key} must be at least 1")),
                n if n > i64::from(MAX_DAYS) => {
                    return Err(format!("{key} cannot exceed {MAX_DAYS}"));
                }
                n => n as u32,
            }
        }
    };
    let limit = match present("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match integer("limit", v)? {
            n if n < 1 => return Err("limit must be at least 1".into()),
            n if n > MAX_LIMIT as i64 => return Err(format!("limit cannot exceed {MAX_LIMIT}")),
            n => n as usize,
        },
    };
    let component = match present("component") {
        None => None,
        Some(Value::String(s)) if s.len() <= 255 && !s.contains('\0') => Some(s.clone()),
        Some(_) => return Err("component: must be a component name".into()),
    };
    let time = |k: &str| -> Result<Option<DateTime<Utc>>, String> {
        match present(k) {
            None => Ok(None),
            Some(Value::String(s)) => parse_timestamp(s)
                .map(Some)
                .map_err(|rule| format!("{k}: {rule}")),
            Some(_) => Err(format!("{k}: must be an RFC 3339 timestamp")),
        }
    };
    let (since, until) = (time("since")?, time("until")?);
    let until_or_now = until.unwrap_or(now);
    let (window, date_range) = match since {
        None if until.is_none() => (
            AnalyticsWindow::last_days(days, now, component),
            format!("Last {days} days"),
        ),
        None => {
            let w = AnalyticsWindow::last_days(days, until_or_now, component);
            let range = format!(
                "{} to {}",
                format_timestamp(&w.since),
                format_timestamp(&w.until)
            );
            (w, range)
        }
        Some(since) => (
            AnalyticsWindow {
                since,
                until: until_or_now,
                component,
                components: None,
            },
            format!(
                "{} to {}",
                format_timestamp(&since),
                format_timestamp(&until_or_now)
            ),
        ),
    };
    if window.since >= window.until {
        return Err("since must be before until".into());
    }
    Ok(AnalyticsParams {
        window,
        date_range,
        limit,
    })
}

impl AnalyticsParams {
    /// These parameters restricted to what the caller may see: every store query of the
    /// analytics then covers the visible components only.
    pub fn visible_to(mut self, visible: &Visibility) -> Self {
        self.window.components = visible.0.clone();
        self
    }
}

fn params_from_query(
    q: HashMap<String, String>,
    visible: &Visibility,
) -> Result<AnalyticsParams, AppError> {
    let map: Map<String, Value> = q.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    parse_analytics_params(&map, Utc::now())
        .map(|p| p.visible_to(visible))
        .map_err(AppError::BadRequest)
}

fn window_fields(p: &AnalyticsParams) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("date_range".into(), json!(p.date_range));
    m.insert("since".into(), json!(format_timestamp(&p.window.since)));
    m.insert("until".into(), json!(format_timestamp(&p.window.until)));
    m.insert("component".into(), json!(p.window.component));
    m
}

/// `sessions`: the original's `SessionStats` per component, plus the trend (sessions per day
/// of the window, oldest first), in all and per component.
pub(crate) async fn session_stats_value(
    state: &AppState,
    p: &AnalyticsParams,
) -> Result<Value, AppError> {
    let summaries = state.store.analytics_summary(p.window.clone()).await?;
    let mut v = window_fields(p);
    v.insert(
        "session_stats".into(),
        json!(analytics::session_stats(&summaries, &p.date_range)),
    );
    v.insert("trend".into(), json!(analytics::trend(&summaries)));
    let by_component: BTreeMap<&str, &Vec<u64>> = summaries
        .iter()
        .map(|s| (s.component.as_str(), &s.trend))
        .collect();
    v.insert("trend_by_component".into(), json!(by_component));
    Ok(Value::Object(v))
}

pub(crate) async fn sessions(
    State(state): State<AppState>,
    visible: Visibility,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let p = params_from_query(q, &visible)?;
    Ok(Json(session_stats_value(&state, &p).await?))
}

pub(crate) async fn duration(
    State(state): State<AppState>,
    visible: Visibility,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let p = params_from_query(q, &visible)?;
    let summaries = state.store.analytics_summary(p.window.clone()).await?;
    let mut v = window_fields(&p);
    v.insert(
        "average_duration".into(),
        json!(analytics::average_duration(&summaries)),
    );
    Ok(Json(Value::Object(v)))
}

pub(crate) async fn components(
    State(state): State<AppState>,
    visible: Visibility,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let p = params_from_query(q, &visible)?;
    let summaries = state.store.analytics_summary(p.window.clone()).await?;
    let mut v = window_fields(&p);
    v.insert(
        "components".into(),
        json!(analytics::component_usage(&summaries, p.limit)),
    );
    Ok(Json(Value::Object(v)))
}

pub(crate) async fn errors(
    State(state): State<AppState>,
    visible: Visibility,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let p = params_from_query(q, &visible)?;
    let summaries = state.store.analytics_summary(p.window.clone()).await?;
    let common = state
        .store
        .analytics_common_errors(p.window.clone())
        .await?;
    let mut v = window_fields(&p);
    v.insert(
        "error_rates".into(),
        json!(analytics::error_rates(&summaries, &common)),
    );
    Ok(Json(Value::Object(v)))
}

/// `active`: the newest `limit` active sessions (any start time) and how many there are.
pub(crate) async fn active(
    State(state): State<AppState>,
    visible: Visibility,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let p = params_from_query(q, &visible)?;
    let now = Utc::now();
    let active = state
        .store
        .analytics_active(
            p.window.component.clone(),
            p.window.components.clone(),
            p.limit,
            now,
        )
        .await?;
    Ok(Json(json!({
        "total": active.total,
        "component": p.window.component,
        "active_sessions": active.active_sessions,
    })))
}

pub(crate) async fn report(
    State(state): State<AppState>,
    visible: Visibility,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let p = params_from_query(q, &visible)?;
    let report = analytics::report(
        state.store.as_ref(),
        &p.window,
        &p.date_range,
        p.limit,
        Utc::now(),
    )
    .await?;
    serde_json::to_value(report)
        .map(Json)
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// The days the quality score looks back (`session_quality_score`, `/v1/analytics/quality`).
pub const QUALITY_DAYS: i64 = 7;

/// The quality inputs per component of the sessions started in the [`QUALITY_DAYS`] before
/// `now` (and in the day after it, a client clock ahead of the server's), of the `visible`
/// components only when given, and the window's start: the one computation behind the
/// `session_quality_score` gauges and `GET /v1/analytics/quality`, read from the analytics
/// rollups.
pub async fn quality_inputs(
    state: &AppState,
    now: DateTime<Utc>,
    visible: Option<Vec<String>>,
) -> Result<(DateTime<Utc>, BTreeMap<String, ComponentQuality>), AppError> {
    let since = now - chrono::TimeDelta::days(QUALITY_DAYS);
    let until = now + chrono::TimeDelta::days(1);
    let quality =
        session_buddy_store::quality_by_component(state.store.as_ref(), since, until, visible)
            .await?;
    Ok((since, quality))
}

/// `GET /v1/analytics/quality`: per component the score, its three shares and their inputs,
/// with the formula and the failure rule (what session-buddy's `quality` helper shows).
pub(crate) async fn quality(
    State(state): State<AppState>,
    visible: Visibility,
) -> Result<Json<Value>, AppError> {
    let (since, by_component) = quality_inputs(&state, Utc::now(), visible.0).await?;
    let components: Map<String, Value> = by_component
        .iter()
        .map(|(c, q)| {
            let mut v = json!(q);
            if let Some(m) = v.as_object_mut() {
                m.insert("score".into(), json!(q.score()));
                m.insert("clean".into(), json!(q.clean()));
                m.insert("commands_ok".into(), json!(q.commands_ok()));
                m.insert("not_abandoned".into(), json!(q.not_abandoned()));
            }
            (c.clone(), v)
        })
        .collect();
    Ok(Json(json!({
        "days": QUALITY_DAYS,
        "since": format_timestamp(&since),
        "formula": QUALITY_FORMULA,
        "failure_rule": FAILURE_RULE,
        "components": components,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<AnalyticsParams, String> {
        let Value::Object(m) = v else {
            return Err("not an object".into());
        };
        parse_analytics_params(&m, Utc::now())
    }

    #[test]
    fn days_and_limit_follow_the_original_rules() {
        assert_eq!(
            parse(json!({"days": "0"})).unwrap_err(),
            "days must be at least 1"
        );
        assert_eq!(
            parse(json!({"range_days": 366})).unwrap_err(),
            "range_days cannot exceed 365"
        );
        assert_eq!(
            parse(json!({"limit": 101})).unwrap_err(),
            "limit cannot exceed 100"
        );
        let p = parse(json!({"days": 30, "component": "oneiric"})).unwrap();
        assert_eq!(p.date_range, "Last 30 days");
        assert_eq!(p.limit, 10);
        assert_eq!(p.window.component.as_deref(), Some("oneiric"));
        assert!(parse(json!({"bogus": 1})).is_err());
        assert_eq!(
            parse(json!({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}))
                .unwrap_err(),
            "since must be before until"
        );
        let p = parse(json!({"since": "2026-03-01T00:00:00Z", "until": "2026-03-02T00:00:00Z"}))
            .unwrap();
        assert_eq!(
            p.date_range,
            "2026-03-01T00:00:00.000000Z to 2026-03-02T00:00:00.000000Z"
        );
    }
}
