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
//! `pacing::TurnAround` and [`Store::regroups`].
//!
//! Each job has its own module: `intake` takes operations in (the one
//! loop that receives them), cancels and reports them; `batch` chooses
//! the operations of a commit; `pacing` decides how long a commit waits
//! for more; `commit` writes a batch and handles its outcome; `reconnect`
//! brings the streams back with backoff; `placement` picks the thread the
//! writer runs on. Which of the rules above applies to an operation is
//! said by the operation itself ([`StoreOp::is_cancellable`],
//! [`StoreOp::cancels`], [`StoreOp::is_kept_while_down`],
//! [`StoreOp::is_awaited`], [`StoreOp::undo`]), so a new kind of operation
//! needs no change here.

mod batch;
mod commit;
mod intake;
mod pacing;
mod placement;
mod reconnect;
pub mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::{Completion, Store, StoreOp};
use commit::InFlight;
use intake::{First, Queue};
use pacing::Pacing;
use reconnect::Backoff;
pub use stats::{AtomicHistogram, CommitStats, HistogramSnapshot};

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
/// [`WriterConfig::gather_max`]). Measured with SQLite `--sync=full`:
/// from 8, 16 one-at-a-time submitters lost 5 %, because
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
    stats: Arc<CommitStats>,
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

    /// The writer's commit latencies and batch sizes, read without a lock.
    pub fn stats(&self) -> Arc<CommitStats> {
        self.stats.clone()
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
    let writer = Writer {
        streams: stores.len(),
        pacing: Pacing::new(stores[0].regroups()),
        backoff: Backoff::new(config.reconnect_min, config.reconnect_max),
        idle: stores,
        in_flight: FuturesUnordered::new(),
        config,
        queue: Queue::new(rx, done_tx, healthy.clone()),
        stats: Arc::new(CommitStats::default()),
    };
    let stats = writer.stats.clone();
    let task = placement::start(writer, blocks);
    (WriterHandle { tx, healthy, task, stats }, done_rx)
}

/// The writer task's state, each part with its own owner.
struct Writer {
    /// Streams not committing now.
    idle: Vec<Box<dyn Store>>,
    /// How many streams there are (idle or in flight).
    streams: usize,
    /// The commits under way.
    in_flight: FuturesUnordered<InFlight>,
    config: WriterConfig,
    /// The operations not yet committed, and the reports.
    queue: Queue,
    /// How long a commit waits for more operations.
    pacing: Pacing,
    /// The waits between reconnect attempts.
    backoff: Backoff,
    /// Commit latencies and sizes, for the server's metrics.
    stats: Arc<CommitStats>,
}

impl Writer {
    fn describe(&self) -> String {
        self.idle.first().map(|s| s.describe()).unwrap_or_else(|| "store".into())
    }

    async fn run(mut self) {
        info!(store = %self.describe(), streams = self.streams, "store writer started");
        loop {
            self.queue.drain();
            self.pacing.turn.observe(self.queue.arrivals);
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
            // Wait for a commit to end or one more operation to arrive.
            let commits = &mut self.in_flight;
            let closing = self.queue.closing;
            let commit_ended = async move {
                if commits.is_empty() {
                    if closing {
                        // Not reached: with no commit in flight and the
                        // channel closed, the checks above have either
                        // started a commit or ended the loop.
                        return None;
                    }
                    std::future::pending::<()>().await;
                }
                commits.next().await
            };
            let seen = (self.queue.arrivals, self.queue.closing);
            match self.queue.receive(commit_ended, First::Event, |q| (q.arrivals, q.closing) != seen).await {
                Some(Some(done)) => self.finish(done).await,
                Some(None) => break,
                None => {}
            }
        }
        self.queue.report();
        if !self.queue.deferred.is_empty() {
            warn!(
                count = self.queue.deferred.len(),
                "store writer stopped with deletes it could not write; those jobs will be replayed at the next start"
            );
        }
        info!("store writer stopped");
    }
}
