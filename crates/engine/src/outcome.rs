//! How a job ends, and how one attempt at it ends without the job ending.

use bytes::Bytes;

/// How a job ended. Every job ends exactly once, through one place in
/// the engine, which tells its clients, deletes its store row and forgets
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The worker sent WORK_COMPLETE with this result.
    Completed {
        /// The result, as the worker sent it.
        result: Bytes,
    },
    /// The worker sent WORK_FAIL.
    Failed,
    /// The worker sent WORK_EXCEPTION with this text (clients that did not
    /// ask for exceptions hear WORK_FAIL).
    Exception {
        /// The exception text, as the worker sent it.
        text: Bytes,
    },
    /// An operator cancelled it (`cancel job`).
    Cancelled,
    /// An operator purged its function's queued jobs (`purge queued`).
    Purged,
    /// An operator dropped its function while it was queued
    /// (`drop function`).
    FunctionDropped,
    /// Its CAN_DO_TIMEOUT limit expired, with `--timeout-action fail`.
    TimedOut,
    /// Its attempts ran out under a policy with dead letters: it is kept,
    /// with its workload, as a dead letter. Its clients hear how the last
    /// attempt ended.
    Dead {
        /// How the last attempt failed.
        last: Failure,
    },
    /// Its attempts ran out (`--job-retries`).
    Dropped {
        /// Attempts that ended without a result.
        attempts: u32,
    },
    /// The store could not make it durable (the insert failed or was not
    /// confirmed in time) and no foreground client wants it.
    NotStored,
    /// Every foreground client left and nothing else wants it.
    Abandoned,
}

impl Outcome {
    /// Whether the job's clients hear WORK_FAIL for it.
    pub fn tells_clients_failed(&self) -> bool {
        matches!(
            self,
            Outcome::Failed
                | Outcome::Cancelled
                | Outcome::Purged
                | Outcome::FunctionDropped
                | Outcome::TimedOut
                | Outcome::Dropped { .. }
                | Outcome::Dead { .. }
        )
    }
}

/// How one attempt at a job failed, as a retry policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The worker sent WORK_FAIL.
    Fail,
    /// The worker sent WORK_EXCEPTION with this text.
    Exception(Bytes),
    /// Its run limit (the policy's `timeout` or CAN_DO_TIMEOUT) expired.
    TimedOut,
    /// The worker left (or said CANT_DO or RESET_ABILITIES) while it held
    /// the job.
    WorkerLost,
}

impl Failure {
    /// The policy's name for it (`retry_on`).
    pub fn reason(&self) -> crate::policy::RetryReason {
        use crate::policy::RetryReason;
        match self {
            Failure::Fail => RetryReason::Fail,
            Failure::Exception(_) => RetryReason::Exception,
            Failure::TimedOut => RetryReason::Timeout,
            Failure::WorkerLost => RetryReason::WorkerLost,
        }
    }

    /// The record's name for how the attempt ended.
    pub fn attempt_end(&self) -> sprocket_records::AttemptEnd {
        use sprocket_records::AttemptEnd as End;
        match self {
            Failure::Fail => End::Failed,
            Failure::Exception(_) => End::Exception,
            Failure::TimedOut => End::Timeout,
            Failure::WorkerLost => End::WorkerLost,
        }
    }

    /// The worker's error text, if it sent one.
    pub fn error(&self) -> Option<&Bytes> {
        match self {
            Failure::Exception(text) => Some(text),
            _ => None,
        }
    }
}

impl From<AttemptEnd> for Failure {
    fn from(end: AttemptEnd) -> Failure {
        match end {
            AttemptEnd::WorkerLost => Failure::WorkerLost,
            AttemptEnd::TimedOut => Failure::TimedOut,
        }
    }
}

/// Why one attempt at a job ended without a result. The job may go back
/// to its queue for another attempt, or end (see [`Outcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    /// The worker holding it left, or said CANT_DO or RESET_ABILITIES.
    WorkerLost,
    /// Its CAN_DO_TIMEOUT limit expired.
    TimedOut,
}
