//! The JSON Schema registry (draft 2020-12), generated from the wire types.

use schemars::{JsonSchema, schema_for};
use serde_json::Value;

use crate::{
    CommandEvent, EnvironmentInfo, EventResult, HeartbeatEvent, IngestResponse, Session,
    SessionEndEvent, SessionEndResult, SessionPage, SessionStartEvent, SessionStartResult,
    StoredEvent, UserInfo, recording::OutputEvent,
};

/// The registry's version: the newest event version.
pub const SCHEMA_VERSION: &str = crate::EVENT_VERSION_1_1;

/// A schema name the registry does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown schema '{name}'; known schemas: {}", schema_names().join(", "))]
pub struct SchemaError {
    pub name: String,
}

type Generator = fn() -> Value;

fn generate<T: JsonSchema>() -> Value {
    serde_json::to_value(schema_for!(T)).unwrap_or(Value::Null)
}

const ENTRIES: &[(&str, &str, Generator)] = &[
    (
        "session_start",
        "A shell opened (event).",
        generate::<SessionStartEvent>,
    ),
    (
        "session_end",
        "A shell closed (event).",
        generate::<SessionEndEvent>,
    ),
    (
        "command",
        "One helper call in a shell (event, 1.1).",
        generate::<CommandEvent>,
    ),
    (
        "heartbeat",
        "The shell is alive (event, 1.1).",
        generate::<HeartbeatEvent>,
    ),
    (
        "output",
        "One chunk of a terminal recording (event, 1.1).",
        generate::<OutputEvent>,
    ),
    (
        "event_result",
        "The result of one ingested event.",
        generate::<EventResult>,
    ),
    (
        "ingest_response",
        "The answer of POST /v1/events.",
        generate::<IngestResponse>,
    ),
    (
        "session_start_result",
        "The answer of the MCP tool track_session_start.",
        generate::<SessionStartResult>,
    ),
    (
        "session_end_result",
        "The answer of the MCP tool track_session_end.",
        generate::<SessionEndResult>,
    ),
    ("session", "The session record.", generate::<Session>),
    (
        "session_page",
        "A page of GET /v1/sessions.",
        generate::<SessionPage>,
    ),
    (
        "stored_event",
        "One event of a session's timeline.",
        generate::<StoredEvent>,
    ),
    ("user_info", "Who opened a shell.", generate::<UserInfo>),
    (
        "environment_info",
        "Where a shell runs.",
        generate::<EnvironmentInfo>,
    ),
];

/// Every schema's name, in registry order.
pub fn schema_names() -> Vec<&'static str> {
    ENTRIES.iter().map(|(n, _, _)| *n).collect()
}

/// The registry: names, descriptions and generated schemas.
pub struct SchemaRegistry;

impl SchemaRegistry {
    /// `(name, description)` of every schema.
    pub fn list() -> Vec<(&'static str, &'static str)> {
        ENTRIES.iter().map(|(n, d, _)| (*n, *d)).collect()
    }

    /// The schema called `name`, with `$schema`, `title`, `$id` and `schema_version` set.
    pub fn get(name: &str) -> Result<Value, SchemaError> {
        let (_, description, generator) =
            ENTRIES
                .iter()
                .find(|(n, _, _)| *n == name)
                .ok_or_else(|| SchemaError {
                    name: name.to_string(),
                })?;
        let mut schema = generator();
        if let Value::Object(map) = &mut schema {
            map.insert(
                "$schema".into(),
                "https://json-schema.org/draft/2020-12/schema".into(),
            );
            map.insert("$id".into(), format!("session-buddy/{name}").into());
            map.insert("title".into(), (*name).into());
            map.entry("description").or_insert((*description).into());
            map.insert("schema_version".into(), SCHEMA_VERSION.into());
        }
        Ok(schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_generates_as_draft_2020_12() {
        for name in schema_names() {
            let s = SchemaRegistry::get(name).unwrap();
            assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
            assert_eq!(s["title"], name);
            assert!(s.get("properties").is_some(), "{name} has properties");
        }
        let start = SchemaRegistry::get("session_start").unwrap();
        let required = start["required"].as_array().unwrap();
        assert!(required.iter().any(|r| r == "hostname"));
        assert!(
            SchemaRegistry::get("nope")
                .unwrap_err()
                .to_string()
                .contains("session_start")
        );
    }
}
