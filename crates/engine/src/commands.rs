//! Operator commands with typed results: cancel a job, drop a function,
//! set queue limits, create a function, pause, resume or purge one,
//! stop the server. The admin text
//! protocol (`admin.rs`) and the server's command channel both call these
//! and render the results in their own way.

use bytes::Bytes;

use crate::engine::Engine;
use crate::types::ShutdownRequest;

/// Why an operator command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// No job has that handle.
    UnknownJob,
    /// No function has that name.
    FunctionNotFound,
    /// The function still has workers or running jobs.
    FunctionBusy,
    /// The name is one of the server's own `sprocket.*` functions, which
    /// cannot be paused.
    ReservedFunction,
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CommandError::UnknownJob => "no job has that handle",
            CommandError::FunctionNotFound => "no function has that name",
            CommandError::FunctionBusy => "the function still has workers or running jobs",
            CommandError::ReservedFunction => "sprocket.* functions are the server's own and cannot be paused",
        })
    }
}

impl std::error::Error for CommandError {}

impl Engine {
    /// Cancels a job: its clients get WORK_FAIL and its row is deleted. A
    /// queued job is removed; a running one finishes with nobody listening.
    pub fn cancel_job(&mut self, handle: &[u8]) -> Result<(), CommandError> {
        let job_no = self.job_by_handle(handle).ok_or(CommandError::UnknownJob)?;
        self.cancel(job_no);
        Ok(())
    }

    /// Drops a function (name matched case-insensitively, as gearmand
    /// does) with its queued jobs, unless workers or running jobs remain.
    pub fn drop_function(&mut self, name: &[u8]) -> Result<(), CommandError> {
        let f = self.function_table().find_ignore_case(name).ok_or(CommandError::FunctionNotFound)?;
        let busy = self.function(f).is_some_and(|func| func.workers() > 0 || func.running() > 0);
        if busy {
            return Err(CommandError::FunctionBusy);
        }
        self.remove_function(f);
        Ok(())
    }

    /// Sets a function's queue limits per priority (high, normal, low; 0
    /// means none). Returns whether the function exists: an unknown one is
    /// left alone (gearmand answers OK and does nothing).
    pub fn set_max_queue(&mut self, function: &[u8], limits: [u32; 3]) -> bool {
        let exists = self.function_table().id_of(function).is_some();
        self.set_queue_limits(function, limits);
        exists
    }

    /// Pauses function `name` at once (made if unknown): its jobs keep
    /// queueing but are not handed out. When settings are kept in the
    /// store, returns the id of the write that makes the pause durable;
    /// the server reports it with [`Engine::setting_write_done`].
    pub fn pause_function(&mut self, name: &[u8]) -> Result<Option<u64>, CommandError> {
        self.set_paused(name, true)
    }

    /// Resumes function `name`: its queued jobs are handed out again and
    /// its sleeping workers woken. Returns the id of the store write as
    /// [`Engine::pause_function`] does.
    pub fn resume_function(&mut self, name: &[u8]) -> Result<Option<u64>, CommandError> {
        self.set_paused(name, false)
    }

    /// Ends every queued and scheduled (not running) job of function
    /// `name`, exact name: their clients get WORK_FAIL and their rows are
    /// deleted. Returns how many.
    pub fn purge_queued(&mut self, name: &[u8]) -> Result<usize, CommandError> {
        self.purge(name)
    }

    /// Makes a function known (no-op when it is).
    pub fn create_function(&mut self, name: &Bytes) {
        self.function_id(name);
    }

    /// Asks the server to stop: the request is handed over in the outbox.
    pub fn request_shutdown(&mut self, request: ShutdownRequest) {
        self.outbox().shutdown = Some(request);
    }
}
