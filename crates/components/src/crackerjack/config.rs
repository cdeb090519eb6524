//! `.crackerjack.toml`: one table, `[commands]`, whose keys name checks and whose values are
//! command lines (`""` disables a check).

use std::collections::BTreeMap;
use std::path::Path;

pub(super) const CONFIG_FILE: &str = ".crackerjack.toml";

pub(super) const CONFIG_HELP: &str = "commands come from .crackerjack.toml at the project root: \
     [commands] test|lint|scan|format_code|format_check|typecheck = \"…\" (\"\" skips a check)";

pub(super) const CONFIG_KEYS: &[&str] = &[
    "test",
    "lint",
    "scan",
    "format_code",
    "format_check",
    "typecheck",
];

pub(super) fn read_config(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        format!("{} is not valid TOML: {}", path.display(), e.message())
    })?;
    let mut commands = BTreeMap::new();
    for (section, body) in &table {
        let Some(body) = body.as_table().filter(|_| section == "commands") else {
            return Err(format!(
                "{}: unknown key '{section}'; the file has one table, [commands]",
                path.display()
            ));
        };
        for (key, value) in body {
            if !CONFIG_KEYS.contains(&key.as_str()) {
                return Err(format!(
                    "{}: unknown command '{key}'; known: {}",
                    path.display(),
                    CONFIG_KEYS.join(", ")
                ));
            }
            let Some(command) = value.as_str() else {
                return Err(format!(
                    "{}: commands.{key} must be a string",
                    path.display()
                ));
            };
            commands.insert(key.clone(), command.to_string());
        }
    }
    Ok(commands)
}
