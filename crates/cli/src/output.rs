//! Output for people (aligned tables, local times) and for scripts (JSON, CSV).

pub use session_buddy_text::{duration as fmt_duration, fmt_clock, fmt_time, table};

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

/// RFC 4180 CSV.
pub fn csv(headers: &[&str], rows: &[Vec<String>]) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = headers
        .iter()
        .map(|h| field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for row in rows {
        out.push_str(&row.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes() {
        let c = csv(&["a", "b"], &[vec!["x,y".into(), "q\"".into()]]);
        assert_eq!(c, "a,b\r\n\"x,y\",\"q\"\"\"\r\n");
    }
}
