//! Any program as a tracked session (`session-buddy track -- CMD ARGS…`): it runs with the
//! inherited stdio; its start, heartbeats and end (its exit code or signal) are recorded; SIGTERM
//! and SIGHUP are passed on to it. [`track`] returns the exit code to leave with.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::record::{
    RECORDED_START_ENV, RecordError, RecordOptions, Recorder, StartIdentity, run_in_pty,
};
use crate::{EndReason, SessionInfo, Tracker, TrackerConfig};

/// Why a program could not be run as a tracked session.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("cannot run '{program}': {source}{}", if source.kind() == std::io::ErrorKind::NotFound { " (not found on PATH)" } else { "" })]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error("cannot start the signal thread: {0}")]
    SignalThread(#[source] std::io::Error),
    #[error("waiting for the tracked program: {0}")]
    Wait(#[source] std::io::Error),
    #[error("cannot record: {0}")]
    Pty(String),
}

/// Runs `command` (the program, then its arguments) as the session `info` describes; returns
/// the code to exit with: the program's, or 128 + the signal that ended it.
pub fn track(
    config: TrackerConfig,
    command: &[String],
    info: SessionInfo,
) -> Result<i32, TrackError> {
    track_with(config, command, info, None)
}

/// [`track`], with the program's terminal recorded when `record` says so
/// ([`crate::record`]).
pub fn track_with(
    config: TrackerConfig,
    command: &[String],
    info: SessionInfo,
    record: Option<RecordOptions>,
) -> Result<i32, TrackError> {
    let program = command.first().cloned().unwrap_or_default();
    if let Some(options) = record {
        let tracker = Tracker::start(config.clone(), info);
        let recorder = tracker
            .session_id()
            .and_then(|id| Recorder::start(&config, id));
        let (status, forwarded) = run_recorded(command, &[], recorder, options)?;
        let (code, reason, signal) = end_facts(status, &forwarded);
        tracker.end(reason, Some(code), signal.as_deref());
        return Ok(code);
    }
    let mut child = Command::new(&program)
        .args(command.get(1..).unwrap_or_default())
        .spawn()
        .map_err(|source| TrackError::Spawn {
            program: program.clone(),
            source,
        })?;
    let tracker = Arc::new(Tracker::start(config, info));
    let child_pid = Pid::from_raw(child.id() as i32);
    let forwarded = forward_signals(child_pid)?;
    let status = child.wait().map_err(TrackError::Wait)?;
    let (code, reason, signal) = end_facts(status, &forwarded);
    tracker.end(reason, Some(code), signal.as_deref());
    Ok(code)
}

/// `shell --record`: runs this program again, with the same arguments, in a recorded
/// pseudo-terminal. The child is the shell and tracks its session itself; it takes the start
/// identity drawn here ([`StartIdentity::inherited`]), so the recording and the session share
/// one id. Returns the code to exit with (the child's).
pub fn record_self(
    config: &TrackerConfig,
    component: &str,
    options: RecordOptions,
) -> Result<i32, TrackError> {
    let exe = std::env::current_exe().map_err(|source| TrackError::Spawn {
        program: "the running program".into(),
        source,
    })?;
    let mut command = vec![exe.to_string_lossy().into_owned()];
    command.extend(std::env::args().skip(1));
    let identity = StartIdentity::new();
    let recorder = Recorder::start(config, &identity.session_id(component));
    let env = [(RECORDED_START_ENV.to_string(), identity.env_value())];
    let (status, forwarded) = run_recorded(&command, &env, recorder, options)?;
    Ok(end_facts(status, &forwarded).0)
}

/// `command` in a recorded pseudo-terminal, SIGTERM and SIGHUP passed on to it.
fn run_recorded(
    command: &[String],
    env: &[(String, String)],
    recorder: Option<Recorder>,
    options: RecordOptions,
) -> Result<(std::process::ExitStatus, Arc<AtomicI32>), TrackError> {
    let mut forwarded = Ok(Arc::new(AtomicI32::new(0)));
    let ended = run_in_pty(command, env, recorder, options, |pid| {
        forwarded = forward_signals(Pid::from_raw(pid as i32));
    })
    .map_err(|e| match e {
        RecordError::Spawn { program, source } => TrackError::Spawn { program, source },
        RecordError::Wait(e) => TrackError::Wait(e),
        RecordError::Pty(e) => TrackError::Pty(e),
    })?;
    Ok((ended.status, forwarded?))
}

/// The exit code to leave with, why the session ended and the signal, from the program's
/// status and what we passed on to it.
fn end_facts(
    status: std::process::ExitStatus,
    forwarded: &AtomicI32,
) -> (i32, EndReason, Option<String>) {
    let (code, reason, signal) = match (status.code(), status.signal()) {
        (Some(code), _) => (code, EndReason::Exit, None),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig)
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|_| format!("SIG{sig}"));
            let reason = match sig {
                15 => EndReason::Sigterm,
                1 => EndReason::Sighup,
                2 => EndReason::Sigint,
                _ => EndReason::Error,
            };
            (128 + sig, reason, Some(name))
        }
        (None, None) => (1, EndReason::Error, None),
    };
    // A SIGTERM/SIGHUP we forwarded is why the program ended, even if it exited normally.
    let reason = match forwarded.load(Ordering::Relaxed) {
        15 => EndReason::Sigterm,
        1 => EndReason::Sighup,
        _ => reason,
    };
    (code, reason, signal)
}

/// The session `command` makes for `component` and `session_type`: its shell type is the
/// program's file name; its metadata the command line, redacted. No runtime is claimed (the
/// tracked program's is not known here; ours, Rust, is not its).
pub fn session_info(command: &[String], component: String, session_type: String) -> SessionInfo {
    let program = command.first().map(String::as_str).unwrap_or_default();
    let metadata = serde_json::Map::from_iter([(
        "command".to_string(),
        serde_json::Value::from(session_buddy_events::redact_args(&command.join(" "))),
    )]);
    SessionInfo {
        component,
        shell_type: file_name(program),
        session_type: Some(session_type),
        component_version: None,
        runtime: None,
        metadata,
    }
}

/// The component a command line runs: for a Python interpreter running a module
/// (`python3 -m mahavishnu.shell`) the module's top-level package (`mahavishnu`), else the
/// program's file name.
pub fn component_of(command: &[String]) -> String {
    let Some(program) = command.first() else {
        return "program".into();
    };
    let name = file_name(program);
    let package = python_module(&name, &command[1..])
        .and_then(|module| module.split('.').next())
        .filter(|package| !package.is_empty());
    component_name(package.unwrap_or(&name))
}

fn file_name(program: &str) -> String {
    std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.to_string())
}

/// `python`, `python3`, `python3.13`, …
fn is_python(name: &str) -> bool {
    name.strip_prefix("python")
        .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// The `-m MODULE` of a Python interpreter's arguments, read as CPython reads its options:
/// they end at `-m` (its module), `-c`, `-`, `--` or the script; `-W`, `-X` and
/// `--check-hash-based-pycs` take a value; short options may be grouped (`-um mod`).
fn python_module<'a>(program: &str, args: &'a [String]) -> Option<&'a str> {
    if !is_python(program) {
        return None;
    }
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--check-hash-based-pycs" {
            args.next();
            continue;
        }
        if arg.starts_with("--") {
            if arg == "--" {
                return None;
            }
            continue; // --help, --version, …
        }
        let cluster = arg.strip_prefix('-').filter(|c| !c.is_empty())?;
        for (i, c) in cluster.char_indices() {
            let rest = &cluster[i + c.len_utf8()..];
            match c {
                'm' if rest.is_empty() => return args.next().map(String::as_str),
                'm' => return Some(rest),
                'c' => return None,
                'W' | 'X' => {
                    if rest.is_empty() {
                        args.next();
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    None
}

/// `name` with anything outside `[a-zA-Z0-9_-]` replaced by `-`, at most 64 characters.
fn component_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "program".into()
    } else {
        cleaned
    }
}

/// SIGTERM and SIGHUP are passed on to the program; SIGINT and SIGQUIT reach it from the
/// terminal directly (same process group), so here they are only kept from killing us.
pub(crate) fn forward_signals(child: Pid) -> Result<Arc<AtomicI32>, TrackError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let forwarded = Arc::new(AtomicI32::new(0));
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT])
        .map_err(TrackError::Signals)?;
    let seen = forwarded.clone();
    std::thread::Builder::new()
        .name("track-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGTERM || sig == SIGHUP {
                    seen.store(sig, Ordering::Relaxed);
                    if let Ok(s) = Signal::try_from(sig) {
                        let _ = kill(child, s);
                    }
                }
            }
        })
        .map_err(TrackError::SignalThread)?;
    Ok(forwarded)
}

#[cfg(test)]
mod tests {
    use super::component_of;

    fn of(line: &str) -> String {
        component_of(&line.split(' ').map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn component_names_come_from_the_program() {
        assert_eq!(of("/usr/bin/python3.11"), "python3-11");
        assert_eq!(of("my_shell --flag"), "my_shell");
        assert_eq!(
            of("./tool.sh -m x"),
            "tool-sh",
            "-m means a module only to Python"
        );
    }

    #[test]
    fn python_modules_name_the_component() {
        assert_eq!(of("python3 -m mahavishnu.shell"), "mahavishnu");
        assert_eq!(of("/usr/bin/python3.13 -u -X dev -m akosha"), "akosha");
        assert_eq!(
            of("python -W ignore -mcrackerjack.cli --fast"),
            "crackerjack"
        );
        assert_eq!(of("python3 -um oneiric.admin"), "oneiric");
        assert_eq!(of("python3 -Xdev -m fastblocks"), "fastblocks");
        assert_eq!(
            of("python3 --check-hash-based-pycs never -m my_app.x"),
            "my_app"
        );
        // A script, a command or stdin runs no module: the interpreter it is.
        assert_eq!(of("python3 script.py -m mahavishnu"), "python3");
        assert_eq!(of("python3 -c print(1) -m mahavishnu"), "python3");
        assert_eq!(of("python3 - -m mahavishnu"), "python3");
        assert_eq!(of("python3 -m"), "python3");
    }
}
