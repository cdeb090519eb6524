//! Strict RFC 3339 timestamps: an offset is required, stored in UTC with microsecond precision.

use chrono::{
    DateTime, Datelike, DurationRound, Local, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat,
    TimeDelta, TimeZone, Timelike, Utc,
};

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

/// Parses a time a person typed: RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]` or a keyword, in local
/// time unless `utc`: the rule of every `--since`/`--until`/`--after`/`--before` a person types.
pub fn parse_user_time(s: &str, utc: bool) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let now_local = Local::now();
    let today = if utc {
        Utc::now().date_naive()
    } else {
        now_local.date_naive()
    };
    let day = |d: NaiveDate| d.and_time(NaiveTime::MIN);
    let naive = match s {
        "now" => return Ok(Utc::now()),
        "today" => day(today),
        "yesterday" => day(today - chrono::Days::new(1)),
        "this-week" => {
            day(today - chrono::Days::new(u64::from(today.weekday().num_days_from_monday())))
        }
        "this-month" => day(today.with_day(1).unwrap_or(today)),
        "this-year" => day(today.with_ordinal(1).unwrap_or(today)),
        _ => {
            let formats = [
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%d %H:%M",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%dT%H:%M",
            ];
            match formats
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(day))
            {
                Some(n) => n,
                None => {
                    return Err(format!(
                        "'{s}' is not a time: use RFC 3339 (2026-02-06T12:34:56Z), a date \
                         (2026-02-06), 'YYYY-MM-DD HH:MM', or today, yesterday, this-week, \
                         this-month, this-year"
                    ));
                }
            }
        }
    };
    if utc {
        return Ok(Utc.from_utc_datetime(&naive));
    }
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("'{s}' does not exist in the local time zone (a DST gap)"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_times_take_rfc3339_dates_and_keywords() {
        let t = parse_user_time("2026-02-06T12:34:56Z", false).unwrap();
        assert_eq!(format_timestamp(&t), "2026-02-06T12:34:56.000000Z");
        let day = parse_user_time("2026-02-06", true).unwrap();
        assert_eq!(format_timestamp(&day), "2026-02-06T00:00:00.000000Z");
        let minute = parse_user_time("2026-02-06 07:08", true).unwrap();
        assert_eq!(format_timestamp(&minute), "2026-02-06T07:08:00.000000Z");
        let today = parse_user_time("today", true).unwrap();
        let yesterday = parse_user_time("yesterday", true).unwrap();
        assert_eq!(today - yesterday, TimeDelta::days(1));
        assert!(parse_user_time("this-month", true).unwrap().day() == 1);
        let err = parse_user_time("soon", true).unwrap_err();
        assert!(
            err.starts_with("'soon' is not a time: use RFC 3339"),
            "{err}"
        );
    }

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
