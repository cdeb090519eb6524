//! Facts about this process and host for `session_start`: who and where.

use session_buddy_events::limits;

pub(crate) struct HostFacts {
    pub username: String,
    pub home: String,
    pub hostname: String,
    pub platform: String,
    pub cwd: String,
}

/// `environment.runtime` of a Rust program built with this library: `rust 1.95`. Only a Rust
/// program may say it of itself; a tracker started for another program
/// (`session-buddy track`) leaves its runtime out unless it knows it.
pub fn rust_runtime() -> String {
    format!("rust {}", env!("CARGO_PKG_RUST_VERSION"))
}

pub(crate) fn host_facts() -> HostFacts {
    let uts = nix::sys::utsname::uname().ok();
    let hostname = uts
        .as_ref()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    let platform = match &uts {
        Some(u) => format!(
            "{}-{}-{}",
            u.sysname().to_string_lossy(),
            u.release().to_string_lossy(),
            u.machine().to_string_lossy()
        ),
        None => format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
    };
    let account = || {
        nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let username = env("USER")
        .or_else(|| env("USERNAME"))
        .or_else(|| account().map(|u| u.name))
        .unwrap_or_else(|| nix::unistd::getuid().to_string());
    let home = env("HOME")
        .or_else(|| account().map(|u| u.dir.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "/".to_string());
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/".to_string());
    HostFacts {
        username: clip_chars(&username, limits::USERNAME_MAX),
        home: clip_chars(&home, limits::HOME_MAX),
        hostname: clip_chars(&hostname, limits::HOSTNAME_MAX),
        platform: clip_chars(&platform, limits::SHORT_TEXT_MAX),
        cwd: clip_chars(&cwd, limits::CWD_MAX),
    }
}

/// At most `max` characters.
pub(crate) fn clip_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// At most `max` bytes, cut on a character boundary.
pub(crate) fn clip_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
