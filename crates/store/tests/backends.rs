//! Every backend against its real database: awkward bytes round-trip,
//! batch semantics, replays of rows we did not write, hostile table names.

mod common;

use common::*;
use sprocket_proto::Priority;
use sprocket_store::{StoreConfig, StoreError, StoreOp};
use sprocket_testkit::databases::{mysql, psql, redis_cli, PrivateRedis};

async fn round_trip(backend: Backend, short: bool) {
    let Some(scratch) = Scratch::new(backend, "rt") else { return };
    let jobs = odd_jobs(short);
    let mut store = scratch.open().await;
    assert!(store.load().await.expect("load empty").is_empty());
    store.apply(&inserts(&jobs)).await.expect("insert odd jobs");
    assert_same_jobs(store.load().await.expect("load"), jobs.clone());
    // A fresh connection (a restart) sees the same.
    drop(store);
    let mut again = scratch.open().await;
    assert_same_jobs(again.load().await.expect("reload"), jobs.clone());
    // Every odd key can be deleted again.
    let deletes: Vec<StoreOp> = jobs.iter().map(|j| StoreOp::Delete(j.key())).collect();
    again.apply(&deletes).await.expect("delete odd jobs");
    assert!(again.load().await.expect("load after delete").is_empty());
}

/// Operator settings: set, replaced, removed, byte-exact names, kinds
/// apart, and still there on a fresh connection (a restart).
async fn settings_round_trip(backend: Backend) {
    let Some(scratch) = Scratch::new(backend, "set") else { return };
    let mut store = scratch.open().await;
    assert!(store.load_settings("paused").await.expect("load empty").is_empty());
    let odd: Vec<u8> = (1u8..=255).collect();
    store.put_setting("paused", b"resize", "{\"since_ms\":1}").await.expect("put");
    store.put_setting("paused", b"resize", "{\"since_ms\":2}").await.expect("replace");
    store.put_setting("paused", &odd, "v").await.expect("put odd bytes");
    store.put_setting("other", b"resize", "x").await.expect("another kind");
    store.delete_setting("paused", b"never-set").await.expect("delete what is not there");
    drop(store);
    let mut again = scratch.open().await;
    let mut paused = again.load_settings("paused").await.expect("load");
    paused.sort();
    let mut want = vec![
        (bytes::Bytes::from_static(b"resize"), "{\"since_ms\":2}".to_string()),
        (bytes::Bytes::from(odd.clone()), "v".to_string()),
    ];
    want.sort();
    assert_eq!(paused, want);
    again.delete_setting("paused", b"resize").await.expect("delete");
    again.delete_setting("paused", &odd).await.expect("delete odd");
    assert!(again.load_settings("paused").await.expect("load").is_empty());
    assert_eq!(again.load_settings("other").await.expect("load other").len(), 1, "other kinds stay");
    again.delete_setting("other", b"resize").await.expect("delete other");
}

#[tokio::test]
async fn sqlite_settings() {
    settings_round_trip(Backend::Sqlite).await;
}
#[tokio::test]
async fn postgres_settings() {
    settings_round_trip(Backend::Postgres).await;
}
#[tokio::test]
async fn mysql_settings() {
    settings_round_trip(Backend::Mysql).await;
}
#[tokio::test]
async fn redis_settings() {
    settings_round_trip(Backend::Redis).await;
}

async fn batch_semantics(backend: Backend) {
    let Some(scratch) = Scratch::new(backend, "batch") else { return };
    let mut store = scratch.open().await;
    let a = job(b"f", b"a", Priority::Normal, b"a1", 0);
    let b = job(b"f", b"b", Priority::High, b"b1", 0);
    let c1 = job(b"f", b"c", Priority::Low, b"c1", 0);
    let c2 = job(b"f", b"c", Priority::High, b"c2", 7);
    store
        .apply(&[
            StoreOp::Insert(a.clone()),
            StoreOp::Insert(b.clone()),
            StoreOp::Delete(a.key()),
            StoreOp::Insert(c1),
            StoreOp::Insert(c2.clone()),
        ])
        .await
        .expect("mixed batch");
    assert_same_jobs(store.load().await.unwrap(), vec![b.clone(), c2.clone()]);

    // Re-inserting existing keys (a replay writing back) replaces, never fails.
    let b2 = job(b"f", b"b", Priority::Low, b"b2", 0);
    store.apply(&[StoreOp::Insert(b2.clone()), StoreOp::Insert(c2.clone())]).await.expect("re-insert");
    // Deleting what is not there is fine; delete-then-insert keeps the insert.
    store.apply(&[StoreOp::Delete(key(b"f", b"nope"))]).await.expect("delete missing");
    store.apply(&[StoreOp::Delete(c2.key()), StoreOp::Insert(c2.clone())]).await.expect("delete+insert");
    assert_same_jobs(store.load().await.unwrap(), vec![b2.clone(), c2.clone()]);

    // A thousand inserts in one batch, then a thousand deletes.
    let many: Vec<_> = (0..1000).map(|i| job(b"many", format!("u{i}").as_bytes(), Priority::Normal, b"x", 0)).collect();
    store.apply(&inserts(&many)).await.expect("1000 inserts");
    assert_eq!(store.load().await.unwrap().len(), 1002);
    let dels: Vec<_> = many.iter().map(|j| StoreOp::Delete(j.key())).collect();
    store.apply(&dels).await.expect("1000 deletes");
    assert_same_jobs(store.load().await.unwrap(), vec![b2, c2]);
    assert!(store.describe().contains(&scratch.name) || backend == Backend::Sqlite);
}

#[tokio::test]
async fn sqlite_round_trip() {
    round_trip(Backend::Sqlite, false).await;
}
#[tokio::test]
async fn postgres_round_trip() {
    round_trip(Backend::Postgres, false).await;
}
#[tokio::test]
async fn mysql_round_trip() {
    round_trip(Backend::Mysql, false).await;
}
#[tokio::test]
async fn redis_round_trip() {
    round_trip(Backend::Redis, false).await;
}
#[tokio::test]
async fn memory_round_trip() {
    let mut store = sprocket_store::open(&StoreConfig::Memory).await.unwrap();
    let jobs = odd_jobs(false);
    store.apply(&inserts(&jobs)).await.unwrap();
    assert_same_jobs(store.load().await.unwrap(), jobs);
}

#[tokio::test]
async fn sqlite_batches() {
    batch_semantics(Backend::Sqlite).await;
}
#[tokio::test]
async fn postgres_batches() {
    batch_semantics(Backend::Postgres).await;
}
#[tokio::test]
async fn mysql_batches() {
    batch_semantics(Backend::Mysql).await;
}
#[tokio::test]
async fn redis_batches() {
    batch_semantics(Backend::Redis).await;
}

/// An old gearmand table (no when_to_run), rows with NULLs (gearmand's
/// empty-workload bug), no primary key so duplicates exist.
#[tokio::test]
async fn sqlite_replays_old_partial_and_duplicate_rows() {
    let Some(scratch) = Scratch::new(Backend::Sqlite, "old") else { return };
    {
        let conn = rusqlite::Connection::open(scratch.sqlite_path()).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE \"{t}\" (unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB);
             INSERT INTO \"{t}\" VALUES ('u1', 'f', 0, x'00ff');
             INSERT INTO \"{t}\" VALUES ('u2', 'f', 2, NULL);
             INSERT INTO \"{t}\" VALUES ('u3', 'f', NULL, 'text data');
             INSERT INTO \"{t}\" VALUES ('u1', 'f', 0, x'00ff');",
            t = scratch.name
        ))
        .unwrap();
    }
    let mut store = scratch.open().await;
    let got = store.load().await.expect("replay old table");
    assert_same_jobs(
        got,
        vec![
            job(b"f", b"u1", Priority::High, &[0, 255], 0),
            job(b"f", b"u2", Priority::Low, b"", 0),
            job(b"f", b"u3", Priority::Normal, b"text data", 0),
        ],
    );
    // when_to_run was added, so epoch jobs can now be stored.
    store.apply(&[StoreOp::Insert(job(b"f", b"e", Priority::Normal, b"", 1_900_000_000))]).await.unwrap();
    assert_eq!(store.load().await.unwrap().len(), 4);
    // Empty data is an empty blob, not NULL (gearmand could not replay NULL).
    let conn = rusqlite::Connection::open(scratch.sqlite_path()).unwrap();
    let kind: String = conn
        .query_row(&format!("SELECT typeof(data) FROM \"{}\" WHERE unique_key = 'e'", scratch.name), [], |r| r.get(0))
        .unwrap();
    assert_eq!(kind, "blob");
    let version: i64 = conn
        .query_row("SELECT schema_version FROM sprocket_meta WHERE queue_table = ?1", [&scratch.name], |r| r.get(0))
        .unwrap();
    assert_eq!(version, sprocket_store::schema::SCHEMA_VERSION, "migrated to this build's version");
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

/// A table created with gearmand's exact PostgreSQL DDL, partly filled by hand.
#[tokio::test]
async fn postgres_uses_gearmand_table_and_tolerates_nulls() {
    let Some(scratch) = Scratch::new(Backend::Postgres, "gm") else { return };
    let t = &scratch.name;
    psql(&format!(
        "CREATE TABLE \"{t}\" (unique_key VARCHAR(64), function_name VARCHAR(255), priority INTEGER, data BYTEA, \
         when_to_run INTEGER, UNIQUE (unique_key, function_name));
         INSERT INTO \"{t}\" VALUES ('u1', 'f', 2, '\\x0001'::bytea, 5);
         INSERT INTO \"{t}\" VALUES ('u2', 'f', NULL, NULL, NULL);"
    ))
    .unwrap_or_else(|e| panic!("create gearmand's table: {e}"));
    let mut store = scratch.open().await;
    let mut want = vec![job(b"f", b"u1", Priority::Low, &[0, 1], 5), job(b"f", b"u2", Priority::Normal, b"", 0)];
    assert_same_jobs(store.load().await.unwrap(), want.clone());
    let odd = odd_jobs(true);
    // Everything fits gearmand's narrower columns except the 300 kB job
    // (fine) and any epoch past 2038 (INTEGER column): that row alone fails.
    let (fits, too_late): (Vec<_>, Vec<_>) = odd.into_iter().partition(|j| j.when < i64::from(i32::MAX));
    store.apply(&inserts(&fits)).await.expect("odd jobs in gearmand's table");
    want.extend(fits);
    let err = store.apply(&inserts(&too_late)).await.expect_err("epoch past 2038 in an INTEGER column");
    assert!(matches!(err, StoreError::Rejected(_)), "{err}");
    assert_same_jobs(store.load().await.unwrap(), want);
    // The seeds' operator SQL works on plain names.
    let counts =
        psql(&format!("SELECT function_name, COUNT(function_name) FROM \"{t}\" GROUP BY function_name ORDER BY 1"))
            .unwrap_or_else(|e| panic!("count by function: {e}"));
    assert!(counts.contains("f|2"), "{counts}");
    assert!(counts.contains("my-func|2"), "{counts}");
    psql(&format!("DELETE FROM \"{t}\" WHERE function_name = 'my-func'")).unwrap_or_else(|e| panic!("delete: {e}"));
    assert_eq!(store.load().await.unwrap().iter().filter(|j| &j.function[..] == b"my-func").count(), 0);
}

/// A table gearmand created on MariaDB (VARCHAR keys): names that text
/// cannot hold are escaped, plain names stay readable for the seeds' SQL.
#[tokio::test]
async fn mysql_uses_gearmand_varchar_table() {
    let Some(scratch) = Scratch::new(Backend::Mysql, "gm") else { return };
    let t = &scratch.name;
    mysql(&format!(
        "CREATE TABLE `{t}` (unique_key VARCHAR(64), function_name VARCHAR(255), priority INT, data LONGBLOB, \
         when_to_run INT, unique key (unique_key, function_name));
         INSERT INTO `{t}` VALUES ('u1', 'f', 0, 'abc', 9), ('u2', 'f', NULL, NULL, NULL);"
    ))
    .unwrap_or_else(|e| panic!("create gearmand's table: {e}"));
    let mut store = scratch.open().await;
    let mut want = vec![job(b"f", b"u1", Priority::High, b"abc", 9), job(b"f", b"u2", Priority::Normal, b"", 0)];
    assert_same_jobs(store.load().await.unwrap(), want.clone());
    let fits: Vec<_> = odd_jobs(true).into_iter().filter(|j| j.when < i64::from(i32::MAX)).collect();
    store.apply(&inserts(&fits)).await.expect("odd jobs in gearmand's table");
    want.extend(fits);
    assert_same_jobs(store.load().await.unwrap(), want);
    let counts = mysql(&format!("SELECT function_name, COUNT(function_name) FROM `{t}` GROUP BY function_name"))
        .unwrap_or_else(|e| panic!("count by function: {e}"));
    assert!(counts.lines().any(|l| l == "my-func\t2"), "{counts}");
    mysql(&format!("DELETE FROM `{t}` WHERE function_name = \"my-func\"")).unwrap_or_else(|e| panic!("delete: {e}"));
    assert_eq!(store.load().await.unwrap().iter().filter(|j| &j.function[..] == b"my-func").count(), 0);
}

/// The table sprocketd creates on MariaDB: binary keys, seeds' SQL works.
#[tokio::test]
async fn mysql_created_table_is_binary_and_queryable() {
    let Some(scratch) = Scratch::new(Backend::Mysql, "own") else { return };
    let mut store = scratch.open().await;
    store.apply(&inserts(&odd_jobs(false))).await.unwrap();
    let t = &scratch.name;
    let cols = mysql(&format!(
        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='test' AND TABLE_NAME='{t}' ORDER BY ORDINAL_POSITION"
    ))
    .unwrap_or_else(|e| panic!("column types: {e}"));
    assert!(cols.contains("unique_key\tvarbinary") && cols.contains("when_to_run\tbigint"), "{cols}");
    let counts = mysql(&format!("SELECT function_name, COUNT(function_name) FROM `{t}` GROUP BY function_name"))
        .unwrap_or_else(|e| panic!("count by function: {e}"));
    assert!(counts.lines().any(|l| l == "my-func\t2"), "{counts}");
    mysql(&format!("DELETE FROM `{t}` WHERE function_name = \"plain\"")).unwrap_or_else(|e| panic!("delete: {e}"));
    assert!(store.load().await.unwrap().iter().all(|j| &j.function[..] != b"plain"));
}

/// Hashes gearmand 1.1.16+ wrote (no function/unique fields) and plain
/// strings from older gearmand are replayed.
#[tokio::test]
async fn redis_reads_gearmand_keys() {
    let Some(scratch) = Scratch::new(Backend::Redis, "gm") else { return };
    let p = &scratch.name;
    redis_cli(&["HSET", &format!("{p}-rq-r1"), "data", "one", "priority", "0"]);
    redis_cli(&["HSET", &format!("{p}-resize-6f1e0c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"), "data", "two", "priority", "2"]);
    redis_cli(&["SET", &format!("{p}-old-u9"), "plain string"]);
    redis_cli(&["SET", &format!("{p}x-not-ours"), "ignored"]);
    let mut store = scratch.open().await;
    assert_same_jobs(
        store.load().await.unwrap(),
        vec![
            job(b"rq", b"r1", Priority::High, b"one", 0),
            job(b"resize", b"6f1e0c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6", Priority::Low, b"two", 0),
            job(b"old", b"u9", Priority::Normal, b"plain string", 0),
        ],
    );
    // Overwriting a plain-string key with our hash works.
    store.apply(&[StoreOp::Insert(job(b"old", b"u9", Priority::High, b"new", 0))]).await.unwrap();
    assert!(store.load().await.unwrap().contains(&job(b"old", b"u9", Priority::High, b"new", 0)));
    redis_cli(&["DEL", &format!("{p}x-not-ours")]);
}

/// Table names from flags can never inject SQL.
#[tokio::test]
async fn hostile_table_names_are_quoted() {
    let evil = "q\"; DROP TABLE sprocket_meta; --";
    if let Some(s) = Scratch::new(Backend::Sqlite, "evil") {
        let cfg = StoreConfig::Sqlite { path: s.sqlite_path(), table: evil.into(), sync: Default::default() };
        let mut store = sprocket_store::open(&cfg).await.expect("sqlite with odd table name");
        store.apply(&inserts(&odd_jobs(true))).await.unwrap();
        assert_eq!(store.load().await.unwrap().len(), odd_jobs(true).len());
    }
    if let Some(s) = Scratch::new(Backend::Postgres, "evil") {
        let name = format!("{}\"x", s.name);
        let cfg = StoreConfig::Postgres { conninfo: PG_CONNINFO.into(), table: name.clone() };
        let mut store = sprocket_store::open(&cfg).await.expect("postgres with odd table name");
        store.apply(&inserts(&odd_jobs(true))).await.unwrap();
        assert_eq!(store.load().await.unwrap().len(), odd_jobs(true).len());
        drop(store);
        psql(&format!("DROP TABLE \"{}\"\"x\"; DELETE FROM sprocket_meta WHERE queue_table = '{}\"x'", s.name, s.name))
            .unwrap_or_else(|e| panic!("drop the odd table: {e}"));
    }
    if let Some(s) = Scratch::new(Backend::Mysql, "evil") {
        let name = format!("{}`x", s.name);
        let cfg = StoreConfig::Mysql {
            host: MYSQL_HOST.into(),
            port: MYSQL_PORT,
            user: "root".into(),
            password: String::new(),
            db: "test".into(),
            table: name.clone(),
        };
        let mut store = sprocket_store::open(&cfg).await.expect("mysql with odd table name");
        store.apply(&inserts(&odd_jobs(true))).await.unwrap();
        assert_eq!(store.load().await.unwrap().len(), odd_jobs(true).len());
        drop(store);
        mysql(&format!("DROP TABLE `{}``x`; DELETE FROM sprocket_meta WHERE queue_table = '{}`x'", s.name, s.name))
            .unwrap_or_else(|e| panic!("drop the odd table: {e}"));
    }
    let bad = StoreConfig::Sqlite { path: "/tmp/x.db".into(), table: "a\0b".into(), sync: Default::default() };
    assert!(matches!(sprocket_store::open(&bad).await, Err(StoreError::Config(_))));
}

/// A database that is not there at start-up is a clear error.
#[tokio::test]
async fn missing_databases_are_clear_errors() {
    let port = sprocket_testkit::free_port();
    let cases = vec![
        StoreConfig::Postgres {
            conninfo: format!("host=127.0.0.1 port={port} user=postgres dbname=test"),
            table: "q".into(),
        },
        StoreConfig::Postgres {
            conninfo: "host=127.0.0.1 port=5432 user=postgres dbname=no_such_db_xyz".into(),
            table: "q".into(),
        },
        StoreConfig::Mysql {
            host: "127.0.0.1".into(),
            port,
            user: "root".into(),
            password: String::new(),
            db: "test".into(),
            table: "q".into(),
        },
        StoreConfig::Redis { host: "127.0.0.1".into(), port, password: None, prefix: "p".into() },
        StoreConfig::Sqlite { path: "/nonexistent-dir/x/queue.db".into(), table: "q".into(), sync: Default::default() },
    ];
    for cfg in cases {
        match sprocket_store::open(&cfg).await {
            Ok(_) => panic!("{cfg:?} opened"),
            Err(e @ StoreError::Unavailable(_)) => {
                let text = e.to_string();
                assert!(text.contains("cannot") || text.contains("does not exist"), "unclear message: {text}");
                eprintln!("ok: {text}");
            }
            Err(other) => panic!("{cfg:?}: expected Unavailable, got {other}"),
        }
    }
}

/// `--mysql-host=localhost` (gearmand's default) goes through the local
/// socket, as libmysqlclient does.
#[tokio::test]
async fn mysql_localhost_works() {
    let Some(s) = Scratch::new(Backend::Mysql, "lh") else { return };
    let StoreConfig::Mysql { port, user, password, db, table, .. } = s.config() else { unreachable!() };
    let cfg = StoreConfig::Mysql { host: "localhost".into(), port, user, password, db, table };
    let mut store = sprocket_store::open(&cfg).await.expect("mysql via localhost");
    store.apply(&inserts(&odd_jobs(true))).await.unwrap();
    assert_eq!(store.load().await.unwrap().len(), odd_jobs(true).len());
}

/// `--redis-password` is sent with AUTH; a wrong or missing one is a clear
/// start-up error.
#[tokio::test]
async fn redis_password() {
    let Some(redis) = PrivateRedis::start_with_password("s3cret") else { return };
    let cfg = |password: Option<&str>| StoreConfig::Redis {
        host: "127.0.0.1".into(),
        port: redis.port,
        password: password.map(str::to_string),
        prefix: "_gear_".into(),
    };
    let mut store = sprocket_store::open(&cfg(Some("s3cret"))).await.expect("open with password");
    store.apply(&inserts(&odd_jobs(true))).await.unwrap();
    assert_eq!(store.load().await.unwrap().len(), odd_jobs(true).len());
    for bad in [None, Some("wrong")] {
        match sprocket_store::open(&cfg(bad)).await {
            Err(StoreError::Unavailable(m)) => assert!(m.contains("cannot connect"), "{m}"),
            Err(e) => panic!("unexpected error kind: {e}"),
            Ok(_) => panic!("opened with password {bad:?}"),
        }
    }
}

/// A large SQLite queue is replayed a part at a time, every row once; a
/// table without rowids (made by hand) is read in one piece.
#[tokio::test]
async fn sqlite_replays_a_large_table_in_parts() {
    let Some(scratch) = Scratch::new(Backend::Sqlite, "parts") else { return };
    let mut store = scratch.open().await;
    let jobs: Vec<_> = (0..25_000)
        .map(|i| job(b"f", format!("u{i}").as_bytes(), Priority::Normal, format!("d{i}").as_bytes(), 0))
        .collect();
    store.apply(&inserts(&jobs)).await.unwrap();
    let mut parts = Vec::new();
    let n = store.load_each(&mut |part| parts.push(part)).await.unwrap();
    assert_eq!(n, 25_000);
    assert_eq!(parts.len(), 3, "parts of at most 10,000 rows: {:?}", parts.iter().map(Vec::len).collect::<Vec<_>>());
    assert_same_jobs(parts.into_iter().flatten().collect(), jobs);

    let Some(hand) = Scratch::new(Backend::Sqlite, "norowid") else { return };
    {
        let conn = rusqlite::Connection::open(hand.sqlite_path()).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE \"{t}\" (unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB, \
             when_to_run INTEGER, PRIMARY KEY (unique_key, function_name)) WITHOUT ROWID;
             INSERT INTO \"{t}\" VALUES ('a', 'f', 1, x'01', 0);
             INSERT INTO \"{t}\" VALUES ('b', 'f', 1, x'02', 0);",
            t = hand.name
        ))
        .unwrap();
    }
    let mut store = hand.open().await;
    let mut got = Vec::new();
    assert_eq!(store.load_each(&mut |part| got.extend(part)).await.unwrap(), 2);
    assert_same_jobs(got, vec![job(b"f", b"a", Priority::Normal, &[1], 0), job(b"f", b"b", Priority::Normal, &[2], 0)]);
}

/// Rows in a scratch SQLite table, as text.
fn sqlite_rows(s: &Scratch) -> String {
    let n: i64 = rusqlite::Connection::open(s.sqlite_path())
        .expect("open the queue file")
        .query_row(&format!("SELECT COUNT(*) FROM \"{}\"", s.name), [], |r| r.get(0))
        .expect("count rows");
    n.to_string()
}

/// Rows in a scratch MySQL table, as text.
fn mysql_rows(s: &Scratch) -> String {
    mysql(&format!("SELECT COUNT(*) FROM `{}`", s.name)).unwrap_or_else(|e| panic!("count rows: {e}")).trim().into()
}

/// A row gearmand left with a cut unique (`…U\0`) whose 63-byte key also
/// exists for the same function is the same job to gearmand (it reads the
/// key as a C string and coalesces): replay keeps the existing row and
/// removes the cut one; a cut row without a twin is rewritten in place.
/// `fill` creates gearmand's table with: `U`×63 for `f` (data `kept`), the
/// same plus NUL for `f` (`dup`), the same for `g` (priority 2, `alone`)
/// and `ab\0` for `g` (`short`).
async fn cut_uniques_are_rewritten_or_merged(
    scratch: &Scratch,
    fill: &dyn Fn(&Scratch),
    count: &dyn Fn(&Scratch) -> String,
) {
    fill(scratch);
    let mut store = scratch.open().await;
    let u63 = [b'U'; 63];
    assert_same_jobs(
        store.load().await.expect("replay cut uniques"),
        vec![
            job(b"f", &u63, Priority::Normal, b"kept", 0),
            job(b"g", &u63, Priority::Low, b"alone", 0),
            job(b"g", b"ab", Priority::Normal, b"short", 0),
        ],
    );
    assert_eq!(count(scratch), "3", "only the cut twin of f's row is gone");
    for (f, u) in [(&b"f"[..], &u63[..]), (b"g", &u63), (b"g", b"ab")] {
        store.apply(&[StoreOp::Delete(key(f, u))]).await.expect("delete a finished job");
    }
    assert_eq!(count(scratch), "0", "every row matched its delete");
    assert!(store.load().await.expect("replay").is_empty());
}

#[tokio::test]
async fn sqlite_rewrites_or_merges_cut_uniques() {
    let Some(scratch) = Scratch::new(Backend::Sqlite, "cut") else { return };
    let open = |s: &Scratch| rusqlite::Connection::open(s.sqlite_path()).expect("open the queue file");
    let u = "55".repeat(63);
    let fill = |s: &Scratch| {
        open(s)
            .execute_batch(&format!(
                "CREATE TABLE \"{t}\" (unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB, \
                 when_to_run INTEGER, PRIMARY KEY (unique_key, function_name));
                 INSERT INTO \"{t}\" VALUES (CAST(x'{u}' AS TEXT), 'f', 1, 'kept', 0);
                 INSERT INTO \"{t}\" VALUES (CAST(x'{u}00' AS TEXT), 'f', 1, 'dup', 0);
                 INSERT INTO \"{t}\" VALUES (CAST(x'{u}00' AS TEXT), 'g', 2, 'alone', 0);
                 INSERT INTO \"{t}\" VALUES (CAST(x'616200' AS TEXT), 'g', 1, 'short', 0);",
                t = s.name
            ))
            .expect("fill gearmand's table")
    };
    cut_uniques_are_rewritten_or_merged(&scratch, &fill, &sqlite_rows).await;
}

#[tokio::test]
async fn mysql_rewrites_or_merges_cut_uniques() {
    let Some(scratch) = Scratch::new(Backend::Mysql, "cut") else { return };
    let u = "55".repeat(63);
    let fill = |s: &Scratch| {
        mysql(&format!(
            "CREATE TABLE `{t}` (unique_key VARCHAR(64), function_name VARCHAR(255), priority INT, data LONGBLOB, \
             when_to_run INT, unique key (unique_key, function_name));
             INSERT INTO `{t}` VALUES (x'{u}', 'f', 1, 'kept', 0), (x'{u}00', 'f', 1, 'dup', 0), \
             (x'{u}00', 'g', 2, 'alone', 0), (x'616200', 'g', 1, 'short', 0);",
            t = s.name
        ))
        .unwrap_or_else(|e| panic!("fill gearmand's table: {e}"));
    };
    cut_uniques_are_rewritten_or_merged(&scratch, &fill, &mysql_rows).await;
}

/// A PostgreSQL table without a unique constraint on (unique_key,
/// function_name), made by hand and holding duplicates: writes work (an
/// upsert replaces every row of its key, a delete removes them all), as
/// on MySQL and SQLite, instead of failing with 42P10 on `ON CONFLICT`.
#[tokio::test]
async fn postgres_writes_to_a_table_without_a_unique_constraint() {
    let Some(scratch) = Scratch::new(Backend::Postgres, "nouniq") else { return };
    let t = &scratch.name;
    psql(&format!(
        "CREATE TABLE \"{t}\" (unique_key varchar(64), function_name varchar(255), priority int, data bytea);
         INSERT INTO \"{t}\" VALUES ('u1', 'f', 0, '\\x01'::bytea), ('u1', 'f', 0, '\\x01'::bytea),
             ('u2', 'f', NULL, NULL), ('u3', 'f', 2, '\\x03'::bytea);"
    ))
    .unwrap_or_else(|e| panic!("create a table without a key: {e}"));
    let mut store = scratch.open().await;
    assert_same_jobs(
        store.load().await.expect("replay"),
        vec![
            job(b"f", b"u1", Priority::High, &[1], 0),
            job(b"f", b"u2", Priority::Normal, b"", 0),
            job(b"f", b"u3", Priority::Low, &[3], 0),
        ],
    );
    store
        .apply(&[
            StoreOp::Insert(job(b"f", b"u1", Priority::Low, b"replaced", 0)),
            StoreOp::Insert(job(b"f", b"new", Priority::Normal, b"added", 7)),
            StoreOp::Delete(key(b"f", b"u2")),
        ])
        .await
        .expect("upserts and a delete");
    store.apply(&[StoreOp::Delete(key(b"f", b"u3"))]).await.expect("a delete alone");
    let want = vec![job(b"f", b"u1", Priority::Low, b"replaced", 0), job(b"f", b"new", Priority::Normal, b"added", 7)];
    assert_same_jobs(store.load().await.expect("replay after writes"), want.clone());
    let rows = psql(&format!("SELECT COUNT(*) FROM \"{t}\"")).unwrap_or_else(|e| panic!("count rows: {e}"));
    assert_eq!(rows.trim(), "2", "one row per key");
    // A second connection (--store-connections) writes the same way.
    let mut other = store.open_another().await.expect("connect again").expect("postgres has more connections");
    other.apply(&inserts(&[job(b"f", b"new", Priority::High, b"again", 0)])).await.expect("upsert on another store");
    assert_same_jobs(
        store.load().await.expect("replay"),
        vec![want[0].clone(), job(b"f", b"new", Priority::High, b"again", 0)],
    );
}

/// Rows with a NULL unique_key (two for one function) and a NULL
/// function_name, as a hand or another program may leave them. `fill`
/// creates gearmand's table with: (NULL, `f`, `n1`), (NULL, `f`, `n2`),
/// (`u1`, NULL, `nofn`) and (`ok`, `f`, `ok`), all normal priority.
/// A NULL unique is replayed as a job without a unique of its own (a
/// generated key, which replay turns into an empty unique), and its delete
/// removes the row; before, it was replayed as `''` and `= ''` never
/// matched, so it ran again after every restart. A NULL function cannot be
/// run: it stays in the table and is not replayed.
async fn null_keys_are_replayed_once(scratch: &Scratch, fill: &dyn Fn(&Scratch), count: &dyn Fn(&Scratch) -> String) {
    fill(scratch);
    let mut store = scratch.open().await;
    let got = sorted(store.load().await.expect("replay rows with NULL keys"));
    let mut datas: Vec<&[u8]> = got.iter().map(|j| &j.data[..]).collect();
    datas.sort();
    assert_eq!(datas, vec![&b"n1"[..], b"n2", b"ok"], "{got:?}");
    for j in &got {
        assert_eq!(&j.function[..], b"f");
    }
    let keyless: Vec<_> = got.iter().filter(|j| j.unique.as_ref() != b"ok").collect();
    assert_eq!(keyless.len(), 2);
    assert!(keyless.iter().all(|j| j.unique.starts_with(b"~sprocket:")), "{keyless:?}");
    assert_ne!(keyless[0].unique, keyless[1].unique);
    assert_eq!(count(scratch), "4", "nothing deleted");
    // The same keys come back at the next start. (The same store replays
    // again: reopening an SQLite file at once can race its flock with a
    // child another test is forking.)
    assert_same_jobs(store.load().await.expect("replay again"), got.clone());
    // The jobs finish: each delete, written with the job's key, matches.
    for j in &got {
        store.apply(&[StoreOp::Delete(j.key())]).await.expect("delete a finished job");
    }
    assert!(store.load().await.expect("replay").is_empty());
    assert_eq!(count(scratch), "1", "only the row without a function is left");
}

#[tokio::test]
async fn sqlite_replays_null_keys_once() {
    let Some(scratch) = Scratch::new(Backend::Sqlite, "null") else { return };
    let open = |s: &Scratch| rusqlite::Connection::open(s.sqlite_path()).expect("open the queue file");
    let fill = |s: &Scratch| {
        open(s)
            .execute_batch(&format!(
                "CREATE TABLE \"{t}\" (unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB, \
                 when_to_run INTEGER, PRIMARY KEY (unique_key, function_name));
                 INSERT INTO \"{t}\" VALUES (NULL, 'f', 1, 'n1', 0), (NULL, 'f', 1, 'n2', 0),
                     ('u1', NULL, 1, 'nofn', 0), ('ok', 'f', 1, 'ok', 0);",
                t = s.name
            ))
            .expect("fill gearmand's table")
    };
    null_keys_are_replayed_once(&scratch, &fill, &sqlite_rows).await;
}

#[tokio::test]
async fn mysql_replays_null_keys_once() {
    let Some(scratch) = Scratch::new(Backend::Mysql, "null") else { return };
    let fill = |s: &Scratch| {
        mysql(&format!(
            "CREATE TABLE `{t}` (unique_key VARCHAR(64), function_name VARCHAR(255), priority INT, data LONGBLOB, \
             when_to_run INT, unique key (unique_key, function_name));
             INSERT INTO `{t}` VALUES (NULL, 'f', 1, 'n1', 0), (NULL, 'f', 1, 'n2', 0), ('u1', NULL, 1, 'nofn', 0), \
             ('ok', 'f', 1, 'ok', 0);",
            t = s.name
        ))
        .unwrap_or_else(|e| panic!("fill gearmand's table: {e}"));
    };
    null_keys_are_replayed_once(&scratch, &fill, &mysql_rows).await;
}

#[tokio::test]
async fn postgres_replays_null_keys_once() {
    let Some(scratch) = Scratch::new(Backend::Postgres, "null") else { return };
    let fill = |s: &Scratch| {
        psql(&format!(
            "CREATE TABLE \"{t}\" (unique_key VARCHAR(64), function_name VARCHAR(255), priority INTEGER, data BYTEA, \
             when_to_run INTEGER, UNIQUE (unique_key, function_name));
             INSERT INTO \"{t}\" VALUES (NULL, 'f', 1, 'n1', 0), (NULL, 'f', 1, 'n2', 0), ('u1', NULL, 1, 'nofn', 0), \
             ('ok', 'f', 1, 'ok', 0);",
            t = s.name
        ))
        .unwrap_or_else(|e| panic!("fill gearmand's table: {e}"));
    };
    let count = |s: &Scratch| {
        psql(&format!("SELECT COUNT(*) FROM \"{}\"", s.name))
            .unwrap_or_else(|e| panic!("count rows: {e}"))
            .trim()
            .into()
    };
    null_keys_are_replayed_once(&scratch, &fill, &count).await;
}
