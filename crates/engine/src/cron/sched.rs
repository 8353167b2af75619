//! SUBMIT_JOB_SCHED: cron-style fields (minute, hour, day of month, month,
//! day of week) to the next Unix time they match, in UTC. gearmand 1.1
//! rejects this packet; Sprocket runs the job once at that time.
//!
//! Each field is empty or `*` (any), or any form [`super::field`] reads.

use bytes::Bytes;

use super::field::{self, FieldKind, DAY_OF_MONTH, DAY_OF_WEEK, HOUR, MINUTE, MONTH};

/// One field as text, then as a bit mask of allowed values.
fn parse_field(raw: &[u8], kind: FieldKind) -> Result<(u64, bool), String> {
    let text = std::str::from_utf8(raw).map_err(|_| format!("{}: not text", kind.name))?;
    field::parse(text, kind)
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The first minute strictly after `now` (Unix seconds) matching the
/// fields, as Unix seconds. Searches up to eight years ahead.
pub fn next_run(fields: &[Bytes; 5], now: i64) -> Result<i64, String> {
    let (minutes, _) = parse_field(&fields[0], MINUTE)?;
    let (hours, _) = parse_field(&fields[1], HOUR)?;
    let (mdays, mday_any) = parse_field(&fields[2], DAY_OF_MONTH)?;
    let (months, _) = parse_field(&fields[3], MONTH)?;
    let (wdays, wday_any) = parse_field(&fields[4], DAY_OF_WEEK)?;

    let start = now.div_euclid(60) + 1; // next whole minute
    let first_day = start.div_euclid(1440);
    for day in first_day..first_day + 366 * 8 {
        let (_, month, mday) = civil_from_days(day);
        let wday = (day + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
        if months & (1 << month) == 0 {
            continue;
        }
        let mday_ok = mdays & (1 << mday) != 0;
        let wday_ok = wdays & (1 << wday) != 0;
        // Classic cron: when both day fields are restricted, either matches.
        let day_ok = match (mday_any, wday_any) {
            (true, true) => true,
            (false, true) => mday_ok,
            (true, false) => wday_ok,
            (false, false) => mday_ok || wday_ok,
        };
        if !day_ok {
            continue;
        }
        for hour in 0..24u32 {
            if hours & (1 << hour) == 0 {
                continue;
            }
            for minute in 0..60u32 {
                if minutes & (1 << minute) == 0 {
                    continue;
                }
                let t = day * 1440 + i64::from(hour) * 60 + i64::from(minute);
                if t >= start {
                    return Ok(t * 60);
                }
            }
        }
    }
    Err("schedule never matches".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: [&str; 5]) -> [Bytes; 5] {
        s.map(|x| Bytes::copy_from_slice(x.as_bytes()))
    }

    // 2026-11-22 13:48:00 UTC, a Sunday.
    const NOW: i64 = 1_795_355_280;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(NOW / 86_400), (2026, 11, 22));
        assert_eq!((NOW / 86_400 + 4).rem_euclid(7), 0, "a Sunday");
    }

    #[test]
    fn every_minute_is_the_next_minute() {
        assert_eq!(next_run(&f(["*", "*", "*", "*", "*"]), NOW).unwrap(), NOW + 60);
        assert_eq!(next_run(&f(["", "", "", "", ""]), NOW + 30).unwrap(), NOW + 60);
    }

    #[test]
    fn fixed_time_today_or_tomorrow() {
        // 15:00 today.
        assert_eq!(next_run(&f(["0", "15", "*", "*", "*"]), NOW).unwrap(), NOW - 48 * 60 + 2 * 3600);
        // 13:00 already passed: tomorrow.
        assert_eq!(next_run(&f(["0", "13", "*", "*", "*"]), NOW).unwrap(), NOW - 48 * 60 + 86_400);
    }

    #[test]
    fn weekday_and_steps() {
        // Next Monday 00:00.
        let t = next_run(&f(["0", "0", "*", "*", "1"]), NOW).unwrap();
        assert_eq!(t, (NOW / 86_400 + 1) * 86_400);
        let t = next_run(&f(["*/15", "*", "*", "*", "*"]), NOW).unwrap();
        assert_eq!(t % 900, 0);
        assert!(t > NOW && t - NOW <= 900);
    }

    #[test]
    fn bad_fields_are_errors() {
        assert!(next_run(&f(["61", "*", "*", "*", "*"]), NOW).is_err());
        assert!(next_run(&f(["x", "*", "*", "*", "*"]), NOW).is_err());
        assert!(next_run(&f(["0", "0", "31", "2", "*"]), NOW).is_err());
    }
}
