//! The three ways a shell reads commands (terminal REPL, stdin, `-c`) and signal handling.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use reedline::{
    ColumnarMenu, DefaultHinter, Emacs, FileBackedHistory, KeyCode, KeyModifiers, MenuBuilder,
    Prompt, PromptEditMode, PromptHistorySearch, Reedline, ReedlineEvent, ReedlineMenu, Signal,
    default_emacs_keybindings,
};
use session_buddy_client::{EndReason, Tracker};

use crate::complete::ShellCompleter;
use crate::interrupt::{Action, GRACE, Interruption, Interrupts};
use crate::{Flow, Session, end_reason};

pub(crate) fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Signals go to the running command first (see `interrupt`): SIGINT interrupts it (and at an
/// interactive prompt, where Ctrl-C only clears the line, does nothing); SIGTERM and SIGHUP,
/// and SIGINT outside a terminal, interrupt it and then end the session. With no command
/// running, a signal that ends the session does it here: the end is buffered, the terminal
/// restored, and the process exits with 128+N. Nothing waits on the network.
pub(crate) fn watch_signals(tracker: Arc<Tracker>, interrupts: Interrupts, interactive: bool) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        tracing::warn!(
            "cannot install signal handlers; a killed shell will be reaped as abandoned"
        );
        return;
    };
    let exit_now = move |tracker: &Tracker, i: Interruption| -> ! {
        tracker.end(i.end_reason(), Some(i.exit_code()), Some(i.name()));
        if interactive {
            let _ = crossterm::terminal::disable_raw_mode();
            let _ = writeln!(std::io::stdout());
        }
        std::process::exit(i.exit_code());
    };
    let spawned = std::thread::Builder::new()
        .name("shell-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let Some(i) = Interruption::from_signal(sig) else {
                    continue;
                };
                match interrupts.on_signal(i, interactive) {
                    Action::Ignore | Action::Cancelled => {}
                    Action::EndNow(i) => exit_now(&tracker, i),
                    Action::EndAfterCommand(i) => {
                        // The main thread records the interrupted command and ends the
                        // session; if the command does not stop, end it from here.
                        if !interrupts.wait_ended(GRACE + Duration::from_secs(3)) {
                            interrupts.kill_groups();
                            exit_now(&tracker, i);
                        }
                    }
                }
            }
        });
    if spawned.is_err() {
        tracing::warn!("cannot start the signal thread");
    }
}

/// `-c "a; b"`: runs each command; exit code 1 if any failed.
pub(crate) fn run_commands(session: &Session, commands: &str) -> (i32, EndReason) {
    let mut ok = true;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    for command in split_commands(commands) {
        match session.execute(&command, &mut out, &mut err) {
            Flow::Exit | Flow::Terminate => break,
            Flow::Continue { ok: this } => ok &= this,
        }
    }
    (i32::from(!ok), EndReason::Exit)
}

/// Commands separated by `;` or newlines, outside quotes.
fn split_commands(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (None, ';' | '\n') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Commands from stdin, one per line, until EOF or `exit`.
pub(crate) fn run_stdin(session: &Session) -> (i32, EndReason) {
    let mut ok = true;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let stdin = std::io::stdin();
    let mut eof = true;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        match session.execute(&line, &mut out, &mut err) {
            Flow::Exit | Flow::Terminate => {
                eof = false;
                break;
            }
            Flow::Continue { ok: this } => ok &= this,
        }
    }
    (i32::from(!ok), end_reason(eof))
}

struct ShellPrompt(String);

impl Prompt for ShellPrompt {
    fn render_prompt_left(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(&self.0)
    }
    fn render_prompt_right(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed("")
    }
    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed("> ")
    }
    fn render_prompt_multiline_indicator(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed("::: ")
    }
    fn render_prompt_history_search_indicator(
        &self,
        search: PromptHistorySearch,
    ) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Owned(format!("(search: {}) ", search.term))
    }
}

/// The terminal REPL: banner, history file, completion of command names, hints.
pub(crate) fn run_interactive(session: &Session, banner: bool) -> (i32, EndReason) {
    let spec = &session.spec;
    if banner {
        print!(
            "{}",
            spec.banner(&session.config, session.tracker.session_id())
        );
        if session.recorded {
            println!("Recording: on (this terminal is recorded with the session)");
        }
        let _ = std::io::stdout().flush();
    }
    let mut keybindings = default_emacs_keybindings();
    keybindings.add_binding(
        KeyModifiers::NONE,
        KeyCode::Tab,
        ReedlineEvent::UntilFound(vec![
            ReedlineEvent::Menu("completion_menu".to_string()),
            ReedlineEvent::MenuNext,
        ]),
    );
    let mut editor = Reedline::create()
        .with_completer(Box::new(ShellCompleter {
            spec: session.spec.clone(),
            config: session.config.clone(),
        }))
        .with_menu(ReedlineMenu::EngineCompleter(Box::new(
            ColumnarMenu::default().with_name("completion_menu"),
        )))
        .with_quick_completions(true)
        .with_partial_completions(true)
        .with_hinter(Box::new(DefaultHinter::default()))
        .with_edit_mode(Box::new(Emacs::new(keybindings)));
    let history_dir = session.config.home.join("history");
    let history = std::fs::create_dir_all(&history_dir).ok().and_then(|_| {
        FileBackedHistory::with_file(1000, history_dir.join(format!("{}.txt", spec.component))).ok()
    });
    if let Some(h) = history {
        editor = editor.with_history(Box::new(h));
    }
    let prompt = ShellPrompt(spec.component.clone());
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    loop {
        match editor.read_line(&prompt) {
            Ok(Signal::Success(line)) => match session.execute(&line, &mut out, &mut err) {
                Flow::Exit | Flow::Terminate => return (0, EndReason::Exit),
                Flow::Continue { .. } => {}
            },
            Ok(Signal::CtrlC) => continue,
            Ok(Signal::CtrlD) => return (0, EndReason::Eof),
            Ok(_) => continue,
            Err(e) => {
                let _ = writeln!(err, "error: the terminal failed ({e}); leaving the shell");
                return (1, EndReason::Error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_commands;

    #[test]
    fn commands_split_on_semicolons_outside_quotes() {
        assert_eq!(split_commands("a; b 'x;y'\nc;;"), ["a", "b 'x;y'", "c"]);
    }

    #[test]
    fn words_are_shell_like() {
        assert_eq!(
            crate::split_words(r#"a "b c" 'd e' f\ g"#).unwrap(),
            ["a", "b c", "d e", "f g"]
        );
        assert!(crate::split_words("\"open").is_err());
    }
}
