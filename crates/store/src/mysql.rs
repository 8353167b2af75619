//! MySQL / MariaDB backend (`-q mysql`, `-q MySQL`).
//!
//! gearmand's table name and column names, but the key columns we create
//! are `VARBINARY`: any bytes round-trip (a utf8mb4 `VARCHAR` cannot hold
//! invalid UTF-8), and the key is at most 64 + 512 bytes, under even the old
//! 767-byte InnoDB index limit that broke gearmand's `VARCHAR(255)` under
//! utf8mb4. A table gearmand created (`VARCHAR` keys) is used as it is, with
//! the reversible text escaping of `textkey` for names text cannot hold.
//!
//! A batch is one transaction of multi-row statements whose row counts are
//! powers of two, so a handful of cached prepared statements serve every
//! batch size.

use std::time::Duration;

use bytes::Bytes;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Params, Row, Transaction, TxOpts, Value};

use crate::ident::{backquoted, validate_table};
use crate::netops::dedupe_loaded;
use crate::record_row::{decode_body, ms};
use crate::rows::{
    loaded_job, parse_int, repaired_unique, EncodedBatch, EncodedKey, EncodedRow, KeyForm, NullKeys, Repairs,
};
use crate::schema::{self, Dialect};
use crate::{JobKey, QueuedHandle, Record, RecordFilter, Result, Store, StoreError, StoreOp, StoredJob};

mod catalog;
mod records;
mod settings;

use catalog::MysqlCatalog;

/// Most rows in one statement.
const MAX_ROWS_PER_STATEMENT: usize = 512;
/// Most job data in one statement (MariaDB's default max_allowed_packet is
/// 16 MiB); less when the server's `max_allowed_packet` is smaller.
const MAX_BYTES_PER_STATEMENT: usize = 4 << 20;
/// What the server's `max_allowed_packet` is taken to be until it has been
/// read (MySQL 5.7's default; 8.0 has 64 MiB, MariaDB 16 MiB).
const ASSUMED_MAX_PACKET: usize = 4 << 20;
/// Room in a packet for everything but the rows' own bytes: the command,
/// the parameters' types and length prefixes.
const PACKET_HEADROOM: usize = 64 << 10;
/// A row's bytes in a statement beyond its unique, function and data.
const ROW_OVERHEAD: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Times a batch that InnoDB picked as a deadlock victim is run again
/// before it is reported as refused (the writer then writes it row by row).
const DEADLOCK_RETRIES: u64 = 5;

/// MySQL's "Deadlock found when trying to get lock; try restarting transaction".
const ER_LOCK_DEADLOCK: u16 = 1213;

/// Where Debian, RPM distributions and macOS builds put the server socket.
const LOCAL_SOCKETS: &[&str] =
    &["/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/var/lib/mysql/mysql.sock", "/tmp/mysql.sock"];

/// Connection settings from the `--mysql-*` flags.
#[derive(Debug, Clone)]
pub struct MysqlSettings {
    /// `--mysql-host`; `localhost` means the local socket when there is one.
    pub host: String,
    /// `--mysql-port`.
    pub port: u16,
    /// `--mysql-user`; empty means the anonymous user.
    pub user: String,
    /// `--mysql-password`; empty means none.
    pub password: String,
    /// `--mysql-db`, required.
    pub db: String,
    /// `--mysql-table`.
    pub table: String,
}

impl MysqlSettings {
    /// Settings from the flag values.
    pub fn new(host: &str, port: u16, user: &str, password: &str, db: &str, table: &str) -> MysqlSettings {
        MysqlSettings {
            host: host.into(),
            port,
            user: user.into(),
            password: password.into(),
            db: db.into(),
            table: table.into(),
        }
    }
}

/// A queue table in a MySQL or MariaDB database.
pub struct MysqlStore {
    settings: MysqlSettings,
    table_sql: String,
    form: KeyForm,
    conn: Option<Conn>,
    /// The server's `max_allowed_packet`: a statement larger than this makes
    /// the server drop the connection, and with it the whole batch.
    max_packet: usize,
}

/// What a row adds to an INSERT statement.
fn row_bytes(r: &EncodedRow) -> usize {
    r.data.len() + r.unique.len() + r.function.len() + ROW_OVERHEAD
}

fn is_deadlock(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == ER_LOCK_DEADLOCK)
}

/// Runs a batch's statements: alone in autocommit when there is one, else
/// in one transaction. An error comes with what was being done.
async fn write_once(
    conn: &mut Conn,
    mut statements: Vec<(String, Params)>,
) -> std::result::Result<(), (&'static str, mysql_async::Error)> {
    if statements.len() == 1 {
        if let Some((sql, params)) = statements.pop() {
            // One statement commits atomically on its own (autocommit).
            return conn.exec_drop(sql, params).await.map_err(|e| ("mysql write", e));
        }
    }
    let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(|e| ("mysql begin", e))?;
    for (sql, params) in statements {
        if let Err(e) = tx.exec_drop(sql, params).await {
            // Roll back now: the batch may be run again on this
            // connection, and a merely dropped transaction would still be
            // open when the next one begins.
            let _ = tx.rollback().await;
            return Err(("mysql write", e));
        }
    }
    tx.commit().await.map_err(|e| ("mysql commit", e))
}

/// Keys of rows to repair before a replay: (unique_key, function_name),
/// either possibly NULL.
type OddKeys = Vec<(Option<Vec<u8>>, Option<Vec<u8>>)>;

/// MySQL's "Duplicate entry … for key …".
const ER_DUP_ENTRY: u16 = 1062;

/// Rewrites, inside `tx`, the rows `odd` (stored unique, function) no
/// delete could match: a unique holding a NUL byte becomes the key the
/// job's delete will be written with (a row whose new key already exists
/// for its function is deleted instead), a NULL unique gets a generated
/// key (`rows::NullKeys`). Rows without a function are only counted.
async fn repair_rows(
    tx: &mut Transaction<'_>,
    t: &str,
    form: KeyForm,
    odd: OddKeys,
) -> std::result::Result<Repairs, mysql_async::Error> {
    let mut done = Repairs::default();
    let mut null_keys = NullKeys::new();
    for (unique, function) in odd {
        let Some(function) = function else {
            done.skipped += 1;
            continue;
        };
        let Some(unique) = unique else {
            // One row at a time: NULLs are distinct even under the unique
            // key, so a function may have several.
            tx.exec_drop(
                format!("UPDATE {t} SET unique_key = ? WHERE unique_key IS NULL AND function_name = ? LIMIT 1"),
                (null_keys.next_key(), function),
            )
            .await?;
            done.null_keys += tx.affected_rows();
            continue;
        };
        let Some(new) = repaired_unique(form, &unique) else { continue };
        let exists: Option<i64> = tx
            .exec_first(
                format!("SELECT COUNT(*) FROM {t} WHERE unique_key = ? AND function_name = ?"),
                (new.clone(), function.clone()),
            )
            .await?;
        if exists.unwrap_or(0) == 0 {
            match tx
                .exec_drop(
                    format!("UPDATE {t} SET unique_key = ? WHERE unique_key = ? AND function_name = ?"),
                    (new, unique.clone(), function.clone()),
                )
                .await
            {
                Ok(()) => {
                    done.cut += tx.affected_rows();
                    continue;
                }
                // The key's collation (say, case-insensitive) calls it a
                // duplicate although `=` with our bytes did not: merge it.
                // A failed statement leaves the transaction open in MySQL.
                Err(mysql_async::Error::Server(e)) if e.code == ER_DUP_ENTRY => {}
                Err(e) => return Err(e),
            }
        }
        tx.exec_drop(format!("DELETE FROM {t} WHERE unique_key = ? AND function_name = ?"), (unique, function)).await?;
        done.merged += tx.affected_rows();
    }
    Ok(done)
}

/// Lost connections, shutdowns, lock timeouts and login failures mean "try
/// again later"; other server errors are about the data. A deadlock that
/// outlasted its retries counts as refused: the writer then writes the
/// batch row by row, instead of failing everything as if the database
/// were down.
fn classify(context: &str, e: mysql_async::Error) -> StoreError {
    match e {
        mysql_async::Error::Server(s) => {
            let msg = format!("{context}: {} ({})", s.message, s.code);
            match s.code {
                1040 | 1045 | 1049 | 1053 | 1077 | 1152 | 1158..=1161 | 1205 | 1927 | 2002 | 2003 | 2006 | 2013 => {
                    StoreError::Unavailable(msg)
                }
                _ => StoreError::Rejected(msg),
            }
        }
        other => StoreError::Unavailable(format!("{context}: {other}")),
    }
}

fn is_binary_type(data_type: &str) -> bool {
    matches!(
        data_type.to_ascii_lowercase().as_str(),
        "varbinary" | "binary" | "blob" | "tinyblob" | "mediumblob" | "longblob"
    )
}

fn value_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b),
        Value::NULL => None,
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::UInt(u) => Some(u.to_string().into_bytes()),
        other => Some(other.as_sql(true).into_bytes()),
    }
}

fn value_int(v: Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(i),
        Value::UInt(u) => i64::try_from(u).ok(),
        Value::Bytes(b) => parse_int(&b),
        _ => None,
    }
}

/// Splits `n` rows into statement sizes: powers of two, at most
/// [`MAX_ROWS_PER_STATEMENT`], halved while their bytes would pass `budget`
/// (a row alone may pass it: see [`MysqlStore::check_row_sizes`]).
fn chunk_sizes<T>(items: &[T], bytes_of: impl Fn(&T) -> usize, budget: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut at = 0;
    while at < items.len() {
        let left = items.len() - at;
        let mut size = MAX_ROWS_PER_STATEMENT.min(1 << (usize::BITS - 1 - left.leading_zeros()));
        while size > 1 && items[at..at + size].iter().map(&bytes_of).sum::<usize>() > budget {
            size /= 2;
        }
        sizes.push(size);
        at += size;
    }
    sizes
}

impl MysqlStore {
    /// Connects and creates the table if missing.
    pub async fn open(settings: MysqlSettings) -> Result<MysqlStore> {
        validate_table("--mysql-table", &settings.table)?;
        if settings.db.is_empty() {
            return Err(StoreError::Config("--mysql-db is required (the database that holds the queue table)".into()));
        }
        let table_sql = backquoted(&settings.table);
        let mut store =
            MysqlStore { settings, table_sql, form: KeyForm::Binary, conn: None, max_packet: ASSUMED_MAX_PACKET };
        store.reconnect().await?;
        Ok(store)
    }

    fn target(&self) -> String {
        let s = &self.settings;
        format!("mysql://{}@{}:{}/{}", s.user, s.host, s.port, s.db)
    }

    /// Reads the server's `max_allowed_packet` (kept as it was if that fails).
    async fn read_max_packet(&mut self) {
        let Ok(conn) = self.conn() else { return };
        match conn.query_first::<u64, _>("SELECT @@max_allowed_packet").await {
            Ok(Some(n)) => self.max_packet = usize::try_from(n).unwrap_or(usize::MAX),
            Ok(None) => {}
            Err(e) => tracing::debug!("cannot read max_allowed_packet, assuming {} bytes: {e}", self.max_packet),
        }
    }

    fn conn(&mut self) -> Result<&mut Conn> {
        let target = self.target();
        self.conn.as_mut().ok_or_else(|| StoreError::Unavailable(format!("{target}: not connected")))
    }

    /// Adopts the queue table (see [`crate::schema`]): creates it if
    /// missing and adds `when_to_run` if a table from an old gearmand lacks
    /// it; brings sprocketd's own tables up to date; and decides how keys
    /// are stored.
    async fn prepare_schema(&mut self) -> Result<()> {
        let t = self.table_sql.clone();
        let table = self.settings.table.clone();
        let conn = self.conn()?;
        let ctx = |what: &str| format!("preparing table {table}: {what}");
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {t} (unique_key VARBINARY(64), function_name VARBINARY(512), priority INT, \
             data LONGBLOB, when_to_run BIGINT, UNIQUE KEY unique_key (unique_key, function_name)) ENGINE=InnoDB"
        ))
        .await
        .map_err(|e| classify(&ctx("create"), e))?;
        let columns: Vec<(String, String)> = conn
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (table.clone(),),
            )
            .await
            .map_err(|e| classify(&ctx("columns"), e))?;
        let type_of = |name: &str| columns.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)).map(|(_, t)| t.clone());
        if type_of("when_to_run").is_none() {
            conn.query_drop(format!("ALTER TABLE {t} ADD COLUMN when_to_run BIGINT"))
                .await
                .map_err(|e| classify(&ctx("add when_to_run"), e))?;
        }
        let binary =
            [type_of("unique_key"), type_of("function_name")].iter().all(|t| t.as_deref().is_some_and(is_binary_type));
        schema::migrate(&mut MysqlCatalog { conn, table: &table }, &table, &t).await?;
        self.form = if binary { KeyForm::Binary } else { KeyForm::Text };
        Ok(())
    }

    /// Before a replay, rewrites the rows no delete could match (gearmand's
    /// cut uniques, see `rows::cut_unique`, and NULL uniques) in one
    /// transaction, and logs what it changed. One scan of the keys when there is nothing to do.
    async fn repair_keys(&mut self) -> Result<()> {
        let (t, form, describe) = (self.table_sql.clone(), self.form, self.describe());
        let conn = self.conn()?;
        let ctx = "mysql replay: repairing keys";
        // Compared as bytes, whatever the column's character set.
        let odd: OddKeys = conn
            .query(format!(
                "SELECT unique_key, function_name FROM {t} WHERE function_name IS NULL OR unique_key IS NULL \
                 OR INSTR(CAST(unique_key AS BINARY), x'00') > 0"
            ))
            .await
            .map_err(|e| classify(ctx, e))?;
        if odd.is_empty() {
            return Ok(());
        }
        let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(|e| classify(ctx, e))?;
        match repair_rows(&mut tx, &t, form, odd).await {
            Ok(done) => {
                tx.commit().await.map_err(|e| classify(ctx, e))?;
                done.log(&describe);
                Ok(())
            }
            Err(e) => {
                // Roll back now rather than leave the transaction open on
                // the connection the writer goes on to use.
                let _ = tx.rollback().await;
                Err(classify(ctx, e))
            }
        }
    }

    /// Most bytes one statement may carry: the server's limit.
    fn packet_budget(&self) -> usize {
        self.max_packet.saturating_sub(PACKET_HEADROOM)
    }

    /// Most row bytes a statement of several rows carries.
    fn statement_budget(&self) -> usize {
        MAX_BYTES_PER_STATEMENT.min(self.packet_budget())
    }

    /// Refuses, before anything is sent, a batch with a row no statement
    /// can carry: the server would drop the connection, failing every job
    /// in the batch and every submit until the writer has reconnected. The
    /// writer then writes the batch row by row, so that row fails alone.
    fn check_row_sizes(&self, batch: &EncodedBatch) -> Result<()> {
        let budget = self.packet_budget();
        match batch.upserts.iter().find(|r| row_bytes(r) > budget) {
            None => Ok(()),
            Some(r) => Err(StoreError::Rejected(format!(
                "a job of {} bytes does not fit the MySQL server's max_allowed_packet ({} bytes); \
                 raise max_allowed_packet on the server to store jobs that large",
                r.data.len(),
                self.max_packet
            ))),
        }
    }

    /// The statements for a batch, each with its parameters.
    fn statements(&self, batch: &EncodedBatch) -> Vec<(String, Params)> {
        let t = &self.table_sql;
        let budget = self.statement_budget();
        let mut out = Vec::new();
        let mut at = 0;
        for size in chunk_sizes(&batch.deletes, |k| k.unique.len() + k.function.len() + ROW_OVERHEAD, budget) {
            let keys: &[EncodedKey] = &batch.deletes[at..at + size];
            at += size;
            let cond = vec!["(unique_key = ? AND function_name = ?)"; size].join(" OR ");
            let params =
                keys.iter().flat_map(|k| [Value::Bytes(k.unique.clone()), Value::Bytes(k.function.clone())]).collect();
            out.push((format!("DELETE FROM {t} WHERE {cond}"), Params::Positional(params)));
        }
        at = 0;
        for size in chunk_sizes(&batch.upserts, row_bytes, budget) {
            let rows: &[EncodedRow] = &batch.upserts[at..at + size];
            at += size;
            let values = vec!["(?, ?, ?, ?, ?)"; size].join(", ");
            let params = rows
                .iter()
                .flat_map(|r| {
                    [
                        Value::Bytes(r.unique.clone()),
                        Value::Bytes(r.function.clone()),
                        Value::Int(i64::from(r.priority)),
                        Value::Bytes(r.data.to_vec()),
                        Value::Int(r.when),
                    ]
                })
                .collect();
            out.push((
                format!(
                    "INSERT INTO {t} (unique_key, function_name, priority, data, when_to_run) VALUES {values} \
                     ON DUPLICATE KEY UPDATE priority = VALUES(priority), data = VALUES(data), \
                     when_to_run = VALUES(when_to_run)"
                ),
                Params::Positional(params),
            ));
        }
        at = 0;
        let record_bytes = |r: &crate::RecordRow| r.body.len() + r.handle.len() + r.function.len() + ROW_OVERHEAD;
        for size in chunk_sizes(&batch.records, record_bytes, budget) {
            let rows = &batch.records[at..at + size];
            at += size;
            let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; size].join(", ");
            let params = rows
                .iter()
                .flat_map(|r| {
                    [
                        Value::Bytes(self.settings.table.clone().into_bytes()),
                        Value::Bytes(r.handle.to_vec()),
                        Value::Bytes(r.function.to_vec()),
                        Value::Bytes(r.row_unique.to_vec()),
                        Value::Bytes(r.state.as_str().as_bytes().to_vec()),
                        Value::Int(ms(r.submitted)),
                        r.finished.map_or(Value::NULL, |f| Value::Int(ms(f))),
                        Value::Bytes(r.body.to_vec()),
                    ]
                })
                .collect();
            out.push((
                format!(
                    "INSERT INTO sprocket_records \
                     (namespace, handle, function, row_unique, state, submitted, finished, body) VALUES {values} \
                     ON DUPLICATE KEY UPDATE function = VALUES(function), row_unique = VALUES(row_unique), \
                     state = VALUES(state), submitted = VALUES(submitted), finished = VALUES(finished), \
                     body = VALUES(body)"
                ),
                Params::Positional(params),
            ));
        }
        out
    }
}

#[async_trait::async_trait]
impl Store for MysqlStore {
    fn describe(&self) -> String {
        format!("{} table {}", self.target(), self.settings.table)
    }

    async fn load(&mut self) -> Result<Vec<StoredJob>> {
        self.repair_keys().await?;
        let sql = format!("SELECT unique_key, function_name, priority, data, when_to_run FROM {}", self.table_sql);
        let form = self.form;
        let rows: Vec<Row> = self.conn()?.query(sql).await.map_err(|e| classify("mysql replay", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut cols = row.unwrap().into_iter();
            let mut next = || cols.next().unwrap_or(Value::NULL);
            let unique = value_bytes(next());
            let function = value_bytes(next());
            let priority = value_int(next());
            let data = value_bytes(next()).map(Bytes::from);
            let when = value_int(next());
            out.extend(loaded_job(form, unique.as_deref(), function.as_deref(), priority, data, when));
        }
        Ok(dedupe_loaded(out))
    }

    async fn apply(&mut self, ops: &[StoreOp]) -> Result<()> {
        let batch = EncodedBatch::new(ops, self.form);
        if batch.is_empty() {
            return Ok(());
        }
        self.check_row_sizes(&batch)?;
        let mut attempt = 0;
        loop {
            // Built again for a retry rather than copied for every batch:
            // the statements carry the jobs' data.
            let statements = self.statements(&batch);
            match write_once(self.conn()?, statements).await {
                Err((_, e)) if is_deadlock(&e) && attempt < DEADLOCK_RETRIES => {
                    // InnoDB rolled the transaction back; its advice is to
                    // run it again. Concurrent commits on several
                    // connections (`--store-connections`) can lock each
                    // other's index gaps even for different keys.
                    attempt += 1;
                    tracing::debug!(attempt, "mysql deadlock, running the batch again: {e}");
                    tokio::time::sleep(Duration::from_millis(attempt)).await;
                }
                r => return r.map_err(|(context, e)| classify(context, e)),
            }
        }
    }

    fn keeps_records(&self) -> bool {
        true
    }

    async fn load_record(&mut self, handle: &[u8]) -> Result<Option<Record>> {
        self.read_record(handle).await
    }

    async fn load_records(&mut self, handles: &[Bytes]) -> Result<Vec<Option<Record>>> {
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

    async fn open_another(&mut self) -> Result<Option<Box<dyn Store>>> {
        let (settings, table_sql, form) = (self.settings.clone(), self.table_sql.clone(), self.form);
        let max_packet = self.max_packet;
        crate::netops::connected(MysqlStore { settings, table_sql, form, conn: None, max_packet }).await
    }

    async fn reconnect(&mut self) -> Result<()> {
        if let Some(old) = self.conn.take() {
            // Best effort: tell the server we are leaving.
            let _ = tokio::time::timeout(Duration::from_secs(1), old.disconnect()).await;
        }
        let s = &self.settings;
        // libmysqlclient (and so gearmand) takes `localhost` to mean the
        // local socket; do the same when the server has one.
        let socket = (s.host == "localhost" && s.port == 3306)
            .then(|| LOCAL_SOCKETS.iter().find(|p| std::path::Path::new(p).exists()))
            .flatten()
            .map(|p| p.to_string());
        let opts = OptsBuilder::default()
            .socket(socket)
            .ip_or_hostname(s.host.clone())
            .tcp_port(s.port)
            .user((!s.user.is_empty()).then(|| s.user.clone()))
            .pass((!s.password.is_empty()).then(|| s.password.clone()))
            .db_name(Some(s.db.clone()))
            .stmt_cache_size(64)
            // A silently dead peer (a NAT or firewall that forgot the idle
            // connection) is found by the OS instead of by a commit that
            // hangs until the writer's timeout.
            .tcp_keepalive(Some(30_000u32));
        let target = self.target();
        let conn = match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(match classify("", e) {
                    StoreError::Unavailable(m) | StoreError::Rejected(m) => {
                        StoreError::Unavailable(format!("cannot connect to {target}{m}"))
                    }
                    other => other,
                })
            }
            Err(_) => return Err(StoreError::Unavailable(format!("cannot connect to {target}: timed out"))),
        };
        self.conn = Some(conn);
        self.read_max_packet().await;
        if let Err(e) = self.prepare_schema().await {
            self.conn = None;
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
