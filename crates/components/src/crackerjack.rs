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

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use session_buddy_shell::{
    Cancel, Context, Exit, Helper, HelperError, HelperResult, ProcessOptions, ShellSpec,
    run_process, split_words,
};

use crate::text;

/// Every tool is killed after this long.
const TOOL_TIMEOUT: Duration = Duration::from_secs(600);
/// Lines of output shown when a tool fails.
const TAIL_LINES: usize = 20;
/// Output kept per tool (the end of it).
const KEEP_BYTES: usize = 1 << 20;
const CONFIG_FILE: &str = ".crackerjack.toml";

const CONFIG_HELP: &str = "commands come from .crackerjack.toml at the project root: \
     [commands] test|lint|scan|format_code|format_check|typecheck = \"…\" (\"\" skips a check)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProjectKind {
    Cargo,
    Python,
}

impl ProjectKind {
    fn name(self) -> &'static str {
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
    const CRACK_ORDER: [Check; 5] = [
        Check::Format,
        Check::Lint,
        Check::Typecheck,
        Check::Scan,
        Check::Test,
    ];

    fn name(self) -> &'static str {
        match self {
            Check::Test => "test",
            Check::Lint => "lint",
            Check::Scan => "scan",
            Check::Format => "format_code",
            Check::Typecheck => "typecheck",
        }
    }

    /// The key in `[commands]`; `format_check` for the `--check` form of `format_code`.
    fn key(self, check_only: bool) -> &'static str {
        match (self, check_only) {
            (Check::Format, true) => "format_check",
            _ => self.name(),
        }
    }

    fn default_command(self, kind: ProjectKind, check_only: bool) -> &'static str {
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

const CONFIG_KEYS: &[&str] = &[
    "test",
    "lint",
    "scan",
    "format_code",
    "format_check",
    "typecheck",
];

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

fn is_cargo_workspace(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("workspace"))
}

fn read_config(path: &Path) -> Result<BTreeMap<String, String>, String> {
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

/// Cargo's own subcommands; any other `cargo X` needs the program `cargo-X`.
const CARGO_BUILTINS: &str = "add b bench build c check clean config d doc fetch fix \
     generate-lockfile help info init install locate-project login logout metadata new owner \
     package pkgid publish r remove report run rustc rustdoc search t test tree uninstall update \
     vendor verify-project version yank";

/// The program a command line needs: its first word, or `cargo-X` for a cargo plugin.
pub(crate) fn required_program(argv: &[String]) -> Option<String> {
    let program = argv.first()?;
    if program == "cargo"
        && let Some(sub) = argv[1..]
            .iter()
            .find(|a| !a.starts_with('+') && !a.starts_with('-'))
        && !CARGO_BUILTINS.split_whitespace().any(|b| b == sub)
    {
        return Some(format!("cargo-{sub}"));
    }
    Some(program.clone())
}

/// Where `program` is: on `path` (a PATH value), or relative to `root` when it has a `/`.
pub(crate) fn find_program(
    program: &str,
    path: Option<&std::ffi::OsStr>,
    root: &Path,
) -> Option<PathBuf> {
    if program.contains('/') {
        let p = root.join(program);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Passed,
    Failed(String),
    TimedOut,
    /// Why it did not run (program not on PATH, disabled).
    Skipped(String),
}

/// A check's run.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) check: Check,
    pub(crate) command: String,
    pub(crate) outcome: Outcome,
    pub(crate) duration: Duration,
    /// stdout and stderr, interleaved as written (the end, when long).
    pub(crate) output: String,
}

impl Run {
    fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_) | Outcome::TimedOut)
    }

    fn result_word(&self) -> String {
        match &self.outcome {
            Outcome::Passed => "pass".into(),
            Outcome::Failed(why) => format!("FAIL ({why})"),
            Outcome::TimedOut => "FAIL (timed out, killed)".into(),
            Outcome::Skipped(why) => format!("skipped ({why})"),
        }
    }

    fn tail(&self) -> String {
        let lines: Vec<&str> = self.output.trim_end().lines().collect();
        let start = lines.len().saturating_sub(TAIL_LINES);
        lines[start..]
            .iter()
            .map(|l| format!("  | {l}\n"))
            .collect()
    }
}

/// Where a check's run shows its output, and what stops it.
pub(crate) struct Live<'a> {
    pub(crate) out: &'a mut dyn std::io::Write,
    pub(crate) cancel: &'a Cancel,
}

/// Runs `check` in the project root: stdin null, its output streamed line by line to
/// `live.out` and its end kept, stopped after `timeout`. `Err` only when Ctrl-C, SIGTERM or
/// SIGHUP interrupted it (its processes are gone then too).
pub(crate) fn run_check(
    project: &Project,
    check: Check,
    check_only: bool,
    extra_args: &[String],
    path: Option<&std::ffi::OsStr>,
    timeout: Duration,
    live: &mut Live<'_>,
) -> Result<Run, HelperError> {
    let mut run = Run {
        check,
        command: String::new(),
        outcome: Outcome::Passed,
        duration: Duration::ZERO,
        output: String::new(),
    };
    let Some(command) = project.command(check, check_only) else {
        run.outcome = Outcome::Skipped(format!("disabled in {CONFIG_FILE}"));
        return Ok(run);
    };
    let mut argv = match split_words(&command) {
        Ok(argv) if !argv.is_empty() => argv,
        Ok(_) => {
            run.outcome = Outcome::Skipped("empty command".into());
            return Ok(run);
        }
        Err(e) => {
            run.command = command;
            run.outcome = Outcome::Failed(format!("cannot parse the command: {e}"));
            return Ok(run);
        }
    };
    argv.extend(extra_args.iter().cloned());
    run.command = std::iter::once(command)
        .chain(extra_args.iter().map(|a| quoted(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let program = required_program(&argv).unwrap_or_default();
    let Some(resolved) = find_program(&argv[0], path, &project.root) else {
        run.outcome = Outcome::Skipped(format!("{} not on PATH", argv[0]));
        return Ok(run);
    };
    if program != argv[0] && find_program(&program, path, &project.root).is_none() {
        run.outcome = Outcome::Skipped(format!("{program} not on PATH"));
        return Ok(run);
    }
    let mut cmd = Command::new(&resolved);
    cmd.args(&argv[1..]).current_dir(&project.root);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let opts = ProcessOptions {
        timeout,
        stream_prefix: Some("  | ".into()),
        keep_bytes: KEEP_BYTES,
    };
    let _ = writeln!(live.out, "▶ {} ({})", check.name(), run.command);
    match run_process(cmd, &opts, live.out, live.cancel) {
        Ok(finished) => {
            run.duration = finished.duration;
            run.output = finished.output;
            run.outcome = match finished.exit {
                Exit::TimedOut => Outcome::TimedOut,
                Exit::Status(s) if s.success() => Outcome::Passed,
                Exit::Status(s) => Outcome::Failed(describe_status(s)),
            };
        }
        Err(e) if e.interruption().is_some() => return Err(e),
        Err(e) => run.outcome = Outcome::Failed(format!("cannot start {}: {e}", argv[0])),
    }
    Ok(run)
}

/// `arg` as the shell would need it typed.
fn quoted(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn describe_status(s: ExitStatus) -> String {
    if let Some(code) = s.code() {
        return format!("exit status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            return format!("killed by signal {sig}");
        }
    }
    s.to_string()
}

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

fn report_crack(out: &mut dyn std::io::Write, runs: &[Run]) -> HelperResult {
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

/// The git directory's hooks folder for `start` (honouring `core.hooksPath`).
fn hooks_dir(start: &Path) -> Option<(PathBuf, PathBuf)> {
    let (work, dot_git) = start
        .ancestors()
        .map(|d| (d.to_path_buf(), d.join(".git")))
        .find(|(_, g)| g.exists())?;
    let git_dir = if dot_git.is_file() {
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let target = text.trim().strip_prefix("gitdir:")?.trim();
        work.join(target)
    } else {
        dot_git
    };
    let configured = std::fs::read_to_string(git_dir.join("config"))
        .ok()
        .and_then(|cfg| {
            cfg.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("hookspath")
                    .then(|| work.join(v.trim().trim_matches('"')))
            })
        });
    Some((work, configured.unwrap_or_else(|| git_dir.join("hooks"))))
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

/// The repos and hook ids of a `.pre-commit-config.yaml`, read line by line (enough for the
/// block style pre-commit's docs and `autoupdate` write).
pub(crate) fn pre_commit_hooks(yaml: &str) -> Vec<HookRepo> {
    let mut repos: Vec<HookRepo> = Vec::new();
    for line in yaml.lines() {
        let line = match line.find(" #") {
            Some(i) => &line[..i],
            None => line,
        };
        let item = line.trim().trim_start_matches("- ").trim();
        let Some((key, value)) = item.split_once(':') else {
            continue;
        };
        let value = value.trim().trim_matches(['"', '\'']).to_string();
        match key.trim() {
            "repo" => repos.push(HookRepo {
                repo: value,
                ..HookRepo::default()
            }),
            "rev" => {
                if let Some(r) = repos.last_mut() {
                    r.rev = Some(value);
                }
            }
            "id" if !value.is_empty() => match repos.last_mut() {
                Some(r) => r.ids.push(value),
                None => repos.push(HookRepo {
                    repo: "(no repo)".into(),
                    rev: None,
                    ids: vec![value],
                }),
            },
            _ => {}
        }
    }
    repos
}

fn show_hooks(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    if !args.is_empty() {
        return Err("usage: show_hooks (takes no arguments)".into());
    }
    let cwd = cwd()?;
    let start = Project::detect(&cwd).map(|p| p.root).unwrap_or(cwd);
    let out = &mut *ctx.out;
    let Some((work, hooks)) = hooks_dir(&start) else {
        writeln!(
            out,
            "Not in a git repository ({}): no git hooks",
            start.display()
        )?;
        return Ok(());
    };
    let installed = installed_hooks(&hooks);
    if installed.is_empty() {
        writeln!(out, "Git hooks: none installed in {}", hooks.display())?;
    } else {
        writeln!(out, "Git hooks in {}:", hooks.display())?;
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
    }
    let config = [
        start.join(".pre-commit-config.yaml"),
        work.join(".pre-commit-config.yaml"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    match config {
        None => writeln!(out, "\nNo .pre-commit-config.yaml")?,
        Some(path) => {
            let yaml = std::fs::read_to_string(&path)
                .map_err(|e| HelperError::new(format!("cannot read {}: {e}", path.display())))?;
            let repos = pre_commit_hooks(&yaml);
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
            if !installed.iter().any(|(n, _, pc)| n == "pre-commit" && *pc) {
                writeln!(
                    out,
                    "(not installed as a git hook: run `pre-commit install`)"
                )?;
            }
        }
    }
    Ok(())
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
mod tests {
    use super::*;

    static NEVER: std::sync::LazyLock<Cancel> = std::sync::LazyLock::new(Cancel::never);

    /// A run that shows its output nowhere and is never interrupted.
    fn quiet(out: &mut Vec<u8>) -> Live<'_> {
        Live {
            out,
            cancel: &NEVER,
        }
    }
    use std::ffi::OsString;

    fn project_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn system_path() -> OsString {
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into())
    }

    #[test]
    fn detects_cargo_and_python_projects_upward() {
        let py = project_with(&[("pyproject.toml", ""), ("pkg/sub/x.py", "")]);
        let p = Project::detect(&py.path().join("pkg/sub")).unwrap();
        assert_eq!((p.kind, p.root.as_path()), (ProjectKind::Python, py.path()));
        assert_eq!(p.command(Check::Test, false).unwrap(), "pytest -q");
        assert_eq!(
            p.command(Check::Format, true).unwrap(),
            "ruff format --check ."
        );

        let ws = project_with(&[
            ("Cargo.toml", "[workspace]\nmembers = [\"crates/*\"]\n"),
            ("crates/a/Cargo.toml", "[package]\nname = \"a\"\n"),
            ("crates/a/src/lib.rs", ""),
        ]);
        let p = Project::detect(&ws.path().join("crates/a/src")).unwrap();
        assert_eq!(p.kind, ProjectKind::Cargo);
        assert_eq!(
            p.root,
            ws.path(),
            "a member's checks run at the workspace root"
        );
        assert_eq!(
            p.command(Check::Lint, false).unwrap(),
            "cargo clippy --quiet -- -D warnings"
        );
        assert_eq!(p.command(Check::Format, true).unwrap(), "cargo fmt --check");

        let none = tempfile::tempdir().unwrap();
        assert!(
            Project::detect(none.path())
                .unwrap_err()
                .contains("no Cargo or Python project")
        );
    }

    #[test]
    fn commands_come_from_the_config_file() {
        let dir = project_with(&[
            ("setup.py", ""),
            (
                ".crackerjack.toml",
                "[commands]\ntest = \"true\"\nlint = \"false\"\nscan = \"\"\nformat_code = \"black .\"\n",
            ),
        ]);
        let p = Project::detect(dir.path()).unwrap();
        assert_eq!(
            p.config_file.as_deref(),
            Some(dir.path().join(".crackerjack.toml").as_path())
        );
        assert_eq!(p.command(Check::Test, false).unwrap(), "true");
        assert_eq!(p.command(Check::Scan, false), None);
        assert_eq!(p.command(Check::Format, false).unwrap(), "black .");
        assert_eq!(p.command(Check::Format, true).unwrap(), "black . --check");
        assert_eq!(p.command(Check::Typecheck, false).unwrap(), "mypy .");

        let bad = project_with(&[
            ("setup.cfg", ""),
            (".crackerjack.toml", "[commands]\ntests = \"x\"\n"),
        ]);
        assert!(
            Project::detect(bad.path())
                .unwrap_err()
                .contains("unknown command 'tests'")
        );
        let bad = project_with(&[
            ("setup.cfg", ""),
            (".crackerjack.toml", "[command]\ntest = \"x\"\n"),
        ]);
        assert!(
            Project::detect(bad.path())
                .unwrap_err()
                .contains("unknown key 'command'")
        );
    }

    #[test]
    fn runs_pass_fail_and_skip_missing_tools() {
        let dir = project_with(&[
            ("setup.py", ""),
            (
                ".crackerjack.toml",
                "[commands]\ntest = \"sh -c 'echo out; echo err >&2; exit 0'\"\n\
                 lint = \"sh -c 'for i in $(seq 1 30); do echo line$i; done; exit 3'\"\n\
                 typecheck = \"no-such-tool-crackerjack-xyz --strict\"\n\
                 scan = \"\"\nformat_check = \"false\"\n",
            ),
        ]);
        let p = Project::detect(dir.path()).unwrap();
        let path = system_path();
        let run = |check, check_only| {
            run_check(
                &p,
                check,
                check_only,
                &[],
                Some(&path),
                Duration::from_secs(30),
                &mut quiet(&mut Vec::new()),
            )
            .unwrap()
        };

        let test = run(Check::Test, false);
        assert_eq!(test.outcome, Outcome::Passed);
        assert_eq!(test.output, "out\nerr\n");

        let lint = run(Check::Lint, false);
        assert_eq!(lint.outcome, Outcome::Failed("exit status 3".into()));
        let tail = lint.tail();
        assert_eq!(tail.lines().count(), TAIL_LINES);
        assert!(
            tail.starts_with("  | line11\n") && tail.ends_with("  | line30\n"),
            "{tail}"
        );

        let typecheck = run(Check::Typecheck, false);
        assert_eq!(
            typecheck.outcome,
            Outcome::Skipped("no-such-tool-crackerjack-xyz not on PATH".into())
        );
        assert!(matches!(
            run(Check::Scan, false).outcome,
            Outcome::Skipped(_)
        ));
        assert_eq!(
            run(Check::Format, true).outcome,
            Outcome::Failed("exit status 1".into())
        );

        let mut out = Vec::new();
        let runs = [test, lint, typecheck];
        let err = report_crack(&mut out, &runs).unwrap_err();
        assert_eq!(err.message, "quality checks failed: lint");
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("1 passed, 1 failed, 1 skipped"), "{out}");
        assert!(
            out.contains("skipped (no-such-tool-crackerjack-xyz not on PATH)"),
            "{out}"
        );
        let ok = report_crack(&mut Vec::new(), &runs[..1]);
        assert!(ok.is_ok());
        // Only skipped checks: nothing ran, which is not a pass.
        let mut out = Vec::new();
        let none = report_crack(&mut out, &runs[2..]).unwrap_err();
        assert_eq!(none.message, "nothing ran: the one check was skipped");
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("✗ Nothing ran") && !out.contains("passed\n✓"),
            "{out}"
        );
    }

    /// Processes whose command line is `words` (zombies have none, so they do not count).
    fn running(words: &[&str]) -> Vec<String> {
        let want: Vec<u8> = words.join("\0").into_bytes();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                cmdline
                    .starts_with(&want)
                    .then(|| e.file_name().to_string_lossy().into_owned())
            })
            .collect()
    }

    #[test]
    fn a_hanging_tool_is_stopped_at_the_timeout_with_all_it_started() {
        let dir = project_with(&[
            ("setup.py", ""),
            // The child keeps the pipe open too; the whole group goes.
            (
                ".crackerjack.toml",
                "[commands]\ntest = \"sh -c 'sleep 3171 & echo started; sleep 3173'\"\n",
            ),
        ]);
        let p = Project::detect(dir.path()).unwrap();
        let path = system_path();
        let mut shown = Vec::new();
        let run = run_check(
            &p,
            Check::Test,
            false,
            &[],
            Some(&path),
            Duration::from_millis(300),
            &mut quiet(&mut shown),
        )
        .unwrap();
        assert_eq!(run.outcome, Outcome::TimedOut);
        let shown = String::from_utf8(shown).unwrap();
        assert!(shown.contains("  | started\n"), "streamed: {shown}");
        for n in ["3171", "3173"] {
            assert_eq!(running(&["sleep", n]), Vec::<String>::new(), "sleep {n}");
        }
    }

    #[test]
    fn stdin_is_null() {
        let dir = project_with(&[
            ("setup.py", ""),
            (
                ".crackerjack.toml",
                "[commands]\ntest = \"sh -c 'cat; echo done'\"\n",
            ),
        ]);
        let p = Project::detect(dir.path()).unwrap();
        let path = system_path();
        let run = run_check(
            &p,
            Check::Test,
            false,
            &[],
            Some(&path),
            Duration::from_secs(10),
            &mut quiet(&mut Vec::new()),
        )
        .unwrap();
        assert_eq!(
            (run.outcome, run.output.as_str()),
            (Outcome::Passed, "done\n")
        );
    }

    #[test]
    fn cargo_plugins_need_their_own_program() {
        let argv = |s: &str| split_words(s).unwrap();
        assert_eq!(
            required_program(&argv("cargo audit")).unwrap(),
            "cargo-audit"
        );
        assert_eq!(
            required_program(&argv("cargo +nightly fmt --check")).unwrap(),
            "cargo-fmt"
        );
        assert_eq!(
            required_program(&argv("cargo test --quiet")).unwrap(),
            "cargo"
        );
        assert_eq!(required_program(&argv("ruff check .")).unwrap(), "ruff");

        let bin = tempfile::tempdir().unwrap();
        let cargo = bin.path().join("cargo");
        std::fs::write(&cargo, "#!/bin/sh\nexit 0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = project_with(&[("Cargo.toml", "[package]\nname = \"x\"\n")]);
        let p = Project::detect(dir.path()).unwrap();
        let path = bin.path().as_os_str();
        let scan = run_check(
            &p,
            Check::Scan,
            false,
            &[],
            Some(path),
            Duration::from_secs(10),
            &mut quiet(&mut Vec::new()),
        )
        .unwrap();
        assert_eq!(
            scan.outcome,
            Outcome::Skipped("cargo-audit not on PATH".into())
        );
        let check = run_check(
            &p,
            Check::Typecheck,
            false,
            &[],
            Some(path),
            Duration::from_secs(10),
            &mut quiet(&mut Vec::new()),
        )
        .unwrap();
        assert_eq!(check.outcome, Outcome::Passed);
    }

    #[test]
    fn helper_arguments() {
        let a = |s: &str| split_words(s).unwrap();
        assert_eq!(single_args(Check::Lint, &[]).unwrap(), (false, &[][..]));
        assert!(single_args(Check::Format, &a("--check")).unwrap().0);
        assert!(!single_args(Check::Format, &[]).unwrap().0);
        assert_eq!(
            single_args(Check::Test, &a("my_test --nocapture"))
                .unwrap()
                .1
                .len(),
            2
        );
        assert!(
            single_args(Check::Lint, &a("x"))
                .unwrap_err()
                .message
                .contains("usage: lint")
        );
        assert!(single_args(Check::Format, &a("--fix")).is_err());

        let dir = project_with(&[
            ("setup.py", ""),
            (
                ".crackerjack.toml",
                "[commands]\ntest = \"sh -c 'exit 0'\"\n",
            ),
        ]);
        let p = Project::detect(dir.path()).unwrap();
        let path = system_path();
        let extra = a("'a b' c");
        let run = run_check(
            &p,
            Check::Test,
            false,
            &extra,
            Some(&path),
            Duration::from_secs(10),
            &mut quiet(&mut Vec::new()),
        )
        .unwrap();
        assert_eq!(run.command, "sh -c 'exit 0' 'a b' c");
    }

    #[test]
    fn pre_commit_config_is_read_by_lines() {
        let yaml = r#"# top
repos:
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v4.6.0
    hooks:
      - id: trailing-whitespace
      - id: end-of-file-fixer  # eof
  - repo: local
    hooks:
      - id: "cargo-fmt"
        name: cargo fmt
        entry: cargo fmt
"#;
        let repos = pre_commit_hooks(yaml);
        assert_eq!(
            repos,
            vec![
                HookRepo {
                    repo: "https://github.com/pre-commit/pre-commit-hooks".into(),
                    rev: Some("v4.6.0".into()),
                    ids: vec!["trailing-whitespace".into(), "end-of-file-fixer".into()],
                },
                HookRepo {
                    repo: "local".into(),
                    rev: None,
                    ids: vec!["cargo-fmt".into()],
                },
            ]
        );
    }

    #[test]
    fn hooks_skip_samples() {
        let dir = project_with(&[
            (".git/hooks/pre-commit.sample", "x"),
            (
                ".git/hooks/pre-commit",
                "#!/bin/sh\n# installed by pre-commit\n",
            ),
            (".git/hooks/commit-msg", "#!/bin/sh\n"),
            (".git/config", "[core]\n\tbare = false\n"),
        ]);
        let (_, hooks) = hooks_dir(&dir.path().join(".")).unwrap();
        let found = installed_hooks(&hooks);
        let names: Vec<(&str, bool)> = found.iter().map(|(n, _, pc)| (n.as_str(), *pc)).collect();
        assert_eq!(names, [("commit-msg", false), ("pre-commit", true)]);
    }
}
