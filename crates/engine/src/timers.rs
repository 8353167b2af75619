//! Everything the engine waits for the clock to do, and when it next must
//! wake up.
//!
//! Each kind of timer has its own queue, ordered by deadline; the engine
//! takes what is due with [`Timers::pop_due`], kind by kind in a fixed
//! order (scheduled jobs, then cron runs, then time limits, then retries,
//! then store
//! deadlines), so one
//! tick's effects come out in the same order however the deadlines fell.
//! A new kind (a retry's delay, a cron tick) is a new queue, a new [`Due`]
//! variant and a line in `next_deadline` and `pop_due`.
//!
//! Entries are never withdrawn: one whose job was removed, handed out
//! again or answered meanwhile is recognised as stale by the engine (or,
//! for store deadlines, by the check passed to `pop_due`) when it comes due.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::types::{JobNo, Millis};

/// A timer that came due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// A scheduled job's run time came (it may since have been removed).
    Scheduled(JobNo),
    /// A CAN_DO_TIMEOUT limit expired for the `assignment`-th hand-out of
    /// `job` (stale if the job was handed out again meanwhile).
    TimeLimit { job: JobNo, assignment: u32 },
    /// The store has not confirmed insert `seq` within the store timeout.
    StoreTimeout(u64),
    /// A retry's backoff ended for `job`, which waits since its
    /// `assignment`-th hand-out failed (stale if it was handed out again).
    Retry { job: JobNo, assignment: u32 },
    /// A recurring job's run at `at` (Unix seconds) came, for the version
    /// `entry` of its cron entry (stale if the entry changed meanwhile).
    Cron { entry: u64, at: i64 },
}

/// The engine's timers.
#[derive(Debug)]
pub(crate) struct Timers {
    /// Scheduled jobs by run time (Unix seconds).
    schedule: BinaryHeap<Reverse<(i64, JobNo)>>,
    /// Cron runs by time (Unix seconds): (time, entry version).
    cron: BinaryHeap<Reverse<(i64, u64)>>,
    /// CAN_DO_TIMEOUT deadlines: (deadline, job, assignment).
    time_limits: BinaryHeap<Reverse<(Millis, JobNo, u32)>>,
    /// Retries' backoffs: (when, job, assignment), in milliseconds because
    /// a backoff may be shorter than a second.
    retries: BinaryHeap<Reverse<(Millis, JobNo, u32)>>,
    /// How long the store may take to confirm an insert; 0 waits for ever.
    store_timeout_ms: u64,
    /// (seq, time written) of inserts, oldest first: with one timeout for
    /// all, the oldest is always the first due.
    inserts: VecDeque<(u64, Millis)>,
}

impl Timers {
    pub fn new(store_timeout_ms: u64) -> Timers {
        Timers {
            schedule: BinaryHeap::new(),
            cron: BinaryHeap::new(),
            time_limits: BinaryHeap::new(),
            retries: BinaryHeap::new(),
            store_timeout_ms,
            inserts: VecDeque::new(),
        }
    }

    /// Job `job` may not run before `when` (Unix seconds).
    pub fn schedule(&mut self, when: i64, job: JobNo) {
        self.schedule.push(Reverse((when, job)));
    }

    /// Cron entry version `entry` runs at `at` (Unix seconds).
    pub fn cron_run(&mut self, at: i64, entry: u64) {
        self.cron.push(Reverse((at, entry)));
    }

    /// The `assignment`-th hand-out of `job` must end by `deadline`.
    pub fn limit_attempt(&mut self, deadline: Millis, job: JobNo, assignment: u32) {
        self.time_limits.push(Reverse((deadline, job, assignment)));
    }

    /// Job `job`, whose `assignment`-th hand-out failed, may be tried again
    /// at `at`.
    pub fn retry(&mut self, at: Millis, job: JobNo, assignment: u32) {
        self.retries.push(Reverse((at, job, assignment)));
    }

    /// Insert `seq`, written at `now`, must be confirmed within the store
    /// timeout (if there is one).
    pub fn watch_insert(&mut self, seq: u64, now: Millis) {
        if self.store_timeout_ms > 0 {
            self.inserts.push_back((seq, now));
        }
    }

    /// The store timeout, in milliseconds (0: none).
    pub fn store_timeout_ms(&self) -> u64 {
        self.store_timeout_ms
    }

    /// When the next timer falls due, if any.
    pub fn next_deadline(&self) -> Option<Millis> {
        // Saturating: an epoch of 1.8e16 s or more would wrap to a deadline
        // in the past, and the engine would wake every millisecond.
        let sched = self.schedule.peek().map(|Reverse((when, _))| ((*when).max(0) as u64).saturating_mul(1000));
        let cron = self.cron.peek().map(|Reverse((at, _))| ((*at).max(0) as u64).saturating_mul(1000));
        let limit = self.time_limits.peek().map(|Reverse((at, _, _))| *at);
        let store = self.inserts.front().map(|(_, at)| at.saturating_add(self.store_timeout_ms));
        let retry = self.retries.peek().map(|Reverse((at, _, _))| *at);
        [sched, cron, limit, store, retry].into_iter().flatten().min()
    }

    /// Takes one timer due at `now`: every due scheduled job first, then
    /// every cron run, then every expired time limit, then every insert still `unconfirmed` past
    /// the store timeout (deadlines of inserts already answered are dropped
    /// as they are met).
    pub fn pop_due(&mut self, now: Millis, unconfirmed: impl Fn(u64) -> bool) -> Option<Due> {
        let now_secs = (now / 1000) as i64;
        if let Some(Reverse((when, job))) = self.schedule.peek().copied() {
            if when <= now_secs {
                self.schedule.pop();
                return Some(Due::Scheduled(job));
            }
        }
        if let Some(Reverse((at, entry))) = self.cron.peek().copied() {
            if at <= now_secs {
                self.cron.pop();
                return Some(Due::Cron { entry, at });
            }
        }
        if let Some(Reverse((at, job, assignment))) = self.time_limits.peek().copied() {
            if at <= now {
                self.time_limits.pop();
                return Some(Due::TimeLimit { job, assignment });
            }
        }
        if let Some(Reverse((at, job, assignment))) = self.retries.peek().copied() {
            if at <= now {
                self.retries.pop();
                return Some(Due::Retry { job, assignment });
            }
        }
        while let Some(&(seq, at)) = self.inserts.front() {
            if !unconfirmed(seq) {
                self.inserts.pop_front();
                continue;
            }
            if now < at.saturating_add(self.store_timeout_ms) {
                break;
            }
            self.inserts.pop_front();
            return Some(Due::StoreTimeout(seq));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{Due, Timers};

    #[test]
    fn kinds_come_due_in_a_fixed_order_and_answered_inserts_are_skipped() {
        let mut t = Timers::new(1_000);
        t.watch_insert(7, 0);
        t.watch_insert(8, 0);
        t.limit_attempt(500, 2, 1);
        t.schedule(1, 3);
        t.cron_run(1, 9);
        assert_eq!(t.next_deadline(), Some(500));
        assert_eq!(t.pop_due(999, |_| true), Some(Due::TimeLimit { job: 2, assignment: 1 }));
        assert_eq!(t.pop_due(999, |_| true), None);
        assert_eq!(t.pop_due(1_000, |_| true), Some(Due::Scheduled(3)));
        assert_eq!(t.pop_due(1_000, |_| true), Some(Due::Cron { entry: 9, at: 1 }));
        assert_eq!(t.pop_due(1_000, |seq| seq != 7), Some(Due::StoreTimeout(8)));
        assert_eq!(t.pop_due(1_000, |_| true), None);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn no_store_deadlines_without_a_store_timeout() {
        let mut t = Timers::new(0);
        t.watch_insert(1, 0);
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.pop_due(u64::MAX, |_| true), None);
    }
}
