//! Results from workers, and the end or return of a job.

use bytes::Bytes;
use sprocket_proto::response::parse_decimal;
use sprocket_proto::Response;

use crate::engine::Engine;
use crate::job::JobState;
use crate::types::*;

impl Engine {
    /// The job this worker holds under `handle`, or an ERROR to the worker.
    fn held_job(&mut self, conn: ConnId, handle: &[u8], not_found_text: &'static str) -> Option<JobNo> {
        let found = self
            .job_by_handle(handle)
            .filter(|no| self.jobs.get(no).is_some_and(|j| j.state == JobState::Running(conn)));
        if found.is_none() {
            self.send_packet(conn, Response::error("JOB_NOT_FOUND", not_found_text));
        }
        found
    }

    /// Foreground clients that should hear about a job.
    fn listeners(&self, job_no: JobNo) -> Vec<ConnId> {
        match self.jobs.get(&job_no) {
            Some(job) if !job.ignore => job.clients.clone(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn work_status(&mut self, conn: ConnId, handle: Bytes, numerator: Bytes, denominator: Bytes) {
        let Some(job_no) = self.held_job(conn, &handle, "Job given in work result not found") else { return };
        // The numbers are kept for GET_STATUS as 32-bit values, as gearmand
        // keeps them; larger ones are refused rather than stored wrong.
        let (Ok(num), Ok(den)) = (u32::try_from(parse_decimal(&numerator)), u32::try_from(parse_decimal(&denominator)))
        else {
            self.send_packet(
                conn,
                Response::error("ARGUMENT_TOO_LARGE", "WORK_STATUS numerator and denominator must be below 2^32"),
            );
            return;
        };
        if let Some(job) = self.jobs.get_mut(&job_no) {
            job.numerator = num;
            job.denominator = den;
        }
        let handle = self.jobs.get(&job_no).map(|j| j.handle()).unwrap_or(handle);
        for client in self.listeners(job_no) {
            let resp = Response::WorkStatus {
                handle: handle.clone(),
                numerator: numerator.clone(),
                denominator: denominator.clone(),
            };
            self.send_packet(client, resp);
        }
    }

    pub(crate) fn work_forward(&mut self, conn: ConnId, handle: Bytes, data: Bytes, warning: bool) {
        let Some(job_no) = self.held_job(conn, &handle, "Job does not exist on server") else { return };
        let handle = self.jobs.get(&job_no).map(|j| j.handle()).unwrap_or(handle);
        for client in self.listeners(job_no) {
            let (handle, data) = (handle.clone(), data.clone());
            let resp =
                if warning { Response::WorkWarning { handle, data } } else { Response::WorkData { handle, data } };
            self.send_packet(client, resp);
        }
    }

    pub(crate) fn work_complete(&mut self, conn: ConnId, handle: Bytes, data: Bytes) {
        let Some(job_no) = self.held_job(conn, &handle, "Job given in work result not found") else { return };
        let handle = self.jobs.get(&job_no).map(|j| j.handle()).unwrap_or(handle);
        for client in self.listeners(job_no) {
            self.send_packet(client, Response::WorkComplete { handle: handle.clone(), data: data.clone() });
        }
        self.finish(conn, job_no);
    }

    pub(crate) fn work_fail(&mut self, conn: ConnId, handle: Bytes) {
        if handle.len() >= MAX_HANDLE {
            self.send_packet(
                conn,
                Response::error(
                    "ARGUMENT_TOO_LARGE",
                    "Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf",
                ),
            );
            return;
        }
        let Some(job_no) = self.held_job(conn, &handle, "Job given in work result not found") else { return };
        self.fail_to_clients(job_no);
        self.finish(conn, job_no);
    }

    pub(crate) fn work_exception(&mut self, conn: ConnId, handle: Bytes, data: Bytes) {
        let Some(job_no) = self.held_job(conn, &handle, "An exception was received for a job that does not exist")
        else {
            return;
        };
        let handle = self.jobs.get(&job_no).map(|j| j.handle()).unwrap_or(handle);
        for client in self.listeners(job_no) {
            let wants = self.conns.get(&client).is_some_and(|c| c.exceptions);
            // Clients without exceptions get a plain WORK_FAIL (without the
            // trailing NUL gearmand adds, which libgearman cannot match).
            let resp = if wants {
                Response::WorkException { handle: handle.clone(), data: data.clone() }
            } else {
                Response::WorkFail { handle: handle.clone() }
            };
            self.send_packet(client, resp);
        }
        self.finish(conn, job_no);
    }

    /// Sends WORK_FAIL to every listener of a job.
    pub(crate) fn fail_to_clients(&mut self, job_no: JobNo) {
        let Some(handle) = self.jobs.get(&job_no).map(|j| j.handle()) else { return };
        for client in self.listeners(job_no) {
            self.send_packet(client, Response::WorkFail { handle: handle.clone() });
        }
    }

    /// A worker reported a final result.
    fn finish(&mut self, worker: ConnId, job_no: JobNo) {
        if let Some(c) = self.conns.get_mut(&worker) {
            c.running.retain(|&j| j != job_no);
        }
        self.end_job(job_no);
    }

    /// A job ended for good: delete its row, forget it everywhere.
    pub(crate) fn end_job(&mut self, job_no: JobNo) {
        self.delete_row(job_no);
        self.remove_job(job_no);
    }

    /// Deletes the job's store row, if it has one (once: the job is no
    /// longer persisted afterwards). With `--store-queue-on-shutdown` only
    /// replayed jobs have a row while the server runs (gearmand 1.1.20
    /// deletes it when they end, so a crash after a restart still finds
    /// the jobs that had not run).
    pub(crate) fn delete_row(&mut self, job_no: JobNo) {
        let Some(job) = self.jobs.get(&job_no) else { return };
        let has_row = match self.config.persist {
            PersistMode::Immediate => true,
            PersistMode::OnShutdown => job.replayed_row,
            PersistMode::None => false,
        };
        if !(job.persisted && has_row) {
            return;
        }
        let op = self.row_delete(job);
        let pending = job.pending_seq;
        self.persist(op);
        if pending != 0 {
            // Its insert may still be in flight; either way the job is
            // done, so its submitter can be answered with success, now
            // rather than when the store reports the insert.
            self.pending_inserts.remove(&pending);
            self.done_early.insert(pending);
        }
        if let Some(job) = self.jobs.get_mut(&job_no) {
            job.persisted = false;
            job.pending_seq = 0;
        }
    }

    /// Removes a job from every index without touching the store.
    pub(crate) fn remove_job(&mut self, job_no: JobNo) {
        let Some(job) = self.jobs.remove(&job_no) else { return };
        let f = job.function;
        if let Some(func) = self.function_mut(f) {
            func.total = func.total.saturating_sub(1);
            match job.state {
                JobState::Running(_) => func.running = func.running.saturating_sub(1),
                JobState::Queued | JobState::Scheduled => {
                    func.queued[job.priority.index()] = func.queued[job.priority.index()].saturating_sub(1)
                }
            }
        }
        self.unindex(f, job_no, job.unique_bytes(), job.data());
        if let JobState::Running(worker) = job.state {
            if let Some(c) = self.conns.get_mut(&worker) {
                c.running.retain(|&j| j != job_no);
            }
        }
        for client in job.clients {
            if let Some(c) = self.conns.get_mut(&client) {
                c.waiting.retain(|&j| j != job_no);
            }
        }
    }

    /// Takes job `job_no` of function `f` (with this unique and data) out
    /// of the unique (or `-` data) index, so that no new submission joins it.
    pub(crate) fn unindex(&mut self, f: FnId, job_no: JobNo, unique: &[u8], data: Bytes) {
        if unique == b"-" && !data.is_empty() {
            let key = (f, data);
            if self.by_data.get(&key) == Some(&job_no) {
                self.by_data.remove(&key);
            }
        } else if !unique.is_empty() {
            self.by_unique.remove(f, unique, job_no);
        }
    }

    /// The worker holding a job went away (closed, CANT_DO, reset).
    pub(crate) fn worker_lost_job(&mut self, job_no: JobNo) {
        let Some(job) = self.jobs.get(&job_no) else { return };
        if job.ignore {
            self.end_job(job_no);
            return;
        }
        self.requeue_or_drop(job_no);
    }

    /// Counts a failed attempt; requeues at the tail of its level unless
    /// `--job-retries` is used up, in which case the job fails.
    pub(crate) fn requeue_or_drop(&mut self, job_no: JobNo) {
        let limit = self.config.job_retries;
        let Some(job) = self.jobs.get_mut(&job_no) else { return };
        job.attempts = job.attempts.saturating_add(1);
        if limit != 0 && job.attempts >= limit {
            tracing::info!(handle = %String::from_utf8_lossy(job.handle_bytes()), attempts = job.attempts, "dropped job due to max retry count");
            self.fail_to_clients(job_no);
            self.end_job(job_no);
            return;
        }
        job.state = JobState::Queued;
        job.numerator = 0;
        job.denominator = 0;
        let (f, p) = (job.function, job.priority);
        if let Some(func) = self.function_mut(f) {
            func.running = func.running.saturating_sub(1);
            func.queued[p.index()] += 1;
            func.queues[p.index()].push_back(job_no);
        }
        self.wake_workers(f);
    }

    /// A foreground client went away: a job nobody listens to any more is
    /// dropped if queued, or finishes silently if running. Background jobs
    /// are never abandoned (gearmand's Q8 bug cancelled them).
    pub(crate) fn detach_client(&mut self, job_no: JobNo, conn: ConnId) {
        let Some(job) = self.jobs.get_mut(&job_no) else { return };
        job.clients.retain(|&c| c != conn);
        if !job.clients.is_empty() || job.background {
            return;
        }
        match job.state {
            JobState::Running(_) => job.ignore = true,
            JobState::Queued | JobState::Scheduled => self.remove_job(job_no),
        }
    }
}
