//! Keeping each job's record as it lives: made when the job is submitted
//! (or replayed), a new attempt each time a worker takes it, the worker's
//! data, warnings and status, attempts that end without a result, and the
//! end of the job. The record is written to the store when it has a queue
//! row to go with (so a restart finds its handle and attempts) and always
//! when the job ends, just before the row's delete, so both land in one
//! commit.

use bytes::Bytes;
use sprocket_records::{AttemptEnd as RecordAttemptEnd, Outcome as RecordOutcome, Record, Worker};

use crate::engine::Engine;
use crate::job::{Job, JobState};
use crate::outcome::{AttemptEnd, Outcome};
use crate::types::*;

/// The record's name for how a job ended; `workload` is the job's data,
/// which a dead letter keeps.
fn record_outcome<'a>(outcome: &'a Outcome, workload: &'a [u8]) -> RecordOutcome<'a> {
    match outcome {
        Outcome::Dead { last } => {
            RecordOutcome::Dead { end: last.attempt_end(), error: last.error().map(|e| &e[..]), payload: workload }
        }
        Outcome::Completed { result } => RecordOutcome::Complete(result),
        Outcome::Failed => RecordOutcome::Failed,
        Outcome::Exception { text } => RecordOutcome::Exception(text),
        // Ended by an operator, or because nobody wanted it any more.
        Outcome::Cancelled | Outcome::Purged | Outcome::FunctionDropped | Outcome::Abandoned => {
            RecordOutcome::Cancelled
        }
        Outcome::TimedOut => RecordOutcome::Timeout,
        // Given up on: attempts ran out, or it could not be stored.
        Outcome::Dropped { .. } | Outcome::NotStored => RecordOutcome::Dropped,
    }
}

impl Engine {
    /// Whether a job submitted so carries a record: the ones `--records`
    /// covers, and every job while the job log or the history wants them.
    pub(super) fn carries_record(&self, background: bool) -> bool {
        self.config.records.mode.covers(background) || self.config.report_ended_jobs
    }

    /// Whether a job submitted so can become a dead letter: dead letters
    /// are kept as job records, so only jobs whose record is kept.
    pub(super) fn keeps_dead_letters(&self, background: bool) -> bool {
        self.config.records.mode.covers(background)
    }

    /// Whether the record of `job` is kept after it ends (not only used for
    /// the job log and the history).
    fn keeps_record(&self, job: &Job) -> bool {
        self.config.records.mode.covers(job.background)
    }

    /// Gives a job replayed with its record from before the restart that
    /// record, which goes on. Other jobs get theirs only when a worker
    /// first takes them or they end ([`Engine::ensure_record`]): a queued
    /// job's record is what the job itself says.
    pub(super) fn open_record(&self, job: &mut Job, earlier: Option<Record>) {
        let Some(mut record) = earlier.filter(|_| self.carries_record(job.background)) else { return };
        // The server stopped while a worker held it: that attempt is over,
        // and the job waits in its queue again. (A job waiting for a retry
        // keeps waiting: see `resume_retry`.)
        if record.state() == sprocket_records::RecordState::Running {
            let _ = record.attempt_ended(RecordAttemptEnd::Interrupted, self.now);
        }
        // Its failed attempts so far still count against its policy.
        job.attempts = record.failures();
        job.extra_mut().record = Some(Box::new(record));
    }

    /// The record a job without one has: queued since it was submitted.
    pub(super) fn record_of_job(&self, job: &Job) -> Option<Record> {
        let function = self.functions.name_of(job.function);
        // Handle, function and unique are bounded by the protocol far
        // below a record's 4 GiB fields.
        Record::new(job.handle_bytes(), &function, job.unique_bytes(), job.priority, job.background, job.submitted).ok()
    }

    /// Job `job_no`'s record, made now if it should have one and has none.
    pub(super) fn ensure_record(&mut self, job_no: JobNo) -> Option<&mut Record> {
        let job = self.jobs.get(job_no)?;
        if !self.carries_record(job.background) {
            return None;
        }
        if job.extra.as_ref().is_none_or(|e| e.record.is_none()) {
            let record = self.record_of_job(job)?;
            self.jobs.get_mut(job_no)?.extra_mut().record = Some(Box::new(record));
        }
        self.record_mut(job_no)
    }

    /// A background submission joined job `job_no`, which may now need a
    /// record: when a worker already runs it, the record begins now, with
    /// that attempt under way, so that it says `running` (and, after a
    /// crash, that this attempt was interrupted) rather than `queued`.
    pub(super) fn open_record_if_missing(&mut self, job_no: JobNo) {
        let Some(job) = self.jobs.get(job_no) else { return };
        if job.extra.as_ref().is_some_and(|e| e.record.is_some()) {
            return;
        }
        let JobState::Running(worker) = job.state() else { return };
        self.begin_attempt(job_no, worker);
    }

    /// Writes job `job_no`'s record as it is now, when records are durable
    /// and the job has a store row (only the final record is written for a
    /// job without one: nothing of it is replayed).
    pub(super) fn write_live_record(&mut self, job_no: JobNo) {
        if !self.config.records.durable || self.config.persist != PersistMode::Immediate {
            return;
        }
        let Some(job) = self.jobs.get(job_no) else { return };
        if !job.persisted || !self.keeps_record(job) {
            return;
        }
        let record = match job.extra.as_ref().and_then(|e| e.record.as_ref()) {
            Some(record) => record.clone(),
            None => match self.record_of_job(job) {
                Some(record) => Box::new(record),
                None => return,
            },
        };
        let op = PersistOp::Record { record, row_unique: job.store_unique(self.config.instance_id) };
        self.ledger.write(op, &mut self.out.persist);
    }

    /// The record of job `job_no`, to change.
    fn record_mut(&mut self, job_no: JobNo) -> Option<&mut Record> {
        self.jobs.get_mut(job_no)?.extra.as_mut()?.record.as_deref_mut()
    }

    /// A worker took job `job_no`: a new attempt, on `conn`.
    pub(super) fn record_started(&mut self, job_no: JobNo, conn: ConnId) {
        self.begin_attempt(job_no, conn);
        self.write_live_record(job_no);
    }

    /// Job `job_no`'s record (made now if it has none) begins an attempt on
    /// worker connection `conn`.
    fn begin_attempt(&mut self, job_no: JobNo, conn: ConnId) {
        let Some(c) = self.conns.get(conn) else { return };
        let worker = Worker { client_id: c.client_id.clone(), peer: c.peer.clone() };
        let now = self.now;
        if let Some(record) = self.ensure_record(job_no) {
            let _ = record.started(worker, now);
        }
    }

    /// WORK_DATA (or WORK_WARNING) for job `job_no`.
    pub(super) fn record_chunk(&mut self, job_no: JobNo, data: &Bytes, warning: bool) {
        let limits = self.config.records.limits;
        if let Some(record) = self.record_mut(job_no) {
            let _ = if warning { record.warning(data, limits) } else { record.data(data, limits) };
        }
    }

    /// WORK_STATUS for job `job_no`.
    pub(super) fn record_status(&mut self, job_no: JobNo, numerator: u32, denominator: u32) {
        if let Some(record) = self.record_mut(job_no) {
            let _ = record.status(numerator, denominator);
        }
    }

    /// An attempt at job `job_no` ended without a result.
    pub(super) fn record_attempt_ended(&mut self, job_no: JobNo, why: AttemptEnd) {
        let now = self.now;
        let end = match why {
            AttemptEnd::WorkerLost => RecordAttemptEnd::WorkerLost,
            AttemptEnd::TimedOut => RecordAttemptEnd::Timeout,
        };
        if let Some(record) = self.record_mut(job_no) {
            let _ = record.attempt_ended(end, now);
        }
    }

    /// Job `job_no` ended as `outcome`: its record is closed, written to
    /// the store (before the row's delete, which the caller sends next) or
    /// kept in memory, and reported to the job log and the history.
    pub(super) fn close_record(&mut self, job_no: JobNo, outcome: &Outcome) {
        let (now, limits) = (self.now, self.config.records.limits);
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        let taken = job.extra.as_mut().and_then(|e| e.record.take());
        let Some(job) = self.jobs.get(job_no) else { return };
        if !self.carries_record(job.background) {
            return;
        }
        let Some(mut record) = taken.or_else(|| self.record_of_job(job).map(Box::new)) else { return };
        let workload = job.data();
        let _ = record.ended(record_outcome(outcome, &workload), now, limits);
        let Some(job) = self.jobs.get(job_no) else { return };
        let keep = self.keeps_record(job);
        let row_unique = if job.persisted { job.store_unique(self.config.instance_id) } else { Bytes::new() };
        if !keep {
            // Carried only for the report: handed over, not copied.
            if self.config.report_ended_jobs {
                self.out.ended.push(*record);
            }
            return;
        }
        if self.config.report_ended_jobs || self.config.report_recorded_jobs {
            let report = if self.config.report_payloads { (*record).clone() } else { record.without_payload() };
            self.out.ended.push(report);
        }
        let seq = if self.config.records.durable {
            self.ledger.write(PersistOp::Record { record: record.clone(), row_unique }, &mut self.out.persist)
        } else {
            0
        };
        self.ended_records.ended(*record, seq);
    }
}
