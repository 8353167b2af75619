//! What the server is told about each ended job when it asked for it (for
//! the job log and the per-function history), and the timing a job carries
//! for that report.
//!
//! Nothing here exists unless [`crate::Config::report_ended_jobs`] is set:
//! without it no job carries a [`JobLife`] and no [`EndedJob`] is built.

use std::sync::Arc;

use bytes::Bytes;
use sprocket_proto::Priority;

use crate::outcome::Outcome;
use crate::types::Millis;

/// The worker connection an attempt ran on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptWorker {
    /// Its SET_CLIENT_ID, `-` when it set none (as admin `workers` shows it).
    pub client_id: Bytes,
    /// Its peer address, as admin `workers` shows it.
    pub peer: Arc<str>,
}

/// The times and workers of one job, kept while it lives (in the job's
/// boxed extra fields, so that jobs stay small when nobody asked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobLife {
    /// When it was submitted (for a replayed job: when it was replayed).
    pub submitted: Millis,
    /// When a worker first took it.
    pub first_started: Option<Millis>,
    /// When the latest attempt started.
    pub attempt_started: Option<Millis>,
    /// How many times a worker took it.
    pub starts: u32,
    /// The latest attempt's worker.
    pub worker: Option<AttemptWorker>,
}

/// A job that ended, as the server's job log and history need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedJob {
    /// Its handle.
    pub handle: Bytes,
    /// Its function name.
    pub function: Bytes,
    /// Its unique (empty when the client gave none).
    pub unique: Bytes,
    /// Its priority.
    pub priority: Priority,
    /// Whether it was a background job.
    pub background: bool,
    /// How it ended. A [`Outcome::Completed`] result is empty unless
    /// [`crate::Config::ended_job_results`] is set.
    pub outcome: Outcome,
    /// How many times a worker took it.
    pub attempts: u32,
    /// When it was submitted (replayed jobs: when they were replayed).
    pub submitted: Millis,
    /// When a worker first took it; `None` when it never ran.
    pub first_started: Option<Millis>,
    /// When its latest attempt started; `None` when it never ran.
    pub attempt_started: Option<Millis>,
    /// When it ended.
    pub ended: Millis,
    /// The latest attempt's worker; `None` when it never ran.
    pub worker: Option<AttemptWorker>,
}
