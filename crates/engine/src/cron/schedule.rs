//! A recurring job's schedule: five fields (minute, hour, day of month,
//! month, day of week) or six (seconds first), or an alias, and the next
//! instant it matches in a time zone.
//!
//! Daylight-saving changes neither skip nor double a run: a wall-clock
//! time that does not exist that day (the clocks jump over it) runs once,
//! at the first instant after the jump; a wall-clock time that happens
//! twice (the clocks go back) runs once, the first time.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

use super::field::{self, DAY_OF_MONTH, DAY_OF_WEEK, HOUR, MINUTE, MONTH, SECOND};

/// How far ahead a schedule is searched: far enough for 29 February in
/// a leap year (eight years covers the century rule), no further.
const SEARCH_DAYS: i64 = 366 * 8 + 2;

/// A parsed schedule, with the text it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    seconds: u64,
    minutes: u64,
    hours: u64,
    mdays: u64,
    months: u64,
    wdays: u64,
    mday_any: bool,
    wday_any: bool,
}

impl Schedule {
    /// Reads a schedule: `@yearly` (or `@annually`), `@monthly`,
    /// `@weekly`, `@daily` (or `@midnight`), `@hourly`, or five or six
    /// fields. The error says which field is wrong and why.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let trimmed = text.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            alias if alias.starts_with('@') => {
                return Err(format!(
                "unknown alias {trimmed:?} (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)"
            ))
            }
            _ => trimmed,
        };
        let fields: Vec<&str> = expanded.split_ascii_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(format!(
                    "{n} fields: a schedule has 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
                ))
            }
        };
        let (seconds, _) = field::parse(seconds, SECOND)?;
        let (minutes, _) = field::parse(rest[0], MINUTE)?;
        let (hours, _) = field::parse(rest[1], HOUR)?;
        let (mdays, mday_any) = field::parse(rest[2], DAY_OF_MONTH)?;
        let (months, _) = field::parse(rest[3], MONTH)?;
        let (wdays, wday_any) = field::parse(rest[4], DAY_OF_WEEK)?;
        // Kept with single spaces: it is shown in tab-separated listings.
        let text = trimmed.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
        let schedule = Schedule { text, seconds, minutes, hours, mdays, months, wdays, mday_any, wday_any };
        if !schedule.some_day_matches() {
            return Err("the schedule never matches (no month has such a day)".into());
        }
        Ok(schedule)
    }

    /// The text it was read from, its fields separated by single spaces.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the day fields allow any day at all: `31 2` (31 February)
    /// never comes, and would otherwise be searched for years on every
    /// tick.
    fn some_day_matches(&self) -> bool {
        if !self.wday_any && self.wdays != 0 {
            // Every weekday comes in every month.
            return true;
        }
        const LONGEST: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12u32)
            .any(|m| self.months & (1 << m) != 0 && (1..=LONGEST[m as usize]).any(|d| self.mdays & (1 << d) != 0))
    }

    /// Whether the schedule runs on `date`.
    fn matches_day(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let mday_ok = self.mdays & (1 << date.day()) != 0;
        let wday_ok = self.wdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        // Classic cron: when both day fields are restricted, either will do.
        match (self.mday_any, self.wday_any) {
            (true, true) => true,
            (false, true) => mday_ok,
            (true, false) => wday_ok,
            (false, false) => mday_ok || wday_ok,
        }
    }

    /// The first instant strictly after `after` (Unix seconds) at which
    /// the schedule runs in `tz`, as Unix seconds; `None` if it does not
    /// within the search window (or the time is outside what the calendar
    /// handles).
    pub fn next_after(&self, after: i64, tz: &TimeZone) -> Option<i64> {
        let after_ts = Timestamp::from_second(after).ok()?;
        let start = tz.to_datetime(after_ts);
        let mut date = start.date();
        for _ in 0..SEARCH_DAYS {
            if self.matches_day(date) {
                // Only on the first day can a wall-clock time come before
                // the start; later days begin at midnight.
                let from = if date == start.date() { Some(start.time()) } else { None };
                if let Some(found) = self.first_on(date, from, after, tz) {
                    return Some(found);
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The first matching time on `date` (not before `from`) whose instant
    /// is after `after`.
    fn first_on(&self, date: Date, from: Option<Time>, after: i64, tz: &TimeZone) -> Option<i64> {
        for hour in bits(self.hours) {
            if from.is_some_and(|f| hour < f.hour() as u32) {
                continue;
            }
            for minute in bits(self.minutes) {
                if from.is_some_and(|f| (hour, minute) < (f.hour() as u32, f.minute() as u32)) {
                    continue;
                }
                for second in bits(self.seconds) {
                    let time = Time::new(hour as i8, minute as i8, second as i8, 0).ok()?;
                    if from.is_some_and(|f| time < f) {
                        continue;
                    }
                    let at = instant(DateTime::from_parts(date, time), tz)?;
                    if at > after {
                        return Some(at);
                    }
                }
            }
        }
        None
    }
}

/// The instant a wall-clock time stands for in `tz`: the only one; the
/// first of two (clocks going back); or, for a time the clocks jump over,
/// the instant of the jump, the first after the gap.
fn instant(dt: DateTime, tz: &TimeZone) -> Option<i64> {
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } | AmbiguousOffset::Fold { before: offset, .. } => {
            Some(offset.to_timestamp(dt).ok()?.as_second())
        }
        AmbiguousOffset::Gap { before, .. } => {
            // Read with the offset in force before the jump, the time lies
            // after the jump; the jump is the last transition before it.
            let past_gap = before.to_timestamp(dt).ok()?;
            let jump = tz.preceding(past_gap).next()?;
            Some(jump.timestamp().as_second())
        }
    }
}

/// The values set in a mask, in ascending order.
fn bits(mask: u64) -> impl Iterator<Item = u32> {
    (0..64u32).filter(move |v| mask & (1u64 << v) != 0)
}

#[cfg(test)]
mod tests;
