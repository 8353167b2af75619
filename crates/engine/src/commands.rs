//! Operator commands with typed results: cancel a job, drop a function,
//! set queue limits, create a function, stop the server. The admin text
//! protocol (`admin.rs`) and the server's command channel both call these
//! and render the results in their own way.

use bytes::Bytes;

use crate::engine::Engine;
use crate::job::JobState;
use crate::types::{FnId, JobNo, ShutdownRequest};

/// Why an operator command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// No job has that handle.
    UnknownJob,
    /// No function has that name.
    FunctionNotFound,
    /// The function still has workers or running jobs.
    FunctionBusy,
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CommandError::UnknownJob => "no job has that handle",
            CommandError::FunctionNotFound => "no function has that name",
            CommandError::FunctionBusy => "the function still has workers or running jobs",
        })
    }
}

impl std::error::Error for CommandError {}

impl Engine {
    /// Cancels a job: its clients get WORK_FAIL and its row is deleted. A
    /// queued job is removed; a running one finishes with nobody listening.
    pub fn cancel_job(&mut self, handle: &[u8]) -> Result<(), CommandError> {
        let job_no = self.job_by_handle(handle).ok_or(CommandError::UnknownJob)?;
        self.fail_to_clients(job_no);
        let running = self.jobs.get(&job_no).is_some_and(|j| j.is_running());
        if running {
            // The worker may still finish it, but the job is over: its row
            // goes now, or a crash before the worker ends would bring it back.
            self.delete_row(job_no);
            // Nobody may join a cancelled job (one whose clients merely
            // left can be joined; see `coalesce_target`).
            if let Some((f, unique, data)) = self.jobs.get(&job_no).map(|j| (j.function, j.unique(), j.data())) {
                self.unindex(f, job_no, &unique, data);
            }
            let clients = self.jobs.get_mut(&job_no).map(|j| {
                j.ignore = true;
                std::mem::take(&mut j.clients)
            });
            for c in clients.unwrap_or_default() {
                if let Some(conn) = self.conns.get_mut(&c) {
                    conn.waiting.retain(|&x| x != job_no);
                }
            }
        } else {
            self.end_job(job_no);
        }
        Ok(())
    }

    /// Drops a function (name matched case-insensitively, as gearmand
    /// does) with its queued jobs, unless workers or running jobs remain.
    pub fn drop_function(&mut self, name: &[u8]) -> Result<(), CommandError> {
        let f = self
            .functions
            .iter()
            .enumerate()
            .find_map(|(i, f)| f.as_ref().filter(|f| f.name.eq_ignore_ascii_case(name)).map(|_| i as FnId))
            .ok_or(CommandError::FunctionNotFound)?;
        let busy = self.function(f).is_some_and(|func| func.workers > 0 || func.running > 0);
        if busy {
            return Err(CommandError::FunctionBusy);
        }
        let mut doomed: Vec<JobNo> = self.jobs.values().filter(|j| j.function == f).map(|j| j.no).collect();
        doomed.sort_unstable();
        for job_no in doomed {
            if self.jobs.get(&job_no).is_some_and(|j| j.state != JobState::Queued && j.state != JobState::Scheduled) {
                continue;
            }
            self.fail_to_clients(job_no);
            self.end_job(job_no);
        }
        if let Some(func) = self.functions.get_mut(f as usize).and_then(Option::take) {
            self.fn_index.remove(&func.name);
        }
        Ok(())
    }

    /// Sets a function's queue limits per priority (high, normal, low; 0
    /// means none). Returns whether the function exists: an unknown one is
    /// left alone (gearmand answers OK and does nothing).
    pub fn set_max_queue(&mut self, function: &[u8], limits: [u32; 3]) -> bool {
        let Some(&f) = self.fn_index.get(function) else { return false };
        match self.function_mut(f) {
            Some(func) => {
                func.max_queue = limits;
                true
            }
            None => false,
        }
    }

    /// Makes a function known (no-op when it is).
    pub fn create_function(&mut self, name: &Bytes) {
        self.function_id(name);
    }

    /// Asks the server to stop: the request is handed over in the outbox.
    pub fn request_shutdown(&mut self, request: ShutdownRequest) {
        self.out.shutdown = Some(request);
    }
}
