//! Retention rules and the in-memory record store of `-q builtin`.
//!
//! [`Retention`] says which ended records have expired (`--record-retention`)
//! and how many may be kept (`--record-max-count`); a database store turns
//! it into `DELETE … WHERE finished < cutoff` in small batches.
//! [`MemoryRecords`] keeps ended records in memory under those rules.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::record::Record;
use crate::state::RecordState;

/// Default of `--record-retention`: 7 days.
pub const DEFAULT_RETENTION_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Default of `--record-max-count`: records kept by the in-memory store.
pub const DEFAULT_MAX_COUNT: usize = 100_000;

/// How long and how many ended records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A record expires this long after its job ended (milliseconds).
    pub keep_ms: u64,
    /// Most records kept; the oldest ended ones go first.
    pub max_count: usize,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention { keep_ms: DEFAULT_RETENTION_MS, max_count: DEFAULT_MAX_COUNT }
    }
}

impl Retention {
    /// Records whose job ended strictly before this time have expired at
    /// `now`; `None` when none can have (`now` is less than the retention
    /// after the epoch).
    pub fn cutoff(&self, now: u64) -> Option<u64> {
        now.checked_sub(self.keep_ms)
    }

    /// Whether a record whose job ended at `finished` has expired at `now`.
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
/// expiry and listing. Each record costs, besides itself, one shared copy
/// of its handle for the two indexes.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    retention: Retention,
    by_handle: HashMap<Arc<[u8]>, Record>,
    by_end: BTreeSet<(u64, Arc<[u8]>)>,
}

fn end_of(record: &Record) -> u64 {
    // Ended records always have an end time; one built without (from an
    // inconsistent stored row) sorts as ending when it was submitted.
    record.finished().unwrap_or(record.submitted())
}

impl MemoryRecords {
    /// An empty store.
    pub fn new(retention: Retention) -> MemoryRecords {
        MemoryRecords { retention, by_handle: HashMap::new(), by_end: BTreeSet::new() }
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
        self.by_end.insert((end_of(&record), handle.clone()));
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
        self.by_end.remove(&(end_of(&record), key));
        Some(record)
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
        self.by_end
            .iter()
            .rev()
            .take_while(|(end, _)| since.is_none_or(|since| *end >= since))
            .filter_map(|(_, handle)| self.by_handle.get(handle))
            .filter(|record| record.function() == function && state.is_none_or(|state| record.state() == state))
            .take(limit)
            .collect()
    }

    /// Records matching `filter`, newest end first, at most its limit.
    /// Walks the records from the newest end and stops at `filter.since`
    /// or once the limit is reached.
    pub fn find(&self, filter: &crate::filter::RecordFilter) -> Vec<&Record> {
        self.by_end
            .iter()
            .rev()
            .take_while(|(end, _)| filter.since.is_none_or(|since| *end >= since))
            .filter_map(|(_, handle)| self.by_handle.get(handle))
            .filter(|record| filter.matches(record.function(), record.state(), record.finished()))
            .take(filter.limit)
            .collect()
    }

    /// Removes up to `batch` expired records at `now`, oldest first, and
    /// returns them. Called often with a small batch, so no call takes
    /// long.
    pub fn expire(&mut self, now: u64, batch: usize) -> Vec<Record> {
        let mut expired = Vec::new();
        while expired.len() < batch {
            match self.by_end.first() {
                Some((end, _)) if self.retention.is_expired(*end, now) => {}
                _ => break,
            }
            if let Some(record) = self.pop_oldest() {
                expired.push(record);
            }
        }
        expired
    }

    /// When the next record expires (Unix milliseconds), if any is held.
    pub fn next_expiry(&self) -> Option<u64> {
        let (end, _) = self.by_end.first()?;
        Some(end.saturating_add(self.retention.keep_ms).saturating_add(1))
    }

    fn pop_oldest(&mut self) -> Option<Record> {
        let (_, handle) = self.by_end.pop_first()?;
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
        let retention = Retention { keep_ms: 100, max_count: 3 };
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
        let mut store = MemoryRecords::new(Retention { keep_ms: 1_000, max_count: 2 });
        store.insert(ended("H:h:2", "f", Outcome::Failed, 20)).unwrap();
        store.insert(ended("H:h:1", "f", Outcome::Failed, 10)).unwrap();
        let out = store.insert(ended("H:h:3", "f", Outcome::Failed, 30)).unwrap();
        assert_eq!(out.unwrap().handle(), b"H:h:1");
        // An insert older than everything kept is itself the one pushed out.
        let out = store.insert(ended("H:h:0", "f", Outcome::Failed, 5)).unwrap();
        assert_eq!(out.unwrap().handle(), b"H:h:0");
        assert_eq!(store.len(), 2);
        let mut none = MemoryRecords::new(Retention { keep_ms: 1_000, max_count: 0 });
        assert!(none.insert(ended("H:h:9", "f", Outcome::Failed, 5)).unwrap().is_some());
        assert!(none.is_empty());
    }

    #[test]
    fn expiry_is_oldest_first_in_batches() {
        let mut store = MemoryRecords::new(Retention { keep_ms: 100, max_count: 100 });
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
            let mut store = MemoryRecords::new(Retention { keep_ms: 200, max_count });
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
