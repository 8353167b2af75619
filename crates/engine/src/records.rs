//! The engine's side of job records once jobs end: ended records whose
//! store write is not confirmed yet (so a read never misses a job that
//! just ended), ended records kept in memory when no store keeps them, and
//! reads (and setting writes) the engine asked the server to make in the
//! store, with who waits for them.
//!
//! A live job's record is in the job itself (see `engine/recording.rs`);
//! what is here is only what outlives the job in the engine.

use std::collections::BTreeMap;

use bytes::Bytes;
use sprocket_records::{MemoryRecords, Record, RecordFilter, Retention};

use crate::hash::FastMap;
use crate::types::ConnId;

/// Where ended records live in the engine.
#[derive(Debug)]
pub(crate) struct EndedRecords {
    /// Without a durable store: every ended record, within the retention.
    memory: Option<MemoryRecords>,
    /// With a durable store: ended records by the sequence number of their
    /// store write, until the store confirms it.
    unconfirmed: BTreeMap<u64, Record>,
    /// The sequence number of each unconfirmed record, by handle.
    unconfirmed_seq: FastMap<Bytes, u64>,
}

impl EndedRecords {
    /// Records kept in memory (`durable` false) or only until their store
    /// write is confirmed.
    pub fn new(durable: bool, retention: Retention) -> EndedRecords {
        EndedRecords {
            memory: (!durable).then(|| MemoryRecords::new(retention)),
            unconfirmed: BTreeMap::new(),
            unconfirmed_seq: FastMap::default(),
        }
    }

    /// A job ended with `record`, written to the store as operation `seq`
    /// (0: not written; it is kept in memory).
    pub fn ended(&mut self, record: Record, seq: u64) {
        if let Some(memory) = &mut self.memory {
            // Only final records reach here; a live one is refused, never
            // kept half-way.
            let _ = memory.insert(record);
            return;
        }
        if seq == 0 {
            return;
        }
        self.unconfirmed_seq.insert(Bytes::copy_from_slice(record.handle()), seq);
        self.unconfirmed.insert(seq, record);
    }

    /// The store made everything up to `through` durable: those records are
    /// read from the store from now on.
    pub fn confirmed_through(&mut self, through: u64) {
        while let Some(entry) = self.unconfirmed.first_entry() {
            if *entry.key() > through {
                break;
            }
            let record = entry.remove();
            self.unconfirmed_seq.remove(record.handle());
        }
    }

    /// The ended record of `handle`, when the engine has it.
    pub fn get(&self, handle: &[u8]) -> Option<&Record> {
        if let Some(memory) = &self.memory {
            return memory.get(handle);
        }
        self.unconfirmed_seq.get(handle).and_then(|seq| self.unconfirmed.get(seq))
    }

    /// The records here that match `filter` and that the store has not
    /// confirmed yet.
    fn unconfirmed_matching<'a>(&'a self, filter: &'a RecordFilter) -> impl Iterator<Item = &'a Record> {
        self.unconfirmed.values().filter(|r| filter.matches_record(r))
    }

    /// The sequence number of the newest record here that matches
    /// `filter` and that the store has not confirmed yet: a purge of the
    /// store waits until the store has it, or the record would be written
    /// after the purge and outlive it.
    pub fn newest_unconfirmed_matching(&self, filter: &RecordFilter) -> Option<u64> {
        self.unconfirmed.iter().rev().find(|(_, r)| filter.matches_record(r)).map(|(seq, _)| *seq)
    }

    /// Whether the store has confirmed every record written up to `seq`.
    pub fn confirmed_up_to(&self, seq: u64) -> bool {
        self.unconfirmed.first_key_value().is_none_or(|(first, _)| *first > seq)
    }

    /// Removes the records in memory matching `filter` (only without a
    /// durable store; with one the store is purged); returns how many.
    pub fn purge_in_memory(&mut self, filter: &RecordFilter) -> usize {
        self.memory.as_mut().map_or(0, |m| m.purge(filter, usize::MAX))
    }

    /// A search of the store asked for now, with the unconfirmed records
    /// that match it kept from this moment: the store's answer may have been
    /// read before their commit while the commit's report reaches the
    /// engine first, and then they are no longer here when the answer comes.
    pub fn search_asked(&self, filter: RecordFilter) -> SearchAsked {
        let unconfirmed = self.unconfirmed_matching(&filter).cloned().collect();
        SearchAsked { filter, unconfirmed }
    }

    /// `found` (the store's answer to `asked`) with the unconfirmed matches
    /// kept when it was asked for and those here that match and are still
    /// unconfirmed, each once, newest end first, within the filter's limit:
    /// a search right after a job ended lists it, as a read of its handle
    /// would.
    pub fn with_unconfirmed(&self, mut found: Vec<Record>, asked: &SearchAsked) -> Vec<Record> {
        let filter = &asked.filter;
        let mut extra: Vec<&Record> = Vec::new();
        for r in asked.unconfirmed.iter().chain(self.unconfirmed_matching(filter)) {
            let listed = |l: &[&Record]| l.iter().any(|x| x.handle() == r.handle());
            if !found.iter().any(|f| f.handle() == r.handle()) && !listed(&extra) {
                extra.push(r);
            }
        }
        if extra.is_empty() {
            return found;
        }
        found.extend(extra.into_iter().cloned());
        found.sort_by(|a, b| (b.finished(), b.handle()).cmp(&(a.finished(), a.handle())));
        found.truncate(filter.limit);
        found
    }

    /// Forgets the ended record of `handle` (a dead job requeued: the job
    /// holds its record again).
    pub fn forget(&mut self, handle: &[u8]) {
        if let Some(memory) = &mut self.memory {
            memory.remove(handle);
        }
        if let Some(seq) = self.unconfirmed_seq.remove(handle) {
            self.unconfirmed.remove(&seq);
        }
    }

    /// Whether ended records are read from the store rather than from here.
    pub fn in_store(&self) -> bool {
        self.memory.is_none()
    }

    /// Records in memory matching `filter`, newest end first (only without
    /// a durable store).
    pub fn search(&self, filter: &RecordFilter) -> Vec<Record> {
        self.memory.as_ref().map(|m| m.find(filter).into_iter().cloned().collect()).unwrap_or_default()
    }

    /// Expires in-memory records past the retention at `now`, a batch at a
    /// time; returns how many.
    pub fn expire(&mut self, now: u64, batch: usize) -> usize {
        self.memory.as_mut().map_or(0, |m| m.expire(now, batch).len())
    }

    /// When the next in-memory record expires.
    pub fn next_expiry(&self) -> Option<u64> {
        self.memory.as_ref()?.next_expiry()
    }

    /// How many ended records are kept in memory.
    pub fn len_in_memory(&self) -> usize {
        self.memory.as_ref().map_or(0, MemoryRecords::len) + self.unconfirmed.len()
    }
}

/// Purges of the store waiting for the store to confirm the records they
/// must delete, and purges under way, with who waits for each.
#[derive(Debug, Default)]
pub(crate) struct PendingPurges {
    /// Purges to hand to the server once the store has confirmed every
    /// record written up to the sequence number.
    waiting: Vec<(u64, crate::types::RecordPurge)>,
    /// Who waits for each purge handed out or waiting, by id.
    waiters: FastMap<u64, ReadWaiter>,
}

impl PendingPurges {
    /// Purge `purge` once the store has confirmed through `after` (at once
    /// when `after` is `None`); `waiter` hears the count.
    pub fn add(
        &mut self,
        purge: crate::types::RecordPurge,
        after: Option<u64>,
        waiter: ReadWaiter,
        out: &mut Vec<crate::types::RecordPurge>,
    ) {
        self.waiters.insert(purge.id, waiter);
        match after {
            Some(seq) => self.waiting.push((seq, purge)),
            None => out.push(purge),
        }
    }

    /// Hands out the waiting purges whose records the store now has.
    pub fn release(&mut self, ended: &EndedRecords, out: &mut Vec<crate::types::RecordPurge>) {
        if self.waiting.is_empty() {
            return;
        }
        let (ready, still): (Vec<_>, Vec<_>) = self.waiting.drain(..).partition(|(seq, _)| ended.confirmed_up_to(*seq));
        self.waiting = still;
        out.extend(ready.into_iter().map(|(_, purge)| purge));
    }

    /// Purge `id` is done: who waited for it.
    pub fn finish(&mut self, id: u64) -> Option<ReadWaiter> {
        self.waiters.remove(&id)
    }
}

/// Who waits for a read of records from the store, and what to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadPurpose {
    /// `sprocket.result`: replay the record as the job's packets.
    Result {
        /// The handle asked for (the reply names it if the job is unknown).
        handle: Bytes,
    },
    /// `sprocket.record`: the record as JSON, under this server handle.
    RecordJson {
        /// The handle the answer goes out under.
        reply_handle: Bytes,
    },
    /// `sprocket.records`: matching records as a JSON array.
    SearchJson {
        /// The handle the answer goes out under.
        reply_handle: Bytes,
    },
    /// Admin `record`.
    AdminRecord,
    /// Admin `requeue HANDLE` (`function` none) or `requeue function
    /// NAME`: requeue what the read finds.
    AdminRequeue {
        /// The function whose dead jobs are requeued, for `requeue
        /// function`.
        function: Option<Bytes>,
        /// Jobs requeued by earlier reads of the same command.
        requeued: usize,
    },
    /// Admin `purge dead`: `OK <n>` once the deletes are committed.
    AdminPurge,
    /// Admin `records`.
    AdminSearch,
    /// An admin command that changes a setting (`pause`, `resume`,
    /// `policy set`, `policy clear`): `OK` once the setting is durable.
    AdminSetting {
        /// What the command did, for the answer when it could not be saved
        /// ("paused", "policy set").
        change: &'static str,
    },
}

/// Who waits for a read of records from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadWaiter {
    /// A connection, whose later replies are held behind the answer.
    Conn(ConnId, ReadPurpose),
    /// A control query of the server's own (its web port): the records
    /// go back as they are, in [`crate::Outbox::control_reads`].
    Control,
}

/// A search of the store in flight: what it looks for, and the matching
/// records the store had not confirmed when it was asked for (see
/// [`EndedRecords::search_asked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchAsked {
    filter: RecordFilter,
    unconfirmed: Vec<Record>,
}

/// One read of the store in flight.
#[derive(Debug)]
pub(crate) struct PendingRead {
    /// Who waits for it.
    pub waiter: ReadWaiter,
    /// For a search, what its answer is completed with.
    pub search: Option<SearchAsked>,
}

/// Reads of the store in flight, by id.
#[derive(Debug, Default)]
pub(crate) struct PendingReads {
    next_id: u64,
    by_id: FastMap<u64, PendingRead>,
}

impl PendingReads {
    /// Numbers a new read for `waiter` (a search, when `search` says what
    /// it asked).
    pub fn start(&mut self, waiter: ReadWaiter, search: Option<SearchAsked>) -> u64 {
        let id = self.number();
        self.by_id.insert(id, PendingRead { waiter, search });
        id
    }

    /// `waiter` waits for request `id` (numbered by [`PendingReads::number`]).
    pub fn wait(&mut self, id: u64, waiter: ReadWaiter) {
        self.by_id.insert(id, PendingRead { waiter, search: None });
    }

    /// A new number for a store request nobody on a connection waits for
    /// (a setting changed through the server's command channel); from the
    /// same series, so that no two requests share one.
    pub fn number(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The read `id` was answered: who asked, and for what.
    pub fn finish(&mut self, id: u64) -> Option<PendingRead> {
        self.by_id.remove(&id)
    }
}

#[cfg(test)]
mod tests {
    use sprocket_records::{Limits, Outcome, RecordState};

    use super::*;
    use crate::types::RecordPurge;

    fn dead(n: u64) -> Record {
        let handle = format!("H:t:{n}");
        let mut r =
            Record::new(handle.as_bytes(), b"f", b"", sprocket_proto::Priority::Normal, true, 1).expect("record");
        r.ended(
            Outcome::Dead { end: sprocket_records::AttemptEnd::Exception, error: Some(b"boom"), payload: b"work" },
            10 + n,
            Limits::default(),
        )
        .expect("end");
        r
    }

    /// A purge waits until the store has confirmed every matching record
    /// sent to it before the purge was asked for; later records do not
    /// hold it back.
    #[test]
    fn a_purge_waits_for_the_matching_records_sent_before_it() {
        let mut ended = EndedRecords::new(true, Retention::default());
        let filter = RecordFilter { state: Some(RecordState::Dead), ..RecordFilter::default() };
        assert_eq!(ended.newest_unconfirmed_matching(&filter), None);
        ended.ended(dead(1), 5);
        ended.ended(dead(2), 7);
        let after = ended.newest_unconfirmed_matching(&filter);
        assert_eq!(after, Some(7));
        let other = RecordFilter { state: Some(RecordState::Failed), ..RecordFilter::default() };
        assert_eq!(ended.newest_unconfirmed_matching(&other), None, "nothing to wait for");

        let mut purges = PendingPurges::default();
        let mut out = Vec::new();
        purges.add(RecordPurge { id: 1, filter: filter.clone() }, after, ReadWaiter::Control, &mut out);
        assert!(out.is_empty());
        ended.ended(dead(3), 9);
        ended.confirmed_through(5);
        purges.release(&ended, &mut out);
        assert!(out.is_empty(), "record 7 is not confirmed yet");
        ended.confirmed_through(7);
        purges.release(&ended, &mut out);
        assert_eq!(out.len(), 1, "record 9 came after the purge and does not hold it");
        assert_eq!(purges.finish(1), Some(ReadWaiter::Control));
        assert_eq!(purges.finish(1), None);

        // Without a store the engine's own records are purged.
        let mut memory = EndedRecords::new(false, Retention::default());
        memory.ended(dead(1), 0);
        memory.ended(dead(2), 0);
        assert_eq!(memory.purge_in_memory(&filter), 2);
        assert_eq!(memory.len_in_memory(), 0);
    }
}
