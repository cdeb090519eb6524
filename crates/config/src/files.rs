//! Reading one file layer: its keys, its pins, and what a project file may not set.

use std::collections::BTreeMap;
use std::path::Path;

use crate::keys::{KEYS, Key, PINNABLE, check_value, file_value_text, known_keys};
use crate::layers::{FileState, Layer, LayerValues, Problem, SYSTEM_FILE, Value};

/// Keys a project file may not set, and why.
const NOT_FROM_A_PROJECT: &[(&str, &str)] = &[
    ("client.url", "where events and tokens go"),
    ("client.token_file", "which token is sent"),
    ("client.ca_cert", "which server certificates are trusted"),
    (
        "client.buffer_max_size",
        "how many events are kept while the server is away",
    ),
    (
        "client.buffer_max_age_days",
        "how long events are kept while the server is away",
    ),
];

pub(crate) fn read_file(
    layer: Layer,
    path: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> LayerValues {
    let origin = path.display().to_string();
    let mut lv = LayerValues {
        layer,
        origin: origin.clone(),
        state: FileState::Loaded,
        values: BTreeMap::new(),
        pins: Vec::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            lv.state = FileState::Absent;
            return lv;
        }
        Err(e) => {
            let message = format!("cannot read the file: {e}");
            lv.state = FileState::Broken(message.clone());
            problems.push(Problem {
                layer,
                origin,
                message,
            });
            return lv;
        }
    };
    let problem = |message: String| Problem {
        layer,
        origin: origin.clone(),
        message,
    };
    let table = match text.parse::<toml::Table>() {
        Ok(t) => t,
        Err(e) => {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let message = match line {
                Some(n) => format!("not valid TOML (line {n}): {}", e.message()),
                None => format!("not valid TOML: {}", e.message()),
            };
            lv.state = FileState::Broken(message.clone());
            problems.push(problem(message));
            return lv;
        }
    };
    for (section, body) in &table {
        if section == "pin" {
            match read_pins(body) {
                Err(message) => problems.push(problem(message)),
                Ok(pins) if layer == Layer::System => lv.pins = pins,
                Ok(_) => warnings.push(problem(format!(
                    "pin is ignored: only the system file ({SYSTEM_FILE}) pins keys"
                ))),
            }
            continue;
        }
        if !KEYS.iter().any(|k| k.section() == section) {
            problems.push(problem(format!(
                "unknown key '{section}' (known: pin, [server], [client])"
            )));
            continue;
        }
        let Some(body) = body.as_table() else {
            problems.push(problem(format!(
                "'{section}' must be a table ([{section}])"
            )));
            continue;
        };
        for (field, raw) in body {
            let name = format!("{section}.{field}");
            let Some(key) = KEYS.iter().find(|k| k.name == name) else {
                problems.push(problem(format!(
                    "unknown key '{name}'; known: {}",
                    known_keys()
                )));
                continue;
            };
            let (text, error) = match file_value_text(key, raw) {
                Ok(text) => {
                    let error = check_value(key, &text).err();
                    (text, error)
                }
                Err(e) => (crate::keys::toml_text(raw), Some(e)),
            };
            if let Some(e) = &error {
                problems.push(problem(format!("{}: {e}", key.name)));
            }
            if layer == Layer::Project
                && let Some(why) = refused_in_a_project(key, &text)
            {
                warnings.push(problem(format!(
                    "{} is ignored: a project file may not set {why}; set it in the user \
                     file or the environment",
                    key.name
                )));
                continue;
            }
            lv.values.insert(
                key.name,
                Value {
                    text,
                    valid: error.is_none(),
                    origin: String::new(),
                },
            );
        }
    }
    lv
}

/// `pin = ["client.tracking", …]`.
fn read_pins(body: &toml::Value) -> Result<Vec<&'static str>, String> {
    let usage = || {
        format!(
            "pin must be a list of keys, e.g. pin = [\"client.tracking\"] (pinnable: {})",
            PINNABLE.join(", ")
        )
    };
    let items = body.as_array().ok_or_else(usage)?;
    items
        .iter()
        .map(|i| {
            let name = i.as_str().ok_or_else(usage)?;
            PINNABLE
                .iter()
                .copied()
                .find(|p| *p == name)
                .ok_or_else(|| {
                    format!(
                        "pin: '{name}' cannot be pinned (pinnable: {})",
                        PINNABLE.join(", ")
                    )
                })
        })
        .collect()
}

/// Why a project file may not set `key` to `text`, if it may not.
fn refused_in_a_project(key: &Key, text: &str) -> Option<String> {
    if let Some((_, why)) = NOT_FROM_A_PROJECT.iter().find(|(k, _)| *k == key.name) {
        return Some(format!("{why} ({})", key.name));
    }
    (key.name == "client.tracking" && crate::parse_switch(text) == Some(false))
        .then(|| "tracking off".to_string())
}
