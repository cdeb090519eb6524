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
    /// Component name [default: the program's file name].
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

/// A component name from a program path: its file name with anything outside
/// `[a-zA-Z0-9_-]` replaced by `-`, at most 64 characters.
fn component_of(program: &str) -> String {
    let name = std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.to_string());
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
        .unwrap_or_else(|| component_of(&program));
    if !valid_name(&component) {
        return Err(anyhow!(
            "--component '{component}' must match ^[a-zA-Z0-9_-]+$ (at most 64 characters)"
        )
        .into());
    }
    if !valid_name(&args.session_type) {
        return Err(anyhow!("--type '{}' must match ^[a-zA-Z0-9_-]+$", args.session_type).into());
    }
    let shell_type = std::path::Path::new(&program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.clone());
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

    #[test]
    fn component_names_come_from_the_program() {
        assert_eq!(component_of("/usr/bin/python3.11"), "python3-11");
        assert_eq!(component_of("my_shell"), "my_shell");
    }
}
