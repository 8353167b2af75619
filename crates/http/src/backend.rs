//! What the web port needs from the server: the engine's views and its
//! operator commands. The server implements this with its query and
//! command channel; the web crate depends only on the view types.

use bytes::Bytes;
use sprocket_engine::cron::{CronError, CronSpec, CronView};
use sprocket_engine::policy::PolicyEntry;
use sprocket_engine::{CommandError, FunctionView, JobFilter, JobView, Record, RecordFilter, ServerInfo, WorkerView};
use sprocket_records::{Counts, HistoryView, Series, Window};

/// The server stopped before it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is stopping")]
pub struct Unavailable;

/// Why a pause or resume did not fully succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PauseError {
    /// The engine refused it (an unknown or reserved function).
    Refused(CommandError),
    /// It is in force, but the store could not save it.
    NotSaved(String),
}

/// The server keeps no per-function history (started with
/// `--no-history`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server keeps no history: it was started with --no-history; start it without that flag")]
pub struct HistoryOff;

/// Why a cron entry change did not fully succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronChangeError {
    /// The engine refused it (a name in use, no such entry, an entry from
    /// the policy file).
    Refused(CronError),
    /// It is in force, but the store could not save it.
    NotSaved(String),
}

/// The engine, as the web port reaches it.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The server as a whole.
    async fn server_info(&self) -> Result<ServerInfo, Unavailable>;
    /// Every function, sorted by name.
    async fn functions(&self) -> Result<Vec<FunctionView>, Unavailable>;
    /// The retry policy in force for each function that has one, by name.
    async fn function_policies(&self) -> Result<Vec<(Bytes, PolicyEntry)>, Unavailable>;
    /// Every connection, newest first.
    async fn workers(&self) -> Result<Vec<WorkerView>, Unavailable>;
    /// The jobs the filter selects, oldest first.
    async fn jobs(&self, filter: JobFilter) -> Result<Vec<JobView>, Unavailable>;
    /// One job by handle.
    async fn job(&self, handle: Bytes) -> Result<Option<JobView>, Unavailable>;
    /// The record of one job, live or ended; the error says why the store
    /// could not be read.
    async fn record(&self, handle: Bytes) -> Result<Result<Option<Record>, String>, Unavailable>;
    /// Ended records matching the filter, newest end first.
    async fn records(&self, filter: RecordFilter) -> Result<Result<Vec<Record>, String>, Unavailable>;
    /// What `/metrics` shows besides the engine's views.
    async fn telemetry(&self) -> Result<crate::metrics::Telemetry, Unavailable>;
    /// Cancels a job.
    async fn cancel(&self, handle: Bytes) -> Result<Result<(), CommandError>, Unavailable>;
    /// Drops a function with its queued jobs.
    async fn drop_function(&self, name: Bytes) -> Result<Result<(), CommandError>, Unavailable>;
    /// Sets a function's queue limits (high, normal, low); answers whether
    /// the function exists.
    async fn max_queue(&self, function: Bytes, limits: [u32; 3]) -> Result<bool, Unavailable>;
    /// Pauses (`paused`) or resumes a function; answered once the change is
    /// durable where the store keeps settings.
    async fn set_paused(&self, name: Bytes, paused: bool) -> Result<Result<(), PauseError>, Unavailable>;
    /// Ends a function's queued and scheduled jobs; answers how many.
    async fn purge_queued(&self, name: Bytes) -> Result<Result<usize, CommandError>, Unavailable>;
    /// Deletes the records of dead jobs (of one function, or all); answers
    /// how many once the deletes are committed, or why the store could not.
    async fn purge_dead(&self, function: Option<Bytes>) -> Result<Result<u64, String>, Unavailable>;
    /// Every cron entry with its next run, by name.
    async fn cron_entries(&self) -> Result<Vec<CronView>, Unavailable>;
    /// Adds a run-time cron entry; answered once it is durable.
    async fn cron_add(&self, spec: CronSpec) -> Result<Result<(), CronChangeError>, Unavailable>;
    /// Removes a run-time cron entry; answered once that is durable.
    async fn cron_remove(&self, name: String) -> Result<Result<(), CronChangeError>, Unavailable>;
    /// Submits one job for a cron entry now; the job's handle.
    async fn cron_run(&self, name: String) -> Result<Result<Bytes, CronError>, Unavailable>;
    /// Every slot of a history window, for one function or summed over
    /// all. A backend without a history answers that it keeps none.
    async fn history_series(
        &self,
        _function: Option<Bytes>,
        _window: Window,
    ) -> Result<Result<Series, HistoryOff>, Unavailable> {
        Ok(Err(HistoryOff))
    }
    /// Every function's counts of ended jobs over one window, by name. A
    /// backend without a history answers that it keeps none.
    async fn history_counts(&self, _window: Window) -> Result<Result<Vec<(Bytes, Counts)>, HistoryOff>, Unavailable> {
        Ok(Err(HistoryOff))
    }
    /// One function's totals and percentiles per window; `None` when
    /// nothing of it ended in the last week.
    async fn function_history(&self, _name: Bytes) -> Result<Result<Option<HistoryView>, HistoryOff>, Unavailable> {
        Ok(Err(HistoryOff))
    }
}
