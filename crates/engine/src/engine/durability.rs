//! The engine's side of the store: rows to write, the store's reports,
//! the store timeout, and JOB_CREATED replies that wait for a commit. The
//! bookkeeping itself is the [`Ledger`](crate::ledger::Ledger)'s.

use bytes::Bytes;

use crate::engine::Engine;
use crate::hash::FastSet;
use crate::job::Job;
use crate::types::*;

impl Engine {
    /// Applies a store report: inserts in `failed` are answered with an
    /// error (their jobs end unless a foreground client wants them), and
    /// everything up to `through` is durable.
    pub(super) fn apply_completion(&mut self, through: u64, failed: &[u64]) {
        // Called once per store commit: no allocation unless something failed.
        let failed: FastSet<u64> =
            if failed.is_empty() { FastSet::default() } else { failed.iter().copied().collect() };
        for &seq in &failed {
            if let Some(job_no) = self.ledger.take_failed(seq) {
                self.insert_failed(job_no);
            }
        }
        self.ledger.confirm_through(through);
        // While the database is unreachable the writer reports the records
        // it keeps for later as handled; they are answered from memory until
        // the store is back and has written them.
        if !self.ledger.store_down() {
            self.ended_records.confirmed_through(through);
            self.release_purges();
        }
        self.release_held(&failed);
    }

    /// Sends what each connection holding replies may now send.
    pub(super) fn release_held(&mut self, failed: &FastSet<u64>) {
        self.ledger.release(&mut self.conns, failed, &mut self.out.sends, &mut self.out.created);
    }

    /// Inserts the store has not confirmed within `store_timeout_ms` (a
    /// hung disk or database) are answered with an error, like refused
    /// ones, and their rows withdrawn: the Delete that follows each Insert
    /// cancels it if it is still waiting in the writer, or removes the row
    /// if it was written after all, so no job the engine has forgotten is
    /// left in the table to run after a restart.
    pub(super) fn expire_inserts(&mut self, expired: &[u64]) {
        tracing::warn!(
            jobs = expired.len(),
            seconds = self.timers.store_timeout_ms() / 1000,
            "the store did not confirm background jobs in time; their submitters get an error"
        );
        for &seq in expired {
            let Some(job) = self.ledger.pending_job(seq).and_then(|no| self.jobs.get(no)) else { continue };
            let op = self.row_delete(job);
            self.ledger.write(op, &mut self.out.persist);
        }
        self.apply_completion(self.ledger.committed(), expired);
    }

    /// Writes the row of job `job_no` (`op`, from [`Engine::row_insert`]):
    /// the job's JOB_CREATED replies wait for it. Returns its sequence
    /// number, which the caller keeps in the job.
    pub(super) fn write_insert(&mut self, op: PersistOp, job_no: JobNo) -> u64 {
        let seq = self.ledger.write(op, &mut self.out.persist);
        self.ledger.insert_written(seq, job_no);
        self.timers.watch_insert(seq, self.now);
        seq
    }

    /// Answers a submission with JOB_CREATED, now or once insert `seq`
    /// (0: none) is durable.
    pub(super) fn send_job_created(&mut self, conn: ConnId, handle: Bytes, seq: u64) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        self.ledger.job_created(conn, &mut c.held, seq, handle, &mut self.out.sends, &mut self.out.created);
    }

    /// The store write that records `job`'s row.
    pub(super) fn row_insert(&self, job: &Job) -> PersistOp {
        PersistOp::Insert {
            function: self.functions.name_of(job.function),
            unique: job.store_unique(self.config.instance_id),
            priority: job.priority,
            data: job.data(),
            when: job.when,
        }
    }

    /// The store write that removes `job`'s row.
    fn row_delete(&self, job: &Job) -> PersistOp {
        PersistOp::Delete {
            function: self.functions.name_of(job.function),
            unique: job.store_unique(self.config.instance_id),
        }
    }

    /// Deletes the job's store row, if it has one (once: the job is no
    /// longer persisted afterwards). With `--store-queue-on-shutdown` only
    /// replayed jobs have a row while the server runs (gearmand 1.1.20
    /// deletes it when they end, so a crash after a restart still finds
    /// the jobs that had not run).
    pub(super) fn delete_row(&mut self, job_no: JobNo) {
        let Some(job) = self.jobs.get(job_no) else { return };
        let has_row = match self.config.persist {
            PersistMode::Immediate => true,
            PersistMode::OnShutdown => job.replayed_row,
            PersistMode::None => false,
        };
        if !(job.persisted && has_row) {
            return;
        }
        let op = self.row_delete(job);
        let seq = job.insert_seq;
        self.ledger.write(op, &mut self.out.persist);
        if seq != 0 && self.ledger.unconfirmed(seq) {
            // Its insert may still be in flight; either way the job is
            // done, so its submitter can be answered with success, now
            // rather than when the store reports the insert.
            self.ledger.ended_before_confirmed(seq);
        }
        if let Some(job) = self.jobs.get_mut(job_no) {
            job.persisted = false;
            job.insert_seq = 0;
        }
    }
}
