//! Strict RFC 3339 timestamps: an offset is required, stored in UTC with microsecond precision.

use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Timelike, Utc};

use crate::text::clip;

/// Parses an RFC 3339 timestamp with an offset; the error is the rule that failed.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    let Some(t_pos) = s.find(['T', 't']) else {
        return Err(format!(
            "'{}' has no time part; expected RFC 3339 such as 2026-02-06T12:34:56.789Z",
            clip(s)
        ));
    };
    let time_part = &s[t_pos + 1..];
    let has_offset = time_part.ends_with(['Z', 'z'])
        || time_part
            .rfind(['+', '-'])
            .is_some_and(|i| time_part[i + 1..].len() == 5 && time_part.as_bytes()[i + 3] == b':');
    if !has_offset {
        return Err(format!(
            "'{}' has no UTC offset; add Z or ±hh:mm (naive timestamps are ambiguous)",
            clip(s)
        ));
    }
    let parsed = DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("'{}' is not a valid RFC 3339 timestamp ({e})", clip(s)))?;
    // chrono accepts a leap second (second 60) as nanosecond >= 1e9; we do not.
    if parsed.nanosecond() >= 1_000_000_000 {
        return Err(format!(
            "'{}' has second 60, which is out of range",
            clip(s)
        ));
    }
    let utc = parsed.with_timezone(&Utc);
    Ok(utc
        .duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(utc))
}

/// Formats a UTC time as RFC 3339 with microseconds and `Z`.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_offsets_and_normalises_to_utc() {
        let t = parse_timestamp("2026-02-06T23:04:58.123456+01:00").unwrap();
        assert_eq!(format_timestamp(&t), "2026-02-06T22:04:58.123456Z");
    }

    #[test]
    fn truncates_to_microseconds() {
        let t = parse_timestamp("2026-02-06T12:34:56.123456789Z").unwrap();
        assert_eq!(format_timestamp(&t), "2026-02-06T12:34:56.123456Z");
    }

    #[test]
    fn rejects_naive_date_only_and_bad_seconds() {
        assert!(
            parse_timestamp("2026-02-06T12:34:56")
                .unwrap_err()
                .contains("offset")
        );
        assert!(
            parse_timestamp("2026-02-06")
                .unwrap_err()
                .contains("time part")
        );
        assert!(parse_timestamp("2026-02-06T13:45:67.890Z").is_err());
        assert!(parse_timestamp("2026-02-06T23:59:60Z").is_err());
        assert!(parse_timestamp("2026-02-30T12:00:00Z").is_err());
    }
}
