//! Retention rules and the in-memory record store of `-q builtin`.
//!
//! [`Retention`] says which ended records have expired (`--record-retention`,
//! and `--dead-retention` for dead letters) and how many may be kept
//! (`--record-max-count`); a database store turns it into deletes of rows
//! that ended before the cutoffs, in small batches. [`MemoryRecords`] keeps
//! ended records in memory under those rules.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::filter::RecordFilter;
use crate::record::Record;
use crate::state::RecordState;

/// Default of `--record-retention`: 7 days.
pub const DEFAULT_RETENTION_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Default of `--dead-retention`: 30 days.
pub const DEFAULT_DEAD_RETENTION_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Default of `--record-max-count`: records kept by the in-memory store.
pub const DEFAULT_MAX_COUNT: usize = 100_000;

/// How long and how many ended records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A record expires this long after its job ended (milliseconds),
    /// unless it is dead.
    pub keep_ms: u64,
    /// A dead record (a dead letter) expires this long after its job
    /// ended (milliseconds): operators look at dead jobs later than at
    /// the others, so they are kept apart and usually longer.
    pub dead_keep_ms: u64,
    /// Most records kept; the oldest ended ones go first.
    pub max_count: usize,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            keep_ms: DEFAULT_RETENTION_MS,
            dead_keep_ms: DEFAULT_DEAD_RETENTION_MS,
            max_count: DEFAULT_MAX_COUNT,
        }
    }
}

/// Which ended records have expired at one moment: those that ended before
/// the cutoff of their kind. `None` where none can have (the moment is
/// less than the retention after the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpiryCutoffs {
    /// Records not dead that ended before this have expired.
    pub before: Option<u64>,
    /// Dead records that ended before this have expired.
    pub dead_before: Option<u64>,
}

impl ExpiryCutoffs {
    /// The cutoff of records in `state`.
    pub fn of(&self, state: RecordState) -> Option<u64> {
        if state == RecordState::Dead {
            self.dead_before
        } else {
            self.before
        }
    }

    /// Whether a record in `state` that ended at `finished` has expired.
    pub fn expired(&self, state: RecordState, finished: u64) -> bool {
        self.of(state).is_some_and(|cutoff| finished < cutoff)
    }

    /// Whether nothing can have expired.
    pub fn is_none(&self) -> bool {
        self.before.is_none() && self.dead_before.is_none()
    }
}

impl Retention {
    /// Records (not dead) whose job ended strictly before this time have
    /// expired at `now`; `None` when none can have (`now` is less than the
    /// retention after the epoch).
    pub fn cutoff(&self, now: u64) -> Option<u64> {
        now.checked_sub(self.keep_ms)
    }

    /// The cutoffs of both kinds of record at `now`.
    pub fn cutoffs(&self, now: u64) -> ExpiryCutoffs {
        ExpiryCutoffs { before: now.checked_sub(self.keep_ms), dead_before: now.checked_sub(self.dead_keep_ms) }
    }

    /// How long a record in `state` is kept after its job ended.
    pub fn keep_ms_of(&self, state: RecordState) -> u64 {
        if state == RecordState::Dead {
            self.dead_keep_ms
        } else {
            self.keep_ms
        }
    }

    /// The shorter of the two retentions: how often expiry must look.
    pub fn shortest_ms(&self) -> u64 {
        self.keep_ms.min(self.dead_keep_ms)
    }

    /// Whether a record (not dead) whose job ended at `finished` has
    /// expired at `now`.
    pub fn is_expired(&self, finished: u64, now: u64) -> bool {
        self.cutoff(now).is_some_and(|cutoff| finished < cutoff)
    }

    /// How many of `count` records are over the limit.
    pub fn excess(&self, count: usize) -> usize {
        count.saturating_sub(self.max_count)
    }
}

/// A live record was offered to the store of ended records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("only records of ended jobs are stored; this job is {0}")]
pub struct NotEnded(pub RecordState);

/// Ended records in memory, bounded by a [`Retention`].
///
/// Records are found by handle, and ordered by end time (then handle) for
/// expiry and listing: dead records in an order of their own, so that
/// expiring the others (kept for a shorter time, usually) never walks past
/// the dead ones still kept. Each record costs, besides itself, one shared
/// copy of its handle for the two indexes.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    retention: Retention,
    by_handle: HashMap<Arc<[u8]>, Record>,
    /// Records not dead, by end.
    by_end: BTreeSet<(u64, Arc<[u8]>)>,
    /// Dead records, by end.
    dead_by_end: BTreeSet<(u64, Arc<[u8]>)>,
}

type EndKey = (u64, Arc<[u8]>);

fn end_of(record: &Record) -> u64 {
    // Ended records always have an end time; one built without (from an
    // inconsistent stored row) sorts as ending when it was submitted.
    record.finished().unwrap_or(record.submitted())
}

impl MemoryRecords {
    /// An empty store.
    pub fn new(retention: Retention) -> MemoryRecords {
        MemoryRecords { retention, ..MemoryRecords::default() }
    }

    /// Its retention rules.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.by_handle.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.by_handle.is_empty()
    }

    fn order_of(&mut self, state: RecordState) -> &mut BTreeSet<EndKey> {
        if state == RecordState::Dead {
            &mut self.dead_by_end
        } else {
            &mut self.by_end
        }
    }

    /// Adds an ended record, replacing one with the same handle (the way to
    /// update a record). When that
    /// puts the store over `max_count`, the record that ended first is
    /// removed and returned (with `max_count` 0, the record just given).
    pub fn insert(&mut self, record: Record) -> Result<Option<Record>, NotEnded> {
        if !record.state().is_final() {
            return Err(NotEnded(record.state()));
        }
        self.remove(record.handle());
        let handle: Arc<[u8]> = Arc::from(record.handle());
        let end = end_of(&record);
        self.order_of(record.state()).insert((end, handle.clone()));
        self.by_handle.insert(handle, record);
        if self.retention.excess(self.len()) > 0 {
            return Ok(self.pop_oldest());
        }
        Ok(None)
    }

    /// The record of `handle`.
    pub fn get(&self, handle: &[u8]) -> Option<&Record> {
        self.by_handle.get(handle)
    }

    /// Removes the record of `handle`.
    pub fn remove(&mut self, handle: &[u8]) -> Option<Record> {
        let (key, record) = self.by_handle.remove_entry(handle)?;
        let end = end_of(&record);
        self.order_of(record.state()).remove(&(end, key));
        Some(record)
    }

    /// Every record's end and handle, newest end first (then the greater
    /// handle), dead or not.
    fn newest_first(&self) -> impl Iterator<Item = &EndKey> {
        let mut others = self.by_end.iter().rev().peekable();
        let mut dead = self.dead_by_end.iter().rev().peekable();
        std::iter::from_fn(move || match (others.peek(), dead.peek()) {
            (Some(a), Some(b)) if b > a => dead.next(),
            (Some(_), _) => others.next(),
            (None, _) => dead.next(),
        })
    }

    /// The records to look at for `state`, newest end first: only the dead
    /// ones for a search of dead records, only the others for another
    /// state, all of them without a state.
    fn newest_first_in(&self, state: Option<RecordState>) -> Box<dyn Iterator<Item = &EndKey> + '_> {
        match state {
            Some(RecordState::Dead) => Box::new(self.dead_by_end.iter().rev()),
            Some(_) => Box::new(self.by_end.iter().rev()),
            None => Box::new(self.newest_first()),
        }
    }

    /// Records of `function`, newest end first: only those in `state` when
    /// given, only those that ended at or after `since` when given, at most
    /// `limit`. Walks the records from the newest and stops at `since` or
    /// at `limit` matches.
    pub fn search(
        &self,
        function: &[u8],
        state: Option<RecordState>,
        since: Option<u64>,
        limit: usize,
    ) -> Vec<&Record> {
        self.newest_first_in(state)
            .take_while(|(end, _)| since.is_none_or(|since| *end >= since))
            .filter_map(|(_, handle)| self.by_handle.get(handle))
            .filter(|record| record.function() == function && state.is_none_or(|state| record.state() == state))
            .take(limit)
            .collect()
    }

    /// Records matching `filter` (see [`RecordFilter::matches_record`]),
    /// newest end first, at most its limit. Walks the records from the
    /// newest end and stops at `filter.since` or once the limit is reached.
    pub fn find(&self, filter: &RecordFilter) -> Vec<&Record> {
        self.newest_first_in(filter.state)
            .take_while(|(end, _)| filter.since.is_none_or(|since| *end >= since))
            .filter_map(|(_, handle)| self.by_handle.get(handle))
            .filter(|record| filter.matches_record(record))
            .take(filter.limit)
            .collect()
    }

    /// Removes every record matching `filter` (its limit aside), up to
    /// `batch` of them, and returns how many: an operator's purge, called
    /// again while it returns `batch`.
    pub fn purge(&mut self, filter: &RecordFilter, batch: usize) -> usize {
        let doomed: Vec<Arc<[u8]>> = self
            .newest_first_in(filter.state)
            .take_while(|(end, _)| filter.since.is_none_or(|since| *end >= since))
            .filter_map(|(_, handle)| self.by_handle.get_key_value(handle))
            .filter(|(_, record)| filter.matches_record(record))
            .take(batch)
            .map(|(handle, _)| handle.clone())
            .collect();
        for handle in &doomed {
            self.remove(handle);
        }
        doomed.len()
    }

    /// Removes up to `batch` expired records at `now`, oldest first within
    /// each kind (dead and not), and returns them. Called often with a
    /// small batch, so no call takes long.
    pub fn expire(&mut self, now: u64, batch: usize) -> Vec<Record> {
        self.expire_before(self.retention.cutoffs(now), batch)
    }

    /// Removes up to `batch` records that ended before the cutoff of their
    /// kind, oldest first within each kind, and returns them.
    pub fn expire_before(&mut self, cutoffs: ExpiryCutoffs, batch: usize) -> Vec<Record> {
        let mut expired = Vec::new();
        for dead in [false, true] {
            let cutoff = if dead { cutoffs.dead_before } else { cutoffs.before };
            let Some(cutoff) = cutoff else { continue };
            while expired.len() < batch {
                let order = if dead { &mut self.dead_by_end } else { &mut self.by_end };
                match order.first() {
                    Some((end, _)) if *end < cutoff => {}
                    _ => break,
                }
                let Some((_, handle)) = order.pop_first() else { break };
                if let Some(record) = self.by_handle.remove(&handle) {
                    expired.push(record);
                }
            }
        }
        expired
    }

    /// When the next record expires (Unix milliseconds), if any is held.
    pub fn next_expiry(&self) -> Option<u64> {
        let others = self.by_end.first().map(|(end, _)| end.saturating_add(self.retention.keep_ms));
        let dead = self.dead_by_end.first().map(|(end, _)| end.saturating_add(self.retention.dead_keep_ms));
        let at = match (others, dead) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(at.saturating_add(1))
    }

    /// Removes the record that ended first, dead or not (the count bound
    /// pushes out the oldest whatever its kind).
    fn pop_oldest(&mut self) -> Option<Record> {
        let dead_first = match (self.by_end.first(), self.dead_by_end.first()) {
            (Some(a), Some(b)) => b < a,
            (None, Some(_)) => true,
            _ => false,
        };
        let order = if dead_first { &mut self.dead_by_end } else { &mut self.by_end };
        let (_, handle) = order.pop_first()?;
        self.by_handle.remove(&handle)
    }
}

#[cfg(test)]
mod tests {
    use sprocket_proto::Priority;

    use super::*;
    use crate::record::Limits;
    use crate::state::Outcome;

    fn ended(handle: &str, function: &str, outcome: Outcome<'_>, at: u64) -> Record {
        let mut record =
            Record::new(handle.as_bytes(), function.as_bytes(), b"", Priority::Normal, true, at / 2).unwrap();
        record.ended(outcome, at, Limits::default()).unwrap();
        record
    }

    fn handles(records: &[Record]) -> Vec<&[u8]> {
        records.iter().map(Record::handle).collect()
    }

    #[test]
    fn retention_rules() {
        let retention = Retention { keep_ms: 100, dead_keep_ms: 300, max_count: 3 };
        assert_eq!(retention.cutoff(50), None);
        assert_eq!(retention.cutoff(1_000), Some(900));
        assert!(!retention.is_expired(900, 1_000));
        assert!(retention.is_expired(899, 1_000));
        assert!(!retention.is_expired(0, 99));
        assert_eq!((retention.excess(2), retention.excess(5)), (0, 2));
        assert_eq!(Retention::default().keep_ms, 604_800_000);
    }

    #[test]
    fn insert_get_replace_remove() {
        let mut store = MemoryRecords::new(Retention::default());
        let queued = Record::new(b"H:h:0", b"f", b"", Priority::Normal, true, 1).unwrap();
        assert_eq!(store.insert(queued), Err(NotEnded(RecordState::Queued)));
        assert_eq!(store.insert(ended("H:h:1", "f", Outcome::Failed, 10)), Ok(None));
        assert_eq!(store.get(b"H:h:1").unwrap().state(), RecordState::Failed);
        // Same handle again: replaced, not added.
        assert_eq!(store.insert(ended("H:h:1", "f", Outcome::Complete(b"r"), 20)), Ok(None));
        assert_eq!(store.len(), 1);
        assert_eq!(store.get(b"H:h:1").unwrap().result(), Some(&b"r"[..]));
        assert_eq!(store.next_expiry(), Some(20 + DEFAULT_RETENTION_MS + 1));
        assert!(store.remove(b"H:h:1").is_some());
        assert!(store.is_empty() && store.get(b"H:h:1").is_none() && store.next_expiry().is_none());
        assert!(store.remove(b"H:h:1").is_none());
    }

    #[test]
    fn the_count_bound_pushes_out_the_oldest() {
        let mut store = MemoryRecords::new(Retention { keep_ms: 1_000, dead_keep_ms: 1_000, max_count: 2 });
        store.insert(ended("H:h:2", "f", Outcome::Failed, 20)).unwrap();
        store.insert(ended("H:h:1", "f", Outcome::Failed, 10)).unwrap();
        let out = store.insert(ended("H:h:3", "f", Outcome::Failed, 30)).unwrap();
        assert_eq!(out.unwrap().handle(), b"H:h:1");
        // An insert older than everything kept is itself the one pushed out.
        let out = store.insert(ended("H:h:0", "f", Outcome::Failed, 5)).unwrap();
        assert_eq!(out.unwrap().handle(), b"H:h:0");
        assert_eq!(store.len(), 2);
        let mut none = MemoryRecords::new(Retention { keep_ms: 1_000, dead_keep_ms: 1_000, max_count: 0 });
        assert!(none.insert(ended("H:h:9", "f", Outcome::Failed, 5)).unwrap().is_some());
        assert!(none.is_empty());
    }

    #[test]
    fn expiry_is_oldest_first_in_batches() {
        let mut store = MemoryRecords::new(Retention { keep_ms: 100, dead_keep_ms: 100, max_count: 100 });
        for (n, at) in [(1, 50), (2, 10), (3, 30), (4, 500), (5, 20)] {
            store.insert(ended(&format!("H:h:{n}"), "f", Outcome::Failed, at)).unwrap();
        }
        assert_eq!(store.next_expiry(), Some(111));
        assert!(store.expire(110, 10).is_empty(), "at 110 the record of 10 is exactly 100 old");
        assert_eq!(handles(&store.expire(200, 2)), [b"H:h:2", b"H:h:5"]);
        assert_eq!(handles(&store.expire(200, 2)), [b"H:h:3", b"H:h:1"]);
        assert!(store.expire(200, 2).is_empty());
        assert_eq!(store.len(), 1);
        assert_eq!(store.next_expiry(), Some(601));
    }

    #[test]
    fn search_by_function_state_and_time() {
        let mut store = MemoryRecords::new(Retention::default());
        store.insert(ended("H:h:1", "resize", Outcome::Complete(b""), 10)).unwrap();
        store.insert(ended("H:h:2", "resize", Outcome::Failed, 20)).unwrap();
        store.insert(ended("H:h:3", "mail", Outcome::Failed, 30)).unwrap();
        store.insert(ended("H:h:4", "resize", Outcome::Complete(b""), 40)).unwrap();
        let found = |state, since, limit| -> Vec<Vec<u8>> {
            store.search(b"resize", state, since, limit).iter().map(|r| r.handle().to_vec()).collect()
        };
        assert_eq!(found(None, None, 10), [b"H:h:4".to_vec(), b"H:h:2".to_vec(), b"H:h:1".to_vec()]);
        assert_eq!(found(Some(RecordState::Complete), None, 10), [b"H:h:4".to_vec(), b"H:h:1".to_vec()]);
        assert_eq!(found(None, None, 1), [b"H:h:4".to_vec()]);
        assert_eq!(found(None, Some(20), 10), [b"H:h:4".to_vec(), b"H:h:2".to_vec()]);
        assert!(found(Some(RecordState::Timeout), None, 10).is_empty());
    }

    #[test]
    fn dead_records_keep_their_own_retention() {
        let mut store = MemoryRecords::new(Retention { keep_ms: 100, dead_keep_ms: 1_000, max_count: 100 });
        store
            .insert(ended(
                "H:h:1",
                "f",
                Outcome::Dead { end: crate::state::AttemptEnd::Exception, error: Some(b"boom"), payload: b"work" },
                10,
            ))
            .unwrap();
        store.insert(ended("H:h:2", "f", Outcome::Failed, 20)).unwrap();
        store
            .insert(ended(
                "H:h:3",
                "f",
                Outcome::Dead { end: crate::state::AttemptEnd::Failed, error: None, payload: b"work" },
                30,
            ))
            .unwrap();
        store.insert(ended("H:h:4", "f", Outcome::Failed, 400)).unwrap();
        assert_eq!(store.next_expiry(), Some(121), "the failed job of 20 expires first");
        // At 500 the failed job of 20 has expired; the older dead one has not.
        assert_eq!(handles(&store.expire(500, 10)), [b"H:h:2"]);
        assert!(store.expire(500, 10).is_empty());
        assert_eq!(store.next_expiry(), Some(501));
        // Listing merges both orders, newest first.
        let all = RecordFilter { limit: 10, ..Default::default() };
        let listed: Vec<&[u8]> = store.find(&all).iter().map(|r| r.handle()).collect();
        assert_eq!(listed, [&b"H:h:4"[..], b"H:h:3", b"H:h:1"]);
        let dead = RecordFilter { state: Some(RecordState::Dead), limit: 10, ..Default::default() };
        assert_eq!(store.find(&dead).len(), 2);
        assert_eq!(store.search(b"f", Some(RecordState::Dead), None, 10).len(), 2);
        // At 1_020 the dead job of 10 has expired as well as the failed one of 400.
        assert_eq!(handles(&store.expire(1_020, 10)), [b"H:h:4", b"H:h:1"]);
        assert_eq!(store.len(), 1);
        // The count bound pushes out the oldest, dead or not.
        let mut small = MemoryRecords::new(Retention { keep_ms: 100, dead_keep_ms: 1_000, max_count: 1 });
        small
            .insert(ended(
                "H:h:5",
                "f",
                Outcome::Dead { end: crate::state::AttemptEnd::Failed, error: None, payload: b"work" },
                5,
            ))
            .unwrap();
        let out = small.insert(ended("H:h:6", "f", Outcome::Failed, 6)).unwrap();
        assert_eq!(out.unwrap().handle(), b"H:h:5");
    }

    #[test]
    fn purge_removes_matching_records_in_batches() {
        let mut store = MemoryRecords::new(Retention::default());
        for n in 0..5 {
            store
                .insert(ended(
                    &format!("H:h:{n}"),
                    "f",
                    Outcome::Dead { end: crate::state::AttemptEnd::Exception, error: Some(b"x"), payload: b"work" },
                    10 + n,
                ))
                .unwrap();
        }
        store
            .insert(ended(
                "H:h:9",
                "g",
                Outcome::Dead { end: crate::state::AttemptEnd::Failed, error: None, payload: b"work" },
                50,
            ))
            .unwrap();
        store.insert(ended("H:h:8", "f", Outcome::Failed, 60)).unwrap();
        let dead_f = RecordFilter {
            function: Some(bytes::Bytes::from_static(b"f")),
            state: Some(RecordState::Dead),
            ..Default::default()
        };
        assert_eq!(store.purge(&dead_f, 3), 3);
        assert_eq!(store.purge(&dead_f, 3), 2);
        assert_eq!(store.purge(&dead_f, 3), 0);
        assert_eq!(store.len(), 2, "g's dead job and f's failed one stay");
        assert!(store.get(b"H:h:9").is_some() && store.get(b"H:h:8").is_some());
    }

    proptest::proptest! {
        /// Whatever the order of inserts, the store stays within its count,
        /// pushes out and expires by end time, and keeps nothing expired
        /// once expiry has run to the end.
        #[test]
        fn bounds_and_order_hold(
            ends in proptest::collection::vec((0u64..20, 0u64..1_000), 1..60),
            max_count in 0usize..20,
            now in 0u64..1_200,
        ) {
            let mut store = MemoryRecords::new(Retention { keep_ms: 200, dead_keep_ms: 200, max_count });
            let mut pushed_out = Vec::new();
            for (n, at) in &ends {
                let out = store.insert(ended(&format!("H:h:{n}"), "f", Outcome::Failed, *at)).unwrap();
                proptest::prop_assert!(store.len() <= max_count);
                if let Some(out) = out {
                    let oldest_kept = store.by_end.first().map_or(u64::MAX, |(end, _)| *end);
                    proptest::prop_assert!(out.finished().unwrap() <= oldest_kept);
                    pushed_out.push(out);
                }
            }
            let mut expired_ends = Vec::new();
            loop {
                let batch = store.expire(now, 3);
                proptest::prop_assert!(batch.len() <= 3);
                if batch.is_empty() {
                    break;
                }
                expired_ends.extend(batch.iter().map(|r| r.finished().unwrap()));
            }
            proptest::prop_assert!(expired_ends.windows(2).all(|w| w[0] <= w[1]));
            proptest::prop_assert!(expired_ends.iter().all(|&end| store.retention().is_expired(end, now)));
            for (end, handle) in &store.by_end {
                proptest::prop_assert!(!store.retention().is_expired(*end, now));
                proptest::prop_assert_eq!(store.get(handle).unwrap().finished(), Some(*end));
            }
            proptest::prop_assert_eq!(store.by_end.len(), store.by_handle.len());
        }
    }
}
