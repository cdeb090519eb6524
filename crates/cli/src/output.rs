//! Output for people (aligned tables, local times) and for scripts (JSON, CSV).

pub use session_buddy_text::{csv, fmt_time, table};

/// Columns available for a line of output: `COLUMNS` when set, else the terminal's width when
/// standard output is one, else 80.
pub fn terminal_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdout())
        && let Ok((cols, _)) = crossterm::terminal::size()
        && cols > 0
    {
        return usize::from(cols);
    }
    80
}
