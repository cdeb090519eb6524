//! Small shared rules of the wire and configuration formats: durations, and what a session id
//! says about its component.

use std::time::Duration;

/// `10s`, `500ms`, `2m`, `1h`, `3d`, or plain seconds: the syntax of every duration in flags,
/// environment variables and config files.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration; use e.g. 10s, 500ms, 10m, 24h, 30d"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => {
            return Err(format!(
                "'{s}' has an unknown unit '{unit}'; use ms, s, m, h or d"
            ));
        }
    };
    if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
        return Err(format!("'{s}' is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The component a session id names by the id rules (`{component}-{YYYYMMDD}-{HHMMSS}-{hex}`,
/// 6 or 16 hex digits: [`crate::SessionIdRule`]), for events whose start has not arrived yet;
/// `None` for ids that follow no rule.
pub fn component_from_session_id(session_id: &str) -> Option<&str> {
    let mut parts = session_id.rsplitn(4, '-');
    let hex = parts.next()?;
    let time = parts.next()?;
    let date = parts.next()?;
    let component = parts.next()?;
    let ok = crate::SessionIdRule::ALL
        .iter()
        .any(|r| r.hex_digits() == hex.len())
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && time.len() == 6
        && time.bytes().all(|b| b.is_ascii_digit())
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
        && !component.is_empty();
    ok.then_some(component)
}

/// At most 64 characters of `s`, with `…` when cut: for quoting input in error messages.
pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() > 64 {
        let head: String = s.chars().take(64).collect();
        format!("{head}…")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("-3s").is_err());
    }

    #[test]
    fn component_from_ids_follows_the_rule() {
        assert_eq!(
            component_from_session_id("session-buddy-20260206-220500-4e5d6c"),
            Some("session-buddy")
        );
        assert_eq!(component_from_session_id("oneiric-20260206-123456"), None);
        assert_eq!(component_from_session_id("x"), None);
    }
}
