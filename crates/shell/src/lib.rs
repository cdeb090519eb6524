//! The admin shell framework.
//!
//! A shell is a [`ShellSpec`]: a name, a role, a version and its [`Helper`]s. [`run`] gives it
//! a REPL (reedline: history, completion of helper names and arguments, hints) when stdin is a
//! terminal, reads commands from stdin when it is not, or runs `-c "cmd; cmd"`; prints the
//! banner with the last recorded tracking state; offers the built-ins `help`, `status`,
//! `exit`/`quit`; gives Ctrl-C, SIGTERM and SIGHUP to the running helper (see `interrupt`);
//! and tracks the session and every helper call through `session-buddy-client`, without ever
//! waiting on the network. Any Rust program gets a `shell` subcommand with [`ShellArgs`] and
//! [`ShellSpec::run_with`] (see `examples/myapp.rs`).

mod api;
mod complete;
mod interrupt;
mod process;
mod repl;
mod words;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

pub use api::Api;
pub use interrupt::{Cancel, GRACE, Interruption};
pub use process::{Exit, Finished, ProcessOptions, run_process};
use session_buddy_client::{BreakerState, EndReason, SessionInfo, Tracker, TrackerConfig};
pub use words::split_words;

/// A helper failed: the message the user sees (and that is recorded with the command).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HelperError {
    pub message: String,
    /// Set when the helper stopped because Ctrl-C, SIGTERM or SIGHUP came.
    interrupted: Option<Interruption>,
}

impl HelperError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            interrupted: None,
        }
    }

    /// The error of a helper stopped by `by` (recorded as `interrupted`, exit code 128+N).
    pub fn interrupted(by: Interruption) -> Self {
        Self {
            message: by.message().to_string(),
            interrupted: Some(by),
        }
    }

    /// What interrupted the helper, if that is why it failed.
    pub fn interruption(&self) -> Option<Interruption> {
        self.interrupted
    }
}

impl From<String> for HelperError {
    fn from(message: String) -> Self {
        Self::new(message)
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

type CompleteFn = dyn Fn(&CompletionRequest<'_>) -> Vec<String> + Send + Sync;

/// What a helper's argument completion is asked: the arguments before the cursor's word, and
/// the shell's configuration (for helpers whose values come from the server).
pub struct CompletionRequest<'a> {
    /// The complete arguments before the one being typed.
    pub previous: &'a [String],
    pub config: &'a TrackerConfig,
}

impl CompletionRequest<'_> {
    /// `values` for the first argument, nothing after it.
    pub fn first(&self, values: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
        if self.previous.is_empty() {
            values.into_iter().map(Into::into).collect()
        } else {
            Vec::new()
        }
    }
}

/// One helper command of a shell.
pub struct Helper {
    pub name: String,
    /// One line for `help`.
    pub summary: String,
    /// Arguments, e.g. `[limit]`.
    pub usage: String,
    run: Box<HelperFn>,
    complete: Option<Box<CompleteFn>>,
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
            complete: None,
        }
    }

    pub fn usage(mut self, usage: impl Into<String>) -> Self {
        self.usage = usage.into();
        self
    }

    /// The values Tab offers for this helper's arguments (the shell filters them by what is
    /// typed).
    pub fn complete(
        mut self,
        values: impl Fn(&CompletionRequest<'_>) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.complete = Some(Box::new(values));
        self
    }

    pub(crate) fn argument_values(&self, req: &CompletionRequest<'_>) -> Vec<String> {
        self.complete.as_ref().map(|f| f(req)).unwrap_or_default()
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
    /// Said once at the end of `help` (what every helper shares, e.g. where its commands are
    /// configured); may be empty.
    pub help_notes: String,
    pub helpers: Vec<Helper>,
}

/// What a helper gets: where to write, the session it runs in, and its cancellation.
pub struct Context<'a> {
    pub out: &'a mut dyn Write,
    pub component: &'a str,
    pub session_id: Option<String>,
    pub config: &'a TrackerConfig,
    pub tracker: &'a Tracker,
    /// Set when Ctrl-C, SIGTERM or SIGHUP interrupts the helper; [`run_process`] and
    /// [`Api`] stop on it by themselves, a helper's own long loop checks it.
    pub cancel: Cancel,
}

impl Context<'_> {
    /// The server's API, with the configured URL and token; its calls stop when the helper
    /// is interrupted.
    pub fn api(&self) -> Api {
        Api::new(
            &self.config.url,
            self.config.token.clone(),
            self.config.ca_cert.as_deref(),
        )
        .with_cancel(self.cancel.clone())
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
    /// Record the terminal (output, timing, resizes) as part of the session; also on when
    /// SESSION_BUDDY_RECORD / `client.record` names the component.
    #[arg(long)]
    pub record: bool,
    /// Record typed input too (never at a password prompt); implies --record.
    #[arg(long)]
    pub record_input: bool,
}

/// `help` fits in this many columns (a terminal's default width).
const HELP_WIDTH: usize = 80;

/// `text` wrapped at word boundaries to `width` columns: `first` before the first line,
/// `rest` before the others; each line ends with a newline.
fn wrap(text: &str, first: &str, rest: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if !empty && len + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
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

    pub(crate) fn helper(&self, name: &str) -> Option<&Helper> {
        self.helpers.iter().find(|h| h.name == name)
    }

    /// Every command name (helpers first, then the built-ins) with its one-line summary.
    pub(crate) fn names_with_summaries(&self) -> Vec<(String, String)> {
        self.helpers
            .iter()
            .map(|h| (h.name.clone(), h.summary.clone()))
            .chain(BUILTINS.iter().map(|(n, d)| (n.to_string(), d.to_string())))
            .chain([("quit".to_string(), "leave the shell".to_string())])
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
    Continue {
        ok: bool,
    },
    Exit,
    /// A signal ends the session (after the command it interrupted was recorded).
    Terminate,
}

/// A running shell: the spec, the tracker, the session.
pub(crate) struct Session {
    pub spec: Arc<ShellSpec>,
    pub config: TrackerConfig,
    pub tracker: Arc<Tracker>,
    /// The terminal is recorded (by our parent, `--record`).
    pub recorded: bool,
    pub interrupts: interrupt::Interrupts,
}

impl Session {
    /// Runs one command line; built-ins are not tracked, helpers and unknown commands are.
    /// A signal that ends the session is answered after the line's command is recorded.
    pub fn execute(&self, line: &str, out: &mut dyn Write, err: &mut dyn Write) -> Flow {
        let flow = self.execute_line(line, out, err);
        match self.interrupts.terminate() {
            Some(_) => Flow::Terminate,
            None => flow,
        }
    }

    fn execute_line(&self, line: &str, out: &mut dyn Write, err: &mut dyn Write) -> Flow {
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
        let Some(cancel) = self.interrupts.begin() else {
            return Flow::Continue { ok: false };
        };
        let started = Instant::now();
        let result = match self.spec.helper(name) {
            Some(helper) => {
                let mut ctx = Context {
                    out,
                    component: &self.spec.component,
                    session_id: self.tracker.session_id().map(str::to_string),
                    config: &self.config,
                    tracker: &self.tracker,
                    cancel: cancel.clone(),
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
        // A helper that returned on its own just as the signal came is interrupted all the same.
        let result = match (result, cancel.interrupted()) {
            (Ok(()), Some(i)) => Err(HelperError::interrupted(i)),
            (r, _) => r,
        };
        self.interrupts.finish();
        let _ = out.flush();
        let error = result.as_ref().err().map(|e| e.message.clone());
        let exit_code = result
            .as_ref()
            .err()
            .and_then(HelperError::interruption)
            .map(Interruption::exit_code);
        if let Some(e) = &error {
            // The terminal echoed `^C` where the cursor was; the error goes on a line of its own.
            if exit_code.is_some() && repl::stdin_is_terminal() {
                let _ = writeln!(err);
            }
            let _ = writeln!(err, "error: {e}");
        }
        self.tracker.command(
            name,
            rest,
            error.is_none(),
            started.elapsed(),
            error.as_deref(),
            exit_code,
        );
        Flow::Continue {
            ok: error.is_none(),
        }
    }

    fn help(&self, topic: Option<&str>) -> String {
        if let Some(topic) = topic {
            if let Some(h) = self.spec.helper(topic) {
                return format!(
                    "{} {}\n{}",
                    h.name,
                    h.usage,
                    wrap(&h.summary, "  ", "  ", HELP_WIDTH)
                );
            }
            if let Some((n, d)) = BUILTINS.iter().find(|(n, _)| *n == topic) {
                return format!("{n}\n{}", wrap(d, "  ", "  ", HELP_WIDTH));
            }
            return format!("no command '{topic}'; type 'help' for the commands\n");
        }
        let mut s = format!("{} helpers:\n", self.spec.display_name);
        let calls: Vec<String> = self
            .spec
            .helpers
            .iter()
            .map(|h| {
                if h.usage.is_empty() {
                    h.name.clone()
                } else {
                    format!("{} {}", h.name, h.usage)
                }
            })
            .collect();
        // A long usage goes on its own line rather than pushing every summary to the right.
        let width = calls
            .iter()
            .map(|c| c.chars().count())
            .chain(BUILTINS.iter().map(|(n, _)| n.len()))
            .filter(|&w| w <= 24)
            .max()
            .unwrap_or(8);
        let mut entry = |call: &str, summary: &str| {
            let indent = " ".repeat(width + 4);
            if call.chars().count() > width {
                s.push_str(&wrap(call, "  ", "      ", HELP_WIDTH));
                s.push_str(&wrap(summary, &indent, &indent, HELP_WIDTH));
            } else {
                let first = format!("  {call:<width$}  ");
                s.push_str(&wrap(summary, &first, &indent, HELP_WIDTH));
            }
        };
        for (h, call) in self.spec.helpers.iter().zip(&calls) {
            entry(call, &h.summary);
        }
        s.push_str("Built-ins:\n");
        for (n, d) in BUILTINS {
            let first = format!("  {n:<width$}  ");
            s.push_str(&wrap(d, &first, &" ".repeat(width + 4), HELP_WIDTH));
        }
        if !self.spec.help_notes.is_empty() {
            s.push('\n');
            s.push_str(&wrap(&self.spec.help_notes, "", "", HELP_WIDTH));
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
        // The live answer: one call, bounded by the request timeout (the banner never calls).
        if st.enabled {
            let check =
                session_buddy_client::check_server(&self.config, self.config.request_timeout);
            line("Server now", check.describe());
        }
        line(
            "Last delivery",
            match &st.last_delivery {
                None => "none yet".into(),
                Some(d) => format!(
                    "{} at {}{}",
                    d.outcome.kind(),
                    d.at.with_timezone(&chrono::Local).format("%H:%M:%S"),
                    d.failing_since
                        .map(|t| format!(
                            ", failing since {}",
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
    // Recorded: this process records the terminal and runs the shell again as its child,
    // which takes the session identity drawn here. Tracking off records nothing.
    use session_buddy_client::record::{RecordOptions, StartIdentity};
    let identity = StartIdentity::inherited();
    let wanted = RecordOptions::wanted(&config, &spec.component, args.record, args.record_input);
    if let Some(options) = wanted.filter(|_| identity.is_none() && config.enabled) {
        match session_buddy_client::track::record_self(&config, &spec.component, options) {
            Ok(code) => return code,
            Err(e) => eprintln!("warning: cannot record this session ({e}); it runs unrecorded"),
        }
    }
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
    let recorded = identity.is_some();
    let tracker = Arc::new(Tracker::start_as(config.clone(), info, identity));
    let session = Session {
        spec: Arc::new(spec),
        config,
        tracker,
        recorded,
        interrupts: interrupt::Interrupts::default(),
    };
    let interactive = args.command.is_none() && repl::stdin_is_terminal();
    process::become_subreaper();
    repl::watch_signals(
        session.tracker.clone(),
        session.interrupts.clone(),
        interactive,
    );
    let (code, reason) = if let Some(commands) = &args.command {
        repl::run_commands(&session, commands)
    } else if interactive {
        repl::run_interactive(&session, !args.no_banner)
    } else {
        repl::run_stdin(&session)
    };
    match session.interrupts.terminate() {
        Some(i) => {
            session
                .tracker
                .end(i.end_reason(), Some(i.exit_code()), Some(i.name()));
            session.interrupts.mark_ended();
            i.exit_code()
        }
        None => {
            session.tracker.end(reason, Some(code), None);
            session.interrupts.mark_ended();
            code
        }
    }
}

/// Why a shell ended, as the session end records it.
pub(crate) fn end_reason(eof: bool) -> EndReason {
    if eof { EndReason::Eof } else { EndReason::Exit }
}
