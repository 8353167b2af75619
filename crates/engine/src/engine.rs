//! The engine: owns all job state and turns events into effects.
//!
//! [`Engine`] holds a handful of parts, each keeping its own rule (see
//! their modules): the job table, the function table, the connection
//! table, the coalescing index, the store ledger (with the replies held
//! for it) and the timers. The handlers in the child modules move jobs
//! between them:
//!
//! - `dispatch`: routes each request to its handler;
//! - `submit`: SUBMIT_*, replay, the shutdown dump;
//! - `grab`: handing jobs to workers, sleeping and waking them;
//! - `results`: WORK_* packets from workers;
//! - `status`: GET_STATUS and GET_STATUS_UNIQUE;
//! - `lifecycle`: the one place a job ends ([`Outcome`]) and the one place
//!   an attempt ends ([`AttemptEnd`]), retries and requeues;
//! - `retry`: retries with backoff and dead letters, as a function's
//!   policy says;
//! - `policy_commands`: operators' policies at run time;
//! - `requeue`: dead letters made live again;
//! - `pause`: pausing, resuming and purging one function;
//! - `cron_runs`: recurring jobs' runs, their settings and `cron` commands;
//! - `recording`: each job's record through its life;
//! - `control_reads`: records for the server's own queries (its web port);
//! - `reserved`: the server's own functions `sprocket.*` and the admin
//!   commands that read records;
//! - `durability`: store reports, the store timeout, store rows and held
//!   replies.

use bytes::Bytes;
use sprocket_proto::{Request, Response};

use crate::coalesce::CoalesceIndex;
use crate::conn::ConnTable;
use crate::cron::CronTable;
use crate::function::{Function, FunctionTable};
use crate::handles::HandleBlocks;
use crate::job::JobState;
use crate::jobs::JobTable;
use crate::ledger::Ledger;
use crate::outcome::AttemptEnd;
use crate::policy::{FunctionPolicy, PolicyEntry, PolicyTable};
use crate::records::{EndedRecords, PendingPurges, PendingReads};
use crate::timers::{Due, Timers};
use crate::types::*;

mod control_reads;
mod cron_runs;
pub(crate) mod dead;
mod dispatch;
mod durability;
mod grab;
mod lifecycle;
mod pause;
mod policy_commands;
mod recording;
mod requeue;
mod reserved;
mod results;
mod retry;
mod status;
mod submit;

/// Most in-memory records expired in one turn, so that a turn never takes
/// long however many ended at once.
const RECORD_EXPIRY_BATCH: usize = 1000;

/// The Gearman job engine. Feed it events; drain [`Engine::outbox`].
pub struct Engine {
    config: Config,
    jobs: JobTable,
    functions: FunctionTable,
    conns: ConnTable,
    coalesce: CoalesceIndex,
    ledger: Ledger,
    timers: Timers,
    /// Ended jobs' records the engine holds (see `records`).
    ended_records: EndedRecords,
    /// Reads of records from the store that replies wait for.
    pending_reads: PendingReads,
    /// Purges of records in the store, waiting or under way.
    pending_purges: PendingPurges,
    /// The handle numbers this engine may give out.
    handles: HandleBlocks,
    /// Per-function policies (retries, dead letters, run limits).
    policies: PolicyTable,
    /// Recurring jobs: their definitions and next runs.
    cron: CronTable,
    /// The latest time any event carried; never goes back.
    now: Millis,
    out: Outbox,
}

impl Engine {
    /// An engine with no jobs, functions or connections.
    pub fn new(config: Config) -> Engine {
        let mut jobs = JobTable::default();
        jobs.jump_to(config.first_handle);
        Engine {
            timers: Timers::new(config.store_timeout_ms),
            ended_records: EndedRecords::new(config.records.durable, config.records.retention),
            pending_reads: PendingReads::default(),
            pending_purges: PendingPurges::default(),
            handles: HandleBlocks::new(config.first_handle, config.handle_block),
            policies: PolicyTable::default(),
            cron: CronTable::default(),
            config,
            jobs,
            functions: FunctionTable::default(),
            conns: ConnTable::default(),
            coalesce: CoalesceIndex::default(),
            ledger: Ledger::default(),
            now: 0,
            out: Outbox::default(),
        }
    }

    /// The settings the engine was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Takes the effects produced since the last call.
    pub fn take_outbox(&mut self) -> Outbox {
        if self.ledger.release_due() {
            self.release_held(&Default::default());
        }
        std::mem::take(&mut self.out)
    }

    /// How many JOB_CREATED answers submissions have been promised so far
    /// (sent or still held for the store): compared before and after a
    /// request, it tells whether the request is a submission that will be
    /// answered with one, which then appears in [`Outbox::created`].
    pub fn job_created_promised(&self) -> u64 {
        self.ledger.promised()
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
        self.ledger.set_store_down(down);
    }

    /// Whether `conn` has replies held back for the store (a JOB_CREATED
    /// waiting for its commit, and whatever followed it).
    pub fn holds_replies(&self, conn: ConnId) -> bool {
        self.conns.get(conn).is_some_and(|c| !c.held.is_empty())
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    // ----- events -------------------------------------------------------

    /// A connection was accepted.
    pub fn connected(&mut self, conn: ConnId, fd: i64, peer: String) {
        self.conns.open(conn, fd, peer, self.config.exceptions_default);
    }

    /// Limits which functions' jobs `conn` may read through the reserved
    /// functions `sprocket.result`, `sprocket.record` and
    /// `sprocket.records` (an access list's `invoke` rule).
    pub fn set_read_guard(&mut self, conn: ConnId, guard: Option<crate::conn::ReadGuard>) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.read_guard = guard;
        }
    }

    /// One request packet arrived on `conn` at time `now`.
    pub fn request(&mut self, conn: ConnId, req: Request, now: Millis) {
        self.advance(now);
        if !self.conns.contains(conn) {
            return;
        }
        self.dispatch(conn, req);
    }

    /// A connection closed: its running jobs go back to their queues and
    /// the foreground jobs it waited on lose a listener.
    pub fn disconnected(&mut self, conn: ConnId, now: Millis) {
        self.advance(now);
        let Some(c) = self.conns.close(conn) else { return };
        self.ledger.forget(conn);
        for a in &c.abilities {
            if let Some(f) = self.functions.get_mut(a.function) {
                f.workers_removed(1);
            }
        }
        for job_no in c.running {
            self.end_attempt(job_no, AttemptEnd::WorkerLost);
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
        // Records kept in memory expire to the second: one tick can expire
        // every record that ended within the same second.
        let expiry = self.ended_records.next_expiry().map(|at| at.div_ceil(1000).saturating_mul(1000));
        match (self.timers.next_deadline(), expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Another block of handle numbers arrived from the store (after
    /// [`Outbox::wants_handles`]): `first .. first + handle_block`.
    pub fn add_handle_block(&mut self, first: JobNo) {
        self.handles.add(first);
    }

    /// Replaces the policy file's policies (at start-up and on each
    /// reload); operators' run-time policies stay in force over them.
    pub fn set_file_policies(&mut self, entries: Vec<(String, FunctionPolicy)>) {
        self.policies.set_file(entries);
    }

    /// The policy in force for function `name`, if any.
    pub fn policy_for(&self, name: &[u8]) -> Option<PolicyEntry> {
        self.policies.lookup(name).cloned()
    }

    /// Every policy in force, operators' first.
    pub fn policies(&self) -> Vec<PolicyEntry> {
        self.policies.entries().cloned().collect()
    }

    /// Ended records held in memory (with `-q builtin`, or until their
    /// store write is confirmed).
    pub fn records_in_memory(&self) -> usize {
        self.ended_records.len_in_memory()
    }

    /// The number for a new job (or a reply's own handle).
    pub(crate) fn new_job_no(&mut self) -> JobNo {
        let (no, ask) = self.handles.take(self.jobs.next_no());
        if ask {
            self.out.wants_handles = true;
        }
        self.jobs.jump_to(no);
        no
    }

    /// The store made everything up to `through` durable, except the
    /// inserts listed in `failed`: their submitters get an ERROR.
    pub fn stored(&mut self, through: u64, failed: &[u64], now: Millis) {
        self.advance(now);
        self.apply_completion(through, failed);
    }

    /// Moves the clock to `now` (never back) and runs every timer due.
    fn advance(&mut self, now: Millis) {
        if now > self.now {
            self.now = now;
        }
        // Store deadlines are handled together after the loop, so one
        // warning covers every insert that expired in this tick; the Vec
        // allocates only when one does.
        let mut expired = Vec::new();
        loop {
            let ledger = &self.ledger;
            let Some(due) = self.timers.pop_due(self.now, |seq| ledger.is_pending(seq)) else { break };
            match due {
                Due::Scheduled(job_no) => self.job_due(job_no),
                Due::TimeLimit { job, assignment } => self.time_limit_expired(job, assignment),
                Due::StoreTimeout(seq) => expired.push(seq),
                Due::Retry { job, assignment } => self.retry_due(job, assignment),
                Due::Cron { entry, at } => self.cron_due(entry, at),
            }
        }
        if !expired.is_empty() {
            self.expire_inserts(&expired);
        }
        if self.ended_records.next_expiry().is_some_and(|at| at <= self.now) {
            self.ended_records.expire(self.now, RECORD_EXPIRY_BATCH);
        }
    }

    /// A scheduled job's time came: it joins its queue.
    fn job_due(&mut self, job_no: JobNo) {
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        if job.state() != JobState::Scheduled {
            return;
        }
        job.set_state(JobState::Queued);
        let (f, p) = (job.function, job.priority);
        if let Some(func) = self.functions.get_mut(f) {
            func.job_due(job_no, p);
        }
        self.wake_workers(f);
    }

    /// A CAN_DO_TIMEOUT limit expired, if it is for the job's current
    /// hand-out.
    fn time_limit_expired(&mut self, job_no: JobNo, assignment: u32) {
        let Some(job) = self.jobs.get(job_no) else { return };
        if !job.is_running() || job.assignment != assignment {
            return;
        }
        tracing::info!(handle = %String::from_utf8_lossy(job.handle_bytes()), "job exceeded its CAN_DO_TIMEOUT limit");
        self.end_attempt(job_no, AttemptEnd::TimedOut);
    }

    // ----- output -------------------------------------------------------

    /// Queues output for a connection, behind anything held for it.
    pub(crate) fn send(&mut self, conn: ConnId, out: Out) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        if let Some(out) = c.held.pass_or_hold(out) {
            self.out.sends.push((conn, out));
        }
    }

    fn send_packet(&mut self, conn: ConnId, resp: Response) {
        self.send(conn, Out::Packet(resp));
    }

    /// Closes `conn` once its pending output is written.
    pub(crate) fn close(&mut self, conn: ConnId) {
        self.out.close.push(conn);
    }

    // ----- lookups ------------------------------------------------------

    /// Finds or creates a function by exact name.
    pub(crate) fn function_id(&mut self, name: &Bytes) -> FnId {
        self.functions.find_or_create(name, self.config.default_max_queue)
    }

    /// Resolves a handle sent by a peer to a job number.
    pub(crate) fn job_by_handle(&self, handle: &[u8]) -> Option<JobNo> {
        let no = self.handle_number(handle)?;
        self.jobs.contains(no).then_some(no)
    }

    /// The number of a handle of this server's shape (its prefix, a colon,
    /// a number without leading zeros).
    fn handle_number(&self, handle: &[u8]) -> Option<JobNo> {
        let prefix = self.config.handle_prefix.as_bytes();
        let rest = handle.strip_prefix(prefix)?.strip_prefix(b":")?;
        if rest.is_empty() || rest.len() > 20 || !rest.iter().all(u8::is_ascii_digit) || rest[0] == b'0' {
            return None;
        }
        std::str::from_utf8(rest).ok()?.parse().ok()
    }

    /// The number of a handle this server could have given (its prefix, a
    /// number) that no job has now: for a replayed job's earlier handle.
    pub(crate) fn job_by_handle_text(&self, handle: &[u8]) -> Option<JobNo> {
        let no = self.handle_number(handle)?;
        (!self.jobs.contains(no)).then_some(no)
    }

    fn now_secs(&self) -> i64 {
        (self.now / 1000) as i64
    }

    // ----- read access for the admin protocol ---------------------------

    /// Every job that exists.
    pub(crate) fn job_table(&self) -> &JobTable {
        &self.jobs
    }

    /// Every function.
    pub(crate) fn function_table(&self) -> &FunctionTable {
        &self.functions
    }

    /// Every open connection.
    pub(crate) fn conn_table(&self) -> &ConnTable {
        &self.conns
    }

    /// The store ledger, read-only (for views).
    pub(crate) fn ledger_view(&self) -> &Ledger {
        &self.ledger
    }

    /// The engine's clock: the time of the latest event, Unix ms.
    pub(crate) fn now(&self) -> Millis {
        self.now
    }

    /// Function `f`, if it exists.
    pub(crate) fn function(&self, f: FnId) -> Option<&Function> {
        self.functions.get(f)
    }

    /// Sets the queue limits of the function with exactly this name, if
    /// there is one.
    pub(crate) fn set_queue_limits(&mut self, name: &[u8], limits: [u32; 3]) {
        if let Some(func) = self.functions.id_of(name).and_then(|f| self.functions.get_mut(f)) {
            func.set_max_queue(limits);
        }
    }
}
