//! The group-commit writer: batching, cancellation, refused rows, an
//! unreachable database (simulated, then real private Redis and PostgreSQL
//! servers killed mid-run), and close.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sprocket_proto::Priority;
use sprocket_store::memory::{MemoryHandle, MemoryStore};
use sprocket_store::writer::{self, WriterConfig, WriterHandle};
use sprocket_store::{Completion, StoreConfig, StoreOp, StoredJob};
use sprocket_testkit::databases::{PrivatePostgres, PrivateRedis};
use tokio::sync::mpsc::UnboundedReceiver;

fn fast_config() -> WriterConfig {
    WriterConfig {
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        ..Default::default()
    }
}

/// A writer over a fresh memory store, and a handle on the store's rows.
fn memory_writer(config: WriterConfig) -> (WriterHandle, UnboundedReceiver<Completion>, MemoryHandle) {
    let store = MemoryStore::new();
    let h = store.handle();
    let (w, rx) = writer::spawn(Box::new(store), config);
    (w, rx, h)
}

fn j(n: u64) -> StoredJob {
    job(b"w", format!("u{n}").as_bytes(), Priority::Normal, format!("d{n}").as_bytes(), 0)
}

/// Reads completions until `through` reaches `seq`; checks they strictly
/// increase and returns every failed seq.
async fn until(rx: &mut UnboundedReceiver<Completion>, seq: u64) -> Vec<u64> {
    let mut failed = Vec::new();
    let mut last: Option<u64> = None;
    while last.is_none_or(|l| l < seq) {
        let c = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no completion through {seq} (last {last:?})"))
            .expect("writer stopped");
        assert!(last.is_none_or(|l| c.through > l), "through went from {last:?} to {}", c.through);
        assert!(c.failed.iter().all(|f| *f <= c.through), "{c:?}");
        failed.extend(c.failed);
        last = Some(c.through);
    }
    failed
}

/// The rows of a scratch table, read back through a new store, by unique.
async fn rows_by_unique(scratch: &Scratch) -> Vec<StoredJob> {
    let mut rows = scratch.open().await.load().await.expect("load");
    rows.sort_by(|a, b| a.unique.cmp(&b.unique));
    rows
}

async fn wait_healthy(w: &WriterHandle, healthy: bool) {
    let start = Instant::now();
    while w.is_healthy() != healthy {
        assert!(start.elapsed() < Duration::from_secs(30), "writer health never became {healthy}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn pending_operations_share_one_commit() {
    let (w, mut rx, h) = memory_writer(WriterConfig::default());
    // The writer task cannot run until we await: all 1000 are pending.
    for n in 1..=1000 {
        w.submit(n, StoreOp::Insert(j(n)));
    }
    assert!(until(&mut rx, 1000).await.is_empty());
    assert_eq!(h.applies(), 1, "one transaction for everything pending");
    assert_eq!(h.rows().len(), 1000);
    w.close().await;
}

/// After a large commit, a few operations do not get a commit (and an
/// fsync) of their own while more are on their way: the writer waits until
/// three quarters of the last batch are pending. Small commits never wait,
/// the wait has a limit, and closing the writer ends it at once.
#[tokio::test]
async fn after_large_commits_a_fragment_waits_for_the_rest() {
    let long = WriterConfig { gather_max: Duration::from_secs(30), ..fast_config() };
    let (w, mut rx, h) = memory_writer(long.clone());
    for n in 1..=40 {
        w.submit(n, StoreOp::Insert(j(n)));
    }
    assert!(until(&mut rx, 40).await.is_empty());
    assert_eq!(h.applies(), 1);
    // 5 of the next 40 arrive: well short of 30, so nothing is committed...
    for n in 41..=45 {
        w.submit(n, StoreOp::Insert(j(n)));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.applies(), 1, "a fragment of a batch was committed alone");
    // ...until the rest come.
    for n in 46..=70 {
        w.submit(n, StoreOp::Insert(j(n)));
    }
    assert!(until(&mut rx, 70).await.is_empty());
    assert_eq!((h.applies(), h.rows().len()), (2, 70), "the 30 went into one commit");
    // Closing does not wait for more.
    w.submit(71, StoreOp::Insert(j(71)));
    let closing = Instant::now();
    w.close().await;
    assert!(closing.elapsed() < Duration::from_secs(5), "close waited {:?}", closing.elapsed());
    assert_eq!(h.rows().len(), 71);

    // The wait is bounded by gather_max.
    let bounded = WriterConfig { gather_max: Duration::from_millis(50), ..fast_config() };
    let (w, mut rx, h) = memory_writer(bounded);
    for n in 1..=40 {
        w.submit(n, StoreOp::Insert(j(n)));
    }
    assert!(until(&mut rx, 40).await.is_empty());
    let started = Instant::now();
    w.submit(41, StoreOp::Insert(j(41)));
    assert!(until(&mut rx, 41).await.is_empty());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(40) && waited < Duration::from_secs(5), "waited {waited:?}");
    assert_eq!(h.applies(), 2);
    w.close().await;

    // Commits of a few operations at a time (a few clients) never wait.
    let (w, mut rx, _h) = memory_writer(long);
    for n in 1..=20 {
        let started = Instant::now();
        w.submit(2 * n - 1, StoreOp::Insert(j(n)));
        w.submit(2 * n, StoreOp::Delete(j(n + 1000).key()));
        assert!(until(&mut rx, 2 * n).await.is_empty());
        assert!(started.elapsed() < Duration::from_secs(5), "a small commit waited {:?}", started.elapsed());
    }
    w.close().await;
}

/// A job submitted and finished while the writer waits to gather a batch
/// (its insert and delete cancel out, nothing is left to commit) is still
/// reported done: its JOB_CREATED was held until then, and with no other
/// operation coming the submitter waited for ever (seen with `sprocket
/// bench mixed` on SQLite and PostgreSQL: a pipelining submitter hung).
#[tokio::test]
async fn a_job_finished_while_a_batch_gathers_is_reported_without_another_operation() {
    let gathering = WriterConfig { gather_max: Duration::from_millis(50), ..fast_config() };
    let (w, mut rx, h) = memory_writer(gathering);
    for n in 1..=40 {
        w.submit(n, StoreOp::Insert(j(n)));
    }
    assert!(until(&mut rx, 40).await.is_empty());
    // A fragment after a large commit: the writer waits for more...
    w.submit(41, StoreOp::Insert(j(41)));
    tokio::time::sleep(Duration::from_millis(10)).await;
    // ...and meanwhile the job is done.
    w.submit(42, StoreOp::Delete(j(41).key()));
    let c = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the cancelled pair was never reported")
        .expect("writer stopped");
    assert_eq!((c.through, c.failed.len()), (42, 0));
    assert_eq!((h.applies(), h.rows().len()), (1, 40), "neither the insert nor the delete was written");
    w.close().await;
}

/// Four clients submitting one job at a time to a store whose commit is
/// slow against their turn-around (a database server's flush): without
/// regrouping they split into groups taking turns, so about two commits
/// per round of four jobs; with it, one commit carries all four.
#[tokio::test]
async fn a_few_quick_clients_share_each_slow_commit() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let (w, mut rx, h) = memory_writer(fast_config());
    h.set_delay(Duration::from_millis(20));
    let w = Arc::new(w);
    let next_seq = Arc::new(AtomicU64::new(1));
    let (through_tx, through_rx) = tokio::sync::watch::channel(0u64);
    let dispatcher = tokio::spawn(async move {
        while let Some(c) = rx.recv().await {
            assert!(c.failed.is_empty(), "{c:?}");
            let _ = through_tx.send(c.through);
        }
    });
    const ROUNDS: u64 = 12;
    let mut clients = Vec::new();
    for client in 0..4u64 {
        let (w, next_seq, mut through) = (w.clone(), next_seq.clone(), through_rx.clone());
        clients.push(tokio::spawn(async move {
            // The first client's job goes into a commit alone; the others
            // arrive while it is in flight and share the next one.
            if client > 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            for round in 0..ROUNDS {
                // Single-threaded runtime: nothing runs between taking a
                // seq and submitting it, so seqs reach the writer in order.
                let seq = next_seq.fetch_add(1, Ordering::SeqCst);
                w.submit(seq, StoreOp::Insert(j(client * 1000 + round)));
                through.wait_for(|t| *t >= seq).await.expect("writer stopped");
            }
        }));
    }
    for c in clients {
        tokio::time::timeout(Duration::from_secs(30), c).await.expect("clients finished").expect("client");
    }
    assert_eq!(h.rows().len(), 4 * ROUNDS as usize);
    // Taking turns: about 2 commits a round (24 here). Regrouped: the first
    // rounds learn the clients' turn-around, then one commit a round.
    assert!(h.applies() <= ROUNDS as usize + 4, "{} commits for {ROUNDS} rounds of 4 clients", h.applies());
    match Arc::try_unwrap(w) {
        Ok(w) => w.close().await,
        Err(_) => panic!("writer handle still shared"),
    }
    dispatcher.await.expect("dispatcher");
}

#[tokio::test]
async fn max_batch_splits_commits() {
    let (w, mut rx, h) = memory_writer(WriterConfig { max_batch: 10, ..fast_config() });
    for n in 1..=25 {
        w.submit(n, StoreOp::Insert(j(n)));
    }
    assert!(until(&mut rx, 25).await.is_empty());
    assert_eq!(h.applies(), 3);
    assert_eq!(h.rows().len(), 25);
    w.close().await;
}

/// Large jobs are spread over commits of at most `max_batch_bytes`; one
/// larger than that goes alone.
#[tokio::test]
async fn max_batch_bytes_splits_commits_of_large_jobs() {
    let (w, mut rx, h) = memory_writer(WriterConfig { max_batch_bytes: 3 << 20, ..fast_config() });
    let large = |n: u64, size: usize| job(b"w", format!("u{n}").as_bytes(), Priority::Normal, &vec![b'x'; size], 0);
    for n in 1..=10 {
        w.submit(n, StoreOp::Insert(large(n, 1_000_000)));
    }
    w.submit(11, StoreOp::Insert(large(11, 5 << 20)));
    w.submit(12, StoreOp::Insert(j(12)));
    assert!(until(&mut rx, 12).await.is_empty());
    // 3 + 3 + 3 + 1 of a megabyte each, the 5 MiB job alone, the small one.
    assert_eq!(h.applies(), 6);
    assert_eq!(h.rows().len(), 12);
    w.close().await;
}

#[tokio::test]
async fn insert_then_delete_never_touches_the_database() {
    let (w, mut rx, h) = memory_writer(WriterConfig::default());
    w.submit(1, StoreOp::Insert(j(1)));
    w.submit(2, StoreOp::Insert(j(2)));
    w.submit(3, StoreOp::Delete(j(1).key()));
    assert!(until(&mut rx, 3).await.is_empty(), "the cancelled insert counts as durable");
    assert_eq!(h.rows(), vec![j(2)]);
    assert_eq!(h.applies(), 1);
    w.submit(4, StoreOp::Insert(j(4)));
    w.submit(5, StoreOp::Delete(j(4).key()));
    assert!(until(&mut rx, 5).await.is_empty());
    assert_eq!(h.applies(), 1, "a fully cancelled batch needs no commit");
    // A delete of a committed row does reach the database.
    w.submit(6, StoreOp::Delete(j(2).key()));
    until(&mut rx, 6).await;
    assert!(h.rows().is_empty());
    w.close().await;
}

#[tokio::test]
async fn one_refused_row_fails_alone() {
    let (w, mut rx, h) = memory_writer(WriterConfig::default());
    h.reject_function(b"bad");
    w.submit(1, StoreOp::Insert(j(1)));
    w.submit(2, StoreOp::Insert(job(b"bad", b"x", Priority::Normal, b"", 0)));
    w.submit(3, StoreOp::Insert(j(3)));
    assert_eq!(until(&mut rx, 3).await, vec![2]);
    assert_eq!(h.rows(), vec![j(1), j(3)]);
    assert!(w.is_healthy());
    w.close().await;
}

/// A job larger than the MySQL server's `max_allowed_packet` is refused
/// before it is sent: sent, it made the server drop the connection, which
/// failed every job in its batch and every submit until the writer had
/// reconnected.
#[tokio::test]
async fn mysql_job_over_max_allowed_packet_fails_alone() {
    use mysql_async::prelude::Queryable;
    let Some(scratch) = Scratch::new(Backend::Mysql, "bigrow") else { return };
    let opts = mysql_async::OptsBuilder::default().ip_or_hostname(MYSQL_HOST).tcp_port(MYSQL_PORT).user(Some("root"));
    let mut conn = mysql_async::Conn::new(opts).await.expect("connect to MySQL");
    let limit: u64 = conn.query_first("SELECT @@max_allowed_packet").await.expect("query").expect("a value");
    drop(conn);
    let big = job(b"w", b"big", Priority::Normal, &vec![b'x'; usize::try_from(limit).expect("fits") + 1], 0);

    let (w, mut rx) = writer::spawn(scratch.open().await, fast_config());
    w.submit(1, StoreOp::Insert(j(1)));
    w.submit(2, StoreOp::Insert(big));
    w.submit(3, StoreOp::Insert(j(3)));
    assert_eq!(until(&mut rx, 3).await, vec![2], "only the large job failed");
    assert!(w.is_healthy(), "the connection was kept");
    w.submit(4, StoreOp::Insert(j(4)));
    assert!(until(&mut rx, 4).await.is_empty());
    w.close().await;
    assert_eq!(rows_by_unique(&scratch).await, vec![j(1), j(3), j(4)]);
}

#[tokio::test]
async fn unreachable_database_fails_inserts_and_retries_deletes() {
    let (w, mut rx, h) = memory_writer(fast_config());
    w.submit(1, StoreOp::Insert(j(1)));
    until(&mut rx, 1).await;
    h.set_available(false);
    w.submit(2, StoreOp::Insert(j(2)));
    assert_eq!(until(&mut rx, 2).await, vec![2]);
    assert!(!w.is_healthy());
    // While down: deletes wait, inserts fail at once.
    w.submit(3, StoreOp::Delete(j(1).key()));
    let t = Instant::now();
    w.submit(4, StoreOp::Insert(j(4)));
    assert_eq!(until(&mut rx, 4).await, vec![4]);
    assert!(t.elapsed() < Duration::from_millis(500), "insert failed only after {:?}", t.elapsed());
    assert_eq!(h.rows(), vec![j(1)]);
    h.set_available(true);
    wait_healthy(&w, true).await;
    w.submit(5, StoreOp::Insert(j(5)));
    assert!(until(&mut rx, 5).await.is_empty());
    assert_eq!(h.rows(), vec![j(5)], "the delete was retried after reconnecting");
    w.close().await;
}

/// A connection the server closed while it was idle fails the commit that
/// next uses it; the writer commits once more on a new connection, so
/// nothing fails and the store is never reported down.
#[tokio::test]
async fn a_commit_on_a_connection_closed_while_idle_is_retried_on_a_new_one() {
    let (w, mut rx, h) = memory_writer(fast_config());
    w.submit(1, StoreOp::Insert(j(1)));
    until(&mut rx, 1).await;
    h.drop_connection();
    w.submit(2, StoreOp::Insert(j(2)));
    w.submit(3, StoreOp::Delete(j(1).key()));
    assert!(until(&mut rx, 3).await.is_empty(), "nothing failed");
    assert!(w.is_healthy());
    assert_eq!(h.rows(), vec![j(2)]);
    assert_eq!(h.attempts(), 3, "the second commit ran twice");
    w.close().await;
}

/// The same with PostgreSQL: the server ends sprocketd's idle connection
/// (`pg_terminate_backend`, as an idle timeout, a restart or a failover
/// would), and the next background jobs are stored all the same.
#[tokio::test]
async fn postgres_connection_ended_while_idle_does_not_fail_the_next_jobs() {
    let Some(scratch) = Scratch::new(Backend::Postgres, "idlekill") else { return };
    let app = scratch.name.clone();
    let config = StoreConfig::Postgres {
        conninfo: format!("{PG_CONNINFO} application_name={app}"),
        table: scratch.name.clone(),
    };
    let store = sprocket_store::open(&config).await.expect("open");
    let (w, mut rx) = writer::spawn(store, fast_config());
    w.submit(1, StoreOp::Insert(j(1)));
    assert!(until(&mut rx, 1).await.is_empty());
    let killed = sprocket_testkit::databases::psql(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{app}'"
    ))
    .expect("psql");
    assert_eq!(killed.trim(), "1", "sprocketd's connection was ended");
    tokio::time::sleep(Duration::from_millis(200)).await;
    w.submit(2, StoreOp::Insert(j(2)));
    w.submit(3, StoreOp::Insert(j(3)));
    assert!(until(&mut rx, 3).await.is_empty(), "no job failed");
    assert!(w.is_healthy());
    w.close().await;
    assert_eq!(rows_by_unique(&scratch).await, vec![j(1), j(2), j(3)]);
}

/// A store that reconnects at once but fails every commit again (a full
/// disk) is not retried every `reconnect_min` for as long as that lasts:
/// the wait grows; once writes work again the kept delete is written.
#[tokio::test]
async fn a_store_that_connects_but_cannot_write_is_retried_with_growing_waits() {
    let (w, mut rx, h) = memory_writer(fast_config());
    w.submit(1, StoreOp::Insert(j(1)));
    until(&mut rx, 1).await;
    h.set_fail_writes(true);
    w.submit(2, StoreOp::Delete(j(1).key()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let attempts = h.attempts() - 1;
    // 20 ms at first, doubling to 200 ms: about ten rounds in 1.5 s (at a
    // fixed 20 ms, seventy), each trying the commit twice (once more on a
    // new connection).
    assert!((2..=32).contains(&attempts), "{attempts} commits tried in 1.5 s");
    assert_eq!(h.rows(), vec![j(1)]);
    h.set_fail_writes(false);
    until(&mut rx, 2).await;
    let start = Instant::now();
    while !h.rows().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5), "the kept delete was never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_healthy(&w, true).await;
    w.submit(3, StoreOp::Insert(j(3)));
    assert!(until(&mut rx, 3).await.is_empty());
    w.close().await;
}

#[tokio::test]
async fn close_flushes_everything() {
    let (w, mut rx, h) = memory_writer(WriterConfig { max_batch: 7, ..fast_config() });
    for n in 1..=100 {
        w.submit(n, StoreOp::Insert(j(n)));
    }
    w.close().await;
    assert_eq!(h.rows().len(), 100);
    let mut last = 0;
    while let Some(c) = rx.recv().await {
        assert!(c.failed.is_empty());
        last = c.through;
    }
    assert_eq!(last, 100, "every completion was sent before the channel closed");
}

/// Kills a real database under the writer and brings it back.
async fn kill_and_recover(config: &StoreConfig, kill: impl FnOnce(), restart: impl FnOnce()) {
    let store = sprocket_store::open(config).await.expect("open private database");
    let (w, mut rx) = writer::spawn(store, fast_config());
    for n in 1..=10 {
        w.submit(n, StoreOp::Insert(j(n)));
    }
    assert!(until(&mut rx, 10).await.is_empty());
    kill();
    w.submit(11, StoreOp::Delete(j(1).key()));
    w.submit(12, StoreOp::Insert(j(12)));
    assert_eq!(until(&mut rx, 12).await, vec![12], "an insert the database did not take is reported failed");
    wait_healthy(&w, false).await;
    let t = Instant::now();
    w.submit(13, StoreOp::Insert(j(13)));
    assert_eq!(until(&mut rx, 13).await, vec![13]);
    assert!(t.elapsed() < Duration::from_secs(1), "insert failed only after {:?}", t.elapsed());
    restart();
    wait_healthy(&w, true).await;
    w.submit(14, StoreOp::Insert(j(14)));
    assert!(until(&mut rx, 14).await.is_empty());
    w.close().await;
    let mut check = sprocket_store::open(config).await.expect("reopen after recovery");
    let want: Vec<StoredJob> = (2..=10).chain([14]).map(j).collect();
    assert_same_jobs(check.load().await.expect("load after recovery"), want);
}

#[tokio::test]
async fn redis_killed_mid_run() {
    let Some(redis) = PrivateRedis::start() else { return };
    let config = StoreConfig::Redis { host: "127.0.0.1".into(), port: redis.port, password: None, prefix: "wk".into() };
    let redis = std::cell::RefCell::new(redis);
    // `stop` is a SIGKILL; the AOF (fsync always) keeps what was acknowledged.
    kill_and_recover(&config, || redis.borrow_mut().stop(), || redis.borrow_mut().start_again()).await;
}

#[tokio::test]
async fn postgres_killed_mid_run() {
    let Some(pg) = PrivatePostgres::start() else { return };
    let config = StoreConfig::Postgres { conninfo: pg.conninfo(), table: "gearman_queue".into() };
    kill_and_recover(&config, || pg.kill(), || pg.start_again()).await;
}

/// With `--sync=full` the SQLite writer runs on a thread of its own and
/// commits there; on a current-thread runtime (sprocketd's default) the
/// completions still arrive, close waits for that thread, and every row
/// committed is in the file.
#[tokio::test(flavor = "current_thread")]
async fn sqlite_full_sync_writer_on_its_own_thread() {
    for sync in [sprocket_store::SyncMode::Full, sprocket_store::SyncMode::Normal] {
        let dir = sprocket_testkit::databases::TempDir::new("writer-sqlite");
        let config = StoreConfig::Sqlite { path: dir.path().join("q.db"), table: "gearman_queue".into(), sync };
        let store = sprocket_store::open(&config).await.expect("open sqlite");
        assert_eq!(store.blocks(), sync == sprocket_store::SyncMode::Full);
        let (w, mut rx) = writer::spawn(store, fast_config());
        for n in 1..=200 {
            w.submit(n, StoreOp::Insert(j(n)));
        }
        assert!(until(&mut rx, 200).await.is_empty());
        // Insert and delete in one pending run cancel; a delete of a
        // committed row removes it.
        w.submit(201, StoreOp::Insert(j(201)));
        w.submit(202, StoreOp::Delete(j(201).key()));
        w.submit(203, StoreOp::Delete(j(1).key()));
        for n in 204..=300 {
            w.submit(n, StoreOp::Insert(j(n)));
        }
        w.close().await;
        let mut last = 0;
        while let Some(c) = rx.recv().await {
            assert!(c.failed.is_empty(), "{c:?}");
            last = c.through;
        }
        assert_eq!(last, 300, "{sync:?}: every completion sent before the channel closed");
        let mut again = sprocket_store::open(&config).await.expect("reopen");
        let rows = again.load().await.expect("load");
        let mut uniques: Vec<String> = rows.iter().map(|r| String::from_utf8_lossy(&r.unique).into_owned()).collect();
        uniques.sort();
        let mut want: Vec<String> = (2..=200).chain(204..=300).map(|n| format!("u{n}")).collect();
        want.sort();
        assert_eq!(uniques, want, "{sync:?}");
    }
}

/// A writer over `streams` views of one memory store whose commits each
/// take `delay`, so that they overlap.
async fn slow_streams(streams: usize, delay: Duration) -> (WriterHandle, UnboundedReceiver<Completion>, MemoryHandle) {
    let store = MemoryStore::new();
    let h = store.handle();
    h.set_delay(delay);
    let stores = writer::open_streams(Box::new(store), streams).await;
    assert_eq!(stores.len(), streams);
    let (w, rx) = writer::spawn_streams(stores, fast_config());
    (w, rx, h)
}

#[tokio::test]
async fn several_streams_commit_at_once_and_report_in_order() {
    let (w, mut rx, h) = slow_streams(4, Duration::from_millis(50)).await;
    // Each submit finds the streams before it busy and starts its own commit.
    for n in 1..=4 {
        w.submit(n, StoreOp::Insert(j(n)));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = Instant::now();
    assert!(until(&mut rx, 4).await.is_empty());
    assert!(h.most_concurrent_applies() >= 2, "commits overlapped: {}", h.most_concurrent_applies());
    assert!(t.elapsed() < Duration::from_millis(150), "four 50 ms commits took {:?}", t.elapsed());
    assert_eq!(h.rows().len(), 4);
    w.close().await;
}

#[tokio::test]
async fn a_key_in_a_commit_in_flight_waits_for_it() {
    let (w, mut rx, h) = slow_streams(4, Duration::from_millis(5)).await;
    // The insert is committing, slowly, when its delete and a new insert
    // of the same key (a resubmitted unique) arrive: they must not overtake
    // it, or the delete would find nothing and the old row would come back.
    h.set_next_delays(&[Duration::from_millis(80)]);
    w.submit(1, StoreOp::Insert(j(1)));
    tokio::time::sleep(Duration::from_millis(10)).await;
    w.submit(2, StoreOp::Delete(j(1).key()));
    w.submit(3, StoreOp::Insert(j(3)));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut again = j(1);
    again.data = bytes::Bytes::from_static(b"second");
    w.submit(4, StoreOp::Insert(again.clone()));
    assert!(until(&mut rx, 4).await.is_empty());
    assert_same_jobs(h.rows(), vec![again.clone(), j(3)]);
    // Finishing the second job removes its row, even while other keys commit.
    w.submit(5, StoreOp::Insert(j(5)));
    w.submit(6, StoreOp::Delete(again.key()));
    assert!(until(&mut rx, 6).await.is_empty());
    assert_same_jobs(h.rows(), vec![j(3), j(5)]);
    w.close().await;
}

#[tokio::test]
async fn a_failure_on_one_stream_fails_its_inserts_and_recovers() {
    let (w, mut rx, h) = slow_streams(3, Duration::from_millis(20)).await;
    w.submit(1, StoreOp::Insert(j(1)));
    assert!(until(&mut rx, 1).await.is_empty());
    h.reject_function(b"bad");
    w.submit(2, StoreOp::Insert(job(b"bad", b"x", Priority::Normal, b"", 0)));
    tokio::time::sleep(Duration::from_millis(5)).await;
    w.submit(3, StoreOp::Insert(j(3)));
    assert_eq!(until(&mut rx, 3).await, vec![2], "only the refused row fails");
    h.set_available(false);
    w.submit(4, StoreOp::Insert(j(4)));
    assert_eq!(until(&mut rx, 4).await, vec![4]);
    w.submit(5, StoreOp::Delete(j(1).key()));
    h.set_available(true);
    wait_healthy(&w, true).await;
    w.submit(6, StoreOp::Insert(j(6)));
    assert!(until(&mut rx, 6).await.is_empty());
    assert_same_jobs(h.rows(), vec![j(3), j(6)]);
    w.close().await;
}

#[tokio::test]
async fn an_insert_whose_commit_lost_its_reply_is_deleted_after_reconnecting() {
    let (w, mut rx, h) = memory_writer(fast_config());
    w.submit(1, StoreOp::Insert(j(1)));
    assert!(until(&mut rx, 1).await.is_empty());
    // The database applies the commit but the answer never comes back
    // (a timeout, a dropped connection): the submitter is told it failed…
    h.set_lose_replies(true);
    w.submit(2, StoreOp::Insert(j(2)));
    assert_eq!(until(&mut rx, 2).await, vec![2]);
    assert_eq!(h.rows(), vec![j(1), j(2)], "the database did take the row");
    // …so once the database answers again, the row goes, or a restart
    // would replay and run a job its client was told had failed.
    h.set_lose_replies(false);
    wait_healthy(&w, true).await;
    w.submit(3, StoreOp::Insert(j(3)));
    assert!(until(&mut rx, 3).await.is_empty());
    assert_same_jobs(h.rows(), vec![j(1), j(3)]);
    w.close().await;
}
