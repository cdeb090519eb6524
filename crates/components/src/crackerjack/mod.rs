//! Crackerjack (Inspector): runs the project's real QA tools. The project (Cargo or Python) is
//! detected from the working directory upward; each command can be replaced in
//! `.crackerjack.toml` at the project root:
//!
//! ```toml
//! [commands]
//! test = "cargo nextest run"
//! format_check = "cargo fmt --all --check"
//! scan = ""            # empty: skip this check
//! ```

mod config;
mod hooks;
mod programs;
mod project;
mod render;
mod run;

use std::path::PathBuf;

use session_buddy_shell::{Context, Helper, HelperError, HelperResult, ShellSpec, split_words};

use config::{CONFIG_FILE, CONFIG_HELP};
use hooks::{HooksLookup, hooks_dir, installed_hooks, pre_commit_hooks};
use programs::{find_program, required_program};
use project::{Check, Project};
use render::{render_installed_hooks, render_pre_commit, report_crack};
use run::{Live, Outcome, TOOL_TIMEOUT, run_check};

use crate::text;

fn cwd() -> Result<PathBuf, HelperError> {
    std::env::current_dir()
        .map_err(|e| HelperError::new(format!("cannot read the working directory: {e}")))
}

fn project() -> Result<Project, HelperError> {
    Ok(Project::detect(&cwd()?)?)
}

/// `format_code [--check]`, `test [ARGS…]`, the others nothing: (check only, extra arguments).
fn single_args(check: Check, args: &[String]) -> Result<(bool, &[String]), HelperError> {
    match (check, args) {
        (Check::Test, extra) => Ok((false, extra)),
        (_, []) => Ok((false, &[])),
        (Check::Format, [flag]) if flag == "--check" => Ok((true, &[])),
        _ => Err(HelperError::new(format!(
            "usage: {}{}",
            check.name(),
            match check {
                Check::Format => " [--check]",
                _ => " (takes no arguments)",
            }
        ))),
    }
}

/// One check as its own helper: a one-line result, and the end of the output on failure.
fn single(ctx: &mut Context<'_>, check: Check, args: &[String]) -> HelperResult {
    let (check_only, extra) = single_args(check, args)?;
    let project = project()?;
    let path = std::env::var_os("PATH");
    let cancel = ctx.cancel.clone();
    let run = run_check(
        &project,
        check,
        check_only,
        extra,
        path.as_deref(),
        TOOL_TIMEOUT,
        &mut Live {
            out: ctx.out,
            cancel: &cancel,
        },
    )?;
    let out = &mut *ctx.out;
    let took = text::duration(run.duration.as_secs_f64());
    match &run.outcome {
        Outcome::Passed => {
            writeln!(
                out,
                "✓ {} passed in {took}  ({})",
                check.name(),
                run.command
            )?;
            Ok(())
        }
        Outcome::Skipped(why) => {
            writeln!(out, "- {} did not run: {why}", check.name())?;
            if why.contains("PATH") {
                writeln!(out, "  (install it, or set another command: {CONFIG_HELP})")?;
            }
            Err(HelperError::new(format!(
                "{} did not run: {why}",
                check.name()
            )))
        }
        Outcome::Failed(_) | Outcome::TimedOut => {
            writeln!(
                out,
                "✗ {} {} after {took}  ({})",
                check.name(),
                run.result_word(),
                run.command
            )?;
            Err(HelperError::new(format!(
                "{} failed: {}",
                check.name(),
                run.result_word()
            )))
        }
    }
}

fn crack(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    if !args.is_empty() {
        return Err("usage: crack (takes no arguments)".into());
    }
    let project = project()?;
    let path = std::env::var_os("PATH");
    writeln!(
        ctx.out,
        "{} project at {}",
        project.kind.name(),
        project.root.display()
    )?;
    let cancel = ctx.cancel.clone();
    let mut live = Live {
        out: ctx.out,
        cancel: &cancel,
    };
    let mut runs = Vec::new();
    for check in Check::CRACK_ORDER {
        let check_only = check == Check::Format;
        runs.push(run_check(
            &project,
            check,
            check_only,
            &[],
            path.as_deref(),
            TOOL_TIMEOUT,
            &mut live,
        )?);
    }
    report_crack(ctx.out, &runs)
}

fn show_adapters(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    if !args.is_empty() {
        return Err("usage: show_adapters (takes no arguments)".into());
    }
    let project = project()?;
    let path = std::env::var_os("PATH");
    let out = &mut *ctx.out;
    writeln!(
        out,
        "Project: {} at {}",
        project.kind.name(),
        project.root.display()
    )?;
    match &project.config_file {
        Some(f) => writeln!(out, "Config:  {}", f.display())?,
        None => writeln!(out, "Config:  defaults (no {CONFIG_FILE}; {CONFIG_HELP})")?,
    }
    let mut rows = Vec::new();
    for (label, check, check_only) in [
        ("test", Check::Test, false),
        ("lint", Check::Lint, false),
        ("scan", Check::Scan, false),
        ("format_code", Check::Format, false),
        ("format_code --check", Check::Format, true),
        ("typecheck", Check::Typecheck, false),
    ] {
        let (command, program, found) = match project.command(check, check_only) {
            None => ("(disabled)".to_string(), "-".to_string(), "-".to_string()),
            Some(c) => {
                let argv = split_words(&c).unwrap_or_default();
                let program = required_program(&argv).unwrap_or_default();
                let found = match find_program(&program, path.as_deref(), &project.root) {
                    Some(p) => p.display().to_string(),
                    None => "MISSING (skipped)".to_string(),
                };
                (c, program, found)
            }
        };
        rows.push(vec![label.to_string(), command, program, found]);
    }
    out.write_all(text::table(&["Helper", "Command", "Program", "On PATH"], &rows).as_bytes())?;
    Ok(())
}

fn show_hooks(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    if !args.is_empty() {
        return Err("usage: show_hooks (takes no arguments)".into());
    }
    let cwd = cwd()?;
    let start = Project::detect(&cwd).map(|p| p.root).unwrap_or(cwd);
    let path = std::env::var_os("PATH");
    let cancel = ctx.cancel.clone();
    let out = &mut *ctx.out;
    let (work, installed) = match hooks_dir(&start, path.as_deref(), &cancel)? {
        HooksLookup::NotARepo => {
            writeln!(
                out,
                "Not in a git repository ({}): no git hooks",
                start.display()
            )?;
            return Ok(());
        }
        HooksLookup::NoGit(why) => {
            writeln!(out, "Git hooks: unknown ({why})")?;
            (start.clone(), None)
        }
        HooksLookup::Found { work, hooks } => {
            let installed = installed_hooks(&hooks);
            render_installed_hooks(out, &hooks, &installed)?;
            (work, Some(installed))
        }
    };
    let config = [
        start.join(".pre-commit-config.yaml"),
        work.join(".pre-commit-config.yaml"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    let Some(path) = config else {
        writeln!(out, "\nNo .pre-commit-config.yaml")?;
        return Ok(());
    };
    let yaml = std::fs::read_to_string(&path)
        .map_err(|e| HelperError::new(format!("cannot read {}: {e}", path.display())))?;
    let repos = pre_commit_hooks(&yaml).map_err(|e| {
        HelperError::new(format!(
            "{} is not a pre-commit configuration: {e}",
            path.display()
        ))
    })?;
    let installed_by_pre_commit = installed
        .as_deref()
        .map(|hooks| hooks.iter().any(|(n, _, pc)| n == "pre-commit" && *pc));
    render_pre_commit(out, &path, &repos, installed_by_pre_commit)
}

pub(crate) fn spec() -> ShellSpec {
    let one = |check: Check, summary: &str| {
        Helper::new(check.name(), summary, move |ctx, args| {
            single(ctx, check, args)
        })
    };
    ShellSpec {
        component: "crackerjack".into(),
        display_name: "Crackerjack".into(),
        version: crate::VERSION.into(),
        tagline: "Quality & testing automation: your project's real QA tools, one command each"
            .into(),
        role: "Inspector".into(),
        shell_type: "CrackerjackShell".into(),
        help_notes: format!("The checks' {CONFIG_HELP}; a tool that is not on PATH is skipped."),
        helpers: vec![
            Helper::new(
                "crack",
                "run format check, lint, typecheck, scan and test in turn, their output as it \
                 comes, then a pass/fail/skipped table with durations (fails if any check failed \
                 or none ran)",
                crack,
            ),
            one(
                Check::Test,
                "run the tests (cargo test --quiet / pytest -q); extra arguments are passed on",
            )
            .usage("[ARGS…]"),
            one(
                Check::Lint,
                "run the linter (cargo clippy --quiet -- -D warnings / ruff check .)",
            ),
            one(
                Check::Scan,
                "run the security scanner (cargo audit / bandit -q -r .)",
            ),
            one(
                Check::Format,
                "format the code (cargo fmt / ruff format .); --check only checks",
            )
            .usage("[--check]")
            .complete(|req| req.first(["--check"])),
            one(
                Check::Typecheck,
                "type-check (cargo check --quiet / mypy .)",
            ),
            Helper::new(
                "show_adapters",
                "the detected project, each check's command, and whether its program is on PATH",
                show_adapters,
            ),
            Helper::new(
                "show_hooks",
                "installed git hooks (not *.sample) and the hook ids of .pre-commit-config.yaml",
                show_hooks,
            ),
        ],
    }
}

#[cfg(test)]
mod tests;
