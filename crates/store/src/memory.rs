//! An in-process store: rows in a map shared through a [`MemoryHandle`].
//!
//! Used by tests and by builds that want store semantics without a
//! database. The handle can also simulate an unreachable database and
//! rejected rows, so the writer's fault handling can be tested
//! deterministically (the real-database fault tests live in `tests/`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use sprocket_records::{MemoryRecords, Retention};

use crate::netops::reduce;
use crate::{JobKey, QueuedHandle, Record, RecordFilter, RecordRow, Result, Store, StoreError, StoreOp, StoredJob};

#[derive(Debug, Default)]
struct State {
    /// Rows in insertion order (the order `load` returns).
    rows: BTreeMap<u64, StoredJob>,
    index: HashMap<JobKey, u64>,
    next: u64,
    available: bool,
    reject_functions: Vec<Bytes>,
    /// Number of `apply` calls that reached the rows (for batch tests).
    applies: usize,
    /// How long each `apply` takes, to let commits overlap in tests: the
    /// next ones from `delays`, then `delay`.
    delay: std::time::Duration,
    delays: std::collections::VecDeque<std::time::Duration>,
    /// Apply each batch, then answer as if the connection had dropped.
    lose_replies: bool,
    /// `apply` calls under way now, and the most seen at once.
    running: usize,
    most_running: usize,
    /// Every `apply` fails as unavailable although connecting works (a
    /// full disk, a database that refuses writes).
    fail_writes: bool,
    /// `apply` calls, whatever their outcome.
    attempts: usize,
    /// The next `apply` fails as if the server had closed the connection.
    drop_next: bool,
    /// Records of ended jobs, bounded by their retention's count.
    ended: MemoryRecords,
    /// Records of jobs not ended yet, by handle (as many as jobs live).
    live: HashMap<Bytes, RecordRow>,
    /// Functions of the ended records, to search without a function.
    functions: std::collections::HashSet<Bytes>,
    /// The next free handle number (0: none reserved yet).
    next_handle: u64,
    /// Operator settings by kind and name.
    settings: BTreeMap<(String, Bytes), String>,
}

/// A store whose rows live in memory.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

/// A second view of a [`MemoryStore`]'s rows, kept by a test after the
/// store itself has been handed to a writer.
#[derive(Debug, Clone)]
pub struct MemoryHandle {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves plain data behind; keep going.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty, available store.
    pub fn new() -> MemoryStore {
        MemoryStore::with_retention(Retention::default())
    }

    /// An empty, available store keeping ended job records within
    /// `retention` (`--record-max-count` bounds them; the oldest ended
    /// record goes first).
    pub fn with_retention(retention: Retention) -> MemoryStore {
        let ended = MemoryRecords::new(retention);
        MemoryStore { state: Arc::new(Mutex::new(State { available: true, ended, ..State::default() })) }
    }

    /// A handle sharing this store's rows.
    pub fn handle(&self) -> MemoryHandle {
        MemoryHandle { state: self.state.clone() }
    }
}

impl MemoryHandle {
    /// The stored rows, in insertion order.
    pub fn rows(&self) -> Vec<StoredJob> {
        lock(&self.state).rows.values().cloned().collect()
    }

    /// Simulates the database going away (`false`) or coming back (`true`).
    pub fn set_available(&self, available: bool) {
        lock(&self.state).available = available;
    }

    /// Makes every later insert of `function` fail with `Rejected`.
    pub fn reject_function(&self, function: &[u8]) {
        lock(&self.state).reject_functions.push(Bytes::copy_from_slice(function));
    }

    /// How many `apply` calls have changed (or tried to change) the rows.
    pub fn applies(&self) -> usize {
        lock(&self.state).applies
    }

    /// Makes every later `apply` take this long (an unhurried database).
    pub fn set_delay(&self, delay: std::time::Duration) {
        lock(&self.state).delay = delay;
    }

    /// Makes the next `apply` calls take these times, in order (then the
    /// time set by [`MemoryHandle::set_delay`]).
    pub fn set_next_delays(&self, delays: &[std::time::Duration]) {
        lock(&self.state).delays = delays.iter().copied().collect();
    }

    /// Makes every later `apply` change the rows and then fail with
    /// `Unavailable`, like a commit whose reply was lost.
    pub fn set_lose_replies(&self, lose: bool) {
        lock(&self.state).lose_replies = lose;
    }

    /// Makes every later `apply` fail as unavailable while reconnecting
    /// still works, like a database on a full disk (`false` ends it).
    pub fn set_fail_writes(&self, fail: bool) {
        lock(&self.state).fail_writes = fail;
    }

    /// Makes the next `apply` fail unapplied, as on a connection the server
    /// closed while it was idle; reconnecting works.
    pub fn drop_connection(&self) {
        lock(&self.state).drop_next = true;
    }

    /// How many `apply` calls there have been, failed ones included.
    pub fn attempts(&self) -> usize {
        lock(&self.state).attempts
    }

    /// The most `apply` calls that were under way at the same time.
    pub fn most_concurrent_applies(&self) -> usize {
        lock(&self.state).most_running
    }

    /// How many records are held: (not ended, ended).
    pub fn record_counts(&self) -> (usize, usize) {
        let st = lock(&self.state);
        (st.live.len(), st.ended.len())
    }

    /// A new store over the same rows (a "restart" in tests).
    pub fn reopen(&self) -> MemoryStore {
        MemoryStore { state: self.state.clone() }
    }
}

impl MemoryStore {
    /// The state, or `Unavailable` while the store is switched off.
    fn available(&self) -> Result<MutexGuard<'_, State>> {
        let st = lock(&self.state);
        if !st.available {
            return Err(StoreError::Unavailable("memory store switched off".into()));
        }
        Ok(st)
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory".to_string()
    }

    async fn load(&mut self) -> Result<Vec<StoredJob>> {
        let st = lock(&self.state);
        if !st.available {
            return Err(StoreError::Unavailable("memory store switched off".into()));
        }
        Ok(st.rows.values().cloned().collect())
    }

    async fn apply(&mut self, ops: &[StoreOp]) -> Result<()> {
        let delay = {
            let mut st = lock(&self.state);
            st.attempts += 1;
            st.running += 1;
            st.most_running = st.most_running.max(st.running);
            let default = st.delay;
            st.delays.pop_front().unwrap_or(default)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut st = lock(&self.state);
        st.running -= 1;
        if !st.available {
            return Err(StoreError::Unavailable("memory store switched off".into()));
        }
        if st.fail_writes {
            return Err(StoreError::Unavailable("memory store refuses writes".into()));
        }
        if std::mem::take(&mut st.drop_next) {
            return Err(StoreError::Unavailable("memory store: connection closed by the server".into()));
        }
        st.applies += 1;
        let net = reduce(ops);
        // Check everything before changing anything: the batch is atomic.
        if let Some(bad) = net.upserts.iter().find(|j| st.reject_functions.contains(&j.function)) {
            return Err(StoreError::Rejected(format!("function {:?} refused", bad.function)));
        }
        // A record that cannot be read refuses the whole batch too.
        let mut records = Vec::with_capacity(net.records.len());
        for row in net.records {
            let record = row.record().map_err(|e| StoreError::Rejected(format!("job record: {e}")))?;
            records.push((row, record));
        }
        for key in net.deletes {
            if let Some(id) = st.index.remove(key) {
                st.rows.remove(&id);
            }
        }
        for (row, record) in records {
            st.live.remove(&row.handle);
            if record.state().is_final() {
                st.functions.insert(row.function.clone());
                // An error is a record that is not ended, ruled out above.
                let _ = st.ended.insert(record);
            } else {
                st.live.insert(row.handle.clone(), row.clone());
            }
        }
        for job in net.upserts {
            let key = job.key();
            if let Some(id) = st.index.get(&key).copied() {
                st.rows.insert(id, job.clone());
            } else {
                let id = st.next;
                st.next += 1;
                st.rows.insert(id, job.clone());
                st.index.insert(key, id);
            }
        }
        if st.lose_replies {
            return Err(StoreError::Unavailable("memory store lost the reply".into()));
        }
        Ok(())
    }

    /// Another view of the same rows, so the writer's concurrent commits
    /// can be tested without a database.
    async fn open_another(&mut self) -> Result<Option<Box<dyn Store>>> {
        Ok(Some(Box::new(self.clone())))
    }

    fn keeps_records(&self) -> bool {
        true
    }

    async fn load_record(&mut self, handle: &[u8]) -> Result<Option<Record>> {
        let st = self.available()?;
        if let Some(row) = st.live.get(handle) {
            return row.record().map(Some).map_err(|e| StoreError::Corrupt(format!("job record: {e}")));
        }
        Ok(st.ended.get(handle).cloned())
    }

    async fn search_records(&mut self, filter: &RecordFilter) -> Result<Vec<Record>> {
        let st = self.available()?;
        let functions: Vec<Bytes> = match &filter.function {
            Some(f) => vec![f.clone()],
            None => st.functions.iter().cloned().collect(),
        };
        // With an upper bound or an error text the newest records may all
        // fail it, so every match up to `since` is looked at.
        let each = if filter.until.is_some() || filter.needs_record_check() { usize::MAX } else { filter.limit };
        let mut found: Vec<&Record> = functions
            .iter()
            .flat_map(|f| st.ended.search(f, filter.state, filter.since, each))
            .filter(|r| filter.matches_record(r))
            .collect();
        found.sort_by(|a, b| (b.finished(), b.handle()).cmp(&(a.finished(), a.handle())));
        Ok(found.into_iter().take(filter.limit).cloned().collect())
    }

    async fn expire_records(&mut self, cutoffs: crate::ExpiryCutoffs, batch_limit: usize) -> Result<usize> {
        let mut st = self.available()?;
        Ok(st.ended.expire_before(cutoffs, batch_limit).len())
    }

    async fn purge_records(&mut self, filter: &RecordFilter, batch_limit: usize) -> Result<usize> {
        crate::check_purge_filter(filter)?;
        let mut st = self.available()?;
        Ok(st.ended.purge(filter, batch_limit))
    }

    async fn queued_handles(&mut self) -> Result<Vec<QueuedHandle>> {
        let st = self.available()?;
        Ok(st
            .live
            .values()
            .filter(|row| !row.row_unique.is_empty())
            .map(|row| QueuedHandle {
                key: JobKey { function: row.function.clone(), unique: row.row_unique.clone() },
                handle: row.handle.clone(),
                record: row.record().ok(),
            })
            .collect())
    }

    async fn reserve_handles(&mut self, block: u64) -> Result<u64> {
        let mut st = self.available()?;
        let first = st.next_handle.max(1);
        st.next_handle =
            first.checked_add(block.max(1)).ok_or_else(|| StoreError::Rejected("handle numbers are used up".into()))?;
        Ok(first)
    }

    async fn load_settings(&mut self, kind: &str) -> Result<Vec<crate::Setting>> {
        let st = self.available()?;
        Ok(st
            .settings
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((_, name), value)| (name.clone(), value.clone()))
            .collect())
    }

    async fn put_setting(&mut self, kind: &str, name: &[u8], value: &str) -> Result<()> {
        let mut st = self.available()?;
        st.settings.insert((kind.to_owned(), Bytes::copy_from_slice(name)), value.to_owned());
        Ok(())
    }

    async fn delete_setting(&mut self, kind: &str, name: &[u8]) -> Result<()> {
        let mut st = self.available()?;
        st.settings.remove(&(kind.to_owned(), Bytes::copy_from_slice(name)));
        Ok(())
    }

    async fn reconnect(&mut self) -> Result<()> {
        let st = lock(&self.state);
        if st.available && !st.lose_replies {
            Ok(())
        } else {
            Err(StoreError::Unavailable("memory store switched off".into()))
        }
    }
}
