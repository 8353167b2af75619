//! Durations on the command line (`records --since`, `wait --timeout`):
//! the forms sprocketd's own duration flags take (`250ms`, `90s`, `15m`,
//! `1h`, `2d`, `1w`, or a bare number of seconds), and longer than zero.

use std::time::Duration;

use sprocket_client::records::parse_duration as parse_any_duration;

/// Reads a duration; zero is refused, as neither a wait nor a look back
/// of no time at all means anything.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_any_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err(format!("{text:?} is zero: give a duration longer than that, such as 30s"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_is_read() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(15 * 60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn bad_durations_are_refused_with_the_reason() {
        for text in ["", "h", "-1h", "1.5h", "3x", "1H", "1 hour", "99999999999999999999s", "999999999999999999d"] {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains("is not a duration") && err.contains("such as 90s, 15m, 7d"), "{text:?}: {err}");
        }
        for zero in ["0", "0s", "0ms", "0d"] {
            let err = parse_duration(zero).expect_err(zero);
            assert!(err.contains("is zero"), "{zero:?}: {err}");
        }
    }
}
