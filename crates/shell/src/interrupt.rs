//! Ctrl-C, SIGTERM and SIGHUP belong to the command that runs, not to the shell (bash, psql and
//! IPython agree). One [`Interrupts`] per shell records whether a command is running; the signal
//! thread turns a signal into a [`Cancel`] of that command, and the command's processes and
//! in-process waits ([`crate::run_process`], [`crate::Api`]) poll it.
//!
//! - SIGINT while a command runs: the command is interrupted (its process group gets SIGINT,
//!   then SIGKILL after [`GRACE`]) and recorded with `error: "interrupted"`, exit code 130. An
//!   interactive shell goes back to its prompt; a `-c` or stdin run then ends the session
//!   (reason `sigint`) and exits 130.
//! - SIGINT with no command running: ignored by an interactive shell (at the prompt the line
//!   editor sees Ctrl-C as a key and clears the line); a `-c` or stdin run ends at once.
//! - SIGTERM and SIGHUP: the running command is interrupted the same way (its group gets the
//!   same signal), recorded, and the session ends with that signal's name and 128+N.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use session_buddy_client::EndReason;

use crate::HelperError;

/// How long an interrupted process group has between the signal and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(2);

/// A signal that interrupts the running command (and, but for an interactive Ctrl-C, ends the
/// session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    Sigint,
    Sigterm,
    Sighup,
}

impl Interruption {
    pub(crate) fn from_signal(sig: i32) -> Option<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        match sig {
            SIGINT => Some(Self::Sigint),
            SIGTERM => Some(Self::Sigterm),
            SIGHUP => Some(Self::Sighup),
            _ => None,
        }
    }

    pub fn signal_number(self) -> i32 {
        match self {
            Self::Sigint => signal_hook::consts::SIGINT,
            Self::Sigterm => signal_hook::consts::SIGTERM,
            Self::Sighup => signal_hook::consts::SIGHUP,
        }
    }

    /// 128 + the signal's number, as shells exit.
    pub fn exit_code(self) -> i32 {
        128 + self.signal_number()
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sigint => "SIGINT",
            Self::Sigterm => "SIGTERM",
            Self::Sighup => "SIGHUP",
        }
    }

    /// The error recorded with an interrupted command.
    pub fn message(self) -> &'static str {
        match self {
            Self::Sigint => "interrupted",
            Self::Sigterm => "interrupted by SIGTERM",
            Self::Sighup => "interrupted by SIGHUP",
        }
    }

    pub(crate) fn end_reason(self) -> EndReason {
        match self {
            Self::Sigint => EndReason::Sigint,
            Self::Sigterm => EndReason::Sigterm,
            Self::Sighup => EndReason::Sighup,
        }
    }
}

#[derive(Default)]
struct State {
    /// A command is running (between `begin` and `finish`).
    running: bool,
    /// The running command was interrupted.
    cancel: Option<Interruption>,
    /// The session ends (after the running command, if one runs).
    terminate: Option<Interruption>,
    /// Process groups the running command started and has not yet ended.
    groups: Vec<i32>,
    /// The session's end has been recorded.
    ended: bool,
}

/// The shell's record of its running command and of the signals that came.
#[derive(Clone, Default)]
pub(crate) struct Interrupts(Arc<(Mutex<State>, Condvar)>);

/// What the signal thread does with a signal.
pub(crate) enum Action {
    /// Nothing (an interactive Ctrl-C with no command running, or a repeated signal).
    Ignore,
    /// The running command was told to stop; the shell goes on.
    Cancelled,
    /// No command runs: end the session now.
    EndNow(Interruption),
    /// The running command was told to stop; the main thread ends the session after it.
    EndAfterCommand(Interruption),
}

impl Interrupts {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A command starts; `None` if the session is already ending.
    pub(crate) fn begin(&self) -> Option<Cancel> {
        let mut s = self.lock();
        if s.terminate.is_some() {
            return None;
        }
        s.running = true;
        s.cancel = None;
        s.groups.clear();
        Some(Cancel(Some(self.clone())))
    }

    /// The running command is over.
    pub(crate) fn finish(&self) {
        let mut s = self.lock();
        s.running = false;
        s.cancel = None;
        s.groups.clear();
    }

    /// Why the session must end, once a signal said so.
    pub(crate) fn terminate(&self) -> Option<Interruption> {
        self.lock().terminate
    }

    /// The session's end is recorded; the signal thread's watchdog can stand down.
    pub(crate) fn mark_ended(&self) {
        self.lock().ended = true;
        self.0.1.notify_all();
    }

    pub(crate) fn on_signal(&self, i: Interruption, interactive: bool) -> Action {
        let mut s = self.lock();
        let ends_session = !(interactive && i == Interruption::Sigint);
        if !s.running {
            if !ends_session || s.terminate.is_some() {
                return Action::Ignore;
            }
            s.terminate = Some(i);
            return Action::EndNow(i);
        }
        if ends_session {
            if s.terminate.is_some() {
                return Action::Ignore;
            }
            s.terminate = Some(i);
        }
        if s.cancel.is_none() {
            s.cancel = Some(i);
        }
        self.0.1.notify_all();
        if ends_session {
            Action::EndAfterCommand(i)
        } else {
            Action::Cancelled
        }
    }

    /// Waits up to `timeout` for the main thread to record the end.
    pub(crate) fn wait_ended(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| s.ended.then_some(())).is_some()
    }

    /// Waits up to `timeout` until `pred` gives something (woken by every change).
    fn wait_for<T>(&self, timeout: Duration, pred: impl Fn(&State) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if let Some(v) = pred(&s) {
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            s = match self.0.1.wait_timeout(s, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// SIGKILL to every process group the running command still has (the last resort when it
    /// does not stop in time).
    pub(crate) fn kill_groups(&self) {
        let groups = self.lock().groups.clone();
        for g in groups {
            crate::process::kill_group(g, crate::process::Kill::Now);
        }
    }
}

/// The running command's cancellation: what a helper (or [`crate::run_process`],
/// [`crate::Api`]) polls to stop when Ctrl-C, SIGTERM or SIGHUP comes.
#[derive(Clone, Default)]
pub struct Cancel(Option<Interrupts>);

impl Cancel {
    /// A cancellation that never comes (for a helper run outside a shell, e.g. in a test).
    pub fn never() -> Self {
        Self(None)
    }

    /// The interruption, once one came.
    pub fn interrupted(&self) -> Option<Interruption> {
        self.0.as_ref().and_then(|i| i.lock().cancel)
    }

    /// `Err` (the error recorded for an interrupted command) once interrupted.
    pub fn check(&self) -> Result<(), HelperError> {
        match self.interrupted() {
            Some(i) => Err(HelperError::interrupted(i)),
            None => Ok(()),
        }
    }

    /// Waits up to `timeout`; returns the interruption if one came meanwhile.
    pub fn wait(&self, timeout: Duration) -> Option<Interruption> {
        match &self.0 {
            Some(interrupts) => interrupts.wait_for(timeout, |s| s.cancel),
            None => {
                std::thread::sleep(timeout);
                None
            }
        }
    }

    /// Runs `work` (a blocking in-process call: an HTTP request, a delivery) on a thread of
    /// its own and waits for it, or returns the "interrupted" error as soon as the helper is
    /// interrupted (the abandoned call ends by its own timeout, its result unused).
    pub fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HelperError> {
        use std::sync::mpsc::{RecvTimeoutError, channel};
        self.check()?;
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("helper-call".into())
            .spawn(move || {
                let _ = tx.send(work());
            })?;
        loop {
            match rx.recv_timeout(Duration::from_millis(25)) {
                Ok(result) => return Ok(result),
                Err(RecvTimeoutError::Timeout) => self.check()?,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(HelperError::new("the call failed unexpectedly"));
                }
            }
        }
    }

    /// A process group the command started: killed by the last resort if it outlives the
    /// grace period.
    pub(crate) fn add_group(&self, pgid: i32) {
        if let Some(i) = &self.0 {
            i.lock().groups.push(pgid);
        }
    }

    pub(crate) fn remove_group(&self, pgid: i32) {
        if let Some(i) = &self.0 {
            i.lock().groups.retain(|&g| g != pgid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interactive_ctrl_c_cancels_the_command_only() {
        let i = Interrupts::default();
        assert!(matches!(
            i.on_signal(Interruption::Sigint, true),
            Action::Ignore
        ));
        let cancel = i.begin().unwrap();
        assert!(cancel.check().is_ok());
        assert!(matches!(
            i.on_signal(Interruption::Sigint, true),
            Action::Cancelled
        ));
        assert_eq!(cancel.interrupted(), Some(Interruption::Sigint));
        assert_eq!(
            cancel.check().unwrap_err().to_string(),
            "interrupted".to_string()
        );
        i.finish();
        assert_eq!(i.terminate(), None);
        let next = i.begin().unwrap();
        assert_eq!(next.interrupted(), None);
    }

    #[test]
    fn ctrl_c_in_a_script_ends_after_the_command() {
        let i = Interrupts::default();
        let cancel = i.begin().unwrap();
        assert!(matches!(
            i.on_signal(Interruption::Sigint, false),
            Action::EndAfterCommand(Interruption::Sigint)
        ));
        assert_eq!(
            cancel.wait(Duration::from_secs(5)),
            Some(Interruption::Sigint)
        );
        i.finish();
        assert_eq!(i.terminate(), Some(Interruption::Sigint));
        assert!(
            i.begin().is_none(),
            "no command starts once the session ends"
        );
    }

    #[test]
    fn sigterm_with_nothing_running_ends_now() {
        let i = Interrupts::default();
        assert!(matches!(
            i.on_signal(Interruption::Sigterm, true),
            Action::EndNow(Interruption::Sigterm)
        ));
        assert!(matches!(
            i.on_signal(Interruption::Sighup, true),
            Action::Ignore
        ));
        assert!(!i.wait_ended(Duration::from_millis(1)));
        i.mark_ended();
        assert!(i.wait_ended(Duration::from_millis(1)));
    }
}
