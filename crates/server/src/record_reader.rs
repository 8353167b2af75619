//! The task that does the engine's store work beside the queue: reads job
//! records, expires ended records past `--record-retention` (dead ones
//! past `--dead-retention`), purges records for operators, reserves
//! blocks of handle numbers and writes operator settings (paused
//! functions) — on a connection of its own beside the writer's, so that
//! none of it waits behind a commit or delays one.
//!
//! The engine asks through its outbox ([`RecordRead`], [`RecordPurge`],
//! `wants_handles`, [`SettingWrite`]); the answers come back to the engine
//! task as [`ReaderReply`]s.
//!
//! A search by error text is answered here for every store: the text is
//! inside each record's encoded body, which no database can look into, so
//! the reader pages through the records matching the other conditions,
//! newest first, and keeps those whose text matches
//! ([`RecordFilter::matches_record`]), looking at no more than
//! [`MAX_EXAMINED`] records per search.

use std::time::Duration;

use bytes::Bytes;
use sprocket_engine::{Record, RecordFilter, RecordPurge, RecordQuery, RecordRead, SettingWrite};
use sprocket_records::Retention;
use sprocket_store::{Store, StoreError, HANDLE_BLOCK};
use tokio::sync::mpsc;

/// How often ended records past the retention are looked for (more often
/// for a retention shorter than twice this, so that records never outlive
/// it by more than half).
const EXPIRY_INTERVAL: Duration = Duration::from_secs(10);
/// The shortest expiry interval, however short the retention.
const MIN_EXPIRY_INTERVAL: Duration = Duration::from_millis(100);
/// Records deleted per statement: small, so no statement holds the
/// database (or, for SQLite, the writer's lock) for long.
const EXPIRY_BATCH: usize = 500;
/// The pause between two expiry batches, so the writer and reads get the
/// database in between.
const EXPIRY_PAUSE: Duration = Duration::from_millis(20);
/// Most reads of single handles answered together (see
/// [`Store::load_records`]).
const READ_BATCH: usize = 256;
/// Records deleted per statement of an operator's purge, for the same
/// reason as [`EXPIRY_BATCH`].
const PURGE_BATCH: usize = 500;
/// Most records a search by error text looks at (those matching its other
/// conditions, newest first) before it answers with what it found: a
/// bound on the work of one search over a large store.
pub const MAX_EXAMINED: usize = 100_000;
/// Records read per page while searching by error text.
const TEXT_SEARCH_PAGE: usize = 1_000;

/// What the engine task asks of the reader.
#[derive(Debug)]
pub enum ReaderJob {
    /// Read records.
    Read(RecordRead),
    /// Reserve the next block of handle numbers.
    ReserveHandles,
    /// Make a setting durable (or remove it).
    Setting(SettingWrite),
    /// Delete ended records.
    Purge(RecordPurge),
}

/// What the reader answers.
#[derive(Debug)]
pub enum ReaderReply {
    /// The records a read found, or why it failed.
    Read {
        /// The read's id.
        id: u64,
        /// What it found.
        result: Result<Vec<Record>, String>,
    },
    /// A block of handle numbers starting here.
    Handles(u64),
    /// How many records a purge deleted, or why it stopped.
    Purge {
        /// The purge's id.
        id: u64,
        /// Records deleted, or the store's error (records deleted before
        /// it stay deleted).
        result: Result<u64, String>,
    },
    /// A setting's write is durable, or why it is not.
    Setting {
        /// The write's id.
        id: u64,
        /// Done, or the store's error.
        result: Result<(), String>,
    },
}

/// Starts the reader on `store` (a connection of its own); answers go to
/// `replies`. It ends when the sender it returns is dropped.
pub fn spawn(
    store: Box<dyn Store>,
    retention: Retention,
    replies: mpsc::UnboundedSender<ReaderReply>,
) -> mpsc::UnboundedSender<ReaderJob> {
    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(store, retention, jobs_rx, replies));
    jobs_tx
}

async fn run(
    mut store: Box<dyn Store>,
    retention: Retention,
    mut jobs: mpsc::UnboundedReceiver<ReaderJob>,
    replies: mpsc::UnboundedSender<ReaderReply>,
) {
    let every = EXPIRY_INTERVAL.min(Duration::from_millis(retention.shortest_ms() / 2)).max(MIN_EXPIRY_INTERVAL);
    let mut expiry = tokio::time::interval(every);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { break };
                // Reads that arrived meanwhile are answered together.
                let mut batch = vec![job];
                while batch.len() < READ_BATCH {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                if answer_all(&mut *store, batch, &replies).await.is_err() {
                    break;
                }
            }
            _ = expiry.tick() => expire(&mut *store, retention, &mut jobs, &replies).await,
        }
    }
}

/// Does `batch`, reading the single handles among it in one go; an error
/// when the engine task is gone.
async fn answer_all(
    store: &mut dyn Store,
    batch: Vec<ReaderJob>,
    replies: &mpsc::UnboundedSender<ReaderReply>,
) -> Result<(), mpsc::error::SendError<ReaderReply>> {
    let mut singles: Vec<(u64, Bytes)> = Vec::new();
    let mut others = Vec::new();
    for job in batch {
        match job {
            ReaderJob::Read(RecordRead { id, query: RecordQuery::Handle(handle) }) => singles.push((id, handle)),
            other => others.push(other),
        }
    }
    if !singles.is_empty() {
        let handles: Vec<Bytes> = singles.iter().map(|(_, h)| h.clone()).collect();
        match read_handles(store, &handles).await {
            Ok(found) => {
                for ((id, _), record) in singles.into_iter().zip(found) {
                    replies.send(ReaderReply::Read { id, result: Ok(record.into_iter().collect()) })?;
                }
            }
            Err(e) => {
                for (id, _) in singles {
                    replies.send(ReaderReply::Read { id, result: Err(e.clone()) })?;
                }
            }
        }
    }
    for job in others {
        if let Some(reply) = answer(store, job).await {
            replies.send(reply)?;
        }
    }
    Ok(())
}

/// Does one job; `None` when there is nothing to answer (handles could not
/// be reserved, which is logged).
async fn answer(store: &mut dyn Store, job: ReaderJob) -> Option<ReaderReply> {
    match job {
        ReaderJob::Read(read) => {
            Some(ReaderReply::Read { id: read.id, result: read_records(store, &read.query).await })
        }
        ReaderJob::ReserveHandles => reserve(store).await.map(ReaderReply::Handles),
        ReaderJob::Setting(write) => {
            Some(ReaderReply::Setting { id: write.id, result: write_setting(store, &write).await })
        }
        ReaderJob::Purge(purge) => {
            Some(ReaderReply::Purge { id: purge.id, result: purge_records(store, &purge).await })
        }
    }
}

/// Deletes the records a purge selects, a batch at a time, each its own
/// short transaction, pausing between batches so that the writer gets the
/// database; one reconnection is tried when the database went away.
async fn purge_records(store: &mut dyn Store, purge: &RecordPurge) -> Result<u64, String> {
    let mut total: u64 = 0;
    let mut reconnected = false;
    loop {
        match store.purge_records(&purge.filter, PURGE_BATCH).await {
            Ok(n) => {
                total += n as u64;
                if n < PURGE_BATCH {
                    return Ok(total);
                }
                tokio::time::sleep(EXPIRY_PAUSE).await;
            }
            Err(StoreError::Unavailable(_)) if !reconnected && store.reconnect().await.is_ok() => reconnected = true,
            Err(e) if total > 0 => return Err(format!("{e} (after {total} records were purged)")),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Writes (or removes) one setting; one reconnection is tried when the
/// database went away.
async fn write_setting(store: &mut dyn Store, write: &SettingWrite) -> Result<(), String> {
    let mut result = write_setting_once(store, write).await;
    if matches!(result, Err(StoreError::Unavailable(_))) && store.reconnect().await.is_ok() {
        result = write_setting_once(store, write).await;
    }
    result.map_err(|e| e.to_string())
}

async fn write_setting_once(store: &mut dyn Store, write: &SettingWrite) -> Result<(), StoreError> {
    match &write.value {
        Some(value) => store.put_setting(write.kind, &write.name, value).await,
        None => store.delete_setting(write.kind, &write.name).await,
    }
}

/// The records of `handles`, in one store call; one reconnection is tried
/// when the database went away.
async fn read_handles(store: &mut dyn Store, handles: &[Bytes]) -> Result<Vec<Option<Record>>, String> {
    let mut found = store.load_records(handles).await;
    if matches!(found, Err(StoreError::Unavailable(_))) && store.reconnect().await.is_ok() {
        found = store.load_records(handles).await;
    }
    found.map_err(|e| e.to_string())
}

/// Reads what `query` asks for; one reconnection is tried when the database
/// went away.
async fn read_records(store: &mut dyn Store, query: &RecordQuery) -> Result<Vec<Record>, String> {
    let filter = match query {
        RecordQuery::Handle(handle) => {
            let found = read_handles(store, std::slice::from_ref(handle)).await?;
            return Ok(found.into_iter().flatten().collect());
        }
        RecordQuery::Search(filter) => filter,
    };
    let mut found = search(store, filter).await;
    if matches!(found, Err(StoreError::Unavailable(_))) && store.reconnect().await.is_ok() {
        found = search(store, filter).await;
    }
    found.map_err(|e| e.to_string())
}

/// A search of the store; by error text, paged (see [`search_by_text`]).
async fn search(store: &mut dyn Store, filter: &RecordFilter) -> Result<Vec<Record>, StoreError> {
    if filter.needs_record_check() {
        search_by_text(store, filter, TEXT_SEARCH_PAGE, MAX_EXAMINED).await
    } else {
        store.search_records(filter).await
    }
}

/// Pages through the records matching `filter`'s other conditions, newest
/// end first, keeping those that match it whole, until its limit is
/// reached, the records run out, or `max_examined` have been looked at.
///
/// A page ends at the end time of the oldest record seen so far, included
/// (`until` is one past it), and the records already seen at exactly that
/// time are skipped: the store orders records of one end time by handle,
/// so the next page starts where the last one stopped even when many
/// records share one millisecond. When a whole page is records already
/// seen, the next page is larger.
pub(crate) async fn search_by_text(
    store: &mut dyn Store,
    filter: &RecordFilter,
    page: usize,
    max_examined: usize,
) -> Result<Vec<Record>, StoreError> {
    let mut base = filter.without_record_check();
    let mut found = Vec::new();
    let mut examined = 0usize;
    let mut page = page.max(1);
    // The end time of the oldest record seen, and the handles seen at it.
    let mut edge: Option<u64> = None;
    let mut seen_at_edge: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    loop {
        base.until = match edge {
            Some(end) => Some(end.saturating_add(1)),
            None => filter.until,
        };
        base.limit = page;
        let got = store.search_records(&base).await?;
        let exhausted = got.len() < page;
        let mut new = 0usize;
        for record in got {
            let end = record.finished().unwrap_or_default();
            if edge == Some(end) && seen_at_edge.contains(record.handle()) {
                continue;
            }
            if edge != Some(end) {
                edge = Some(end);
                seen_at_edge.clear();
            }
            seen_at_edge.insert(record.handle().to_vec());
            new += 1;
            examined += 1;
            if filter.matches_record(&record) {
                found.push(record);
                if found.len() >= filter.limit {
                    return Ok(found);
                }
            }
            if examined >= max_examined {
                tracing::debug!(examined, "a search by error text stopped at its bound");
                return Ok(found);
            }
        }
        if exhausted {
            return Ok(found);
        }
        if new == 0 {
            page = page.saturating_mul(2);
        }
    }
}

/// Reserves the next handle block, trying until it succeeds: the engine
/// has half a block left when it asks, so there is time.
async fn reserve(store: &mut dyn Store) -> Option<u64> {
    for attempt in 0..60u32 {
        match store.reserve_handles(HANDLE_BLOCK).await {
            Ok(first) => return Some(first),
            Err(e) => {
                tracing::warn!(error = %e, attempt, "cannot reserve job handle numbers; trying again");
                let _ = store.reconnect().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    tracing::error!("gave up reserving job handle numbers");
    None
}

/// Deletes ended records past the retention, a small batch at a time,
/// answering reads that arrive in between.
async fn expire(
    store: &mut dyn Store,
    retention: Retention,
    jobs: &mut mpsc::UnboundedReceiver<ReaderJob>,
    replies: &mpsc::UnboundedSender<ReaderReply>,
) {
    let cutoffs = retention.cutoffs(crate::engine_task::now_ms());
    if cutoffs.is_none() {
        return;
    }
    loop {
        match store.expire_records(cutoffs, EXPIRY_BATCH).await {
            Ok(n) if n == EXPIRY_BATCH => {
                tracing::debug!(records = n, "expired job records");
            }
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(records = n, "expired job records");
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot expire job records; trying again later");
                let _ = store.reconnect().await;
                return;
            }
        }
        // Reads waiting meanwhile go first.
        while let Ok(job) = jobs.try_recv() {
            if let Some(reply) = answer(store, job).await {
                let _ = replies.send(reply);
            }
        }
        tokio::time::sleep(EXPIRY_PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sprocket_records::{Limits, Outcome, Worker};
    use sprocket_store::memory::MemoryStore;
    use sprocket_store::{RecordRow, StoreOp};

    use super::*;

    fn ended(n: u64, end: u64, error: Option<&[u8]>) -> Record {
        let handle = format!("H:t:{n:04}");
        let mut r =
            Record::new(handle.as_bytes(), b"f", b"", sprocket_proto::Priority::Normal, true, 1).expect("record");
        let worker = Worker { client_id: Bytes::new(), peer: Arc::from("127.0.0.1:1") };
        r.started(worker, 2).expect("start");
        let outcome = match error {
            Some(text) => Outcome::Exception(text),
            None => Outcome::Failed,
        };
        r.ended(outcome, end, Limits::default()).expect("end");
        r
    }

    async fn store_with(records: &[Record]) -> MemoryStore {
        let mut store = MemoryStore::new();
        write(&mut store, records).await;
        store
    }

    async fn write(store: &mut dyn Store, records: &[Record]) {
        let ops: Vec<StoreOp> = records.iter().map(|r| StoreOp::Record(RecordRow::new(r, b"").expect("row"))).collect();
        store.apply(&ops).await.expect("apply");
    }

    fn numbers(found: &[Record]) -> Vec<u64> {
        found.iter().map(|r| String::from_utf8_lossy(&r.handle()[4..]).parse().expect("number")).collect()
    }

    /// Many records ending in the same millisecond, more than a page:
    /// paging by end time must neither repeat nor skip any of them.
    #[tokio::test]
    async fn a_text_search_pages_through_records_sharing_an_end_time() {
        let mut records = Vec::new();
        for n in 0..40u64 {
            // Ten records end at each of four times; every third has the text.
            let end = 1_000 + (n / 10) * 10;
            let text: &[u8] = if n % 3 == 0 { b"Disk Full on sda" } else { b"other trouble" };
            records.push(ended(n, end, Some(text)));
        }
        records.push(ended(99, 2_000, None));
        // In memory, and in SQLite, whose query orders one end time's
        // records by handle.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("q.db");
        let mut sqlite =
            sprocket_store::sqlite::SqliteStore::open(&path, "gearman_queue", sprocket_store::SyncMode::Normal)
                .await
                .expect("sqlite");
        write(&mut sqlite, &records).await;
        let memory = store_with(&records).await;
        let mut stores: Vec<Box<dyn Store>> = vec![Box::new(memory), Box::new(sqlite)];
        for store in &mut stores {
            pages_through(store.as_mut()).await;
        }
    }

    async fn pages_through(store: &mut dyn Store) {
        let filter = RecordFilter { error: Some("disk full".into()), limit: 100, ..Default::default() };
        let mut want: Vec<u64> = (0..40).filter(|n| n % 3 == 0).collect();
        want.sort_by_key(|&n| std::cmp::Reverse((1_000 + (n / 10) * 10, n)));
        for page in [1, 3, 4, 10, 1_000] {
            let found = search_by_text(store, &filter, page, MAX_EXAMINED).await.expect("search");
            assert_eq!(numbers(&found), want, "page of {page}");
        }
        // The limit stops the search; the bound on records examined too.
        let two = RecordFilter { limit: 2, ..filter.clone() };
        assert_eq!(numbers(&search_by_text(store, &two, 3, MAX_EXAMINED).await.expect("search")), want[..2]);
        let newest_ten = search_by_text(store, &filter, 4, 11).await.expect("search");
        assert_eq!(numbers(&newest_ten), [39, 36, 33, 30], "only the 11 newest records were looked at");
        // The other conditions still apply.
        let window = RecordFilter { since: Some(1_010), until: Some(1_030), ..filter };
        assert_eq!(
            numbers(&search_by_text(store, &window, 2, MAX_EXAMINED).await.expect("search")),
            [27, 24, 21, 18, 15, 12]
        );
    }

    #[tokio::test]
    async fn a_purge_goes_in_batches_until_nothing_matches() {
        let records: Vec<Record> = (0..1_203u64).map(|n| ended(n, 1_000 + n, None)).collect();
        let mut store = store_with(&records).await;
        let purge = RecordPurge {
            id: 7,
            filter: RecordFilter { state: Some(sprocket_records::RecordState::Failed), ..Default::default() },
        };
        assert_eq!(purge_records(&mut store, &purge).await, Ok(1_203));
        assert_eq!(purge_records(&mut store, &purge).await, Ok(0));
        let by_text = RecordPurge { id: 8, filter: RecordFilter { error: Some("x".into()), ..Default::default() } };
        assert!(purge_records(&mut store, &by_text).await.is_err_and(|e| e.contains("error text")));
    }
}
