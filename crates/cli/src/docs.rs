//! `session-buddy completions SHELL` and `session-buddy man [--dir DIR]`: generated from the
//! same clap definition that parses the arguments, so they never drift from it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use clap_complete::Shell;

use crate::CmdResult;

#[derive(Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Args)]
pub struct ManArgs {
    /// Write a page for every command and subcommand here (session-buddy.1,
    /// session-buddy-list-sessions.1, …), creating the directory.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn completions(args: &CompletionsArgs, mut cmd: clap::Command) -> CmdResult {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "session-buddy", &mut out);
    write_stdout(&out)
}

pub fn man(args: &ManArgs, cmd: clap::Command) -> CmdResult {
    let mut cmd = cmd.disable_help_subcommand(true);
    // Gives each subcommand its full name (`session-buddy-list-sessions`).
    cmd.build();
    match &args.dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .context("cannot render the man page")?;
            write_stdout(&out)
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let written = write_pages(&cmd, dir)?;
            let read = match (dir.file_name(), dir.parent()) {
                (Some(name), Some(parent)) if name == "man1" => {
                    format!("man -M {} session-buddy", parent.display())
                }
                _ => format!("man -l {}", dir.join("session-buddy.1").display()),
            };
            eprintln!(
                "wrote {written} man pages to {}; read them with `{read}`",
                dir.display()
            );
            Ok(())
        }
    }
}

/// Writes `cmd`'s page and those of its visible subcommands; returns how many.
fn write_pages(cmd: &clap::Command, dir: &Path) -> anyhow::Result<usize> {
    let mut written = 0;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        written += write_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut out = Vec::new();
    man.render(&mut out)
        .with_context(|| format!("cannot render {}", path.display()))?;
    std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(written + 1)
}

fn write_stdout(bytes: &[u8]) -> CmdResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        // A closed pipe (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other.context("cannot write to standard output")?),
    }
}
