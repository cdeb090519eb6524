//! `GET /sessions/{id}`: a session's record and its timeline.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use session_buddy_events::{Session, StoredEvent};
use session_buddy_html::Html;
use session_buddy_text as text;

use super::{TIMELINE_PAGE, duration_text, record_row, viewer};
use crate::AppState;
use crate::auth::Principal;
use crate::console::login::ConsoleSession;
use crate::console::{Nav, html_response, layout, time};

fn record(h: &mut Html, s: &Session) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    h.open("dl", &[("id", Some("record"))]);
    record_row(h, "Session", &s.session_id);
    let component = match &s.component_version {
        Some(ver) => format!("{} {ver}", s.component),
        None => s.component.clone(),
    };
    record_row(h, "Component", &component);
    record_row(h, "Type", &s.session_type);
    record_row(h, "Status", &s.status.to_string());
    record_row(h, "User", &s.username);
    record_row(h, "Host", &s.hostname);
    record_row(h, "PID", &s.pid.to_string());
    record_row(h, "Shell", &s.shell_type);
    record_row(h, "Platform", &s.platform);
    record_row(h, "Runtime", &opt(&s.runtime_version));
    record_row(h, "Directory", &s.cwd);
    h.el("dt", &[], "Started").open("dd", &[]);
    time(h, &s.started_at);
    h.close("dd");
    h.el("dt", &[], "Ended").open("dd", &[]);
    match &s.ended_at {
        Some(t) => time(h, t),
        None => {
            h.text("-");
        }
    }
    h.close("dd");
    h.el("dt", &[], "Last seen").open("dd", &[]);
    time(h, &s.last_seen_at);
    h.close("dd");
    record_row(h, "Duration", &duration_text(s));
    record_row(h, "Commands", &s.command_count.to_string());
    record_row(h, "Errors", &s.error_count.to_string());
    record_row(
        h,
        "Exit code",
        &s.exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into()),
    );
    record_row(h, "End reason", &opt(&s.end_reason));
    h.close("dl");
}

/// One timeline item: time, kind and what it says; `offset`, its moment in the recording.
fn timeline_item(h: &mut Html, e: &StoredEvent, offset: Option<f64>) {
    let p = &e.payload;
    let summary = text::sessions::event_summary(&e.event_type, p);
    let (class, kind) = match e.event_type.as_str() {
        "session_start" => ("event start", "start"),
        "command" if summary.success == Some(false) => ("event command failed", "command"),
        "command" => ("event command", "command"),
        "session_end" => ("event end", "end"),
        other => ("event", other),
    };
    let detail = (e.event_type == "command").then(|| {
        let mut detail = match summary.success {
            Some(true) => "ok".to_string(),
            Some(false) => "failed".to_string(),
            None => String::new(),
        };
        if let Some(secs) = summary.duration_secs {
            detail.push_str(&format!(" in {}", text::hms(secs)));
        }
        if let Some(err) = &summary.error {
            detail.push_str(": ");
            detail.push_str(err);
        }
        detail.trim().to_string()
    });
    let what = summary.what;
    let offset = offset.map(|o| format!("{o:.3}"));
    h.open(
        "li",
        &[
            ("class", Some(class)),
            ("data-event", Some(&e.event_id)),
            ("data-offset", offset.as_deref()),
        ],
    );
    time(h, &e.timestamp);
    h.el("span", &[("class", Some("kind"))], kind);
    h.el("code", &[("class", Some("what"))], &what);
    if let Some(d) = detail.filter(|d| !d.is_empty()) {
        h.el("span", &[("class", Some("detail"))], &d);
    }
    h.close("li");
}

fn heartbeats(h: &mut Html, run: &[&StoredEvent]) {
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return;
    };
    h.open("li", &[("class", Some("heartbeats"))]);
    time(h, &first.timestamp);
    h.el("span", &[("class", Some("kind"))], "heartbeats");
    let what = if run.len() == 1 {
        "1 heartbeat".to_string()
    } else {
        format!(
            "{} heartbeats over {}",
            run.len(),
            text::hms((last.timestamp - first.timestamp).num_milliseconds() as f64 / 1000.0)
        )
    };
    h.el("span", &[("class", Some("what"))], &what);
    h.close("li");
}

/// The player of the session's recording, when it has one and the viewer may play it (else
/// a line saying what it needs); returns the recording's summary for the timeline's offsets.
async fn player(
    state: &AppState,
    principal: &Option<Extension<Principal>>,
    m: &mut Html,
    s: &Session,
) -> Option<session_buddy_store::RecordingInfo> {
    if !s.has_recording {
        return None;
    }
    let info = match state
        .store
        .recording_infos(std::slice::from_ref(&s.session_id))
        .await
    {
        Ok(mut infos) => infos.pop()?,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a recording's summary");
            return None;
        }
    };
    m.el("h2", &[], "Recording");
    let principal = principal.as_ref().map(|Extension(p)| p);
    if let Some(problem) = crate::recording::recordings_problem(state, principal) {
        m.el(
            "p",
            &[("class", Some("empty")), ("id", Some("player-denied"))],
            &format!("This session has a recording. {problem}."),
        );
        return None;
    }
    let cast = format!("/sessions/{}/recording.cast", s.session_id);
    let (cols, rows) = (info.cols.to_string(), info.rows.to_string());
    m.open(
        "section",
        &[
            ("id", Some("player")),
            ("data-cast", Some(&cast)),
            ("data-cols", Some(&cols)),
            ("data-rows", Some(&rows)),
            ("tabindex", Some("0")),
            ("aria-label", Some("Terminal recording")),
        ],
    )
    .close("section");
    let summary = format!(
        "{} recorded in {} chunks{}; every playback is audited.",
        text::bytes(info.bytes),
        info.chunks,
        match &info.truncated {
            Some(r) => format!(", truncated ({r})"),
            None => String::new(),
        }
    );
    m.el("p", &[("class", Some("hint"))], &summary);
    let js = crate::console::player_path();
    m.open("script", &[("src", Some(&js)), ("defer", Some(""))])
        .close("script");
    Some(info)
}

/// `GET /sessions/{id}/recording.cast`: the recording for the console's player (the
/// `recordings` scope; audited as a playback).
pub(crate) async fn recording_cast(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    visible: crate::auth::Visibility,
    Path(id): Path<String>,
) -> Result<Response, crate::AppError> {
    use axum::response::IntoResponse;
    let principal = principal.map(|Extension(p)| p);
    let cast =
        crate::recording::read_cast(&state, principal.as_ref(), &visible, &id, "play").await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/x-asciicast"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        cast,
    )
        .into_response())
}

/// `GET /sessions/{id}`: the record and a page of the timeline (`?page=`).
pub(crate) async fn session_page(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    session: Option<Extension<ConsoleSession>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = viewer(&principal, &session);
    if !session_buddy_events::is_valid_session_id(&id) {
        return v.fail(
            StatusCode::BAD_REQUEST,
            "Not a session id",
            "Session ids contain only letters, digits, '-' and '_'.",
        );
    }
    let page: usize = match q.get("page").map(|p| p.parse::<usize>()) {
        None => 1,
        Some(Ok(n)) if (1..=100_000).contains(&n) => n,
        Some(_) => {
            return v.fail(
                StatusCode::BAD_REQUEST,
                "Bad page",
                "page must be a number from 1 to 100000.",
            );
        }
    };
    let s = match state.store.get_session(&id).await {
        Ok(Some(s)) if v.sees(&s.component) => s,
        Ok(_) => {
            return v.fail(
                StatusCode::NOT_FOUND,
                "No such session",
                &format!("No session '{id}' (its start may not have arrived yet)."),
            );
        }
        Err(e) => {
            return v.fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage unavailable",
                &e.to_string(),
            );
        }
    };
    let mut events = match state
        .store
        .session_timeline(&id, (page - 1) * TIMELINE_PAGE, TIMELINE_PAGE + 1)
        .await
    {
        Ok(e) => e,
        Err(e) => {
            return v.fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage unavailable",
                &e.to_string(),
            );
        }
    };
    let more = events.len() > TIMELINE_PAGE;
    events.truncate(TIMELINE_PAGE);
    let mut m = Html::new();
    m.open("p", &[("class", Some("crumbs"))])
        .el("a", &[("href", Some("/sessions"))], "← Sessions")
        .close("p");
    m.open("h1", &[])
        .text("Session ")
        .el("code", &[], &s.session_id)
        .close("h1");
    let status = s.status.to_string();
    let badge = format!("badge status-{status}");
    m.el("p", &[("class", Some(&badge))], &status);
    record(&mut m, &s);
    if !s.metadata.is_empty() {
        m.el("h2", &[], "Metadata");
        m.el(
            "pre",
            &[("id", Some("metadata"))],
            &serde_json::to_string_pretty(&s.metadata).unwrap_or_default(),
        );
    }
    let recording = player(&state, &principal, &mut m, &s).await;
    m.el(
        "h2",
        &[],
        if page > 1 {
            "Timeline (continued)"
        } else {
            "Timeline"
        },
    );
    m.open("ol", &[("id", Some("timeline"))]);
    let mut run: Vec<&StoredEvent> = Vec::new();
    for e in &events {
        if e.event_type == "heartbeat" {
            run.push(e);
            continue;
        }
        heartbeats(&mut m, &run);
        run.clear();
        let offset = recording.as_ref().and_then(|r| {
            let secs = (e.timestamp - r.started_at).num_microseconds()? as f64 / 1e6;
            (secs >= 0.0 && e.timestamp <= r.last_at).then_some(secs)
        });
        timeline_item(&mut m, e, offset);
    }
    heartbeats(&mut m, &run);
    m.close("ol");
    if events.is_empty() {
        m.el("p", &[("class", Some("empty"))], "No events on this page.");
    }
    m.open(
        "nav",
        &[
            ("class", Some("pager")),
            ("aria-label", Some("Timeline pages")),
        ],
    );
    if page > 1 {
        let href = format!("/sessions/{id}?page={}", page - 1);
        m.el(
            "a",
            &[("rel", Some("prev")), ("href", Some(&href))],
            "← Earlier",
        );
    }
    if more {
        let href = format!("/sessions/{id}?page={}", page + 1);
        m.el(
            "a",
            &[("rel", Some("next")), ("href", Some(&href))],
            "Later →",
        );
    }
    m.close("nav");
    html_response(
        StatusCode::OK,
        layout(&format!("Session {id}"), Nav::Sessions, v.csrf(), &m),
    )
}
