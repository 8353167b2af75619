//! Batching: which pending operations go into the next commit, within the
//! limits of [`WriterConfig`](super::WriterConfig), and which keys wait for
//! a commit still in flight.

use std::collections::HashMap;

use super::intake::Queue;
use crate::{JobKey, StoreOp};

/// The operations of one commit: each one's seq (none for an operation
/// kept from before a reconnect) and, apart, the operations, which go to
/// the store as they are.
pub(super) struct Batch {
    pub(super) seqs: Vec<Option<u64>>,
    pub(super) ops: Vec<StoreOp>,
}

impl Batch {
    pub(super) fn len(&self) -> usize {
        self.ops.len()
    }

    /// The lowest seq in the batch.
    fn first_seq(&self) -> Option<u64> {
        self.seqs.iter().flatten().min().copied()
    }
}

/// What the commits in flight hold back.
#[derive(Debug, Default)]
pub(super) struct InFlightKeys {
    /// Keys of the operations in commits still in flight (with several
    /// streams only): later operations on them wait, so the operations of
    /// one key reach the database in the order they were submitted.
    keys: HashMap<JobKey, usize>,
    /// The lowest seq of each commit in flight: nothing from there on is
    /// reported handled before it ends.
    firsts: Vec<u64>,
}

impl InFlightKeys {
    /// The lowest seq of any commit in flight.
    pub(super) fn first_seq(&self) -> Option<u64> {
        self.firsts.iter().copied().min()
    }

    fn is_busy(&self, op: &StoreOp) -> bool {
        !self.keys.is_empty() && self.keys.contains_key(&op.key())
    }

    /// A commit of `batch` starts on one of `streams` streams.
    pub(super) fn begin(&mut self, batch: &Batch, streams: usize) {
        if let Some(first) = batch.first_seq() {
            self.firsts.push(first);
        }
        if streams > 1 {
            for op in &batch.ops {
                *self.keys.entry(op.key()).or_default() += 1;
            }
        }
    }

    /// The commit of `batch` is over (whatever its outcome).
    pub(super) fn end(&mut self, batch: &Batch) {
        if let Some(first) = batch.first_seq() {
            if let Some(i) = self.firsts.iter().position(|s| *s == first) {
                self.firsts.swap_remove(i);
            }
        }
        if !self.keys.is_empty() {
            for op in &batch.ops {
                let key = op.key();
                if let Some(n) = self.keys.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        self.keys.remove(&key);
                    }
                }
            }
        }
    }
}

impl Queue {
    /// Takes the next batch: the operations kept from before a reconnect,
    /// then pending ones from the front, at most `max` operations and, past
    /// the first, `max_bytes` (see [`StoreOp::size`]). Operations on a key
    /// whose commit is in flight stay behind.
    pub(super) fn take_batch(&mut self, max: usize, max_bytes: usize) -> Batch {
        let mut seqs: Vec<Option<u64>> = vec![None; self.deferred.len()];
        let mut ops: Vec<StoreOp> = std::mem::take(&mut self.deferred);
        self.records_kept = 0;
        let mut bytes: usize = ops.iter().map(StoreOp::size).sum();
        let room = max.max(1).saturating_sub(ops.len());
        let in_flight = &self.in_flight;
        let mut free: Vec<u64> = Vec::new();
        let mut last: Option<&StoreOp> = ops.last();
        for (seq, op) in self.pending.iter().filter(|(_, op)| !in_flight.is_busy(op)) {
            let size = op.size();
            let full =
                free.len() >= room || (!(ops.is_empty() && free.is_empty()) && bytes.saturating_add(size) > max_bytes);
            // A job's record right after its queue row's operation (or the
            // other way round) goes into the same commit even past the
            // limits, so that the end of a job (its delete and its final
            // record) lands at once.
            if full && !last.is_some_and(|prev| same_job_with_record(prev, op)) {
                break;
            }
            bytes = bytes.saturating_add(size);
            free.push(*seq);
            last = Some(op);
            if full {
                // Only the one operation that completes the pair.
                break;
            }
        }
        for seq in free {
            let Some(op) = self.take(seq) else { continue };
            seqs.push(Some(seq));
            ops.push(op);
        }
        Batch { seqs, ops }
    }
}

/// Whether `a` then `b` are a job's queue row operation and its record.
fn same_job_with_record(a: &StoreOp, b: &StoreOp) -> bool {
    (a.record_handle().is_some() != b.record_handle().is_some()) && a.key_parts() == b.key_parts()
}
