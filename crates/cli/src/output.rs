//! Output for people (aligned tables, local times) and for scripts (JSON, CSV).

use chrono::{DateTime, Local, Utc};

/// A time for people: local unless `--utc`.
pub fn fmt_time(t: &DateTime<Utc>, utc: bool) -> String {
    if utc {
        t.format("%Y-%m-%d %H:%M:%SZ").to_string()
    } else {
        t.with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }
}

/// A clock time with milliseconds, for timelines.
pub fn fmt_clock(t: &DateTime<Utc>, utc: bool) -> String {
    if utc {
        t.format("%H:%M:%S%.3fZ").to_string()
    } else {
        t.with_timezone(&Local).format("%H:%M:%S%.3f").to_string()
    }
}

pub use session_buddy_components::text::{duration as fmt_duration, table};

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
    fn durations_read_naturally() {
        assert_eq!(fmt_duration(12.34), "12.3s");
        assert_eq!(fmt_duration(300.0), "5m 00s");
        assert_eq!(fmt_duration(3723.0), "1h 02m 03s");
    }

    #[test]
    fn tables_align_and_csv_quotes() {
        let t = table(&["A", "Bee"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, "A     Bee\nlong  x\n");
        let c = csv(&["a", "b"], &[vec!["x,y".into(), "q\"".into()]]);
        assert_eq!(c, "a,b\r\n\"x,y\",\"q\"\"\"\r\n");
    }
}
