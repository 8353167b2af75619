//! SQLite backend (`-q libsqlite3`, and sprocketd's default queue).
//!
//! Table layout and name are gearmand's, so either server can replay the
//! other's rows. The database runs in WAL mode; [`SyncMode`] picks
//! `synchronous=FULL` or `NORMAL`. rusqlite blocks, so every call runs on
//! tokio's blocking pool with the connection moved in and back out.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::ident::{double_quoted, validate_table};
use crate::record_row::{decode_body, ms};
use crate::rows::{loaded_job, parse_int, repaired_unique, EncodedBatch, KeyForm, NullKeys, Repairs};
use crate::schema::{self, Dialect};
use crate::{JobKey, QueuedHandle, Record, RecordFilter, Result, Store, StoreError, StoreOp, StoredJob, SyncMode};

mod records;
mod settings;

/// How long a statement waits for a lock held by another process (gearmand's value).
const BUSY_TIMEOUT: Duration = Duration::from_secs(6);

/// SQL text for one table, built once.
#[derive(Debug)]
struct Sql {
    table: String,
    insert: String,
    delete: String,
    select: String,
    /// The same, a part at a time in rowid order.
    select_part: String,
}

/// A queue table in an SQLite database file.
pub struct SqliteStore {
    path: PathBuf,
    sync: SyncMode,
    sql: Arc<Sql>,
    conn: Option<Connection>,
    /// An exclusive `flock` on the database file for as long as the store
    /// lives (see [`lock_database`]); `None` for a reader beside the
    /// store that holds it ([`Store::open_reader`]).
    _lock: Option<std::fs::File>,
    /// Commit on the caller's thread (the writer's own thread), not on
    /// tokio's blocking pool.
    inline: bool,
}

fn unavailable_or_rejected(context: &str, e: rusqlite::Error) -> StoreError {
    let msg = format!("{context}: {e}");
    match e.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::PermissionDenied
            | ErrorCode::NotADatabase
            | ErrorCode::DatabaseCorrupt,
        ) => StoreError::Unavailable(msg),
        _ => StoreError::Rejected(msg),
    }
}

impl SqliteStore {
    /// Opens (creating if absent) the database file and the table.
    pub async fn open(path: &Path, table: &str, sync: SyncMode) -> Result<SqliteStore> {
        validate_table("--libsqlite3-table", table)?;
        let q = double_quoted(table);
        let sql = Arc::new(Sql {
            table: table.to_string(),
            insert: format!(
                "INSERT OR REPLACE INTO {q} (priority, unique_key, function_name, data, when_to_run) VALUES (?1, ?2, ?3, ?4, ?5)"
            ),
            delete: format!("DELETE FROM {q} WHERE unique_key = ?1 AND function_name = ?2"),
            select: format!("SELECT unique_key, function_name, priority, data, when_to_run FROM {q}"),
            select_part: format!(
                "SELECT unique_key, function_name, priority, data, when_to_run, rowid FROM {q} \
                 WHERE rowid > ?1 ORDER BY rowid LIMIT ?2"
            ),
        });
        let lock = lock_database(path)?;
        let mut store =
            SqliteStore { path: path.to_path_buf(), sync, sql, conn: None, _lock: Some(lock), inline: false };
        store.reconnect().await?;
        Ok(store)
    }

    /// Rewrites rows no delete could match before a replay (see
    /// [`repair_keys`]) and logs what it changed.
    async fn repair(&mut self) -> Result<()> {
        let done = self.with_conn(repair_keys).await?;
        done.log(&self.describe());
        Ok(())
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&mut self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Sql) -> Result<T> + Send + 'static,
    {
        let Some(mut conn) = self.conn.take() else {
            return Err(StoreError::Unavailable(format!("sqlite database {} is not open", self.path.display())));
        };
        let sql = self.sql.clone();
        match tokio::task::spawn_blocking(move || {
            let r = f(&mut conn, &sql);
            (conn, r)
        })
        .await
        {
            Ok((conn, r)) => {
                self.conn = Some(conn);
                r
            }
            Err(e) => Err(StoreError::Unavailable(format!("sqlite worker failed: {e}"))),
        }
    }
}

/// Takes an exclusive advisory lock (`flock`) on the database file, so that
/// a second sprocketd given the same file (the same `--data-dir` and port,
/// two listen addresses on one port, or one `--libsqlite3-db`) stops at
/// start instead of replaying and running the first one's jobs a second
/// time. SQLite's own locks are `fcntl` locks, which do not interact with
/// `flock` on Linux, so the `sqlite3` shell and gearmand can still open
/// the file.
fn lock_database(path: &Path) -> Result<std::fs::File> {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .or_else(|_| std::fs::File::open(path))
        .map_err(|e| StoreError::Unavailable(format!("sqlite database {}: cannot open: {e}", path.display())))?;
    match opened.try_lock() {
        Ok(()) => Ok(opened),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Config(format!(
            "sqlite database {} is in use by another sprocketd; give each server its own queue file \
             (--data-dir, or -q libsqlite3 --libsqlite3-db)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(StoreError::Unavailable(format!("sqlite database {}: cannot lock: {e}", path.display())))
        }
    }
}

/// Largest `--sync=normal` batch committed on the caller's thread rather
/// than on the blocking pool.
const INLINE_COMMIT_MAX: usize = 32;

/// Opens the file, sets WAL and the sync level, and prepares the tables.
fn open_connection(path: &Path, sync: SyncMode, sql: &Sql) -> Result<Connection> {
    let ctx = |what: &str| format!("sqlite database {}: {what}", path.display());
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", ctx("cannot open"))))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| unavailable_or_rejected(&ctx("busy_timeout"), e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| unavailable_or_rejected(&ctx("cannot enable WAL"), e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Config(format!("{}: journal mode is {mode}, not wal", ctx("cannot enable WAL"))));
    }
    let level = match sync {
        SyncMode::Full => "FULL",
        SyncMode::Normal => "NORMAL",
    };
    conn.execute_batch(&format!("PRAGMA synchronous={level}"))
        .map_err(|e| unavailable_or_rejected(&ctx("cannot set synchronous"), e))?;
    prepare_schema(&mut conn, sql).map_err(|e| match e {
        StoreError::Rejected(m) => StoreError::Config(format!("{}: {m}", ctx("bad schema"))),
        other => other,
    })?;
    Ok(conn)
}

/// Adopts the queue table (see [`crate::schema`]): creates it with
/// gearmand's statement if missing, and adds `when_to_run` to a table from
/// a gearmand without it. Then brings sprocketd's own tables up to date.
fn prepare_schema(conn: &mut Connection, sql: &Sql) -> Result<()> {
    let q = double_quoted(&sql.table);
    let map = |e| unavailable_or_rejected("schema", e);
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {q} (unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB, \
         when_to_run INTEGER, PRIMARY KEY (unique_key, function_name))"
    ))
    .map_err(map)?;
    let mut has_when = false;
    {
        let mut st = conn.prepare(&format!("PRAGMA table_info({q})")).map_err(map)?;
        let mut rows = st.query([]).map_err(map)?;
        while let Some(row) = rows.next().map_err(map)? {
            let name: String = row.get(1).map_err(map)?;
            has_when |= name.eq_ignore_ascii_case("when_to_run");
        }
    }
    if !has_when {
        conn.execute_batch(&format!("ALTER TABLE {q} ADD COLUMN when_to_run INTEGER")).map_err(map)?;
    }
    // The runner is shared with the network databases, so it is async;
    // here every step is a blocking call and the future is ready at once.
    let mut catalog = SqliteCatalog { conn, table: &sql.table };
    futures::executor::block_on(schema::migrate(&mut catalog, &sql.table, &q))?;
    Ok(())
}

/// The migration runner's view of an SQLite connection.
struct SqliteCatalog<'a> {
    conn: &'a mut Connection,
    table: &'a str,
}

#[async_trait::async_trait]
impl schema::Catalog for SqliteCatalog<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(|e| unavailable_or_rejected("schema", e))
    }

    async fn recorded_version(&mut self) -> Result<i64> {
        let map = |e| unavailable_or_rejected("schema", e);
        self.conn
            .execute("INSERT OR IGNORE INTO sprocket_meta (queue_table, schema_version) VALUES (?1, 0)", [self.table])
            .map_err(map)?;
        self.conn
            .query_row("SELECT schema_version FROM sprocket_meta WHERE queue_table = ?1", [self.table], |r| r.get(0))
            .map_err(map)
    }

    async fn record_version(&mut self, version: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE sprocket_meta SET schema_version = ?2 WHERE queue_table = ?1",
                params![self.table, version],
            )
            .map(drop)
            .map_err(|e| unavailable_or_rejected("schema", e))
    }
}

fn apply_batch(conn: &mut Connection, sql: &Sql, batch: &EncodedBatch) -> Result<()> {
    let map = |e| unavailable_or_rejected("sqlite write", e);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map)?;
    {
        let mut del = tx.prepare_cached(&sql.delete).map_err(map)?;
        for k in &batch.deletes {
            del.execute(params![text(&k.unique), text(&k.function)]).map_err(map)?;
        }
        let mut ins = tx.prepare_cached(&sql.insert).map_err(map)?;
        for r in &batch.upserts {
            // An empty workload is an empty blob, never NULL (gearmand's bug).
            ins.execute(params![r.priority, text(&r.unique), text(&r.function), &r.data[..], r.when]).map_err(map)?;
        }
        if !batch.records.is_empty() {
            let mut rec = tx.prepare_cached(RECORD_UPSERT).map_err(map)?;
            for r in &batch.records {
                rec.execute(params![
                    sql.table,
                    r.handle_text(),
                    &r.function[..],
                    &r.row_unique[..],
                    r.state.as_str(),
                    ms(r.submitted),
                    r.finished.map(ms),
                    &r.body[..]
                ])
                .map_err(map)?;
            }
        }
    }
    tx.commit().map_err(map)
}

/// Writes a record, replacing the record of its handle.
/// An update in place when the handle has a record (not `INSERT OR
/// REPLACE`, which deletes the row and inserts it again, through every
/// index).
const RECORD_UPSERT: &str = "INSERT INTO sprocket_records \
     (namespace, handle, function, row_unique, state, submitted, finished, body) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
     ON CONFLICT (namespace, handle) DO UPDATE SET function = excluded.function, row_unique = excluded.row_unique, \
     state = excluded.state, submitted = excluded.submitted, finished = excluded.finished, body = excluded.body";

/// Keys are stored as TEXT (gearmand checks the type on replay); the
/// `textkey` encoding guarantees they are valid UTF-8.
fn text(encoded: &[u8]) -> &str {
    std::str::from_utf8(encoded).unwrap_or_default()
}

fn bytes_of(v: ValueRef<'_>) -> Option<&[u8]> {
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(b),
        _ => None,
    }
}

fn int_of(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(b) | ValueRef::Blob(b) => parse_int(b),
        ValueRef::Null => None,
    }
}

/// The row's job; `None` for a row without a function (see `loaded_job`).
fn row_job(row: &rusqlite::Row<'_>) -> Result<Option<StoredJob>> {
    let map = |e| unavailable_or_rejected("sqlite replay", e);
    let get = |i: usize| row.get_ref(i).map_err(map);
    Ok(loaded_job(
        KeyForm::Text,
        bytes_of(get(0)?),
        bytes_of(get(1)?),
        int_of(get(2)?),
        bytes_of(get(3)?).map(Bytes::copy_from_slice),
        int_of(get(4)?),
    ))
}

/// Before a replay, rewrites the rows no delete could match, in one
/// transaction: a unique_key holding a NUL byte (gearmand's cut uniques,
/// see `rows::cut_unique`) becomes the key the job's delete will be written
/// with, or the row is deleted when that key already exists for its
/// function; a NULL unique_key gets a generated key (`rows::NullKeys`).
/// Counts the rows without a function, which replay skips. Cheap when
/// there is nothing to do: one scan of the keys.
fn repair_keys(conn: &mut Connection, sql: &Sql) -> Result<Repairs> {
    let map = |e| unavailable_or_rejected("sqlite replay: repairing keys", e);
    let q = double_quoted(&sql.table);
    let odd: Vec<(Value, Value)> = {
        // `instr` on text stops at a NUL; on a blob it compares bytes.
        let mut st = conn
            .prepare(&format!(
                "SELECT unique_key, function_name FROM {q} \
                 WHERE function_name IS NULL OR unique_key IS NULL OR instr(CAST(unique_key AS BLOB), x'00') > 0"
            ))
            .map_err(map)?;
        let rows = st.query_map([], |r| Ok((r.get::<_, Value>(0)?, r.get::<_, Value>(1)?))).map_err(map)?;
        rows.collect::<rusqlite::Result<_>>().map_err(map)?
    };
    let mut done = Repairs::default();
    if odd.is_empty() {
        return Ok(done);
    }
    let mut null_keys = NullKeys::new();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map)?;
    for (unique, function) in &odd {
        if *function == Value::Null {
            done.skipped += 1;
            continue;
        }
        if *unique == Value::Null {
            let key = null_keys.next_key();
            // One row at a time, by rowid: NULLs are distinct even under
            // the primary key, so a function may have several. A table
            // without rowids has a NOT NULL key and no such rows; should
            // the rowid be missing anyway, every NULL row of the function
            // gets the key (they then replay as one job).
            let one = format!(
                "UPDATE {q} SET unique_key = ?1 WHERE rowid = \
                 (SELECT rowid FROM {q} WHERE unique_key IS NULL AND function_name = ?2 LIMIT 1)"
            );
            let n = match tx.execute(&one, params![text(&key), function]) {
                Ok(n) => n,
                Err(_) => tx
                    .execute(
                        &format!("UPDATE {q} SET unique_key = ?1 WHERE unique_key IS NULL AND function_name = ?2"),
                        params![text(&key), function],
                    )
                    .map_err(map)?,
            };
            done.null_keys += n as u64;
            continue;
        }
        let stored = match unique {
            Value::Text(t) => t.as_bytes(),
            Value::Blob(b) => &b[..],
            // Not NULL and it holds a NUL, so it is text or a blob.
            _ => continue,
        };
        let Some(new) = repaired_unique(KeyForm::Text, stored) else { continue };
        let new = text(&new);
        // The old value is bound back exactly as read (type included), so
        // it matches its own row.
        let exists: bool = tx
            .query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM {q} WHERE unique_key = ?1 AND function_name = ?2)"),
                params![new, function],
                |r| r.get(0),
            )
            .map_err(map)?;
        if !exists {
            match tx.execute(
                &format!("UPDATE {q} SET unique_key = ?1 WHERE unique_key = ?2 AND function_name = ?3"),
                params![new, unique, function],
            ) {
                Ok(n) => {
                    done.cut += n as u64;
                    continue;
                }
                // A key column with its own collation can call the new key
                // a duplicate although `=` above did not: merge it then.
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {}
                Err(e) => return Err(map(e)),
            }
        }
        let n = tx
            .execute(
                &format!("DELETE FROM {q} WHERE unique_key = ?1 AND function_name = ?2"),
                params![unique, function],
            )
            .map_err(map)?;
        done.merged += n as u64;
    }
    tx.commit().map_err(map)?;
    Ok(done)
}

fn load_rows(conn: &mut Connection, sql: &Sql) -> Result<Vec<StoredJob>> {
    let map = |e| unavailable_or_rejected("sqlite replay", e);
    let mut st = conn.prepare(&sql.select).map_err(map)?;
    let mut rows = st.query([]).map_err(map)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map)? {
        out.extend(row_job(row)?);
    }
    Ok(out)
}

/// Rows per part of a replay.
const LOAD_PART: i64 = 10_000;

/// The next part of the table after `after` (a rowid), and the last rowid
/// in it; `None` when the table has no rowid (a WITHOUT ROWID table made
/// by hand), to be read in one piece instead.
fn load_part(conn: &mut Connection, sql: &Sql, after: i64) -> Result<Option<(Vec<StoredJob>, i64)>> {
    let map = |e| unavailable_or_rejected("sqlite replay", e);
    let Ok(mut st) = conn.prepare_cached(&sql.select_part) else { return Ok(None) };
    let mut rows = st.query(params![after, LOAD_PART]).map_err(map)?;
    let (mut out, mut last) = (Vec::new(), after);
    while let Some(row) = rows.next().map_err(map)? {
        out.extend(row_job(row)?);
        last = row.get(5).map_err(map)?;
    }
    Ok(Some((out, last)))
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{} table {}", self.path.display(), self.sql.table)
    }

    async fn load(&mut self) -> Result<Vec<StoredJob>> {
        self.repair().await?;
        self.with_conn(load_rows).await.map(crate::netops::dedupe_loaded)
    }

    /// Reads the table in parts of `LOAD_PART` rows. The table's primary
    /// key (gearmand's layout) rules out duplicate keys; in a table made
    /// without one, the engine keeps the first row of a repeated unique.
    async fn load_each(&mut self, sink: &mut (dyn FnMut(Vec<StoredJob>) + Send)) -> Result<usize> {
        self.repair().await?;
        let (mut after, mut total) = (i64::MIN, 0);
        loop {
            match self.with_conn(move |conn, sql| load_part(conn, sql, after)).await? {
                None => {
                    let jobs = self.with_conn(load_rows).await.map(crate::netops::dedupe_loaded)?;
                    let n = jobs.len();
                    sink(jobs);
                    return Ok(total + n);
                }
                // No row after `after` (a part of skipped rows is empty
                // but not the end).
                Some((_, last)) if last == after => return Ok(total),
                Some((part, last)) => {
                    total += part.len();
                    after = last;
                    sink(part);
                }
            }
        }
    }

    async fn apply(&mut self, ops: &[StoreOp]) -> Result<()> {
        let batch = EncodedBatch::new(ops, KeyForm::Text);
        if batch.is_empty() {
            return Ok(());
        }
        // On the writer's own thread every commit runs in place. Elsewhere,
        // without an fsync a small commit takes tens of microseconds, less
        // than the two thread hand-offs of the blocking pool, and clients
        // waiting one job at a time wait for exactly that latency.
        if self.inline || (self.sync == SyncMode::Normal && ops.len() <= INLINE_COMMIT_MAX) {
            if let Some(conn) = self.conn.as_mut() {
                return apply_batch(conn, &self.sql, &batch);
            }
        }
        self.with_conn(move |conn, sql| apply_batch(conn, sql, &batch)).await
    }

    /// With `--sync=full` every commit waits for an fsync: the writer gets
    /// a thread of its own, so the next commit starts right after one ends.
    /// With `--sync=normal` commits are short and a hand-off to another
    /// thread would cost more than it saves (measured: 30% fewer submits at
    /// 4 connections), so they run on the server's thread (see `apply`).
    fn blocks(&self) -> bool {
        self.sync == SyncMode::Full
    }

    /// Measured with 4 and 16 clients submitting one job at a time
    /// (`--sync=full`, 2 cores shared with the clients): 4 % and 9 % fewer
    /// submits with regrouping. The commit's SQLite and fsync work needs
    /// a CPU the returning clients also need, and taking turns overlaps
    /// one group's turn-around with the other's flush.
    fn regroups(&self) -> bool {
        false
    }

    fn run_inline(&mut self) {
        self.inline = true;
    }

    fn keeps_records(&self) -> bool {
        true
    }

    async fn load_record(&mut self, handle: &[u8]) -> Result<Option<Record>> {
        self.read_record(handle).await
    }

    async fn load_records(&mut self, handles: &[Bytes]) -> Result<Vec<Option<Record>>> {
        // One trip to the blocking pool for the lot.
        self.read_records(handles).await
    }

    async fn search_records(&mut self, filter: &RecordFilter) -> Result<Vec<Record>> {
        self.find_records(filter).await
    }

    async fn expire_records(&mut self, cutoffs: crate::ExpiryCutoffs, batch_limit: usize) -> Result<usize> {
        self.expire_ended_records(cutoffs, batch_limit).await
    }

    async fn purge_records(&mut self, filter: &RecordFilter, batch_limit: usize) -> Result<usize> {
        crate::check_purge_filter(filter)?;
        self.purge_ended_records(filter, batch_limit).await
    }

    async fn queued_handles(&mut self) -> Result<Vec<QueuedHandle>> {
        self.queued_record_handles().await
    }

    async fn reserve_handles(&mut self, block: u64) -> Result<u64> {
        self.reserve_handle_numbers(block).await
    }

    async fn load_settings(&mut self, kind: &str) -> Result<Vec<crate::Setting>> {
        self.read_settings(kind).await
    }

    async fn put_setting(&mut self, kind: &str, name: &[u8], value: &str) -> Result<()> {
        self.write_setting(kind, name, Some(value)).await
    }

    async fn delete_setting(&mut self, kind: &str, name: &[u8]) -> Result<()> {
        self.write_setting(kind, name, None).await
    }

    async fn open_reader(&mut self) -> Result<Option<Box<dyn Store>>> {
        // A second connection to the same file: WAL lets it read while the
        // writer commits, and its few writes (expiry, handle blocks) wait
        // for the writer's lock within the busy timeout.
        let mut reader = SqliteStore {
            path: self.path.clone(),
            sync: self.sync,
            sql: self.sql.clone(),
            conn: None,
            _lock: None,
            inline: false,
        };
        reader.reconnect().await?;
        Ok(Some(Box::new(reader)))
    }

    async fn reconnect(&mut self) -> Result<()> {
        let path = self.path.clone();
        let sync = self.sync;
        let sql = self.sql.clone();
        self.conn = None;
        let conn = tokio::task::spawn_blocking(move || open_connection(&path, sync, &sql))
            .await
            .map_err(|e| StoreError::Unavailable(format!("sqlite worker failed: {e}")))??;
        self.conn = Some(conn);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_store_per_database_file() {
        let dir = std::env::temp_dir().join(format!("sprocket-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("q.db");
        let first = SqliteStore::open(&path, "gearman_queue", SyncMode::Normal).await.expect("first open");
        let err = match SqliteStore::open(&path, "other_table", SyncMode::Normal).await {
            Ok(_) => panic!("a second store opened the same file"),
            Err(e) => e,
        };
        assert!(matches!(err, StoreError::Config(_)), "{err}");
        assert!(err.to_string().contains("in use by another sprocketd"), "{err}");
        // SQLite's own readers are not shut out.
        let shell = Connection::open(&path).expect("plain sqlite connection");
        let n: i64 = shell.query_row("SELECT COUNT(*) FROM gearman_queue", [], |r| r.get(0)).expect("count");
        assert_eq!(n, 0);
        drop(first);
        SqliteStore::open(&path, "gearman_queue", SyncMode::Normal).await.expect("free again after close");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
