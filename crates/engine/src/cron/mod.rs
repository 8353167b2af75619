//! Recurring jobs (cron) and SUBMIT_JOB_SCHED's schedule fields.
//!
//! - `field`: one schedule field (numbers, names, lists, ranges, steps);
//! - `schedule`: a whole schedule (five or six fields, or an alias) and
//!   its next run in a time zone, daylight-saving changes included;
//! - `spec`: an entry's definition as the policy file and `cron add` give
//!   it, checked as it is read;
//! - `table`: the entries, where each came from, and when each runs next;
//! - `sched`: SUBMIT_JOB_SCHED's five fields, in UTC.
//!
//! Each run submits one background job whose unique is
//! `cron:<name>:<run's Unix seconds>`, so a run that is submitted twice
//! (after a restart, or by two servers sharing one database) joins the
//! first job instead of running again. The engine's side (submitting,
//! the timers, the store, the admin commands) is in `engine/cron_runs.rs`.

mod field;
mod sched;
mod schedule;
mod spec;
mod table;

pub use sched::next_run;
pub use schedule::Schedule;
pub use spec::{CatchUp, CronName, CronPriority, CronSpec, FunctionName, Zone, MAX_FUNCTION, MAX_NAME};
pub(crate) use table::CronTable;
pub use table::{CronError, CronSource};

/// Most runs `catch_up = "all"` submits after a restart (the most recent
/// ones): a schedule of every second down for a day would otherwise flood
/// its function.
pub const MAX_CATCH_UP: usize = 1000;

/// The setting kind of a run-time entry (name: the entry's; value: its
/// spec as JSON).
pub const CRON_SETTING: &str = "cron";

/// The setting kind of an entry's last submitted run (name: the entry's;
/// value: the run's Unix seconds).
pub const CRON_TICK_SETTING: &str = "cron_tick";

/// The unique of the job for `name`'s run at `tick` (Unix seconds).
pub fn tick_unique(name: &str, tick: i64) -> String {
    format!("cron:{name}:{tick}")
}

/// The unique of a run started by hand (`cron run`) at `now_ms`.
pub fn manual_unique(name: &str, now_ms: u64) -> String {
    format!("cron:{name}:manual:{now_ms}")
}

/// The entry name and run of a scheduled run's unique, if it is one.
pub fn parse_tick_unique(unique: &[u8]) -> Option<(&str, i64)> {
    let text = std::str::from_utf8(unique).ok()?.strip_prefix("cron:")?;
    let (name, tick) = text.rsplit_once(':')?;
    if name.contains(':') || tick.is_empty() || !tick.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((name, tick.parse().ok()?))
}

/// Unix seconds as ISO 8601 with the offset in force in `tz`
/// (`2026-12-08T03:00:00+01:00`); `None` outside the calendar's range.
pub fn iso_time(at: i64, tz: &jiff::tz::TimeZone) -> Option<String> {
    let ts = jiff::Timestamp::from_second(at).ok()?;
    Some(ts.to_zoned(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
}

/// One entry as `cron list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CronView {
    /// The entry's definition.
    pub spec: CronSpec,
    /// Where it came from.
    pub source: CronSource,
    /// Its next run, Unix seconds (`None` if the schedule has no more).
    pub next: Option<i64>,
    /// Its last submitted run, Unix seconds.
    pub last: Option<i64>,
}
