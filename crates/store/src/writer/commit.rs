//! Committing: a batch goes to a stream's store, with a time limit and one
//! retry on a new connection; a refused batch is retried one operation at
//! a time; the outcome is handed back to the queue.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::batch::Batch;
use super::Writer;
use crate::{Result, Store, StoreError, StoreOp};

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

/// A commit under way on one stream; it gives the stream back when done.
pub(super) type InFlight = Pin<Box<dyn Future<Output = Finished> + Send>>;

/// What a commit gives back.
pub(super) struct Finished {
    store: Box<dyn Store>,
    batch: Batch,
    result: Result<()>,
    started: Instant,
}

fn commit_on(mut store: Box<dyn Store>, batch: Batch) -> InFlight {
    Box::pin(async move {
        let started = Instant::now();
        let result = apply_or_reconnect(store.as_mut(), &batch.ops).await;
        Finished { store, batch, result, started }
    })
}

impl Writer {
    /// Starts a commit on every free stream that has operations to take.
    pub(super) fn start_commits(&mut self) {
        while self.queue.is_healthy() && self.queue.has_work() {
            let Some(store) = self.idle.pop() else { return };
            let batch = self.queue.take_batch(self.config.max_batch, self.config.max_batch_bytes);
            if batch.ops.is_empty() {
                // Everything pending waits for a commit in flight.
                self.idle.push(store);
                return;
            }
            self.queue.in_flight.begin(&batch, self.streams);
            self.pacing.started(batch.len());
            self.in_flight.push(commit_on(store, batch));
        }
    }

    /// Handles the outcome of a commit, isolating refused rows.
    pub(super) async fn finish(&mut self, done: Finished) {
        let Finished { mut store, batch, result, started } = done;
        self.pacing.turn.committed(batch.len(), started.elapsed(), self.queue.arrivals);
        match result {
            Ok(()) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.stats.committed(batch.len(), micros);
                debug!(ops = batch.len(), micros, "store batch committed");
                self.queue.in_flight.end(&batch);
                self.backoff.proven();
            }
            Err(StoreError::Unavailable(e)) => {
                warn!("store unavailable, failing {} operations: {e}", batch.len());
                self.queue.in_flight.end(&batch);
                let Batch { seqs, ops } = batch;
                self.queue.went_down(seqs.into_iter().zip(ops).collect(), Vec::new());
            }
            Err(e) => {
                warn!("store refused a batch of {}, retrying one by one: {e}", batch.len());
                // The keys stay busy until every row has been retried.
                self.commit_one_by_one(store.as_mut(), &batch).await;
                self.queue.in_flight.end(&batch);
            }
        }
        self.idle.push(store);
    }

    /// Retries a refused batch one operation at a time, so that one bad
    /// row fails alone.
    async fn commit_one_by_one(&mut self, store: &mut dyn Store, batch: &Batch) {
        let Batch { seqs, ops } = batch;
        for (i, (seq, op)) in seqs.iter().copied().zip(ops).enumerate() {
            match apply_bounded(store, std::slice::from_ref(op)).await {
                Ok(()) => {}
                Err(StoreError::Unavailable(e)) => {
                    warn!("store unavailable: {e}");
                    let unsent = seqs[i + 1..].iter().copied().zip(ops[i + 1..].iter().cloned()).collect();
                    self.queue.went_down(vec![(seq, op.clone())], unsent);
                    return;
                }
                Err(e) => {
                    let key = op.key();
                    warn!(function = ?key.function, unique = ?key.unique, "store refused the {} of a job: {e}", op.name());
                    if op.is_awaited() {
                        self.queue.failed.extend(seq);
                    }
                }
            }
        }
    }
}
