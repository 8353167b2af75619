//! Requeueing dead letters: a dead job's record holds its workload, and a
//! requeue makes the job again from it — same handle, function, unique and
//! priority — for a fresh series of attempts. Its queue row and its
//! record (now `queued` again) are written together, and the operator's
//! answer waits until both are durable, so that a crash after the answer
//! neither loses the job nor leaves it dead.

use bytes::Bytes;
use sprocket_records::{Record, RecordFilter, RecordState};

use super::reserved::plausible_handle;
use crate::engine::Engine;
use crate::job::Job;
use crate::records::{ReadPurpose, ReadWaiter};
use crate::types::*;

/// Why a dead job could not be requeued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequeueError {
    /// No job (live or recorded) has that handle.
    UnknownJob,
    /// The job is not dead (it is live, or ended otherwise).
    NotDead(RecordState),
    /// A live job of the function already has the dead job's unique.
    UniqueInUse,
    /// The record keeps no workload (written by a server without dead
    /// letters), so there is nothing to run.
    NoWorkload,
    /// The job could not be made again (its handle no longer fits).
    CannotMake,
}

impl RequeueError {
    /// The admin error line.
    fn line(&self) -> Bytes {
        let text = match self {
            RequeueError::UnknownJob => return Bytes::from_static(b"ERR UNKNOWN_JOB\r\n"),
            RequeueError::NotDead(state) => format!("ERR NOT_DEAD the+job+is+{state},+not+dead\r\n"),
            RequeueError::UniqueInUse => "ERR UNIQUE_IN_USE a+live+job+of+the+function+has+its+unique\r\n".into(),
            RequeueError::NoWorkload => "ERR NO_WORKLOAD the+record+keeps+no+workload\r\n".into(),
            RequeueError::CannotMake => "ERR UNKNOWN_ERROR the+job+cannot+be+made+again\r\n".into(),
        };
        Bytes::from(text)
    }
}

impl Engine {
    /// Makes dead job `record` live again, queued for a fresh series of
    /// attempts; returns its job number.
    pub(crate) fn requeue_record(&mut self, mut record: Record) -> Result<JobNo, RequeueError> {
        if self.job_by_handle(record.handle()).is_some() {
            return Err(RequeueError::NotDead(RecordState::Queued));
        }
        if record.state() != RecordState::Dead {
            return Err(RequeueError::NotDead(record.state()));
        }
        let workload = Bytes::copy_from_slice(record.payload().ok_or(RequeueError::NoWorkload)?);
        let f = self.function_id(&Bytes::copy_from_slice(record.function()));
        let unique = record.unique();
        if !unique.is_empty() && unique != b"-" && self.coalesce.by_unique(f, unique, &self.jobs).is_some() {
            return Err(RequeueError::UniqueInUse);
        }
        let job_no = match self.job_by_handle_text(record.handle()) {
            Some(no) => no,
            None => self.new_job_no(),
        };
        let mut job = Job::new(job_no, &self.config.handle_prefix, f, unique, &workload, record.priority(), true, 0)
            .map_err(|_| RequeueError::CannotMake)?;
        self.ended_records.forget(record.handle());
        let _ = record.requeued();
        if self.config.persist != PersistMode::None {
            job.persisted = true;
            if self.config.persist == PersistMode::Immediate {
                job.key_if_keyless();
                let seq = self.write_insert(self.row_insert(&job), job_no);
                job.insert_seq = seq;
            }
        }
        if self.carries_record(true) {
            job.extra_mut().record = Some(Box::new(record));
        }
        self.coalesce.insert(&job, &self.jobs);
        let submitted = job.extra.as_ref().and_then(|e| e.record.as_ref()).map(|r| r.submitted());
        self.add_job(job);
        if let (Some(job), Some(at)) = (self.jobs.get_mut(job_no), submitted) {
            // The job keeps the time it was first submitted.
            job.submitted = at;
        }
        self.write_live_record(job_no);
        let function = String::from_utf8_lossy(self.functions.name_of(f).as_ref()).into_owned();
        tracing::info!(job = job_no, %function, "dead job requeued by an operator");
        Ok(job_no)
    }

    /// Admin `requeue HANDLE`: `OK 1` once the job and its record are
    /// durable.
    pub(crate) fn admin_requeue(&mut self, conn: ConnId, handle: &[u8]) {
        if self.job_by_handle(handle).is_some() {
            self.send(conn, Out::Text(RequeueError::NotDead(RecordState::Queued).line()));
            return;
        }
        if let Some(record) = self.ended_records.get(handle).cloned() {
            let before = self.ledger.last_written();
            let reply = match self.requeue_record(record) {
                Ok(_) => sprocket_proto::admin::ok_value("1"),
                Err(e) => e.line(),
            };
            self.reply_when_written(conn, before, reply);
            return;
        }
        if self.ended_records.in_store() && plausible_handle(handle) {
            let query = RecordQuery::Handle(Bytes::copy_from_slice(handle));
            self.read_for_conn(conn, ReadPurpose::AdminRequeue { function: None, requeued: 0 }, query);
            return;
        }
        self.send(conn, Out::Text(RequeueError::UnknownJob.line()));
    }

    /// Admin `requeue function NAME`: every dead job of the function, `OK
    /// <n>` once they are durable.
    pub(crate) fn admin_requeue_function(&mut self, conn: ConnId, name: &[u8]) {
        let filter = dead_of(name);
        if self.ended_records.in_store() {
            let purpose = ReadPurpose::AdminRequeue { function: Some(Bytes::copy_from_slice(name)), requeued: 0 };
            self.read_for_conn(conn, purpose, RecordQuery::Search(filter));
            return;
        }
        let before = self.ledger.last_written();
        let mut requeued = 0usize;
        // In memory every dead job is found at once; a search is bounded,
        // so search until one finds nothing more to requeue.
        loop {
            let found = self.ended_records.search(&filter);
            let round = found.into_iter().filter(|record| self.requeue_record(record.clone()).is_ok()).count();
            requeued += round;
            if round == 0 {
                break;
            }
        }
        self.reply_when_written(conn, before, sprocket_proto::admin::ok_value(&requeued.to_string()));
    }

    /// The store's answer to a read a requeue started: requeues what it
    /// found and answers once that is durable, or reads on (a function's
    /// dead jobs are read a bounded batch at a time).
    pub(super) fn requeue_read_done(
        &mut self,
        conn: ConnId,
        id: u64,
        purpose: ReadPurpose,
        result: Result<Vec<Record>, String>,
    ) {
        let ReadPurpose::AdminRequeue { function, requeued } = purpose else { return };
        let found = match result {
            Ok(found) => found,
            Err(e) => {
                let line = format!("ERR RECORDS_UNAVAILABLE {}\r\n", e.replace([' ', '\r', '\n'], "+"));
                self.answer_held_read(conn, id, None, Bytes::from(line));
                return;
            }
        };
        let Some(name) = function else {
            let reply = match found.into_iter().next() {
                None => RequeueError::UnknownJob.line(),
                Some(record) => match self.requeue_record(record) {
                    Ok(_) => sprocket_proto::admin::ok_value("1"),
                    Err(e) => e.line(),
                },
            };
            let last = self.ledger.last_written();
            self.answer_held_read(conn, id, Some(last), reply);
            return;
        };
        let full = found.len() >= sprocket_records::filter::MAX_SEARCH_LIMIT;
        let round = found.into_iter().filter(|record| self.requeue_record(record.clone()).is_ok()).count();
        let requeued = requeued + round;
        if full && round > 0 {
            // More may be dead: read the next batch, in the same place
            // among the connection's replies.
            let purpose = ReadPurpose::AdminRequeue { function: Some(name.clone()), requeued };
            let next = self.start_read(ReadWaiter::Conn(conn, purpose), RecordQuery::Search(dead_of(&name)));
            if let Some(c) = self.conns.get_mut(conn) {
                c.held.rename_read(id, next);
            }
            return;
        }
        let last = self.ledger.last_written();
        self.answer_held_read(conn, id, Some(last), sprocket_proto::admin::ok_value(&requeued.to_string()));
    }

    /// Puts `reply` in the place of held read `id`, to go out once store
    /// operation `after` is durable (when given).
    fn answer_held_read(&mut self, conn: ConnId, id: u64, after: Option<u64>, reply: Bytes) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        match after {
            Some(seq) if self.ledger.unconfirmed(seq) => c.held.answer_read_after(id, seq, Out::Text(reply)),
            _ => c.held.answer_read(id, vec![Out::Text(reply)]),
        };
        self.release_held(&Default::default());
    }
}

/// The filter for a function's dead jobs, a bounded batch at a time.
fn dead_of(name: &[u8]) -> RecordFilter {
    RecordFilter {
        function: Some(Bytes::copy_from_slice(name)),
        state: Some(RecordState::Dead),
        limit: sprocket_records::filter::MAX_SEARCH_LIMIT,
        ..Default::default()
    }
}
