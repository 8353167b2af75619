//! Where a job is in its life ([`RecordState`]), how one attempt at it ended
//! ([`AttemptEnd`]) and how the whole job ended ([`Outcome`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The state of a job as its record shows it.
///
/// `Queued` and `Running` are live states; every other state except
/// `Retrying` is final: the record no longer changes once it is in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordState {
    /// Waiting in its function's queue (also a scheduled job not yet due).
    Queued,
    /// Assigned to a worker.
    Running,
    /// Waiting out its backoff after a failed attempt, before the next
    /// (its function's policy retries it).
    Retrying,
    /// The worker sent WORK_COMPLETE.
    Complete,
    /// The worker sent WORK_FAIL.
    Failed,
    /// The worker sent WORK_EXCEPTION.
    Exception,
    /// Cancelled by an operator (admin `cancel job`) or by the server.
    Cancelled,
    /// The worker overran its CAN_DO_TIMEOUT and the job was failed for it.
    Timeout,
    /// Given up after `--job-retries` attempts ended without a result.
    Dropped,
    /// Out of attempts under a policy with dead letters: kept, with its
    /// workload, until an operator requeues or purges it (or
    /// `--dead-retention` passes). The one final state a record leaves again
    /// (when requeued).
    Dead,
}

impl RecordState {
    /// Every state, live ones first.
    pub const ALL: [RecordState; 10] = [
        RecordState::Queued,
        RecordState::Running,
        RecordState::Retrying,
        RecordState::Complete,
        RecordState::Failed,
        RecordState::Exception,
        RecordState::Cancelled,
        RecordState::Timeout,
        RecordState::Dropped,
        RecordState::Dead,
    ];

    /// Whether the job has ended: its record will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(self, RecordState::Queued | RecordState::Running | RecordState::Retrying)
    }

    /// The lowercase name used in JSON, admin text and command-line filters.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Queued => "queued",
            RecordState::Running => "running",
            RecordState::Retrying => "retrying",
            RecordState::Complete => "complete",
            RecordState::Failed => "failed",
            RecordState::Exception => "exception",
            RecordState::Cancelled => "cancelled",
            RecordState::Timeout => "timeout",
            RecordState::Dropped => "dropped",
            RecordState::Dead => "dead",
        }
    }

    /// The one-byte code of the storage encoding. Codes are never reused.
    pub(crate) fn code(self) -> u8 {
        match self {
            RecordState::Queued => 0,
            RecordState::Running => 1,
            RecordState::Retrying => 2,
            RecordState::Complete => 3,
            RecordState::Failed => 4,
            RecordState::Exception => 5,
            RecordState::Cancelled => 6,
            RecordState::Timeout => 7,
            RecordState::Dropped => 8,
            RecordState::Dead => 9,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<RecordState> {
        RecordState::ALL.into_iter().find(|state| state.code() == code)
    }
}

impl fmt::Display for RecordState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`RecordState::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state {0:?} (expected one of queued, running, retrying, complete, failed, exception, cancelled, timeout, dropped, dead)")]
pub struct UnknownState(pub String);

impl FromStr for RecordState {
    type Err = UnknownState;

    fn from_str(name: &str) -> Result<RecordState, UnknownState> {
        RecordState::ALL.into_iter().find(|state| state.as_str() == name).ok_or_else(|| UnknownState(name.to_owned()))
    }
}

/// How one attempt (one assignment of the job to a worker) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptEnd {
    /// The worker sent WORK_COMPLETE.
    Completed,
    /// The worker sent WORK_FAIL.
    Failed,
    /// The worker sent WORK_EXCEPTION.
    Exception,
    /// The worker overran its CAN_DO_TIMEOUT.
    Timeout,
    /// The worker's connection closed while it held the job.
    WorkerLost,
    /// The job was cancelled while the worker held it.
    Cancelled,
    /// The server stopped while the worker held the job; the job was queued
    /// again when the server started.
    Interrupted,
}

impl AttemptEnd {
    /// Every way an attempt can end.
    pub const ALL: [AttemptEnd; 7] = [
        AttemptEnd::Completed,
        AttemptEnd::Failed,
        AttemptEnd::Exception,
        AttemptEnd::Timeout,
        AttemptEnd::WorkerLost,
        AttemptEnd::Cancelled,
        AttemptEnd::Interrupted,
    ];

    /// The snake_case name used in JSON and admin text.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptEnd::Completed => "completed",
            AttemptEnd::Failed => "failed",
            AttemptEnd::Exception => "exception",
            AttemptEnd::Timeout => "timeout",
            AttemptEnd::WorkerLost => "worker_lost",
            AttemptEnd::Cancelled => "cancelled",
            AttemptEnd::Interrupted => "interrupted",
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            AttemptEnd::Completed => 0,
            AttemptEnd::Failed => 1,
            AttemptEnd::Exception => 2,
            AttemptEnd::Timeout => 3,
            AttemptEnd::WorkerLost => 4,
            AttemptEnd::Cancelled => 5,
            AttemptEnd::Interrupted => 6,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<AttemptEnd> {
        AttemptEnd::ALL.into_iter().find(|end| end.code() == code)
    }
}

impl AttemptEnd {
    /// Whether the attempt failed (counts towards a policy's
    /// `max_attempts`): not completed, cancelled or cut short by a restart.
    pub fn is_failure(self) -> bool {
        matches!(self, AttemptEnd::Failed | AttemptEnd::Exception | AttemptEnd::Timeout | AttemptEnd::WorkerLost)
    }
}

impl fmt::Display for AttemptEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a job ended, with the payload that came with the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// WORK_COMPLETE with this result.
    Complete(&'a [u8]),
    /// WORK_FAIL.
    Failed,
    /// WORK_EXCEPTION with this text.
    Exception(&'a [u8]),
    /// Cancelled (admin `cancel job`).
    Cancelled,
    /// Failed for overrunning CAN_DO_TIMEOUT (`--timeout-action fail`).
    Timeout,
    /// Given up after `--job-retries` attempts.
    Dropped,
    /// Out of attempts under a policy with dead letters: the last attempt
    /// ended as `end`, with the worker's `error` text if any; `payload` is
    /// the job's workload, kept for a requeue.
    Dead {
        /// How the last attempt ended.
        end: AttemptEnd,
        /// Its error text (WORK_EXCEPTION), if any.
        error: Option<&'a [u8]>,
        /// The job's workload.
        payload: &'a [u8],
    },
}

impl Outcome<'_> {
    /// The final state this outcome puts a record in.
    pub fn state(self) -> RecordState {
        match self {
            Outcome::Complete(_) => RecordState::Complete,
            Outcome::Failed => RecordState::Failed,
            Outcome::Exception(_) => RecordState::Exception,
            Outcome::Cancelled => RecordState::Cancelled,
            Outcome::Timeout => RecordState::Timeout,
            Outcome::Dropped => RecordState::Dropped,
            Outcome::Dead { .. } => RecordState::Dead,
        }
    }

    /// How an attempt still open when the job ends is closed. A job is
    /// dropped when an attempt ends without a result one time too many; the
    /// caller closes that attempt with its real cause (timeout or worker
    /// lost) first, and an attempt still open at that point is counted as
    /// lost.
    pub fn attempt_end(self) -> AttemptEnd {
        match self {
            Outcome::Complete(_) => AttemptEnd::Completed,
            Outcome::Failed => AttemptEnd::Failed,
            Outcome::Exception(_) => AttemptEnd::Exception,
            Outcome::Cancelled => AttemptEnd::Cancelled,
            Outcome::Timeout => AttemptEnd::Timeout,
            Outcome::Dropped => AttemptEnd::WorkerLost,
            Outcome::Dead { end, .. } => end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_and_final_states() {
        let live: Vec<_> = RecordState::ALL.into_iter().filter(|s| !s.is_final()).collect();
        assert_eq!(live, [RecordState::Queued, RecordState::Running, RecordState::Retrying]);
        for outcome in [
            Outcome::Complete(b"r"),
            Outcome::Failed,
            Outcome::Exception(b"e"),
            Outcome::Cancelled,
            Outcome::Timeout,
            Outcome::Dropped,
            Outcome::Dead { end: crate::state::AttemptEnd::Exception, error: Some(b"e"), payload: b"work" },
            Outcome::Dead { end: crate::state::AttemptEnd::Failed, error: None, payload: b"work" },
        ] {
            assert!(outcome.state().is_final(), "{outcome:?}");
        }
    }

    #[test]
    fn names_and_codes_round_trip() {
        for state in RecordState::ALL {
            assert_eq!(state.as_str().parse::<RecordState>(), Ok(state));
            assert_eq!(RecordState::from_code(state.code()), Some(state));
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{state}\""));
        }
        for end in AttemptEnd::ALL {
            assert_eq!(AttemptEnd::from_code(end.code()), Some(end));
            assert_eq!(serde_json::to_string(&end).unwrap(), format!("\"{end}\""));
        }
        assert_eq!(RecordState::from_code(200), None);
        let err = "done".parse::<RecordState>().unwrap_err();
        assert!(err.to_string().contains("unknown job state \"done\""), "{err}");
    }
}
