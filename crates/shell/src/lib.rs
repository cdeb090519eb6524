//! The admin shell framework.
//!
//! A shell is a [`ShellSpec`]: a name, a role, a version and its [`Helper`]s. [`run`] gives it
//! a REPL (reedline: history, completion of helper names, hints) when stdin is a terminal,
//! reads commands from stdin when it is not, or runs `-c "cmd; cmd"`; prints the banner with
//! the true tracking state; offers the built-ins `help`, `status`, `exit`/`quit`; and tracks
//! the session and every helper call through `session-buddy-client`, without ever waiting on
//! the network. Any Rust program gets a `shell` subcommand with [`ShellArgs`] and
//! [`ShellSpec::run_with`] (see `examples/myapp.rs`).

mod api;
mod repl;
mod words;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

pub use api::Api;
use session_buddy_client::{BreakerState, EndReason, SessionInfo, Tracker, TrackerConfig};
pub use words::split_words;

/// A helper failed: the message the user sees (and that is recorded with the command).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HelperError {
    pub message: String,
}

impl HelperError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl From<String> for HelperError {
    fn from(message: String) -> Self {
        Self { message }
    }
}

impl From<&str> for HelperError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<std::io::Error> for HelperError {
    fn from(e: std::io::Error) -> Self {
        Self::new(e.to_string())
    }
}

pub type HelperResult = Result<(), HelperError>;

type HelperFn = dyn Fn(&mut Context<'_>, &[String]) -> HelperResult + Send + Sync;

/// One helper command of a shell.
pub struct Helper {
    pub name: String,
    /// One line for `help`.
    pub summary: String,
    /// Arguments, e.g. `[limit]`.
    pub usage: String,
    run: Box<HelperFn>,
}

impl Helper {
    pub fn new(
        name: impl Into<String>,
        summary: impl Into<String>,
        run: impl Fn(&mut Context<'_>, &[String]) -> HelperResult + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            summary: summary.into(),
            usage: String::new(),
            run: Box::new(run),
        }
    }

    pub fn usage(mut self, usage: impl Into<String>) -> Self {
        self.usage = usage.into();
        self
    }
}

/// What a shell is.
pub struct ShellSpec {
    /// The component name sent in events, e.g. `oneiric`.
    pub component: String,
    /// For the banner, e.g. `Oneiric`.
    pub display_name: String,
    pub version: String,
    pub tagline: String,
    /// e.g. `Foundation`.
    pub role: String,
    /// e.g. `OneiricShell`.
    pub shell_type: String,
    pub helpers: Vec<Helper>,
}

/// What a helper gets: where to write, and the session it runs in.
pub struct Context<'a> {
    pub out: &'a mut dyn Write,
    pub component: &'a str,
    pub session_id: Option<String>,
    pub config: &'a TrackerConfig,
    pub tracker: &'a Tracker,
}

impl Context<'_> {
    /// The server's API, with the configured URL and token.
    pub fn api(&self) -> Api {
        Api::new(
            &self.config.url,
            self.config.token.clone(),
            self.config.ca_cert.as_deref(),
        )
    }
}

/// The options of a `shell` subcommand, for any program's clap parser.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ShellArgs {
    /// Run these commands (separated by `;`) and exit.
    #[arg(short = 'c', long = "command", value_name = "COMMANDS")]
    pub command: Option<String>,
    /// Do not print the banner.
    #[arg(long)]
    pub no_banner: bool,
}

const BUILTINS: &[(&str, &str)] = &[
    ("help", "list the commands, or `help NAME` for one"),
    (
        "status",
        "the live tracking state: session, server, breaker, buffer",
    ),
    ("exit", "leave the shell (also `quit` or Ctrl-D)"),
];

impl ShellSpec {
    /// Runs the shell with `args` and the tracking configuration from the environment;
    /// returns the process exit code.
    pub fn run_with(self, args: &ShellArgs) -> i32 {
        run(self, args, TrackerConfig::from_env())
    }

    fn helper(&self, name: &str) -> Option<&Helper> {
        self.helpers.iter().find(|h| h.name == name)
    }

    fn names(&self) -> Vec<String> {
        BUILTINS
            .iter()
            .map(|(n, _)| n.to_string())
            .chain(["quit".to_string()])
            .chain(self.helpers.iter().map(|h| h.name.clone()))
            .collect()
    }

    /// The banner: name and version, tagline, role, tracking state, session id, helpers.
    pub fn banner(&self, config: &TrackerConfig, session_id: Option<&str>) -> String {
        let mut b = String::new();
        b.push_str(&format!(
            "{} Admin Shell v{}\n",
            self.display_name, self.version
        ));
        b.push_str(&format!("{}\n", self.tagline));
        b.push_str(&format!("Role: {}\n", self.role));
        b.push_str(&format!(
            "Session Tracking: {}\n",
            session_buddy_client::banner_state(config)
        ));
        if let Some(id) = session_id {
            b.push_str(&format!("Session ID: {id}\n"));
        }
        let names: Vec<&str> = self.helpers.iter().map(|h| h.name.as_str()).collect();
        b.push_str(&format!("Helpers: {}\n", names.join(", ")));
        b.push_str("Type 'help' for commands, 'exit' or Ctrl-D to leave.\n");
        b
    }
}

/// How a command line ended.
pub(crate) enum Flow {
    Continue { ok: bool },
    Exit,
}

/// A running shell: the spec, the tracker, the session.
pub(crate) struct Session {
    pub spec: ShellSpec,
    pub config: TrackerConfig,
    pub tracker: Arc<Tracker>,
}

impl Session {
    /// Runs one command line; built-ins are not tracked, helpers and unknown commands are.
    pub fn execute(&self, line: &str, out: &mut dyn Write, err: &mut dyn Write) -> Flow {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Flow::Continue { ok: true };
        }
        let (name, rest) = match line.find(char::is_whitespace) {
            Some(i) => (&line[..i], line[i..].trim()),
            None => (line, ""),
        };
        let args = match split_words(rest) {
            Ok(a) => a,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return Flow::Continue { ok: false };
            }
        };
        match name {
            "exit" | "quit" => return Flow::Exit,
            "help" | "?" => {
                let _ = out.write_all(self.help(args.first().map(String::as_str)).as_bytes());
                return Flow::Continue { ok: true };
            }
            "status" => {
                let _ = out.write_all(self.status_text().as_bytes());
                return Flow::Continue { ok: true };
            }
            _ => {}
        }
        let started = Instant::now();
        let result = match self.spec.helper(name) {
            Some(helper) => {
                let mut ctx = Context {
                    out,
                    component: &self.spec.component,
                    session_id: self.tracker.session_id().map(str::to_string),
                    config: &self.config,
                    tracker: &self.tracker,
                };
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    (helper.run)(&mut ctx, &args)
                }))
                .unwrap_or_else(|_| Err(HelperError::new(format!("{name} failed unexpectedly"))))
            }
            None => Err(HelperError::new(format!(
                "unknown command '{name}'; type 'help' for the commands"
            ))),
        };
        let _ = out.flush();
        let error = result.as_ref().err().map(|e| e.message.clone());
        if let Some(e) = &error {
            let _ = writeln!(err, "error: {e}");
        }
        self.tracker.command(
            name,
            rest,
            error.is_none(),
            started.elapsed(),
            error.as_deref(),
            None,
        );
        Flow::Continue {
            ok: error.is_none(),
        }
    }

    fn help(&self, topic: Option<&str>) -> String {
        if let Some(topic) = topic {
            if let Some(h) = self.spec.helper(topic) {
                return format!("{} {}\n  {}\n", h.name, h.usage, h.summary);
            }
            if let Some((n, d)) = BUILTINS.iter().find(|(n, _)| *n == topic) {
                return format!("{n}\n  {d}\n");
            }
            return format!("no command '{topic}'\n");
        }
        let mut s = format!("{} helpers:\n", self.spec.display_name);
        let width = self
            .spec
            .helpers
            .iter()
            .map(|h| h.name.len() + h.usage.len() + 1)
            .chain(BUILTINS.iter().map(|(n, _)| n.len()))
            .max()
            .unwrap_or(8);
        for h in &self.spec.helpers {
            let call = if h.usage.is_empty() {
                h.name.clone()
            } else {
                format!("{} {}", h.name, h.usage)
            };
            s.push_str(&format!("  {call:<width$}  {}\n", h.summary));
        }
        s.push_str("Built-ins:\n");
        for (n, d) in BUILTINS {
            s.push_str(&format!("  {n:<width$}  {d}\n"));
        }
        s
    }

    fn status_text(&self) -> String {
        let st = self.tracker.status();
        let mut s = String::new();
        let mut line = |k: &str, v: String| s.push_str(&format!("{k:<17}{v}\n"));
        line(
            "Session ID",
            st.session_id
                .clone()
                .unwrap_or_else(|| "(not tracked)".into()),
        );
        line("Tracking", session_buddy_client::banner_state(&self.config));
        if let Some(reason) = &st.disabled_reason {
            line("Disabled because", reason.clone());
        }
        line("Server", st.server_url.clone());
        line(
            "Last delivery",
            match &st.last_delivery {
                None => "none yet".into(),
                Some(d) if d.ok => format!(
                    "ok at {}",
                    d.at.with_timezone(&chrono::Local).format("%H:%M:%S")
                ),
                Some(d) => format!(
                    "failed at {}: {}{}",
                    d.at.with_timezone(&chrono::Local).format("%H:%M:%S"),
                    d.error.clone().unwrap_or_default(),
                    d.failing_since
                        .map(|t| format!(
                            " (failing since {})",
                            t.with_timezone(&chrono::Local).format("%H:%M:%S")
                        ))
                        .unwrap_or_default()
                ),
            },
        );
        line(
            "Circuit breaker",
            match st.breaker {
                BreakerState::Closed => "closed".into(),
                BreakerState::HalfOpen => "half-open (probing)".into(),
                BreakerState::Open { until } => format!(
                    "open until {}",
                    until.with_timezone(&chrono::Local).format("%H:%M:%S")
                ),
            },
        );
        line(
            "Buffer",
            format!(
                "{} pending, {} dead letters, {} dropped",
                st.pending, st.dead_letters, st.dropped
            ),
        );
        s
    }
}

/// Runs `spec` as a shell; returns the process exit code (0, or 1 when a command of a `-c`
/// or stdin run failed; 128+N after signal N).
pub fn run(spec: ShellSpec, args: &ShellArgs, config: TrackerConfig) -> i32 {
    let info = SessionInfo {
        component: spec.component.clone(),
        shell_type: spec.shell_type.clone(),
        session_type: None,
        component_version: Some(spec.version.clone()),
        runtime: Some(session_buddy_client::rust_runtime()),
        metadata: serde_json::Map::from_iter([
            (
                "role".to_string(),
                serde_json::Value::from(spec.role.clone()),
            ),
            (
                "helpers".to_string(),
                serde_json::Value::from(
                    spec.helpers
                        .iter()
                        .map(|h| h.name.clone())
                        .collect::<Vec<_>>(),
                ),
            ),
        ]),
    };
    let tracker = Arc::new(Tracker::start(config.clone(), info));
    let session = Session {
        spec,
        config,
        tracker,
    };
    let interactive = args.command.is_none() && repl::stdin_is_terminal();
    repl::watch_signals(session.tracker.clone(), interactive);
    let (code, reason) = if let Some(commands) = &args.command {
        repl::run_commands(&session, commands)
    } else if interactive {
        repl::run_interactive(&session, !args.no_banner)
    } else {
        repl::run_stdin(&session)
    };
    session.tracker.end(reason, Some(code), None);
    code
}

/// Why a shell ended, as the session end records it.
pub(crate) fn end_reason(eof: bool) -> EndReason {
    if eof { EndReason::Eof } else { EndReason::Exit }
}
