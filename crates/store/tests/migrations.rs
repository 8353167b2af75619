//! Layouts of every earlier version, opened by this build: against the
//! real PostgreSQL, MariaDB and Redis on localhost and SQLite files, each
//! fixture is made the way the software that wrote it made it, filled
//! with rows, opened, and checked for the migrated layout and a replay of
//! its rows.
//!
//! The versions: a queue table without a `sprocket_meta` row is version 0
//! (gearmand 1.1.20's own table, and the table of a gearmand older than
//! `when_to_run`); sprocketd before job records wrote version 1; version 2
//! adds the record tables (`sprocket_records`, `sprocket_handles`; Redis:
//! record keys made on first write); version 3 adds `sprocket_settings`
//! (Redis: settings hashes made on first write). gearmand's tables are never altered
//! beyond the `when_to_run` an old one lacks. A version newer than this
//! build is refused.

mod common;

use common::*;
use sprocket_proto::Priority;
use sprocket_store::schema::{REDIS_LAYOUT_VERSION, SCHEMA_VERSION};
use sprocket_store::{StoreError, StoredJob};
use sprocket_testkit::databases::{mysql, psql, redis_cli};

/// The layouts a queue table can be found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixture {
    /// gearmand 1.1.20's own table, no `sprocket_meta` row (version 0).
    Gearmand,
    /// A gearmand table from before `when_to_run`, no row (version 0).
    GearmandWithoutWhen,
    /// The table sprocketd creates, with its version 1 row.
    SprocketdV1,
}

const FIXTURES: [Fixture; 3] = [Fixture::Gearmand, Fixture::GearmandWithoutWhen, Fixture::SprocketdV1];

/// The rows every fixture holds, as replay must give them back (the
/// fixtures without `when_to_run` replay every epoch as 0).
fn fixture_jobs(fixture: Fixture) -> Vec<StoredJob> {
    let when = if fixture == Fixture::GearmandWithoutWhen { 0 } else { 1_900_000_000 };
    vec![
        job(b"resize", b"u1", Priority::High, b"img-1", 0),
        job(b"resize", b"u2", Priority::Low, b"", 0),
        job(b"mail", b"m-1", Priority::Normal, b"to: x", when),
    ]
}

/// SQL values for [`fixture_jobs`], in the column order
/// (unique_key, function_name, priority, data[, when_to_run]).
fn fixture_values(fixture: Fixture, data: impl Fn(&str) -> String) -> String {
    let with_when = fixture != Fixture::GearmandWithoutWhen;
    let rows =
        [("u1", "resize", 0, "img-1", 0), ("u2", "resize", 2, "", 0), ("m-1", "mail", 1, "to: x", 1_900_000_000)];
    rows.iter()
        .map(|(u, f, p, d, w)| {
            let when = if with_when { format!(", {w}") } else { String::new() };
            format!("('{u}', '{f}', {p}, {}{when})", data(d))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Asserts that the store is refused for a layout newer than it knows.
async fn assert_refused(scratch: &Scratch, newer: i64, newest: i64) {
    let err = match sprocket_store::open(&scratch.config()).await {
        Ok(_) => panic!("opened a layout of version {newer}"),
        Err(e) => e,
    };
    assert!(matches!(err, StoreError::Config(_)), "{err}");
    let want = format!("has schema version {newer}, newer than this sprocketd understands ({newest})");
    assert!(err.to_string().contains(&want), "{err}");
}

// ---------------------------------------------------------------- SQLite

fn sqlite_columns(conn: &rusqlite::Connection, table: &str) -> Vec<(String, String)> {
    let mut st = conn.prepare(&format!("PRAGMA table_info(\"{table}\")")).unwrap();
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?))).unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

fn sqlite_version(conn: &rusqlite::Connection, table: &str) -> Option<i64> {
    conn.query_row("SELECT schema_version FROM sprocket_meta WHERE queue_table = ?1", [table], |r| r.get(0)).ok()
}

fn sqlite_fixture(scratch: &Scratch, fixture: Fixture) -> rusqlite::Connection {
    let t = &scratch.name;
    let conn = rusqlite::Connection::open(scratch.sqlite_path()).unwrap();
    let (columns, meta) = match fixture {
        // gearmand 1.1.20's statement (libgearman-server/plugins/queue/sqlite).
        Fixture::Gearmand => ("when_to_run INTEGER, PRIMARY KEY (unique_key, function_name)", false),
        Fixture::GearmandWithoutWhen => ("PRIMARY KEY (unique_key, function_name)", false),
        Fixture::SprocketdV1 => ("when_to_run INTEGER, PRIMARY KEY (unique_key, function_name)", true),
    };
    conn.execute_batch(&format!(
        "CREATE TABLE \"{t}\" (unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB, {columns});
         INSERT INTO \"{t}\" VALUES {};",
        fixture_values(fixture, |d| format!("CAST('{d}' AS BLOB)"))
    ))
    .unwrap();
    if meta {
        conn.execute_batch(&format!(
            "CREATE TABLE sprocket_meta (queue_table TEXT PRIMARY KEY, schema_version INTEGER NOT NULL);
             INSERT INTO sprocket_meta VALUES ('{t}', 1);"
        ))
        .unwrap();
    }
    conn
}

#[tokio::test]
async fn sqlite_tables_of_every_earlier_version_are_migrated_and_replayed() {
    for fixture in FIXTURES {
        let Some(scratch) = Scratch::new(Backend::Sqlite, "mig") else { return };
        let t = &scratch.name;
        let conn = sqlite_fixture(&scratch, fixture);
        let mut before = sqlite_columns(&conn, t);
        let mut store = scratch.open().await;
        assert_same_jobs(store.load().await.expect("replay"), fixture_jobs(fixture));
        if fixture == Fixture::GearmandWithoutWhen {
            before.push(("when_to_run".into(), "INTEGER".into()));
        }
        assert_eq!(sqlite_columns(&conn, t), before, "{fixture:?}: only a missing when_to_run is added");
        assert_eq!(sqlite_version(&conn, t), Some(SCHEMA_VERSION), "{fixture:?}");
        // Opening again changes nothing.
        drop(store);
        let mut again = scratch.open().await;
        assert_same_jobs(again.load().await.expect("replay again"), fixture_jobs(fixture));
        assert_eq!(sqlite_columns(&conn, t), before);
    }
}

#[tokio::test]
async fn sqlite_newer_schema_is_refused_and_left_alone() {
    let Some(scratch) = Scratch::new(Backend::Sqlite, "mig") else { return };
    let conn = sqlite_fixture(&scratch, Fixture::SprocketdV1);
    conn.execute("UPDATE sprocket_meta SET schema_version = ?1", [SCHEMA_VERSION + 1]).unwrap();
    assert_refused(&scratch, SCHEMA_VERSION + 1, SCHEMA_VERSION).await;
    assert_eq!(sqlite_version(&conn, &scratch.name), Some(SCHEMA_VERSION + 1));
    let rows: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM \"{}\"", scratch.name), [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 3);
}

/// A deployment whose queue table was dropped keeps its `sprocket_meta`
/// row; the table is made again, as before there were versions.
#[tokio::test]
async fn sqlite_dropped_queue_table_is_created_again() {
    let Some(scratch) = Scratch::new(Backend::Sqlite, "mig") else { return };
    let conn = sqlite_fixture(&scratch, Fixture::SprocketdV1);
    conn.execute_batch(&format!("DROP TABLE \"{}\"", scratch.name)).unwrap();
    let mut store = scratch.open().await;
    assert!(store.load().await.expect("replay").is_empty());
    assert_eq!(sqlite_columns(&conn, &scratch.name).len(), 5);
}

// ------------------------------------------------------------ PostgreSQL

fn pg_columns(table: &str) -> String {
    psql(&format!(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{table}' \
         ORDER BY ordinal_position"
    ))
    .unwrap_or_else(|e| panic!("columns of {table}: {e}"))
}

fn pg_version(table: &str) -> String {
    psql(&format!("SELECT schema_version FROM sprocket_meta WHERE queue_table = '{table}'"))
        .unwrap_or_else(|e| panic!("version of {table}: {e}"))
        .trim()
        .to_string()
}

fn pg_fixture(scratch: &Scratch, fixture: Fixture) {
    let t = &scratch.name;
    let columns = match fixture {
        // gearmand 1.1.20's statement (libgearman-server/plugins/queue/postgres).
        Fixture::Gearmand => {
            "unique_key VARCHAR(64), function_name VARCHAR(255), priority INTEGER, data BYTEA, \
                              when_to_run INTEGER, UNIQUE (unique_key, function_name)"
        }
        Fixture::GearmandWithoutWhen => {
            "unique_key VARCHAR(64), function_name VARCHAR(255), priority INTEGER, \
                                         data BYTEA, UNIQUE (unique_key, function_name)"
        }
        Fixture::SprocketdV1 => {
            "unique_key TEXT, function_name TEXT, priority INTEGER, data BYTEA, \
                                 when_to_run BIGINT, UNIQUE (unique_key, function_name)"
        }
    };
    let values = fixture_values(fixture, |d| format!("convert_to('{d}', 'UTF8')"));
    psql(&format!("CREATE TABLE \"{t}\" ({columns}); INSERT INTO \"{t}\" VALUES {values};"))
        .unwrap_or_else(|e| panic!("create the {fixture:?} table: {e}"));
    if fixture == Fixture::SprocketdV1 {
        psql(&format!(
            "CREATE TABLE IF NOT EXISTS sprocket_meta (queue_table TEXT PRIMARY KEY, schema_version INTEGER NOT NULL);
             INSERT INTO sprocket_meta VALUES ('{t}', 1);"
        ))
        .unwrap_or_else(|e| panic!("record version 1: {e}"));
    }
}

#[tokio::test]
async fn postgres_tables_of_every_earlier_version_are_migrated_and_replayed() {
    for fixture in FIXTURES {
        let Some(scratch) = Scratch::new(Backend::Postgres, "mig") else { return };
        let t = &scratch.name;
        pg_fixture(&scratch, fixture);
        let mut before = pg_columns(t);
        let mut store = scratch.open().await;
        assert_same_jobs(store.load().await.expect("replay"), fixture_jobs(fixture));
        if fixture == Fixture::GearmandWithoutWhen {
            before.push_str("when_to_run|bigint\n");
        }
        assert_eq!(pg_columns(t), before, "{fixture:?}: only a missing when_to_run is added");
        assert_eq!(pg_version(t), SCHEMA_VERSION.to_string(), "{fixture:?}");
        drop(store);
        let mut again = scratch.open().await;
        assert_same_jobs(again.load().await.expect("replay again"), fixture_jobs(fixture));
        assert_eq!(pg_columns(t), before);
    }
}

#[tokio::test]
async fn postgres_newer_schema_is_refused_and_left_alone() {
    let Some(scratch) = Scratch::new(Backend::Postgres, "mig") else { return };
    pg_fixture(&scratch, Fixture::SprocketdV1);
    let newer = SCHEMA_VERSION + 1;
    psql(&format!("UPDATE sprocket_meta SET schema_version = {newer} WHERE queue_table = '{}'", scratch.name))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_refused(&scratch, newer, SCHEMA_VERSION).await;
    assert_eq!(pg_version(&scratch.name), newer.to_string());
}

// ---------------------------------------------------------------- MariaDB

fn mysql_columns(table: &str) -> String {
    mysql(&format!(
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
    ))
    .unwrap_or_else(|e| panic!("columns of {table}: {e}"))
}

fn mysql_version(table: &str) -> String {
    mysql(&format!("SELECT schema_version FROM sprocket_meta WHERE queue_table = '{table}'"))
        .unwrap_or_else(|e| panic!("version of {table}: {e}"))
        .trim()
        .to_string()
}

fn mysql_fixture(scratch: &Scratch, fixture: Fixture) {
    let t = &scratch.name;
    let columns = match fixture {
        // gearmand 1.1.20's statement (libgearman-server/plugins/queue/mysql).
        Fixture::Gearmand => {
            "unique_key VARCHAR(64), function_name VARCHAR(255), priority INT, data LONGBLOB, \
                              when_to_run INT, unique key (unique_key, function_name)"
        }
        Fixture::GearmandWithoutWhen => {
            "unique_key VARCHAR(64), function_name VARCHAR(255), priority INT, \
                                         data LONGBLOB, unique key (unique_key, function_name)"
        }
        Fixture::SprocketdV1 => {
            "unique_key VARBINARY(64), function_name VARBINARY(512), priority INT, \
                                 data LONGBLOB, when_to_run BIGINT, UNIQUE KEY unique_key (unique_key, function_name)"
        }
    };
    let values = fixture_values(fixture, |d| format!("'{d}'"));
    mysql(&format!("CREATE TABLE `{t}` ({columns}) ENGINE=InnoDB; INSERT INTO `{t}` VALUES {values};"))
        .unwrap_or_else(|e| panic!("create the {fixture:?} table: {e}"));
    if fixture == Fixture::SprocketdV1 {
        mysql(&format!(
            "CREATE TABLE IF NOT EXISTS sprocket_meta (queue_table VARCHAR(64) PRIMARY KEY, \
             schema_version INT NOT NULL) ENGINE=InnoDB;
             INSERT INTO sprocket_meta VALUES ('{t}', 1);"
        ))
        .unwrap_or_else(|e| panic!("record version 1: {e}"));
    }
}

#[tokio::test]
async fn mysql_tables_of_every_earlier_version_are_migrated_and_replayed() {
    for fixture in FIXTURES {
        let Some(scratch) = Scratch::new(Backend::Mysql, "mig") else { return };
        let t = &scratch.name;
        mysql_fixture(&scratch, fixture);
        let mut before = mysql_columns(t);
        let mut store = scratch.open().await;
        assert_same_jobs(store.load().await.expect("replay"), fixture_jobs(fixture));
        if fixture == Fixture::GearmandWithoutWhen {
            before.push_str("when_to_run\tbigint(20)\n");
        }
        assert_eq!(mysql_columns(t), before, "{fixture:?}: only a missing when_to_run is added");
        assert_eq!(mysql_version(t), SCHEMA_VERSION.to_string(), "{fixture:?}");
        drop(store);
        let mut again = scratch.open().await;
        assert_same_jobs(again.load().await.expect("replay again"), fixture_jobs(fixture));
        assert_eq!(mysql_columns(t), before);
    }
}

#[tokio::test]
async fn mysql_newer_schema_is_refused_and_left_alone() {
    let Some(scratch) = Scratch::new(Backend::Mysql, "mig") else { return };
    mysql_fixture(&scratch, Fixture::SprocketdV1);
    let newer = SCHEMA_VERSION + 1;
    mysql(&format!("UPDATE sprocket_meta SET schema_version = {newer} WHERE queue_table = '{}'", scratch.name))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_refused(&scratch, newer, SCHEMA_VERSION).await;
    assert_eq!(mysql_version(&scratch.name), newer.to_string());
}

// ------------------------------------------------------------------ Redis

/// Removes the prefix's field of the version hash when the test ends.
struct RedisVersionField(String);

impl Drop for RedisVersionField {
    fn drop(&mut self) {
        redis_cli(&["HDEL", "sprocket_meta", &self.0]);
    }
}

fn redis_version(prefix: &str) -> String {
    redis_cli(&["HGET", "sprocket_meta", prefix]).trim().to_string()
}

/// Keys under a prefix with no recorded version (version 0): gearmand
/// 1.1's hashes and a plain value from gearmand before 1.1.16; then the
/// layout of version 1, recorded; then a newer one, refused.
#[tokio::test]
async fn redis_key_layouts_of_every_earlier_version_are_migrated_and_replayed() {
    let Some(scratch) = Scratch::new(Backend::Redis, "mig") else { return };
    let p = scratch.name.clone();
    let _field = RedisVersionField(p.clone());
    redis_cli(&["HSET", &format!("{p}-resize-u1"), "data", "img-1", "priority", "0"]);
    redis_cli(&["SET", &format!("{p}-mail-m-1"), "to: x"]);
    let want =
        vec![job(b"resize", b"u1", Priority::High, b"img-1", 0), job(b"mail", b"m-1", Priority::Normal, b"to: x", 0)];
    assert_eq!(redis_version(&p), "", "no version before the first open");
    let mut store = scratch.open().await;
    assert_same_jobs(store.load().await.expect("replay"), want.clone());
    assert_eq!(redis_version(&p), REDIS_LAYOUT_VERSION.to_string());
    // The keys themselves are not rewritten.
    assert_eq!(redis_cli(&["TYPE", &format!("{p}-mail-m-1")]).trim(), "string");
    drop(store);
    // Version 1, as recorded before job records: migrated to the latest.
    redis_cli(&["HSET", "sprocket_meta", &p, "1"]);
    let mut again = scratch.open().await;
    assert_same_jobs(again.load().await.expect("replay again"), want);
    assert_eq!(redis_version(&p), REDIS_LAYOUT_VERSION.to_string());
    assert!(again.keeps_records());
    drop(again);
    let newer = REDIS_LAYOUT_VERSION + 1;
    redis_cli(&["HSET", "sprocket_meta", &p, &newer.to_string()]);
    assert_refused(&scratch, newer, REDIS_LAYOUT_VERSION).await;
    assert_eq!(redis_version(&p), newer.to_string());
}

// ------------------------------------------------------------ Job records

/// The columns of the record tables, as each database describes them.
const RECORD_COLUMNS: [&str; 8] =
    ["namespace", "handle", "function", "row_unique", "state", "submitted", "finished", "body"];

fn assert_record_columns(found: &str, types: &[&str]) {
    let lines: Vec<&str> = found.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), RECORD_COLUMNS.len(), "{found}");
    for ((line, name), ty) in lines.iter().zip(RECORD_COLUMNS).zip(types) {
        assert!(line.starts_with(name) && line.to_lowercase().contains(ty), "column {name} {ty}: {line}");
    }
}

#[tokio::test]
async fn sqlite_version_1_gets_the_record_tables() {
    let Some(scratch) = Scratch::new(Backend::Sqlite, "mig") else { return };
    let conn = sqlite_fixture(&scratch, Fixture::SprocketdV1);
    let _store = scratch.open().await;
    assert_eq!(sqlite_version(&conn, &scratch.name), Some(SCHEMA_VERSION));
    let cols: Vec<String> =
        sqlite_columns(&conn, "sprocket_records").into_iter().map(|(n, t)| format!("{n} {t}")).collect();
    assert_record_columns(&cols.join("\n"), &["text", "text", "blob", "blob", "text", "integer", "integer", "blob"]);
    let handles = sqlite_columns(&conn, "sprocket_handles");
    assert_eq!(handles, vec![("namespace".into(), "TEXT".into()), ("next_handle".into(), "INTEGER".into())]);
    // Version 4: partial indexes, ended records by end and by function,
    // live ones by queue row; version 2's full indexes are gone. Version 5:
    // ended records by state.
    let mut st = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sprocket_records' \
             AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap();
    let indexes: Vec<(String, String)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
    let names: Vec<&str> = indexes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "sprocket_records_ended",
            "sprocket_records_ended_by_function",
            "sprocket_records_ended_by_state",
            "sprocket_records_live_by_row"
        ],
        "{indexes:?}"
    );
    assert!(indexes.iter().all(|(_, sql)| sql.contains("WHERE finished IS")), "partial: {indexes:?}");
}

#[tokio::test]
async fn postgres_version_1_gets_the_record_tables() {
    let Some(scratch) = Scratch::new(Backend::Postgres, "mig") else { return };
    pg_fixture(&scratch, Fixture::SprocketdV1);
    let _store = scratch.open().await;
    assert_eq!(pg_version(&scratch.name), SCHEMA_VERSION.to_string());
    let cols = pg_columns("sprocket_records").replace('|', " ");
    assert_record_columns(&cols, &["text", "text", "bytea", "bytea", "text", "bigint", "bigint", "bytea"]);
    assert_eq!(pg_columns("sprocket_handles").replace('|', " ").split_whitespace().count(), 4, "two columns");
    let indexes = psql("SELECT indexname FROM pg_indexes WHERE tablename = 'sprocket_records' ORDER BY 1")
        .unwrap_or_else(|e| panic!("{e}"));
    for index in [
        "sprocket_records_ended",
        "sprocket_records_ended_by_function",
        "sprocket_records_ended_by_state",
        "sprocket_records_live_by_row",
    ] {
        assert!(indexes.contains(index), "{indexes}");
    }
    assert!(!indexes.contains("sprocket_records_by_"), "version 2's indexes are replaced: {indexes}");
    let partial = psql(
        "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'sprocket_records' AND indexdef LIKE '%WHERE (finished IS%'",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(partial.trim(), "4", "partial indexes");
}

#[tokio::test]
async fn mysql_version_1_gets_the_record_tables() {
    let Some(scratch) = Scratch::new(Backend::Mysql, "mig") else { return };
    mysql_fixture(&scratch, Fixture::SprocketdV1);
    let _store = scratch.open().await;
    assert_eq!(mysql_version(&scratch.name), SCHEMA_VERSION.to_string());
    let cols = mysql_columns("sprocket_records").replace('\t', " ");
    assert_record_columns(
        &cols,
        &[
            "varchar(64)",
            "varchar(255)",
            "varbinary(512)",
            "varbinary(255)",
            "varchar(16)",
            "bigint",
            "bigint",
            "longblob",
        ],
    );
    let indexes = mysql(
        "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS \
         WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = 'sprocket_records'",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // MySQL has no partial indexes: it keeps version 2's, and version 5
    // adds the one by state.
    for index in [
        "sprocket_records_by_end",
        "sprocket_records_by_function",
        "sprocket_records_by_row",
        "sprocket_records_by_state",
    ] {
        assert!(indexes.contains(index), "{indexes}");
    }
}

/// Makes a version 1 fixture into the version 2 layout sprocketd wrote
/// before operator settings: the record tables, a handle counter, version 2.
fn sqlite_v2_fixture(scratch: &Scratch) -> rusqlite::Connection {
    let conn = sqlite_fixture(scratch, Fixture::SprocketdV1);
    for sql in sprocket_store::schema::record_tables(sprocket_store::schema::Dialect::Sqlite) {
        conn.execute_batch(&sql).unwrap();
    }
    conn.execute("UPDATE sprocket_meta SET schema_version = 2", []).unwrap();
    conn.execute("INSERT INTO sprocket_handles VALUES (?1, 42)", [&scratch.name]).unwrap();
    conn
}

#[tokio::test]
async fn sqlite_version_2_gets_the_settings_table() {
    let Some(scratch) = Scratch::new(Backend::Sqlite, "mig") else { return };
    let conn = sqlite_v2_fixture(&scratch);
    let mut store = scratch.open().await;
    assert_eq!(sqlite_version(&conn, &scratch.name), Some(SCHEMA_VERSION));
    let cols = sqlite_columns(&conn, "sprocket_settings");
    let want: Vec<(String, String)> = [("namespace", "TEXT"), ("kind", "TEXT"), ("name", "BLOB"), ("value", "TEXT")]
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    assert_eq!(cols, want);
    store.put_setting("paused", b"resize", "{}").await.expect("put a setting");
    let got = store.load_settings("paused").await.expect("load settings");
    assert_eq!(got, vec![(bytes::Bytes::from_static(b"resize"), "{}".to_string())]);
    assert_eq!(store.reserve_handles(10).await.expect("reserve"), 42, "the handle counter is kept");
    assert_same_jobs(store.load().await.expect("replay"), fixture_jobs(Fixture::SprocketdV1));
}

#[tokio::test]
async fn postgres_version_2_gets_the_settings_table() {
    let Some(scratch) = Scratch::new(Backend::Postgres, "mig") else { return };
    pg_fixture(&scratch, Fixture::SprocketdV1);
    let t = &scratch.name;
    let mut v2: Vec<String> = sprocket_store::schema::record_tables(sprocket_store::schema::Dialect::Postgres);
    v2.push(format!("UPDATE sprocket_meta SET schema_version = 2 WHERE queue_table = '{t}'"));
    psql(&v2.join("; ")).unwrap_or_else(|e| panic!("make the version 2 layout: {e}"));
    let mut store = scratch.open().await;
    assert_eq!(pg_version(t), SCHEMA_VERSION.to_string());
    let cols = pg_columns("sprocket_settings").replace('|', " ");
    for (name, kind) in [("namespace", "text"), ("kind", "text"), ("name", "bytea"), ("value", "text")] {
        assert!(cols.contains(&format!("{name} {kind}")), "{cols}");
    }
    store.put_setting("paused", b"resize", "{}").await.expect("put a setting");
    let got = store.load_settings("paused").await.expect("load settings");
    assert_eq!(got, vec![(bytes::Bytes::from_static(b"resize"), "{}".to_string())]);
    store.delete_setting("paused", b"resize").await.expect("delete the setting");
}
