//! Functions: each one's queues by priority, its job counts, its workers
//! and sleepers, and the table that names them.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;
use sprocket_proto::Priority;

use crate::hash::FastSet;
use crate::outcome::Outcome;
use crate::types::{ConnId, FnId, JobNo};

/// How many jobs of one function were submitted and how they ended, since
/// the server started (Prometheus counters and the dashboard's rates are
/// made from them). Each is bumped once per job, so they cost a few
/// additions on the hot path.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FunctionCounters {
    /// New jobs made by a SUBMIT_* (a submission that joins an existing
    /// job by its unique is not a new job; jobs replayed from the store at
    /// start-up were counted by the server run that took them).
    pub submitted: u64,
    /// Jobs that ended with WORK_COMPLETE.
    pub completed: u64,
    /// Jobs that ended with WORK_FAIL, or whose time limit
    /// (`--timeout-action fail`) or attempts (`--job-retries`) ran out.
    pub failed: u64,
    /// Jobs that ended with WORK_EXCEPTION.
    pub exceptions: u64,
    /// Failed attempts a policy gave another try (after a backoff).
    pub retried: u64,
    /// Jobs that ran out of attempts under a policy with dead letters and
    /// were kept as dead letters.
    pub dead: u64,
}

impl FunctionCounters {
    /// Counts the end of a job as `outcome`; ends that are no verdict on
    /// the job (cancelled, function dropped, abandoned, not stored) are
    /// not counted.
    fn count_end(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Completed { .. } => self.completed += 1,
            Outcome::Exception { .. } => self.exceptions += 1,
            Outcome::Failed | Outcome::TimedOut | Outcome::Dropped { .. } => self.failed += 1,
            Outcome::Dead { .. } => self.dead += 1,
            Outcome::Cancelled
            | Outcome::Purged
            | Outcome::FunctionDropped
            | Outcome::NotStored
            | Outcome::Abandoned => {}
        }
    }
}

/// One function.
///
/// Its counts follow the jobs of the function that exist: `total` is every
/// such job, `queued[p]` those of priority `p` waiting (runnable or
/// scheduled), `running` those held by a worker, and
/// `total == sum(queued) + running` always. Only the `job_*` methods change
/// them, each for one move of a job.
#[derive(Debug, Default)]
pub(crate) struct Function {
    name: Bytes,
    /// Runnable jobs by priority (high, normal, low), FIFO. Entries of jobs
    /// that were removed or handed out meanwhile are skipped when met.
    queues: [VecDeque<JobNo>; 3],
    queued: [usize; 3],
    total: usize,
    running: usize,
    /// Jobs waiting out a retry's backoff (counted in `queued` too, as
    /// `status` shows them).
    retrying: usize,
    /// Registrations (a connection registered twice counts twice).
    workers: usize,
    /// Sleeping workers not yet woken, oldest first. Entries may be stale
    /// (the worker woke or left); they are checked when popped.
    sleepers: VecDeque<ConnId>,
    /// Queue limits per priority; 0 means none.
    max_queue: [u32; 3],
    counters: FunctionCounters,
    /// An operator paused it: its jobs queue but are not handed out, and
    /// its sleeping workers are not woken for them.
    paused: bool,
}

impl Function {
    fn new(name: Bytes, default_max_queue: u32) -> Function {
        Function { name, max_queue: [default_max_queue; 3], ..Default::default() }
    }

    /// The function's name, as workers registered it.
    pub fn name(&self) -> &Bytes {
        &self.name
    }

    /// Jobs waiting per priority (high, normal, low), scheduled ones included.
    pub fn queued(&self) -> [usize; 3] {
        self.queued
    }

    /// Jobs of this function that exist: queued, scheduled and running.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Jobs held by a worker.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Jobs waiting for their next attempt (a retry's backoff).
    pub fn retrying(&self) -> usize {
        self.retrying
    }

    /// Worker registrations.
    pub fn workers(&self) -> usize {
        self.workers
    }

    pub fn max_queue(&self) -> [u32; 3] {
        self.max_queue
    }

    /// Jobs submitted and ended since the server started.
    pub fn counters(&self) -> FunctionCounters {
        self.counters
    }

    /// Whether an operator paused it.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Sets the queue limits per priority (0 = none).
    pub fn set_max_queue(&mut self, limits: [u32; 3]) {
        self.max_queue = limits;
    }

    /// Whether a new job of priority `p` would exceed the queue limit. The
    /// limit of the job's priority is compared with all the function's jobs,
    /// as gearmand does.
    pub fn is_full(&self, p: Priority) -> bool {
        let limit = self.max_queue[p.index()];
        limit > 0 && self.total >= limit as usize
    }

    pub fn worker_added(&mut self) {
        self.workers += 1;
    }

    pub fn workers_removed(&mut self, n: usize) {
        self.workers = self.workers.saturating_sub(n);
    }

    /// A new job exists; if `runnable`, it joins the tail of its queue,
    /// otherwise it waits for its time (see [`Function::job_due`]).
    pub fn job_added(&mut self, no: JobNo, p: Priority, runnable: bool) {
        self.total += 1;
        self.queued[p.index()] += 1;
        if runnable {
            self.queues[p.index()].push_back(no);
        }
    }

    /// A scheduled job's time came: it joins the tail of its queue.
    pub fn job_due(&mut self, no: JobNo, p: Priority) {
        self.queues[p.index()].push_back(no);
    }

    /// A waiting job was handed to a worker.
    pub fn job_assigned(&mut self, p: Priority) {
        self.running += 1;
        self.queued[p.index()] = self.queued[p.index()].saturating_sub(1);
    }

    /// A running job goes back to the tail of its queue.
    pub fn job_requeued(&mut self, no: JobNo, p: Priority) {
        self.running = self.running.saturating_sub(1);
        self.queued[p.index()] += 1;
        self.queues[p.index()].push_back(no);
    }

    /// A running job waits for its next attempt (a retry's backoff); it
    /// joins its queue again when due (see [`Function::job_due`]).
    pub fn job_waits(&mut self, p: Priority) {
        self.running = self.running.saturating_sub(1);
        self.queued[p.index()] += 1;
        self.retrying += 1;
    }

    /// A replayed queued job waits out the rest of its retry's backoff.
    pub fn job_waits_again(&mut self) {
        self.retrying += 1;
    }

    /// A retry's backoff ended: the job joins the tail of its queue.
    pub fn retry_due(&mut self, no: JobNo, p: Priority) {
        self.retrying = self.retrying.saturating_sub(1);
        self.job_due(no, p);
    }

    /// A job left the table; `running` says whether a worker held it,
    /// `retrying` whether it waited for a retry.
    pub fn job_removed(&mut self, p: Priority, running: bool, retrying: bool) {
        self.total = self.total.saturating_sub(1);
        if retrying {
            self.retrying = self.retrying.saturating_sub(1);
        }
        if running {
            self.running = self.running.saturating_sub(1);
        } else {
            self.queued[p.index()] = self.queued[p.index()].saturating_sub(1);
        }
    }

    /// Pops the next runnable job: highest non-empty priority first, FIFO
    /// within it. Entries `runnable` rejects are stale and dropped.
    pub fn pop_runnable(&mut self, runnable: impl Fn(JobNo) -> bool) -> Option<JobNo> {
        for q in self.queues.iter_mut() {
            while let Some(job_no) = q.pop_front() {
                if runnable(job_no) {
                    return Some(job_no);
                }
            }
        }
        None
    }

    /// Whether any queued entry is a job `runnable` accepts.
    pub fn has_runnable(&self, runnable: impl Fn(JobNo) -> bool) -> bool {
        self.queues.iter().flatten().any(|&no| runnable(no))
    }

    /// Lists `conn` as sleeping on this function. Entries go stale (the
    /// worker woke for another function, or left) and are normally dropped
    /// when work pops them; a function that rarely gets work would keep them
    /// all, one more each time its workers sleep (a worker polling with a
    /// timeout sleeps every few hundred milliseconds). So once the list
    /// holds well over one entry per registered worker, it is compacted to
    /// the workers `still_asleep` accepts, each once: its length stays
    /// proportional to the workers, at a constant cost per entry.
    pub fn add_sleeper(&mut self, conn: ConnId, still_asleep: impl Fn(ConnId) -> bool) {
        self.sleepers.push_back(conn);
        if self.sleepers.len() <= 2 * self.workers + 16 {
            return;
        }
        let mut kept = FastSet::default();
        self.sleepers.retain(|id| still_asleep(*id) && kept.insert(*id));
    }

    /// The oldest listed sleeper, possibly stale.
    pub fn pop_sleeper(&mut self) -> Option<ConnId> {
        self.sleepers.pop_front()
    }

    #[cfg(test)]
    pub fn sleeper_entries(&self) -> usize {
        self.sleepers.len()
    }
}

/// Every function by number, and by exact name. A function's number is
/// its slot, never reused: a dropped function leaves an empty slot, so a
/// number held anywhere never comes to mean another function.
#[derive(Debug, Default)]
pub(crate) struct FunctionTable {
    slots: Vec<Option<Function>>,
    by_name: HashMap<Bytes, FnId>,
    /// Names an operator paused. Kept by name rather than only on the
    /// function, so that a paused function dropped and made again (or
    /// paused before it exists) stays paused, as its stored setting says.
    paused: HashSet<Bytes>,
}

impl FunctionTable {
    pub fn get(&self, f: FnId) -> Option<&Function> {
        self.slots.get(f as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, f: FnId) -> Option<&mut Function> {
        self.slots.get_mut(f as usize).and_then(Option::as_mut)
    }

    /// The function with exactly this name.
    pub fn id_of(&self, name: &[u8]) -> Option<FnId> {
        self.by_name.get(name).copied()
    }

    /// The name of function `f`, empty if it is gone.
    pub fn name_of(&self, f: FnId) -> Bytes {
        self.get(f).map(|func| func.name.clone()).unwrap_or_default()
    }

    /// Finds or creates a function by exact name.
    pub fn find_or_create(&mut self, name: &Bytes, default_max_queue: u32) -> FnId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = self.slots.len() as FnId;
        let name = Bytes::copy_from_slice(name);
        let mut func = Function::new(name.clone(), default_max_queue);
        func.paused = self.paused.contains(&name);
        self.slots.push(Some(func));
        self.by_name.insert(name, id);
        id
    }

    /// The first function whose name matches ignoring ASCII case (how
    /// gearmand's `drop function` finds it).
    pub fn find_ignore_case(&self, name: &[u8]) -> Option<FnId> {
        self.slots
            .iter()
            .enumerate()
            .find_map(|(i, f)| f.as_ref().filter(|f| f.name.eq_ignore_ascii_case(name)).map(|_| i as FnId))
    }

    /// Counts a new job submitted to function `f`.
    pub fn count_submitted(&mut self, f: FnId) {
        if let Some(func) = self.get_mut(f) {
            func.counters.submitted += 1;
        }
    }

    /// Counts a failed attempt of function `f` that a policy retries.
    pub fn count_retry(&mut self, f: FnId) {
        if let Some(func) = self.get_mut(f) {
            func.counters.retried += 1;
        }
    }

    /// Counts the end of a job of function `f` as `outcome`.
    pub fn count_end(&mut self, f: FnId, outcome: &Outcome) {
        if let Some(func) = self.get_mut(f) {
            func.counters.count_end(outcome);
        }
    }

    /// Pauses or resumes the function named `name` (and any made later
    /// under that name); returns whether that changed anything.
    pub fn set_paused(&mut self, name: &[u8], paused: bool) -> bool {
        let changed = if paused { self.paused.insert(Bytes::copy_from_slice(name)) } else { self.paused.remove(name) };
        if let Some(func) = self.by_name.get(name).copied().and_then(|f| self.get_mut(f)) {
            func.paused = paused;
        }
        changed
    }

    /// Whether the name is paused (whether or not a function has it now).
    pub fn name_paused(&self, name: &[u8]) -> bool {
        self.paused.contains(name)
    }

    /// Whether function `f` is paused.
    pub fn is_paused(&self, f: FnId) -> bool {
        self.get(f).is_some_and(|func| func.paused)
    }

    /// Forgets function `f`; its slot stays empty.
    pub fn remove(&mut self, f: FnId) {
        if let Some(func) = self.slots.get_mut(f as usize).and_then(Option::take) {
            self.by_name.remove(&func.name);
        }
    }

    /// Every function that exists, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = &Function> {
        self.slots.iter().flatten()
    }

    /// Every function number ever given out (dropped ones included).
    pub fn ids(&self) -> impl Iterator<Item = FnId> {
        0..self.slots.len() as FnId
    }
}
