//! The six component shells (README, "Shells and tracking"). Each module's `spec()` returns its
//! [`ShellSpec`]: banner words and helpers that do real work.

mod akosha;
mod crackerjack;
mod fastblocks;
mod mahavishnu;
mod oneiric;
mod reading;
mod session_buddy;

use session_buddy_text as text;

use session_buddy_shell::ShellSpec;

/// Every component, in the order `session-buddy shell` lists them.
pub const COMPONENTS: &[&str] = &[
    "oneiric",
    "session-buddy",
    "mahavishnu",
    "crackerjack",
    "akosha",
    "fastblocks",
];

/// The shell of `component`, or `None` for an unknown name.
pub fn spec(component: &str) -> Option<ShellSpec> {
    Some(match component {
        "oneiric" => oneiric::spec(),
        "session-buddy" => session_buddy::spec(),
        "mahavishnu" => mahavishnu::spec(),
        "crackerjack" => crackerjack::spec(),
        "akosha" => akosha::spec(),
        "fastblocks" => fastblocks::spec(),
        _ => return None,
    })
}

/// This crate's version, shown in every banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
