//! Which project this is (Cargo or Python, found upward from the working directory) and the
//! command line of each check: the configured one, else the kind's default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::config::{CONFIG_FILE, read_config};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProjectKind {
    Cargo,
    Python,
}

impl ProjectKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            ProjectKind::Cargo => "Cargo (Rust)",
            ProjectKind::Python => "Python",
        }
    }
}

/// One QA check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Test,
    Lint,
    Scan,
    Format,
    Typecheck,
}

impl Check {
    /// The order `crack` runs them: fast feedback first.
    pub(super) const CRACK_ORDER: [Check; 5] = [
        Check::Format,
        Check::Lint,
        Check::Typecheck,
        Check::Scan,
        Check::Test,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Check::Test => "test",
            Check::Lint => "lint",
            Check::Scan => "scan",
            Check::Format => "format_code",
            Check::Typecheck => "typecheck",
        }
    }

    /// The key in `[commands]`; `format_check` for the `--check` form of `format_code`.
    pub(super) fn key(self, check_only: bool) -> &'static str {
        match (self, check_only) {
            (Check::Format, true) => "format_check",
            _ => self.name(),
        }
    }

    pub(super) fn default_command(self, kind: ProjectKind, check_only: bool) -> &'static str {
        match (kind, self) {
            (ProjectKind::Cargo, Check::Test) => "cargo test --quiet",
            (ProjectKind::Cargo, Check::Lint) => "cargo clippy --quiet -- -D warnings",
            (ProjectKind::Cargo, Check::Format) if check_only => "cargo fmt --check",
            (ProjectKind::Cargo, Check::Format) => "cargo fmt",
            (ProjectKind::Cargo, Check::Typecheck) => "cargo check --quiet",
            (ProjectKind::Cargo, Check::Scan) => "cargo audit",
            (ProjectKind::Python, Check::Test) => "pytest -q",
            (ProjectKind::Python, Check::Lint) => "ruff check .",
            (ProjectKind::Python, Check::Format) if check_only => "ruff format --check .",
            (ProjectKind::Python, Check::Format) => "ruff format .",
            (ProjectKind::Python, Check::Typecheck) => "mypy .",
            (ProjectKind::Python, Check::Scan) => "bandit -q -r .",
        }
    }
}

/// The detected project and its configured commands.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub(crate) kind: ProjectKind,
    pub(crate) root: PathBuf,
    /// `.crackerjack.toml`, when present.
    pub(crate) config_file: Option<PathBuf>,
    /// `[commands]` of the config file.
    commands: BTreeMap<String, String>,
}

impl Project {
    /// The project around `cwd`: the nearest directory upward with `Cargo.toml`,
    /// `pyproject.toml`, `setup.py` or `setup.cfg` (a Cargo project's workspace root, when it
    /// has one, so checks cover the whole workspace).
    pub(crate) fn detect(cwd: &Path) -> Result<Self, String> {
        let (kind, mut root) = cwd
            .ancestors()
            .find_map(|dir| {
                if dir.join("Cargo.toml").is_file() {
                    Some((ProjectKind::Cargo, dir.to_path_buf()))
                } else if ["pyproject.toml", "setup.py", "setup.cfg"]
                    .iter()
                    .any(|f| dir.join(f).is_file())
                {
                    Some((ProjectKind::Python, dir.to_path_buf()))
                } else {
                    None
                }
            })
            .ok_or_else(|| {
                format!(
                    "no Cargo or Python project at or above {} (looked for Cargo.toml, \
                     pyproject.toml, setup.py, setup.cfg)",
                    cwd.display()
                )
            })?;
        if kind == ProjectKind::Cargo
            && let Some(ws) = root.ancestors().skip(1).find(|dir| is_cargo_workspace(dir))
        {
            root = ws.to_path_buf();
        }
        let config_path = root.join(CONFIG_FILE);
        let (config_file, commands) = if config_path.is_file() {
            let commands = read_config(&config_path)?;
            (Some(config_path), commands)
        } else {
            (None, BTreeMap::new())
        };
        Ok(Self {
            kind,
            root,
            config_file,
            commands,
        })
    }

    /// The command line of `check`; `None` when the config file disables it (`""`).
    pub(crate) fn command(&self, check: Check, check_only: bool) -> Option<String> {
        let configured = |key: &str| self.commands.get(key).map(|c| c.trim().to_string());
        let command = match configured(check.key(check_only)) {
            Some(c) => c,
            // A configured formatter without a configured check form: ask it to check.
            None if check_only => match configured(Check::Format.key(false)) {
                Some(c) if c.is_empty() => c,
                Some(c) => format!("{c} --check"),
                None => check.default_command(self.kind, true).to_string(),
            },
            None => check.default_command(self.kind, false).to_string(),
        };
        (!command.is_empty()).then_some(command)
    }
}

pub(super) fn is_cargo_workspace(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("workspace"))
}
