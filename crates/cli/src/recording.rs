//! Recordings: `play ID` (in this terminal, with pause, step and quit keys), `recording export
//! ID` (asciicast v2 for asciinema and any player), `erase ID` (admin) and `audit` (who played,
//! exported or erased what). Every read of a recording goes through the server, which audits
//! it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use session_buddy_client::record::{KeyReader, RawGuard};
use session_buddy_events::recording::{Frame, FrameKind, parse_asciicast};

use crate::client::Api;
use crate::{CmdResult, Failure, Format};

#[derive(Args)]
pub struct PlayArgs {
    /// The session whose recording to play.
    session_id: String,
    /// Playback speed: 2 is twice as fast.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Pauses longer than this many seconds are cut to it.
    #[arg(long, value_name = "SECS")]
    idle_limit: Option<f64>,
    /// The server's URL [default: as every client].
    #[arg(long)]
    url: Option<String>,
}

#[derive(Subcommand)]
pub enum RecordingCommand {
    /// Write a session's recording as asciicast v2 (`asciinema play FILE` plays it).
    Export {
        session_id: String,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Args)]
pub struct EraseArgs {
    /// The session to remove for good: its record, events and recording.
    session_id: String,
    /// Do not ask (needed when standard input is not a terminal).
    #[arg(long)]
    yes: bool,
    #[arg(long)]
    url: Option<String>,
}

#[derive(Args)]
pub struct AuditArgs {
    /// Only this session's entries.
    #[arg(long)]
    session_id: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long)]
    url: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn checked(id: &str) -> Result<(), Failure> {
    if session_buddy_events::is_valid_session_id(id) {
        Ok(())
    } else {
        Err(anyhow!(
            "'{id}' is not a session id (letters, digits, '-' and '_'); list ids with `session-buddy list-sessions`"
        )
        .into())
    }
}

fn fetch(url: Option<&str>, id: &str, purpose: &str) -> Result<String, Failure> {
    checked(id)?;
    Api::new(url).get_text(
        &format!("/v1/sessions/{id}/recording"),
        &[("purpose", purpose.to_string())],
    )
}

pub fn run(command: RecordingCommand) -> CmdResult {
    match command {
        RecordingCommand::Export {
            session_id,
            output,
            url,
        } => {
            let cast = fetch(url.as_deref(), &session_id, "export")?;
            match output {
                Some(path) => {
                    std::fs::write(&path, &cast)
                        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
                    eprintln!("wrote {} ({} bytes)", path.display(), cast.len());
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(cast.as_bytes())
                        .and_then(|()| out.flush())
                        .map_err(|e| anyhow!("cannot write the recording: {e}"))?;
                }
            }
            Ok(())
        }
    }
}

enum Key {
    Pause,
    Step,
    Quit,
}

fn keys() -> (Receiver<Key>, KeyReader) {
    let (tx, rx) = channel();
    let reader = KeyReader::spawn(move |bytes| {
        for c in bytes {
            let key = match c {
                b' ' => Key::Pause,
                b'.' => Key::Step,
                b'q' | 3 | 4 => Key::Quit,
                _ => continue,
            };
            if tx.send(key).is_err() {
                return false;
            }
        }
        true
    });
    (rx, reader)
}

/// `session-buddy play ID`: the recording in this terminal, at its pace (`--speed`, pauses cut
/// to `--idle-limit`); space pauses, `.` steps one frame while paused, `q` quits. The terminal
/// is restored after, however it ends.
pub fn play(args: PlayArgs) -> CmdResult {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(anyhow!("--speed must be a positive number, e.g. 2").into());
    }
    if args
        .idle_limit
        .is_some_and(|l| !(l.is_finite() && l >= 0.0))
    {
        return Err(anyhow!("--idle-limit must be a number of seconds ≥ 0").into());
    }
    let cast = fetch(args.url.as_deref(), &args.session_id, "play")?;
    let (header, frames) = parse_asciicast(&cast).map_err(|e| anyhow!("{e}"))?;
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut out = std::io::stdout();
    if interactive {
        let (cols, rows) = session_buddy_client::record::terminal_size();
        if (cols, rows) != (header.width, header.height) {
            eprintln!(
                "The recording is {}x{}; this terminal is {cols}x{rows}: resize it for a faithful replay. \
                 Keys: space pause, . step, q quit.",
                header.width, header.height
            );
            std::thread::sleep(Duration::from_millis(1500));
        }
    }
    let guard = interactive.then(RawGuard::enter).flatten();
    let (keys, reader) = interactive.then(keys).unzip();
    let outcome = replay(
        &frames,
        args.speed,
        args.idle_limit,
        keys.as_ref(),
        &mut out,
    );
    if let Some(reader) = reader {
        reader.stop();
    }
    // Leave the recording's screen state behind: attributes, cursor, alternate screen.
    let alt = frames
        .iter()
        .filter(|f| f.kind() == FrameKind::Output)
        .fold(false, |alt, f| {
            let d = f.data();
            match (d.rfind("\x1b[?1049h"), d.rfind("\x1b[?1049l")) {
                (Some(h), Some(l)) => h > l,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => alt,
            }
        });
    let reset = if alt {
        "\x1b[0m\x1b[?25h\x1b[?1049l"
    } else {
        "\x1b[0m\x1b[?25h"
    };
    let _ = out.write_all(reset.as_bytes());
    let _ = out.flush();
    drop(guard);
    if interactive {
        println!();
        eprintln!(
            "{} session {}",
            if outcome { "Played" } else { "Stopped" },
            args.session_id
        );
    }
    Ok(())
}

/// Writes the frames at their pace; false when quit early.
fn replay(
    frames: &[Frame],
    speed: f64,
    idle_limit: Option<f64>,
    keys: Option<&Receiver<Key>>,
    out: &mut impl Write,
) -> bool {
    let mut last = 0.0f64;
    let mut paused = false;
    let mut i = 0;
    while i < frames.len() {
        let f = &frames[i];
        let mut gap = (f.offset() - last).max(0.0);
        if let Some(limit) = idle_limit {
            gap = gap.min(limit);
        }
        let mut wait = Duration::from_secs_f64(gap / speed);
        if let Some(keys) = keys {
            loop {
                let got = if paused {
                    keys.recv().map_err(|_| RecvTimeoutError::Disconnected)
                } else {
                    let started = std::time::Instant::now();
                    let got = keys.recv_timeout(wait);
                    wait = wait.saturating_sub(started.elapsed());
                    got
                };
                match got {
                    Ok(Key::Quit) => return false,
                    Ok(Key::Pause) => paused = !paused,
                    Ok(Key::Step) if paused => break,
                    Ok(Key::Step) => {}
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) if paused => return false,
                    Err(RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(wait);
                        break;
                    }
                }
            }
        } else {
            std::thread::sleep(wait);
        }
        if f.kind() == FrameKind::Output {
            let _ = out.write_all(f.data().as_bytes());
            let _ = out.flush();
        }
        last = f.offset();
        i += 1;
    }
    true
}

/// `session-buddy erase ID` (admin).
pub fn erase(args: EraseArgs) -> CmdResult {
    checked(&args.session_id)?;
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(anyhow!(
                "erase removes session {} for good; pass --yes to confirm",
                args.session_id
            )
            .into());
        }
        eprint!(
            "Erase session {} (its record, events and recording) for good? [y/N] ",
            args.session_id
        );
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("Nothing erased.");
            return Ok(());
        }
    }
    let answer =
        Api::new(args.url.as_deref()).delete(&format!("/v1/sessions/{}", args.session_id))?;
    let e = &answer["erased"];
    println!(
        "Erased session {}: {} events, {} recording chunks (the erasure is in the audit log).",
        args.session_id, e["events"], e["chunks"]
    );
    Ok(())
}

/// `session-buddy audit`: the audit log, newest first.
pub fn audit(args: AuditArgs) -> CmdResult {
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(id) = &args.session_id {
        checked(id)?;
        query.push(("session_id", id.clone()));
    }
    let answer = Api::new(args.url.as_deref()).get_json("/v1/audit", &query)?;
    let entries = answer["entries"].as_array().cloned().unwrap_or_default();
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&entries).map_err(anyhow::Error::from)?
        ),
        Format::Csv | Format::Table => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let s = |k: &str| e[k].as_str().unwrap_or("-").to_string();
                    vec![
                        s("at"),
                        s("action"),
                        s("session_id"),
                        s("actor"),
                        s("detail"),
                    ]
                })
                .collect();
            let headers = ["At", "Action", "Session", "Who", "Detail"];
            if matches!(args.format, Format::Csv) {
                print!("{}", session_buddy_text::csv(&headers, &rows));
            } else if rows.is_empty() {
                println!("The audit log is empty.");
            } else {
                println!("{}", session_buddy_text::table(&headers, &rows).trim_end());
            }
        }
    }
    Ok(())
}
