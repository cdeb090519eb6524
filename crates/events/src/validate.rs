//! Validation: JSON value in, a typed event or an error naming the field and the rule out.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::limits::*;
use crate::text::clip;
use crate::{
    CommandEvent, EVENT_VERSION_1_0, EVENT_VERSION_1_1, EnvironmentInfo, Event, EventType,
    HeartbeatEvent, OutputEvent, SUPPORTED_EVENT_VERSIONS, SessionEndEvent, SessionIdRule,
    SessionStartEvent, UserInfo, is_valid_session_id, parse_timestamp, redact_clipped,
    redact_command_args,
};

/// Why an event was refused: the field (dotted path) and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ValidationError {
    pub field: String,
    pub rule: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

type Result<T> = std::result::Result<T, ValidationError>;

/// Parses any event, choosing the type by `event_type` (a payload without one is a start,
/// unless it carries `session_id` and no `component_name`: then it is an end, as in the
/// original's payloads).
pub fn parse_event(value: &Value) -> Result<Event> {
    let obj = as_object(value)?;
    let event_type = match obj.get("event_type") {
        None | Some(Value::Null) => {
            if obj.contains_key("session_id") && !obj.contains_key("component_name") {
                EventType::SessionEnd
            } else {
                EventType::SessionStart
            }
        }
        Some(Value::String(s)) => EventType::parse(s).ok_or_else(|| {
            ValidationError::new(
                "event_type",
                format!(
                    "unknown event type '{}' (expected session_start, session_end, command, heartbeat or output)",
                    clip(s)
                ),
            )
        })?,
        Some(_) => return Err(ValidationError::new("event_type", "must be a string")),
    };
    Ok(match event_type {
        EventType::SessionStart => Event::SessionStart(start_from(obj)?),
        EventType::SessionEnd => Event::SessionEnd(end_from(obj)?),
        EventType::Command => Event::Command(command_from(obj)?),
        EventType::Heartbeat => Event::Heartbeat(heartbeat_from(obj)?),
        EventType::Output => Event::Output(output_from(obj)?),
    })
}

/// Parses a payload that must be a `session_start` (the MCP `track_session_start` arguments).
pub fn parse_session_start(value: &Value) -> Result<SessionStartEvent> {
    start_from(as_object(value)?)
}

/// Parses a payload that must be a `session_end` (the MCP `track_session_end` arguments).
pub fn parse_session_end(value: &Value) -> Result<SessionEndEvent> {
    end_from(as_object(value)?)
}

/// Canonical lowercase hyphenated form of a UUID in any of the accepted spellings.
pub fn canonical_event_id(s: &str) -> Option<String> {
    Uuid::parse_str(s.trim())
        .ok()
        .map(|u| u.hyphenated().to_string())
}

fn as_object(value: &Value) -> Result<&Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| ValidationError::new("event", "must be a JSON object"))
}

fn start_from(obj: &Map<String, Value>) -> Result<SessionStartEvent> {
    let event_version = required_version(obj)?;
    let event_id = required_uuid(obj, "event_id")?;
    expect_type(obj, EventType::SessionStart)?;
    let component_name = component_name(obj, "component_name")?;
    let shell_type = required_text(obj, "shell_type", SHORT_TEXT_MAX)?;
    let timestamp = required_timestamp(obj)?;
    let pid = match obj.get("pid") {
        None | Some(Value::Null) => return Err(missing("pid")),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(p) if (PID_MIN..=PID_MAX).contains(&p) => p as u32,
            _ => {
                return Err(ValidationError::new(
                    "pid",
                    format!("must be an integer from {PID_MIN} to {PID_MAX}, got {n}"),
                ));
            }
        },
        Some(_) => return Err(ValidationError::new("pid", "must be an integer")),
    };
    let user_obj = required_object(obj, "user")?;
    let user = UserInfo {
        username: required_text_in(user_obj, "user", "username", USERNAME_MAX)?
            .trim()
            .to_string(),
        home: required_text_in(user_obj, "user", "home", HOME_MAX)?
            .trim()
            .to_string(),
    };
    let hostname = required_text(obj, "hostname", HOSTNAME_MAX)?;
    let env_obj = required_object(obj, "environment")?;
    let python_version = if event_version == EVENT_VERSION_1_0 {
        Some(required_text_in(
            env_obj,
            "environment",
            "python_version",
            SHORT_TEXT_MAX,
        )?)
    } else {
        optional_text_in(env_obj, "environment", "python_version", SHORT_TEXT_MAX)?
    };
    let environment = EnvironmentInfo {
        python_version,
        platform: required_text_in(env_obj, "environment", "platform", SHORT_TEXT_MAX)?,
        cwd: required_text_in(env_obj, "environment", "cwd", CWD_MAX)?
            .trim()
            .to_string(),
        runtime: optional_text_in(env_obj, "environment", "runtime", SHORT_TEXT_MAX)?,
    };
    let metadata = metadata(obj)?;
    let session_type = match optional_text(obj, "session_type", COMPONENT_NAME_MAX)? {
        Some(t) if !is_name(&t) => {
            return Err(ValidationError::new(
                "session_type",
                format!("'{}' must match ^[a-zA-Z0-9_-]+$", clip(&t)),
            ));
        }
        other => other,
    };
    let component_version = optional_text(obj, "component_version", SHORT_TEXT_MAX)?;
    let heartbeat_interval_seconds = match obj.get("heartbeat_interval_seconds") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(s) if (1..=86_400).contains(&s) => Some(s as u32),
            _ => {
                return Err(ValidationError::new(
                    "heartbeat_interval_seconds",
                    "must be an integer from 1 to 86400",
                ));
            }
        },
    };
    // 1.1 only: a 1.0 start is the original's, whose unknown fields are ignored.
    let session_id_version = match obj.get("session_id_version") {
        None | Some(Value::Null) => None,
        Some(_) if event_version == EVENT_VERSION_1_0 => None,
        Some(v) => match v
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .and_then(|n| SessionIdRule::from_version(Some(n)))
        {
            Some(rule) => rule.version(),
            None => {
                return Err(ValidationError::new(
                    "session_id_version",
                    "must be 1 or 2 (the session id rules: docs/sessions.md)",
                ));
            }
        },
    };
    Ok(SessionStartEvent {
        event_version,
        event_id,
        event_type: EventType::SessionStart,
        component_name,
        shell_type,
        timestamp,
        pid,
        user,
        hostname,
        environment,
        metadata,
        session_type,
        component_version,
        heartbeat_interval_seconds,
        session_id_version,
    })
}

fn end_from(obj: &Map<String, Value>) -> Result<SessionEndEvent> {
    let event_version = optional_version(obj)?;
    let event_id = optional_uuid(obj, "event_id")?;
    expect_type(obj, EventType::SessionEnd)?;
    let session_id = required_session_id(obj)?;
    let timestamp = required_timestamp(obj)?;
    let metadata = metadata(obj)?;
    let exit_code = optional_i32(obj, "exit_code")?;
    let signal = match obj.get("signal") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|s| (1..=128).contains(&s)) => {
            Some(n.to_string())
        }
        Some(Value::String(_)) => optional_text(obj, "signal", 32)?,
        Some(_) => {
            return Err(ValidationError::new(
                "signal",
                "must be a signal name such as SIGTERM or a number from 1 to 128",
            ));
        }
    };
    let reason = optional_text(obj, "reason", COMPONENT_NAME_MAX)?;
    Ok(SessionEndEvent {
        event_version,
        event_id,
        event_type: EventType::SessionEnd,
        session_id,
        timestamp,
        metadata,
        exit_code,
        signal,
        reason,
    })
}

fn command_from(obj: &Map<String, Value>) -> Result<CommandEvent> {
    let event_version = optional_version(obj)?.unwrap_or_else(|| EVENT_VERSION_1_1.to_string());
    let event_id = required_uuid(obj, "event_id")?;
    let session_id = required_session_id(obj)?;
    let timestamp = required_timestamp(obj)?;
    let seq = match obj.get("seq") {
        None | Some(Value::Null) => return Err(missing("seq")),
        Some(v) => v
            .as_u64()
            .filter(|s| *s >= 1 && *s <= i64::MAX as u64)
            .ok_or_else(|| ValidationError::new("seq", "must be an integer of at least 1"))?,
    };
    let command = required_text(obj, "command", COMMAND_MAX)?;
    let args = optional_text(obj, "args", ARGS_MAX_BYTES)?.map(|a| redact_command_args(&a));
    let success = match obj.get("success") {
        Some(Value::Bool(b)) => *b,
        None | Some(Value::Null) => return Err(missing("success")),
        Some(_) => return Err(ValidationError::new("success", "must be true or false")),
    };
    let exit_code = optional_i32(obj, "exit_code")?;
    let duration_ms = match obj.get("duration_ms") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|d| d.is_finite() && *d >= 0.0)
                .ok_or_else(|| {
                    ValidationError::new("duration_ms", "must be a non-negative number")
                })?,
        ),
    };
    // An error can quote what was typed (a URL with its password): redacted by the same rule.
    let error =
        optional_text(obj, "error", ERROR_MAX_BYTES)?.map(|e| redact_clipped(&e, ERROR_MAX_BYTES));
    Ok(CommandEvent {
        event_version,
        event_id,
        event_type: EventType::Command,
        session_id,
        timestamp,
        seq,
        command,
        args,
        success,
        exit_code,
        duration_ms,
        error,
    })
}

fn heartbeat_from(obj: &Map<String, Value>) -> Result<HeartbeatEvent> {
    let event_version = optional_version(obj)?.unwrap_or_else(|| EVENT_VERSION_1_1.to_string());
    Ok(HeartbeatEvent {
        event_version,
        event_id: required_uuid(obj, "event_id")?,
        event_type: EventType::Heartbeat,
        session_id: required_session_id(obj)?,
        timestamp: required_timestamp(obj)?,
    })
}

fn output_from(obj: &Map<String, Value>) -> Result<OutputEvent> {
    use crate::recording::{CHUNK_MAX_BYTES, CHUNK_MAX_FRAMES, Frame, FrameKind, parse_size};
    if optional_version(obj)?.as_deref() != Some(EVENT_VERSION_1_1) {
        return Err(ValidationError::new(
            "event_version",
            "an output chunk must say event_version 1.1",
        ));
    }
    let seq = match obj.get("seq") {
        Some(Value::Number(n)) => n.as_u64().filter(|s| *s >= 1),
        _ => None,
    }
    .ok_or_else(|| ValidationError::new("seq", "must be an integer ≥ 1"))?;
    let started_at = match obj.get("started_at") {
        Some(Value::String(s)) => {
            parse_timestamp(s).map_err(|e| ValidationError::new("started_at", e))?
        }
        _ => {
            return Err(ValidationError::new(
                "started_at",
                "must be an RFC 3339 timestamp",
            ));
        }
    };
    let size = |field: &str| match obj.get(field) {
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|v| (1..=u64::from(u16::MAX)).contains(v))
            .map(|v| v as u16)
            .ok_or_else(|| ValidationError::new(field, "must be an integer from 1 to 65535")),
        _ => Err(ValidationError::new(
            field,
            "must be an integer from 1 to 65535",
        )),
    };
    let (cols, rows) = (size("cols")?, size("rows")?);
    let frames: Vec<Frame> = match obj.get("frames") {
        Some(v @ Value::Array(_)) => serde_json::from_value(v.clone()).map_err(|e| {
            ValidationError::new(
                "frames",
                format!("must be [offset, \"o\"|\"i\"|\"r\", text] arrays: {e}"),
            )
        })?,
        _ => return Err(ValidationError::new("frames", "must be an array")),
    };
    if frames.len() > CHUNK_MAX_FRAMES {
        return Err(ValidationError::new(
            "frames",
            format!("at most {CHUNK_MAX_FRAMES} frames a chunk"),
        ));
    }
    let mut last = 0.0f64;
    let mut bytes = 0usize;
    for (i, f) in frames.iter().enumerate() {
        if !f.0.is_finite() || f.0 < last {
            return Err(ValidationError::new(
                format!("frames[{i}]"),
                "offsets must be finite seconds ≥ 0, never decreasing",
            ));
        }
        last = f.0;
        if f.1 == FrameKind::Resize && parse_size(&f.2).is_none() {
            return Err(ValidationError::new(
                format!("frames[{i}]"),
                "a resize frame's data is COLSxROWS",
            ));
        }
        bytes += f.2.len();
    }
    if bytes > CHUNK_MAX_BYTES {
        return Err(ValidationError::new(
            "frames",
            format!("{bytes} bytes of data; a chunk holds at most {CHUNK_MAX_BYTES}"),
        ));
    }
    let truncated = optional_text(obj, "truncated", SHORT_TEXT_MAX)?;
    Ok(OutputEvent {
        event_version: EVENT_VERSION_1_1.to_string(),
        event_id: required_uuid(obj, "event_id")?,
        event_type: EventType::Output,
        session_id: required_session_id(obj)?,
        timestamp: required_timestamp(obj)?,
        seq,
        started_at,
        cols,
        rows,
        frames,
        truncated,
    })
}

fn missing(field: &str) -> ValidationError {
    ValidationError::new(field, "is required")
}

fn expect_type(obj: &Map<String, Value>, want: EventType) -> Result<()> {
    match obj.get("event_type") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s == want.as_str() => Ok(()),
        Some(other) => Err(ValidationError::new(
            "event_type",
            format!("must be '{want}' here, got {}", clip(&other.to_string())),
        )),
    }
}

fn required_version(obj: &Map<String, Value>) -> Result<String> {
    optional_version(obj)?.ok_or_else(|| missing("event_version"))
}

fn optional_version(obj: &Map<String, Value>) -> Result<Option<String>> {
    match obj.get("event_version") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) if SUPPORTED_EVENT_VERSIONS.contains(&v.as_str()) => {
            Ok(Some(v.clone()))
        }
        Some(v) => Err(ValidationError::new(
            "event_version",
            format!(
                "unsupported event version {} (supported: {})",
                clip(&v.to_string()),
                SUPPORTED_EVENT_VERSIONS.join(", ")
            ),
        )),
    }
}

fn required_uuid(obj: &Map<String, Value>, field: &str) -> Result<Uuid> {
    optional_uuid(obj, field)?.ok_or_else(|| missing(field))
}

fn optional_uuid(obj: &Map<String, Value>, field: &str) -> Result<Option<Uuid>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Uuid::parse_str(s.trim())
            .map(Some)
            .map_err(|_| ValidationError::new(field, format!("'{}' is not a valid UUID", clip(s)))),
        Some(_) => Err(ValidationError::new(field, "must be a UUID string")),
    }
}

fn required_timestamp(obj: &Map<String, Value>) -> Result<chrono::DateTime<chrono::Utc>> {
    match obj.get("timestamp") {
        None | Some(Value::Null) => Err(missing("timestamp")),
        Some(Value::String(s)) => {
            parse_timestamp(s).map_err(|rule| ValidationError::new("timestamp", rule))
        }
        Some(_) => Err(ValidationError::new(
            "timestamp",
            "must be an RFC 3339 string such as 2026-02-06T12:34:56.789Z",
        )),
    }
}

fn required_session_id(obj: &Map<String, Value>) -> Result<String> {
    let id = required_text(obj, "session_id", SESSION_ID_MAX)?;
    if !is_valid_session_id(&id) {
        return Err(ValidationError::new(
            "session_id",
            format!(
                "'{}' may contain only letters, digits, '-' and '_'",
                clip(&id)
            ),
        ));
    }
    Ok(id)
}

fn component_name(obj: &Map<String, Value>, field: &str) -> Result<String> {
    let name = required_text(obj, field, COMPONENT_NAME_MAX)?;
    if !is_name(&name) {
        return Err(ValidationError::new(
            field,
            format!(
                "'{}' must match ^[a-zA-Z0-9_-]+$ (letters, digits, '_' and '-')",
                clip(&name)
            ),
        ));
    }
    Ok(name)
}

/// A component name or session type as `parse_event` accepts it: `^[a-zA-Z0-9_-]+$`, at most
/// [`COMPONENT_NAME_MAX`](crate::limits::COMPONENT_NAME_MAX) characters.
pub fn is_valid_name(s: &str) -> bool {
    is_name(s) && s.len() <= COMPONENT_NAME_MAX
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn metadata(obj: &Map<String, Value>) -> Result<Map<String, Value>> {
    match obj.get("metadata") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => {
            let size = serde_json::to_string(m)
                .map(|s| s.len())
                .unwrap_or(usize::MAX);
            if size > METADATA_MAX_BYTES {
                return Err(ValidationError::new(
                    "metadata",
                    format!("is {size} bytes; at most {METADATA_MAX_BYTES} bytes are allowed"),
                ));
            }
            if let Some(path) = find_nul(&Value::Object(m.clone()), "metadata") {
                return Err(ValidationError::new(path, "contains a NUL character"));
            }
            Ok(m.clone())
        }
        Some(other) => Err(ValidationError::new(
            "metadata",
            format!("must be a JSON object, got {}", json_kind(other)),
        )),
    }
}

fn find_nul(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(path.to_string()),
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(path.to_string())
            } else {
                find_nul(v, &format!("{path}.{k}"))
            }
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_nul(v, &format!("{path}[{i}]"))),
        _ => None,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn required_object<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a Map<String, Value>> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(ValidationError::new(
            field,
            format!("must be a JSON object, got {}", json_kind(other)),
        )),
    }
}

fn required_text(obj: &Map<String, Value>, field: &str, max: usize) -> Result<String> {
    text(obj.get(field), field, max)?.ok_or_else(|| missing(field))
}

/// An optional string field: an empty (or blank) string is the same as an absent one, as
/// third-party emitters send `"args": ""` for "no arguments".
fn optional_text(obj: &Map<String, Value>, field: &str, max: usize) -> Result<Option<String>> {
    text(blank_as_absent(obj.get(field)), field, max)
}

fn blank_as_absent(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.as_str().is_some_and(|s| s.trim().is_empty()))
}

fn required_text_in(
    obj: &Map<String, Value>,
    parent: &str,
    field: &str,
    max: usize,
) -> Result<String> {
    let path = format!("{parent}.{field}");
    text(obj.get(field), &path, max)?.ok_or_else(|| missing(&path))
}

fn optional_text_in(
    obj: &Map<String, Value>,
    parent: &str,
    field: &str,
    max: usize,
) -> Result<Option<String>> {
    text(
        blank_as_absent(obj.get(field)),
        &format!("{parent}.{field}"),
        max,
    )
}

/// A string field: present and non-empty, at most `max` characters, no NUL.
fn text(value: Option<&Value>, field: &str, max: usize) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.trim().is_empty() {
                return Err(ValidationError::new(field, "must not be empty"));
            }
            let len = s.chars().count();
            if len > max {
                return Err(ValidationError::new(
                    field,
                    format!("is {len} characters; at most {max} are allowed"),
                ));
            }
            if s.contains('\0') {
                return Err(ValidationError::new(field, "contains a NUL character"));
            }
            Ok(Some(s.clone()))
        }
        Some(other) => Err(ValidationError::new(
            field,
            format!("must be a string, got {}", json_kind(other)),
        )),
    }
}

fn optional_i32(obj: &Map<String, Value>, field: &str) -> Result<Option<i32>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| ValidationError::new(field, "must be a 32-bit integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn start() -> Value {
        json!({
            "event_version": "1.0",
            "event_id": "550e8400-e29b-41d4-a716-446655440000",
            "event_type": "session_start",
            "component_name": "oneiric",
            "shell_type": "OneiricShell",
            "timestamp": "2026-02-06T12:34:56.789Z",
            "pid": 12345,
            "user": {"username": "john", "home": "/home/john"},
            "hostname": "server01",
            "environment": {"python_version": "3.13.0", "platform": "Linux", "cwd": "/tmp"},
        })
    }

    fn field_of(v: Value) -> String {
        parse_event(&v).unwrap_err().field
    }

    #[test]
    fn a_start_without_metadata_gets_an_empty_object() {
        let Event::SessionStart(s) = parse_event(&start()).unwrap() else {
            panic!("not a start")
        };
        assert!(s.metadata.is_empty());
        assert_eq!(s.session_id(), "oneiric-20260206-123456-440000");
    }

    #[test]
    fn a_1_1_start_names_its_session_id_rule_and_a_1_0_start_cannot() {
        let parsed = |v: &Value| parse_session_start(v).map(|s| s.session_id());
        let mut v = start();
        v["session_id_version"] = json!(2);
        assert_eq!(
            parsed(&v).unwrap(),
            "oneiric-20260206-123456-440000",
            "1.0: ignored"
        );
        v["event_version"] = json!("1.1");
        assert_eq!(
            parsed(&v).unwrap(),
            "oneiric-20260206-123456-a716446655440000"
        );
        v["session_id_version"] = json!(1);
        assert_eq!(parsed(&v).unwrap(), "oneiric-20260206-123456-440000");
        assert_eq!(parse_session_start(&v).unwrap().session_id_version, None);
        for bad in [json!(3), json!(0), json!("2"), json!(258)] {
            v["session_id_version"] = bad;
            let err = parse_session_start(&v).unwrap_err();
            assert_eq!(err.field, "session_id_version");
        }
    }

    #[test]
    fn every_rule_names_its_field() {
        let mut v = start();
        v["pid"] = json!(0);
        assert_eq!(field_of(v), "pid");
        let mut v = start();
        v["pid"] = json!("12");
        assert_eq!(field_of(v), "pid");
        let mut v = start();
        v["user"]["username"] = json!("x".repeat(101));
        assert_eq!(field_of(v), "user.username");
        let mut v = start();
        v["environment"]["python_version"] = Value::Null;
        assert_eq!(field_of(v), "environment.python_version");
        let mut v = start();
        v["event_version"] = json!("1.1");
        v["environment"]["python_version"] = Value::Null;
        assert!(parse_event(&v).is_ok(), "python_version is optional in 1.1");
        let mut v = start();
        v["hostname"] = json!("a\0b");
        assert_eq!(field_of(v), "hostname");
        let mut v = start();
        v["metadata"] = json!({"k": "a\0"});
        assert_eq!(field_of(v), "metadata.k");
        let mut v = start();
        v["event_type"] = json!("session_restart");
        assert_eq!(field_of(v), "event_type");
    }

    /// A command event of one session with `fields` added.
    fn command_with(fields: Value) -> Value {
        let mut cmd = json!({
            "event_id": "00000000-0000-4000-8000-000000000001",
            "event_type": "command",
            "session_id": "oneiric-20260206-123456-440000",
            "timestamp": "2026-02-06T12:35:00Z",
            "seq": 1
        });
        if let (Some(cmd), Value::Object(fields)) = (cmd.as_object_mut(), fields) {
            cmd.extend(fields);
        }
        cmd
    }

    #[test]
    fn command_args_are_redacted_and_limited() {
        let cmd = command_with(json!({
            "command": "login",
            "args": "--password hunter2 --user bob",
            "success": true,
        }));
        let Event::Command(c) = parse_event(&cmd).unwrap() else {
            panic!("not a command")
        };
        assert_eq!(c.args.as_deref(), Some("--password [REDACTED] --user bob"));
        let mut big = cmd.clone();
        big["args"] = json!("a".repeat(ARGS_MAX_BYTES + 1));
        assert_eq!(field_of(big), "args");
        let mut zero = cmd;
        zero["seq"] = json!(0);
        assert_eq!(field_of(zero), "seq");
    }

    #[test]
    fn a_command_error_is_redacted_too() {
        let cmd = command_with(json!({
            "command": "fetch",
            "success": false,
            "error": "cannot reach http://bob:hunter2@example.com (refused)",
        }));
        let Event::Command(c) = parse_event(&cmd).unwrap() else {
            panic!("not a command")
        };
        assert_eq!(
            c.error.as_deref(),
            Some("cannot reach http://bob:[REDACTED]@example.com (refused)")
        );
    }

    #[test]
    fn empty_optional_strings_are_absent_and_required_ones_stay_strict() {
        let cmd = command_with(json!({
            "command": "login",
            "args": "",
            "error": " ",
            "success": false,
        }));
        let Event::Command(c) = parse_event(&cmd).unwrap() else {
            panic!("not a command")
        };
        assert_eq!((c.args, c.error), (None, None));
        let mut empty_command = cmd.clone();
        empty_command["command"] = json!("");
        assert_eq!(
            parse_event(&empty_command).unwrap_err(),
            ValidationError::new("command", "must not be empty")
        );

        let mut v = start();
        v["event_version"] = json!("1.1");
        v["component_version"] = json!("");
        v["session_type"] = json!("");
        v["environment"]["runtime"] = json!("");
        v["environment"]["python_version"] = json!("");
        let Event::SessionStart(s) = parse_event(&v).unwrap() else {
            panic!("not a start")
        };
        assert_eq!(s.component_version, None);
        assert_eq!(s.session_type, None);
        assert_eq!(s.environment.runtime, None);
        assert_eq!(s.environment.python_version, None);
        // Required in 1.0, so strict there.
        let mut v = start();
        v["environment"]["python_version"] = json!("");
        assert_eq!(field_of(v), "environment.python_version");
        let mut v = start();
        v["hostname"] = json!("");
        assert_eq!(field_of(v), "hostname");

        let end = json!({
            "event_type": "session_end",
            "session_id": "oneiric-20260206-123456-440000",
            "timestamp": "2026-02-06T12:40:00Z",
            "reason": "",
            "signal": ""
        });
        let Event::SessionEnd(e) = parse_event(&end).unwrap() else {
            panic!("not an end")
        };
        assert_eq!((e.reason, e.signal), (None, None));
    }

    #[test]
    fn uuid_spellings_are_canonicalised() {
        for s in [
            "{550E8400-E29B-41D4-A716-446655440000}",
            "550e8400e29b41d4a716446655440000",
            "urn:uuid:550e8400-e29b-41d4-a716-446655440000",
        ] {
            assert_eq!(
                canonical_event_id(s).as_deref(),
                Some("550e8400-e29b-41d4-a716-446655440000")
            );
        }
    }
}
