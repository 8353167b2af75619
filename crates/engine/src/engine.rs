//! The engine: owns all job state and turns events into effects.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};

use bytes::Bytes;
use sprocket_proto::{Request, Response};

use crate::conn::{Conn, Held};
use crate::function::Function;
use crate::hash::FastMap;
use crate::job::{Job, JobState};
use crate::types::*;
use crate::unique_index::UniqueIndex;

/// The Gearman job engine. Feed it events; drain [`Engine::outbox`].
pub struct Engine {
    pub(crate) config: Config,
    /// Boxed so the table moves 8-byte pointers when it grows.
    pub(crate) jobs: FastMap<JobNo, Box<Job>>,
    pub(crate) functions: Vec<Option<Function>>,
    pub(crate) fn_index: HashMap<Bytes, FnId>,
    pub(crate) conns: FastMap<ConnId, Conn>,
    /// Connections in arrival order (newest last), for `workers`.
    pub(crate) conn_order: Vec<ConnId>,
    /// (function, unique) -> job, for coalescing.
    pub(crate) by_unique: UniqueIndex,
    /// (function, data) -> job, for the `-` unique (coalesce on equal data).
    pub(crate) by_data: HashMap<(FnId, Bytes), JobNo>,
    pub(crate) next_job: JobNo,
    pub(crate) next_seq: u64,
    /// Store sequence numbers committed so far (everything <= this).
    pub(crate) committed_seq: u64,
    /// Inserts not yet durable: seq -> job, ordered so a commit report
    /// takes exactly the range it covers.
    pub(crate) pending_inserts: BTreeMap<u64, JobNo>,
    /// The store is known to be unreachable (see [`Engine::set_store_down`]).
    pub(crate) store_down: bool,
    /// (seq, time submitted) of inserts, oldest first, for the store
    /// timeout; entries whose insert was answered are skipped lazily.
    pub(crate) insert_times: VecDeque<(u64, Millis)>,
    /// Connections with held output.
    pub(crate) holding: HashSet<ConnId>,
    /// Inserts whose jobs finished before the store confirmed them: their
    /// JOB_CREATED can go out without waiting for the store (the job is
    /// done, nothing is left to lose), and does at the end of the turn.
    pub(crate) done_early: HashSet<u64>,
    /// Scheduled jobs by run time (Unix seconds).
    pub(crate) schedule: BinaryHeap<Reverse<(i64, JobNo)>>,
    /// CAN_DO_TIMEOUT deadlines: (deadline ms, job, assignment).
    pub(crate) timeouts: BinaryHeap<Reverse<(Millis, JobNo, u32)>>,
    pub(crate) now: Millis,
    pub(crate) out: Outbox,
}

impl Engine {
    pub fn new(config: Config) -> Engine {
        Engine {
            config,
            jobs: FastMap::default(),
            functions: Vec::new(),
            fn_index: HashMap::new(),
            conns: FastMap::default(),
            conn_order: Vec::new(),
            by_unique: UniqueIndex::default(),
            by_data: HashMap::new(),
            next_job: 1,
            next_seq: 1,
            committed_seq: 0,
            pending_inserts: BTreeMap::new(),
            store_down: false,
            insert_times: VecDeque::new(),
            holding: HashSet::new(),
            done_early: HashSet::new(),
            schedule: BinaryHeap::new(),
            timeouts: BinaryHeap::new(),
            now: 0,
            out: Outbox::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Takes the effects produced since the last call.
    pub fn take_outbox(&mut self) -> Outbox {
        if !self.done_early.is_empty() && !self.holding.is_empty() {
            self.release_holding(&HashSet::new());
        }
        std::mem::take(&mut self.out)
    }

    /// Effects produced so far (for callers that drain in place).
    pub fn outbox(&mut self) -> &mut Outbox {
        &mut self.out
    }

    /// Number of jobs that exist (queued, scheduled or running).
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// Tells the engine whether the store is known to be unreachable. While
    /// it is, a background submit that would have to be written is refused
    /// at once with an ERROR and not queued, as gearmand refuses it when its
    /// queue store fails. Queued anyway, it could be handed to a worker
    /// before the store's failure came back, and run although its
    /// submitter had been told it failed (and would likely submit again).
    pub fn set_store_down(&mut self, down: bool) {
        self.store_down = down;
    }

    /// Whether `conn` has replies held back for the store (a JOB_CREATED
    /// waiting for its commit, and whatever followed it).
    pub fn holds_replies(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| !c.held.is_empty())
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    // ----- events -------------------------------------------------------

    /// A connection was accepted.
    pub fn connected(&mut self, conn: ConnId, fd: i64, peer: String) {
        let c = Conn::new(fd, peer, self.config.exceptions_default);
        self.conns.insert(conn, c);
        self.conn_order.push(conn);
    }

    /// One request packet arrived on `conn` at time `now`.
    pub fn request(&mut self, conn: ConnId, req: Request, now: Millis) {
        self.advance(now);
        if !self.conns.contains_key(&conn) {
            return;
        }
        self.dispatch(conn, req);
    }

    /// A connection closed: its running jobs go back to their queues and
    /// the foreground jobs it waited on lose a listener.
    pub fn disconnected(&mut self, conn: ConnId, now: Millis) {
        self.advance(now);
        let Some(c) = self.conns.remove(&conn) else { return };
        self.conn_order.retain(|&id| id != conn);
        self.holding.remove(&conn);
        for a in &c.abilities {
            if let Some(f) = self.function_mut(a.function) {
                f.workers = f.workers.saturating_sub(1);
            }
        }
        for job_no in c.running {
            self.worker_lost_job(job_no);
        }
        for job_no in c.waiting {
            self.detach_client(job_no, conn);
        }
    }

    /// The server found a protocol error on `conn`: report it in order
    /// with earlier replies, and close the connection afterwards if asked.
    pub fn protocol_error(&mut self, conn: ConnId, reply: Out, close: bool, now: Millis) {
        self.advance(now);
        self.send(conn, reply);
        if close {
            self.close(conn);
        }
    }

    /// Time passes: scheduled jobs become due, job time limits expire.
    pub fn tick(&mut self, now: Millis) {
        self.advance(now);
    }

    /// When the engine next needs a `tick`, if ever.
    pub fn next_deadline(&self) -> Option<Millis> {
        // Saturating: an epoch of 1.8e16 s or more would wrap to a deadline
        // in the past, and the engine would wake every millisecond.
        let sched = self.schedule.peek().map(|Reverse((when, _))| ((*when).max(0) as u64).saturating_mul(1000));
        let tmo = self.timeouts.peek().map(|Reverse((at, _, _))| *at);
        let store = match self.config.store_timeout_ms {
            0 => None,
            limit => self.insert_times.front().map(|(_, at)| at.saturating_add(limit)),
        };
        [sched, tmo, store].into_iter().flatten().min()
    }

    /// The store made everything up to `through` durable, except the
    /// inserts listed in `failed`: their submitters get an ERROR.
    pub fn stored(&mut self, through: u64, failed: &[u64], now: Millis) {
        self.advance(now);
        self.apply_completion(through, failed);
    }

    fn apply_completion(&mut self, through: u64, failed: &[u64]) {
        // Called once per store commit: no allocation unless something failed.
        let failed: HashSet<u64> = if failed.is_empty() { HashSet::new() } else { failed.iter().copied().collect() };
        for seq in &failed {
            if let Some(job_no) = self.pending_inserts.remove(seq) {
                self.insert_failed(job_no);
            }
        }
        if through > self.committed_seq {
            self.committed_seq = through;
        }
        while let Some(entry) = self.pending_inserts.first_entry() {
            if *entry.key() > through {
                break;
            }
            let (seq, job_no) = entry.remove_entry();
            if let Some(job) = self.jobs.get_mut(&job_no) {
                if job.pending_seq == seq {
                    job.pending_seq = 0;
                }
            }
        }
        if !self.done_early.is_empty() {
            self.done_early.retain(|seq| *seq > through);
        }
        self.release_holding(&failed);
    }

    /// Sends what each holding connection may now send.
    fn release_holding(&mut self, failed: &HashSet<u64>) {
        // The set is taken while connections release what they hold; those
        // still holding something put themselves back, and the emptied set
        // (with its capacity) is reused for the next commit.
        let mut holding = std::mem::take(&mut self.holding);
        for conn in holding.drain() {
            self.release_held(conn, failed);
        }
        holding.extend(self.holding.drain());
        self.holding = holding;
    }

    fn advance(&mut self, now: Millis) {
        if now > self.now {
            self.now = now;
        }
        self.run_due_schedule();
        self.run_due_timeouts();
        self.expire_inserts();
    }

    /// Records an insert whose JOB_CREATED waits for the store.
    pub(crate) fn track_insert(&mut self, seq: u64, job_no: JobNo) {
        self.pending_inserts.insert(seq, job_no);
        if self.config.store_timeout_ms > 0 {
            self.insert_times.push_back((seq, self.now));
        }
    }

    /// Inserts the store has not confirmed within `store_timeout_ms` (a
    /// hung disk or database) are answered with an error, like refused
    /// ones, and their rows withdrawn: the Delete that follows each Insert
    /// cancels it if it is still waiting in the writer, or removes the row
    /// if it was written after all, so no job the engine has forgotten is
    /// left in the table to run after a restart.
    fn expire_inserts(&mut self) {
        let limit = self.config.store_timeout_ms;
        if limit == 0 {
            return;
        }
        let mut expired = Vec::new();
        while let Some(&(seq, at)) = self.insert_times.front() {
            if !self.pending_inserts.contains_key(&seq) {
                self.insert_times.pop_front();
                continue;
            }
            if self.now < at.saturating_add(limit) {
                break;
            }
            self.insert_times.pop_front();
            expired.push(seq);
        }
        if expired.is_empty() {
            return;
        }
        tracing::warn!(
            jobs = expired.len(),
            seconds = limit / 1000,
            "the store did not confirm background jobs in time; their submitters get an error"
        );
        for seq in &expired {
            let Some(job) = self.pending_inserts.get(seq).and_then(|no| self.jobs.get(no)) else { continue };
            let op = self.row_delete(job);
            self.persist(op);
        }
        self.apply_completion(self.committed_seq, &expired);
    }

    fn run_due_schedule(&mut self) {
        let now_secs = (self.now / 1000) as i64;
        while let Some(Reverse((when, job_no))) = self.schedule.peek().copied() {
            if when > now_secs {
                break;
            }
            self.schedule.pop();
            let Some(job) = self.jobs.get_mut(&job_no) else { continue };
            if job.state != JobState::Scheduled {
                continue;
            }
            job.state = JobState::Queued;
            let (f, p) = (job.function, job.priority);
            if let Some(func) = self.function_mut(f) {
                func.queues[p.index()].push_back(job_no);
            }
            self.wake_workers(f);
        }
    }

    fn run_due_timeouts(&mut self) {
        while let Some(Reverse((at, job_no, assignment))) = self.timeouts.peek().copied() {
            if at > self.now {
                break;
            }
            self.timeouts.pop();
            let Some(job) = self.jobs.get(&job_no) else { continue };
            let JobState::Running(worker) = job.state else { continue };
            if job.assignment != assignment {
                continue;
            }
            tracing::info!(handle = %String::from_utf8_lossy(job.handle_bytes()), "job exceeded its CAN_DO_TIMEOUT limit");
            if let Some(c) = self.conns.get_mut(&worker) {
                c.running.retain(|&j| j != job_no);
            }
            match self.config.timeout_action {
                TimeoutAction::Fail => {
                    self.fail_to_clients(job_no);
                    self.end_job(job_no);
                }
                TimeoutAction::Retry => self.requeue_or_drop(job_no),
            }
        }
    }

    // ----- output -------------------------------------------------------

    /// Queues output for a connection, behind anything held for it.
    pub(crate) fn send(&mut self, conn: ConnId, out: Out) {
        match self.conns.get_mut(&conn) {
            Some(c) if !c.held.is_empty() => c.held.push_back(Held::Ready(out)),
            Some(_) => self.out.sends.push((conn, out)),
            None => {}
        }
    }

    pub(crate) fn send_packet(&mut self, conn: ConnId, resp: Response) {
        self.send(conn, Out::Packet(resp));
    }

    /// Sends JOB_CREATED, or holds it until store sequence `seq` commits.
    pub(crate) fn send_job_created(&mut self, conn: ConnId, handle: Bytes, seq: u64) {
        if seq == 0 || seq <= self.committed_seq {
            self.send_packet(conn, Response::JobCreated { handle });
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.held.push_back(Held::JobCreated { seq, handle });
            self.holding.insert(conn);
        }
    }

    fn release_held(&mut self, conn: ConnId, failed: &HashSet<u64>) {
        let committed = self.committed_seq;
        let Some(c) = self.conns.get_mut(&conn) else {
            self.holding.remove(&conn);
            return;
        };
        while let Some(front) = c.held.front() {
            match front {
                Held::JobCreated { seq, .. }
                    if *seq > committed && !failed.contains(seq) && !self.done_early.contains(seq) =>
                {
                    break
                }
                _ => {}
            }
            let Some(item) = c.held.pop_front() else { break };
            let out = match item {
                Held::JobCreated { seq, handle } => {
                    // A job that ran is reported created even if its
                    // insert failed afterwards: there is nothing to store.
                    let ran = self.done_early.remove(&seq);
                    if failed.contains(&seq) && !ran {
                        Out::Packet(Response::error("QUEUE_ERROR", "Job could not be stored durably"))
                    } else {
                        Out::Packet(Response::JobCreated { handle })
                    }
                }
                Held::Ready(out) => out,
            };
            self.out.sends.push((conn, out));
        }
        if c.held.is_empty() {
            self.holding.remove(&conn);
        } else {
            self.holding.insert(conn);
        }
    }

    /// Store operations get consecutive sequence numbers.
    /// The store write that records `job`'s row.
    pub(crate) fn row_insert(&self, job: &Job) -> PersistOp {
        PersistOp::Insert {
            function: self.function(job.function).map(|f| f.name.clone()).unwrap_or_default(),
            unique: job.store_unique(self.config.instance_id),
            priority: job.priority,
            data: job.data(),
            when: job.when,
        }
    }

    /// The store write that removes `job`'s row.
    pub(crate) fn row_delete(&self, job: &Job) -> PersistOp {
        PersistOp::Delete {
            function: self.function(job.function).map(|f| f.name.clone()).unwrap_or_default(),
            unique: job.store_unique(self.config.instance_id),
        }
    }

    pub(crate) fn persist(&mut self, op: PersistOp) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.out.persist.push((seq, op));
        seq
    }

    pub(crate) fn close(&mut self, conn: ConnId) {
        self.out.close.push(conn);
    }

    // ----- lookups ------------------------------------------------------

    pub(crate) fn function_mut(&mut self, f: FnId) -> Option<&mut Function> {
        self.functions.get_mut(f as usize).and_then(Option::as_mut)
    }

    pub(crate) fn function(&self, f: FnId) -> Option<&Function> {
        self.functions.get(f as usize).and_then(Option::as_ref)
    }

    /// Finds or creates a function by exact name.
    pub(crate) fn function_id(&mut self, name: &Bytes) -> FnId {
        if let Some(&id) = self.fn_index.get(name) {
            return id;
        }
        let id = self.functions.len() as FnId;
        let name = Bytes::copy_from_slice(name);
        self.functions.push(Some(Function::new(name.clone(), self.config.default_max_queue)));
        self.fn_index.insert(name, id);
        id
    }

    /// Resolves a handle sent by a peer to a job number.
    pub(crate) fn job_by_handle(&self, handle: &[u8]) -> Option<JobNo> {
        let prefix = self.config.handle_prefix.as_bytes();
        let rest = handle.strip_prefix(prefix)?.strip_prefix(b":")?;
        if rest.is_empty() || rest.len() > 20 || !rest.iter().all(u8::is_ascii_digit) || rest[0] == b'0' {
            return None;
        }
        let no: JobNo = std::str::from_utf8(rest).ok()?.parse().ok()?;
        self.jobs.contains_key(&no).then_some(no)
    }

    pub(crate) fn now_secs(&self) -> i64 {
        (self.now / 1000) as i64
    }
}
