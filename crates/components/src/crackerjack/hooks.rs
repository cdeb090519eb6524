//! Git hooks and pre-commit: where git keeps this checkout's hooks, which are installed, and
//! the hooks `.pre-commit-config.yaml` declares.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use session_buddy_shell::{Cancel, Exit, HelperError, ProcessOptions, run_process};

use super::programs::{find_program, is_executable};

/// How long `git rev-parse` may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where git keeps the hooks of the checkout around `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HooksLookup {
    /// The work tree's top directory and the hooks directory, as git resolves them.
    Found { work: PathBuf, hooks: PathBuf },
    /// `start` is in no git work tree.
    NotARepo,
    /// git could not be started.
    NoGit(String),
}

/// Asks git itself (`git rev-parse --show-toplevel --git-path hooks`, run in `start` through
/// `run_process`), so linked worktrees (hooks are the main repository's), `core.hooksPath`
/// (relative ones too) and `$GIT_DIR` are honoured exactly as `git commit` honours them. `Err`
/// only when the helper was interrupted.
pub(crate) fn hooks_dir(
    start: &Path,
    path: Option<&OsStr>,
    cancel: &Cancel,
) -> Result<HooksLookup, HelperError> {
    let Some(git) = find_program("git", path, start) else {
        return Ok(HooksLookup::NoGit("git is not on PATH".into()));
    };
    let mut cmd = Command::new(git);
    cmd.args(["rev-parse", "--show-toplevel", "--git-path", "hooks"])
        .current_dir(start);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let opts = ProcessOptions {
        timeout: GIT_TIMEOUT,
        stream_prefix: None,
        keep_bytes: 64 << 10,
    };
    let finished = match run_process(cmd, &opts, &mut std::io::sink(), cancel) {
        Ok(f) => f,
        Err(e) if e.interruption().is_some() => return Err(e),
        Err(e) => return Ok(HooksLookup::NoGit(format!("cannot run git: {e}"))),
    };
    let ok = matches!(finished.exit, Exit::Status(s) if s.success());
    let mut lines = finished.output.lines();
    match (ok, lines.next(), lines.next()) {
        (true, Some(top), Some(hooks)) if !top.is_empty() && !hooks.is_empty() => {
            Ok(HooksLookup::Found {
                work: PathBuf::from(top),
                // git prints it relative to the directory it ran in, unless it is absolute.
                hooks: start.join(hooks),
            })
        }
        _ => Ok(HooksLookup::NotARepo),
    }
}

/// Installed hooks: every file in `dir` not ending in `.sample`, and whether it is executable.
pub(crate) fn installed_hooks(dir: &Path) -> Vec<(String, bool, bool)> {
    let mut hooks: Vec<(String, bool, bool)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.ends_with(".sample") {
                return None;
            }
            let mut head = String::new();
            let _ =
                std::fs::File::open(e.path()).and_then(|f| f.take(4096).read_to_string(&mut head));
            let by_pre_commit = head.contains("pre-commit");
            Some((name, is_executable(&e.path()), by_pre_commit))
        })
        .collect();
    hooks.sort();
    hooks
}

/// One `repos:` entry of `.pre-commit-config.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct HookRepo {
    pub(crate) repo: String,
    pub(crate) rev: Option<String>,
    pub(crate) ids: Vec<String>,
}

/// The part of pre-commit's schema that `show_hooks` shows; other keys are ignored.
#[derive(Deserialize)]
struct PreCommitConfig {
    #[serde(default)]
    repos: Vec<RepoEntry>,
}

#[derive(Deserialize)]
struct RepoEntry {
    repo: String,
    #[serde(default)]
    rev: Option<String>,
    #[serde(default)]
    hooks: Vec<HookEntry>,
}

#[derive(Deserialize)]
struct HookEntry {
    id: String,
}

/// The repos and hook ids of a `.pre-commit-config.yaml`, by a YAML parser: block and flow
/// style, quoting, comments and multi-line strings as YAML defines them. `Err` names the
/// problem and where it is.
pub(crate) fn pre_commit_hooks(yaml: &str) -> Result<Vec<HookRepo>, String> {
    if yaml.trim().is_empty() {
        return Ok(Vec::new());
    }
    let config: PreCommitConfig = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    Ok(config
        .repos
        .into_iter()
        .map(|r| HookRepo {
            repo: r.repo,
            rev: r.rev,
            ids: r.hooks.into_iter().map(|h| h.id).collect(),
        })
        .collect())
}
