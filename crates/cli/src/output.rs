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

/// `1h 02m 03s`, `5m 00s`, `12.3s`.
pub fn fmt_duration(secs: f64) -> String {
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut l = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            l.push_str(cell);
            if i + 1 < n {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                l.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
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
