//! `session-buddy track -- CMD ARGS…`: runs any program with inherited stdio as a tracked
//! session (start, heartbeats, end with its exit code or signal) and exits as it did.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, anyhow};
use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use session_buddy_client::{EndReason, SessionInfo, Tracker, TrackerConfig};

use crate::{CmdResult, Failure};

#[derive(Args)]
pub struct TrackArgs {
    /// Component name [default: the program's file name; for `python… -m MODULE`, the
    /// module's top-level package].
    #[arg(long)]
    component: Option<String>,
    /// Session type.
    #[arg(long = "type", default_value = "admin_shell")]
    session_type: String,
    /// The program and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<String>,
}

/// The component a command line runs: for a Python interpreter running a module
/// (`python3 -m mahavishnu.shell`) the module's top-level package (`mahavishnu`), else the
/// program's file name.
fn component_of(command: &[String]) -> String {
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

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn run(args: TrackArgs) -> CmdResult {
    let program = args.command[0].clone();
    let component = args
        .component
        .clone()
        .unwrap_or_else(|| component_of(&args.command));
    if !valid_name(&component) {
        return Err(anyhow!(
            "--component '{component}' must match ^[a-zA-Z0-9_-]+$ (at most 64 characters)"
        )
        .into());
    }
    if !valid_name(&args.session_type) {
        return Err(anyhow!("--type '{}' must match ^[a-zA-Z0-9_-]+$", args.session_type).into());
    }
    let shell_type = file_name(&program);
    let mut child = Command::new(&program)
        .args(&args.command[1..])
        .spawn()
        .map_err(|e| {
            Failure::Error(anyhow!(
                "cannot run '{program}': {e}{}",
                if e.kind() == std::io::ErrorKind::NotFound {
                    " (not found on PATH)"
                } else {
                    ""
                }
            ))
        })?;
    let metadata = serde_json::Map::from_iter([(
        "command".to_string(),
        serde_json::Value::from(session_buddy_events::redact_args(&args.command.join(" "))),
    )]);
    let tracker = Arc::new(Tracker::start(
        TrackerConfig::from_env(),
        SessionInfo {
            component,
            shell_type,
            session_type: Some(args.session_type.clone()),
            component_version: None,
            // The tracked program's runtime is not known here (ours, Rust, is not its).
            runtime: None,
            metadata,
        },
    ));
    let child_pid = Pid::from_raw(child.id() as i32);
    let forwarded = forward_signals(child_pid)?;
    let status = child.wait().context("waiting for the tracked program")?;
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
    tracker.end(reason, Some(code), signal.as_deref());
    std::process::exit(code);
}

/// SIGTERM and SIGHUP are passed on to the program; SIGINT and SIGQUIT reach it from the
/// terminal directly (same process group), so here they are only kept from killing us.
fn forward_signals(child: Pid) -> Result<Arc<AtomicI32>, Failure> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let forwarded = Arc::new(AtomicI32::new(0));
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT])
        .map_err(|e| anyhow!("cannot install signal handlers: {e}"))?;
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
        .map_err(|e| anyhow!("cannot start the signal thread: {e}"))?;
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
