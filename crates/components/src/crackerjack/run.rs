//! Running one check: its command line split into words, its program resolved, started
//! through `run_process` (own process group, output streamed, timeout, Ctrl-C), its outcome.

use std::process::{Command, ExitStatus};
use std::time::Duration;

use session_buddy_shell::{Cancel, Exit, HelperError, ProcessOptions, run_process, split_words};

use super::config::CONFIG_FILE;
use super::programs::{find_program, required_program};
use super::project::{Check, Project};

/// Every tool is killed after this long.
pub(super) const TOOL_TIMEOUT: Duration = Duration::from_secs(600);
/// Lines of output shown when a tool fails.
pub(super) const TAIL_LINES: usize = 20;
/// Output kept per tool (the end of it).
pub(super) const KEEP_BYTES: usize = 1 << 20;

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
    pub(super) fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_) | Outcome::TimedOut)
    }

    pub(super) fn result_word(&self) -> String {
        match &self.outcome {
            Outcome::Passed => "pass".into(),
            Outcome::Failed(why) => format!("FAIL ({why})"),
            Outcome::TimedOut => "FAIL (timed out, killed)".into(),
            Outcome::Skipped(why) => format!("skipped ({why})"),
        }
    }

    pub(super) fn tail(&self) -> String {
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
pub(super) fn quoted(arg: &str) -> String {
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

pub(super) fn describe_status(s: ExitStatus) -> String {
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
