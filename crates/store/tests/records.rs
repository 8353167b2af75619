//! Job records in the store: written through the writer in the same commit
//! as their jobs' queue rows, read back, searched, expired in batches; the
//! handle counter; the queued jobs' handles for replay. Against the memory
//! store and a real SQLite file.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use sprocket_proto::Priority;
use sprocket_records::{Limits, Outcome, Worker};
use sprocket_store::memory::MemoryStore;
use sprocket_store::redis::{dead_key, ended_key, live_key, record_key, HANDLES_KEY};
use sprocket_store::writer::{self, WriterConfig, WriterHandle};
use sprocket_store::{
    Completion, ExpiryCutoffs, Record, RecordFilter, RecordRow, RecordState, Store, StoreError, StoreOp, StoredJob,
};
use tokio::sync::mpsc::UnboundedReceiver;

const MINUTE: u64 = 60_000;
/// A fixed "now" (2026-12-07), so that times are exact.
const NOW: u64 = 1_796_000_000_000;

fn handle(n: u64) -> String {
    format!("H:test:{n}")
}

fn queued(n: u64, function: &[u8], submitted: u64) -> Record {
    Record::new(handle(n).as_bytes(), function, b"", Priority::Normal, true, submitted).expect("record")
}

/// The record of job `n`, run and ended with `outcome` at `end`.
fn ended(n: u64, function: &[u8], outcome: Outcome<'_>, end: u64) -> Record {
    let mut r = queued(n, function, end - 1_000);
    let worker = Worker { client_id: Bytes::from_static(b"w1"), peer: Arc::from("127.0.0.1:5000") };
    r.started(worker, end - 500).expect("start");
    r.ended(outcome, end, Limits::default()).expect("end");
    r
}

fn row_unique(n: u64) -> Vec<u8> {
    format!("~sprocket:{n}").into_bytes()
}

fn queue_row(n: u64, function: &[u8]) -> StoredJob {
    job(function, &row_unique(n), Priority::Normal, format!("job {n}").as_bytes(), 0)
}

fn rec_op(record: &Record, n: u64) -> StoreOp {
    StoreOp::Record(RecordRow::new(record, &row_unique(n)).expect("row"))
}

async fn until(rx: &mut UnboundedReceiver<Completion>, seq: u64) {
    loop {
        let c = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no completion through {seq}"))
            .expect("writer stopped");
        assert!(c.failed.is_empty(), "{c:?}");
        if c.through >= seq {
            return;
        }
    }
}

fn sqlite_scratch() -> Scratch {
    Scratch::new(Backend::Sqlite, "rec").expect("sqlite needs no service")
}

/// A writer over `store`, and a second view for reads where the backend
/// allows one (the memory store); SQLite is read after the writer closes.
fn spawn(store: Box<dyn Store>, config: WriterConfig) -> (WriterHandle, UnboundedReceiver<Completion>) {
    writer::spawn(store, config)
}

/// Writes, through the writer, jobs 1..=6: 1-4 ended (two functions,
/// complete/failed, a binary result and a 1 MiB one), 5 queued, 6 running;
/// the ended jobs' queue rows deleted, the others' kept.
async fn write_sample(store: Box<dyn Store>) -> Vec<Record> {
    let (w, mut rx) = spawn(store, WriterConfig::default());
    let binary: Vec<u8> = (0u8..=255).cycle().take(4096).collect();
    let big = vec![0x5Au8; 1 << 20];
    let records = vec![
        ended(1, b"resize", Outcome::Complete(&binary), NOW - 90 * MINUTE),
        ended(2, b"resize", Outcome::Failed, NOW - 30 * MINUTE),
        ended(3, b"mail", Outcome::Exception(b"smtp down\0"), NOW - 20 * MINUTE),
        ended(4, b"resize", Outcome::Complete(&big), NOW - 10 * MINUTE),
        queued(5, b"mail", NOW - MINUTE),
        {
            let mut r = queued(6, b"resize", NOW - MINUTE);
            let worker = Worker { client_id: Bytes::new(), peer: Arc::from("127.0.0.1:5001") };
            r.started(worker, NOW).expect("start");
            r
        },
    ];
    let mut seq = 0;
    for (i, r) in records.iter().enumerate() {
        let n = i as u64 + 1;
        seq += 1;
        w.submit(seq, StoreOp::Insert(queue_row(n, r.function())));
        seq += 1;
        w.submit(seq, rec_op(&queued(n, r.function(), r.submitted()), n));
    }
    until(&mut rx, seq).await;
    for (i, r) in records.iter().enumerate() {
        let n = i as u64 + 1;
        if r.state().is_final() {
            seq += 1;
            w.submit(seq, StoreOp::Delete(key(r.function(), &row_unique(n))));
        }
        seq += 1;
        w.submit(seq, rec_op(r, n));
    }
    until(&mut rx, seq).await;
    w.close().await;
    records
}

async fn check_sample(store: &mut dyn Store, records: &[Record]) {
    assert!(store.keeps_records());
    for r in records {
        let got = store.load_record(r.handle()).await.expect("load").expect("kept");
        assert_eq!(&got, r, "record {:?} comes back as written", String::from_utf8_lossy(r.handle()));
    }
    assert_eq!(store.load_record(b"H:test:99").await.expect("load"), None);
    assert_eq!(store.load_record(&[0xff]).await.expect("a handle that is not text"), None);
    // Several at once, in the order asked, with the missing ones as None.
    let asked: Vec<bytes::Bytes> = vec![
        bytes::Bytes::copy_from_slice(records[1].handle()),
        bytes::Bytes::from_static(b"H:test:99"),
        bytes::Bytes::copy_from_slice(records[0].handle()),
        bytes::Bytes::from_static(&[0xff]),
    ];
    let many = store.load_records(&asked).await.expect("load several");
    assert_eq!(many, vec![Some(records[1].clone()), None, Some(records[0].clone()), None]);
    assert_eq!(records[3].result().map(<[u8]>::len), Some(1 << 20), "the 1 MiB result is kept whole");

    let handles = |found: Vec<Record>| -> Vec<String> {
        found.iter().map(|r| String::from_utf8_lossy(r.handle()).into_owned()).collect()
    };
    let all = RecordFilter { limit: 100, ..Default::default() };
    assert_eq!(handles(store.search_records(&all).await.expect("all")), [4, 3, 2, 1].map(handle));
    let resize = RecordFilter { function: Some(Bytes::from_static(b"resize")), limit: 100, ..Default::default() };
    assert_eq!(handles(store.search_records(&resize).await.expect("resize")), [4, 2, 1].map(handle));
    let failed_last_hour = RecordFilter {
        state: Some(RecordState::Failed),
        since: Some(NOW - 60 * MINUTE),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(handles(store.search_records(&failed_last_hour).await.expect("failed")), [handle(2)]);
    let window = RecordFilter {
        since: Some(NOW - 60 * MINUTE),
        until: Some(NOW - 10 * MINUTE),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(handles(store.search_records(&window).await.expect("window")), [3, 2].map(handle));
    let newest = RecordFilter { limit: 1, ..resize };
    assert_eq!(handles(store.search_records(&newest).await.expect("limit")), [handle(4)]);

    let mut queued = store.queued_handles().await.expect("queued handles");
    queued.sort_by(|a, b| a.handle.cmp(&b.handle));
    let got: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> =
        queued.iter().map(|q| (q.key.function.to_vec(), q.key.unique.to_vec(), q.handle.to_vec())).collect();
    assert_eq!(
        got,
        vec![
            (b"mail".to_vec(), row_unique(5), handle(5).into_bytes()),
            (b"resize".to_vec(), row_unique(6), handle(6).into_bytes()),
        ],
        "each queued job's row maps to its handle; ended jobs are not replayed"
    );
    let mut rows: Vec<Vec<u8>> = store.load().await.expect("load").into_iter().map(|j| j.unique.to_vec()).collect();
    rows.sort();
    assert_eq!(rows, vec![row_unique(5), row_unique(6)], "only the queued jobs' rows are left");
}

async fn check_expiry(store: &mut dyn Store) {
    // Retention of 25 minutes: jobs 1 (90 min ago) and 2 (30 min ago) expire, in batches of one.
    let before = ExpiryCutoffs { before: Some(NOW - 25 * MINUTE), dead_before: Some(NOW - 25 * MINUTE) };
    assert_eq!(store.expire_records(before, 1).await.expect("expire"), 1);
    assert!(store.load_record(handle(1).as_bytes()).await.expect("load").is_none(), "oldest goes first");
    assert!(store.load_record(handle(2).as_bytes()).await.expect("load").is_some());
    assert_eq!(store.expire_records(before, 1).await.expect("expire"), 1);
    assert_eq!(store.expire_records(before, 1).await.expect("expire"), 0, "nothing more has expired");
    for n in [3, 4, 5, 6] {
        assert!(store.load_record(handle(n).as_bytes()).await.expect("load").is_some(), "job {n} is kept");
    }
}

/// After [`check_expiry`] (jobs 3 and 4 ended, 20 and 10 minutes ago, are
/// left): dead records 7 to 9 are listed apart or merged with the others
/// by end, expire by their own cutoff while the others expire by theirs,
/// and are purged by function and state in batches.
async fn check_dead_records(store: &mut dyn Store) {
    let ops = [
        rec_op(
            &ended(
                7,
                b"resize",
                Outcome::Dead {
                    end: sprocket_records::AttemptEnd::Exception,
                    error: Some(b"Disk FULL"),
                    payload: b"work",
                },
                NOW - 40 * MINUTE,
            ),
            7,
        ),
        rec_op(
            &ended(
                8,
                b"mail",
                Outcome::Dead { end: sprocket_records::AttemptEnd::Failed, error: None, payload: b"work" },
                NOW - 35 * MINUTE,
            ),
            8,
        ),
        rec_op(
            &ended(
                9,
                b"resize",
                Outcome::Dead { end: sprocket_records::AttemptEnd::Exception, error: Some(b"boom"), payload: b"work" },
                NOW - 5 * MINUTE,
            ),
            9,
        ),
    ];
    store.apply(&ops).await.expect("write dead records");
    let handles = |found: Vec<Record>| -> Vec<String> {
        found.iter().map(|r| String::from_utf8_lossy(r.handle()).into_owned()).collect()
    };
    let dead = RecordFilter { state: Some(RecordState::Dead), limit: 100, ..Default::default() };
    assert_eq!(handles(store.search_records(&dead).await.expect("dead")), [9, 8, 7].map(handle));
    let all = RecordFilter { limit: 100, ..Default::default() };
    assert_eq!(
        handles(store.search_records(&all).await.expect("all")),
        [9, 4, 3, 8, 7].map(handle),
        "dead and other records merged, newest end first"
    );
    let failed_only = RecordFilter { state: Some(RecordState::Exception), limit: 100, ..Default::default() };
    assert_eq!(handles(store.search_records(&failed_only).await.expect("exception")), [handle(3)]);
    let dead_resize = RecordFilter { function: Some(Bytes::from_static(b"resize")), limit: 100, ..dead.clone() };
    assert_eq!(handles(store.search_records(&dead_resize).await.expect("dead resize")), [9, 7].map(handle));
    let got = store.load_record(handle(7).as_bytes()).await.expect("load").expect("kept");
    assert_eq!((got.state(), got.error()), (RecordState::Dead, Some(&b"Disk FULL"[..])));

    // Others kept 15 minutes, dead ones 38: job 3 (20 minutes) and dead
    // job 7 (40 minutes) expire; dead job 8 (35 minutes) is older than job 3
    // and stays.
    let cutoffs = ExpiryCutoffs { before: Some(NOW - 15 * MINUTE), dead_before: Some(NOW - 38 * MINUTE) };
    assert_eq!(store.expire_records(cutoffs, 1).await.expect("expire"), 1);
    assert_eq!(store.expire_records(cutoffs, 1).await.expect("expire"), 1);
    assert_eq!(store.expire_records(cutoffs, 1).await.expect("expire"), 0, "nothing more has expired");
    for (n, kept) in [(3, false), (4, true), (7, false), (8, true), (9, true)] {
        let found = store.load_record(handle(n).as_bytes()).await.expect("load").is_some();
        assert_eq!(found, kept, "job {n}");
    }
    // Nothing expires without a cutoff.
    assert_eq!(store.expire_records(ExpiryCutoffs::default(), 100).await.expect("expire"), 0);

    // A purge of mail's dead jobs leaves resize's; then every dead job, a
    // batch of one at a time; the other records stay.
    let dead_mail = RecordFilter { function: Some(Bytes::from_static(b"mail")), limit: 0, ..dead.clone() };
    assert_eq!(store.purge_records(&dead_mail, 10).await.expect("purge mail"), 1);
    assert_eq!(store.purge_records(&dead_mail, 10).await.expect("purge mail"), 0);
    store
        .apply(&[rec_op(
            &ended(
                10,
                b"mail",
                Outcome::Dead { end: sprocket_records::AttemptEnd::Failed, error: None, payload: b"work" },
                NOW - MINUTE,
            ),
            10,
        )])
        .await
        .expect("write");
    assert_eq!(store.purge_records(&dead, 1).await.expect("purge"), 1);
    assert_eq!(store.purge_records(&dead, 1).await.expect("purge"), 1);
    assert_eq!(store.purge_records(&dead, 1).await.expect("purge"), 0);
    assert!(store.search_records(&dead).await.expect("dead").is_empty());
    assert_eq!(handles(store.search_records(&all).await.expect("all")), [handle(4)]);
    let by_text = RecordFilter { error: Some("boom".into()), ..dead };
    assert!(
        matches!(store.purge_records(&by_text, 10).await, Err(StoreError::Rejected(_))),
        "a purge by error text is refused"
    );
}

async fn check_handles(first: &mut dyn Store) -> u64 {
    let a = first.reserve_handles(1_000_000).await.expect("reserve");
    let b = first.reserve_handles(10).await.expect("reserve");
    assert!(a >= 1);
    assert_eq!(b, a + 1_000_000, "blocks never overlap");
    b + 10
}

#[tokio::test]
async fn memory_store_keeps_searches_and_expires_records() {
    let store = MemoryStore::new();
    let h = store.handle();
    let records = write_sample(Box::new(store)).await;
    let mut store = h.reopen();
    check_sample(&mut store, &records).await;
    check_expiry(&mut store).await;
    check_dead_records(&mut store).await;
    let next = check_handles(&mut store).await;
    assert_eq!(h.reopen().reserve_handles(1).await.expect("reserve"), next, "the counter is the store's");
}

#[tokio::test]
async fn memory_store_bounds_ended_records_by_count() {
    let retention = sprocket_records::Retention { keep_ms: 60 * MINUTE, dead_keep_ms: 60 * MINUTE, max_count: 3 };
    let store = MemoryStore::with_retention(retention);
    let h = store.handle();
    let ops: Vec<StoreOp> =
        (1..=5).map(|n| rec_op(&ended(n, b"f", Outcome::Complete(b"ok"), NOW + n * 1000), n)).collect();
    let mut store = h.reopen();
    store.apply(&ops).await.expect("apply");
    assert_eq!(h.record_counts(), (0, 3));
    assert!(store.load_record(handle(2).as_bytes()).await.expect("load").is_none(), "the oldest ended go first");
    assert!(store.load_record(handle(5).as_bytes()).await.expect("load").is_some());
}

#[tokio::test]
async fn sqlite_keeps_searches_and_expires_records() {
    let scratch = sqlite_scratch();
    let records = write_sample(scratch.open().await).await;
    let mut store = scratch.open().await;
    check_sample(store.as_mut(), &records).await;
    check_expiry(store.as_mut()).await;
    check_dead_records(store.as_mut()).await;
    let next = check_handles(store.as_mut()).await;
    drop(store);
    let mut reopened = scratch.open().await;
    let after = reopened.reserve_handles(5).await.expect("reserve after reopening");
    assert_eq!(after, next, "the counter survives reopening and never goes backwards");
}

/// A job's delete and its final record in one commit, also when the
/// writer's batch limit would cut between them.
#[tokio::test]
async fn memory_delete_and_final_record_land_in_one_commit() {
    let store = MemoryStore::new();
    let h = store.handle();
    let (w, mut rx) = spawn(Box::new(store), WriterConfig { max_batch: 1, ..Default::default() });
    w.submit(1, StoreOp::Insert(queue_row(1, b"f")));
    until(&mut rx, 1).await;
    let before = h.applies();
    w.submit(2, rec_op(&ended(1, b"f", Outcome::Complete(b"done"), NOW), 1));
    w.submit(3, StoreOp::Delete(key(b"f", &row_unique(1))));
    until(&mut rx, 3).await;
    assert_eq!(h.applies(), before + 1, "one commit for the record and the delete");
    assert!(h.rows().is_empty());
    assert_eq!(h.record_counts(), (0, 1));
    w.close().await;
}

/// Inserted and finished before the insert was written: the insert and
/// delete cancel out, the final record is still written.
#[tokio::test]
async fn a_delete_that_cancels_its_insert_leaves_the_record() {
    let store = MemoryStore::new();
    let h = store.handle();
    let (w, mut rx) = spawn(Box::new(store), WriterConfig::default());
    w.submit(1, StoreOp::Insert(queue_row(1, b"f")));
    w.submit(2, rec_op(&queued(1, b"f", NOW), 1));
    w.submit(3, StoreOp::Delete(key(b"f", &row_unique(1))));
    w.submit(4, rec_op(&ended(1, b"f", Outcome::Failed, NOW + 5), 1));
    until(&mut rx, 4).await;
    assert!(h.rows().is_empty());
    assert_eq!(h.record_counts(), (0, 1));
    let got = h.reopen().load_record(handle(1).as_bytes()).await.expect("load").expect("kept");
    assert_eq!(got.state(), RecordState::Failed, "only the last state is kept");
    w.close().await;
}

/// Records are kept while the database is down and written when it returns.
#[tokio::test]
async fn records_wait_for_the_database_to_return() {
    let store = MemoryStore::new();
    let h = store.handle();
    let config = WriterConfig {
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(100),
        ..Default::default()
    };
    let (w, mut rx) = spawn(Box::new(store), config);
    w.submit(1, StoreOp::Insert(queue_row(1, b"f")));
    until(&mut rx, 1).await;
    h.set_available(false);
    w.submit(2, StoreOp::Delete(key(b"f", &row_unique(1))));
    w.submit(3, rec_op(&ended(1, b"f", Outcome::Complete(b"x"), NOW), 1));
    until(&mut rx, 3).await;
    assert_eq!(h.record_counts(), (0, 0), "not written while down");
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.set_available(true);
    let start = std::time::Instant::now();
    while h.record_counts() != (0, 1) || !h.rows().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "the kept record was never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.close().await;
}

/// Every state of the SQLite file a reader can see (what a crash between
/// any two commits would leave) has each job either still queued or
/// recorded as ended, never neither; with a batch limit of one operation,
/// and the writer on its own thread (`--sync=full`), so that it may take
/// a record before the delete that follows it has been submitted.
#[tokio::test]
async fn sqlite_a_job_is_always_queued_or_recorded_as_ended() {
    // A multiple of the 10 jobs between waits, so the last wait is the end.
    const JOBS: u64 = 300;
    let scratch = sqlite_scratch();
    let (w, mut rx) = spawn(scratch.open().await, WriterConfig { max_batch: 1, ..Default::default() });
    let mut seq = 0;
    for n in 1..=JOBS {
        seq += 1;
        w.submit(seq, StoreOp::Insert(queue_row(n, b"f")));
        seq += 1;
        w.submit(seq, rec_op(&queued(n, b"f", NOW), n));
    }
    until(&mut rx, seq).await;
    let path = scratch.sqlite_path();
    let table = scratch.name.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_reader = stop.clone();
    let reader = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path).expect("reader");
        let sql = format!(
            "SELECT COUNT(*) FROM sprocket_records r WHERE r.namespace = ?1 AND r.finished IS NULL \
             AND NOT EXISTS (SELECT 1 FROM \"{table}\" q WHERE q.function_name = 'f' \
             AND q.unique_key = CAST(r.row_unique AS TEXT))"
        );
        let mut looks = 0u64;
        while !stop_reader.load(std::sync::atomic::Ordering::Relaxed) {
            let lost: i64 = conn.query_row(&sql, [&table], |r| r.get(0)).expect("check");
            assert_eq!(lost, 0, "a job neither queued nor recorded as ended");
            looks += 1;
        }
        looks
    });
    for n in 1..=JOBS {
        // The final record first: if a commit ends between the two, the
        // job is recorded as ended and still queued, never neither.
        seq += 1;
        w.submit(seq, rec_op(&ended(n, b"f", Outcome::Complete(b"ok"), NOW + n), n));
        seq += 1;
        w.submit(seq, StoreOp::Delete(key(b"f", &row_unique(n))));
        if n % 10 == 0 {
            until(&mut rx, seq).await;
        }
    }
    w.close().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let looks = reader.join().expect("reader thread");
    assert!(looks > 0);
    let mut store = scratch.open().await;
    assert!(store.load().await.expect("load").is_empty());
    let all = RecordFilter { limit: 1000, ..Default::default() };
    assert_eq!(store.search_records(&all).await.expect("search").len() as u64, JOBS);
}

/// Removes a scratch table's records and handle counter from the shared
/// database's record tables (the scratch itself drops only the queue table).
struct SharedRecords(Backend, String);

impl Drop for SharedRecords {
    fn drop(&mut self) {
        let sql = format!(
            "DELETE FROM sprocket_records WHERE namespace = '{0}'; DELETE FROM sprocket_handles WHERE namespace = '{0}';",
            self.1
        );
        let _ = match self.0 {
            Backend::Postgres => sprocket_testkit::databases::psql(&sql),
            Backend::Mysql => sprocket_testkit::databases::mysql(&sql),
            Backend::Redis => {
                let prefix = self.1.as_bytes();
                let mut keys: Vec<Vec<u8>> = (1..=10).map(|n| record_key(prefix, handle(n).as_bytes())).collect();
                keys.push(ended_key(prefix));
                keys.push(dead_key(prefix));
                keys.push(live_key(prefix));
                let keys: Vec<String> = keys.into_iter().map(|k| String::from_utf8_lossy(&k).into_owned()).collect();
                let mut args = vec!["DEL"];
                args.extend(keys.iter().map(String::as_str));
                sprocket_testkit::databases::redis_cli_at(REDIS_PORT, &args);
                sprocket_testkit::databases::redis_cli_at(REDIS_PORT, &["HDEL", HANDLES_KEY, &self.1]);
                return;
            }
            Backend::Sqlite => return,
        };
    }
}

/// The whole round on a real database server: through the writer, read
/// back, searched, expired in batches, handle blocks across reopening.
async fn real_database_round(backend: Backend) {
    let Some(scratch) = Scratch::new(backend, "rec") else { return };
    let _cleanup = SharedRecords(backend, scratch.name.clone());
    let records = write_sample(scratch.open().await).await;
    let mut store = scratch.open().await;
    check_sample(store.as_mut(), &records).await;
    check_expiry(store.as_mut()).await;
    check_dead_records(store.as_mut()).await;
    let next = check_handles(store.as_mut()).await;
    drop(store);
    let mut reopened = scratch.open().await;
    assert_eq!(reopened.reserve_handles(5).await.expect("reserve after reopening"), next);
}

#[tokio::test]
async fn postgres_keeps_searches_and_expires_records() {
    real_database_round(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql_keeps_searches_and_expires_records() {
    real_database_round(Backend::Mysql).await;
}

#[tokio::test]
async fn redis_keeps_searches_and_expires_records() {
    real_database_round(Backend::Redis).await;
}

/// Measures the space 10,000 ended records with a 100-byte result take on
/// each backend (the figures in docs/persistence.md). Run alone:
/// `cargo test -p sprocket-store --test records measure -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn measure_record_disk_use() {
    const N: u64 = 10_000;
    let result = [b'r'; 100];
    let ops: Vec<StoreOp> =
        (1..=N).map(|n| rec_op(&ended(n, b"resize", Outcome::Complete(&result), NOW + n), n)).collect();
    let body = match &ops[0] {
        StoreOp::Record(row) => row.body.len(),
        _ => 0,
    };
    println!("stored form of one record: {body} bytes");
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::Mysql, Backend::Redis] {
        let Some(scratch) = Scratch::new(backend, "size") else { continue };
        let _cleanup = SharedRecords(backend, scratch.name.clone());
        let mut store = scratch.open().await;
        let size = |scratch: &Scratch| -> u64 {
            let out = match backend {
                Backend::Sqlite => {
                    let conn = rusqlite::Connection::open(scratch.sqlite_path()).expect("open");
                    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                    return std::fs::metadata(scratch.sqlite_path()).map(|m| m.len()).unwrap_or(0);
                }
                Backend::Postgres => {
                    sprocket_testkit::databases::psql("VACUUM ANALYZE sprocket_records").expect("vacuum");
                    sprocket_testkit::databases::psql("SELECT pg_total_relation_size('sprocket_records')")
                }
                Backend::Mysql => {
                    sprocket_testkit::databases::mysql("ANALYZE TABLE sprocket_records").expect("analyze");
                    sprocket_testkit::databases::mysql(
                        "SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES \
                         WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = 'sprocket_records'",
                    )
                }
                Backend::Redis => {
                    let info = sprocket_testkit::databases::redis_cli(&["MEMORY", "STATS"]);
                    let lines: Vec<&str> = info.lines().collect();
                    let at = lines.iter().position(|l| l.trim() == "dataset.bytes").expect("dataset.bytes");
                    Ok(lines[at + 1].to_string())
                }
            };
            out.expect("size").trim().parse().unwrap_or(0)
        };
        let before = size(&scratch);
        for chunk in ops.chunks(1000) {
            store.apply(chunk).await.expect("apply");
        }
        let after = size(&scratch);
        let grown = after.saturating_sub(before);
        println!("{backend:?}: {grown} bytes for {N} records, {} per record", grown / N);
        if backend == Backend::Redis {
            // Not the job of SharedRecords (it removes the first ten).
            let mut args = vec!["DEL".to_string()];
            for n in 1..=N {
                args.push(String::from_utf8_lossy(&record_key(scratch.name.as_bytes(), handle(n).as_bytes())).into());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            sprocket_testkit::databases::redis_cli_at(REDIS_PORT, &args);
        }
    }
}

/// A long outage does not grow the kept records without bound: past
/// `MAX_RECORDS_KEPT_WHILE_DOWN` further records are dropped, and those
/// kept are written once the database returns.
#[tokio::test]
async fn records_kept_while_down_are_bounded() {
    let limit = sprocket_store::MAX_RECORDS_KEPT_WHILE_DOWN as u64;
    let store = MemoryStore::new();
    let h = store.handle();
    let config = WriterConfig {
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(100),
        ..Default::default()
    };
    let (w, mut rx) = spawn(Box::new(store), config);
    w.submit(1, rec_op(&queued(1, b"f", NOW), 1));
    until(&mut rx, 1).await;
    h.set_available(false);
    // Fails the next commit, so the writer knows the store is down.
    w.submit(2, rec_op(&queued(2, b"f", NOW), 2));
    let mut seq = 2;
    for n in 3..=limit + 10 {
        seq += 1;
        w.submit(seq, rec_op(&queued(n, b"f", NOW), n));
    }
    until(&mut rx, seq).await;
    h.set_available(true);
    let start = std::time::Instant::now();
    while h.record_counts().0 < limit as usize + 1 {
        assert!(start.elapsed() < Duration::from_secs(60), "kept records not written: {:?}", h.record_counts());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.record_counts().0, limit as usize + 1, "the first record, then as many as are kept");
    w.close().await;
}
