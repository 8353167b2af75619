//! Retries with backoff and dead letters, as a function's policy says.
//!
//! When an attempt fails (WORK_FAIL, WORK_EXCEPTION, a run limit, a lost
//! worker) and the job's function has a policy, [`Engine::policy_decides`]
//! takes over from gearmand's rules: the job waits out its backoff in
//! [`JobState::Retrying`] and goes back to its queue when the backoff ends
//! (waking sleeping workers as a new submission would), or — out of
//! attempts — ends, as a dead letter when the policy keeps them.
//!
//! The wait is durable through the job's record: it is written in state
//! `retrying` with the time of the next attempt, and the job's queue row
//! stays, so a restart during the wait finds the row, reads the record and
//! waits for the same instant (see `replay` in `submit`); a restart does not
//! count as an attempt.

use crate::engine::Engine;
use crate::job::JobState;
use crate::outcome::{Failure, Outcome};
use crate::policy::{FunctionPolicy, RetryReason};
use crate::types::*;

impl Engine {
    /// The policy of job `job_no`'s function, if it has one.
    fn job_policy(&mut self, job_no: JobNo) -> Option<&FunctionPolicy> {
        if self.policies.is_empty() {
            return None;
        }
        let f = self.jobs.get(job_no)?.function;
        let name = self.functions.get(f)?.name().clone();
        self.policies.for_function(&name)
    }

    /// The run limit job `job_no`'s policy sets for each attempt, if any.
    /// Asked at every hand-out: the policy is looked at, not copied.
    pub(super) fn policy_timeout_ms(&mut self, job_no: JobNo) -> Option<Millis> {
        self.job_policy(job_no)?.timeout_ms()
    }

    /// An attempt at job `job_no` (running) failed as `failure`. When its
    /// function has a policy that applies to this job, the policy decides
    /// — another attempt after a backoff, or the end of the job (a dead
    /// letter when the policy keeps them) — and this returns `true`.
    /// Otherwise nothing is done and the caller applies gearmand's rules.
    pub(super) fn policy_decides(&mut self, job_no: JobNo, failure: Failure) -> bool {
        let Some(policy) = self.job_policy(job_no).cloned() else { return false };
        let Some(job) = self.jobs.get(job_no) else { return false };
        let JobState::Running(worker) = job.state() else { return false };
        if job.ended || job.ignore {
            return false;
        }
        let reason = failure.reason();
        // A lost worker is no verdict on the job: unless the policy names
        // it, gearmand's rules (requeue at once, `--job-retries`) apply.
        if reason == RetryReason::WorkerLost && !policy.retry_on.contains(reason) {
            return false;
        }
        let applies = job.background || policy.retry_foreground;
        if !applies && reason == RetryReason::WorkerLost {
            return false;
        }
        let attempt = job.attempts.saturating_add(1);
        if applies && policy.retries(reason, attempt) {
            self.conns.stop_running(worker, job_no);
            self.retry_later(job_no, &policy, failure, attempt);
            return true;
        }
        let outcome = if job.background && policy.dead_letter && self.keeps_dead_letters(job.background) {
            Outcome::Dead { last: failure }
        } else {
            match failure {
                Failure::Fail => Outcome::Failed,
                Failure::Exception(text) => Outcome::Exception { text },
                Failure::TimedOut => Outcome::TimedOut,
                // Named in `retry_on` and out of attempts: given up.
                Failure::WorkerLost => Outcome::Dropped { attempts: attempt },
            }
        };
        self.conns.stop_running(worker, job_no);
        if let Some(job) = self.jobs.get_mut(job_no) {
            job.attempts = attempt;
        }
        self.finish_job(job_no, outcome);
        true
    }

    /// Job `job_no`'s attempt number `attempt` failed and its policy gives
    /// it another after the backoff.
    fn retry_later(&mut self, job_no: JobNo, policy: &FunctionPolicy, failure: Failure, attempt: u32) {
        let spread = spread(job_no, attempt);
        let delay = u64::try_from(policy.backoff.delay(attempt, spread).as_millis()).unwrap_or(u64::MAX);
        let at = self.now.saturating_add(delay);
        let limits = self.config.records.limits;
        let now = self.now;
        if let Some(record) = self.ensure_record(job_no) {
            let error = failure.error().map(|e| &e[..]);
            let _ = record.retrying(failure.attempt_end(), error, at, now, limits);
        }
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        job.attempts = attempt;
        job.set_state(JobState::Retrying);
        job.numerator = 0;
        job.denominator = 0;
        // Unix seconds, rounded up: what a row written later (the
        // `--store-queue-on-shutdown` dump) says, never earlier than the
        // retry.
        job.when = i64::try_from(at.div_ceil(1000)).unwrap_or(i64::MAX);
        let (f, p, assignment) = (job.function, job.priority, job.assignment);
        if let Some(func) = self.functions.get_mut(f) {
            func.job_waits(p);
        }
        self.functions.count_retry(f);
        if self.config.report_ended_jobs {
            self.out.retried.push(self.functions.name_of(f));
        }
        self.timers.retry(at, job_no, assignment);
        self.write_live_record(job_no);
        tracing::debug!(job = job_no, attempt, delay_ms = delay, "attempt failed; retrying after its backoff");
    }

    /// A retry's backoff ended: the job joins the tail of its queue and
    /// sleeping workers are woken, as for a new submission.
    pub(super) fn retry_due(&mut self, job_no: JobNo, assignment: u32) {
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        if job.state() != JobState::Retrying || job.assignment != assignment {
            return;
        }
        job.set_state(JobState::Queued);
        job.when = 0;
        // In memory only: a restart finds the record retrying with a time
        // that has passed, and queues the job at once all the same.
        if let Some(record) = job.extra.as_mut().and_then(|e| e.record.as_deref_mut()) {
            let _ = record.retry_due();
        }
        let (f, p) = (job.function, job.priority);
        if let Some(func) = self.functions.get_mut(f) {
            func.retry_due(job_no, p);
        }
        self.wake_workers(f);
    }

    /// A replayed job whose record was waiting for a retry at `at` (Unix
    /// ms) waits again, for the same instant (at once if it has passed).
    pub(super) fn resume_retry(&mut self, job_no: JobNo, at: Millis) {
        if at <= self.now {
            return;
        }
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        if job.state() != JobState::Queued {
            return;
        }
        job.set_state(JobState::Retrying);
        job.when = i64::try_from(at.div_ceil(1000)).unwrap_or(i64::MAX);
        let (f, assignment) = (job.function, job.assignment);
        if let Some(func) = self.functions.get_mut(f) {
            func.job_waits_again();
        }
        // Its queue entry stays behind and is skipped as stale (the job is
        // not queued); `retry_due` queues it again.
        self.timers.retry(at, job_no, assignment);
    }
}

/// A number in [0, 1) that places the jitter of a job's backoff: derived
/// from the job and the attempt (a fixed mix of their bits), so that jobs
/// that failed together spread out while one job's wait is reproducible.
fn spread(job_no: JobNo, attempt: u32) -> f64 {
    let mut x = job_no ^ (u64::from(attempt) << 48) ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn spread_stays_in_range_and_differs_between_jobs() {
        let values: Vec<f64> = (0..1000).map(|n| super::spread(n, 1)).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let low = values.iter().filter(|v| **v < 0.5).count();
        assert!((400..600).contains(&low), "{low} of 1000 below 0.5");
        assert_eq!(super::spread(7, 2), super::spread(7, 2));
    }
}
