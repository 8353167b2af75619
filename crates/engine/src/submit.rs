//! SUBMIT_* handling: coalescing, limits, job creation, persistence.

use bytes::Bytes;
use sprocket_proto::Response;

use crate::dispatch::Submit;
use crate::engine::Engine;
use crate::job::{GeneratedKey, Job, JobState, RowKey, StoredKey, MAX_STORED_UNIQUE};
use crate::types::*;

impl Engine {
    pub(crate) fn submit(&mut self, conn: ConnId, s: Submit) {
        if s.unique.len() > MAX_UNIQUE || s.reducer.len() > MAX_UNIQUE {
            let text = if s.unique.len() > MAX_UNIQUE { "Unique value too large" } else { "Reducer value too large" };
            self.send_packet(conn, Response::error("ARGUMENT_TOO_LARGE", text));
            return;
        }
        let f = self.function_id(&s.function);

        if let Some(job_no) = self.coalesce_target(f, &s.unique, &s.data) {
            self.attach(conn, job_no, s.background);
            return;
        }

        if s.background && self.store_down && self.config.persist == PersistMode::Immediate {
            self.send_packet(conn, Response::error("QUEUE_ERROR", "Job could not be stored durably"));
            return;
        }

        let limit = self.function(f).map(|func| func.max_queue[s.priority.index()]).unwrap_or(0);
        let total = self.function(f).map(|func| func.total).unwrap_or(0);
        if limit > 0 && total >= limit as usize {
            self.send_packet(conn, Response::error("QUEUE_ERROR", "Job queue is full"));
            return;
        }
        if self.config.max_jobs > 0 && self.jobs.len() >= self.config.max_jobs {
            self.send_packet(conn, Response::error("QUEUE_ERROR", "Server job limit reached"));
            return;
        }

        let job_no = self.next_job;
        let made =
            Job::new(job_no, &self.config.handle_prefix, f, &s.unique, &s.data, s.priority, s.background, s.when);
        let Ok(mut job) = made else {
            // Only a handle prefix the server's flags would have refused
            // gets here (uniques are checked above).
            self.send_packet(conn, Response::error("ARGUMENT_TOO_LARGE", "Job handle too long"));
            return;
        };
        self.next_job += 1;
        if !s.reducer.is_empty() {
            job.extra_mut().reducer = Bytes::copy_from_slice(&s.reducer);
        }
        if !s.background {
            job.clients.push(conn);
        }
        let handle = job.handle();
        let unique = job.unique();
        let data_key = (unique.as_ref() == b"-" && !job.data_bytes().is_empty()).then(|| job.data());

        let mut seq = 0;
        if s.background && self.config.persist != PersistMode::None {
            job.persisted = true;
            if self.config.persist == PersistMode::Immediate {
                // Handles restart at 1 after a restart, so generated keys
                // also name this server run; replayed rows keep theirs.
                job.key_if_keyless();
                seq = self.persist(self.row_insert(&job));
                job.pending_seq = seq;
                self.track_insert(seq, job_no);
            }
        }

        self.index_job(f, &unique, data_key, job_no);
        self.add_job(job);
        if !s.background {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.waiting.push(job_no);
            }
        }
        self.send_job_created(conn, handle, seq);
    }

    /// The existing job a submission joins, if any.
    fn coalesce_target(&self, f: FnId, unique: &Bytes, data: &Bytes) -> Option<JobNo> {
        if unique.is_empty() {
            return None;
        }
        // A running job whose clients all left (`ignore`) is still in the
        // index and is joined, as gearmand does: the new submitter gets its
        // result instead of the work being done twice. A cancelled job is
        // no longer in the index.
        if unique.as_ref() == b"-" {
            if data.is_empty() {
                return None;
            }
            self.by_data.get(&(f, data.clone())).copied()
        } else {
            self.by_unique.get(f, unique, |no| self.jobs.get(&no).map(|j| &**j))
        }
    }

    /// Attaches a submitter to an existing job and answers with its handle.
    fn attach(&mut self, conn: ConnId, job_no: JobNo, background: bool) {
        let Some(job) = self.jobs.get_mut(&job_no) else { return };
        // Someone listens again to a job whose clients had all left.
        job.ignore = false;
        // One listener entry per submission, even from the same connection:
        // a client that submits the same unique twice (a task set with a
        // duplicate) expects every WORK_* packet twice, as gearmand sends
        // them, and otherwise waits for ever for its second completion.
        if !background {
            job.clients.push(conn);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.waiting.push(job_no);
            }
        }
        if background && !job.background {
            self.make_background(job_no);
        }
        let Some(job) = self.jobs.get(&job_no) else { return };
        let (handle, seq) = (job.handle(), job.pending_seq);
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
        let Some(job) = self.jobs.get_mut(&job_no) else { return };
        job.background = true;
        if persist == PersistMode::None {
            return;
        }
        job.persisted = true;
        if persist != PersistMode::Immediate {
            return;
        }
        job.key_if_keyless();
        let Some(op) = self.jobs.get(&job_no).map(|j| self.row_insert(j)) else { return };
        let seq = self.persist(op);
        if let Some(job) = self.jobs.get_mut(&job_no) {
            job.pending_seq = seq;
        }
        self.track_insert(seq, job_no);
    }

    pub(crate) fn index_job(&mut self, f: FnId, unique: &Bytes, data_key: Option<Bytes>, job_no: JobNo) {
        if let Some(data) = data_key {
            self.by_data.insert((f, data), job_no);
        } else if !unique.is_empty() && unique.as_ref() != b"-" {
            let jobs = &self.jobs;
            self.by_unique.insert(f, unique, job_no, |no| jobs.get(&no).map(|j| &**j));
        }
    }

    /// Puts a new job in the table and its queue (or the schedule).
    pub(crate) fn add_job(&mut self, mut job: Job) {
        let (f, p, no) = (job.function, job.priority, job.no);
        let future = job.when > self.now_secs();
        job.state = if future { JobState::Scheduled } else { JobState::Queued };
        if future {
            self.schedule.push(std::cmp::Reverse((job.when, no)));
        }
        self.jobs.insert(no, Box::new(job));
        if let Some(func) = self.function_mut(f) {
            func.total += 1;
            func.queued[p.index()] += 1;
            if !future {
                func.queues[p.index()].push_back(no);
            }
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
        if unique.as_ref() != b"-"
            && !unique.is_empty()
            && self.by_unique.get(f, &unique, |no| self.jobs.get(&no).map(|j| &**j)).is_some()
        {
            return;
        }
        let job_no = self.next_job;
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
        self.next_job += 1;
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
        let unique = job.unique();
        // A replayed `-` job (gearmand's row, or ours) coalesces on its
        // data again, as it did before the restart.
        let data_key = (unique.as_ref() == b"-" && !job.data_bytes().is_empty()).then(|| job.data());
        self.index_job(f, &unique, data_key, job_no);
        self.add_job(job);
    }

    /// The store could not make a job durable: forget it if it has not
    /// started, and stop treating it as persisted.
    pub(crate) fn insert_failed(&mut self, job_no: JobNo) {
        let Some(job) = self.jobs.get_mut(&job_no) else { return };
        job.persisted = false;
        job.pending_seq = 0;
        // Its background submitters were all told it failed; only
        // foreground clients (if any) still want it.
        job.background = false;
        let attached = !job.clients.is_empty();
        if !job.is_running() && !attached {
            self.remove_job(job_no);
        }
    }

    /// Queues an Insert for every background job still flagged persisted
    /// (the `--store-queue-on-shutdown` dump); returns how many.
    pub fn dump_persisted_jobs(&mut self) -> usize {
        // Jobs without a unique of their own get their generated key now,
        // as they would have at submission with an immediate store:
        // written under their own (empty or `-`) unique, they would all
        // share one row and all but one would be lost.
        for job in self.jobs.values_mut().filter(|j| j.persisted && !j.ignore) {
            job.key_if_keyless();
        }
        let mut jobs: Vec<&Job> = self.jobs.values().map(|j| &**j).filter(|j| j.persisted && !j.ignore).collect();
        jobs.sort_by_key(|j| j.no);
        let ops: Vec<PersistOp> = jobs.iter().map(|j| self.row_insert(j)).collect();
        let n = ops.len();
        for op in ops {
            self.persist(op);
        }
        n
    }
}
