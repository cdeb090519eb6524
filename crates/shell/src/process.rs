//! The one way a helper runs a program: in its own process group, its output streamed line by
//! line as it comes, bounded by a timeout, stopped by Ctrl-C/SIGTERM/SIGHUP, and nothing it
//! started left behind. The shell is a child subreaper (Linux), so a process that left the
//! group (`setsid`, a double fork) is re-parented to the shell when its parent dies, and is
//! ended with the rest.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::interrupt::{GRACE, Interruption};
use crate::{Cancel, HelperError};

/// How [`run_process`] runs a program.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// Stopped (SIGTERM, then SIGKILL after the grace period) after this long.
    pub timeout: Duration,
    /// Each output line is written to the helper's output as it comes, after this prefix;
    /// `None`: nothing is shown while it runs.
    pub stream_prefix: Option<String>,
    /// How much of the output's end is kept in [`Finished::output`].
    pub keep_bytes: usize,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            stream_prefix: Some("  | ".into()),
            keep_bytes: 1 << 20,
        }
    }
}

/// How a program ended.
#[derive(Debug)]
pub enum Exit {
    Status(ExitStatus),
    /// It ran past the timeout and was stopped.
    TimedOut,
}

/// A program's run.
#[derive(Debug)]
pub struct Finished {
    pub exit: Exit,
    /// stdout and stderr as written, interleaved (the end of it, when long).
    pub output: String,
    pub duration: Duration,
}

/// Runs `cmd` (stdin from /dev/null unless set, stdout and stderr into one pipe) in a process
/// group of its own. Returns `Err` with the recorded "interrupted" error when Ctrl-C, SIGTERM
/// or SIGHUP came meanwhile: the group got that signal, then SIGKILL after [`GRACE`]. On
/// every path, what is left of the group and every process it left behind is killed before
/// this returns.
///
/// `out` is where the output is streamed (a helper's [`crate::Context::out`]); `cancel` its
/// [`crate::Context::cancel`]. The shell is assumed to start no other children meanwhile:
/// every process re-parented to it while this runs is taken for a leftover.
pub fn run_process(
    mut cmd: Command,
    opts: &ProcessOptions,
    out: &mut dyn Write,
    cancel: &Cancel,
) -> Result<Finished, HelperError> {
    cancel.check()?;
    let started = Instant::now();
    let before = direct_children();
    let (mut reader, writer) = std::io::pipe()?;
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn()?;
    // The command holds the pipe's write ends; without dropping it, the reader never sees EOF.
    drop(cmd);
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    cancel.add_group(pgid);

    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = reader.read(&mut chunk) {
            if n == 0 || tx.send(chunk[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut output = Output::new(opts);
    let deadline = started + opts.timeout;
    let mut stopping: Option<(Instant, Option<Interruption>)> = None;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(bytes) => output.push(&bytes, out),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Every writer closed the pipe; the leader's exit is what we wait for now.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(20))
            }
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let now = Instant::now();
        match stopping {
            None => {
                if let Some(i) = cancel.interrupted() {
                    let sig = match i {
                        Interruption::Sigint => Kill::Interrupt,
                        Interruption::Sigterm | Interruption::Sighup => Kill::Terminate,
                    };
                    kill_group(pgid, sig);
                    stopping = Some((now, Some(i)));
                } else if now >= deadline {
                    kill_group(pgid, Kill::Terminate);
                    stopping = Some((now, None));
                }
            }
            Some((since, _)) if now.duration_since(since) >= GRACE => {
                kill_group(pgid, Kill::Now);
                break child.wait()?;
            }
            Some(_) => {}
        }
    };
    // Whatever is left: the rest of the group, and the processes that left it.
    kill_group(pgid, Kill::Now);
    end_leftovers(&before);
    cancel.remove_group(pgid);
    // With every writer gone the pipe ends; take what it still holds.
    let drain_until = Instant::now() + Duration::from_secs(2);
    while let Some(left) = drain_until.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(bytes) => output.push(&bytes, out),
            Err(_) => break,
        }
    }
    output.finish(out);
    let _ = out.flush();
    let duration = started.elapsed();
    let exit = match stopping {
        Some((_, Some(i))) => return Err(HelperError::interrupted(i)),
        Some((_, None)) => Exit::TimedOut,
        None => Exit::Status(status),
    };
    Ok(Finished {
        exit,
        output: output.text(),
        duration,
    })
}

/// The output: shown line by line as it comes, its end kept.
struct Output {
    prefix: Option<String>,
    partial: Vec<u8>,
    kept: Vec<u8>,
    keep: usize,
}

impl Output {
    fn new(opts: &ProcessOptions) -> Self {
        Self {
            prefix: opts.stream_prefix.clone(),
            partial: Vec::new(),
            kept: Vec::new(),
            keep: opts.keep_bytes.max(1),
        }
    }

    fn push(&mut self, bytes: &[u8], out: &mut dyn Write) {
        self.kept.extend_from_slice(bytes);
        if self.kept.len() > 2 * self.keep {
            let cut = self.kept.len() - self.keep;
            self.kept.drain(..cut);
        }
        let Some(prefix) = &self.prefix else { return };
        self.partial.extend_from_slice(bytes);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let _ = write!(out, "{prefix}{}", String::from_utf8_lossy(&line));
        }
        let _ = out.flush();
    }

    fn finish(&mut self, out: &mut dyn Write) {
        if let Some(prefix) = &self.prefix
            && !self.partial.is_empty()
        {
            let _ = writeln!(out, "{prefix}{}", String::from_utf8_lossy(&self.partial));
            self.partial.clear();
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.kept).into_owned()
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kill {
    Interrupt,
    Terminate,
    Now,
}

/// Sends a signal to process group `pgid` (nothing if it is gone).
pub(crate) fn kill_group(pgid: i32, how: Kill) {
    #[cfg(unix)]
    {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        if pgid <= 1 {
            return;
        }
        let sig = match how {
            Kill::Interrupt => Signal::SIGINT,
            Kill::Terminate => Signal::SIGTERM,
            Kill::Now => Signal::SIGKILL,
        };
        let _ = killpg(Pid::from_raw(pgid), sig);
    }
    #[cfg(not(unix))]
    {
        let _ = (pgid, how);
    }
}

/// Makes this process a child subreaper, so that what a helper's processes leave behind is
/// re-parented here (and can be ended) instead of to init. Linux only; elsewhere a no-op.
pub(crate) fn become_subreaper() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "cannot become a child subreaper; a helper's orphans may outlive it");
    }
}

/// One line of `/proc/PID/stat`: (parent, state).
fn proc_table() -> HashMap<i32, (i32, char)> {
    let mut table = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return table;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if let Some(ppid) = fields.next().and_then(|s| s.parse::<i32>().ok()) {
            table.insert(pid, (ppid, state));
        }
    }
    table
}

fn my_pid() -> i32 {
    i32::try_from(std::process::id()).unwrap_or(0)
}

/// This process's children now.
fn direct_children() -> HashSet<i32> {
    let me = my_pid();
    proc_table()
        .into_iter()
        .filter(|(_, (ppid, _))| *ppid == me)
        .map(|(pid, _)| pid)
        .collect()
}

/// Kills every process below the children that were not there `before` the helper ran (they
/// were re-parented here, or are its leftovers), and reaps them. Bounded: a process that
/// cannot be killed (uninterruptible sleep) is left after a second.
fn end_leftovers(before: &HashSet<i32>) {
    let me = my_pid();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let table = proc_table();
        let roots: Vec<i32> = table
            .iter()
            .filter(|(pid, (ppid, _))| *ppid == me && !before.contains(pid))
            .map(|(pid, _)| *pid)
            .collect();
        if roots.is_empty() {
            return;
        }
        let mut tree = roots.clone();
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            tree.extend(
                table
                    .iter()
                    .filter(|(_, (ppid, _))| *ppid == parent)
                    .map(|(pid, _)| *pid),
            );
            i += 1;
        }
        #[cfg(unix)]
        {
            use nix::sys::signal::{Signal, kill};
            use nix::sys::wait::{WaitPidFlag, waitpid};
            use nix::unistd::Pid;
            for pid in &tree {
                if table.get(pid).is_some_and(|(_, state)| *state != 'Z') {
                    let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
                }
            }
            for pid in &roots {
                let _ = waitpid(Pid::from_raw(*pid), Some(WaitPidFlag::WNOHANG));
            }
        }
        if Instant::now() >= deadline {
            tracing::warn!(pids = ?tree, "a helper's processes did not end");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
