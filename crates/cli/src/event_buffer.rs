//! `session-buddy event-buffer status|replay|list|purge`: the host's local event buffer
//! (`$SESSION_BUDDY_HOME/buffer.db`), read and delivered through `session-buddy-client`.

use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use session_buddy_client::{
    BreakerState, Buffer, BufferedEvent, ClientError, DeliveryOutcome, PurgeWhat, TOKEN_ADVICE,
    TrackerConfig, ago, banner_state, deliver_now, run_sender_daemon, sender_running,
};

use crate::config::parse_duration;
use crate::output::{fmt_time, table};
use crate::{CmdResult, Failure};

#[derive(Subcommand)]
pub enum EventBufferCommand {
    /// Show what is buffered, the last delivery result and the circuit breaker.
    Status(StatusArgs),
    /// Deliver everything buffered now, and print a one-line report.
    Replay(ReplayArgs),
    /// List buffered events, oldest first.
    List(ListArgs),
    /// Remove buffered events or dead letters (needs --yes).
    Purge(PurgeArgs),
}

#[derive(Args)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value_t = BufferFormat::Table)]
    format: BufferFormat,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// Run as the host's detached background sender: own session, retry with backoff until
    /// the buffer is empty or a day has passed; exits at once if another sender runs.
    #[arg(long)]
    daemon: bool,
    /// Give up after this long (not with --daemon, which gives up after 24h).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long, value_enum, default_value_t = BufferFormat::Table)]
    format: BufferFormat,
    /// List the dead letters (events the server rejected) instead.
    #[arg(long)]
    dead_letters: bool,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["dead_letters", "pending", "all"])))]
pub struct PurgeArgs {
    /// Remove the dead letters.
    #[arg(long)]
    dead_letters: bool,
    /// Remove the undelivered events.
    #[arg(long)]
    pending: bool,
    /// Remove both.
    #[arg(long)]
    all: bool,
    /// Confirm: purged events are gone for good.
    #[arg(long)]
    yes: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BufferFormat {
    Table,
    Json,
}

pub fn run(command: EventBufferCommand, utc: bool) -> CmdResult {
    let config = TrackerConfig::from_env();
    match command {
        EventBufferCommand::Status(a) => status(&config, a, utc),
        EventBufferCommand::Replay(a) if a.daemon => daemon(&config),
        EventBufferCommand::Replay(a) => replay(&config, a.timeout),
        EventBufferCommand::List(a) => list(&config, a, utc),
        EventBufferCommand::Purge(a) => purge(&config, a),
    }
}

fn open(config: &TrackerConfig) -> Result<Buffer, Failure> {
    Buffer::open(&config.home, config.limits).map_err(|e| Failure::Error(e.into()))
}

fn breaker_words(b: &BreakerState, utc: bool) -> String {
    match b {
        BreakerState::Closed => "closed".into(),
        BreakerState::HalfOpen => "half-open (next call is a probe)".into(),
        BreakerState::Open { until } => format!("open until {}", fmt_time(until, utc)),
    }
}

fn status(config: &TrackerConfig, args: StatusArgs, utc: bool) -> CmdResult {
    let buffer = open(config)?;
    // Moving the shells' journals in first applies the bounds, so the counts are the ones
    // delivery will see; if that fails the journals still count as pending.
    if let Err(e) = buffer.import_journals() {
        eprintln!("warning: {e}");
    }
    let s = buffer.stats().map_err(anyhow::Error::from)?;
    let sender = sender_running(&config.home);
    if args.format == BufferFormat::Json {
        let v = json!({
            "tracking": banner_state(config),
            "enabled": config.enabled,
            "disabled_reason": config.disabled_reason,
            "server_url": config.url,
            "buffer": s.path,
            "pending": s.pending,
            "pending_bytes": s.pending_bytes,
            "oldest_pending": s.oldest_pending,
            "dead_letters": s.dead_letters,
            "dropped": s.dropped,
            "dropped_unreported": s.dropped_unreported,
            "breaker": s.breaker,
            "delivery": s.last_delivery.as_ref().map(|d| d.outcome.kind()),
            "last_delivery": s.last_delivery,
            "sender_running": sender,
            "limits": {
                "max_events": config.limits.max_events,
                "max_bytes": config.limits.max_bytes,
                "max_age_seconds": config.limits.max_age.as_secs(),
            },
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    let last = match &s.last_delivery {
        None => "never".to_string(),
        Some(d) => format!(
            "{} at {} ({}){}: {}",
            d.outcome.kind(),
            fmt_time(&d.at, utc),
            ago(d.at, chrono::Utc::now()),
            d.failing_since
                .map(|t| format!(", failing since {}", fmt_time(&t, utc)))
                .unwrap_or_default(),
            d.outcome.describe()
        ),
    };
    let rows = vec![
        vec!["Tracking".into(), banner_state(config)],
        vec!["Server".into(), config.url.clone()],
        vec!["Buffer".into(), s.path.display().to_string()],
        vec![
            "Pending".into(),
            format!(
                "{} events, {} bytes{}",
                s.pending,
                s.pending_bytes,
                s.oldest_pending
                    .map(|t| format!(", oldest {}", fmt_time(&t, utc)))
                    .unwrap_or_default()
            ),
        ],
        vec!["Dead letters".into(), s.dead_letters.to_string()],
        vec![
            "Dropped".into(),
            format!(
                "{} (limits: {} events, {} bytes, {} days)",
                s.dropped,
                config.limits.max_events,
                config.limits.max_bytes,
                config.limits.max_age.as_secs() / 86_400
            ),
        ],
        vec!["Last delivery".into(), last],
        vec!["Breaker".into(), breaker_words(&s.breaker, utc)],
        vec![
            "Sender".into(),
            if sender { "running" } else { "idle" }.to_string(),
        ],
    ];
    print!("{}", table(&["Field", "Value"], &rows));
    Ok(())
}

/// Delivers now; the exit code says how it went: 0 everything delivered, 3 the server is
/// unreachable (or too slow for `timeout`), 5 it refused the token, 6 it rejected events
/// (dead letters now), 1 the configuration is wrong.
fn replay(config: &TrackerConfig, timeout: Duration) -> CmdResult {
    let report = deliver_now(config, timeout).map_err(anyhow::Error::from)?;
    println!("replay: {report}");
    let remain = format!(
        "{} event{} remain{} buffered",
        report.remaining,
        if report.remaining == 1 { "" } else { "s" },
        if report.remaining == 1 { "s" } else { "" }
    );
    if report.remaining > 0 {
        return Err(match &report.outcome {
            Some(DeliveryOutcome::Refused { status, reason }) => Failure::Refused(format!(
                "{remain}: the server at {} refused the token (HTTP {status}: {reason}); \
                 {TOKEN_ADVICE}, then run `session-buddy event-buffer replay` again",
                config.url
            )),
            Some(DeliveryOutcome::Misconfigured { error }) => {
                Failure::Error(anyhow!("{remain}: cannot send: {error}"))
            }
            Some(DeliveryOutcome::Unreachable { error }) => Failure::Unreachable(format!(
                "{remain}: cannot deliver to {} ({error}); they will be sent when the server is back",
                config.url
            )),
            _ => Failure::Unreachable(format!(
                "{remain}: delivery to {} stopped ({}); run `session-buddy event-buffer replay` again",
                config.url,
                report.error.as_deref().unwrap_or("unknown reason")
            )),
        });
    }
    if report.dead_lettered > 0 {
        let error = match &report.outcome {
            Some(DeliveryOutcome::Rejected { error, .. }) => format!(" (last: {error})"),
            _ => String::new(),
        };
        return Err(Failure::Rejected(format!(
            "the server rejected {} event{}{error}; they are kept as dead letters: \
             `session-buddy event-buffer list --dead-letters`",
            report.dead_lettered,
            if report.dead_lettered == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// Set on the detached sender's own child, which must not hand over again.
const DETACHED_ENV: &str = "SESSION_BUDDY_DETACHED";

/// The detached sender: its own session, so the terminal and the shell's pipes never wait for
/// it (stdio is /dev/null already, set by the spawning tracker).
fn daemon(config: &TrackerConfig) -> CmdResult {
    match nix::unistd::setsid() {
        Ok(_) => {}
        // A tracker starts us as the leader of our own process group, which cannot start a
        // session; a child of ours can, and does the work.
        Err(nix::errno::Errno::EPERM) if std::env::var_os(DETACHED_ENV).is_none() => {
            let exe = std::env::current_exe().map_err(anyhow::Error::from)?;
            std::process::Command::new(exe)
                .args(["event-buffer", "replay", "--daemon"])
                .env(DETACHED_ENV, "1")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(anyhow::Error::from)?;
            return Ok(());
        }
        Err(e) => tracing::debug!(error = %e, "setsid failed"),
    }
    match run_sender_daemon(
        config,
        Duration::from_secs(24 * 3600),
        session_buddy_client::DAEMON_LINGER,
    ) {
        Ok(report) => {
            tracing::info!(%report, "detached sender done");
            Ok(())
        }
        // Another process delivers this host's buffer; nothing to do.
        Err(ClientError::SenderBusy(_)) => Ok(()),
        Err(e) => Err(Failure::Error(e.into())),
    }
}

fn event_json(e: &BufferedEvent) -> Value {
    json!({
        "id": e.id,
        "event_id": e.event_id,
        "session_id": e.session_id,
        "event_type": e.event_type,
        "queued_at": e.created_at,
        "attempts": e.attempts,
        "bytes": e.bytes,
        "last_error": e.last_error,
        "event": serde_json::from_str::<Value>(&e.payload).unwrap_or(Value::Null),
    })
}

fn list(config: &TrackerConfig, args: ListArgs, utc: bool) -> CmdResult {
    let buffer = open(config)?;
    if !args.dead_letters {
        // What shells wrote to their journals is undelivered too: list it in queue order.
        buffer.import_journals().map_err(anyhow::Error::from)?;
    }
    let events = if args.dead_letters {
        buffer.list_dead_letters(args.limit)
    } else {
        buffer.list(args.limit)
    }
    .map_err(anyhow::Error::from)?;
    if args.format == BufferFormat::Json {
        let v: Vec<Value> = events.iter().map(event_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    if events.is_empty() {
        println!(
            "{}",
            if args.dead_letters {
                "No dead letters."
            } else {
                "The buffer is empty: everything was delivered."
            }
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                fmt_time(&e.created_at, utc),
                e.event_type.clone(),
                e.session_id.clone(),
                e.event_id.clone(),
                e.attempts.to_string(),
                e.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "#",
                "Queued",
                "Type",
                "Session",
                "Event ID",
                "Rejections",
                "Last error"
            ],
            &rows
        )
    );
    Ok(())
}

fn purge(config: &TrackerConfig, args: PurgeArgs) -> CmdResult {
    let (what, words) = if args.all {
        (PurgeWhat::All, "buffered events and dead letters")
    } else if args.pending {
        (PurgeWhat::Pending, "undelivered events")
    } else {
        (PurgeWhat::DeadLetters, "dead letters")
    };
    if !args.yes {
        return Err(Failure::Error(anyhow!(
            "purging removes {words} for good; add --yes to confirm"
        )));
    }
    let buffer = open(config)?;
    if what != PurgeWhat::DeadLetters {
        // Journal lines are undelivered events too; a live session's later lines stay.
        buffer
            .import_journals()
            .with_context(|| format!("purging {words}"))?;
    }
    let n = buffer
        .purge(what)
        .with_context(|| format!("purging {words}"))?;
    println!("purged {n} {words}");
    Ok(())
}
