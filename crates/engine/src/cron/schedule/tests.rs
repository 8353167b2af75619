//! Schedules against known instants (computed independently, from the
//! IANA rules for 2026: Berlin moves to summer time on 29 March at 01:00
//! UTC and back on 25 October at 01:00 UTC; New York on 8 March at 07:00
//! UTC and back on 1 November at 06:00 UTC).

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::Schedule;

/// Unix seconds of an ISO 8601 instant.
fn t(iso: &str) -> i64 {
    iso.parse::<Timestamp>().unwrap_or_else(|e| panic!("{iso}: {e}")).as_second()
}

fn next(schedule: &str, tz: &str, after: &str) -> String {
    let s = Schedule::parse(schedule).unwrap_or_else(|e| panic!("{schedule}: {e}"));
    let zone = TimeZone::get(tz).unwrap_or_else(|e| panic!("{tz}: {e}"));
    let at = s.next_after(t(after), &zone).unwrap_or_else(|| panic!("{schedule} never runs after {after}"));
    Timestamp::from_second(at).map(|ts| ts.to_string()).unwrap_or_default()
}

/// The runs after `after`, `n` of them, as UTC instants.
fn runs(schedule: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
    let s = Schedule::parse(schedule).unwrap_or_else(|e| panic!("{schedule}: {e}"));
    let zone = TimeZone::get(tz).unwrap_or_else(|e| panic!("{tz}: {e}"));
    let mut at = t(after);
    let mut out = Vec::new();
    for _ in 0..n {
        at = s.next_after(at, &zone).unwrap_or_else(|| panic!("{schedule} stops"));
        out.push(Timestamp::from_second(at).map(|ts| ts.to_string()).unwrap_or_default());
    }
    out
}

#[test]
fn five_fields_every_form() {
    // A Sunday, 13:48 UTC.
    let now = "2026-11-22T13:48:00Z";
    assert_eq!(next("* * * * *", "UTC", now), "2026-11-22T13:49:00Z");
    assert_eq!(next("5 * * * *", "UTC", now), "2026-11-22T14:05:00Z");
    assert_eq!(next("0,50 * * * *", "UTC", now), "2026-11-22T13:50:00Z");
    assert_eq!(next("*/20 * * * *", "UTC", now), "2026-11-22T14:00:00Z");
    assert_eq!(next("10-30/10 15 * * *", "UTC", now), "2026-11-22T15:10:00Z");
    assert_eq!(next("0 9 * * mon-fri", "UTC", now), "2026-11-23T09:00:00Z");
    assert_eq!(next("0 0 1 jan,jul *", "UTC", now), "2027-01-01T00:00:00Z");
    assert_eq!(next("0 0 * dec sun", "UTC", now), "2026-12-06T00:00:00Z");
    assert_eq!(next("0 12 * * 7", "UTC", now), "2026-11-29T12:00:00Z", "7 is Sunday");
    // Both day fields restricted: either will do (the 1st, or a Friday).
    assert_eq!(next("0 0 1 * fri", "UTC", now), "2026-11-27T00:00:00Z");
    assert_eq!(next("0 0 29 2 *", "UTC", now), "2028-02-29T00:00:00Z", "the next leap day");
}

#[test]
fn aliases() {
    let now = "2026-11-22T13:48:00Z";
    assert_eq!(next("@hourly", "UTC", now), "2026-11-22T14:00:00Z");
    assert_eq!(next("@daily", "UTC", now), "2026-11-23T00:00:00Z");
    assert_eq!(next("@midnight", "UTC", now), "2026-11-23T00:00:00Z");
    assert_eq!(next("@weekly", "UTC", now), "2026-11-29T00:00:00Z");
    assert_eq!(next("@monthly", "UTC", now), "2026-12-01T00:00:00Z");
    assert_eq!(next("@yearly", "UTC", now), "2027-01-01T00:00:00Z");
    assert_eq!(next("@ANNUALLY", "UTC", now), "2027-01-01T00:00:00Z");
    assert!(Schedule::parse("@fortnightly").unwrap_err().contains("unknown alias"));
}

#[test]
fn six_fields_put_seconds_first() {
    assert_eq!(
        runs("*/2 * * * * *", "UTC", "2026-11-22T13:48:59Z", 3),
        ["2026-11-22T13:49:00Z", "2026-11-22T13:49:02Z", "2026-11-22T13:49:04Z"]
    );
    assert_eq!(next("30 0 12 * * *", "UTC", "2026-11-22T13:48:00Z"), "2026-11-23T12:00:30Z");
    assert!(Schedule::parse("60 * * * * *").unwrap_err().contains("second"));
    assert_eq!(Schedule::parse(" 0\t3  * * *").map(|s| s.as_str().to_owned()), Ok("0 3 * * *".to_owned()));
}

#[test]
fn bad_schedules_say_why() {
    for (text, says) in [
        ("* * * *", "4 fields"),
        ("* * * * * * *", "7 fields"),
        ("0 24 * * *", "hour"),
        ("0 0 32 * *", "day of month"),
        ("0 0 * 13 *", "month"),
        ("0 0 * * 8", "day of week"),
        ("0 0 30 2 *", "never matches"),
        ("0 0 31 apr,jun *", "never matches"),
    ] {
        let e = Schedule::parse(text).unwrap_err();
        assert!(e.contains(says), "{text}: {e}");
    }
}

#[test]
fn a_time_zone_moves_the_wall_clock() {
    // 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer.
    assert_eq!(next("0 3 * * *", "Europe/Berlin", "2026-01-10T12:00:00Z"), "2026-01-11T02:00:00Z");
    assert_eq!(next("0 3 * * *", "Europe/Berlin", "2026-07-10T12:00:00Z"), "2026-07-11T01:00:00Z");
    assert_eq!(next("0 3 * * *", "America/New_York", "2026-01-10T12:00:00Z"), "2026-01-11T08:00:00Z");
    // The day is the zone's: Monday 01:00 in Berlin is still Sunday in UTC.
    assert_eq!(next("0 1 * * mon", "Europe/Berlin", "2026-11-22T12:00:00Z"), "2026-11-23T00:00:00Z");
}

#[test]
fn berlin_spring_forward_runs_a_skipped_time_once_at_the_jump() {
    // 02:30 does not exist on 29 March: the run is at 03:00 CEST (01:00
    // UTC), once; the next day's is at 02:30 CEST again.
    assert_eq!(
        runs("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 3),
        ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]
    );
    // Every quarter hour: 01:45 CET, then every time in the gap and 03:00
    // itself are one run at the jump, then 03:15 CEST.
    assert_eq!(
        runs("*/15 * * * *", "Europe/Berlin", "2026-03-29T00:40:00Z", 3),
        ["2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z"]
    );
    // Unaffected times keep their place.
    assert_eq!(runs("0 4 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 1), ["2026-03-29T02:00:00Z"]);
}

#[test]
fn berlin_fall_back_runs_a_doubled_time_once_the_first_time() {
    // 02:30 happens twice on 25 October (CEST, then CET): once, at the
    // first (00:30 UTC); the next run is the next day's.
    assert_eq!(
        runs("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
    // Every half hour: 02:00 and 02:30 run in summer time only; the
    // repeated hour brings no second run; 03:00 CET follows.
    assert_eq!(
        runs("*/30 * * * *", "Europe/Berlin", "2026-10-24T23:45:00Z", 4),
        ["2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T02:00:00Z", "2026-10-25T02:30:00Z"]
    );
    // Asked during the repeated hour, the doubled times are not run again.
    assert_eq!(next("30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z"), "2026-10-26T01:30:00Z");
}

#[test]
fn new_york_transitions() {
    // 8 March: 02:00-03:00 does not exist; 02:30 runs at 03:00 EDT.
    assert_eq!(
        runs("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
        ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
    );
    // 1 November: 01:00-02:00 happens twice; 01:30 runs in EDT only.
    assert_eq!(
        runs("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
}

#[test]
fn a_whole_year_of_a_daily_berlin_run_has_one_run_a_day() {
    let s = Schedule::parse("30 2 * * *").unwrap();
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    let mut at = t("2025-12-31T23:00:00Z");
    let mut count = 0;
    let end = t("2026-12-31T23:00:00Z");
    loop {
        at = s.next_after(at, &tz).unwrap();
        if at >= end {
            break;
        }
        count += 1;
    }
    assert_eq!(count, 365, "neither a skipped nor a doubled day");
}
