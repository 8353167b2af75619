//! Durations on the command line: a whole number and a unit, such as
//! `500ms`, `30s`, `15m`, `1h` or `2d`.

use std::time::Duration;

/// What a duration looks like, for error messages and help.
const FORM: &str = "a whole number and a unit (ms, s, m, h, d), like 30s, 15m, 1h or 2d";

/// Reads a duration such as `30s` (see the module documentation). Zero,
/// a missing or unknown unit, a fraction or a number too large to count in
/// milliseconds is refused with a message that says why.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(format!("{text:?} is not a duration: expected {FORM}"));
    }
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err(format!("{text:?} has no unit: expected {FORM}")),
        other => return Err(format!("{text:?} has an unknown unit {other:?}: expected {FORM}")),
    };
    let too_long = || format!("{text:?} is too long a duration");
    let count: u64 = number.parse().map_err(|_| too_long())?;
    let ms = count.checked_mul(unit_ms).ok_or_else(too_long)?;
    if ms == 0 {
        return Err(format!("{text:?} is zero: a duration must be longer than that"));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_is_read() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(15 * 60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
    }

    #[test]
    fn bad_durations_are_refused_with_the_reason() {
        let cases = [
            ("", "not a duration"),
            ("h", "not a duration"),
            ("-1h", "not a duration"),
            (" 1h", "not a duration"),
            ("1.5h", "unknown unit \".5h\""),
            ("30", "has no unit"),
            ("3w", "unknown unit \"w\""),
            ("1H", "unknown unit \"H\""),
            ("1h ", "unknown unit \"h \""),
            ("0s", "is zero"),
            ("99999999999999999999s", "too long"),
            ("999999999999999999d", "too long"),
        ];
        for (text, why) in cases {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}
