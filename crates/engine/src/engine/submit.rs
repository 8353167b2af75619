//! SUBMIT_* handling: coalescing, limits, job creation, persistence.

use bytes::Bytes;
use sprocket_proto::Response;

use super::dispatch::Submit;
use crate::engine::Engine;
use crate::job::{GeneratedKey, Job, JobState, RowKey, StoredKey, MAX_STORED_UNIQUE};
use crate::types::*;

/// Why a submission was refused: the ERROR packet's code and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: &'static str,
    pub text: &'static str,
}

impl Engine {
    /// A SUBMIT_* request: joins an existing job or makes a new one.
    pub(super) fn submit(&mut self, conn: ConnId, s: Submit) {
        if s.function.starts_with(super::reserved::RESERVED_PREFIX) {
            self.reserved_submit(conn, s);
            return;
        }
        if let Err(refusal) = self.submit_from(Some(conn), s) {
            self.send_packet(conn, Response::error(refusal.code, refusal.text));
        }
    }

    /// A submission from `conn`, or from the server itself (`None`: a
    /// recurring job's run), which takes the same path as a client's
    /// background submission: coalescing on its unique, the limits, the
    /// durable insert, the record, and NOOPs to sleeping workers. Returns
    /// the job's number (a new job's, or the one it joined).
    pub(super) fn submit_from(&mut self, conn: Option<ConnId>, s: Submit) -> Result<JobNo, Refusal> {
        if s.unique.len() > MAX_UNIQUE || s.reducer.len() > MAX_UNIQUE {
            let text = if s.unique.len() > MAX_UNIQUE { "Unique value too large" } else { "Reducer value too large" };
            return Err(Refusal { code: "ARGUMENT_TOO_LARGE", text });
        }
        let f = self.function_id(&s.function);

        if let Some(job_no) = self.coalesce.target(f, &s.unique, &s.data, &self.jobs) {
            match conn {
                Some(conn) => self.attach(conn, job_no, s.background),
                None => self.join_in_background(job_no),
            }
            return Ok(job_no);
        }

        if s.background && self.ledger.store_down() && self.config.persist == PersistMode::Immediate {
            return Err(Refusal { code: "QUEUE_ERROR", text: "Job could not be stored durably" });
        }

        if self.functions.get(f).is_some_and(|func| func.is_full(s.priority)) {
            return Err(Refusal { code: "QUEUE_ERROR", text: "Job queue is full" });
        }
        if self.config.max_jobs > 0 && self.jobs.len() >= self.config.max_jobs {
            return Err(Refusal { code: "QUEUE_ERROR", text: "Server job limit reached" });
        }

        let job_no = self.new_job_no();
        let made =
            Job::new(job_no, &self.config.handle_prefix, f, &s.unique, &s.data, s.priority, s.background, s.when);
        let Ok(mut job) = made else {
            // Only a handle prefix the server's flags would have refused
            // gets here (uniques are checked above).
            return Err(Refusal { code: "ARGUMENT_TOO_LARGE", text: "Job handle too long" });
        };
        if !s.reducer.is_empty() {
            job.extra_mut().reducer = Bytes::copy_from_slice(&s.reducer);
        }
        if let Some(conn) = conn.filter(|_| !s.background) {
            job.clients.push(conn);
        }
        let handle = job.handle();

        let mut seq = 0;
        if s.background && self.config.persist != PersistMode::None {
            job.persisted = true;
            if self.config.persist == PersistMode::Immediate {
                // Handles restart at 1 after a restart, so generated keys
                // also name this server run; replayed rows keep theirs.
                job.key_if_keyless();
                seq = self.write_insert(self.row_insert(&job), job_no);
                job.insert_seq = seq;
            }
        }

        self.open_record(&mut job, None);
        self.coalesce.insert(&job, &self.jobs);
        self.add_job(job);
        // The queued record goes in the insert's commit, so that a restart
        // gives the job its handle back.
        self.write_live_record(job_no);
        self.functions.count_submitted(f);
        if let Some(conn) = conn {
            if !s.background {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.waiting.push(job_no);
                }
            }
            self.send_job_created(conn, handle, seq);
        }
        Ok(job_no)
    }

    /// The server itself joined an existing job with a background
    /// submission: the job runs even if its foreground clients leave.
    fn join_in_background(&mut self, job_no: JobNo) {
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        job.ignore = false;
        if !job.background {
            self.make_background(job_no);
        }
    }

    /// Attaches a submitter to an existing job and answers with its handle.
    pub(super) fn attach(&mut self, conn: ConnId, job_no: JobNo, background: bool) {
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        // Someone listens again to a job whose clients had all left.
        job.ignore = false;
        // One listener entry per submission, even from the same connection:
        // a client that submits the same unique twice (a task set with a
        // duplicate) expects every WORK_* packet twice, as gearmand sends
        // them, and otherwise waits for ever for its second completion.
        if !background {
            job.clients.push(conn);
            if let Some(c) = self.conns.get_mut(conn) {
                c.waiting.push(job_no);
            }
        }
        if background && !job.background {
            self.make_background(job_no);
        }
        let Some(job) = self.jobs.get(job_no) else { return };
        let (handle, seq) = (job.handle(), job.insert_seq);
        self.send_job_created(conn, handle, seq);
    }

    /// A background submission joined a foreground job: the job now runs
    /// even if its foreground clients leave, and with a store it is written
    /// like any background job, so the JOB_CREATED that answers the
    /// submission means the same as for a new job. (gearmand acknowledges
    /// it but writes nothing, and once the foreground client leaves the
    /// job is counted in `status` but never handed out.)
    fn make_background(&mut self, job_no: JobNo) {
        let persist = self.config.persist;
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        job.background = true;
        if persist == PersistMode::None {
            return;
        }
        job.persisted = true;
        if persist != PersistMode::Immediate {
            return;
        }
        job.key_if_keyless();
        let Some(op) = self.jobs.get(job_no).map(|j| self.row_insert(j)) else { return };
        let seq = self.write_insert(op, job_no);
        if let Some(job) = self.jobs.get_mut(job_no) {
            job.insert_seq = seq;
        }
        // A background job has a record now (with `--records=background`):
        // from here on, as if it had been submitted so.
        self.open_record_if_missing(job_no);
        self.write_live_record(job_no);
    }

    /// Puts a new job in the table and its queue (or the schedule).
    pub(super) fn add_job(&mut self, mut job: Job) {
        let (f, p, no) = (job.function, job.priority, job.no);
        let future = job.when > self.now_secs();
        job.submitted = self.now;
        job.set_state(if future { JobState::Scheduled } else { JobState::Queued });
        if future {
            self.timers.schedule(job.when, no);
        }
        self.jobs.insert(job);
        if let Some(func) = self.functions.get_mut(f) {
            func.job_added(no, p, !future);
        }
        if !future {
            self.wake_workers(f);
        }
    }

    /// Replays a stored job at start-up: queued like a background submit,
    /// marked persisted, nothing written back.
    pub fn replay(&mut self, r: ReplayJob) {
        let f = self.function_id(&r.function);
        let generated = r.unique.starts_with(GENERATED_UNIQUE_PREFIX);
        let parsed = GeneratedKey::parse(&r.unique);
        // A generated key stands for no unique, or for `-` when it says so.
        let unique = match parsed {
            Some(key) => Bytes::from_static(key.own_unique()),
            None if generated => Bytes::new(),
            None => r.unique.clone(),
        };
        if unique.as_ref() != b"-" && !unique.is_empty() && self.coalesce.by_unique(f, &unique, &self.jobs).is_some() {
            return;
        }
        // The job gets its handle back when its record names one this
        // server can give (same prefix, number free).
        let earlier_no = r.record.as_ref().and_then(|rec| self.job_by_handle_text(rec.handle()));
        let job_no = match earlier_no {
            Some(no) => no,
            None => self.new_job_no(),
        };
        let mut job = match Job::new(job_no, &self.config.handle_prefix, f, &unique, &r.data, r.priority, true, r.when)
        {
            Ok(job) => job,
            Err(too_large) => {
                // Left in the table, untouched: cut, its key would never
                // match the row again and the job would run after every
                // restart.
                tracing::warn!(
                    function = %String::from_utf8_lossy(&r.function),
                    unique_start = %String::from_utf8_lossy(&r.unique[..r.unique.len().min(64)]),
                    unique_bytes = r.unique.len(),
                    reason = ?too_large,
                    "a stored job cannot be replayed (its unique is longer than {MAX_STORED_UNIQUE} bytes); \
                     its row is left in the table"
                );
                return;
            }
        };
        job.persisted = self.config.persist != PersistMode::None;
        job.replayed_row = job.persisted;
        if generated || r.unique.as_ref() == b"-" {
            let key = match parsed {
                Some(key) => StoredKey::Generated(key),
                None => StoredKey::Text(r.unique.clone()),
            };
            job.row_key = RowKey::Stored;
            job.extra_mut().stored_key = Some(key);
        }
        let earlier = if earlier_no.is_some() { r.record } else { None };
        let retry_at = earlier
            .as_ref()
            .filter(|record| record.state() == sprocket_records::RecordState::Retrying)
            .and_then(|record| record.retry_at());
        self.open_record(&mut job, earlier);
        // A replayed `-` job (gearmand's row, or ours) coalesces on its
        // data again, as it did before the restart.
        self.coalesce.insert(&job, &self.jobs);
        self.add_job(job);
        if let Some(at) = retry_at {
            self.resume_retry(job_no, at);
        }
    }

    /// Queues an Insert for every background job still flagged persisted
    /// (the `--store-queue-on-shutdown` dump); returns how many.
    pub fn dump_persisted_jobs(&mut self) -> usize {
        // Jobs without a unique of their own get their generated key now,
        // as they would have at submission with an immediate store:
        // written under their own (empty or `-`) unique, they would all
        // share one row and all but one would be lost.
        for job in self.jobs.iter_mut().filter(|j| j.persisted && !j.ignore) {
            job.key_if_keyless();
        }
        let mut jobs: Vec<&Job> = self.jobs.iter().filter(|j| j.persisted && !j.ignore).collect();
        jobs.sort_by_key(|j| j.no);
        let ops: Vec<PersistOp> = jobs.iter().map(|j| self.row_insert(j)).collect();
        let n = ops.len();
        for op in ops {
            self.ledger.write(op, &mut self.out.persist);
        }
        n
    }
}
