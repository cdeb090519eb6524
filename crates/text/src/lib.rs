//! Text for people, once: every face (the CLI's tables and analytics, the shells' helpers, the
//! banner, fastblocks' report) formats tables, bars, sparklines, durations and times here, and
//! `sessions` renders the session records (table, CSV, record and timeline).
//! Pure functions; nothing here reads the environment or the terminal.

pub mod sessions;

use std::fmt::Display;

use chrono::{DateTime, Local, TimeZone, Utc};

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// How a table looks.
#[derive(Clone, Copy, Debug)]
pub enum Style<'a> {
    /// Left-aligned columns separated by two spaces, no rule: the shells and `list-sessions`.
    Plain,
    /// Columns separated by ` | `, a line of dashes under the header, each column aligned as
    /// given (left when not given): the original's analytics tables.
    Ruled(&'a [Align]),
}

/// The one table renderer. Widths count characters; trailing spaces are trimmed from every
/// line, so the last column is never padded.
pub fn render_table(headers: &[&str], rows: &[Vec<String>], style: Style<'_>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let (separator, align) = match style {
        Style::Plain => ("  ", &[][..]),
        Style::Ruled(align) => (" | ", align),
    };
    let line = |cells: &[&str]| -> String {
        let mut out = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths.get(i).copied().unwrap_or(0);
                match align.get(i).copied().unwrap_or(Align::Left) {
                    Align::Left => format!("{c:<w$}"),
                    Align::Right => format!("{c:>w$}"),
                }
            })
            .collect::<Vec<_>>()
            .join(separator)
            .trim_end()
            .to_string();
        out.push('\n');
        out
    };
    let mut out = line(headers);
    if let Style::Ruled(_) = style {
        out.push_str(&"-".repeat(out.trim_end().chars().count()));
        out.push('\n');
    }
    for row in rows {
        out.push_str(&line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out
}

/// A [`Style::Plain`] table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    render_table(headers, rows, Style::Plain)
}

/// A [`Style::Ruled`] table (the original's `table`).
pub fn ascii_table(headers: &[&str], rows: &[Vec<String>], align: &[Align]) -> String {
    render_table(headers, rows, Style::Ruled(align))
}

/// A horizontal bar of up to `width` cells for `value` out of `max`; empty when `max` is not
/// positive.
pub fn bar(value: f64, max: f64, width: usize) -> String {
    if max <= 0.0 {
        return String::new();
    }
    "█".repeat(((value / max) * width as f64).round().max(0.0) as usize)
}

/// `{label:20} {value:6} ████…`, one line per item, bars scaled to `width` (the original's
/// `bar_chart`); `No data available` when there is nothing to draw.
pub fn bar_chart(data: &[(String, u64)], width: usize) -> String {
    let max = data.iter().map(|(_, v)| *v).max().unwrap_or(0);
    if max == 0 {
        return "No data available\n".into();
    }
    let mut out = String::new();
    for (label, value) in data {
        let label: String = label.chars().take(20).collect();
        out.push_str(&format!(
            "{label:20} {value:6} {}\n",
            bar(*value as f64, max as f64, width)
        ));
    }
    out
}

/// `▁▂▃▄▅▆▇█` scaled from 0 to the largest value; `No data` when empty.
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() {
        return "No data".into();
    }
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    values
        .iter()
        .map(|v| {
            if max <= 0.0 {
                BARS[0]
            } else {
                BARS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

/// Hours, minutes and whole seconds of a non-negative duration, rounded to the second.
fn hours_minutes_seconds(secs: f64) -> (u64, u64, u64) {
    let total = secs.max(0.0).round() as u64;
    (total / 3600, (total % 3600) / 60, total % 60)
}

/// A duration in a table: `1h 02m 03s`, `5m 00s`, tenths under a minute (`12.3s`), so that
/// columns line up (the shells, `list-sessions`, `show-session`).
pub fn duration(secs: f64) -> String {
    if secs < 60.0 {
        return format!("{:.1}s", secs.max(0.0));
    }
    match hours_minutes_seconds(secs) {
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
    }
}

/// A byte count for people: `812 B`, `4.2 KiB`, `63.9 MiB`, `1.2 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A duration as the original's analytics print it: `1h 2m 3s`, `5m 0s`, `12s`; tenths under
/// 10 s, so a short session does not read as `0s`.
pub fn hms(secs: f64) -> String {
    if secs < 9.95 {
        return format!("{:.1}s", secs.max(0.0));
    }
    match hours_minutes_seconds(secs) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, s) => format!("{h}h {m}m {s}s"),
    }
}

/// The unit a [`Span`] counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
}

/// A span of time in its largest sensible unit, rounded down: seconds under a minute, minutes
/// under an hour, hours under two days, then days (one rule for "how long ago", "expires in"
/// and "valid for").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub n: u64,
    pub unit: Unit,
}

impl Span {
    /// The span of `secs` seconds (its sign is ignored).
    pub fn of(secs: i64) -> Span {
        let s = secs.unsigned_abs();
        let (n, unit) = match s {
            0..60 => (s, Unit::Second),
            60..3600 => (s / 60, Unit::Minute),
            3600..172_800 => (s / 3600, Unit::Hour),
            _ => (s / 86_400, Unit::Day),
        };
        Span { n, unit }
    }

    /// `3 days`, `1 minute`.
    pub fn words(self) -> String {
        let word = match self.unit {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
        };
        format!("{} {word}{}", self.n, if self.n == 1 { "" } else { "s" })
    }

    /// `3d`, `5h`, `1m`, `40s`.
    pub fn short(self) -> String {
        let unit = match self.unit {
            Unit::Second => "s",
            Unit::Minute => "m",
            Unit::Hour => "h",
            Unit::Day => "d",
        };
        format!("{}{unit}", self.n)
    }

    /// `40 s`, `3 min`, `2 h`, `4 days`: the banner's words.
    pub fn abbreviated(self) -> String {
        match self.unit {
            Unit::Second => format!("{} s", self.n),
            Unit::Minute => format!("{} min", self.n),
            Unit::Hour => format!("{} h", self.n),
            Unit::Day => format!("{} day{}", self.n, if self.n == 1 { "" } else { "s" }),
        }
    }
}

/// How long ago `t` was, as people say it: `just now` (under 5 s), `40 s ago`, `3 min ago`,
/// `2 h ago`, `4 days ago`.
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    if secs < 5 {
        return "just now".to_string();
    }
    format!("{} ago", Span::of(secs).abbreviated())
}

/// `2026-02-06 14:03:12`: a time for people in `tz`.
pub fn time_in<Tz: TimeZone>(t: DateTime<Utc>, tz: &Tz) -> String
where
    Tz::Offset: Display,
{
    t.with_timezone(tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A time for people: local unless `utc` (then marked `Z`).
pub fn fmt_time(t: &DateTime<Utc>, utc: bool) -> String {
    if utc {
        t.format("%Y-%m-%d %H:%M:%SZ").to_string()
    } else {
        time_in(*t, &Local)
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

/// RFC 4180 CSV, the one CSV writer of the workspace (the CLI's `--format csv`, `export`, the
/// console's downloads). Every cell is [`csv_safe`]: a spreadsheet opening the file never runs
/// a cell as a formula.
pub fn csv(headers: &[&str], rows: &[Vec<String>]) -> String {
    let field = |s: &str| {
        let s = csv_safe(s);
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.into_owned()
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

/// A CSV cell a spreadsheet shows as text (formula injection, OWASP "CSV Injection"): a cell
/// that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, unless
/// it is a plain number (`-3`, `+1.5`, `-2e3`), which stays a number.
pub fn csv_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !is_plain_number(cell) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// `[+-]digits[.digits][e[+-]digits]`, nothing else (no spaces, no operators).
fn is_plain_number(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((i, f)) => digits(i) && digits(f),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_neutralises_formulas_but_keeps_numbers() {
        for (cell, shown) in [
            ("=cmd()", "'=cmd()"),
            ("=1+2", "'=1+2"),
            ("+SUM(A1)", "'+SUM(A1)"),
            ("-2+3", "'-2+3"),
            ("-", "'-"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("-3", "-3"),
            ("-3.25", "-3.25"),
            ("+7", "+7"),
            ("-1e5", "-1e5"),
            ("-.5", "'-.5"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(csv_safe(cell), shown, "{cell:?}");
        }
        let c = csv(&["cmd", "n"], &[vec!["=cmd()".into(), "-3".into()]]);
        assert_eq!(c, "cmd,n\r\n'=cmd(),-3\r\n");
        // Quoting still applies to the neutralised text.
        let q = csv(&["a"], &[vec!["=HYPERLINK(\"x\",\"y\")".into()]]);
        assert_eq!(q, "a\r\n\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"\r\n");
        // A carriage return first: neutralised and quoted.
        assert_eq!(csv(&["a"], &[vec!["\rx".into()]]), "a\r\n\"'\rx\"\r\n");
    }

    #[test]
    fn times_for_people() {
        use chrono::TimeZone;
        let t = Utc.with_ymd_and_hms(2026, 2, 6, 12, 3, 4).unwrap();
        let plus2 = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
        assert_eq!(time_in(t, &plus2), "2026-02-06 14:03:04");
        assert_eq!(fmt_time(&t, true), "2026-02-06 12:03:04Z");
        assert_eq!(fmt_clock(&t, true), "12:03:04.000Z");
    }

    #[test]
    fn sparkline_scales_to_the_maximum() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0]), "▁▅█");
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 4.0]), "▁▃▅█");
        assert_eq!(sparkline(&[0.0, 0.0]), "▁▁");
        assert_eq!(sparkline(&[]), "No data");
    }

    #[test]
    fn plain_tables_align_and_trim() {
        assert_eq!(
            table(&["A", "Bee"], &[vec!["long".into(), "x".into()]]),
            "A     Bee\nlong  x\n"
        );
        // A row longer than the header does not panic; its extra cells are not padded.
        assert_eq!(table(&["A"], &[vec!["x".into(), "y".into()]]), "A\nx  y\n");
    }

    #[test]
    fn ruled_tables_align_per_column() {
        let t = ascii_table(
            &["A", "Num"],
            &[vec!["xy".into(), "5".into()]],
            &[Align::Left, Align::Right],
        );
        assert_eq!(t, "A  | Num\n--------\nxy |   5\n");
    }

    #[test]
    fn bar_charts_scale_to_the_largest() {
        let chart = bar_chart(&[("a".into(), 2), ("b".into(), 1)], 10);
        assert_eq!(
            chart,
            format!(
                "{:20} {:6} {}\n{:20} {:6} {}\n",
                "a",
                2,
                "█".repeat(10),
                "b",
                1,
                "█".repeat(5)
            )
        );
        assert_eq!(bar_chart(&[], 10), "No data available\n");
        assert_eq!(bar(1.0, 0.0, 10), "");
    }

    #[test]
    fn table_durations_line_up() {
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(300.0), "5m 00s");
        assert_eq!(duration(3723.0), "1h 02m 03s");
        assert_eq!(duration(-1.0), "0.0s");
    }

    #[test]
    fn analytics_durations_are_the_originals() {
        assert_eq!(hms(3723.0), "1h 2m 3s");
        assert_eq!(hms(300.0), "5m 0s");
        assert_eq!(hms(12.4), "12s");
        assert_eq!(hms(0.24), "0.2s");
        assert_eq!(hms(9.96), "10s");
    }

    #[test]
    fn spans_take_the_largest_unit() {
        assert_eq!(Span::of(1).words(), "1 second");
        assert_eq!(Span::of(60).words(), "1 minute");
        assert_eq!(Span::of(-7200).words(), "2 hours");
        // 47 hours is not "1 day".
        assert_eq!(Span::of(47 * 3600).words(), "47 hours");
        assert_eq!(Span::of(30 * 86400).words(), "30 days");
        assert_eq!(Span::of(90).short(), "1m");
        assert_eq!(Span::of(5 * 86400).short(), "5d");
        let now = Utc::now();
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - chrono::Duration::seconds(40), now), "40 s ago");
        assert_eq!(ago(now - chrono::Duration::minutes(3), now), "3 min ago");
        assert_eq!(ago(now - chrono::Duration::hours(5), now), "5 h ago");
        assert_eq!(ago(now - chrono::Duration::days(4), now), "4 days ago");
    }

    #[test]
    fn csv_quotes() {
        let c = csv(&["a", "b"], &[vec!["x,y".into(), "q\"".into()]]);
        assert_eq!(c, "a,b\r\n\"x,y\",\"q\"\"\"\r\n");
    }
}
