//! PATH resolution: the program a command line needs (a cargo plugin needs `cargo-X`) and
//! where it is.

use std::path::{Path, PathBuf};

/// Cargo's own subcommands; any other `cargo X` needs the program `cargo-X`.
pub(super) const CARGO_BUILTINS: &str = "add b bench build c check clean config d doc fetch fix \
     generate-lockfile help info init install locate-project login logout metadata new owner \
     package pkgid publish r remove report run rustc rustdoc search t test tree uninstall update \
     vendor verify-project version yank";

/// The program a command line needs: its first word, or `cargo-X` for a cargo plugin.
pub(crate) fn required_program(argv: &[String]) -> Option<String> {
    let program = argv.first()?;
    if program == "cargo"
        && let Some(sub) = argv[1..]
            .iter()
            .find(|a| !a.starts_with('+') && !a.starts_with('-'))
        && !CARGO_BUILTINS.split_whitespace().any(|b| b == sub)
    {
        return Some(format!("cargo-{sub}"));
    }
    Some(program.clone())
}

/// Where `program` is: on `path` (a PATH value), or relative to `root` when it has a `/`.
pub(crate) fn find_program(
    program: &str,
    path: Option<&std::ffi::OsStr>,
    root: &Path,
) -> Option<PathBuf> {
    if program.contains('/') {
        let p = root.join(program);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

pub(super) fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}
