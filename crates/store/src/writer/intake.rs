//! Taking operations in: the one loop that receives them, cancellation of
//! an insert by the delete of the same job, what happens to operations
//! while the database is down, and the reports of what was handled.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::warn;

use super::batch::InFlightKeys;
use crate::{Completion, JobKey, StoreOp, MAX_RECORDS_KEPT_WHILE_DOWN};

/// Which of two ready events [`Queue::receive`] handles first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum First {
    /// Operations already in the channel are taken before the awaited
    /// event ends the wait: a gathering commit takes every operation that
    /// is there when its time is up.
    Operations,
    /// The awaited event ends the wait as soon as it is ready: a finished
    /// commit is handled, a reconnect that worked counts, before anything
    /// more is taken in.
    Event,
}

/// Everything but the stores, so that a store can be busy (committing,
/// reconnecting) while the queue keeps taking operations.
pub(super) struct Queue {
    rx: mpsc::UnboundedReceiver<(u64, StoreOp)>,
    done: mpsc::UnboundedSender<Completion>,
    healthy: Arc<AtomicBool>,
    /// Operations not yet being committed, by seq.
    pub(super) pending: BTreeMap<u64, StoreOp>,
    /// Seqs of the pending cancellable operations of each key (see
    /// [`StoreOp::is_cancellable`]).
    pub(super) cancellable: HashMap<JobKey, Vec<u64>>,
    /// Operations kept while the database was unreachable (see
    /// [`StoreOp::is_kept_while_down`]); they go first into the next commit.
    pub(super) deferred: Vec<StoreOp>,
    /// How many of `deferred` are records (bounded by
    /// [`MAX_RECORDS_KEPT_WHILE_DOWN`]).
    pub(super) records_kept: usize,
    /// Seqs of awaited operations that failed, not yet reported.
    pub(super) failed: Vec<u64>,
    max_seen: Option<u64>,
    reported: Option<u64>,
    /// The handle was closed: finish and stop.
    pub(super) closing: bool,
    /// The keys and first seqs of the commits in flight.
    pub(super) in_flight: InFlightKeys,
    /// Operations received so far (for the turn-around of regrouping).
    pub(super) arrivals: u64,
}

impl Queue {
    pub(super) fn new(
        rx: mpsc::UnboundedReceiver<(u64, StoreOp)>,
        done: mpsc::UnboundedSender<Completion>,
        healthy: Arc<AtomicBool>,
    ) -> Queue {
        Queue {
            rx,
            done,
            healthy,
            pending: BTreeMap::new(),
            cancellable: HashMap::new(),
            deferred: Vec::new(),
            records_kept: 0,
            failed: Vec::new(),
            max_seen: None,
            reported: None,
            closing: false,
            in_flight: InFlightKeys::default(),
            arrivals: 0,
        }
    }

    pub(super) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub(super) fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Takes in one operation, in the order the rules apply: a cancelling
    /// operation (a delete) removes the pending cancellable operations of
    /// its key (the job's insert) and is dropped with them; while the
    /// database is down an operation is kept for later or failed at once;
    /// anything else waits for a commit.
    pub(super) fn intake(&mut self, seq: u64, op: StoreOp) {
        self.arrivals += 1;
        if let Some(prev) = self.max_seen {
            if seq <= prev {
                // A caller bug; keep the order we were given but say so.
                warn!(seq, prev, "store writer got a non-increasing seq");
            }
        }
        self.max_seen = Some(self.max_seen.map_or(seq, |m| m.max(seq)));
        if op.cancels() && !self.cancellable.is_empty() {
            if let Some(seqs) = self.cancellable.remove(&op.key()) {
                // Inserted and finished before the insert was written:
                // neither touches the database.
                for s in seqs {
                    self.pending.remove(&s);
                }
                return;
            }
        }
        if !self.is_healthy() {
            self.down(Some(seq), op);
            return;
        }
        if op.is_cancellable() {
            self.cancellable.entry(op.key()).or_default().push(seq);
        }
        self.pending.insert(seq, op);
    }

    /// An operation that cannot be written now because the database is
    /// down: kept for after the reconnect, or failed (reported when a
    /// reply waits for it).
    fn down(&mut self, seq: Option<u64>, op: StoreOp) {
        if op.record_handle().is_some() && op.is_kept_while_down() {
            if self.records_kept >= MAX_RECORDS_KEPT_WHILE_DOWN {
                let key = op.key();
                warn!(function = ?key.function, unique = ?key.unique,
                    "store unavailable for long; {MAX_RECORDS_KEPT_WHILE_DOWN} job records are waiting, this one is dropped");
                return;
            }
            self.records_kept += 1;
            self.deferred.push(op);
        } else if op.is_kept_while_down() {
            self.deferred.push(op);
        } else if op.is_awaited() {
            self.failed.extend(seq);
        } else {
            let key = op.key();
            warn!(function = ?key.function, unique = ?key.unique, "store unavailable; the {} of a job is dropped", op.name());
        }
    }

    /// A pending operation leaves the queue for a commit.
    pub(super) fn take(&mut self, seq: u64) -> Option<StoreOp> {
        let op = self.pending.remove(&seq)?;
        if op.is_cancellable() {
            let key = op.key();
            if let Some(seqs) = self.cancellable.get_mut(&key) {
                seqs.retain(|s| *s != seq);
                if seqs.is_empty() {
                    self.cancellable.remove(&key);
                }
            }
        }
        Some(op)
    }

    /// Takes operations from the channel, reporting after each, until
    /// `event` is ready (its output is returned) or `enough` holds (`None`).
    /// Once the handle is closed only `event` can end the wait. Every wait
    /// of the writer goes through here, so every operation taken in is
    /// reported: operations taken in while waiting may cancel out (a job
    /// submitted and finished meanwhile), leaving nothing to commit, and
    /// with no other operation coming nothing else would report them.
    pub(super) async fn receive<T>(
        &mut self,
        event: impl Future<Output = T>,
        first: First,
        enough: impl Fn(&Queue) -> bool,
    ) -> Option<T> {
        tokio::pin!(event);
        while !enough(self) {
            let ready = match first {
                First::Operations if !self.closing => match self.rx.try_recv() {
                    Ok(msg) => Some(Some(msg)),
                    Err(mpsc::error::TryRecvError::Disconnected) => Some(None),
                    Err(mpsc::error::TryRecvError::Empty) => None,
                },
                _ => None,
            };
            let msg = match ready {
                Some(msg) => msg,
                None => tokio::select! {
                    biased;
                    out = &mut event => return Some(out),
                    msg = self.rx.recv(), if !self.closing => msg,
                },
            };
            match msg {
                Some((seq, op)) => self.intake(seq, op),
                None => self.closing = true,
            }
            self.report();
        }
        None
    }

    /// Takes everything already in the channel.
    pub(super) fn drain(&mut self) {
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

    /// The database went away: `unfinished` were sent, or being sent, when
    /// the connection failed, so the database may have applied them (a
    /// commit that timed out can still complete, a reply can be lost):
    /// they are failed or kept like everything `unsent` and pending, and
    /// what undoes them (see [`StoreOp::undo`]) is written after
    /// reconnecting, or a job whose submitter was told it failed would be
    /// replayed and run at the next start.
    pub(super) fn went_down(&mut self, unfinished: Vec<(Option<u64>, StoreOp)>, unsent: Vec<(Option<u64>, StoreOp)>) {
        self.set_healthy(false);
        for (seq, op) in unfinished {
            if let Some(undo) = op.undo() {
                self.deferred.push(undo);
            }
            self.down(seq, op);
        }
        let rest = std::mem::take(&mut self.pending);
        self.cancellable.clear();
        for (seq, op) in unsent.into_iter().chain(rest.into_iter().map(|(s, o)| (Some(s), o))) {
            self.down(seq, op);
        }
    }

    /// Sends a completion if anything new was handled.
    pub(super) fn report(&mut self) {
        let first_open =
            self.pending.first_key_value().map(|(s, _)| *s).into_iter().chain(self.in_flight.first_seq()).min();
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
    pub(super) fn pending_count(&self) -> usize {
        self.pending.len() + self.deferred.len()
    }

    pub(super) fn has_work(&self) -> bool {
        !self.pending.is_empty() || !self.deferred.is_empty()
    }
}
