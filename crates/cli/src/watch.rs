//! `session-buddy watch`: follows `GET /v1/stream` and prints one line per change — a shell's
//! start, each command with its success, its end or abandonment — or NDJSON with
//! `--format json`. It reconnects by itself with `Last-Event-ID` (backoff 200 ms … 10 s) and
//! drops the changes it already printed (by event id), so a resume that re-sends the overlap
//! prints nothing twice. Ctrl-C ends it with 130.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use session_buddy_client::http::{ApiError, ServerApi};

use crate::output::fmt_time;
use crate::{CmdResult, Failure};

#[derive(Args)]
pub struct WatchArgs {
    /// The server's URL [env SESSION_BUDDY_URL; default: `[client] url` from the config
    /// files, else http://127.0.0.1:<server.port>].
    #[arg(long)]
    url: Option<String>,
    #[arg(long)]
    component: Option<String>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    host: Option<String>,
    #[arg(long, value_enum, default_value_t = WatchFormat::Table)]
    format: WatchFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WatchFormat {
    Table,
    Json,
}

/// A stream silent for longer than this (the server sends a keep-alive every 15 s) is taken
/// for dead and opened again.
const SILENCE: Duration = Duration::from_secs(45);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Event ids remembered to drop what a resume sends again.
const SEEN_MAX: usize = 100_000;

/// What the reader thread hands over.
enum Read {
    /// `event`, `data` (a dispatched message).
    Message(String, Value),
    /// An `id:` line: where to resume from.
    Id(String),
    /// The stream ended (the server stopped, or the connection broke).
    End(Option<String>),
}

pub fn run(args: WatchArgs, utc: bool) -> CmdResult {
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone())
            .map_err(|e| anyhow::anyhow!("cannot handle signals: {e}"))?;
    }
    let config = session_buddy_client::TrackerConfig::from_env();
    let endpoint = crate::client::endpoint(&config, args.url.as_deref());
    let api = ServerApi::new(
        &endpoint.url,
        endpoint.token,
        config.ca_cert.as_deref(),
        Duration::from_secs(60),
        Duration::from_secs(5),
    );
    let mut query: Vec<(String, String)> = Vec::new();
    for (k, v) in [
        ("component", &args.component),
        ("user", &args.user),
        ("host", &args.host),
    ] {
        if let Some(v) = v {
            query.push((k.to_string(), v.clone()));
        }
    }
    let mut printer = Printer {
        format: args.format,
        utc,
        seen: HashSet::new(),
        order: VecDeque::new(),
        status: HashMap::new(),
        out: std::io::stdout(),
    };
    let mut last_id: Option<String> = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        if interrupted.load(Ordering::Relaxed) {
            return interrupted_exit();
        }
        let body = match api.event_stream("/v1/stream", &query, last_id.as_deref()) {
            Ok(b) => b,
            Err(e) => {
                match e {
                    ApiError::Unusable(_) => return Err(Failure::Error(anyhow::anyhow!("{e}"))),
                    ApiError::Refused { status, .. } if status == 401 || status == 403 => {
                        return Err(Failure::Refused(e.to_string()));
                    }
                    ApiError::Refused { status, .. } if (400..500).contains(&status) => {
                        return Err(Failure::Error(anyhow::anyhow!("{e}")));
                    }
                    _ => {}
                }
                eprintln!("watch: {e}; retrying in {:.1} s", backoff.as_secs_f64());
                if sleep_unless(&interrupted, backoff) {
                    return interrupted_exit();
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let (tx, rx) = mpsc::sync_channel::<Read>(256);
        std::thread::spawn(move || read_events(body, tx));
        let mut heard = Instant::now();
        loop {
            if interrupted.load(Ordering::Relaxed) {
                return interrupted_exit();
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Read::Id(id)) => {
                    heard = Instant::now();
                    backoff = BACKOFF_MIN;
                    last_id = Some(id);
                }
                Ok(Read::Message(event, data)) => {
                    heard = Instant::now();
                    backoff = BACKOFF_MIN;
                    printer
                        .message(&event, &data)
                        .map_err(|e| anyhow::anyhow!("cannot write: {e}"))?;
                }
                Ok(Read::End(why)) => {
                    if let Some(why) = why {
                        eprintln!("watch: the stream broke ({why}); reconnecting");
                    } else {
                        eprintln!("watch: the server ended the stream; reconnecting");
                    }
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) if heard.elapsed() > SILENCE => {
                    eprintln!(
                        "watch: nothing heard for {} s; reconnecting",
                        SILENCE.as_secs()
                    );
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if sleep_unless(&interrupted, backoff) {
            return interrupted_exit();
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn interrupted_exit() -> CmdResult {
    let _ = std::io::stdout().flush();
    std::process::exit(130);
}

/// Sleeps `d` unless interrupted first; true when interrupted.
fn sleep_unless(interrupted: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if interrupted.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    interrupted.load(Ordering::Relaxed)
}

/// Reads server-sent events from `body` until it ends (or the receiver is gone).
fn read_events(body: ureq::Body, tx: mpsc::SyncSender<Read>) {
    let mut reader = BufReader::new(body.into_reader());
    let (mut event, mut data) = (String::new(), String::new());
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => {
                let _ = tx.send(Read::End(None));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(Read::End(Some(e.to_string())));
                return;
            }
        }
        let l = line.trim_end_matches(['\r', '\n']);
        let sent = if l.is_empty() {
            let done = std::mem::take(&mut data);
            let kind = std::mem::take(&mut event);
            if done.is_empty() {
                Ok(())
            } else {
                match serde_json::from_str::<Value>(&done) {
                    Ok(v) => tx.send(Read::Message(
                        if kind.is_empty() {
                            "message".into()
                        } else {
                            kind
                        },
                        v,
                    )),
                    Err(_) => Ok(()),
                }
            }
        } else if let Some(v) = field(l, "id") {
            tx.send(Read::Id(v.to_string()))
        } else if let Some(v) = field(l, "event") {
            event = v.to_string();
            Ok(())
        } else if let Some(v) = field(l, "data") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(v);
            Ok(())
        } else {
            Ok(())
        };
        if sent.is_err() {
            return;
        }
    }
}

/// The value of an SSE field line `name: value` (one optional space after the colon).
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

struct Printer {
    format: WatchFormat,
    utc: bool,
    seen: HashSet<String>,
    order: VecDeque<String>,
    /// The last status printed per session (to print an abandonment once).
    status: HashMap<String, String>,
    out: std::io::Stdout,
}

impl Printer {
    fn remember(&mut self, event_id: &str) -> bool {
        if !self.seen.insert(event_id.to_string()) {
            return false;
        }
        self.order.push_back(event_id.to_string());
        while self.order.len() > SEEN_MAX {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    fn message(&mut self, event: &str, data: &Value) -> std::io::Result<()> {
        match event {
            "session" => self.session(data),
            "resync" => {
                let reason = data["reason"].as_str().unwrap_or("unknown");
                match self.format {
                    WatchFormat::Json => self.line(&json!({
                        "change": "resync",
                        "reason": reason,
                        "position": data["position"],
                    })),
                    WatchFormat::Table => {
                        eprintln!(
                            "watch: changes were missed ({reason}); what follows is from now on"
                        );
                        Ok(())
                    }
                }
            }
            _ => Ok(()),
        }
    }

    fn session(&mut self, data: &Value) -> std::io::Result<()> {
        let s = &data["session"];
        let session_id = s["session_id"].as_str().unwrap_or("").to_string();
        for e in data["events"].as_array().into_iter().flatten() {
            let event_id = e["event_id"].as_str().unwrap_or("");
            let change = match e["event_type"].as_str() {
                Some("session_start") => "start",
                Some("command") => "command",
                Some("session_end") => "end",
                _ => continue,
            };
            if !self.remember(event_id) {
                continue;
            }
            self.change(change, s, Some(e))?;
        }
        let status = s["status"].as_str().unwrap_or("").to_string();
        let before = self.status.insert(session_id.clone(), status.clone());
        if status == "abandoned" && before.as_deref() != Some("abandoned") {
            let key = format!("abandoned:{session_id}:{}", s["ended_at"]);
            if self.remember(&key) {
                self.change("abandoned", s, None)?;
            }
        }
        if self.status.len() > SEEN_MAX {
            self.status.clear();
        }
        Ok(())
    }

    fn change(&mut self, change: &str, s: &Value, e: Option<&Value>) -> std::io::Result<()> {
        match self.format {
            WatchFormat::Json => {
                let mut v = json!({
                    "change": change,
                    "session_id": s["session_id"],
                    "component": s["component"],
                    "user": s["username"],
                    "host": s["hostname"],
                    "status": s["status"],
                });
                match e {
                    Some(e) => {
                        for k in [
                            "position",
                            "event_id",
                            "timestamp",
                            "command",
                            "success",
                            "duration_ms",
                            "error",
                            "exit_code",
                        ] {
                            if let Some(x) = e.get(k) {
                                v[k] = x.clone();
                            }
                        }
                    }
                    None => {
                        v["timestamp"] = s["ended_at"].clone();
                        v["end_reason"] = s["end_reason"].clone();
                    }
                }
                self.line(&v)
            }
            WatchFormat::Table => {
                let when = e
                    .and_then(|e| e["timestamp"].as_str())
                    .or_else(|| s["ended_at"].as_str())
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                    .map(|t| fmt_time(&t, self.utc))
                    .unwrap_or_default();
                let what = match (change, e) {
                    ("command", Some(e)) => {
                        let mut w = format!(
                            "command {} {}",
                            e["command"].as_str().unwrap_or("?"),
                            if e["success"] == true { "ok" } else { "failed" }
                        );
                        if let Some(ms) = e["duration_ms"].as_f64() {
                            w.push_str(&format!(" ({ms:.0} ms)"));
                        }
                        if let Some(err) = e["error"].as_str() {
                            w.push_str(&format!(": {}", err.lines().next().unwrap_or("")));
                        }
                        w
                    }
                    ("end", Some(e)) => match e["exit_code"].as_i64() {
                        Some(code) => format!("end (exit {code})"),
                        None => "end".to_string(),
                    },
                    ("abandoned", _) => format!(
                        "abandoned ({})",
                        s["end_reason"].as_str().unwrap_or("heartbeat_timeout")
                    ),
                    (other, _) => other.to_string(),
                };
                let text = format!(
                    "{when}  {}  {}@{}  {}  {what}",
                    s["component"].as_str().unwrap_or("?"),
                    s["username"].as_str().unwrap_or("?"),
                    s["hostname"].as_str().unwrap_or("?"),
                    s["session_id"].as_str().unwrap_or("?"),
                );
                writeln!(self.out, "{text}")?;
                self.out.flush()
            }
        }
    }

    fn line(&mut self, v: &Value) -> std::io::Result<()> {
        writeln!(self.out, "{v}")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_fields_take_one_optional_space() {
        assert_eq!(field("id: 42", "id"), Some("42"));
        assert_eq!(field("id:42", "id"), Some("42"));
        assert_eq!(field("identity: x", "id"), None);
        assert_eq!(field("data:  x", "data"), Some(" x"));
    }
}
