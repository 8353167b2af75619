//! The group-commit writer task.
//!
//! The server submits numbered [`StoreOp`]s without waiting; one task
//! commits them in batches and reports [`Completion`]s in sequence order.
//! Operations that arrive while a commit is in flight wait in the channel
//! and all go into the next commit, so under load every commit (and its
//! fsync) is shared by many jobs.
//!
//! A network database can commit on several connections at once (each is
//! a *stream*; see [`spawn_streams`]). A commit then starts as soon as
//! operations are pending and a stream is free, instead of waiting for the
//! one before it: with few clients, each waits for one commit instead of
//! one and a half on average. An operation whose key is in a commit still
//! in flight waits for that commit, so the operations of one key reach the
//! database in the order they were submitted.
//!
//! Rules, in the order they apply to an incoming operation:
//! * An Insert followed by a Delete of the same key while both are still
//!   pending cancel out: neither reaches the database and the Insert counts
//!   as durable (its job was finished before it needed to be). This relies
//!   on the engine's guarantee that a key is inserted again only after the
//!   job that owned it was deleted.
//! * While the database is unreachable, Inserts fail at once (the submitter
//!   gets an ERROR, never a JOB_CREATED) and Deletes are kept to be retried
//!   after reconnecting; reconnects back off from `reconnect_min` to
//!   `reconnect_max`.
//! * A batch the database refuses is retried one operation at a time, so
//!   one bad row fails alone.
//! * A commit that fails because the database became unreachable may still
//!   have been applied: its inserts are reported failed and their rows are
//!   deleted again once the database is back.
//!
//! A Delete counts as handled (for [`Completion::through`]) once it is
//! committed or queued for retry after a reconnect.
//!
//! Gathering (one stream only): when commits have been large, a commit
//! that would start with only a fragment of a batch waits a moment for
//! more. Under load the clients whose jobs were in the last commit send
//! their next ones just after it; without the wait, the first few of those
//! go alone into a commit of their own while the rest queue behind it, and
//! every such commit pays a whole fsync. See [`WriterConfig::gather_max`].
//!
//! Regrouping (one stream, small commits): a few clients submitting one
//! job at a time split into two groups that take turns, each commit
//! carrying one group while the other waits, so each job waits for about
//! two commits. When the clients of the commit that just ended have been
//! coming back in at most half a commit's time (a database whose commit
//! is slow against the clients' turn-around, as a PostgreSQL or MySQL
//! server's own flush is), the next commit waits that long for them, and
//! the groups merge into one: each job then waits for one commit. See
//! `TurnAround` and [`Store::regroups`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::{Completion, JobKey, Result, Store, StoreError, StoreOp};

/// A commit that has not answered after this long is treated as a lost
/// database (a hung server or a silently dropped connection), and the
/// writer reconnects. Submitters do not depend on it: the engine answers
/// an insert that is not confirmed within `--store-timeout` with an error
/// itself and withdraws the row with a Delete, which also covers a store
/// that commits inline (see `Store::run_inline`), whose commit this
/// timeout cannot cut short.
const APPLY_TIMEOUT: Duration = Duration::from_secs(60);

async fn apply_bounded(store: &mut dyn Store, ops: &[StoreOp]) -> Result<()> {
    match tokio::time::timeout(APPLY_TIMEOUT, store.apply(ops)).await {
        Ok(r) => r,
        Err(_) => Err(no_answer(store)),
    }
}

/// The error of a commit that passed [`APPLY_TIMEOUT`].
fn no_answer(store: &dyn Store) -> StoreError {
    StoreError::Unavailable(format!("no answer from {} within {APPLY_TIMEOUT:?}", store.describe()))
}

/// Commits `ops`, and once more on a new connection when the first try
/// fails for want of the database without hanging: a connection the server
/// closed while it was idle (MySQL's `wait_timeout`, a restart or failover
/// while nothing was written) fails at its next use, and the jobs of that
/// commit, and every submission until the writer had reconnected, would get
/// ERROR although the database is there. Operations are idempotent (an
/// insert replaces its key's row, a delete removes it), so running a
/// commit again is safe whether or not the first try reached the database.
/// A database that is really down refuses the new connection at once; one
/// that hangs is not waited for twice.
async fn apply_or_reconnect(store: &mut dyn Store, ops: &[StoreOp]) -> Result<()> {
    let first = match tokio::time::timeout(APPLY_TIMEOUT, store.apply(ops)).await {
        Ok(Err(StoreError::Unavailable(e))) => e,
        Ok(r) => return r,
        Err(_) => return Err(no_answer(store)),
    };
    debug!("store commit failed, trying once more on a new connection: {first}");
    match tokio::time::timeout(APPLY_TIMEOUT, store.reconnect()).await {
        Ok(Ok(())) => apply_bounded(store, ops).await,
        _ => Err(StoreError::Unavailable(first)),
    }
}

/// Tuning of the writer.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most operations in one commit; more wait for the next one.
    pub max_batch: usize,
    /// Most bytes (job data, uniques and function names) in one commit,
    /// unless a single operation is larger: a commit of many large jobs
    /// takes the database long enough to pass the apply timeout, and
    /// databases refuse statements past their own limits (PostgreSQL 1 GiB
    /// per array, Redis 1 GiB per client's pending commands) by dropping
    /// the connection, failing every job in the commit.
    pub max_batch_bytes: usize,
    /// First delay between reconnect attempts.
    pub reconnect_min: Duration,
    /// Longest delay between reconnect attempts.
    pub reconnect_max: Duration,
    /// Longest a commit waits to gather more operations (with one stream),
    /// zero for never. It waits only while recent commits were large (at
    /// least [`GATHER_FROM_BATCH`] operations) and fewer than three
    /// quarters of their size are pending; it stops as soon as that many
    /// are. So it costs nothing at low load, and under load it waits about
    /// as long as the clients of the last commit take to send their next
    /// jobs; the limit applies only when those stop coming. Also the
    /// longest wait of regrouping (see the module documentation), which
    /// applies to smaller commits; zero turns both off.
    pub gather_max: Duration,
}

/// Commits smaller than this never wait to gather more (see
/// [`WriterConfig::gather_max`]). Measured with SQLite `--sync=full`
/// (session 7): from 8, 16 one-at-a-time submitters lost 5 %, because
/// their commits, which had alternated between a few jobs and the rest
/// and so overlapped the clients' turn-around, became one group that
/// waited for it; from 32 they are unchanged, while 64 submitters gain
/// 3 % and a four-worker drain 12 %.
pub const GATHER_FROM_BATCH: usize = 32;

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch: 1000,
            max_batch_bytes: 16 << 20,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            gather_max: Duration::from_millis(1),
        }
    }
}

/// The server's end of the writer: submit operations, watch health, close.
pub struct WriterHandle {
    tx: mpsc::UnboundedSender<(u64, StoreOp)>,
    healthy: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl WriterHandle {
    /// Queues an operation. Never blocks. `seq` must be strictly greater
    /// than every earlier `seq` given to this writer.
    pub fn submit(&self, seq: u64, op: StoreOp) {
        if self.tx.send((seq, op)).is_err() {
            // Only after the task ended abnormally (it panicked): nothing
            // will report this seq, which the caller sees as a stall; log it.
            error!(seq, "store writer is gone; operation dropped");
        }
    }

    /// False while the database is unreachable (inserts are being failed).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Commits everything already submitted, reports it, then stops.
    pub async fn close(self) {
        drop(self.tx);
        if let Err(e) = self.task.await {
            error!("store writer task failed: {e}");
        }
    }
}

/// Opens up to `streams - 1` more connections of `first` for concurrent
/// commits (see [`Store::open_another`]); `streams` 0 means the backend's
/// own choice ([`Store::preferred_streams`]). A backend with one writer
/// gives just `first`; a connection that cannot be opened is logged and
/// left out.
pub async fn open_streams(mut first: Box<dyn Store>, streams: usize) -> Vec<Box<dyn Store>> {
    let streams = if streams == 0 { first.preferred_streams() } else { streams };
    let mut more = Vec::new();
    while more.len() + 1 < streams {
        match first.open_another().await {
            Ok(Some(another)) => more.push(another),
            Ok(None) => break,
            Err(e) => {
                warn!("cannot open another connection to {}; committing on {}: {e}", first.describe(), more.len() + 1);
                break;
            }
        }
    }
    let mut all = vec![first];
    all.extend(more);
    all
}

/// Starts the writer task on the current tokio runtime.
pub fn spawn(store: Box<dyn Store>, config: WriterConfig) -> (WriterHandle, mpsc::UnboundedReceiver<Completion>) {
    spawn_streams(vec![store], config)
}

/// Starts the writer with one stream per store (connections to the same
/// table, from [`open_streams`]); up to that many commits are in flight.
///
/// # Panics
/// If `stores` is empty.
pub fn spawn_streams(
    stores: Vec<Box<dyn Store>>,
    config: WriterConfig,
) -> (WriterHandle, mpsc::UnboundedReceiver<Completion>) {
    assert!(!stores.is_empty(), "the writer needs a store");
    let (tx, rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let healthy = Arc::new(AtomicBool::new(true));
    let blocks = stores[0].blocks();
    let regroups = stores[0].regroups();
    let writer = Writer {
        streams: stores.len(),
        idle: stores,
        in_flight: FuturesUnordered::new(),
        config,
        recent_batch: 0,
        backoff: Duration::ZERO,
        unproven: false,
        turn: TurnAround::default(),
        regroups,
        queue: Queue {
            rx,
            done: done_tx,
            healthy: healthy.clone(),
            pending: BTreeMap::new(),
            pending_inserts: HashMap::new(),
            deferred_deletes: Vec::new(),
            failed: Vec::new(),
            max_seen: None,
            reported: None,
            closing: false,
            busy_keys: HashMap::new(),
            busy_from: Vec::new(),
            arrivals: 0,
        },
    };
    let task = if blocks { spawn_on_own_thread(writer) } else { tokio::spawn(writer.run()) };
    (WriterHandle { tx, healthy, task }, done_rx)
}

/// Runs the writer of a blocking store on a thread of its own (with a
/// single-threaded runtime for its channels and timers): a commit then
/// runs right there, and the next one starts as soon as it ends, without
/// waking the server's thread in between. The returned handle finishes
/// when the thread does. If the thread or its runtime cannot be made, the
/// writer runs as a task here instead (commits then go through the
/// blocking pool), so operations are never left unanswered.
fn spawn_on_own_thread(writer: Writer) -> JoinHandle<()> {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            warn!("cannot start the store writer's runtime, writing from the server's: {e}");
            return tokio::spawn(writer.run());
        }
    };
    // Shared so that the writer can be taken back if the thread never starts.
    let slot = Arc::new(std::sync::Mutex::new(Some(writer)));
    let theirs = slot.clone();
    let (finished_tx, finished_rx) = tokio::sync::oneshot::channel::<()>();
    let started = std::thread::Builder::new().name("sprocket-store".into()).spawn(move || {
        let writer = theirs.lock().ok().and_then(|mut w| w.take());
        if let Some(mut writer) = writer {
            for store in &mut writer.idle {
                store.run_inline();
            }
            rt.block_on(writer.run());
        }
        let _ = finished_tx.send(());
    });
    if let Err(e) = started {
        warn!("cannot start the store writer's thread, writing from the server's: {e}");
        if let Some(writer) = slot.lock().ok().and_then(|mut w| w.take()) {
            return tokio::spawn(writer.run());
        }
    }
    tokio::spawn(async move {
        let _ = finished_rx.await;
    })
}

/// A commit under way on one stream; it gives the stream back when done.
type InFlight = Pin<Box<dyn Future<Output = Finished> + Send>>;

/// What a commit gives back.
struct Finished {
    store: Box<dyn Store>,
    seqs: Vec<Option<u64>>,
    ops: Vec<StoreOp>,
    result: Result<()>,
    started: Instant,
}

fn commit_on(mut store: Box<dyn Store>, seqs: Vec<Option<u64>>, ops: Vec<StoreOp>) -> InFlight {
    Box::pin(async move {
        let started = Instant::now();
        let result = apply_or_reconnect(store.as_mut(), &ops).await;
        Finished { store, seqs, ops, result, started }
    })
}

struct Writer {
    /// Streams not committing now.
    idle: Vec<Box<dyn Store>>,
    /// How many streams there are (idle or in flight).
    streams: usize,
    in_flight: FuturesUnordered<InFlight>,
    config: WriterConfig,
    queue: Queue,
    /// The size of recent commits: the last one's if larger, else decaying
    /// by an eighth per commit (see [`Writer::gather`]).
    recent_batch: usize,
    /// The delay before the next reconnect attempt after one that worked
    /// but whose next commit failed again (see [`Writer::reconnect`]).
    backoff: Duration,
    /// The store reconnected and no commit has succeeded since.
    unproven: bool,
    /// How fast the clients of a commit come back (see [`TurnAround`]).
    turn: TurnAround,
    /// The store wants regrouping ([`Store::regroups`]).
    regroups: bool,
}

/// How long the clients whose operations were in the last commit take to
/// send their next ones, against how long a commit takes: both as moving
/// averages, for regrouping (see the module documentation).
#[derive(Debug, Default)]
struct TurnAround {
    /// When the last commit ended.
    last_end: Option<Instant>,
    /// How many operations it carried.
    last_ops: usize,
    /// `Queue::arrivals` when it ended.
    arrivals_at_end: u64,
    /// The turn-around since the last commit has been measured.
    sampled: bool,
    /// Moving average of the time from a commit's end until as many new
    /// operations had arrived as it carried.
    turnaround: Option<Duration>,
    /// Moving average of a commit's duration.
    commit: Option<Duration>,
}

/// An eighth of the new sample, seven eighths of the old average.
fn moving(avg: Option<Duration>, sample: Duration) -> Duration {
    match avg {
        Some(a) => (a * 7 + sample) / 8,
        None => sample,
    }
}

impl TurnAround {
    /// A commit of `ops` operations that took `took` has just ended.
    fn committed(&mut self, ops: usize, took: Duration, arrivals: u64) {
        self.commit = Some(moving(self.commit, took));
        self.last_end = Some(Instant::now());
        self.last_ops = ops;
        self.arrivals_at_end = arrivals;
        self.sampled = false;
    }

    /// As many operations as the last commit carried have arrived since it
    /// ended (from its clients or any others).
    fn back(&self, arrivals: u64) -> bool {
        arrivals.saturating_sub(self.arrivals_at_end) >= self.last_ops as u64
    }

    /// Takes the turn-around sample once the last commit's count is back.
    fn observe(&mut self, arrivals: u64) {
        if self.sampled || self.last_ops == 0 || !self.back(arrivals) {
            return;
        }
        if let Some(end) = self.last_end {
            self.turnaround = Some(moving(self.turnaround, end.elapsed()));
            self.sampled = true;
        }
    }

    /// When the next commit should stop waiting for the last one's clients,
    /// or None to start now: they are back already, or they have not been
    /// coming back within half a commit (waiting would then cost more
    /// than the commit it saves), or the wait (twice their usual
    /// turn-around, at most half a commit and `limit`) is over.
    fn regroup_until(&self, arrivals: u64, limit: Duration) -> Option<Instant> {
        let (Some(end), Some(turnaround), Some(commit)) = (self.last_end, self.turnaround, self.commit) else {
            return None;
        };
        if self.last_ops == 0 || self.back(arrivals) || turnaround * 2 > commit {
            return None;
        }
        let until = end + (turnaround * 2).min(commit / 2).min(limit);
        (until > Instant::now()).then_some(until)
    }
}

/// Everything but the store, so the store can be busy (reconnecting) while
/// the queue keeps taking operations.
struct Queue {
    rx: mpsc::UnboundedReceiver<(u64, StoreOp)>,
    done: mpsc::UnboundedSender<Completion>,
    healthy: Arc<AtomicBool>,
    /// Operations not yet being committed, by seq.
    pending: BTreeMap<u64, StoreOp>,
    /// Seqs of the pending inserts of each key (for cancellation).
    pending_inserts: HashMap<JobKey, Vec<u64>>,
    /// Deletes that failed for lack of a database; retried first.
    deferred_deletes: Vec<JobKey>,
    /// Failed insert seqs not yet reported.
    failed: Vec<u64>,
    max_seen: Option<u64>,
    reported: Option<u64>,
    /// The handle was closed: finish and stop.
    closing: bool,
    /// Keys of the operations in commits still in flight (with several
    /// streams only): later operations on them wait.
    busy_keys: HashMap<JobKey, usize>,
    /// The lowest seq of each commit in flight.
    busy_from: Vec<u64>,
    /// Operations received so far (for [`TurnAround`]).
    arrivals: u64,
}

/// The bytes an operation carries to the database.
fn op_bytes(op: &StoreOp) -> usize {
    match op {
        StoreOp::Insert(job) => job.data.len() + job.unique.len() + job.function.len(),
        StoreOp::Delete(key) => key.unique.len() + key.function.len(),
    }
}

fn op_key(op: &StoreOp) -> JobKey {
    match op {
        StoreOp::Insert(job) => job.key(),
        StoreOp::Delete(key) => key.clone(),
    }
}

impl Queue {
    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    fn intake(&mut self, seq: u64, op: StoreOp) {
        self.arrivals += 1;
        if let Some(prev) = self.max_seen {
            if seq <= prev {
                // A caller bug; keep the order we were given but say so.
                warn!(seq, prev, "store writer got a non-increasing seq");
            }
        }
        self.max_seen = Some(self.max_seen.map_or(seq, |m| m.max(seq)));
        match op {
            StoreOp::Insert(job) => {
                if !self.is_healthy() {
                    self.failed.push(seq);
                    return;
                }
                self.pending_inserts.entry(job.key()).or_default().push(seq);
                self.pending.insert(seq, StoreOp::Insert(job));
            }
            StoreOp::Delete(key) => {
                if let Some(seqs) = self.pending_inserts.remove(&key) {
                    // Inserted and finished before the insert was written:
                    // neither touches the database.
                    for s in seqs {
                        self.pending.remove(&s);
                    }
                    return;
                }
                if self.is_healthy() {
                    self.pending.insert(seq, StoreOp::Delete(key));
                } else {
                    self.deferred_deletes.push(key);
                }
            }
        }
    }

    /// Takes operations from the channel until `enough` holds, `until`
    /// passes, or the handle is closed, reporting as it goes: operations
    /// taken in while waiting may cancel out (a job submitted and finished
    /// meanwhile), leaving nothing to commit, and with no other operation
    /// coming nothing else would report them.
    async fn receive_until(&mut self, until: tokio::time::Instant, enough: impl Fn(&Queue) -> bool) {
        let deadline = tokio::time::sleep_until(until);
        tokio::pin!(deadline);
        while !enough(self) && !self.closing {
            tokio::select! {
                biased;
                msg = self.rx.recv() => match msg {
                    Some((seq, op)) => self.intake(seq, op),
                    None => self.closing = true,
                },
                _ = &mut deadline => break,
            }
            self.report();
        }
    }

    /// Takes everything already in the channel. Returns false once the
    /// handle is closed and the channel is empty.
    fn drain(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok((seq, op)) => self.intake(seq, op),
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.closing = true;
                    return;
                }
            }
        }
    }

    /// Takes the next batch off the front of `pending`, at most `max`
    /// operations and, past the first, `max_bytes` (see [`op_bytes`]): each
    /// operation's seq (none for a retried delete) and, apart, the
    /// operations, which go to the store as they are.
    fn take_batch(&mut self, max: usize, max_bytes: usize) -> (Vec<Option<u64>>, Vec<StoreOp>) {
        let mut seqs: Vec<Option<u64>> = vec![None; self.deferred_deletes.len()];
        let mut ops: Vec<StoreOp> = self.deferred_deletes.drain(..).map(StoreOp::Delete).collect();
        let mut bytes: usize = ops.iter().map(op_bytes).sum();
        let room = max.max(1).saturating_sub(ops.len());
        let busy = &self.busy_keys;
        let mut free: Vec<u64> = Vec::new();
        // Operations on a key whose commit is in flight stay behind.
        for (seq, op) in self.pending.iter().filter(|(_, op)| busy.is_empty() || !busy.contains_key(&op_key(op))) {
            if free.len() >= room {
                break;
            }
            let size = op_bytes(op);
            if !(ops.is_empty() && free.is_empty()) && bytes.saturating_add(size) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(size);
            free.push(*seq);
        }
        for seq in free {
            let Some(op) = self.pending.remove(&seq) else { continue };
            if let StoreOp::Insert(job) = &op {
                let key = job.key();
                if let Some(seqs) = self.pending_inserts.get_mut(&key) {
                    seqs.retain(|s| *s != seq);
                    if seqs.is_empty() {
                        self.pending_inserts.remove(&key);
                    }
                }
            }
            seqs.push(Some(seq));
            ops.push(op);
        }
        (seqs, ops)
    }

    /// A commit of these operations starts on one of `streams` streams.
    fn begin(&mut self, seqs: &[Option<u64>], ops: &[StoreOp], streams: usize) {
        if let Some(first) = seqs.iter().flatten().min() {
            self.busy_from.push(*first);
        }
        if streams > 1 {
            for op in ops {
                *self.busy_keys.entry(op_key(op)).or_default() += 1;
            }
        }
    }

    /// The commit of these operations is over (whatever its outcome).
    fn end(&mut self, seqs: &[Option<u64>], ops: &[StoreOp]) {
        if let Some(first) = seqs.iter().flatten().min() {
            if let Some(i) = self.busy_from.iter().position(|s| s == first) {
                self.busy_from.swap_remove(i);
            }
        }
        if !self.busy_keys.is_empty() {
            for op in ops {
                let key = op_key(op);
                if let Some(n) = self.busy_keys.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        self.busy_keys.remove(&key);
                    }
                }
            }
        }
    }

    /// The database went away: fail the inserts of `unfinished`, of
    /// `unsent` and of everything pending; keep the deletes for later.
    /// `unfinished` were sent, or being sent, when the connection failed,
    /// so the database may have applied them (a commit that timed out can
    /// still complete, a reply can be lost): their rows are deleted again
    /// after reconnecting, or a job whose submitter was told it failed
    /// would be replayed and run at the next start.
    fn went_down(&mut self, unfinished: Vec<(Option<u64>, StoreOp)>, unsent: Vec<(Option<u64>, StoreOp)>) {
        self.set_healthy(false);
        for (seq, op) in unfinished {
            match op {
                StoreOp::Insert(job) => {
                    self.failed.extend(seq);
                    self.deferred_deletes.push(job.key());
                }
                StoreOp::Delete(key) => self.deferred_deletes.push(key),
            }
        }
        let rest = std::mem::take(&mut self.pending);
        self.pending_inserts.clear();
        for (seq, op) in unsent.into_iter().chain(rest.into_iter().map(|(s, o)| (Some(s), o))) {
            match op {
                StoreOp::Insert(_) => self.failed.extend(seq),
                StoreOp::Delete(key) => self.deferred_deletes.push(key),
            }
        }
    }

    /// Sends a completion if anything new was handled.
    fn report(&mut self) {
        let first_open =
            self.pending.first_key_value().map(|(s, _)| *s).into_iter().chain(self.busy_from.iter().copied()).min();
        let through = match first_open {
            Some(first) => first.checked_sub(1),
            None => self.max_seen,
        };
        let Some(through) = through else { return };
        if self.reported.is_some_and(|r| through <= r) {
            return;
        }
        // A commit that finished before an earlier one still in flight
        // may have failed seqs above `through`: they wait for it.
        let (failed, later): (Vec<u64>, Vec<u64>) =
            std::mem::take(&mut self.failed).into_iter().partition(|s| *s <= through);
        self.failed = later;
        self.reported = Some(through);
        let _ = self.done.send(Completion { through, failed });
    }

    /// Operations waiting for a commit.
    fn pending_count(&self) -> usize {
        self.pending.len() + self.deferred_deletes.len()
    }

    fn has_work(&self) -> bool {
        !self.pending.is_empty() || !self.deferred_deletes.is_empty()
    }
}

impl Writer {
    fn describe(&self) -> String {
        self.idle.first().map(|s| s.describe()).unwrap_or_else(|| "store".into())
    }

    async fn run(mut self) {
        info!(store = %self.describe(), streams = self.streams, "store writer started");
        loop {
            self.queue.drain();
            self.turn.observe(self.queue.arrivals);
            self.queue.report();
            if !self.queue.is_healthy() && self.in_flight.is_empty() {
                if !self.reconnect().await {
                    break;
                }
                continue;
            }
            self.gather().await;
            self.start_commits();
            if self.in_flight.is_empty() && !self.queue.has_work() && self.queue.closing {
                break;
            }
            tokio::select! {
                biased;
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => self.finish(done).await,
                msg = self.queue.rx.recv(), if !self.queue.closing => match msg {
                    Some((seq, op)) => self.queue.intake(seq, op),
                    None => self.queue.closing = true,
                },
                // Not reached: with no commit in flight and the channel
                // closed, the checks above have either started a commit
                // or ended the loop.
                else => break,
            }
        }
        self.queue.report();
        if !self.queue.deferred_deletes.is_empty() {
            warn!(
                count = self.queue.deferred_deletes.len(),
                "store writer stopped with deletes it could not write; those jobs will be replayed at the next start"
            );
        }
        info!("store writer stopped");
    }

    /// Before a commit starts with only a fragment of what recent commits
    /// took, waits (up to `gather_max`) for three quarters of that to be
    /// pending. With one stream only: with several, a commit that starts
    /// small does not hold up the operations that arrive after it.
    async fn gather(&mut self) {
        if self.streams != 1
            || self.config.gather_max.is_zero()
            || !self.in_flight.is_empty()
            || self.idle.is_empty()
            || !self.queue.is_healthy()
            || self.queue.closing
            || !self.queue.has_work()
        {
            return;
        }
        if self.recent_batch < GATHER_FROM_BATCH {
            if self.regroups {
                self.regroup().await;
            }
            return;
        }
        let want = (self.recent_batch * 3 / 4).min(self.config.max_batch);
        if self.queue.pending_count() >= want {
            return;
        }
        let until = tokio::time::Instant::now() + self.config.gather_max;
        self.queue.receive_until(until, |q| q.pending_count() >= want).await;
    }

    /// Before a small commit, waits for the clients of the last one while
    /// they usually come back quickly (see [`TurnAround::regroup_until`]).
    async fn regroup(&mut self) {
        let Some(until) = self.turn.regroup_until(self.queue.arrivals, self.config.gather_max) else { return };
        let turn = &self.turn;
        self.queue.receive_until(until.into(), |q| turn.back(q.arrivals)).await;
        self.turn.observe(self.queue.arrivals);
    }

    /// Starts a commit on every free stream that has operations to take.
    fn start_commits(&mut self) {
        while self.queue.is_healthy() && self.queue.has_work() {
            let Some(store) = self.idle.pop() else { return };
            let (seqs, ops) = self.queue.take_batch(self.config.max_batch, self.config.max_batch_bytes);
            if ops.is_empty() {
                // Everything pending waits for a commit in flight.
                self.idle.push(store);
                return;
            }
            self.queue.begin(&seqs, &ops, self.streams);
            self.recent_batch = ops.len().max(self.recent_batch - self.recent_batch / 8);
            self.in_flight.push(commit_on(store, seqs, ops));
        }
    }

    /// Handles the outcome of a commit, isolating refused rows.
    async fn finish(&mut self, done: Finished) {
        let Finished { mut store, seqs, ops, result, started } = done;
        self.turn.committed(ops.len(), started.elapsed(), self.queue.arrivals);
        match result {
            Ok(()) => {
                debug!(ops = ops.len(), micros = started.elapsed().as_micros() as u64, "store batch committed");
                self.queue.end(&seqs, &ops);
                self.unproven = false;
                self.backoff = Duration::ZERO;
            }
            Err(StoreError::Unavailable(e)) => {
                warn!("store unavailable, failing {} operations: {e}", ops.len());
                self.queue.end(&seqs, &ops);
                self.queue.went_down(seqs.into_iter().zip(ops).collect(), Vec::new());
            }
            Err(e) => {
                warn!("store refused a batch of {}, retrying one by one: {e}", ops.len());
                // The keys stay busy until every row has been retried.
                self.commit_one_by_one(store.as_mut(), &seqs, &ops).await;
                self.queue.end(&seqs, &ops);
            }
        }
        self.idle.push(store);
    }

    async fn commit_one_by_one(&mut self, store: &mut dyn Store, seqs: &[Option<u64>], ops: &[StoreOp]) {
        for (i, (seq, op)) in seqs.iter().copied().zip(ops).enumerate() {
            match apply_bounded(store, std::slice::from_ref(op)).await {
                Ok(()) => {}
                Err(StoreError::Unavailable(e)) => {
                    warn!("store unavailable: {e}");
                    let unsent = seqs[i + 1..].iter().copied().zip(ops[i + 1..].iter().cloned()).collect();
                    self.queue.went_down(vec![(seq, op.clone())], unsent);
                    return;
                }
                Err(e) => match op {
                    StoreOp::Insert(job) => {
                        warn!(function = ?job.function, unique = ?job.unique, "store refused a job: {e}");
                        self.queue.failed.extend(seq);
                    }
                    StoreOp::Delete(key) => {
                        warn!(function = ?key.function, unique = ?key.unique, "store refused a delete: {e}");
                    }
                },
            }
        }
    }

    /// Reconnects every stream, with backoff, failing inserts that arrive
    /// meanwhile. Called with no commit in flight. Returns false when the
    /// writer should stop (closed while down).
    async fn reconnect(&mut self) -> bool {
        // A store that takes the connection and then fails its next commit
        // again (a full disk, a database that refuses writes) would
        // otherwise be retried every `reconnect_min` for as long as that
        // lasts, each time with a warning: the wait grows from one round to
        // the next until a commit succeeds.
        if self.unproven && !self.queue.closing {
            self.backoff = self.longer(self.backoff);
            self.pause(self.backoff).await;
        }
        let mut delay = self.config.reconnect_min;
        loop {
            let result = {
                let stores = &mut self.idle;
                let attempt = async move {
                    for store in stores.iter_mut() {
                        store.reconnect().await?;
                    }
                    Ok::<(), StoreError>(())
                };
                tokio::pin!(attempt);
                loop {
                    tokio::select! {
                        r = &mut attempt => break r,
                        msg = self.queue.rx.recv(), if !self.queue.closing => {
                            match msg {
                                Some((seq, op)) => self.queue.intake(seq, op),
                                None => self.queue.closing = true,
                            }
                            self.queue.report();
                        }
                    }
                }
            };
            match result {
                Ok(()) => {
                    info!(store = %self.describe(), "store reconnected");
                    self.queue.set_healthy(true);
                    self.unproven = true;
                    return true;
                }
                Err(e) => debug!("store reconnect failed: {e}"),
            }
            if self.queue.closing {
                return false;
            }
            self.pause(delay).await;
            delay = self.longer(delay);
        }
    }

    /// The next wait between reconnect attempts: twice `delay`, within
    /// `reconnect_min` and `reconnect_max`.
    fn longer(&self, delay: Duration) -> Duration {
        (delay * 2).min(self.config.reconnect_max).max(self.config.reconnect_min)
    }

    /// Waits `delay` while taking operations (inserts fail at once while
    /// the store is down) and reporting them.
    async fn pause(&mut self, delay: Duration) {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                msg = self.queue.rx.recv(), if !self.queue.closing => {
                    match msg {
                        Some((seq, op)) => self.queue.intake(seq, op),
                        None => self.queue.closing = true,
                    }
                    self.queue.report();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TurnAround that has seen commits of `commit` and clients coming
    /// back in `turnaround`, the last commit (of 4) just ended.
    fn learned(turnaround: Duration, commit: Duration) -> TurnAround {
        TurnAround {
            last_end: Some(Instant::now()),
            last_ops: 4,
            arrivals_at_end: 100,
            sampled: false,
            turnaround: Some(turnaround),
            commit: Some(commit),
        }
    }

    #[test]
    fn regrouping_waits_only_for_quick_clients_and_only_so_long() {
        let limit = Duration::from_millis(1);
        // Clients back in 50 µs, commits of 400 µs: wait, at most 100 µs.
        let t = learned(Duration::from_micros(50), Duration::from_micros(400));
        let until = t.regroup_until(100, limit).expect("waits for quick clients");
        assert!(until <= Instant::now() + Duration::from_micros(100), "{until:?}");
        // Once as many operations as the last commit carried are back: no wait.
        assert!(t.regroup_until(104, limit).is_none());
        // Clients that take more than half a commit are not waited for.
        assert!(learned(Duration::from_micros(250), Duration::from_micros(400)).regroup_until(100, limit).is_none());
        // The wait is bounded by half a commit and by the limit.
        let t = learned(Duration::from_millis(2), Duration::from_secs(1));
        let until = t.regroup_until(100, limit).expect("waits");
        assert!(until <= Instant::now() + limit, "{until:?}");
        // Nothing learned yet: no wait.
        assert!(TurnAround::default().regroup_until(0, limit).is_none());
    }

    #[test]
    fn turnaround_is_sampled_once_the_last_commits_count_is_back() {
        let mut t = TurnAround::default();
        t.committed(3, Duration::from_micros(300), 10);
        assert_eq!(t.commit, Some(Duration::from_micros(300)));
        t.observe(12);
        assert!(t.turnaround.is_none(), "two of three back: no sample yet");
        t.observe(13);
        let first = t.turnaround.expect("sampled when the third came back");
        t.observe(20);
        assert_eq!(t.turnaround, Some(first), "one sample per commit");
        // Averages move by an eighth.
        t.committed(3, Duration::from_micros(1100), 20);
        assert_eq!(t.commit, Some(Duration::from_micros(400)));
    }
}
