//! What the helpers print: the `crack` table and summary, the installed hooks and the
//! pre-commit configuration.

use std::path::Path;

use session_buddy_shell::{HelperError, HelperResult};

use super::config::CONFIG_HELP;
use super::hooks::HookRepo;
use super::run::{Outcome, Run};
use crate::text;

pub(super) fn report_crack(out: &mut dyn std::io::Write, runs: &[Run]) -> HelperResult {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.check.name().to_string(),
                r.result_word(),
                match r.outcome {
                    Outcome::Skipped(_) => "-".into(),
                    _ => text::duration(r.duration.as_secs_f64()),
                },
                r.command.clone(),
            ]
        })
        .collect();
    out.write_all(text::table(&["Check", "Result", "Duration", "Command"], &rows).as_bytes())?;
    for r in runs.iter().filter(|r| r.failed()) {
        writeln!(out, "\n{} ({}), last lines:", r.check.name(), r.command)?;
        out.write_all(r.tail().as_bytes())?;
    }
    let failed: Vec<&str> = runs
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.check.name())
        .collect();
    let skipped = runs
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Skipped(_)))
        .count();
    let passed = runs.len() - failed.len() - skipped;
    writeln!(
        out,
        "\n{passed} passed, {} failed, {skipped} skipped",
        failed.len()
    )?;
    if !failed.is_empty() {
        Err(HelperError::new(format!(
            "quality checks failed: {}",
            failed.join(", ")
        )))
    } else if passed == 0 {
        writeln!(
            out,
            "✗ Nothing ran: every check was skipped (install the tools, or set the commands: \
             {CONFIG_HELP})"
        )?;
        Err(HelperError::new(format!(
            "nothing ran: {}",
            if skipped == 1 {
                "the one check was skipped".to_string()
            } else {
                format!("all {skipped} checks were skipped")
            }
        )))
    } else if skipped > 0 {
        writeln!(
            out,
            "✓ The {passed} checks that ran passed ({skipped} skipped, see above)"
        )?;
        Ok(())
    } else {
        writeln!(out, "✓ All quality checks passed")?;
        Ok(())
    }
}

/// The hooks installed in `dir` (name, executable, written by pre-commit).
pub(super) fn render_installed_hooks(
    out: &mut dyn std::io::Write,
    dir: &Path,
    installed: &[(String, bool, bool)],
) -> HelperResult {
    if installed.is_empty() {
        writeln!(out, "Git hooks: none installed in {}", dir.display())?;
        return Ok(());
    }
    writeln!(out, "Git hooks in {}:", dir.display())?;
    let rows: Vec<Vec<String>> = installed
        .iter()
        .map(|(name, exec, pc)| {
            vec![
                name.clone(),
                if *exec { "yes" } else { "NO (git ignores it)" }.to_string(),
                if *pc { "pre-commit" } else { "custom" }.to_string(),
            ]
        })
        .collect();
    out.write_all(text::table(&["Hook", "Executable", "Kind"], &rows).as_bytes())?;
    Ok(())
}

/// The repos and hook ids of the pre-commit configuration at `path`, and a hint when
/// pre-commit is not installed as the git hook (`installed_by_pre_commit`: `None` when the
/// hooks are unknown).
pub(super) fn render_pre_commit(
    out: &mut dyn std::io::Write,
    path: &Path,
    repos: &[HookRepo],
    installed_by_pre_commit: Option<bool>,
) -> HelperResult {
    let total: usize = repos.iter().map(|r| r.ids.len()).sum();
    writeln!(out, "\n{}: {total} hook(s)", path.display())?;
    let rows: Vec<Vec<String>> = repos
        .iter()
        .map(|r| {
            vec![
                r.repo.clone(),
                r.rev.clone().unwrap_or_else(|| "-".into()),
                r.ids.join(", "),
            ]
        })
        .collect();
    out.write_all(text::table(&["Repo", "Rev", "Hook ids"], &rows).as_bytes())?;
    if installed_by_pre_commit == Some(false) {
        writeln!(
            out,
            "(not installed as a git hook: run `pre-commit install`)"
        )?;
    }
    Ok(())
}
