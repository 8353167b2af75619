//! The end of a job and the end of an attempt at it.
//!
//! Every job ends through [`Engine::finish_job`], told how it ended: it
//! tells the clients, deletes the job's store row and forgets the job.
//! Every attempt that ends without a result (the worker left, the time
//! limit expired) goes through [`Engine::end_attempt`], which decides
//! between another attempt and the job's end.

use bytes::Bytes;
use sprocket_proto::Response;

use crate::engine::Engine;
use crate::job::{Job, JobState};
use crate::outcome::{AttemptEnd, Failure, Outcome};
use crate::types::*;

impl Engine {
    /// Job `job_no` ended as `outcome`: its listening clients are told, its
    /// store row is deleted, and it is forgotten everywhere. A job cancelled
    /// while a worker holds it stays in the table, ended and unlisted, until
    /// that worker lets go of it (its worker may still send a result, and
    /// `status` counts it running until then). A job that already ended is
    /// only removed: it ends once.
    pub(crate) fn finish_job(&mut self, job_no: JobNo, outcome: Outcome) {
        let Some(job) = self.jobs.get(job_no) else { return };
        if job.ended {
            self.remove_job(job_no);
            return;
        }
        let running = job.is_running();
        self.functions.count_end(job.function, &outcome);
        self.close_record(job_no, &outcome);
        if matches!(outcome, Outcome::Cancelled) && running {
            self.delete_row(job_no);
            self.keep_for_worker(job_no, &outcome);
            return;
        }
        self.delete_row(job_no);
        if let Some(job) = self.remove_job(job_no) {
            if !job.ignore {
                self.tell_clients(job.handle(), &job.clients, &outcome);
            }
        }
    }

    /// Sends each of `clients` the packet for `outcome` of the job with
    /// this handle (nothing for outcomes no client hears of).
    fn tell_clients(&mut self, handle: Bytes, clients: &[ConnId], outcome: &Outcome) {
        for &client in clients {
            let resp = match outcome {
                Outcome::Completed { result } => {
                    Response::WorkComplete { handle: handle.clone(), data: result.clone() }
                }
                // Clients without exceptions get a plain WORK_FAIL (without
                // the trailing NUL gearmand adds, which libgearman cannot
                // match).
                Outcome::Exception { text } if self.conns.get(client).is_some_and(|c| c.exceptions) => {
                    Response::WorkException { handle: handle.clone(), data: text.clone() }
                }
                Outcome::Exception { .. } => Response::WorkFail { handle: handle.clone() },
                // A dead letter's clients hear how its last attempt ended.
                Outcome::Dead { last: Failure::Exception(text) }
                    if self.conns.get(client).is_some_and(|c| c.exceptions) =>
                {
                    Response::WorkException { handle: handle.clone(), data: text.clone() }
                }
                other if other.tells_clients_failed() => Response::WorkFail { handle: handle.clone() },
                _ => return,
            };
            self.send_packet(client, resp);
        }
    }

    /// A job cancelled while a worker holds it: its clients are told, and
    /// then nobody hears of it or joins it any more, and its clients stop
    /// waiting for it.
    fn keep_for_worker(&mut self, job_no: JobNo, outcome: &Outcome) {
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        let listening = !job.ignore;
        job.ignore = true;
        job.ended = true;
        let clients = std::mem::take(&mut job.clients);
        let (f, handle, unique, data) = (job.function, job.handle(), job.unique(), job.data());
        if listening {
            self.tell_clients(handle, &clients, outcome);
        }
        self.coalesce.remove(f, job_no, &unique, data);
        for c in clients {
            self.conns.stop_waiting(c, job_no);
        }
    }

    /// An attempt at job `job_no` ended without a result. The worker lets
    /// go of it; then the job ends if it already had (cancelled), if nobody
    /// wants it any more, or if time limits fail jobs; otherwise it is
    /// tried again if its attempts allow.
    pub(crate) fn end_attempt(&mut self, job_no: JobNo, why: AttemptEnd) {
        let Some(job) = self.jobs.get(job_no) else { return };
        let JobState::Running(worker) = job.state() else { return };
        let (ended, ignored) = (job.ended, job.ignore);
        self.conns.stop_running(worker, job_no);
        if ended {
            self.remove_job(job_no);
            return;
        }
        if self.policy_decides(job_no, why.into()) {
            return;
        }
        self.record_attempt_ended(job_no, why);
        match why {
            AttemptEnd::WorkerLost if ignored => self.finish_job(job_no, Outcome::Abandoned),
            AttemptEnd::TimedOut if self.config.timeout_action == TimeoutAction::Fail => {
                self.finish_job(job_no, Outcome::TimedOut)
            }
            AttemptEnd::WorkerLost | AttemptEnd::TimedOut => self.retry_or_drop(job_no),
        }
    }

    /// Counts a failed attempt; requeues at the tail of its level unless
    /// `--job-retries` is used up, in which case the job is dropped.
    fn retry_or_drop(&mut self, job_no: JobNo) {
        let limit = self.config.job_retries;
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        job.attempts = job.attempts.saturating_add(1);
        if limit != 0 && job.attempts >= limit {
            let attempts = job.attempts;
            tracing::info!(handle = %String::from_utf8_lossy(job.handle_bytes()), attempts, "dropped job due to max retry count");
            self.finish_job(job_no, Outcome::Dropped { attempts });
            return;
        }
        job.set_state(JobState::Queued);
        job.numerator = 0;
        job.denominator = 0;
        let (f, p) = (job.function, job.priority);
        if let Some(func) = self.functions.get_mut(f) {
            func.job_requeued(job_no, p);
        }
        self.write_live_record(job_no);
        self.wake_workers(f);
    }

    /// A foreground client went away: a job nobody listens to any more is
    /// dropped if queued, or finishes silently if running. Background jobs
    /// are never abandoned (gearmand 1.1.20 cancelled a background job when a
    /// foreground client that had joined it disconnected).
    pub(crate) fn detach_client(&mut self, job_no: JobNo, conn: ConnId) {
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        job.clients.retain(|&c| c != conn);
        if !job.clients.is_empty() || job.background {
            return;
        }
        match job.state() {
            JobState::Running(_) => job.ignore = true,
            JobState::Queued | JobState::Scheduled | JobState::Retrying => self.finish_job(job_no, Outcome::Abandoned),
        }
    }

    /// The store could not make a job durable: it ends if it has not
    /// started and no foreground client wants it; either way it is no
    /// longer treated as persisted.
    pub(crate) fn insert_failed(&mut self, job_no: JobNo) {
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        job.persisted = false;
        job.insert_seq = 0;
        // Its background submitters were all told it failed; only
        // foreground clients (if any) still want it.
        job.background = false;
        if !job.is_running() && job.clients.is_empty() {
            self.finish_job(job_no, Outcome::NotStored);
        }
    }

    /// An operator cancels a job: its clients get WORK_FAIL and its row is
    /// deleted at once (a crash before its worker reports back would
    /// otherwise bring it back).
    pub(crate) fn cancel(&mut self, job_no: JobNo) {
        self.finish_job(job_no, Outcome::Cancelled);
    }

    /// An operator drops function `f`: its queued and scheduled jobs end
    /// (their clients get WORK_FAIL), oldest first, and it is forgotten.
    /// The caller checked that it has no workers and no running jobs.
    pub(crate) fn remove_function(&mut self, f: FnId) {
        let mut doomed: Vec<JobNo> = self.jobs.iter().filter(|j| j.function == f).map(|j| j.no).collect();
        doomed.sort_unstable();
        for job_no in doomed {
            if self.jobs.get(job_no).is_some_and(|j| j.is_running()) {
                continue;
            }
            self.finish_job(job_no, Outcome::FunctionDropped);
        }
        self.functions.remove(f);
    }

    /// Removes a job from every table and index without touching the
    /// store; returns it.
    fn remove_job(&mut self, job_no: JobNo) -> Option<Box<Job>> {
        let job = self.jobs.remove(job_no)?;
        let f = job.function;
        if let Some(func) = self.functions.get_mut(f) {
            func.job_removed(job.priority, job.is_running(), job.state() == JobState::Retrying);
        }
        self.coalesce.remove(f, job_no, job.unique_bytes(), job.data());
        if let JobState::Running(worker) = job.state() {
            self.conns.stop_running(worker, job_no);
        }
        for &client in &job.clients {
            self.conns.stop_waiting(client, job_no);
        }
        Some(job)
    }
}
